#include "compression/zstd.h"

#include <zstd.h>

#include <algorithm>

#include "base/error.h"

namespace plakar::compression {

namespace {
struct Contexts {
	ZSTD_CCtx *c = ZSTD_createCCtx();
	ZSTD_DCtx *d = ZSTD_createDCtx();
	~Contexts()
	{
		ZSTD_freeCCtx(c);
		ZSTD_freeDCtx(d);
	}
};
Contexts &contexts()
{
	thread_local Contexts ctx;
	return ctx;
}
} // namespace

size_t compress_into(ByteView in, int level, uint8_t *out)
{
	if (in.size() < 64)
		return 0;
	// Only a strictly smaller result is kept, so the destination never needs more than in.size() - 1.
	size_t n = ZSTD_compressCCtx(contexts().c, out, in.size() - 1, in.data(), in.size(), level);
	return ZSTD_isError(n) ? 0 : n;
}

bool compress(ByteView in, int level, Bytes &out)
{
	if (in.size() < 64)
		return false;
	size_t at = out.size();
	out.resize(at + in.size() - 1);
	size_t n = compress_into(in, level, out.data() + at);
	out.resize(at + n);
	return n != 0;
}

void decompress_into(ByteView in, uint8_t *out, size_t raw_len)
{
	size_t n = ZSTD_decompressDCtx(contexts().d, out, raw_len, in.data(), in.size());
	if (ZSTD_isError(n) || n != raw_len)
		fail(Code::Corrupt, "malformed compressed data");
}

Bytes decompress(ByteView in, size_t raw_len)
{
	Bytes out(raw_len);
	decompress_into(in, out.data(), raw_len);
	return out;
}

Bytes decompress_frame(ByteView in, size_t limit)
{
	unsigned long long n = ZSTD_getFrameContentSize(in.data(), in.size());
	if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > limit)
		fail(Code::Corrupt, "malformed compressed data");
	// The size the frame claims is not trusted for the allocation: the output grows as the data
	// really decompresses (a few bytes claiming 2 GiB allocate almost nothing before failing).
	ZSTD_DCtx *d = contexts().d;
	ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
	Bytes out(std::min<size_t>(size_t(n), size_t(1) << 20));
	ZSTD_inBuffer src{in.data(), in.size(), 0};
	size_t done = 0;
	for (;;) {
		ZSTD_outBuffer dst{out.data(), out.size(), done};
		size_t rc = ZSTD_decompressStream(d, &dst, &src);
		if (ZSTD_isError(rc))
			fail(Code::Corrupt, "malformed compressed data");
		done = dst.pos;
		if (rc == 0)
			break; // the frame is complete
		if (done > n || (src.pos == src.size && done < out.size()))
			fail(Code::Corrupt, "malformed compressed data");
		if (done == out.size()) {
			if (out.size() >= n) // more output than the frame claims
				fail(Code::Corrupt, "malformed compressed data");
			out.resize(std::min<size_t>(size_t(n), out.size() * 2));
		}
	}
	if (done != n || src.pos != src.size)
		fail(Code::Corrupt, "malformed compressed data");
	out.resize(done);
	return out;
}

} // namespace plakar::compression
