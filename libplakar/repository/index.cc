#include "repository/index.h"

#include <algorithm>

#include "base/error.h"

namespace plakar {

namespace {
constexpr uint8_t kSegmentVersion = 1, kMergedVersion = 2;
constexpr size_t kMaxSupersedes = 1 << 20;
constexpr size_t kEntrySize = 32 + 4 + 4 + 4 + 4 + 1 + 1;
} // namespace

std::optional<BlobLoc> Index::find(const Id &id) const
{
	auto it = std::lower_bound(sorted_.begin(), sorted_.end(), id, [](const Entry &e, const Id &k) { return e.id < k; });
	if (it != sorted_.end() && it->id == id)
		return it->loc;
	auto f = fresh_.find(id);
	if (f != fresh_.end())
		return f->second;
	return std::nullopt;
}

std::vector<BlobLoc> Index::find_all(const Id &id) const
{
	std::vector<BlobLoc> out;
	auto it = std::lower_bound(sorted_.begin(), sorted_.end(), id, [](const Entry &e, const Id &k) { return e.id < k; });
	for (; it != sorted_.end() && it->id == id; ++it)
		out.push_back(it->loc);
	auto f = fresh_.find(id);
	if (f != fresh_.end())
		out.push_back(f->second);
	return out;
}

uint32_t Index::pack_number(const Id &pack)
{
	auto [it, inserted] = pack_no_.try_emplace(pack, uint32_t(packs_.size()));
	if (inserted)
		packs_.push_back(pack);
	return it->second;
}

void Index::add(const Id &pack, const BlobRecord &rec)
{
	uint32_t p = pack_number(pack);
	fresh_.try_emplace(rec.id, BlobLoc{p, rec.offset, rec.length, rec.raw_len, rec.type, rec.flags, 1});
	if (fresh_.size() >= kFreshMax)
		spill_fresh();
}

void Index::spill_fresh()
{
	std::deque<Entry> v;
	for (const auto &[id, loc] : fresh_)
		v.push_back({id, loc});
	fresh_in_sorted_ += v.size();
	fresh_ = {};
	merge_sorted(std::move(v));
}

void Index::merge_sorted(std::deque<Entry> more)
{
	auto less = [](const Entry &a, const Entry &b) { return a.id < b.id; };
	if (!std::is_sorted(more.begin(), more.end(), less))
		std::stable_sort(more.begin(), more.end(), less);
	size_t n = sorted_.size(), m = more.size();
	if (n == 0) {
		sorted_ = std::move(more);
		return;
	}
	sorted_.resize(n + m);
	// From the back, so that no other buffer is needed; on equal ids the entry already in
	// sorted_ stays first.
	size_t i = n, j = m, k = n + m;
	while (j > 0) {
		if (i > 0 && less(more[j - 1], sorted_[i - 1]))
			sorted_[--k] = sorted_[--i];
		else
			sorted_[--k] = more[--j];
	}
}

// Segment body: version u8 (1; 2 when merged: then nsupersedes varint, names as str),
// npacks varint, pack ids, nentries varint, entries (id[32] pack:u32 offset:u32 length:u32
// raw_len:u32 type:u8 flags:u8), sorted by id.
template <class C> Bytes Index::encode(const C &entries, const std::vector<std::string> &supersedes) const
{
	std::vector<uint32_t> remap(packs_.size(), UINT32_MAX);
	std::vector<Id> used;
	for (const auto &e : entries)
		if (remap[e.loc.pack] == UINT32_MAX) {
			remap[e.loc.pack] = uint32_t(used.size());
			used.push_back(packs_[e.loc.pack]);
		}
	Writer w;
	if (supersedes.empty()) {
		w.u8(kSegmentVersion);
	} else {
		w.u8(kMergedVersion);
		w.varint(supersedes.size());
		for (const auto &s : supersedes)
			w.str(s);
	}
	w.varint(used.size());
	for (const auto &p : used)
		w.raw(p.view());
	w.varint(entries.size());
	for (const auto &e : entries) {
		w.raw(e.id.view());
		w.u32(remap[e.loc.pack]);
		w.u32(e.loc.offset);
		w.u32(e.loc.length);
		w.u32(e.loc.raw_len);
		w.u8(uint8_t(e.loc.type));
		w.u8(e.loc.flags);
	}
	return w.take();
}

Bytes Index::encode_fresh(const std::vector<std::string> &supersedes) const
{
	std::vector<Entry> v;
	v.reserve(fresh_.size() + fresh_in_sorted_);
	if (fresh_in_sorted_)
		for (const auto &e : sorted_)
			if (e.loc.fresh)
				v.push_back(e);
	for (const auto &[id, loc] : fresh_)
		v.push_back({id, loc});
	std::sort(v.begin(), v.end(), [](const Entry &a, const Entry &b) { return a.id < b.id; });
	return encode(v, supersedes);
}

Bytes Index::encode_all(const std::vector<std::string> &supersedes) const
{
	if (fresh_.empty())
		return encode(sorted_, supersedes); // no copy of the whole index
	std::vector<Entry> v(sorted_.begin(), sorted_.end());
	for (const auto &[id, loc] : fresh_)
		if (!std::binary_search(sorted_.begin(), sorted_.end(), Entry{id, loc},
		                        [](const Entry &a, const Entry &b) { return a.id < b.id; }))
			v.push_back({id, loc});
	std::sort(v.begin(), v.end(), [](const Entry &a, const Entry &b) { return a.id < b.id; });
	return encode(v, supersedes);
}

Index::Summary Index::summary() const
{
	Summary s;
	std::vector<bool> used(packs_.size(), false);
	auto count = [&](const BlobLoc &l) {
		size_t t = size_t(l.type) & 3;
		s.blobs[t]++;
		s.stored_bytes[t] += l.length;
		s.raw_bytes[t] += l.raw_len;
		used[l.pack] = true;
	};
	for (const auto &e : sorted_)
		count(e.loc);
	for (const auto &[id, loc] : fresh_)
		count(loc);
	for (bool u : used)
		s.packs += u;
	return s;
}

void Index::commit_fresh()
{
	if (!fresh_.empty())
		spill_fresh();
	for (auto &e : sorted_)
		e.loc.fresh = 0;
	fresh_in_sorted_ = 0;
}

namespace {
// Reads the version and the supersedes list; leaves r at the pack list.
SegmentHead read_prefix(Reader &r)
{
	SegmentHead h;
	uint8_t v = r.u8();
	if (v != kSegmentVersion && v != kMergedVersion)
		fail(Code::Version, "index segment version is not supported");
	if (v == kMergedVersion) {
		size_t ns = r.count(1);
		if (ns == 0 || ns > kMaxSupersedes)
			r.bad(); // a merged segment supersedes something
		h.supersedes.reserve(ns);
		for (size_t i = 0; i < ns; i++) {
			h.supersedes.push_back(r.str());
			if (h.supersedes.back().empty())
				r.bad();
		}
	}
	return h;
}
} // namespace

SegmentHead Index::read_head(ByteView body)
{
	Reader r(body, "index segment");
	SegmentHead h = read_prefix(r);
	size_t np = r.count(32);
	r.raw(np * 32);
	h.entries = r.count(kEntrySize);
	r.raw(h.entries * kEntrySize);
	r.expect_done();
	return h;
}

SegmentHead Index::load_segment(ByteView body, size_t *run)
{
	Reader r(body, "index segment");
	SegmentHead h = read_prefix(r);
	size_t np = r.count(32);
	std::vector<Id> names(np);
	for (size_t i = 0; i < np; i++)
		names[i] = Id::from(r.raw(32));
	size_t n = r.count(kEntrySize);
	std::deque<Entry> mine;
	// Pack numbers are given at finish_load(): a refused or unloaded body adds nothing.
	for (size_t i = 0; i < n; i++) {
		Entry e;
		e.id = Id::from(r.raw(32));
		uint32_t p = r.u32();
		if (p >= np)
			r.bad();
		e.loc.pack = p;
		e.loc.offset = r.u32();
		e.loc.length = r.u32();
		e.loc.raw_len = r.u32();
		uint8_t t = r.u8();
		if (t < 1 || t > 3)
			r.bad();
		e.loc.type = BlobType(t);
		e.loc.flags = r.u8();
		mine.push_back(e);
	}
	r.expect_done();
	h.entries = n;
	if (run)
		*run = loading_.size();
	loading_.push_back(Run{std::move(names), std::move(mine)});
	return h;
}

void Index::unload(size_t run)
{
	if (run < loading_.size())
		loading_[run] = {};
}

void Index::finish_load()
{
	std::deque<Entry> all;
	for (auto &run : loading_) {
		std::vector<uint32_t> local(run.packs.size());
		for (size_t i = 0; i < run.packs.size(); i++)
			local[i] = pack_number(run.packs[i]);
		for (auto &e : run.entries)
			e.loc.pack = local[e.loc.pack];
		if (all.empty()) {
			all = std::move(run.entries); // the first run is not copied
			continue;
		}
		while (!run.entries.empty()) { // block by block: a run's memory goes as the next one grows
			all.push_back(run.entries.front());
			run.entries.pop_front();
		}
	}
	loading_ = {};
	if (all.empty())
		return;
	// Stable: when concurrent pushes stored one blob twice, the first copy loaded wins.
	merge_sorted(std::move(all));
	// The same entry loaded twice (a segment and its compaction) is kept once; two locations of
	// one blob (stored again by a push that found its pack gone, or concurrently by two pushes)
	// are both kept, the first loaded first: find() returns it, find_all() every one.
	// Within the run of one id, a location seen earlier in the run goes, adjacent or not:
	// segments written by compactions racing each other hold the same locations in other
	// orders, and keeping them would multiply the run at every compaction.
	size_t out = 0;
	for (size_t i = 0; i < sorted_.size();) {
		size_t run = out;
		size_t j = i;
		for (; j < sorted_.size() && sorted_[j].id == sorted_[i].id; j++) {
			bool seen = false;
			for (size_t k = run; k < out && !seen; k++)
				seen = sorted_[k].loc.pack == sorted_[j].loc.pack && sorted_[k].loc.offset == sorted_[j].loc.offset;
			if (!seen)
				sorted_[out++] = sorted_[j];
		}
		i = j;
	}
	sorted_.erase(sorted_.begin() + long(out), sorted_.end());
	sorted_.shrink_to_fit();
}

} // namespace plakar
