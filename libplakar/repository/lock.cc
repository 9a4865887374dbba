#include "repository/lock.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include "base/error.h"
#include "crypto/crypto.h"
#include "repository/repository.h"

namespace plakar {

namespace {

int64_t now_ns()
{
	return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
	    .count();
}

std::string hostname()
{
	char buf[256] = {};
	if (::gethostname(buf, sizeof buf - 1) != 0)
		return "unknown";
	return buf;
}

bool judged_stale(const LockInfo &l)
{
	int64_t age = now_ns() - l.refreshed_ns;
	if (age > std::chrono::nanoseconds(kLockStale).count())
		return true;
	// Dated further in the future than clocks disagree: forged (a lock that would block gc,
	// rm and repair forever) or from a host whose clock is wrong; either way not trusted.
	if (age < -std::chrono::nanoseconds(kLockSkew).count())
		return true;
	// A process of this host that is gone holds nothing (a killed push, a crashed gc).
	if (l.host == hostname() && l.pid && ::kill(pid_t(l.pid), 0) != 0 && errno == ESRCH)
		return true;
	return false;
}

} // namespace

std::vector<LockInfo> list_locks(Repository &repo)
{
	std::vector<LockInfo> out;
	for (const auto &name : repo.store().list(Kind::Lock)) {
		try {
			Bytes raw = repo.store().get(Kind::Lock, name);
			if (sealed_kind(raw) == uint8_t(ObjectKind::GcPlan))
				continue; // gc's record of condemned packs, not a lock
			LockInfo l = decode_lock(name, repo.open_sealed(ObjectKind::Lock, name, raw));
			l.stale = judged_stale(l);
			out.push_back(std::move(l));
		} catch (const Error &e) {
			if (e.is_not_found())
				continue; // released meanwhile
			LockInfo l;
			l.name = name;
			l.stale = l.damaged = true;
			out.push_back(std::move(l));
		}
	}
	return out;
}

std::shared_ptr<RepoLock> protect_reads(Repository &repo)
{
	auto &slot = repo.reader_slot();
	std::lock_guard lk(slot.mu);
	if (auto held = slot.lock.lock())
		return held;
	std::shared_ptr<RepoLock> l;
	try {
		l = RepoLock::acquire(repo, LockType::Reader);
	} catch (const Error &) {
		repo.count_unprotected_read();
		return nullptr;
	}
	slot.lock = l;
	return l;
}

RepoLock::RepoLock(Repository &repo, LockType type, std::string name)
    : repo_(repo), type_(type), name_(std::move(name)), created_ns_(now_ns())
{
}

void RepoLock::write() { repo_.put_sealed(Kind::Lock, ObjectKind::Lock, name_, encode_lock(type_, hostname(), uint32_t(::getpid()), created_ns_, now_ns())); }

std::unique_ptr<RepoLock> RepoLock::acquire(Repository &repo, LockType type)
{
	std::unique_ptr<RepoLock> l(new RepoLock(repo, type, hex_encode(crypto::random_bytes(16))));
	l->write();
	l->last_ok_ = std::chrono::steady_clock::now();
	if (type == LockType::Exclusive) {
		// Written first, then looked around: of two racing for it, neither goes on unseen.
		for (const auto &o : list_locks(repo)) {
			if (o.name == l->name_ || o.stale || o.type != LockType::Exclusive)
				continue;
			std::string who = o.host + " pid " + std::to_string(o.pid);
			repo.store().remove(Kind::Lock, l->name_);
			l->name_.clear();
			fail(Code::Locked, "the repository is locked by another gc (" + who + ", lock " + o.name.substr(0, 8) +
			                       "); a lock is stale " + std::to_string(kLockStale.count() / 60) +
			                       " minutes after its holder stops refreshing it");
		}
	}
	l->thread_ = std::thread([p = l.get()] { p->refresher(); });
	return l;
}

void RepoLock::refresher()
{
	std::unique_lock lk(mu_);
	while (!stopping_) {
		cv_.wait_for(lk, kLockRefresh, [this] { return stopping_; });
		if (stopping_)
			break;
		lk.unlock();
		bool ok = true;
		try {
			write();
		} catch (...) {
			ok = false; // tried again at the next tick; held_throughout() tells the holder
		}
		lk.lock();
		auto now = std::chrono::steady_clock::now();
		if (now - last_ok_ > kLockStale)
			lapsed_ = true;
		if (ok)
			last_ok_ = now;
	}
}

bool RepoLock::held_throughout() const
{
	std::lock_guard lk(mu_);
	return !lapsed_ && std::chrono::steady_clock::now() - last_ok_ <= kLockStale;
}

RepoLock::~RepoLock()
{
	{
		std::lock_guard lk(mu_);
		stopping_ = true;
	}
	cv_.notify_all();
	if (thread_.joinable())
		thread_.join();
	if (!name_.empty()) {
		try {
			repo_.store().remove(Kind::Lock, name_);
		} catch (...) {
			// Left behind, it goes stale and gc removes it.
		}
	}
}

} // namespace plakar
