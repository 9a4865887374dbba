// The blob index: blob id -> (pack, offset, length, type). docs/format.md, "Index segments".
//
// In memory the index is one sorted deque of 52-byte entries (binary search), plus a hash
// table of at most kFreshMax blobs added since the last save; past that they are merged into
// the deque, marked fresh. So a blob costs under 64 bytes,
// however many a push adds. On disk it is a set of sealed segments;
// the repository compacts them into one when there are too many.
// Not thread-safe: the Repository serializes access.
#pragma once

#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/bytes.h"
#include "base/id.h"
#include "repository/pack.h"

namespace plakar {

struct BlobLoc {
	uint32_t pack;    // number in the index's pack table
	uint32_t offset;
	uint32_t length;
	uint32_t raw_len;
	BlobType type;
	uint8_t flags;
	uint8_t fresh = 0; // in memory only: added in this session, not yet in a saved segment
};

// What a segment body says before its entries: the segments it supersedes (a merged segment,
// body version 2; none in version 1) and how many entries it holds.
struct SegmentHead {
	std::vector<std::string> supersedes;
	uint64_t entries = 0;
};

class Index {
public:
	std::optional<BlobLoc> find(const Id &id) const;
	// Every known location of a blob (usually one).
	std::vector<BlobLoc> find_all(const Id &id) const;
	bool contains(const Id &id) const { return find(id).has_value(); }
	bool knows_pack(const Id &pack) const { return pack_no_.count(pack) != 0; }
	const Id &pack_name(uint32_t n) const { return packs_[n]; }
	uint32_t pack_number(const Id &pack);
	BlobRecord record(const Id &id, const BlobLoc &loc) const
	{
		return BlobRecord{id, loc.type, loc.flags, loc.offset, loc.length, loc.raw_len};
	}

	// Adds blobs written in this session (kept apart until save).
	void add(const Id &pack, const BlobRecord &rec);
	bool has_fresh() const { return !fresh_.empty() || fresh_in_sorted_ > 0; }
	size_t fresh_count() const { return fresh_.size() + fresh_in_sorted_; }
	struct Summary {
		uint64_t blobs[4] = {};       // by BlobType (index 1..3)
		uint64_t stored_bytes[4] = {}; // sealed bytes in packs
		uint64_t raw_bytes[4] = {};    // plaintext bytes
		uint64_t packs = 0;            // packs holding at least one indexed blob
	};
	Summary summary() const;
	size_t size() const { return sorted_.size() + fresh_.size(); }
	// Bytes of memory held for the entries (vector capacity, hash table nodes and buckets).
	size_t memory() const
	{
		// A deque: blocks of 512 bytes (whole entries) plus one pointer per block.
		size_t per_block = std::max<size_t>(1, 512 / sizeof(Entry));
		size_t blocks = (sorted_.size() + per_block - 1) / per_block + 2;
		return blocks * (per_block * sizeof(Entry) + sizeof(void *)) +
		       fresh_.size() * (sizeof(Entry) + 2 * sizeof(void *)) + fresh_.bucket_count() * sizeof(void *);
	}
	size_t pack_count() const { return packs_.size(); }
	// Visits the saved entries in id order (not the fresh ones).
	template <class F> void for_each_saved(F &&f) const
	{
		for (const auto &e : sorted_)
			f(e.id, e.loc);
	}

	// Segment bodies (the plaintext inside a sealed index segment). With supersedes (not
	// empty), a version 2 body naming the segments the entries replace.
	Bytes encode_fresh(const std::vector<std::string> &supersedes = {}) const;
	Bytes encode_all(const std::vector<std::string> &supersedes = {}) const;
	// Merges the fresh blobs into the sorted set (after they were saved).
	void commit_fresh();
	// Loading: add segments, then finish_load() once. A segment loaded since the last
	// finish_load() can be taken back (unload: one found superseded by another). A body that is
	// refused (Code::Corrupt, Code::Version) adds nothing.
	SegmentHead load_segment(ByteView body, size_t *run = nullptr);
	void unload(size_t run);
	void finish_load();
	// The head alone (the entries are not decoded); throws like load_segment.
	static SegmentHead read_head(ByteView body);

private:
	struct Entry {
		Id id;
		BlobLoc loc;
	};
	template <class C> Bytes encode(const C &entries, const std::vector<std::string> &supersedes) const;
	// Merges entries into sorted_ (entries already there stay first among equal ids).
	void merge_sorted(std::deque<Entry> more);
	// Moves the hash table's entries into sorted_, marked fresh.
	void spill_fresh();
	static constexpr size_t kFreshMax = 65536;
	size_t fresh_in_sorted_ = 0;
	std::vector<Id> packs_;
	std::unordered_map<Id, uint32_t, IdHash> pack_no_;
	// A deque, not a vector: it grows without copying (no transient second copy of the index)
	// and still has random access for the binary search.
	std::deque<Entry> sorted_;
	// Per segment loaded since finish_load(): its packs and entries (numbered into its packs):
	// the index's pack table learns the packs of the segments kept only.
	struct Run {
		std::vector<Id> packs;
		std::deque<Entry> entries;
	};
	std::vector<Run> loading_;
	std::unordered_map<Id, BlobLoc, IdHash> fresh_;
};

} // namespace plakar
