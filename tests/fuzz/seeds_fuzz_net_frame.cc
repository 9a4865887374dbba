// Seeds for fuzz_net_frame: a split byte, then well-formed streams (a handshake, requests of
// every type, a message in several frames, answers and failures).
#include <cstdint>
#include <vector>

#include "net/protocol.h"

using namespace plakar;
using namespace plakar::net;

std::vector<std::vector<uint8_t>> fuzz_seeds()
{
	std::vector<std::vector<uint8_t>> seeds;
	const std::string name(64, 'a');
	for (uint8_t split : {0, 5, 15, 60}) {
		Bytes s{split};
		Hello h;
		h.nonce = Bytes(kNonce, 1);
		append_message(s, Type::Hello, 0, encode(h), kMinFrame);
		Challenge c;
		c.max_in_flight = 4;
		c.nonce = Bytes(kNonce, 2);
		append_message(s, Type::Challenge, 0, encode(c), kMinFrame);
		append_message(s, Type::Auth, 0, encode(AuthMsg{"alice", Bytes(32, 3)}), kMinFrame);
		append_message(s, Type::Welcome, 0, encode(WelcomeMsg{Rights::AppendOnly, Bytes(32, 4)}), kMinFrame);
		append_message(s, Type::Create, 1, encode_create(as_bytes("CONFIG"), "00ff", as_bytes("key")), kMinFrame);
		append_message(s, Type::Open, 2, {}, kMinFrame);
		Bytes put = encode_named(Kind::Pack, name);
		put.resize(put.size() + 6000, 7); // three frames
		append_message(s, Type::Put, 3, put, kMinFrame);
		append_message(s, Type::Get, 4, encode_named(Kind::Index, name), kMinFrame);
		append_message(s, Type::GetRange, 5, encode_range(Kind::Pack, name, 10, 20), kMinFrame);
		append_message(s, Type::Size, 6, encode_named(Kind::Snapshot, "0a1b-2c"), kMinFrame);
		append_message(s, Type::List, 7, encode_kind(Kind::Lock), kMinFrame);
		append_message(s, Type::Remove, 8, encode_named(Kind::Key, name), kMinFrame);
		append_message(s, Type::Ping, 9, {}, kMinFrame);
		append_message(s, Type::Ok, 7, encode_names({name, "0123"}), kMinFrame);
		append_message(s, Type::Fail, 4, encode_fail(Code::NotFound, "index aaaa not found"), kMinFrame);
		append_message(s, Type::Fail, 0, encode_fail(Code::Auth, "authentication failed"), kMinFrame);
		seeds.emplace_back(s.begin(), s.end());
	}
	return seeds;
}
