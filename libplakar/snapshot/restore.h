// Reading a snapshot back: file content (cat) and restore to a directory (pull).
#pragma once

#include <string>
#include <vector>

#include "snapshot/progress.h"
#include "snapshot/snapshot.h"

namespace plakar {

// Sequential reader of one file's content. Every byte it returns was authenticated.
class FileReader {
public:
	FileReader(Repository &repo, const Entry &file);
	// Reads up to len bytes; returns 0 at the end.
	size_t read(uint8_t *buf, size_t len);
	uint64_t size() const { return size_; }
	// Moves to offset (<= size, else Code::Invalid); the chunk holding it is read on demand.
	void seek(uint64_t offset);

private:
	Repository &repo_;
	std::vector<ChunkRef> chunks_;
	std::vector<uint64_t> starts_; // offset of each chunk in the file
	size_t next_ = 0;
	Bytes cur_;
	size_t pos_ = 0;
	uint64_t size_ = 0;
};

struct PullOptions {
	std::string to; // target directory; "" = current directory
	bool rebase = false;
	ProgressFn progress;
};

// Restores path of the snapshot. Throws Code::Corrupt when some content failed authentication
// (after restoring everything else), Code::Partial for other per-item failures, and fails
// at once when the target directory cannot be created.
void pull(Repository &repo, const SnapshotHeader &h, const std::string &path, const PullOptions &opts);

} // namespace plakar
