// Repository locks (docs/format.md, "Locks and garbage collection").
//
// A lock is a sealed object of kind Lock under a random name: its type, the host and pid
// holding it (with the host's boot id and pid namespace), when it was taken and when it was
// last refreshed. A holder refreshes it every kLockRefresh from a thread of its own. Whether a
// lock is stale is never decided by comparing clocks of two hosts: a lock is stale when its
// process is gone (probed only in the same boot and pid namespace as the holder's), or when
// this host has watched it stay unchanged for kLockStale by its own clock (observed refreshes,
// recorded in the repository by each host that watches: a lock watch, sealed as kind LockWatch
// in the lock namespace); or when it does not open.
//
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"

namespace plakar {

class Repository;
class RepoLock;

enum class LockType : uint8_t { Shared = 1, Exclusive = 2, Reader = 3 };

constexpr std::chrono::seconds kLockRefresh{60};
constexpr std::chrono::seconds kLockStale{600};

// Where a process runs: the kernel's boot id and the inode of its pid namespace. Two processes
// with the same identity see the same pids; a hostname says nothing of the kind (containers,
// cloned machines). All zero when unknown (then no pid is ever probed).
struct HostIdentity {
	std::array<uint8_t, 16> boot_id{};
	uint64_t pid_ns = 0;
	bool known() const { return pid_ns != 0; }
	bool operator==(const HostIdentity &) const = default;
};
const HostIdentity &this_host();

struct LockInfo {
	std::string name;
	LockType type = LockType::Shared;
	std::string host;
	uint32_t pid = 0;
	int64_t created_ns = 0, refreshed_ns = 0; // by the holder's clock: shown, never compared
	HostIdentity identity;                    // unknown in version 1 locks
	bool stale = false;   // its process is gone, or watched unchanged for kLockStale, or unreadable
	bool damaged = false; // does not authenticate (counted as stale)
};

// The body of a lock object (inside its sealed envelope). decode_lock reads versions 1 and 2,
// throws Code::Corrupt or Code::Version.
Bytes encode_lock(LockType type, const std::string &host, uint32_t pid, int64_t created, int64_t refreshed,
                  const HostIdentity &identity);
LockInfo decode_lock(const std::string &name, ByteView body);

// What one host saw of the locks, by its own clock: per lock name, the refresh time the lock
// said and when this host first saw it say so. Pure codec (fuzzed); decode throws Code::Corrupt
// or Code::Version.
struct LockWatch {
	struct Seen {
		int64_t refreshed_ns = 0; // the lock's own value
		int64_t since_ns = 0;     // this host's clock when it first saw that value
	};
	std::map<std::string, Seen> seen;
};
Bytes encode_lock_watch(const LockWatch &w);
LockWatch decode_lock_watch(ByteView body);
// The name of this host's lock watch in the lock namespace (32 hex digits, from the machine id).
std::string lock_watch_name();

// Every lock in the repository, with its staleness judged now from this host's lock watch
// (read from the repository). With `watch`, the watch as updated by what was seen now is
// stored there; save_lock_watch() writes it (gc does, holding the exclusive lock).
std::vector<LockInfo> list_locks(Repository &repo, LockWatch *watch = nullptr);
// Writes this host's lock watch (removes it when it watches nothing).
void save_lock_watch(Repository &repo, const LockWatch &watch);

// What a reader holds while it may read blobs: the handle's reader lock, taken on first use and
// shared by every reader of the handle (released when the last one lets go). nullptr when the
// lock cannot be written (a read-only store or token, an older server): reading then goes on
// unprotected (a gc meanwhile may delete what it reads, which then fails with a clear error),
// and Repository::stats().reads_unprotected counts it.
std::shared_ptr<RepoLock> protect_reads(Repository &repo);

class RepoLock {
public:
	// Takes a lock. Exclusive: Code::Locked when another live exclusive lock exists (the
	// message names its host and pid). Shared: always succeeds.
	static std::unique_ptr<RepoLock> acquire(Repository &repo, LockType type);
	// Stops refreshing and removes the lock object.
	~RepoLock();
	RepoLock(const RepoLock &) = delete;
	RepoLock &operator=(const RepoLock &) = delete;

	const std::string &name() const { return name_; }
	// False when the lock went without a refresh for longer than kLockStale (the process was
	// suspended, the store unreachable): others may have judged it stale meanwhile.
	bool held_throughout() const;

private:
	RepoLock(Repository &repo, LockType type, std::string name);
	void write();
	void refresher();

	Repository &repo_;
	LockType type_;
	std::string name_;
	int64_t created_ns_;
	mutable std::mutex mu_;
	std::condition_variable cv_;
	bool stopping_ = false;
	bool lapsed_ = false;
	std::chrono::steady_clock::time_point last_ok_;
	std::thread thread_;
};

} // namespace plakar
