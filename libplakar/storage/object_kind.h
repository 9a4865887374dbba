// The kinds of sealed objects (docs/format.md, "Index segments and snapshot headers"): the
// envelope's sixth byte, authenticated with the object, readable without its key. A store's
// gatekeeper (net/gate.h) reads it to tell what a token may put; the repository seals and
// opens the objects (repository/sealed.h).
#pragma once

#include <cstdint>

#include "base/bytes.h"

namespace plakar {

// IndexMerge: an index segment that supersedes others (docs/format.md, "Index segments"); only a
// writer that may delete writes one (the server refuses it from other tokens).
enum class ObjectKind : uint8_t {
	IndexSegment = 1,
	SnapshotHeader = 2,
	Lock = 3,
	GcPlan = 4,
	LockWatch = 5,
	IndexMerge = 6,
};
// The kind byte of a sealed object, read without opening it (0 when it is too short).
inline uint8_t sealed_kind(ByteView sealed) { return sealed.size() > 5 ? sealed[5] : 0; }

} // namespace plakar
