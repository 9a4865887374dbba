// Fuzz target for gc plans (snapshot/codec.h): decode_gc_plan refuses what is malformed with
// Code::Corrupt or Code::Version.
#include "common.h"
#include "samples.h"

using namespace plakar;

std::vector<Bytes> fuzz_seeds()
{
	GcPlan p;
	p.time_ns = 5;
	p.witnesses = {"lock-a", "lock-b"};
	p.packs = {Id::from(Bytes(32, 1)), Id::from(Bytes(32, 2))};
	GcPlan q = p;
	q.segments = {std::string(64, 'a'), std::string(64, 'b')};
	return {encode_gc_plan(p), encode_gc_plan(GcPlan{}), encode_gc_plan(q)};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz::refused_cleanly([&] { decode_gc_plan("plan", ByteView(data, size)); });
	return 0;
}
