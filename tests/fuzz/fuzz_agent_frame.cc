// Fuzz target for the key agent's frames (agent/agent.h): the header decoder accepts only
// the magic, the version and a payload within the limit; a request is only one of the three
// kinds with its exact payload length.
#include <cstdlib>

#include "common.h"
#include "agent/agent.h"

using namespace plakar;

std::vector<Bytes> fuzz_seeds()
{
	return {Bytes{'P', 'L', 'K', 'A', 1, 1, 16, 0}, Bytes{'P', 'L', 'K', 'A', 1, 2, 48, 0},
	        Bytes{'P', 'L', 'K', 'A', 1, 3, 0, 0}};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t type = 0;
	size_t len = 0;
	if (!agent::decode_frame_header(ByteView(data, size), type, len))
		return 0;
	if (size != agent::kFrameHeader || len > agent::kFramePayloadMax)
		std::abort();
	auto q = agent::classify_request(type, len);
	if ((q == agent::Request::Get && len != 16) || (q == agent::Request::Put && len != 48) ||
	    (q == agent::Request::Stop && len != 0))
		std::abort();
	return 0;
}
