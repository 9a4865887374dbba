// Fuzz target for the ipcmsg frame decoder and hello parser: whatever the bytes and however
// they are split, the decoder yields frames that match their headers and within the limit, or
// throws Code::Corrupt; the hello parser throws Code::Corrupt or Code::Version. Anything else
// (a crash, a sanitizer report, another exception) is a bug.
//
// Built with the standalone driver (driver.cc) for ctest, or with libFuzzer:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Ilibplakar
//     tests/fuzz/fuzz_ipcmsg_frame.cc libplakar/privsep/frame.cc libplakar/base/bytes.cc
//     libplakar/base/error.cc -o fuzz_ipcmsg_frame && ./fuzz_ipcmsg_frame
// (one command line).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "base/error.h"
#include "privsep/frame.h"

using namespace plakar;
using namespace plakar::privsep;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	// The first byte chooses how the rest is split, as reads from a socket would split it.
	const size_t step = size_t(data[0] % 61) + 1, limit = 4096;
	FrameDecoder dec(limit);
	std::vector<Frame> out;
	try {
		for (size_t i = 1; i < size; i += step)
			dec.feed(ByteView(data + i, std::min(step, size - i)), out);
	} catch (const Error &e) {
		if (e.code() != Code::Corrupt)
			std::abort();
	}
	for (const auto &f : out)
		if (f.payload.size() != f.h.length || f.h.length > limit)
			std::abort();
	for (const auto &f : out) {
		if (f.h.type != kTypeHello)
			continue;
		try {
			parse_hello(f.payload);
		} catch (const Error &e) {
			if (e.code() != Code::Corrupt && e.code() != Code::Version)
				std::abort();
		}
	}
	return 0;
}
