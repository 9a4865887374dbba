// Checking a repository (docs/cli.md, "check"; docs/format.md, "What check proves").
//
// Three depths:
//  - snapshots, full: every directory node, chunk list and chunk a snapshot references is read
//    from the store (never from the local cache), authenticated, decompressed and its id
//    recomputed: a clean check proves a full restore of the snapshot would succeed;
//  - snapshots, fast: each referenced blob is looked up in the index and its pack must exist
//    and be long enough (one size query per pack); no chunk is read (directory nodes may come
//    from the cache);
//  - repository: every snapshot header and tree is read, the index is compared with every
//    pack's own table of contents, and the blobs nobody references are counted (garbage that
//    gc reclaims, not an error). With read_data, every pack is read whole and each of its blobs
//    authenticated.
// A problem names the object (snapshot, path, blob, pack or index) and never stops the check.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/id.h"
#include "snapshot/snapshot.h"

namespace plakar {

struct CheckOptions {
	std::vector<std::string> snapshots; // ids or prefixes; empty = check the repository
	bool fast = false;                  // snapshots: existence only
	bool read_data = false;             // repository: read and authenticate every pack
	bool refcounts = false;             // repository: report per-blob reference counts
	// Called now and then with a short description of the stage and counters; returning false
	// cancels (Code::Canceled).
	std::function<bool(const std::string &stage, uint64_t done, uint64_t total)> progress;
};

struct CheckProblem {
	Code code;          // NotFound (missing), Corrupt (damaged, inconsistent), Version, Error
	std::string object; // "snapshot <id>", "<id>:/path", "blob <hex>", "pack <hex>", "index"
	std::string message;
};

struct CheckReport {
	uint64_t snapshots = 0;      // headers checked
	uint64_t entries = 0;        // files, directories and others walked
	uint64_t blobs = 0;          // distinct blobs verified (read) or found (fast)
	uint64_t bytes = 0;          // plaintext bytes verified
	uint64_t packs = 0;          // packs examined (repository check)
	uint64_t unreferenced_blobs = 0;  // indexed or packed, referenced by no snapshot
	uint64_t unreferenced_bytes = 0;  // their sealed size
	uint64_t unindexed_packs = 0;     // packs the index does not name (an interrupted push's)
	std::vector<CheckProblem> problems;
	// With refcounts: every referenced blob and the number of snapshots referencing it,
	// sorted by id.
	std::vector<std::pair<Id, uint32_t>> refcounts;
	bool ok() const { return problems.empty(); }
};

CheckReport check(Repository &repo, const CheckOptions &opts);

} // namespace plakar
