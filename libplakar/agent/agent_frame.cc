// The key agent's frame codec (agent/agent.h): pure, fuzzed (tests/fuzz/fuzz_agent_frame.cc).
#include <cstring>

#include "agent/agent.h"

namespace plakar::agent {

bool decode_frame_header(ByteView header, uint8_t &type, size_t &len)
{
	if (header.size() != kFrameHeader || std::memcmp(header.data(), "PLKA", 4) != 0 || header[4] != kFrameVersion)
		return false;
	type = header[5];
	len = size_t(header[6]) | size_t(header[7]) << 8;
	return len <= kFramePayloadMax;
}

Request classify_request(uint8_t type, size_t len)
{
	switch (type) {
	case 1: return len == 16 ? Request::Get : Request::Invalid;  // repository id
	case 2: return len == 48 ? Request::Put : Request::Invalid;  // repository id, master key
	case 3: return len == 0 ? Request::Stop : Request::Invalid;
	default: return Request::Invalid;
	}
}

} // namespace plakar::agent
