// Fuzz target for chunk lists (snapshot/codec.h): decode_chunk_list refuses malformed lists
// (and counts the input cannot hold) with Code::Corrupt.
#include "common.h"
#include "samples.h"

using namespace plakar;

std::vector<Bytes> fuzz_seeds()
{
	std::vector<ChunkRef> c;
	for (uint8_t i = 0; i < 20; i++)
		c.push_back({Id::from(Bytes(32, i)), 1000u * i});
	return {encode_chunk_list(c), encode_chunk_list({})};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz::refused_cleanly([&] { decode_chunk_list(ByteView(data, size)); }, {Code::Corrupt});
	return 0;
}
