// Comparing two snapshots (or two subtrees): what was added, removed or changed.
#pragma once

#include <functional>
#include <string>

#include "snapshot/snapshot.h"

namespace plakar {

enum class ChangeKind { Added = 1, Removed = 2, Modified = 3 };

// What differs in a modified entry (bits).
enum ChangeWhat : unsigned {
	kChangeType = 1,
	kChangeContent = 2, // file content or symlink target
	kChangeMode = 4,
	kChangeOwner = 8,
	kChangeMtime = 16,
	kChangeXattrs = 32,
	kChangeSize = 64,
};

struct Change {
	ChangeKind kind;
	std::string path;   // in the second tree's naming (the first's for removals)
	const Entry *before; // nullptr when added
	const Entry *after;  // nullptr when removed
	unsigned what = 0;   // for Modified
};

// Walks both trees in name order and calls fn for every difference, in path order. A
// directory that exists on one side only is reported once (not its content). Directories
// whose tree ids are equal are skipped without being read: the cost follows what changed,
// not the size of the snapshots.
void diff(Repository &repo, const Entry &a, const Entry &b, const std::string &path,
          const std::function<void(const Change &)> &fn);

} // namespace plakar
