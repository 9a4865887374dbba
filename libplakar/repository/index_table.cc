#include "repository/index_table.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/error.h"
#include "base/fd.h"

namespace plakar {

namespace {

constexpr uint32_t kTableVersion = 1;
constexpr size_t kTableBlock = 256;      // entries per block: about 12.8 KB sealed
constexpr size_t kEntry = 32 + 4 + 4 + 4 + 4 + 1 + 1;
constexpr size_t kTrailer = 8 + 4 + 16 + 4 + 4;
constexpr size_t kGeneration = 16;
constexpr uint32_t kMaxDirectory = 1u << 30;
enum Part : uint8_t { kBlock = 1, kDirectory = 2 };

Bytes part_aad(ByteView generation, Part kind, uint64_t number)
{
	Writer w;
	w.raw("PLKT", 4);
	w.raw(generation);
	w.u8(kind);
	w.u64(number);
	return w.take();
}

Bytes seal(const crypto::SecureBytes &key, ByteView generation, Part kind, uint64_t number, ByteView plain)
{
	Bytes out = crypto::random_bytes(crypto::kGcmNonce);
	Bytes nonce = out;
	crypto::gcm_seal_append(out, key.view(), nonce, part_aad(generation, kind, number), plain);
	return out;
}

Bytes unseal(const crypto::SecureBytes &key, ByteView generation, Part kind, uint64_t number, ByteView sealed)
{
	if (sealed.size() < crypto::kGcmNonce + crypto::kGcmTag)
		fail(Code::Corrupt, "index table part is too short");
	return crypto::gcm_open(key.view(), sealed.first(crypto::kGcmNonce), part_aad(generation, kind, number),
	                        sealed.subspan(crypto::kGcmNonce));
}

bool write_all(int fd, ByteView b)
{
	size_t done = 0;
	while (done < b.size()) {
		ssize_t n = ::write(fd, b.data() + done, b.size() - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += size_t(n);
	}
	return true;
}

bool read_at(int fd, uint8_t *out, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = ::pread(fd, out + got, n - got, off_t(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		got += size_t(r);
	}
	return true;
}

} // namespace

bool IndexTable::write(const std::string &dir, const crypto::SecureBytes &key, const std::vector<std::string> &segments,
                       const Index &index)
{
	std::string path = dir + "/" + kFile;
	std::string tmp = path + "." + hex_encode(crypto::random_bytes(8)) + ".tmp";
	Fd f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
	if (f.fd < 0)
		return false;
	bool ok = true;
	try {
		Bytes generation = crypto::random_bytes(kGeneration);
		std::vector<Block> blocks;
		uint64_t offset = 0;
		Writer blk;
		uint32_t in_block = 0;
		Id first;
		auto emit = [&] {
			Bytes sealed = seal(key, generation, kBlock, blocks.size(), blk.buf());
			blocks.push_back({offset, uint32_t(sealed.size()), in_block, first});
			ok = ok && write_all(f.fd, sealed);
			offset += sealed.size();
			blk.buf().clear();
			in_block = 0;
		};
		index.for_each_saved([&](const Id &id, const BlobLoc &loc) {
			if (in_block == 0)
				first = id;
			blk.raw(id.view());
			blk.u32(loc.pack);
			blk.u32(loc.offset);
			blk.u32(loc.length);
			blk.u32(loc.raw_len);
			blk.u8(uint8_t(loc.type));
			blk.u8(loc.flags);
			if (++in_block == kTableBlock)
				emit();
		});
		if (in_block)
			emit();

		Writer d;
		d.u8(uint8_t(kTableVersion));
		d.varint(segments.size());
		for (const auto &s : segments)
			d.str(s);
		d.varint(index.pack_count());
		for (size_t i = 0; i < index.pack_count(); i++)
			d.raw(index.pack_name(uint32_t(i)).view());
		d.varint(blocks.size());
		for (const auto &b : blocks) {
			d.u64(b.offset);
			d.u32(b.length);
			d.u32(b.count);
			d.raw(b.first.view());
		}
		Bytes sealed = seal(key, generation, kDirectory, 0, d.buf());
		Writer t;
		t.u64(offset);
		t.u32(uint32_t(sealed.size()));
		t.raw(generation);
		t.raw("PLKT", 4);
		t.u32(kTableVersion);
		ok = ok && write_all(f.fd, sealed) && write_all(f.fd, t.buf());
	} catch (const Error &) {
		ok = false;
	}
	// No fsync: a table torn by a crash does not verify and is rebuilt.
	if (ok)
		ok = ::rename(tmp.c_str(), path.c_str()) == 0;
	if (!ok)
		::unlink(tmp.c_str());
	return ok;
}

std::unique_ptr<IndexTable> IndexTable::open(const std::string &dir, const crypto::SecureBytes &key)
{
	Fd f(::open((dir + "/" + kFile).c_str(), O_RDONLY | O_CLOEXEC));
	if (f.fd < 0)
		return nullptr;
	off_t size = ::lseek(f.fd, 0, SEEK_END);
	if (size < off_t(kTrailer))
		return nullptr;
	uint8_t tr[kTrailer];
	if (!read_at(f.fd, tr, kTrailer, uint64_t(size) - kTrailer))
		return nullptr;
	try {
		Reader r(ByteView(tr, kTrailer), "index table");
		uint64_t dir_off = r.u64();
		uint32_t dir_len = r.u32();
		Bytes generation(kGeneration);
		r.raw(generation.data(), kGeneration);
		ByteView magic = r.raw(4);
		uint32_t version = r.u32();
		if (!std::equal(magic.begin(), magic.end(), "PLKT") || version != kTableVersion || dir_len > kMaxDirectory ||
		    dir_off + dir_len + kTrailer != uint64_t(size))
			return nullptr;
		Bytes sealed(dir_len);
		if (!read_at(f.fd, sealed.data(), dir_len, dir_off))
			return nullptr;
		Bytes plain = unseal(key, generation, kDirectory, 0, sealed);
		Reader d(plain, "index table directory");
		if (d.u8() != kTableVersion)
			return nullptr;
		std::unique_ptr<IndexTable> t(new IndexTable());
		size_t ns = d.count(1);
		t->segments_.reserve(ns);
		for (size_t i = 0; i < ns; i++)
			t->segments_.push_back(d.str());
		size_t np = d.count(32);
		t->packs_.reserve(np);
		for (size_t i = 0; i < np; i++)
			t->packs_.push_back(Id::from(d.raw(32)));
		size_t nb = d.count(8 + 4 + 4 + 32);
		t->blocks_.reserve(nb);
		for (size_t i = 0; i < nb; i++) {
			Block b;
			b.offset = d.u64();
			b.length = d.u32();
			b.count = d.u32();
			b.first = Id::from(d.raw(32));
			if (b.offset + b.length > dir_off || b.count == 0 || b.count > kTableBlock ||
			    b.length != crypto::kGcmNonce + b.count * kEntry + crypto::kGcmTag)
				return nullptr;
			t->blocks_.push_back(b);
		}
		d.expect_done();
		t->generation_ = std::move(generation);
		t->key_ = key;
		t->fd_ = f.release();
		return t;
	} catch (const Error &) {
		return nullptr;
	}
}

IndexTable::~IndexTable()
{
	if (fd_ >= 0)
		::close(fd_);
}

std::optional<IndexTable::Hit> IndexTable::find(const Id &id) const
{
	if (broken_ || blocks_.empty())
		return std::nullopt;
	auto it = std::upper_bound(blocks_.begin(), blocks_.end(), id, [](const Id &k, const Block &b) { return k < b.first; });
	if (it == blocks_.begin())
		return std::nullopt;
	--it;
	size_t number = size_t(it - blocks_.begin());
	Bytes sealed(it->length);
	Bytes plain;
	try {
		if (!read_at(fd_, sealed.data(), sealed.size(), it->offset))
			fail(Code::Corrupt, "index table block is truncated");
		plain = unseal(key_, generation_, kBlock, number, sealed);
	} catch (const Error &) {
		broken_ = true;
		return std::nullopt;
	}
	// Binary search over the fixed-size entries.
	size_t lo = 0, hi = it->count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const uint8_t *e = plain.data() + mid * kEntry;
		int c = std::memcmp(e, id.b.data(), 32);
		if (c == 0) {
			Reader r(ByteView(e + 32, kEntry - 32), "index table entry");
			uint32_t pack = r.u32();
			Hit h;
			h.rec.id = id;
			h.rec.offset = r.u32();
			h.rec.length = r.u32();
			h.rec.raw_len = r.u32();
			uint8_t type = r.u8();
			h.rec.flags = r.u8();
			if (pack >= packs_.size() || type < 1 || type > 3) {
				broken_ = true;
				return std::nullopt;
			}
			h.rec.type = BlobType(type);
			h.pack = packs_[pack];
			return h;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return std::nullopt;
}

} // namespace plakar
