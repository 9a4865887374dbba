#include "base/bytes.h"

#include "base/error.h"

namespace plakar {

std::string hex_encode(ByteView b)
{
	static const char digits[] = "0123456789abcdef";
	std::string s(b.size() * 2, '\0');
	for (size_t i = 0; i < b.size(); i++) {
		s[2 * i] = digits[b[i] >> 4];
		s[2 * i + 1] = digits[b[i] & 15];
	}
	return s;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool hex_decode_into(std::string_view s, uint8_t *out, size_t n)
{
	if (s.size() != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = uint8_t(hi << 4 | lo);
	}
	return true;
}

bool hex_decode(std::string_view s, Bytes &out)
{
	if (s.size() % 2)
		return false;
	out.resize(s.size() / 2);
	return hex_decode_into(s, out.data(), out.size());
}

uint64_t Reader::varint()
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (p_ == end_)
			bad();
		uint8_t b = *p_++;
		if (shift == 63 && b > 1)
			bad();
		v |= uint64_t(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	bad();
}

void Reader::bad() const { fail(Code::Corrupt, std::string("malformed ") + what_); }

} // namespace plakar
