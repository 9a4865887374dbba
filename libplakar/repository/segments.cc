// The index segments of a repository (segments.h).
#include "repository/segments.h"

#include <algorithm>
#include <map>
#include <optional>

#include "base/error.h"
#include "crypto/crypto.h"
#include "repository/sealed.h"

namespace plakar {

namespace {

// A superseded segment's place in the cache: a marker naming the segment that supersedes it, so
// that later loads skip it without reading it while that one is listed. Real bodies start with
// their version (1 or 2), never 0.
Bytes tombstone(const std::string &superseder)
{
	Bytes b(1 + superseder.size(), 0);
	std::copy(superseder.begin(), superseder.end(), b.begin() + 1);
	return b;
}

std::optional<std::string> tombstone_of(ByteView body)
{
	if (body.empty() || body[0] != 0)
		return std::nullopt;
	return std::string(body.begin() + 1, body.end());
}

int tier_of(uint64_t entries)
{
	int t = 0;
	for (uint64_t top = kTierBase; entries >= top && t < 30; top *= kSegmentsPerTier)
		t++;
	return t;
}

} // namespace

void IndexSegments::load()
{
	// Never retried: a segment is deleted only by gc, once it is superseded and every process
	// that may have listed it before its successor existed has ended (docs/format.md).
	std::vector<std::string> names = store_.list(Kind::Index);
	std::unordered_set<std::string> listed(names.begin(), names.end());
	Index fresh;
	Staged st = stage(fresh, names, listed, {});
	fresh.finish_load();
	index_ = std::move(fresh);
	counters_.loads++;
	if (cache_) {
		// Segments gone from the store (deleted by gc) leave the cache too.
		for (const auto &k : cache_->keys(CacheTable::Segment))
			if (!listed.count(k))
				cache_->remove(CacheTable::Segment, k);
		cache_->flush();
	}
	segments_ = std::move(st.live);
	seg_state_ = std::move(st.state);
	superseded_ = std::set<std::string>(st.superseded.begin(), st.superseded.end());
}

IndexSegments::Staged IndexSegments::stage(Index &into, const std::vector<std::string> &names,
                                           const std::unordered_set<std::string> &listed,
                                           const std::unordered_set<std::string> &named)
{
	Staged out;
	std::unordered_map<std::string, std::string> named_by; // superseded -> a segment naming it
	std::vector<std::pair<std::string, size_t>> runs;
	std::vector<std::pair<std::string, std::exception_ptr>> failed;
	std::unordered_set<std::string> marked; // skipped on their cache marker
	for (const auto &n : names) {
		std::optional<Bytes> cached;
		if (cache_)
			if (auto hit = cache_->get(CacheTable::Segment, n)) {
				if (auto by = tombstone_of(*hit); !by)
					cached = std::move(hit); // read once: loaded from here
				else if (listed.count(*by)) {
					named_by.emplace(n, *by);
					marked.insert(n);
					continue;
				}
			}
		size_t run = 0;
		SegmentHead head;
		try {
			head = into.load_segment(cached ? *cached : fetch(n), &run);
		} catch (const Error &e) {
			if (!e.is_not_found() && e.code() != Code::Corrupt && e.code() != Code::Version)
				throw;
			failed.emplace_back(n, std::current_exception());
			continue;
		}
		for (const auto &s : head.supersedes)
			if (s != n) // a segment never hides itself
				named_by.emplace(s, n);
		runs.emplace_back(n, run);
		out.state[n] = SegmentState{head.entries, std::move(head.supersedes)};
	}
	auto superseded = [&](const std::string &n) { return named_by.count(n) || named.count(n); };
	for (const auto &[n, run] : runs) {
		if (!superseded(n)) {
			out.live.push_back(n);
			continue;
		}
		into.unload(run);
		out.state.erase(n);
		out.superseded.push_back(n);
		auto by = named_by.find(n);
		if (cache_ && by != named_by.end())
			cache_->put(CacheTable::Segment, n, tombstone(by->second));
	}
	for (const auto &n : marked)
		out.superseded.push_back(n);
	for (const auto &[n, err] : failed) {
		if (superseded(n))
			continue; // deleted by gc, or damaged: another segment holds its entries
		try {
			std::rethrow_exception(err);
		} catch (const Error &e) {
			if (e.is_not_found())
				fail(Code::Corrupt, "index segment " + n +
				                        " was deleted while the index was being read, and no other segment replaces it");
			throw;
		}
	}
	return out;
}

Bytes IndexSegments::fetch(const std::string &name)
{
	bool marked = false;
	if (cache_)
		if (auto hit = cache_->get(CacheTable::Segment, name)) {
			if (!tombstone_of(*hit))
				return std::move(*hit);
			marked = true; // superseded: read from the store, the marker stays
		}
	Bytes raw = store_.get(Kind::Index, name);
	// A merged segment is sealed as such, and its body says so: the kind is authenticated, so
	// a plain segment (which any writer may add) never supersedes anything.
	bool merged = sealed_kind(raw) == uint8_t(ObjectKind::IndexMerge);
	Bytes body =
	    open_object(keys_, encrypted_, merged ? ObjectKind::IndexMerge : ObjectKind::IndexSegment, name, raw);
	if (Index::read_head(body).supersedes.empty() == merged)
		fail(Code::Corrupt, "index segment " + name + ": malformed (" +
		                        (merged ? "a merged segment supersedes nothing" : "a plain segment supersedes others") +
		                        ")");
	counters_.fetched++;
	if (cache_ && !marked)
		cache_->put(CacheTable::Segment, name, body);
	return body;
}

bool IndexSegments::refresh(bool *replaced)
{
	if (replaced)
		*replaced = false;
	std::vector<std::string> names = store_.list(Kind::Index);
	std::unordered_set<std::string> listed(names.begin(), names.end());
	std::vector<std::string> fresh;
	for (const auto &n : names)
		if (!seg_state_.count(n) && !superseded_.count(n))
			fresh.push_back(n);
	if (fresh.empty())
		return false;
	std::unordered_set<std::string> named;
	for (const auto &[n, st] : seg_state_)
		named.insert(st.supersedes.begin(), st.supersedes.end());
	Staged st = stage(index_, fresh, listed, named);
	index_.finish_load();
	std::unordered_set<std::string> gone;
	for (const auto &[n, s] : st.state)
		for (const auto &o : s.supersedes)
			if (seg_state_.count(o))
				gone.insert(o);
	if (!gone.empty()) {
		if (replaced)
			*replaced = true;
		std::erase_if(segments_, [&](const std::string &n) { return gone.count(n) != 0; });
		for (const auto &n : gone) {
			seg_state_.erase(n);
			superseded_.insert(n);
		}
	}
	for (auto &n : st.live) {
		seg_state_[n] = std::move(st.state[n]);
		segments_.push_back(std::move(n));
	}
	superseded_.insert(st.superseded.begin(), st.superseded.end());
	return !st.live.empty();
}

std::vector<std::pair<std::string, uint64_t>> IndexSegments::live_entries() const
{
	std::vector<std::pair<std::string, uint64_t>> out;
	for (const auto &n : segments_) {
		auto it = seg_state_.find(n);
		out.emplace_back(n, it == seg_state_.end() ? 0 : it->second.entries);
	}
	return out;
}

std::vector<std::string> IndexSegments::superseding(const std::vector<std::string> &old_segments)
{
	std::vector<std::string> sup = old_segments;
	for (const auto &o : old_segments)
		if (auto it = seg_state_.find(o); it != seg_state_.end())
			for (const auto &t : it->second.supersedes)
				if (superseded_.count(t))
					sup.push_back(t);
	return sup;
}

void IndexSegments::replace(const Index &next, const std::vector<std::string> &old_segments)
{
	std::vector<std::string> sup = superseding(old_segments);
	write_merged(next.encode_fresh(sup), next.fresh_count(), sup);
	load();
}

bool IndexSegments::rewrite(const std::function<bool(const Id &pack)> &keep,
                            const std::vector<std::string> &old_segments)
{
	// Only the segments naming a pack that goes are rewritten (the cost follows what gc
	// frees, not the size of the index). Segment by segment: a blob indexed twice (a
	// repacked copy) keeps a location in a kept pack, whichever segment names it first.
	Index next;
	std::vector<std::string> affected;
	for (const auto &seg : old_segments) {
		Index one;
		one.load_segment(fetch(seg));
		one.finish_load();
		bool drops = false;
		one.for_each_saved([&](const Id &, const BlobLoc &loc) { drops = drops || !keep(one.pack_name(loc.pack)); });
		if (!drops)
			continue;
		affected.push_back(seg);
		one.for_each_saved([&](const Id &id, const BlobLoc &loc) {
			const Id &pack = one.pack_name(loc.pack);
			if (keep(pack))
				next.add(pack, one.record(id, loc));
		});
	}
	if (affected.empty())
		return false;
	replace(next, affected);
	return true;
}

std::string IndexSegments::write_merged(Bytes body, uint64_t entries, std::vector<std::string> supersedes)
{
	std::sort(supersedes.begin(), supersedes.end());
	supersedes.erase(std::unique(supersedes.begin(), supersedes.end()), supersedes.end());
	std::string name = hex_encode(crypto::random_bytes(32));
	bool merged = !supersedes.empty();
	store_.put(Kind::Index, name,
	           seal_object(keys_, encrypted_, merged ? ObjectKind::IndexMerge : ObjectKind::IndexSegment, name, body,
	                       level_));
	counters_.merged += merged;
	if (cache_) {
		cache_->put(CacheTable::Segment, name, body);
		for (const auto &o : supersedes)
			cache_->put(CacheTable::Segment, o, tombstone(name));
	}
	std::unordered_set<std::string> gone(supersedes.begin(), supersedes.end());
	std::erase_if(segments_, [&](const std::string &n) { return gone.count(n) != 0; });
	for (const auto &o : supersedes) {
		seg_state_.erase(o);
		superseded_.insert(o);
	}
	segments_.push_back(name);
	seg_state_[name] = SegmentState{entries, std::move(supersedes)};
	return name;
}

void IndexSegments::write_fresh()
{
	std::string name = hex_encode(crypto::random_bytes(32));
	Bytes body = index_.encode_fresh();
	store_.put(Kind::Index, name,
	           seal_object(keys_, encrypted_, ObjectKind::IndexSegment, name, body, level_));
	if (cache_)
		cache_->put(CacheTable::Segment, name, body);
	seg_state_[name] = SegmentState{index_.fresh_count(), {}};
	index_.commit_fresh();
	segments_.push_back(name);
	written_ = true;
}

// Keeps the number of live segments bounded at a cost that follows what is new: once a tier
// holds kSegmentsPerTier segments, they and the smaller ones are merged into one segment
// superseding them (which may fill the next tier: merged again then). A blob's entry is
// rewritten once per tier it climbs, about log8(blobs / 8192) times in all. Segments written
// meanwhile by other processes are merged by whoever finds their tier full next.
void IndexSegments::compact()
{
	if (store_.append_only())
		return;
	for (;;) {
		std::map<int, std::vector<std::string>> tiers;
		for (const auto &n : segments_)
			tiers[tier_of(seg_state_[n].entries)].push_back(n);
		int full = -1;
		for (const auto &[t, v] : tiers)
			if (v.size() >= kSegmentsPerTier) {
				full = t;
				break;
			}
		if (full < 0)
			return;
		std::vector<std::string> chosen;
		for (const auto &[t, v] : tiers)
			if (t <= full)
				chosen.insert(chosen.end(), v.begin(), v.end());
		Index merged;
		for (const auto &c : chosen)
			merged.load_segment(fetch(c));
		merged.finish_load();
		std::vector<std::string> sup = superseding(chosen);
		write_merged(merged.encode_all(sup), merged.size(), sup);
	}
}

} // namespace plakar
