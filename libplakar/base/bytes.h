// Byte buffers and the little binary codec used by every on-disk structure.
//
// Writer appends little-endian integers, LEB128 varints and length-prefixed strings.
// Reader parses the same and throws Code::Corrupt on any overrun or malformed value, so
// parsers of untrusted bytes never read out of bounds.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace plakar {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView as_bytes(std::string_view s) { return {reinterpret_cast<const uint8_t *>(s.data()), s.size()}; }
inline std::string_view as_string(ByteView b) { return {reinterpret_cast<const char *>(b.data()), b.size()}; }

std::string hex_encode(ByteView b);
// Returns false on a malformed string (odd length, non-hex digit).
bool hex_decode(std::string_view s, Bytes &out);
// Exactly n bytes from 2n hex digits into out (memory the caller chose, e.g. wiped memory).
bool hex_decode_into(std::string_view s, uint8_t *out, size_t n);

// A buffer reused from call to call: growing it neither zeroes its bytes nor keeps the old ones,
// and it never shrinks. Hot paths (one per chunk) keep one per thread, so a chunk costs no
// allocation and no fresh pages.
class Scratch {
public:
	uint8_t *get(size_t n)
	{
		if (n > cap_) {
			p_.reset();
			p_ = std::make_unique_for_overwrite<uint8_t[]>(n);
			cap_ = n;
		}
		return p_.get();
	}

private:
	std::unique_ptr<uint8_t[]> p_;
	size_t cap_ = 0;
};

class Writer {
public:
	Bytes &buf() { return buf_; }
	Bytes take() { return std::move(buf_); }
	size_t size() const { return buf_.size(); }

	void u8(uint8_t v) { buf_.push_back(v); }
	void u32(uint32_t v) { put_le(v, 4); }
	void u64(uint64_t v) { put_le(v, 8); }
	void varint(uint64_t v)
	{
		while (v >= 0x80) {
			buf_.push_back(uint8_t(v) | 0x80);
			v >>= 7;
		}
		buf_.push_back(uint8_t(v));
	}
	void svarint(int64_t v) { varint((uint64_t(v) << 1) ^ uint64_t(v >> 63)); }
	void raw(ByteView b) { raw(b.data(), b.size()); }
	void raw(const void *p, size_t n)
	{
		if (n == 0)
			return;
		size_t at = buf_.size();
		buf_.resize(at + n);
		std::memcpy(buf_.data() + at, p, n);
	}
	void str(std::string_view s)
	{
		varint(s.size());
		raw(s.data(), s.size());
	}

private:
	void put_le(uint64_t v, int n)
	{
		for (int i = 0; i < n; i++)
			buf_.push_back(uint8_t(v >> (8 * i)));
	}
	Bytes buf_;
};

class Reader {
public:
	explicit Reader(ByteView b, const char *what = "object") : p_(b.data()), end_(b.data() + b.size()), what_(what) {}

	size_t remaining() const { return size_t(end_ - p_); }
	bool done() const { return p_ == end_; }
	uint8_t u8() { return uint8_t(get_le(1)); }
	uint32_t u32() { return uint32_t(get_le(4)); }
	uint64_t u64() { return get_le(8); }
	uint64_t varint();
	int64_t svarint()
	{
		uint64_t v = varint();
		return int64_t(v >> 1) ^ -int64_t(v & 1);
	}
	ByteView raw(size_t n)
	{
		need(n);
		ByteView r(p_, n);
		p_ += n;
		return r;
	}
	void raw(void *dst, size_t n)
	{
		need(n);
		std::memcpy(dst, p_, n);
		p_ += n;
	}
	std::string str()
	{
		uint64_t n = varint();
		need(n);
		std::string s(reinterpret_cast<const char *>(p_), size_t(n));
		p_ += n;
		return s;
	}
	// A count of items that each take at least min_size bytes: refuses counts the input
	// cannot hold, so a forged count never causes a huge allocation.
	size_t count(size_t min_size = 1)
	{
		uint64_t n = varint();
		if (min_size && n > remaining() / min_size)
			bad();
		return size_t(n);
	}
	void expect_done()
	{
		if (!done())
			bad();
	}
	[[noreturn]] void bad() const;

private:
	void need(uint64_t n) const
	{
		if (n > remaining())
			bad();
	}
	uint64_t get_le(int n)
	{
		need(n);
		uint64_t v = 0;
		for (int i = 0; i < n; i++)
			v |= uint64_t(p_[i]) << (8 * i);
		p_ += n;
		return v;
	}
	const uint8_t *p_, *end_;
	const char *what_;
};

} // namespace plakar
