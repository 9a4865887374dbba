#include "crypto/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <string>

#include "base/error.h"

namespace plakar::crypto {

static void openssl_fail(const char *what) { fail(Code::Error, std::string("crypto: ") + what + " failed"); }

void SecureBytes::wipe()
{
	if (!v_.empty())
		OPENSSL_cleanse(v_.data(), v_.size());
}

void wipe(void *p, size_t n)
{
	if (n)
		OPENSSL_cleanse(p, n);
}

void random_bytes(uint8_t *out, size_t n)
{
	if (RAND_bytes(out, int(n)) != 1)
		openssl_fail("RAND_bytes");
}

Bytes random_bytes(size_t n)
{
	Bytes b(n);
	random_bytes(b.data(), n);
	return b;
}

bool equal(ByteView a, ByteView b) { return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

// ---------------------------------------------------------------- HMAC

namespace {
EVP_MAC *hmac_algorithm()
{
	static EVP_MAC *mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
	if (!mac)
		openssl_fail("EVP_MAC_fetch(HMAC)");
	return mac;
}
} // namespace

struct Mac::Impl {
	EVP_MAC_CTX *ctx = nullptr;
	~Impl() { EVP_MAC_CTX_free(ctx); }
};

Mac::Mac(ByteView key) : impl_(std::make_unique<Impl>())
{
	impl_->ctx = EVP_MAC_CTX_new(hmac_algorithm());
	if (!impl_->ctx)
		openssl_fail("EVP_MAC_CTX_new");
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
	if (EVP_MAC_init(impl_->ctx, key.data(), key.size(), params) != 1)
		openssl_fail("EVP_MAC_init");
}

Mac::Mac(const Mac &o) : impl_(std::make_unique<Impl>())
{
	impl_->ctx = EVP_MAC_CTX_dup(o.impl_->ctx);
	if (!impl_->ctx)
		openssl_fail("EVP_MAC_CTX_dup");
}

Mac::~Mac() = default;

Id Mac::mac(ByteView data) const { return mac(data, {}); }

Id Mac::mac(ByteView a, ByteView b) const
{
	// Each computation works on a duplicate of the keyed context, so the key schedule is reused.
	EVP_MAC_CTX *c = EVP_MAC_CTX_dup(impl_->ctx);
	if (!c)
		openssl_fail("EVP_MAC_CTX_dup");
	Id id;
	size_t len = 0;
	bool ok = EVP_MAC_update(c, a.data(), a.size()) == 1 && (b.empty() || EVP_MAC_update(c, b.data(), b.size()) == 1) &&
	          EVP_MAC_final(c, id.b.data(), &len, id.b.size()) == 1 && len == Id::size;
	EVP_MAC_CTX_free(c);
	if (!ok)
		openssl_fail("HMAC");
	return id;
}

Id hmac_sha256(ByteView key, ByteView data) { return Mac(key).mac(data); }

Id sha256(ByteView data)
{
	Id id;
	unsigned int len = 0;
	if (EVP_Digest(data.data(), data.size(), id.b.data(), &len, EVP_sha256(), nullptr) != 1 || len != Id::size)
		openssl_fail("SHA-256");
	return id;
}

// ---------------------------------------------------------------- KDFs

static SecureBytes derive(const char *alg, OSSL_PARAM *params, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(nullptr, alg, nullptr);
	if (!kdf)
		openssl_fail(alg);
	EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (!ctx)
		openssl_fail(alg);
	SecureBytes out(out_len);
	int rc = EVP_KDF_derive(ctx, out.data(), out_len, params);
	EVP_KDF_CTX_free(ctx);
	if (rc != 1)
		openssl_fail(alg);
	return out;
}

SecureBytes hkdf(ByteView key, ByteView salt, std::string_view info, size_t out_len)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t *>(key.data()), key.size()),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t *>(salt.data()), salt.size()),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char *>(info.data()), info.size()),
	    OSSL_PARAM_construct_end()};
	return derive("HKDF", params, out_len);
}

// ---------------------------------------------------------------- AES-256-GCM

namespace {
struct CipherCtx {
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	~CipherCtx() { EVP_CIPHER_CTX_free(c); }
};
void check_sizes(ByteView key, ByteView nonce)
{
	if (key.size() != 32 || nonce.size() != kGcmNonce)
		fail(Code::Error, "crypto: bad AES-GCM key or nonce size");
}
} // namespace

struct Gmac::Impl {
	CipherCtx ctx;
};

Gmac::Gmac(ByteView key) : impl_(std::make_unique<Impl>())
{
	if (key.size() != 32)
		fail(Code::Error, "crypto: bad GMAC key size");
	if (!impl_->ctx.c || EVP_EncryptInit_ex(impl_->ctx.c, EVP_aes_256_gcm(), nullptr, key.data(), nullptr) != 1)
		openssl_fail("GMAC init");
}
Gmac::Gmac(Gmac &&) noexcept = default;
Gmac &Gmac::operator=(Gmac &&) noexcept = default;
Gmac::~Gmac() = default;

void Gmac::tag(const uint8_t *nonce, ByteView a, ByteView b, uint8_t *out)
{
	EVP_CIPHER_CTX *c = impl_->ctx.c;
	int len = 0;
	if (EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, nonce) != 1)
		openssl_fail("GMAC nonce");
	// In pieces well under INT_MAX (a frame is at most 16 MiB; an int length must not wrap).
	for (ByteView part : {a, b})
		for (size_t at = 0; at < part.size();) {
			size_t n = std::min<size_t>(part.size() - at, 1u << 30);
			if (EVP_EncryptUpdate(c, nullptr, &len, part.data() + at, int(n)) != 1)
				openssl_fail("GMAC data");
			at += n;
		}
	uint8_t none[16];
	if (EVP_EncryptFinal_ex(c, none, &len) != 1 || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kGcmTag, out) != 1)
		openssl_fail("GMAC final");
}

void gcm_seal_into(ByteView key, ByteView nonce, ByteView aad, ByteView plaintext, uint8_t *out)
{
	check_sizes(key, nonce);
	CipherCtx ctx;
	if (!ctx.c || EVP_EncryptInit_ex(ctx.c, EVP_aes_256_gcm(), nullptr, key.data(), nonce.data()) != 1)
		openssl_fail("AES-GCM init");
	int len = 0;
	if (!aad.empty() && EVP_EncryptUpdate(ctx.c, nullptr, &len, aad.data(), int(aad.size())) != 1)
		openssl_fail("AES-GCM aad");
	if (!plaintext.empty() && EVP_EncryptUpdate(ctx.c, out, &len, plaintext.data(), int(plaintext.size())) != 1)
		openssl_fail("AES-GCM encrypt");
	int fl = 0;
	if (EVP_EncryptFinal_ex(ctx.c, out + plaintext.size(), &fl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx.c, EVP_CTRL_GCM_GET_TAG, kGcmTag, out + plaintext.size()) != 1)
		openssl_fail("AES-GCM final");
}

void gcm_seal_append(Bytes &out, ByteView key, ByteView nonce, ByteView aad, ByteView plaintext)
{
	size_t at = out.size();
	out.resize(at + plaintext.size() + kGcmTag);
	try {
		gcm_seal_into(key, nonce, aad, plaintext, out.data() + at);
	} catch (...) {
		out.resize(at);
		throw;
	}
}

Bytes gcm_seal(ByteView key, ByteView nonce, ByteView aad, ByteView plaintext)
{
	Bytes out;
	gcm_seal_append(out, key, nonce, aad, plaintext);
	return out;
}

Bytes gcm_open(ByteView key, ByteView nonce, ByteView aad, ByteView sealed)
{
	if (sealed.size() < kGcmTag)
		fail(Code::Corrupt, "authentication failed (truncated)");
	Bytes out(sealed.size() - kGcmTag);
	gcm_open_into(key, nonce, aad, sealed, out.data());
	return out;
}

void gcm_open_into(ByteView key, ByteView nonce, ByteView aad, ByteView sealed, uint8_t *out)
{
	check_sizes(key, nonce);
	if (sealed.size() < kGcmTag)
		fail(Code::Corrupt, "authentication failed (truncated)");
	size_t n = sealed.size() - kGcmTag;
	CipherCtx ctx;
	if (!ctx.c || EVP_DecryptInit_ex(ctx.c, EVP_aes_256_gcm(), nullptr, key.data(), nonce.data()) != 1)
		openssl_fail("AES-GCM init");
	int len = 0;
	if (!aad.empty() && EVP_DecryptUpdate(ctx.c, nullptr, &len, aad.data(), int(aad.size())) != 1)
		openssl_fail("AES-GCM aad");
	// The tag is copied first: out may be sealed's own bytes (decryption in place).
	uint8_t tag[kGcmTag];
	std::memcpy(tag, sealed.data() + n, kGcmTag);
	if (n && EVP_DecryptUpdate(ctx.c, out, &len, sealed.data(), int(n)) != 1)
		openssl_fail("AES-GCM decrypt");
	if (EVP_CIPHER_CTX_ctrl(ctx.c, EVP_CTRL_GCM_SET_TAG, kGcmTag, tag) != 1)
		openssl_fail("AES-GCM tag");
	int fl = 0;
	uint8_t none[16];
	if (EVP_DecryptFinal_ex(ctx.c, none, &fl) != 1) {
		OPENSSL_cleanse(out, n);
		fail(Code::Corrupt, "authentication failed");
	}
}

} // namespace plakar::crypto
