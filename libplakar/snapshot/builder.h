// Push: walks directories and files, stores their content and metadata, and commits a snapshot.
#pragma once

#include <string>
#include <vector>

#include "base/progress.h"
#include "snapshot/snapshot.h"

namespace plakar {

struct PushOptions {
	std::vector<std::string> tags;
	std::string command_line;
	ProgressFn progress;
	// Absolute paths never descended into (the repository itself, when it sits in a pushed tree).
	std::vector<std::string> exclude;
	// Compare with the latest snapshot of the same paths from this host, and do not read
	// files that did not change since (size, mtime, ctime, inode and mode all equal).
	bool use_parent = true;
};

struct PushStats {
	uint64_t unchanged = 0; // files taken from the parent snapshot without being read
};

// Backs up paths (made absolute against the current directory). Items that cannot be read
// are recorded in the snapshot's errors and reported through progress; the snapshot is
// committed anyway. A path that does not exist throws Code::NotFound before anything is
// written. On cancellation or failure, what was stored so far is indexed (so the next push
// reuses it) and no snapshot is committed.
SnapshotHeader push(Repository &repo, const std::vector<std::string> &paths, const PushOptions &opts,
                    PushStats *stats = nullptr);

} // namespace plakar
