#include <catch2/catch.hpp>

#include <sys/resource.h>

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

TEST_CASE("a frame claiming a huge size allocates only what really decompresses", "[compression][trust]")
{
	// A valid frame header that claims 2 GiB - 1 of content, then one raw byte: what a writer
	// holding the key could seal as a snapshot header or index segment.
	Bytes frame = {0x28, 0xB5, 0x2F, 0xFD, // magic
	               0xA0,                   // 4-byte content size, single segment
	               0xFF, 0xFF, 0xFF, 0x7F, // content size
	               0x09, 0x00, 0x00,       // last block, raw, 1 byte
	               'x'};
	struct rusage before, after;
	getrusage(RUSAGE_SELF, &before);
	CHECK(test::code_of([&] { compression::decompress_frame(frame, size_t(1) << 31); }) == Code::Corrupt);
	getrusage(RUSAGE_SELF, &after);
	CHECK(after.ru_maxrss - before.ru_maxrss < 64 * 1024); // KiB: far from 2 GiB
	CHECK(test::code_of([&] { compression::decompress_frame(frame, 1 << 20); }) == Code::Corrupt);
	// Real frames of every size still round-trip, through several growths of the output.
	for (size_t n : {size_t(100), size_t(1) << 20, size_t(5) << 20}) {
		Bytes data = test::random_data(n / 2, n);
		data.resize(n, 'z');
		Bytes packed;
		REQUIRE(compression::compress(data, 3, packed));
		CHECK(compression::decompress_frame(packed, n) == data);
		CHECK(test::code_of([&] { compression::decompress_frame(packed, n - 1); }) == Code::Corrupt);
	}
}
