// Repository configuration and keys (docs/format.md, "CONFIG" and "Key files").
//
// A repository has one random 256-bit master key. Every working key is derived from it with
// HKDF-SHA-256 (salt: the repository id, info: a fixed label), so no key is used for two
// purposes. In an encrypted repository the master key is stored only wrapped (AES-256-GCM
// under a key derived from the passphrase with scrypt) in key files; in a plaintext repository
// it sits in CONFIG, and serves integrity (keyed MACs) but not secrecy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "chunking/fastcdc.h"
#include "crypto/crypto.h"

namespace plakar {

constexpr uint8_t kFormatVersion = 1;

struct Config {
	std::array<uint8_t, 16> repo_id{};
	int64_t created_ns = 0;
	bool encrypted = true;
	ChunkParams chunks;
	int compression_level = 3;
	uint32_t pack_size = 16 * 1024 * 1024;
	crypto::SecureBytes plain_master; // only for plaintext repositories

	std::string id_string() const; // "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
};

// Keys derived from the master key.
struct KeyRing {
	crypto::SecureBytes master;
	crypto::SecureBytes blob_id;     // HMAC key naming blobs
	crypto::SecureBytes gear;        // 2048 bytes: the chunker's gear table
	crypto::SecureBytes config_mac;  // authenticates CONFIG
	crypto::SecureBytes pack_root;   // per-pack keys derive from it
	crypto::SecureBytes object_root; // per-object keys (index segments, snapshot headers)

	static KeyRing derive(const crypto::SecureBytes &master, const Config &cfg);
};

// scrypt defaults: 64 MiB of memory (128 * r * N) and about 0.5 s on this machine kind
// (p = 2 lanes run one after the other), which keeps every command's peak memory near 64 MiB.
struct KdfParams {
	int log2_n = 16;
	uint32_t r = 8;
	uint32_t p = 2;
};

// CONFIG: encodes and authenticates with the config MAC key.
Bytes encode_config(const Config &cfg, const KeyRing &keys);
// Parses CONFIG without authenticating it (the keys are not known yet). Throws Code::Corrupt /
// Code::Version.
Config parse_config(ByteView raw);
// Verifies the CONFIG tag once the master key is known; throws Code::Corrupt when it fails.
void verify_config(ByteView raw, const KeyRing &keys);

// Key files: the master key wrapped under a passphrase.
Bytes wrap_master_key(const crypto::SecureBytes &master, ByteView passphrase, const KdfParams &kdf, const Config &cfg,
                      unsigned threads = 1);
// Returns the master key, or nothing when the passphrase does not open this key file.
// Throws Code::Corrupt / Code::Version when the key file is malformed.
std::optional<crypto::SecureBytes> unwrap_master_key(ByteView keyfile, ByteView passphrase, const Config &cfg,
                                                     unsigned threads = 1);
// A key file's fields, parsed without deriving anything (views into the file). Throws
// Code::Corrupt (malformed, scrypt parameters beyond what create accepts) or Code::Version.
struct KeyFile {
	KdfParams kdf;
	ByteView salt, nonce;
	ByteView header; // what the AEAD authenticates before the repository id
	ByteView sealed; // the wrapped master key and its tag
};
KeyFile parse_key_file(ByteView keyfile);

} // namespace plakar
