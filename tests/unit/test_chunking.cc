#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <set>

#include "base/error.h"
#include "chunking/fastcdc.h"
#include "crypto/crypto.h"
#include "helpers.h"

using namespace plakar;

namespace {
std::vector<size_t> cut_all(const Chunker &c, ByteView data)
{
	std::vector<size_t> sizes;
	size_t at = 0;
	while (at < data.size()) {
		size_t n = c.cut(data.data() + at, data.size() - at, true);
		REQUIRE(n > 0);
		sizes.push_back(n);
		at += n;
	}
	return sizes;
}

ChunkParams small_params()
{
	ChunkParams p;
	p.min = 2048;
	p.avg = 8192;
	p.max = 65536;
	return p;
}
} // namespace

TEST_CASE("chunk sizes respect min and max, and cover the input", "[chunking]")
{
	Bytes seed = test::random_data(2048, 1);
	Chunker c(small_params(), seed);
	Bytes data = test::random_data(4 << 20, 2);
	auto sizes = cut_all(c, data);
	size_t total = 0;
	for (size_t i = 0; i < sizes.size(); i++) {
		total += sizes[i];
		CHECK(sizes[i] <= 65536);
		if (i + 1 < sizes.size())
			CHECK(sizes[i] >= 2048);
	}
	CHECK(total == data.size());
	double avg = double(data.size()) / double(sizes.size());
	// Normalized chunking keeps the mean near the target.
	CHECK(avg > 8192 * 0.6);
	CHECK(avg < 8192 * 1.6);
}

TEST_CASE("the chunker asks for more data until it holds max bytes or the end", "[chunking]")
{
	Chunker c(small_params(), test::random_data(2048, 1));
	Bytes data = test::random_data(100000, 3);
	CHECK(c.cut(data.data(), 1000, false) == 0);
	CHECK(c.cut(data.data(), 1000, true) == 1000);
	CHECK(c.cut(data.data(), 65536, false) > 0);
	// All-zero data never matches the mask: chunks are cut at max.
	Bytes zeros(200000, 0);
	CHECK(c.cut(zeros.data(), zeros.size(), true) == 65536);
}

TEST_CASE("boundaries are content-defined: an insertion changes only nearby chunks", "[chunking]")
{
	Chunker c(small_params(), test::random_data(2048, 1));
	Bytes data = test::random_data(2 << 20, 4);
	Bytes shifted = data;
	shifted.insert(shifted.begin() + 1000000, {1, 2, 3, 4, 5, 6, 7});
	auto ids = [&](ByteView d) {
		std::set<Id> s;
		size_t at = 0;
		for (size_t n : cut_all(c, d)) {
			s.insert(crypto::sha256(d.subspan(at, n)));
			at += n;
		}
		return s;
	};
	auto a = ids(data), b = ids(shifted);
	size_t common = 0;
	for (const auto &id : a)
		common += b.count(id);
	CHECK(common + 3 >= a.size());
}

TEST_CASE("the gear table is keyed: another key gives other boundaries", "[chunking]")
{
	Bytes data = test::random_data(1 << 20, 5);
	Chunker c1(small_params(), test::random_data(2048, 1));
	Chunker c2(small_params(), test::random_data(2048, 2));
	CHECK(cut_all(c1, data) != cut_all(c2, data));
	CHECK(cut_all(c1, data) == cut_all(Chunker(small_params(), test::random_data(2048, 1)), data));
}

TEST_CASE("invalid chunk parameters are refused", "[chunking]")
{
	ChunkParams p;
	p.avg = 1000000; // not a power of two
	CHECK_THROWS_AS(p.validate(), Error);
	ChunkParams q;
	q.min = q.avg;
	CHECK_THROWS_AS(q.validate(), Error);
	CHECK_NOTHROW(ChunkParams().validate());
}

// The chunker as specified in docs/format.md, one byte at a time: the fast one must cut exactly
// where it does (boundaries decide deduplication against every existing repository).
static size_t reference_cut(const ChunkParams &p, ByteView seed, const uint8_t *data, size_t n, bool eof)
{
	auto spread = [](int bits) {
		uint64_t m = 0;
		for (int i = 0; i < bits; i++)
			m |= uint64_t(1) << (63 - 2 * i % 48 - (2 * i / 48));
		return m;
	};
	uint64_t gear[256];
	std::memcpy(gear, seed.data(), sizeof gear);
	int bits = std::countr_zero(p.avg);
	uint64_t ms = spread(bits + 2), ml = spread(bits - 2);
	if (n < p.max && !eof)
		return 0;
	if (n <= p.min)
		return n;
	size_t end = std::min<size_t>(n, p.max), normal = std::min<size_t>(end, p.avg);
	uint64_t fp = 0;
	for (size_t i = p.min; i < end; i++) {
		fp = (fp << 1) + gear[data[i]];
		if (!(fp & (i < normal ? ms : ml)))
			return i + 1;
	}
	return end;
}

TEST_CASE("the chunker cuts exactly where the byte-at-a-time definition does", "[chunking]")
{
	Bytes seed = test::random_data(2048, 7);
	for (ChunkParams p : {small_params(), ChunkParams{}, ChunkParams{65, 128, 1024}, ChunkParams{100, 4096, 4103}}) {
		Chunker c(p, seed);
		// Random data, text-like data and zeros; every length of tail up to a few bytes.
		Bytes data = test::random_data(3 << 20, 8);
		for (size_t i = 1 << 20; i < (2 << 20); i++)
			data[i] = uint8_t('a' + (data[i] % 7));
		std::fill(data.begin() + (2 << 20), data.begin() + (2 << 20) + 300000, 0);
		size_t at = 0, cuts = 0;
		while (at < data.size()) {
			size_t left = data.size() - at;
			for (size_t trim : {size_t(0), size_t(1), size_t(2), size_t(3)})
				if (left > trim) {
					bool eof = trim == 0;
					REQUIRE(c.cut(data.data() + at, left - trim, eof) ==
					        reference_cut(p, seed, data.data() + at, left - trim, eof));
				}
			size_t n = c.cut(data.data() + at, left, true);
			at += n;
			cuts++;
		}
		CHECK(cuts > 2);
	}
}
