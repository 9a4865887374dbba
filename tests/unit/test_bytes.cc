#include <catch2/catch.hpp>

#include "base/bytes.h"
#include "base/error.h"
#include "base/id.h"

using namespace plakar;

TEST_CASE("varints, strings and integers round-trip", "[bytes]")
{
	Writer w;
	w.u8(7);
	w.u32(0xdeadbeef);
	w.u64(0x0123456789abcdefULL);
	for (uint64_t v : {0ULL, 1ULL, 127ULL, 128ULL, 300ULL, ~0ULL})
		w.varint(v);
	for (int64_t v : std::initializer_list<int64_t>{0, -1, 1, INT64_MIN, INT64_MAX})
		w.svarint(v);
	w.str(std::string("a\0b\n", 4));
	Reader r(w.buf());
	CHECK(r.u8() == 7);
	CHECK(r.u32() == 0xdeadbeef);
	CHECK(r.u64() == 0x0123456789abcdefULL);
	for (uint64_t v : {0ULL, 1ULL, 127ULL, 128ULL, 300ULL, ~0ULL})
		CHECK(r.varint() == v);
	for (int64_t v : std::initializer_list<int64_t>{0, -1, 1, INT64_MIN, INT64_MAX})
		CHECK(r.svarint() == v);
	CHECK(r.str() == std::string("a\0b\n", 4));
	CHECK(r.done());
}

TEST_CASE("the reader refuses truncated and forged input", "[bytes]")
{
	Bytes b = {0x05, 'a', 'b'}; // string of 5 with only 2 bytes
	Reader r(b);
	CHECK_THROWS_AS(r.str(), Error);
	Bytes big = {0xff, 0xff, 0xff, 0xff, 0x0f}; // a count far above what remains
	Reader r2(big);
	try {
		(void)r2.count(32);
		FAIL("count accepted");
	} catch (const Error &e) {
		CHECK(e.code() == Code::Corrupt);
	}
	Bytes overlong(11, 0xff);
	Reader r3(overlong);
	CHECK_THROWS_AS(r3.varint(), Error);
}

TEST_CASE("hex and ids", "[bytes]")
{
	Bytes out;
	CHECK(hex_decode("00ff10", out));
	CHECK(out == Bytes{0x00, 0xff, 0x10});
	CHECK(hex_encode(out) == "00ff10");
	CHECK_FALSE(hex_decode("0", out));
	CHECK_FALSE(hex_decode("zz", out));
	Id id = Id::from_hex(std::string(64, 'a'));
	CHECK(id.hex() == std::string(64, 'a'));
	CHECK_THROWS_AS(Id::from_hex("abc"), Error);
}
