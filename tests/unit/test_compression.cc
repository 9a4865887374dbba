#include <catch2/catch.hpp>

#include "base/error.h"
#include "compression/zstd.h"
#include "helpers.h"

using namespace plakar;

TEST_CASE("compressible data shrinks and round-trips", "[compression]")
{
	std::string text;
	for (int i = 0; i < 2000; i++)
		text += "line " + std::to_string(i % 17) + " of a log file\n";
	Bytes out;
	REQUIRE(compression::compress(as_bytes(text), 3, out));
	CHECK(out.size() < text.size() / 4);
	Bytes back = compression::decompress(out, text.size());
	CHECK(as_string(back) == text);
	CHECK(compression::decompress_frame(out, 1 << 20) == back);
}

TEST_CASE("incompressible data is left raw", "[compression]")
{
	Bytes rnd = test::random_data(100000, 9);
	Bytes out = {42};
	CHECK_FALSE(compression::compress(rnd, 3, out));
	CHECK(out == Bytes{42});
	Bytes tiny = {1, 2, 3};
	CHECK_FALSE(compression::compress(tiny, 3, out));
}

TEST_CASE("malformed or mis-sized compressed data is corrupt", "[compression]")
{
	Bytes out;
	std::string text(10000, 'a');
	REQUIRE(compression::compress(as_bytes(text), 3, out));
	CHECK_THROWS_AS(compression::decompress(out, text.size() + 1), Error);
	Bytes junk = test::random_data(100, 3);
	CHECK_THROWS_AS(compression::decompress(junk, 100), Error);
	CHECK_THROWS_AS(compression::decompress_frame(out, 100), Error);
}
