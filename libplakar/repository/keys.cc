#include "repository/keys.h"

#include <cstdio>
#include <cstring>

#include "base/error.h"

namespace plakar {

namespace {
constexpr char kConfigMagic[4] = {'P', 'L', 'K', 'C'};
constexpr char kKeyMagic[4] = {'P', 'L', 'K', 'K'};
constexpr uint8_t kKdfScrypt = 1;
constexpr uint8_t kConfigEncrypted = 1;

crypto::SecureBytes sub(const crypto::SecureBytes &master, const Config &cfg, const char *label, size_t n = 32)
{
	return crypto::hkdf(master.view(), ByteView(cfg.repo_id.data(), cfg.repo_id.size()), label, n);
}
} // namespace

std::string Config::id_string() const
{
	std::string h = hex_encode(ByteView(repo_id.data(), repo_id.size()));
	return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

KeyRing KeyRing::derive(const crypto::SecureBytes &master, const Config &cfg)
{
	KeyRing k;
	k.master = master;
	k.blob_id = sub(master, cfg, "plakar/v1/blob-id");
	k.gear = sub(master, cfg, "plakar/v1/gear", 2048);
	k.config_mac = sub(master, cfg, "plakar/v1/config");
	k.pack_root = sub(master, cfg, "plakar/v1/pack");
	k.object_root = sub(master, cfg, "plakar/v1/object");
	return k;
}

static Bytes config_body(const Config &cfg)
{
	Writer w;
	w.raw(kConfigMagic, 4);
	w.u8(kFormatVersion);
	w.raw(cfg.repo_id.data(), cfg.repo_id.size());
	w.u64(uint64_t(cfg.created_ns));
	w.u8(cfg.encrypted ? kConfigEncrypted : 0);
	w.u32(cfg.chunks.min);
	w.u32(cfg.chunks.avg);
	w.u32(cfg.chunks.max);
	w.u8(uint8_t(cfg.compression_level));
	w.u32(cfg.pack_size);
	if (!cfg.encrypted)
		w.raw(cfg.plain_master.view());
	return w.take();
}

Bytes encode_config(const Config &cfg, const KeyRing &keys)
{
	Bytes body = config_body(cfg);
	Id tag = crypto::hmac_sha256(keys.config_mac.view(), body);
	body.insert(body.end(), tag.b.begin(), tag.b.end());
	return body;
}

Config parse_config(ByteView raw)
{
	if (raw.size() < 5 || std::memcmp(raw.data(), kConfigMagic, 4) != 0)
		fail(Code::Corrupt, "not a plakar repository (bad CONFIG)");
	if (raw[4] != kFormatVersion)
		fail(Code::Version, "repository format version " + std::to_string(raw[4]) + " is not supported (this is " +
		                        std::to_string(kFormatVersion) + ")");
	Reader r(raw, "CONFIG");
	r.raw(5);
	Config cfg;
	r.raw(cfg.repo_id.data(), cfg.repo_id.size());
	cfg.created_ns = int64_t(r.u64());
	uint8_t flags = r.u8();
	if (flags & ~kConfigEncrypted)
		r.bad();
	cfg.encrypted = flags & kConfigEncrypted;
	cfg.chunks.min = r.u32();
	cfg.chunks.avg = r.u32();
	cfg.chunks.max = r.u32();
	cfg.compression_level = r.u8();
	cfg.pack_size = r.u32();
	if (!cfg.encrypted)
		cfg.plain_master = crypto::SecureBytes(r.raw(32));
	r.raw(32); // tag, checked by verify_config
	r.expect_done();
	try {
		cfg.chunks.validate();
	} catch (const Error &) {
		r.bad();
	}
	if (cfg.compression_level < 1 || cfg.compression_level > 22 || cfg.pack_size < 4096)
		r.bad();
	return cfg;
}

void verify_config(ByteView raw, const KeyRing &keys)
{
	if (raw.size() < 32)
		fail(Code::Corrupt, "CONFIG is truncated");
	ByteView body = raw.first(raw.size() - 32);
	Id want = crypto::hmac_sha256(keys.config_mac.view(), body);
	if (!crypto::equal(want.view(), raw.last(32)))
		fail(Code::Corrupt, "CONFIG failed authentication (tampered or damaged)");
}

// Key file:
//   "PLKK" version:u8 kdf:u8 log2_n:u8 r:u32 p:u32 salt[32] nonce[12] sealed(master[32]) tag[16]
//   AAD = every byte before the sealed part || repository id
Bytes wrap_master_key(const crypto::SecureBytes &master, ByteView passphrase, const KdfParams &kdf, const Config &cfg,
                      unsigned threads)
{
	Writer w;
	w.raw(kKeyMagic, 4);
	w.u8(kFormatVersion);
	w.u8(kKdfScrypt);
	w.u8(uint8_t(kdf.log2_n));
	w.u32(kdf.r);
	w.u32(kdf.p);
	Bytes salt = crypto::random_bytes(32);
	w.raw(salt);
	Bytes nonce = crypto::random_bytes(crypto::kGcmNonce);
	w.raw(nonce);
	crypto::SecureBytes kek = crypto::scrypt(passphrase, salt, kdf.log2_n, kdf.r, kdf.p, 32, threads);
	Bytes aad = w.buf();
	aad.insert(aad.end(), cfg.repo_id.begin(), cfg.repo_id.end());
	crypto::gcm_seal_append(w.buf(), kek.view(), nonce, aad, master.view());
	return w.take();
}

KeyFile parse_key_file(ByteView keyfile)
{
	constexpr size_t kHeader = 4 + 1 + 1 + 1 + 4 + 4 + 32 + crypto::kGcmNonce;
	if (keyfile.size() < 5 || std::memcmp(keyfile.data(), kKeyMagic, 4) != 0)
		fail(Code::Corrupt, "malformed key file");
	if (keyfile[4] != kFormatVersion)
		fail(Code::Version, "key file format version " + std::to_string(keyfile[4]) + " is not supported");
	if (keyfile.size() != kHeader + 32 + crypto::kGcmTag)
		fail(Code::Corrupt, "malformed key file");
	Reader r(keyfile, "key file");
	r.raw(5);
	if (r.u8() != kKdfScrypt)
		fail(Code::Corrupt, "key file names an unknown key derivation");
	KeyFile k;
	k.kdf.log2_n = r.u8();
	k.kdf.r = r.u32();
	k.kdf.p = r.u32();
	// No more than create accepts (log2 N from 10 to 24, r = 8, p = 2): a forged key file must
	// not make open spend more memory or time than a real one could.
	if (k.kdf.log2_n < 10 || k.kdf.log2_n > 24 || k.kdf.r < 1 || k.kdf.r > KdfParams{}.r || k.kdf.p < 1 ||
	    k.kdf.p > KdfParams{}.p)
		fail(Code::Corrupt, "key file has out-of-range scrypt parameters");
	k.salt = r.raw(32);
	k.nonce = r.raw(crypto::kGcmNonce);
	k.header = keyfile.first(kHeader);
	k.sealed = keyfile.subspan(kHeader);
	return k;
}

std::optional<crypto::SecureBytes> unwrap_master_key(ByteView keyfile, ByteView passphrase, const Config &cfg,
                                                     unsigned threads)
{
	KeyFile k = parse_key_file(keyfile);
	crypto::SecureBytes kek = crypto::scrypt(passphrase, k.salt, k.kdf.log2_n, k.kdf.r, k.kdf.p, 32, threads);
	Bytes aad(k.header.begin(), k.header.end());
	aad.insert(aad.end(), cfg.repo_id.begin(), cfg.repo_id.end());
	try {
		Bytes m = crypto::gcm_open(kek.view(), k.nonce, aad, k.sealed);
		crypto::SecureBytes out(m);
		crypto::wipe(m.data(), m.size());
		return out;
	} catch (const Error &e) {
		if (e.code() == Code::Corrupt)
			return std::nullopt;
		throw;
	}
}

} // namespace plakar
