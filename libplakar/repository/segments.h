// The blob index of a repository as the segments that hold it in the store (docs/format.md,
// "Index segments"): loading them through the local cache (a superseded segment leaves a
// tombstone there and is skipped without being read again), refreshing with what other
// processes wrote since, writing one segment of the entries added since the last, merging
// segments in tiers, and replacing segments by one merged segment (gc, repair).
//
// A merged segment supersedes others; it is sealed as such (ObjectKind::IndexMerge), so a plain
// segment, which any writer may add, never hides anything. Superseded segments stay in the
// store until gc deletes them: a crash between two steps leaves both, never a gap.
//
// Externally synchronized: the Repository calls it under its mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/id.h"
#include "repository/cache.h"
#include "repository/index.h"
#include "repository/keys.h"
#include "storage/store.h"

namespace plakar {

// Segments are merged in tiers: a segment of fewer than kTierBase entries is in tier 0, each
// next tier holds kSegmentsPerTier times more; once a tier holds kSegmentsPerTier segments,
// they and every smaller one become one.
constexpr uint64_t kTierBase = 8192;
constexpr size_t kSegmentsPerTier = 8;

class IndexSegments {
public:
	struct Counters {
		uint64_t fetched = 0; // segments read from the store (not from the cache)
		uint64_t merged = 0;  // merged segments written (tiers, gc, repair)
		uint64_t loads = 0;   // times the whole index was loaded
	};
	// cache: nullptr for none; set_cache() may give it later.
	IndexSegments(Store &store, const KeyRing &keys, bool encrypted, int compression_level, Cache *cache = nullptr)
	    : store_(store), keys_(keys), encrypted_(encrypted), level_(compression_level), cache_(cache)
	{
	}
	void set_cache(Cache *cache) { cache_ = cache; }

	// The index as loaded, plus the entries added since (Index::add, fresh until write_fresh()).
	Index &index() { return index_; }
	const Index &index() const { return index_; }

	// Loads the whole index afresh from the segments the store lists; the cache forgets the
	// segments the store no longer lists.
	void load();
	// Loads the segments that appeared since the index was loaded (other processes' pushes,
	// merges, gc). Returns true when a live one was added; *replaced tells whether one of
	// them supersedes a segment loaded before (its entries stay in memory: harmless for a
	// merge, which holds them all; a gc's rewrite drops some, and a writer then reloads).
	bool refresh(bool *replaced = nullptr);
	// The decoded body of a segment: from the cache, else from the store (authenticated, its
	// kind checked against its head, then cached). Throws Code::NotFound, Code::Corrupt.
	Bytes fetch(const std::string &name);
	// Stores one plain segment of the index's fresh entries and commits them.
	void write_fresh();
	// Whether write_fresh() ran since the last call.
	bool take_written() { return std::exchange(written_, false); }
	// Writes next's fresh entries as one merged segment superseding old_segments, then loads
	// the index afresh (the new segment and what others wrote meanwhile).
	void replace(const Index &next, const std::vector<std::string> &old_segments);
	// Replaces the given live segments that name a pack keep() refuses by one merged segment
	// holding their entries whose pack keep() accepts; the others are left alone. Returns
	// false when none of them names such a pack (nothing written).
	bool rewrite(const std::function<bool(const Id &pack)> &keep, const std::vector<std::string> &old_segments);
	// Merges segments in tiers while a tier holds kSegmentsPerTier or more. Nothing on an
	// append-only store (a merged segment is refused from a token that may not delete).
	void compact();

	// The live segments: loaded or written, not superseded.
	const std::vector<std::string> &live() const { return segments_; }
	// The same with their entry counts.
	std::vector<std::pair<std::string, uint64_t>> live_entries() const;
	// Segments the store listed at the last load that a live one supersedes (gc deletes them).
	const std::set<std::string> &superseded() const { return superseded_; }
	const Counters &counters() const { return counters_; }

private:
	struct SegmentState {
		uint64_t entries = 0;
		std::vector<std::string> supersedes;
	};
	struct Staged {
		std::vector<std::string> live, superseded;
		std::unordered_map<std::string, SegmentState> state; // of the live ones
	};
	// Loads the named segments into `into` (finish_load() is the caller's), leaving out those a
	// loaded one (or one in `named`) supersedes. A segment the store no longer has, or that
	// does not open, is an error only when it is not superseded.
	Staged stage(Index &into, const std::vector<std::string> &names, const std::unordered_set<std::string> &listed,
	             const std::unordered_set<std::string> &named);
	// Seals and stores a segment superseding `supersedes` (a merged one when not empty);
	// returns its name. The live and superseded sets follow.
	std::string write_merged(Bytes body, uint64_t entries, std::vector<std::string> supersedes);
	// old_segments and the segments they supersede that the store still lists: a merged
	// segment names them again, in case one of old_segments is deleted first.
	std::vector<std::string> superseding(const std::vector<std::string> &old_segments);

	Store &store_;
	const KeyRing &keys_;
	const bool encrypted_;
	const int level_;
	Cache *cache_;
	Index index_;
	std::vector<std::string> segments_;                       // live: loaded or written
	std::unordered_map<std::string, SegmentState> seg_state_; // of segments_
	std::set<std::string> superseded_;
	bool written_ = false;
	Counters counters_;
};

} // namespace plakar
