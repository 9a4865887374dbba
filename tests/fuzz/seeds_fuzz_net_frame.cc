// Seeds for fuzz_net_frame: a split byte, then well-formed streams (a handshake, requests of
// every type, a message in several frames, answers and failures).
#include <cstdint>
#include <vector>

#include "net/protocol.h"

using namespace plakar;
using namespace plakar::net;

// The key of the authenticated streams (fuzz_net_frame.cc uses it when the first byte's high
// bit is set).
extern const uint8_t kFuzzKey[32] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                     7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};

namespace {
constexpr uint32_t kFuzzFrame = 64; // fuzz_net_frame.cc's frame limit

// Requests and answers as they travel past a handshake: tagged, sealed under kFuzzKey.
Bytes sealed_stream(uint8_t split)
{
	const std::string name(16, 'b');
	Bytes s;
	append_message(s, Type::Open, 1, {}, kFuzzFrame, true);
	Bytes put = encode_named(Kind::Pack, name);
	put.resize(put.size() + 150, 9);
	append_message(s, Type::Put, 2, put, kFuzzFrame, true);
	append_message(s, Type::GetRange, 3, encode_range(Kind::Pack, name, 1, 2), kFuzzFrame, true);
	append_message(s, Type::Ok, 2, encode_names({name}), kFuzzFrame, true);
	append_message(s, Type::Fail, 0, encode_fail(Code::Corrupt, "bad"), kFuzzFrame, true);
	FrameSealer(ByteView(kFuzzKey, sizeof kFuzzKey), Direction::ToServer).seal(s);
	s.insert(s.begin(), uint8_t(0x80 | split));
	return s;
}
} // namespace

std::vector<std::vector<uint8_t>> fuzz_seeds()
{
	std::vector<std::vector<uint8_t>> seeds;
	const std::string name(16, 'a');
	for (uint8_t split : {0, 5, 15, 60}) {
		Bytes s{split};
		Hello h;
		h.nonce = Bytes(kNonce, 1);
		append_message(s, Type::Hello, 0, encode(h), kFuzzFrame);
		Challenge c;
		c.max_in_flight = 4;
		c.nonce = Bytes(kNonce, 2);
		append_message(s, Type::Challenge, 0, encode(c), kFuzzFrame);
		append_message(s, Type::Auth, 0, encode(AuthMsg{"alice", Bytes(32, 3)}), kFuzzFrame);
		append_message(s, Type::Welcome, 0, encode(WelcomeMsg{Rights::AppendOnly, Bytes(32, 4)}), kFuzzFrame);
		append_message(s, Type::Create, 1, encode_create(as_bytes("CONFIG"), "00ff", as_bytes("key")), kFuzzFrame);
		append_message(s, Type::Open, 2, {}, kFuzzFrame);
		Bytes put = encode_named(Kind::Pack, name);
		put.resize(put.size() + 150, 7); // four frames
		append_message(s, Type::Put, 3, put, kFuzzFrame);
		append_message(s, Type::Get, 4, encode_named(Kind::Index, name), kFuzzFrame);
		append_message(s, Type::GetRange, 5, encode_range(Kind::Pack, name, 10, 20), kFuzzFrame);
		append_message(s, Type::Size, 6, encode_named(Kind::Snapshot, "0a1b-2c"), kFuzzFrame);
		append_message(s, Type::List, 7, encode_kind(Kind::Lock), kFuzzFrame);
		append_message(s, Type::Remove, 8, encode_named(Kind::Key, name), kFuzzFrame);
		append_message(s, Type::Ping, 9, {}, kFuzzFrame);
		append_message(s, Type::Ok, 7, encode_names({name, "0123"}), kFuzzFrame);
		append_message(s, Type::Fail, 4, encode_fail(Code::NotFound, "index aaaa not found"), kFuzzFrame);
		append_message(s, Type::Fail, 0, encode_fail(Code::Auth, "authentication failed"), kFuzzFrame);
		seeds.emplace_back(s.begin(), s.end());
		Bytes t = sealed_stream(split);
		seeds.emplace_back(t.begin(), t.end());
	}
	return seeds;
}
