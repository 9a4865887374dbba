// Sealed objects: index segments, snapshot headers and locks (docs/format.md, "Sealed objects").
//
// Each object gets its own key, derived from the object root key and a random 32-byte salt
// stored in the object, so one fixed nonce per key is safe. The header and the object's store
// name are authenticated as associated data: a renamed or swapped object fails to open.
#pragma once

#include <string>

#include "base/bytes.h"
#include "repository/keys.h"
#include "storage/object_kind.h"

namespace plakar {


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
