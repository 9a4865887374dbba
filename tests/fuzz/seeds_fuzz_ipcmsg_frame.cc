// Seeds for fuzz_ipcmsg_frame: a split byte, then well-formed streams (a hello, messages,
// a query and its reply, a frame announcing a descriptor).
#include <cstdint>
#include <vector>

#include "privsep/frame.h"

using namespace plakar;
using namespace plakar::privsep;

namespace {
void add_frame(std::vector<uint8_t> &out, FrameHeader h, const Bytes &payload)
{
	h.length = uint32_t(payload.size());
	uint8_t head[kFrameHeader];
	encode_header(h, head);
	out.insert(out.end(), head, head + kFrameHeader);
	out.insert(out.end(), payload.begin(), payload.end());
}
} // namespace

std::vector<std::vector<uint8_t>> fuzz_seeds()
{
	std::vector<std::vector<uint8_t>> seeds;
	for (uint8_t split : {0, 3, 23, 60}) {
		std::vector<uint8_t> s{split};
		Hello hello;
		hello.max_payload = 4096;
		hello.name = "net<->store";
		FrameHeader h;
		h.type = kTypeHello;
		h.pid = 1234;
		add_frame(s, h, encode_hello(hello));
		h = FrameHeader{};
		h.type = 1;
		h.pid = 1234;
		add_frame(s, h, Bytes{'p', 'i', 'n', 'g'});
		h.flags = kFrameQuery;
		h.seq = 7;
		add_frame(s, h, Bytes(100, 'q'));
		h.flags = kFrameReply;
		add_frame(s, h, {});
		h.flags = kFrameFd;
		h.seq = 0;
		add_frame(s, h, Bytes(3, 0));
		seeds.push_back(s);
	}
	return seeds;
}
