// Repository, the index lifecycle: loading the segments (cache, tombstones, staging), refreshing,
// writing a segment per flush, merging tiers, rewriting for gc and repair, the cached index table.
#include "repository/repository.h"

#include "base/pool.h"
#include "base/system.h"

#include <algorithm>
#include <utility>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "base/error.h"
#include "compression/zstd.h"
#include "agent/agent.h"
#include "repository/repository_parts.h"

namespace plakar {

void Repository::load_index()
{
	// Never retried: a segment is deleted only by gc, once it is superseded and every process
	// that may have listed it before its successor existed has ended (docs/format.md).
	std::vector<std::string> names = store_->list(Kind::Index);
	std::unordered_set<std::string> listed(names.begin(), names.end());
	Index fresh;
	Staged st = stage_segments_locked(fresh, names, listed, {});
	fresh.finish_load();
	index_ = std::move(fresh);
	stats_.index_loads++;
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

Repository::Staged Repository::stage_segments_locked(Index &into, const std::vector<std::string> &names,
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
			head = into.load_segment(cached ? *cached : fetch_segment(n), &run);
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

// The decoded body of an index segment: from the cache, else from the store (then cached).
Bytes Repository::fetch_segment(const std::string &name)
{
	bool marked = false;
	if (cache_)
		if (auto hit = cache_->get(CacheTable::Segment, name)) {
			if (!tombstone_of(*hit))
				return std::move(*hit);
			marked = true; // superseded: read from the store, the marker stays
		}
	Bytes raw = store_->get(Kind::Index, name);
	// A merged segment is sealed as such, and its body says so: the kind is authenticated, so
	// a plain segment (which any writer may add) never supersedes anything.
	bool merged = sealed_kind(raw) == uint8_t(ObjectKind::IndexMerge);
	Bytes body = open_object(keys_, cfg_.encrypted, merged ? ObjectKind::IndexMerge : ObjectKind::IndexSegment, name,
	                         raw);
	if (Index::read_head(body).supersedes.empty() == merged)
		fail(Code::Corrupt, "index segment " + name + ": malformed (" +
		                        (merged ? "a merged segment supersedes nothing" : "a plain segment supersedes others") +
		                        ")");
	stats_.segments_fetched++;
	if (cache_ && !marked)
		cache_->put(CacheTable::Segment, name, body);
	return body;
}

// Loads the index segments that appeared since the index was loaded (other processes'
// pushes, merges, gc). Returns true when there were any.
bool Repository::refresh_index_locked(bool *replaced)
{
	if (replaced)
		*replaced = false;
	std::vector<std::string> names = store_->list(Kind::Index);
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
	Staged st = stage_segments_locked(index_, fresh, listed, named);
	index_.finish_load();
	// A live segment superseded by a new one: its entries stay in memory (harmless for a
	// merge, which holds them all; a gc's rewrite drops some: a writer reloads, begin_write).
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

std::vector<std::pair<std::string, uint64_t>> Repository::live_segments() const
{
	std::lock_guard lk(mu_);
	std::vector<std::pair<std::string, uint64_t>> out;
	for (const auto &n : segments_) {
		auto it = seg_state_.find(n);
		out.emplace_back(n, it == seg_state_.end() ? 0 : it->second.entries);
	}
	return out;
}

void Repository::read_segment(const std::string &name,
                              const std::function<void(const Id &pack, const BlobRecord &rec)> &fn)
{
	Bytes body;
	{
		std::lock_guard lk(mu_);
		body = fetch_segment(name);
	}
	Index one;
	one.load_segment(body);
	one.finish_load();
	one.for_each_saved([&](const Id &id, const BlobLoc &loc) { fn(one.pack_name(loc.pack), one.record(id, loc)); });
}

void Repository::replace_index(const std::map<Id, std::vector<BlobRecord>> &by_pack,
                               const std::vector<std::string> &old_segments)
{
	std::unique_lock lk(mu_);
	settle_uploads_locked(lk);
	if (index_.has_fresh() || data_pack_ || meta_pack_ || !retired_.empty())
		fail(Code::Error, "replace_index with unsaved blobs");
	Index next;
	for (const auto &[pack, recs] : by_pack)
		for (const auto &r : recs)
			next.add(pack, r);
	replace_segments_locked(next, old_segments);
}

// Writes next's fresh entries as one segment superseding old_segments (they stay until gc
// deletes them: a crash leaves both, never a gap), and reloads what the store holds now: the
// new segment and any other process wrote meanwhile.
void Repository::replace_segments_locked(const Index &next, const std::vector<std::string> &old_segments)
{
	std::vector<std::string> sup = old_segments;
	for (const auto &o : old_segments)
		if (auto it = seg_state_.find(o); it != seg_state_.end())
			for (const auto &t : it->second.supersedes)
				if (superseded_.count(t))
					sup.push_back(t); // still listed: named again, in case o goes first
	write_merged_locked(next.encode_fresh(sup), next.fresh_count(), sup);
	load_index();
	unindexed_.clear();
	scanned_packs_.clear();
	sync_table_locked();
	if (cache_)
		cache_->flush();
}

std::string Repository::write_merged_locked(Bytes body, uint64_t entries, std::vector<std::string> supersedes)
{
	std::sort(supersedes.begin(), supersedes.end());
	supersedes.erase(std::unique(supersedes.begin(), supersedes.end()), supersedes.end());
	std::string name = hex_encode(crypto::random_bytes(32));
	bool merged = !supersedes.empty();
	store_->put(Kind::Index, name,
	            seal_object(keys_, cfg_.encrypted, merged ? ObjectKind::IndexMerge : ObjectKind::IndexSegment, name,
	                        body, cfg_.compression_level));
	stats_.segments_merged += merged;
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

void Repository::index_pack(const Id &pack, const std::vector<BlobRecord> &records)
{
	std::lock_guard lk(mu_);
	ensure_index_locked();
	for (const auto &r : records)
		index_.add(pack, r);
}

std::vector<std::string> Repository::reload_index()
{
	std::unique_lock lk(mu_);
	settle_uploads_locked(lk);
	if (index_.has_fresh() || data_pack_ || meta_pack_ || !retired_.empty())
		fail(Code::Error, "reload_index with unsaved blobs");
	load_index();
	index_loaded_ = true;
	unindexed_.clear();
	scanned_packs_.clear();
	return segments_;
}

void Repository::rewrite_index(const std::function<bool(const Id &pack)> &keep,
                               const std::vector<std::string> &old_segments)
{
	std::unique_lock lk(mu_);
	settle_uploads_locked(lk);
	if (index_.has_fresh())
		fail(Code::Error, "rewrite_index with unsaved blobs");
	// Only the segments naming a pack that goes are rewritten (the cost follows what gc
	// frees, not the size of the index). Segment by segment: a blob indexed twice (a
	// repacked copy) keeps a location in a kept pack, whichever segment names it first.
	Index next;
	std::vector<std::string> affected;
	for (const auto &seg : old_segments) {
		Index one;
		one.load_segment(fetch_segment(seg));
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
		return;
	replace_segments_locked(next, affected);
}

void Repository::compact_index()
{
	std::lock_guard lk(mu_);
	ensure_index_locked();
	maybe_compact();
	sync_table_locked();
	if (cache_)
		cache_->flush();
}

void Repository::scan_unindexed_locked()
{
	for (const auto &name : store_->list(Kind::Pack)) {
		Id pack;
		try {
			pack = Id::from_hex(name);
		} catch (const Error &) {
			continue;
		}
		if (packs_known_)
			present_packs_.insert(pack);
		if (index_.knows_pack(pack) || !scanned_packs_.insert(pack).second)
			continue;
		try {
			// Not pack_key(): mu_ is held here.
			PackKey key(keys_, cfg_.encrypted, pack, store_->get_range(Kind::Pack, name, 0, kPackHeader));
			for (const auto &rec : toc_of(key, pack, store_->size(Kind::Pack, name)))
				unindexed_.try_emplace(rec.id, BlobPlace{pack, rec, false});
		} catch (const Error &e) {
			// A pack being written or removed meanwhile, or a damaged one: check reports those.
			if (!e.is_not_found() && e.code() != Code::Corrupt)
				throw;
		}
	}
}

void Repository::for_each_indexed(const std::function<void(const Id &pack, const BlobRecord &rec)> &fn)
{
	std::lock_guard lk(mu_);
	ensure_index_locked();
	index_.for_each_saved([&](const Id &id, const BlobLoc &loc) { fn(index_.pack_name(loc.pack), index_.record(id, loc)); });
}

void Repository::sync_table_locked()
{
	if (!cache_ || !index_loaded_ || index_.has_fresh())
		return;
	if (!table_opened_) {
		table_ = IndexTable::open(cache_->dir(), cache_->subkey("index-table"));
		table_opened_ = true;
	}
	if (!table_ && segments_.empty())
		return; // nothing to locate yet
	if (table_ && !table_->broken()) {
		std::vector<std::string> a = table_->segments(), b = segments_;
		std::sort(a.begin(), a.end());
		std::sort(b.begin(), b.end());
		if (a == b)
			return;
	}
	auto key = cache_->subkey("index-table");
	if (IndexTable::write(cache_->dir(), key, segments_, index_)) {
		stats_.tables_written++;
		table_ = IndexTable::open(cache_->dir(), key);
	}
}

// One index segment for the blobs indexed since the last one (all in stored packs).
void Repository::write_segment_locked()
{
	std::string name = hex_encode(crypto::random_bytes(32));
	Bytes body = index_.encode_fresh();
	store_->put(Kind::Index, name,
	            seal_object(keys_, cfg_.encrypted, ObjectKind::IndexSegment, name, body, cfg_.compression_level));
	if (cache_)
		cache_->put(CacheTable::Segment, name, body);
	seg_state_[name] = SegmentState{index_.fresh_count(), {}};
	index_.commit_fresh();
	segments_.push_back(name);
	wrote_segments_ = true;
}

namespace {
int tier_of(uint64_t entries)
{
	int t = 0;
	for (uint64_t top = kTierBase; entries >= top && t < 30; top *= kSegmentsPerTier)
		t++;
	return t;
}
} // namespace

// Keeps the number of live index segments bounded at a cost that follows what is new: once a
// tier holds kSegmentsPerTier segments, they and the smaller ones are merged into one segment
// superseding them (which may fill the next tier: merged again then). A blob's entry is
// rewritten once per tier it climbs, about log8(blobs / 8192) times in all. Superseded
// segments stay until gc deletes them; segments written meanwhile by other processes are
// merged by whoever finds their tier full next.
void Repository::maybe_compact()
{
	if (store_->append_only())
		return; // a merged segment is refused from a token that may not delete
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
		std::vector<std::string> chosen, sup;
		for (const auto &[t, v] : tiers)
			if (t <= full)
				chosen.insert(chosen.end(), v.begin(), v.end());
		Index merged;
		for (const auto &c : chosen) {
			merged.load_segment(fetch_segment(c));
			sup.push_back(c);
			for (const auto &o : seg_state_[c].supersedes)
				if (superseded_.count(o))
					sup.push_back(o); // still listed: named again, in case c goes first
		}
		merged.finish_load();
		write_merged_locked(merged.encode_all(sup), merged.size(), sup);
	}
}

} // namespace plakar
