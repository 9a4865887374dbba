#include "repository/pack.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "compression/zstd.h"
#include "repository/sealed.h"

namespace plakar {

namespace {
constexpr char kMagic[4] = {'P', 'L', 'K', 'P'};
constexpr char kTocMagic[4] = {'P', 'L', 'K', 'T'};
constexpr char kEndMagic[4] = {'P', 'L', 'K', 'E'};
constexpr uint8_t kPackEncrypted = 1;
constexpr size_t kTocEntry = 32 + 1 + 1 + 4 + 4 + 4;

std::array<uint8_t, crypto::kGcmNonce> blob_nonce(uint32_t offset)
{
	std::array<uint8_t, crypto::kGcmNonce> n{};
	for (int i = 0; i < 8; i++)
		n[4 + i] = uint8_t(uint64_t(offset) >> (56 - 8 * i));
	return n;
}

std::array<uint8_t, crypto::kGcmNonce> toc_nonce()
{
	std::array<uint8_t, crypto::kGcmNonce> n{};
	n[0] = n[1] = n[2] = n[3] = 0xff;
	return n;
}

Bytes blob_aad(const Id &pack, const BlobRecord &r)
{
	Writer w;
	w.raw(pack.view());
	w.raw(r.id.view());
	w.u8(uint8_t(r.type));
	w.u8(r.flags);
	w.u64(r.offset);
	w.u32(r.raw_len);
	return w.take();
}

Bytes toc_aad(const Id &pack, ByteView header)
{
	Writer w;
	w.raw(kTocMagic, 4);
	w.raw(pack.view());
	w.raw(header);
	return w.take();
}

crypto::SecureBytes pack_key(const KeyRing &keys, ByteView salt)
{
	return crypto::hkdf(keys.pack_root.view(), salt, "plakar/v1/pack-key", 32);
}

void seal(bool encrypted, const crypto::SecureBytes &key, Bytes &out, ByteView nonce, ByteView aad, ByteView body)
{
	if (encrypted) {
		crypto::gcm_seal_append(out, key.view(), nonce, aad, body);
	} else {
		out.insert(out.end(), body.begin(), body.end());
		Bytes t = plain_tag(key.view(), aad, body);
		out.insert(out.end(), t.begin(), t.end());
	}
}

Bytes unseal(bool encrypted, const crypto::SecureBytes &key, ByteView nonce, ByteView aad, ByteView sealed)
{
	if (encrypted)
		return crypto::gcm_open(key.view(), nonce, aad, sealed);
	if (sealed.size() < crypto::kGcmTag)
		fail(Code::Corrupt, "authentication failed (truncated)");
	ByteView body = sealed.first(sealed.size() - crypto::kGcmTag);
	if (!crypto::equal(plain_tag(key.view(), aad, body), sealed.last(crypto::kGcmTag)))
		fail(Code::Corrupt, "authentication failed");
	return Bytes(body.begin(), body.end());
}
} // namespace

PackWriter::PackWriter(const KeyRing &keys, bool encrypted, PackType type, int level)
    : keys_(keys), encrypted_(encrypted), type_(type), level_(level)
{
	crypto::random_bytes(name_.b.data(), name_.b.size());
	Bytes salt = crypto::random_bytes(32);
	key_ = pack_key(keys_, salt);
	Writer w;
	w.raw(kMagic, 4);
	w.u8(kFormatVersion);
	w.u8(uint8_t(type_));
	w.u8(encrypted_ ? kPackEncrypted : 0);
	w.u8(0);
	w.raw(salt);
	buf_ = w.take();
}

void PackWriter::reuse_buffer(Bytes buf)
{
	if (buf.capacity() <= buf_.capacity())
		return;
	buf.assign(buf_.begin(), buf_.end());
	buf_ = std::move(buf);
}

const BlobRecord &PackWriter::add(const Id &id, BlobType type, ByteView plaintext)
{
	Bytes packed;
	bool compressed = compression::compress(plaintext, level_, packed);
	return add_payload(id, type, compressed ? kBlobCompressed : 0, compressed ? ByteView(packed) : plaintext,
	                   uint32_t(plaintext.size()));
}

const BlobRecord &PackWriter::add_payload(const Id &id, BlobType type, uint8_t flags, ByteView payload, uint32_t raw_len)
{
	if (!fits(payload.size()))
		buf_.reserve(std::max(buf_.capacity() * 2, buf_.size() + payload.size() + crypto::kGcmTag));
	Slot slot = reserve_payload(id, type, flags, payload.size(), raw_len);
	seal_payload(slot, payload);
	return records_.back();
}

bool PackWriter::fits(size_t payload_len) const
{
	return buf_.size() + payload_len + crypto::kGcmTag <= buf_.capacity();
}

PackWriter::Slot PackWriter::reserve_payload(const Id &id, BlobType type, uint8_t flags, size_t payload_len,
                                             uint32_t raw_len)
{
	if (buf_.size() + payload_len + crypto::kGcmTag > 0xffffffffu)
		fail(Code::Error, "pack too large");
	BlobRecord r{id, type, flags, uint32_t(buf_.size()), uint32_t(payload_len + crypto::kGcmTag), raw_len};
	records_.push_back(r);
	buf_.resize(buf_.size() + r.length);
	return Slot{r, buf_.data() + r.offset};
}

void PackWriter::seal_payload(const Slot &slot, ByteView payload) const
{
	auto nonce = blob_nonce(slot.rec.offset);
	Bytes aad = blob_aad(name_, slot.rec);
	if (encrypted_) {
		crypto::gcm_seal_into(key_.view(), nonce, aad, payload, slot.dst);
	} else {
		if (!payload.empty())
			std::memcpy(slot.dst, payload.data(), payload.size());
		Bytes t = plain_tag(key_.view(), aad, payload);
		std::memcpy(slot.dst + payload.size(), t.data(), t.size());
	}
}

Bytes PackWriter::finish()
{
	Writer toc;
	toc.u32(uint32_t(records_.size()));
	for (const auto &r : records_) {
		toc.raw(r.id.view());
		toc.u8(uint8_t(r.type));
		toc.u8(r.flags);
		toc.u32(r.offset);
		toc.u32(r.length);
		toc.u32(r.raw_len);
	}
	uint64_t toc_offset = buf_.size();
	auto nonce = toc_nonce();
	seal(encrypted_, key_, buf_, nonce, toc_aad(name_, ByteView(buf_.data(), kPackHeader)), toc.buf());
	Writer tr;
	tr.u64(toc_offset);
	tr.u32(uint32_t(buf_.size() - toc_offset));
	tr.raw(kEndMagic, 4);
	buf_.insert(buf_.end(), tr.buf().begin(), tr.buf().end());
	return std::move(buf_);
}

PackKey::PackKey(const KeyRing &keys, bool encrypted, const Id &pack, ByteView header)
    : encrypted_(encrypted), pack_(pack), header_(header.begin(), header.end())
{
	std::string label = "pack " + pack.hex();
	if (header.size() != kPackHeader || std::memcmp(header.data(), kMagic, 4) != 0)
		fail(Code::Corrupt, label + ": malformed header");
	if (header[4] != kFormatVersion)
		fail(Code::Version, label + ": format version " + std::to_string(header[4]) + " is not supported");
	if ((header[5] != uint8_t(PackType::Data) && header[5] != uint8_t(PackType::Meta)) ||
	    header[6] != (encrypted ? kPackEncrypted : 0) || header[7] != 0)
		fail(Code::Corrupt, label + ": malformed header");
	type_ = PackType(header[5]);
	key_ = pack_key(keys, header.subspan(8, 32));
}

Bytes PackKey::open_blob(const BlobRecord &rec, ByteView sealed) const
{
	auto nonce = blob_nonce(rec.offset);
	try {
		return unseal(encrypted_, key_, nonce, blob_aad(pack_, rec), sealed);
	} catch (const Error &e) {
		if (e.code() == Code::Corrupt)
			fail(Code::Corrupt, "blob " + rec.id.hex().substr(0, 16) + " in pack " + pack_.hex() +
			                        " failed authentication (corrupted or tampered)");
		throw;
	}
}

Bytes PackKey::blob_plaintext(const BlobRecord &rec, ByteView sealed) const
{
	Bytes work(sealed.begin(), sealed.end());
	Scratch plain;
	ByteView p = blob_plaintext(rec, work, plain);
	if (p.data() == work.data()) { // stored raw: the plaintext is the start of work
		work.resize(p.size());
		return work;
	}
	return Bytes(p.begin(), p.end());
}

ByteView PackKey::blob_plaintext(const BlobRecord &rec, std::span<uint8_t> sealed, Scratch &plain_buf) const
{
	ByteView payload;
	try {
		if (sealed.size() < crypto::kGcmTag)
			fail(Code::Corrupt, "authentication failed (truncated)");
		auto nonce = blob_nonce(rec.offset);
		Bytes aad = blob_aad(pack_, rec);
		size_t n = sealed.size() - crypto::kGcmTag;
		if (encrypted_) {
			crypto::gcm_open_into(key_.view(), nonce, aad, sealed, sealed.data());
			payload = ByteView(sealed.data(), n);
		} else {
			payload = sealed.first(n);
			if (!crypto::equal(plain_tag(key_.view(), aad, payload), sealed.last(crypto::kGcmTag)))
				fail(Code::Corrupt, "authentication failed");
		}
	} catch (const Error &e) {
		if (e.code() == Code::Corrupt)
			fail(Code::Corrupt, "blob " + rec.id.hex().substr(0, 16) + " in pack " + pack_.hex() +
			                        " failed authentication (corrupted or tampered)");
		throw;
	}
	if (!(rec.flags & kBlobCompressed)) {
		if (payload.size() != rec.raw_len)
			fail(Code::Corrupt, "blob " + rec.id.hex().substr(0, 16) + ": size mismatch");
		return payload;
	}
	uint8_t *plain = plain_buf.get(rec.raw_len);
	compression::decompress_into(payload, plain, rec.raw_len);
	return ByteView(plain, rec.raw_len);
}

std::pair<uint64_t, uint32_t> PackKey::toc_location(ByteView trailer, uint64_t pack_size) const
{
	std::string label = "pack " + pack_.hex();
	if (pack_size < kPackHeader + kPackTrailer || trailer.size() != kPackTrailer ||
	    std::memcmp(trailer.data() + kPackTrailer - 4, kEndMagic, 4) != 0)
		fail(Code::Corrupt, label + ": truncated or malformed trailer");
	Reader tr(trailer, "pack trailer");
	uint64_t toc_offset = tr.u64();
	uint32_t toc_len = tr.u32();
	// Compared without adding: toc_offset + toc_len could wrap.
	if (toc_offset < kPackHeader || toc_offset > pack_size - kPackTrailer ||
	    toc_len != pack_size - kPackTrailer - toc_offset)
		fail(Code::Corrupt, label + ": malformed trailer");
	return {toc_offset, toc_len};
}

std::vector<BlobRecord> PackKey::read_toc(ByteView pack) const
{
	auto [toc_offset, toc_len] = toc_location(pack.size() >= kPackTrailer ? pack.last(kPackTrailer) : pack, pack.size());
	return open_toc(pack.subspan(toc_offset, toc_len), toc_offset);
}

std::vector<BlobRecord> PackKey::open_toc(ByteView sealed_toc, uint64_t toc_offset) const
{
	std::string label = "pack " + pack_.hex();
	auto nonce = toc_nonce();
	Bytes toc;
	try {
		toc = unseal(encrypted_, key_, nonce, toc_aad(pack_, header_), sealed_toc);
	} catch (const Error &e) {
		if (e.code() == Code::Corrupt)
			fail(Code::Corrupt, label + ": table of contents failed authentication");
		throw;
	}
	return parse_toc(toc, toc_offset);
}

std::vector<BlobRecord> parse_toc(ByteView toc, uint64_t toc_offset)
{
	Reader r(toc, "pack table of contents");
	uint32_t n = r.u32();
	if (n > r.remaining() / kTocEntry)
		r.bad();
	std::vector<BlobRecord> out;
	out.reserve(n);
	for (uint32_t i = 0; i < n; i++) {
		BlobRecord rec;
		rec.id = Id::from(r.raw(32));
		uint8_t t = r.u8();
		if (t < 1 || t > 3)
			r.bad();
		rec.type = BlobType(t);
		rec.flags = r.u8();
		rec.offset = r.u32();
		rec.length = r.u32();
		rec.raw_len = r.u32();
		if (uint64_t(rec.offset) + rec.length > toc_offset || rec.offset < kPackHeader)
			r.bad();
		out.push_back(rec);
	}
	r.expect_done();
	return out;
}

} // namespace plakar
