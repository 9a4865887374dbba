#include "compression/zstd.h"

#include <zstd.h>

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

bool compress(ByteView in, int level, Bytes &out)
{
	if (in.size() < 64)
		return false;
	size_t at = out.size();
	// Only a strictly smaller result is kept, so the destination never needs more than in.size().
	out.resize(at + in.size() - 1);
	size_t n = ZSTD_compressCCtx(contexts().c, out.data() + at, in.size() - 1, in.data(), in.size(), level);
	if (ZSTD_isError(n)) {
		out.resize(at);
		return false;
	}
	out.resize(at + n);
	return true;
}

Bytes decompress(ByteView in, size_t raw_len)
{
	Bytes out(raw_len);
	size_t n = ZSTD_decompressDCtx(contexts().d, out.data(), raw_len, in.data(), in.size());
	if (ZSTD_isError(n) || n != raw_len)
		fail(Code::Corrupt, "malformed compressed data");
	return out;
}

Bytes decompress_frame(ByteView in, size_t limit)
{
	unsigned long long n = ZSTD_getFrameContentSize(in.data(), in.size());
	if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > limit)
		fail(Code::Corrupt, "malformed compressed data");
	return decompress(in, size_t(n));
}

} // namespace plakar::compression
