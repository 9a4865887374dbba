#include "repository/sealed.h"

#include <cstring>

#include "base/error.h"
#include "compression/zstd.h"

namespace plakar {

namespace {
constexpr char kMagic[4] = {'P', 'L', 'K', 'O'};
constexpr size_t kHeader = 4 + 1 + 1 + 1 + 32;
constexpr uint8_t kEncrypted = 1, kCompressed = 2;

const char *what(ObjectKind k)
{
	switch (k) {
	case ObjectKind::IndexSegment: return "index segment";
	case ObjectKind::SnapshotHeader: return "snapshot";
	case ObjectKind::Lock: return "lock";
	case ObjectKind::GcPlan: return "gc plan";
	case ObjectKind::LockWatch: return "lock watch";
	case ObjectKind::IndexMerge: return "index segment";
	}
	return "object";
}
} // namespace

Bytes plain_tag(ByteView key, ByteView aad, ByteView body)
{
	Id t = crypto::Mac(key).mac(aad, body);
	return Bytes(t.b.begin(), t.b.begin() + crypto::kGcmTag);
}

Bytes seal_object(const KeyRing &keys, bool encrypted, ObjectKind kind, const std::string &name, ByteView body,
                  int level)
{
	Bytes packed;
	bool compressed = compression::compress(body, level, packed);
	ByteView payload = compressed ? ByteView(packed) : body;

	Writer w;
	w.buf().reserve(kHeader + payload.size() + crypto::kGcmTag); // one allocation
	w.raw(kMagic, 4);
	w.u8(kFormatVersion);
	w.u8(uint8_t(kind));
	w.u8((encrypted ? kEncrypted : 0) | (compressed ? kCompressed : 0));
	Bytes salt = crypto::random_bytes(32);
	w.raw(salt);
	Bytes aad = w.buf();
	aad.insert(aad.end(), name.begin(), name.end());
	crypto::SecureBytes key = crypto::hkdf(keys.object_root.view(), salt, "plakar/v1/object-key", 32);
	if (encrypted) {
		uint8_t nonce[crypto::kGcmNonce] = {};
		crypto::gcm_seal_append(w.buf(), key.view(), ByteView(nonce, sizeof nonce), aad, payload);
	} else {
		w.raw(payload);
		w.raw(plain_tag(key.view(), aad, payload));
	}
	return w.take();
}

size_t max_plaintext(ObjectKind kind)
{
	switch (kind) {
	case ObjectKind::IndexSegment:
	case ObjectKind::IndexMerge: return size_t(1) << 30;
	case ObjectKind::SnapshotHeader: return size_t(256) << 20;
	case ObjectKind::Lock: return size_t(1) << 20;
	case ObjectKind::GcPlan: return size_t(64) << 20;
	case ObjectKind::LockWatch: return size_t(16) << 20;
	}
	return 0;
}

Bytes open_object(const KeyRing &keys, bool encrypted, ObjectKind kind, const std::string &name, ByteView sealed)
{
	std::string label = std::string(what(kind)) + " " + name;
	if (sealed.size() < kHeader + crypto::kGcmTag || std::memcmp(sealed.data(), kMagic, 4) != 0)
		fail(Code::Corrupt, label + ": malformed");
	if (sealed[4] != kFormatVersion)
		fail(Code::Version, label + ": format version " + std::to_string(sealed[4]) + " is not supported");
	uint8_t flags = sealed[6];
	if (sealed[5] != uint8_t(kind) || (flags & ~(kEncrypted | kCompressed)) || bool(flags & kEncrypted) != encrypted)
		fail(Code::Corrupt, label + ": malformed");
	ByteView salt = sealed.subspan(7, 32);
	Bytes aad(sealed.begin(), sealed.begin() + kHeader);
	aad.insert(aad.end(), name.begin(), name.end());
	crypto::SecureBytes key = crypto::hkdf(keys.object_root.view(), salt, "plakar/v1/object-key", 32);
	ByteView rest = sealed.subspan(kHeader);
	Bytes payload;
	if (encrypted) {
		uint8_t nonce[crypto::kGcmNonce] = {};
		try {
			payload = crypto::gcm_open(key.view(), ByteView(nonce, sizeof nonce), aad, rest);
		} catch (const Error &e) {
			if (e.code() == Code::Corrupt)
				fail(Code::Corrupt, label + ": failed authentication (tampered or damaged)");
			throw;
		}
	} else {
		ByteView body = rest.first(rest.size() - crypto::kGcmTag);
		if (!crypto::equal(plain_tag(key.view(), aad, body), rest.last(crypto::kGcmTag)))
			fail(Code::Corrupt, label + ": failed authentication (tampered or damaged)");
		payload.assign(body.begin(), body.end());
	}
	if (!(flags & kCompressed))
		return payload;
	// Bounded per kind, like the stored object itself (storage/store.h): a small object that
	// claims a huge decompressed size is refused, and the output grows only with real data.
	return compression::decompress_frame(payload, max_plaintext(kind));
}

} // namespace plakar
