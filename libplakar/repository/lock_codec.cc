// The lock body codec (docs/format.md, "Locks"): pure, the only code that reads a lock's
// bytes, fuzzed (tests/fuzz/fuzz_lock.cc).
#include "base/bytes.h"
#include "base/error.h"
#include "repository/lock.h"

namespace plakar {

namespace {
constexpr uint8_t kLockVersion = 1;
}

Bytes encode_lock(LockType type, const std::string &host, uint32_t pid, int64_t created, int64_t refreshed)
{
	Writer w;
	w.u8(kLockVersion);
	w.u8(uint8_t(type));
	w.str(host);
	w.u32(pid);
	w.u64(uint64_t(created));
	w.u64(uint64_t(refreshed));
	return w.take();
}

LockInfo decode_lock(const std::string &name, ByteView body)
{
	Reader r(body, "lock");
	if (r.u8() != kLockVersion)
		fail(Code::Version, "lock " + name + ": unknown version");
	LockInfo l;
	l.name = name;
	uint8_t t = r.u8();
	if (t != uint8_t(LockType::Shared) && t != uint8_t(LockType::Exclusive) && t != uint8_t(LockType::Reader))
		r.bad();
	l.type = LockType(t);
	l.host = r.str();
	l.pid = r.u32();
	l.created_ns = int64_t(r.u64());
	l.refreshed_ns = int64_t(r.u64());
	r.expect_done();
	return l;
}

} // namespace plakar
