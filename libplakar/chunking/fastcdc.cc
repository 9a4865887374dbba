#include "chunking/fastcdc.h"

#include <bit>
#include <cstring>

#include "base/error.h"

namespace plakar {

void ChunkParams::validate() const
{
	if (min < 64 || min >= avg || avg >= max || max > 64u * 1024 * 1024 || !std::has_single_bit(avg))
		fail(Code::Invalid, "invalid chunk sizes (need 64 <= min < avg < max <= 64 MiB, avg a power of two)");
}

// A mask of `bits` one-bits spread over the upper part of the word: the gear hash shifts left,
// so its high bits depend on the most recent 64 bytes.
static uint64_t spread_mask(int bits)
{
	uint64_t m = 0;
	for (int i = 0; i < bits; i++)
		m |= uint64_t(1) << (63 - 2 * i % 48 - (2 * i / 48));
	return m;
}

Chunker::Chunker(const ChunkParams &params, ByteView seed) : p_(params)
{
	p_.validate();
	if (seed.size() != 256 * 8)
		fail(Code::Error, "gear seed must be 2048 bytes");
	for (int i = 0; i < 256; i++)
		std::memcpy(&gear_[i], seed.data() + 8 * i, 8);
	int bits = std::countr_zero(p_.avg);
	// Normalized chunking level 2: harder to cut before avg, easier after.
	mask_s_ = spread_mask(bits + 2);
	mask_l_ = spread_mask(bits - 2);
}

// Rolls the gear hash over data[i, end) and returns the position after the first byte where
// fp & mask is zero, or 0 when there is none. Unrolled by four (one test per byte, exactly the
// byte-at-a-time result): the loop is what a push spends most on after compression.
static inline size_t scan(const uint64_t *gear, const uint8_t *data, size_t i, size_t end, uint64_t &fp,
                          uint64_t mask)
{
	uint64_t h = fp;
	for (; i + 4 <= end; i += 4) {
		h = (h << 1) + gear[data[i]];
		if (!(h & mask))
			return fp = h, i + 1;
		h = (h << 1) + gear[data[i + 1]];
		if (!(h & mask))
			return fp = h, i + 2;
		h = (h << 1) + gear[data[i + 2]];
		if (!(h & mask))
			return fp = h, i + 3;
		h = (h << 1) + gear[data[i + 3]];
		if (!(h & mask))
			return fp = h, i + 4;
	}
	for (; i < end; i++) {
		h = (h << 1) + gear[data[i]];
		if (!(h & mask))
			return fp = h, i + 1;
	}
	fp = h;
	return 0;
}

size_t Chunker::cut(const uint8_t *data, size_t n, bool eof) const
{
	if (n < p_.max && !eof)
		return 0;
	if (n <= p_.min)
		return n;
	size_t end = n < p_.max ? n : p_.max;
	size_t normal = end < p_.avg ? end : p_.avg;
	uint64_t fp = 0;
	// Harder to cut before avg, easier after.
	if (size_t at = scan(gear_.data(), data, p_.min, normal, fp, mask_s_))
		return at;
	if (size_t at = scan(gear_.data(), data, normal, end, fp, mask_l_))
		return at;
	return end;
}

} // namespace plakar
