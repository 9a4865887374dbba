// Packfiles (docs/format.md, "Packfiles"): blobs grouped into one stored object, each blob
// sealed on its own so it can be read with one ranged get, followed by a sealed table of
// contents so the index can be rebuilt from the packs alone.
//
// Per-pack key: HKDF(pack root key, random 32-byte pack salt). Nonces inside a pack are the
// blob's offset (unique inside the pack); the table of contents uses a reserved nonce. So no
// nonce repeats under one key, and writing the same content twice uses a new key.
#pragma once

#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "base/id.h"
#include "repository/keys.h"

namespace plakar {

enum class BlobType : uint8_t { Chunk = 1, Tree = 2, ChunkList = 3 };
enum class PackType : uint8_t { Data = 1, Meta = 2 };
constexpr uint8_t kBlobCompressed = 1;

constexpr size_t kPackHeader = 40;
constexpr size_t kPackTrailer = 16;

struct BlobRecord {
	Id id;
	BlobType type;
	uint8_t flags;
	uint32_t offset; // of the sealed blob inside the pack
	uint32_t length; // sealed length (payload + 16-byte tag)
	uint32_t raw_len; // plaintext length
};

class PackWriter {
public:
	PackWriter(const KeyRing &keys, bool encrypted, PackType type, int level);

	// Compresses (when it helps) and seals one blob, appending it to the pack.
	const BlobRecord &add(const Id &id, BlobType type, ByteView plaintext);
	// Adds an already compressed (or raw, flags = 0) payload.
	const BlobRecord &add_payload(const Id &id, BlobType type, uint8_t flags, ByteView payload, uint32_t raw_len);
	// The same in two steps, for a caller that seals outside its own lock. reserve_payload()
	// records the blob and appends room for it; seal_payload() then fills that room, on any
	// thread, alongside other seal_payload() calls on the same pack. Until every reserved slot
	// is sealed, only reserve_payload() may run, and only when fits(): the buffer must not move.
	struct Slot {
		BlobRecord rec;
		uint8_t *dst;
	};
	Slot reserve_payload(const Id &id, BlobType type, uint8_t flags, size_t payload_len, uint32_t raw_len);
	void seal_payload(const Slot &slot, ByteView payload) const;
	// Whether a payload of this length can be reserved without moving the buffer.
	bool fits(size_t payload_len) const;
	size_t size() const { return buf_.size(); }
	// Reserves room for a pack of about this many bytes (no regrowth, no copy on the way).
	void reserve(size_t bytes) { buf_.reserve(bytes); }
	// Takes over the memory of a finished pack's buffer (before anything was added): no new
	// mapping to fault in for each pack.
	void reuse_buffer(Bytes buf);
	bool empty() const { return records_.empty(); }
	// Appends the sealed table of contents and the trailer; returns the pack's bytes.
	Bytes finish();
	const Id &name() const { return name_; }
	const std::vector<BlobRecord> &records() const { return records_; }

private:
	const KeyRing &keys_;
	bool encrypted_;
	PackType type_;
	int level_;
	Id name_;
	crypto::SecureBytes key_;
	Bytes buf_;
	std::vector<BlobRecord> records_;
};

// The plaintext of a table of contents (once authenticated), for a pack whose table starts at
// toc_offset: every record must lie between the header and the table. Throws Code::Corrupt.
std::vector<BlobRecord> parse_toc(ByteView toc, uint64_t toc_offset);

// Buffers a thread reuses to read blob after blob without an allocation per blob.
struct BlobBuffers {
	Scratch sealed, plain;
};

// Reading: the pack key comes from the header, each blob is opened separately.
class PackKey {
public:
	// header: the first kPackHeader bytes of the pack. Throws Code::Corrupt / Code::Version.
	PackKey(const KeyRing &keys, bool encrypted, const Id &pack, ByteView header);
	// Authenticates and decrypts one blob (not yet decompressed). Throws Code::Corrupt.
	Bytes open_blob(const BlobRecord &rec, ByteView sealed) const;
	// Returns the plaintext of a blob (decompressed).
	Bytes blob_plaintext(const BlobRecord &rec, ByteView sealed) const;
	// The same without allocating: sealed is decrypted in place (its bytes are lost) and, when
	// compressed, decompressed into plain. The view is into sealed or plain.
	ByteView blob_plaintext(const BlobRecord &rec, std::span<uint8_t> sealed, Scratch &plain) const;
	// Parses the trailer + table of contents of a whole pack.
	std::vector<BlobRecord> read_toc(ByteView pack) const;
	// Where the sealed table of contents lies, from the trailer (the last kPackTrailer bytes)
	// of a pack of pack_size bytes: {offset, length}. Throws Code::Corrupt.
	std::pair<uint64_t, uint32_t> toc_location(ByteView trailer, uint64_t pack_size) const;
	// Authenticates and parses the sealed table of contents found at toc_offset.
	std::vector<BlobRecord> open_toc(ByteView sealed_toc, uint64_t toc_offset) const;
	PackType type() const { return type_; }

private:
	bool encrypted_;
	Id pack_;
	Bytes header_;
	PackType type_;
	crypto::SecureBytes key_;
};

} // namespace plakar
