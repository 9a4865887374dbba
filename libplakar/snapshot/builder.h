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
	// Absolute paths never descended into. The store's own files (Store::local_paths) are
	// added by push().
	std::vector<std::string> exclude;
	// Glob patterns (fnmatch) of items left out: without '/', matched against each name; with
	// one, against the absolute path ('*' does not cross '/'). Pushed paths are never matched.
	std::vector<std::string> exclude_patterns;
	// Compare with a parent snapshot, and do not read files that did not change since (size,
	// mtime, ctime, inode and mode all equal): parent names it (id or unique prefix), else the
	// latest snapshot of the same paths from this host is taken.
	bool use_parent = true;
	std::string parent;
	// The walker's read-ahead (with a CPU budget of 2 or more) leaves a directory of more than
	// this many names to the walker, with its subtree. 0: the default (32,768). For tests.
	size_t read_ahead_max_names = 0;
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
