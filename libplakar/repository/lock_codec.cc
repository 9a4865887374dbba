// The lock body codec (docs/format.md, "Locks"): pure, the only code that reads a lock's
// bytes, fuzzed (tests/fuzz/fuzz_lock.cc).
#include "base/bytes.h"
#include "base/error.h"
#include "repository/lock.h"
#include "storage/store.h"

namespace plakar {

namespace {
constexpr uint8_t kLockVersion = 2; // 1: without the host identity
constexpr uint8_t kWatchVersion = 1;
} // namespace

Bytes encode_lock(LockType type, const std::string &host, uint32_t pid, int64_t created, int64_t refreshed,
                  const HostIdentity &identity)
{
	Writer w;
	w.u8(kLockVersion);
	w.u8(uint8_t(type));
	w.str(host);
	w.u32(pid);
	w.u64(uint64_t(created));
	w.u64(uint64_t(refreshed));
	w.raw(identity.boot_id.data(), identity.boot_id.size());
	w.u64(identity.pid_ns);
	return w.take();
}

LockInfo decode_lock(const std::string &name, ByteView body)
{
	Reader r(body, "lock");
	uint8_t version = r.u8();
	if (version != 1 && version != kLockVersion)
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
	if (version >= 2) {
		r.raw(l.identity.boot_id.data(), l.identity.boot_id.size());
		l.identity.pid_ns = r.u64();
	}
	r.expect_done();
	return l;
}

Bytes encode_lock_watch(const LockWatch &watch)
{
	Writer w;
	w.u8(kWatchVersion);
	w.varint(watch.seen.size());
	for (const auto &[name, s] : watch.seen) {
		w.str(name);
		w.u64(uint64_t(s.refreshed_ns));
		w.u64(uint64_t(s.since_ns));
	}
	return w.take();
}

LockWatch decode_lock_watch(ByteView body)
{
	Reader r(body, "lock watch");
	if (r.u8() != kWatchVersion)
		fail(Code::Version, "lock watch: unknown version");
	LockWatch watch;
	size_t n = r.count(17);
	for (size_t i = 0; i < n; i++) {
		std::string name = r.str();
		if (!valid_object_name(name))
			r.bad();
		LockWatch::Seen s;
		s.refreshed_ns = int64_t(r.u64());
		s.since_ns = int64_t(r.u64());
		if (!watch.seen.emplace(std::move(name), s).second)
			r.bad();
	}
	r.expect_done();
	return watch;
}

} // namespace plakar
