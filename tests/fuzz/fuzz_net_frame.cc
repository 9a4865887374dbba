// Fuzz target for the plakar:// wire decoder (net/protocol.h) and the parsers of what it
// delivers: whatever the bytes and however they are split, the decoder yields messages within
// the limits, or throws Code::Corrupt; the handshake and request parsers throw Code::Corrupt
// or Code::Version. Anything else (a crash, a sanitizer report, another exception) is a bug.
// When the first byte's high bit is set, the decoder checks tags (as past a handshake) under
// kFuzzKey, so the seeds sealed with it reach the messages and the mutations reach the check.
//
// Built with the standalone driver (driver.cc) for ctest, or with libFuzzer:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Ilibplakar
//     tests/fuzz/fuzz_net_frame.cc libplakar/net/protocol.cc libplakar/storage/store.cc
//     libplakar/crypto/crypto.cc libplakar/base/bytes.cc libplakar/base/id.cc
//     libplakar/base/error.cc -lcrypto -o fuzz_net_frame && ./fuzz_net_frame
// (one command line).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "base/error.h"
#include "net/protocol.h"

using namespace plakar;
using namespace plakar::net;

extern const uint8_t kFuzzKey[32];

namespace {
template <class F> void must_be_refused_cleanly(F f)
{
	try {
		f();
	} catch (const Error &e) {
		if (e.code() != Code::Corrupt && e.code() != Code::Version)
			std::abort();
	}
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	// The first byte chooses how the rest is split, as reads from a socket would split it.
	const size_t step = size_t((data[0] & 0x7f) % 61) + 1;
	// Small limits: messages of several frames, and both limits, within short inputs.
	const uint32_t frame_limit = 64;
	const uint64_t message_limit = 256;
	Decoder dec(frame_limit, message_limit);
	if (data[0] & 0x80)
		dec.authenticate(ByteView(kFuzzKey, sizeof kFuzzKey), Direction::ToServer);
	std::vector<Decoder::Message> out;
	try {
		for (size_t i = 1; i < size; i += step)
			dec.feed(ByteView(data + i, std::min(step, size - i)), out);
	} catch (const Error &e) {
		if (e.code() != Code::Corrupt)
			std::abort();
	}
	if (dec.partial_bytes() > dec.partial_count() * message_limit)
		std::abort();
	for (const auto &m : out) {
		if (m.body.size() > message_limit)
			std::abort();
		switch (m.type) {
		case Type::Hello: must_be_refused_cleanly([&] { decode_hello(m.body); }); break;
		case Type::Challenge: must_be_refused_cleanly([&] { decode_challenge(m.body); }); break;
		case Type::Auth: must_be_refused_cleanly([&] { decode_auth(m.body); }); break;
		case Type::Welcome: must_be_refused_cleanly([&] { decode_welcome(m.body); }); break;
		case Type::Ok: must_be_refused_cleanly([&] { decode_names(m.body); }); break;
		case Type::Fail:
			try {
				throw_fail(m.body, "fuzz");
			} catch (const Error &) {
				// Any code: a failure carries the server's code.
			}
			break;
		default: must_be_refused_cleanly([&] { decode_request(m.type, m.body); }); break;
		}
	}
	return 0;
}
