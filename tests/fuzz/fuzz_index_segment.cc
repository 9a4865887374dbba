// Fuzz target for index segment bodies (repository/index.h): load_segment refuses what is
// malformed with Code::Corrupt or Code::Version; what loads can be searched.
#include "common.h"
#include "repository/index.h"

using namespace plakar;

std::vector<Bytes> fuzz_seeds()
{
	Index idx;
	for (uint8_t i = 1; i < 6; i++)
		idx.add(Id::from(Bytes(32, uint8_t(i % 2 + 40))),
		        BlobRecord{Id::from(Bytes(32, i)), BlobType(1 + i % 3), uint8_t(i & 1), 40u * i, 100, 90});
	return {idx.encode_fresh()};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz::refused_cleanly([&] {
		Index idx;
		idx.load_segment(ByteView(data, size));
		idx.finish_load();
		for (uint8_t i = 0; i < 6; i++) {
			idx.find(Id::from(Bytes(32, i)));
			idx.find_all(Id::from(Bytes(32, i)));
		}
		idx.summary();
	});
	return 0;
}
