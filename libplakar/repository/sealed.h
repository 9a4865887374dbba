// Sealed objects: index segments, snapshot headers and locks (docs/format.md, "Sealed objects").
//
// Each object gets its own key, derived from the object root key and a random 32-byte salt
// stored in the object, so one fixed nonce per key is safe. The header and the object's store
// name are authenticated as associated data: a renamed or swapped object fails to open.
#pragma once

#include <string>

#include "base/bytes.h"
#include "repository/keys.h"

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

// Compresses (when it helps) and seals body under the given name.
Bytes seal_object(const KeyRing &keys, bool encrypted, ObjectKind kind, const std::string &name, ByteView body,
                  int level);
// Authenticates and opens; throws Code::Corrupt (naming what) when anything does not verify,
// Code::Version on an unknown version.
Bytes open_object(const KeyRing &keys, bool encrypted, ObjectKind kind, const std::string &name, ByteView sealed);
// The largest plaintext (decompressed) body open_object accepts for a kind.
size_t max_plaintext(ObjectKind kind);

// Blob and object integrity in plaintext repositories: a 16-byte truncated HMAC-SHA-256.
Bytes plain_tag(ByteView key, ByteView aad, ByteView body);

} // namespace plakar
