// The index table: a sorted, block-sealed copy of the whole blob index kept in the local cache
// (index.tbl next to cache.db), so that reading one file or one directory looks up a few blob
// locations without loading the index. It is what LevelDB calls a table: fixed-size entries in
// sorted blocks, and a directory holding the first id of every block.
//
// Layout (all integers little-endian; docs/format.md, "The index table"):
//   block*      sealed runs of up to kTableBlock entries, 50 bytes each, sorted by id
//   directory   sealed: version, covered segment names, pack ids, and per block its offset,
//               sealed length, entry count and first id
//   trailer     36 bytes: directory offset u64, directory length u32, generation[16],
//               "PLKT", version u32
// Every sealed part is AES-256-GCM under a key derived from the cache key, with the
// generation, the part's kind and its number as associated data: blocks cannot be moved,
// swapped or mixed between two tables. A table that does not verify is ignored.
//
// The table is only a hint: the caller reads the blob at the location found, authenticated
// there against its id, and falls back to the real index when the table is stale (a pack
// repacked away, a blob newer than the table). Thread-safe for lookups (pread, no shared
// state besides the immutable directory).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/id.h"
#include "crypto/crypto.h"
#include "repository/index.h"

namespace plakar {

class IndexTable {
public:
	static constexpr const char *kFile = "index.tbl";

	// Writes the saved entries of index as the table at dir/index.tbl (temporary file, then
	// rename). segments: the index segments those entries come from. Errors are swallowed:
	// the table is a cache. Returns true when written.
	static bool write(const std::string &dir, const crypto::SecureBytes &key, const std::vector<std::string> &segments,
	                  const Index &index);
	// Opens the table in dir; nullptr when there is none or it does not verify.
	static std::unique_ptr<IndexTable> open(const std::string &dir, const crypto::SecureBytes &key);
	~IndexTable();

	struct Hit {
		Id pack;
		BlobRecord rec;
	};
	// The location of a blob, or nullopt when the table does not have it (or a block does not
	// verify, in which case the table is of no further use: broken() turns true).
	std::optional<Hit> find(const Id &id) const;
	// The segments the table was built from.
	const std::vector<std::string> &segments() const { return segments_; }
	size_t blocks() const { return blocks_.size(); }
	bool broken() const { return broken_.load(); }
	// Called when a location found here proved wrong: the table is rewritten at the next chance.
	void mark_broken() const { broken_ = true; }

private:
	struct Block {
		uint64_t offset;
		uint32_t length;
		uint32_t count;
		Id first;
	};
	IndexTable() = default;

	int fd_ = -1;
	Bytes generation_;
	crypto::SecureBytes key_;
	std::vector<std::string> segments_;
	std::vector<Id> packs_;
	std::vector<Block> blocks_;
	mutable std::atomic<bool> broken_{false};
};

} // namespace plakar
