// Repository locks (docs/format.md, "Locks and garbage collection").
//
// A lock is a sealed object of kind Lock under a random name: its type, the host and pid
// holding it, when it was taken and when it was last refreshed. A holder refreshes it every
// kLockRefresh from a thread of its own; a lock not refreshed for kLockStale, or held by a
// process of this host that no longer exists, is stale and ignored (and removed by gc).
//
// Pushes take shared locks and readers (an open snapshot, check, locate) reader locks, which
// never wait and never block anything: they only tell gc which pushes and readers were running
// when it removed blobs from the index (two-phase deletion: what they may still read is deleted
// only after they end). gc takes the exclusive lock: one gc at a time. Nothing ever waits for a
// lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
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
// A lock refreshed, by its own date, more than this in the future is stale too.
constexpr std::chrono::seconds kLockSkew{600};

struct LockInfo {
	std::string name;
	LockType type = LockType::Shared;
	std::string host;
	uint32_t pid = 0;
	int64_t created_ns = 0, refreshed_ns = 0;
	bool stale = false;   // not refreshed in time, or its process is gone, or unreadable
	bool damaged = false; // does not authenticate (counted as stale)
};

// The body of a lock object (inside its sealed envelope). decode_lock throws Code::Corrupt or
// Code::Version.
Bytes encode_lock(LockType type, const std::string &host, uint32_t pid, int64_t created, int64_t refreshed);
LockInfo decode_lock(const std::string &name, ByteView body);

// Every lock in the repository, with its staleness judged now.
std::vector<LockInfo> list_locks(Repository &repo);

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
