#include "snapshot/file_reader.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "repository/repository.h"

namespace plakar {

FileReader::FileReader(Repository &repo, const Entry &file) : repo_(repo)
{
	if (file.type != EntryType::File)
		fail(Code::Invalid, file.name + ": not a regular file");
	if (!file.error.empty())
		fail(Code::NotFound, file.name + ": content was not backed up (" + file.error + ")");
	chunks_ = file_chunks(repo, file);
	starts_.reserve(chunks_.size());
	for (const auto &c : chunks_) {
		starts_.push_back(size_);
		size_ += c.len;
	}
}

void FileReader::seek(uint64_t offset)
{
	if (offset > size_)
		fail(Code::Invalid, "seek past the end of the file");
	// The chunk holding offset: the last one starting at or before it.
	size_t i = size_t(std::upper_bound(starts_.begin(), starts_.end(), offset) - starts_.begin());
	if (offset == size_ || i == 0) {
		next_ = offset == size_ ? chunks_.size() : 0;
		cur_.clear();
		pos_ = 0;
		return;
	}
	i--;
	// Stay in the current chunk when possible; otherwise load it on the next read.
	if (next_ == i + 1 && !cur_.empty()) {
		pos_ = size_t(offset - starts_[i]);
		return;
	}
	Bytes b = repo_.get_blob(chunks_[i].id, BlobType::Chunk);
	if (b.size() != chunks_[i].len)
		fail(Code::Corrupt, "chunk " + chunks_[i].id.hex().substr(0, 16) + " has the wrong size");
	cur_ = std::move(b);
	next_ = i + 1;
	pos_ = size_t(offset - starts_[i]);
}

size_t FileReader::read(uint8_t *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		if (pos_ == cur_.size()) {
			if (next_ == chunks_.size())
				break;
			const ChunkRef &c = chunks_[next_];
			Bytes b = repo_.get_blob(c.id, BlobType::Chunk);
			if (b.size() != c.len)
				fail(Code::Corrupt, "chunk " + c.id.hex().substr(0, 16) + " has the wrong size");
			cur_ = std::move(b);
			pos_ = 0;
			next_++;
		}
		size_t n = std::min(len - done, cur_.size() - pos_);
		std::memcpy(buf + done, cur_.data() + pos_, n);
		pos_ += n;
		done += n;
	}
	return done;
}

} // namespace plakar
