// FastCDC content-defined chunking (normalized chunking, level 2), with a keyed gear table.
//
// The gear table is derived from a repository secret so chunk boundaries do not reveal
// content to someone who sees only chunk sizes. A Chunker is immutable after construction and
// may be shared by several threads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/bytes.h"

namespace plakar {

struct ChunkParams {
	uint32_t min = 512 * 1024;
	uint32_t avg = 1024 * 1024;
	uint32_t max = 8 * 1024 * 1024;
	// Throws Code::Invalid unless 64 <= min < avg < max <= 64 MiB and avg is a power of two.
	void validate() const;
};

class Chunker {
public:
	// seed: 2048 secret bytes that become the 256 gear values.
	Chunker(const ChunkParams &params, ByteView seed);

	// Returns the length of the next chunk at the start of data[0..n). When n < max and the
	// input is not at its end, the caller must supply more data first (returns 0 then).
	size_t cut(const uint8_t *data, size_t n, bool eof) const;
	const ChunkParams &params() const { return p_; }

private:
	ChunkParams p_;
	uint64_t mask_s_, mask_l_;
	std::array<uint64_t, 256> gear_;
};

} // namespace plakar
