// Restoring a snapshot to a directory (pull). One file's content alone: snapshot/file_reader.h.
#pragma once

#include <string>
#include <vector>

#include "base/progress.h"
#include "snapshot/snapshot.h"

namespace plakar {

// What pull does where the target already has an item at a path the snapshot restores.
// Always is the default: a restore gives back the snapshot's bytes, and an mtime and size that
// match (IfChanged) do not prove the content does.
enum class Overwrite {
	Always,    // replace it (a file is written aside, then renamed over it)
	IfChanged, // replace it unless it looks the same: type, and size and mtime (file), target (symlink)
	IfNewer,   // replace it only when the snapshot's mtime is newer
	Never,     // keep it (a directory is still merged into, its metadata left alone)
};

struct PullOptions {
	std::string to; // target directory; "" = current directory
	bool rebase = false;
	Overwrite overwrite = Overwrite::Always;
	// A non-empty directory where the snapshot has a non-directory is removed only with force
	// (else that item fails); an empty one is always replaced.
	bool force = false;
	// Writes nothing: emits Create, Replace, Remove and Skip events for what would be done.
	bool dry_run = false;
	// Reads each restored file back and checks every chunk against its id (and each symlink).
	bool verify = false;
	ProgressFn progress;
};

// Restores path of the snapshot. Throws Code::Corrupt when some content failed authentication
// (after restoring everything else), Code::Partial for other per-item failures, and fails
// at once when the target directory or the selected item itself cannot be created.
// Below the target directory, nothing is reached by a path string: every item is made
// relative to its open parent directory without following links, so no snapshot (forged or
// not) and no concurrent writer of the target can make the restore write elsewhere.
void pull(Repository &repo, const SnapshotHeader &h, const std::string &path, const PullOptions &opts);

} // namespace plakar
