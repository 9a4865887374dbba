// Reading one file of a snapshot (cat, plakar_file_*, archives): its content, chunk by chunk,
// each chunk authenticated and checked against its id where it is read (Repository::get_blob).
#pragma once

#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "snapshot/snapshot.h"

namespace plakar {

class Repository;

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

} // namespace plakar
