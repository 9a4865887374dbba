// zstd compression of blobs. compress() returns false when the result would not be smaller
// than the input, in which case the blob is stored raw (incompressible data costs nothing).
// Thread-safe: each thread uses its own compression context.
#pragma once

#include "base/bytes.h"

namespace plakar::compression {

// Appends the compressed form of in to out and returns true, or leaves out untouched and
// returns false when compression does not shrink the input.
bool compress(ByteView in, int level, Bytes &out);
// Compresses in into out (room for in.size() - 1 bytes) and returns the compressed length, or 0
// when compression does not shrink the input.
size_t compress_into(ByteView in, int level, uint8_t *out);
// Decompresses exactly raw_len bytes; throws Code::Corrupt on malformed input or size mismatch.
Bytes decompress(ByteView in, size_t raw_len);
// decompress into out (raw_len bytes).
void decompress_into(ByteView in, uint8_t *out, size_t raw_len);
// Decompresses a frame that records its own size, refusing sizes above limit (Code::Corrupt).
Bytes decompress_frame(ByteView in, size_t limit);

} // namespace plakar::compression
