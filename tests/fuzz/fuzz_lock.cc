// Fuzz target for lock bodies (repository/lock.h): decode_lock refuses what is malformed with
// Code::Corrupt or Code::Version.
#include "common.h"
#include "repository/lock.h"

using namespace plakar;

std::vector<Bytes> fuzz_seeds()
{
	return {encode_lock(LockType::Shared, "host", 42, 1, 2), encode_lock(LockType::Exclusive, "", 0, -1, -1)};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz::refused_cleanly([&] { decode_lock("lock", ByteView(data, size)); });
	return 0;
}
