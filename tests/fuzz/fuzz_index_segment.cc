// Fuzz target for index segment bodies, plain and merged (repository/index.h): read_head and
// load_segment refuse what is malformed with Code::Corrupt or Code::Version, and agree on
// what they accept; what loads can be searched (or unloaded).
#include "common.h"
#include "repository/index.h"

using namespace plakar;

std::vector<Bytes> fuzz_seeds()
{
	Index idx;
	for (uint8_t i = 1; i < 6; i++)
		idx.add(Id::from(Bytes(32, uint8_t(i % 2 + 40))),
		        BlobRecord{Id::from(Bytes(32, i)), BlobType(1 + i % 3), uint8_t(i & 1), 40u * i, 100, 90});
	return {idx.encode_fresh(), idx.encode_fresh({"a-superseded-segment", "another"})};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz::refused_cleanly([&] {
		Index idx;
		auto head = Index::read_head(ByteView(data, size));
		size_t run = 0;
		auto same = idx.load_segment(ByteView(data, size), &run);
		if (same.entries != head.entries || same.supersedes != head.supersedes)
			__builtin_trap();
		if (size % 2)
			idx.unload(run);
		idx.finish_load();
		for (uint8_t i = 0; i < 6; i++) {
			idx.find(Id::from(Bytes(32, i)));
			idx.find_all(Id::from(Bytes(32, i)));
		}
		idx.summary();
	});
	return 0;
}
