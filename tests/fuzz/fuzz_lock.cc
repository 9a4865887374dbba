// Fuzz target for lock bodies and lock watches (repository/lock.h): decode_lock and
// decode_lock_watch refuse what is malformed with Code::Corrupt or Code::Version.
#include "common.h"
#include "repository/lock.h"

using namespace plakar;

// Lock bodies and lock watches: the first byte of an input picks which decoder reads the rest.
std::vector<Bytes> fuzz_seeds()
{
	HostIdentity id;
	id.boot_id[0] = 7;
	id.pid_ns = 4026531836u;
	LockWatch w;
	w.seen["0123456789abcdef0123456789abcdef"] = {5, 6};
	w.seen["ffffffffffffffffffffffffffffffff"] = {-1, 1};
	std::vector<Bytes> seeds;
	for (Bytes b : {encode_lock(LockType::Shared, "host", 42, 1, 2, id),
	                encode_lock(LockType::Exclusive, "", 0, -1, -1, HostIdentity{}),
	                encode_lock(LockType::Reader, "r", 1, 3, 4, id)}) {
		b.insert(b.begin(), 0);
		seeds.push_back(b);
	}
	Bytes v1{0, 1, 1, 1, 'h', 42, 0, 0, 0};
	v1.resize(v1.size() + 16, 0);
	seeds.push_back(v1);
	Bytes watch = encode_lock_watch(w);
	watch.insert(watch.begin(), 1);
	seeds.push_back(watch);
	return seeds;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	ByteView body(data + 1, size - 1);
	if (data[0] & 1)
		fuzz::refused_cleanly([&] { decode_lock_watch(body); });
	else
		fuzz::refused_cleanly([&] { decode_lock("lock", body); });
	return 0;
}
