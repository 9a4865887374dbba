// Cryptographic primitives over OpenSSL 3 EVP: random bytes, HMAC-SHA-256, HKDF-SHA-256,
// scrypt, AES-256-GCM. Everything here is stateless or owns its OpenSSL context; the objects
// are safe to use from one thread at a time, and cheap to copy per thread.
//
// Failures of authentication (a tag that does not verify) throw Code::Corrupt; a failure of
// OpenSSL itself throws Code::Error.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "base/bytes.h"
#include "base/id.h"

namespace plakar::crypto {

// Key bytes that are wiped (OPENSSL_cleanse) when freed.
class SecureBytes {
public:
	SecureBytes() = default;
	explicit SecureBytes(size_t n) : v_(n) {}
	SecureBytes(ByteView b) : v_(b.begin(), b.end()) {}
	SecureBytes(const SecureBytes &) = default;
	SecureBytes &operator=(const SecureBytes &o)
	{
		if (this != &o) {
			wipe();
			v_ = o.v_;
		}
		return *this;
	}
	SecureBytes(SecureBytes &&o) noexcept : v_(std::move(o.v_)) {}
	SecureBytes &operator=(SecureBytes &&o) noexcept
	{
		wipe();
		v_ = std::move(o.v_);
		return *this;
	}
	~SecureBytes() { wipe(); }

	uint8_t *data() { return v_.data(); }
	const uint8_t *data() const { return v_.data(); }
	size_t size() const { return v_.size(); }
	ByteView view() const { return {v_.data(), v_.size()}; }

private:
	void wipe();
	Bytes v_;
};

void random_bytes(uint8_t *out, size_t n);
// Wipes memory in a way the compiler cannot elide (OPENSSL_cleanse).
void wipe(void *p, size_t n);
Bytes random_bytes(size_t n);
// Constant-time comparison (CRYPTO_memcmp); false when the sizes differ.
bool equal(ByteView a, ByteView b);

// HMAC-SHA-256 with a fixed key. The key schedule is computed once; mac() may be called many
// times. Not thread-safe: copy it (copies share nothing) for each thread.
class Mac {
public:
	explicit Mac(ByteView key);
	Mac(const Mac &);
	Mac &operator=(const Mac &) = delete;
	~Mac();
	Id mac(ByteView data) const;
	Id mac(ByteView a, ByteView b) const; // MAC of the concatenation a || b

private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
};

Id hmac_sha256(ByteView key, ByteView data);
Id sha256(ByteView data);
// HKDF-SHA-256 (RFC 5869), extract and expand.
SecureBytes hkdf(ByteView key, ByteView salt, std::string_view info, size_t out_len);
// scrypt (RFC 7914). N = 2^log2_n. Up to `threads` of its p lanes run side by side (each needs
// 128 x r x N bytes: they do while the lanes at once stay under 256 MiB); crypto/scrypt.cc.
SecureBytes scrypt(ByteView passphrase, ByteView salt, int log2_n, uint32_t r, uint32_t p, size_t out_len,
                   unsigned threads = 1);

constexpr size_t kGcmNonce = 12;
constexpr size_t kGcmTag = 16;
// AES-256-GCM: returns ciphertext || 16-byte tag.
Bytes gcm_seal(ByteView key, ByteView nonce, ByteView aad, ByteView plaintext);
// Appends ciphertext || tag to out (avoids a copy when building packs).
void gcm_seal_append(Bytes &out, ByteView key, ByteView nonce, ByteView aad, ByteView plaintext);
// Writes ciphertext || tag to out (plaintext.size() + kGcmTag bytes, not overlapping plaintext).
void gcm_seal_into(ByteView key, ByteView nonce, ByteView aad, ByteView plaintext, uint8_t *out);
// Verifies and decrypts ciphertext || tag. Throws Code::Corrupt when authentication fails;
// nothing of the plaintext is returned in that case.
Bytes gcm_open(ByteView key, ByteView nonce, ByteView aad, ByteView sealed);
// gcm_open into out (sealed.size() - kGcmTag bytes; out may be sealed.data() itself). On a
// failed authentication out is wiped before the throw.
void gcm_open_into(ByteView key, ByteView nonce, ByteView aad, ByteView sealed, uint8_t *out);

// GMAC (AES-256-GCM over additional data only, no ciphertext) with a fixed key: the key
// schedule is computed once, each tag() sets only the nonce. A nonce must never repeat under
// one key. Not thread-safe; move it, do not share it.
class Gmac {
public:
	explicit Gmac(ByteView key); // 32 bytes
	Gmac(Gmac &&) noexcept;
	Gmac &operator=(Gmac &&) noexcept;
	~Gmac();
	// The tag of a || b under the nonce (kGcmNonce bytes), into out (kGcmTag bytes).
	void tag(const uint8_t *nonce, ByteView a, ByteView b, uint8_t *out);

private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
};

} // namespace plakar::crypto
