// Internal to the parts of Repository (repository*.cc): the limits they share and the cache's
// segment tombstones. Not part of the engine's interface.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "base/bytes.h"

namespace plakar {

// Blobs located through the index table before the index is loaded instead.
inline constexpr uint64_t kTableLookupsMax = 4096;
inline constexpr size_t kSegmentEntries = 262144; // about 13 MB encoded
// A pack is also closed at this many blobs: what a writer tracks per blob of its open and
// uploading packs stays bounded when blobs are tiny (a tree of small files).
inline constexpr size_t kPackMaxBlobs = 32768;
inline constexpr size_t kKeyCacheMax = 4096;

// A superseded segment's place in the cache: a marker naming the segment that supersedes it, so
// that later loads skip it without reading it while that one is listed. Real bodies start with
// their version (1 or 2), never 0.
inline Bytes tombstone(const std::string &superseder)
{
	Bytes b(1 + superseder.size(), 0);
	std::copy(superseder.begin(), superseder.end(), b.begin() + 1);
	return b;
}
inline std::optional<std::string> tombstone_of(ByteView body)
{
	if (body.empty() || body[0] != 0)
		return std::nullopt;
	return std::string(body.begin() + 1, body.end());
}

} // namespace plakar
