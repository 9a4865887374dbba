#include "repository/lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/error.h"
#include "base/system.h"
#include "crypto/crypto.h"
#include "repository/repository.h"

namespace plakar {

namespace {

std::string read_small_file(const char *path)
{
	std::string out;
	int fd = ::open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return out;
	char buf[256];
	ssize_t n = ::read(fd, buf, sizeof buf);
	::close(fd);
	if (n > 0)
		out.assign(buf, size_t(n));
	while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
		out.pop_back();
	return out;
}

HostIdentity probe_identity()
{
	HostIdentity id;
	std::string boot = read_small_file("/proc/sys/kernel/random/boot_id");
	std::string hex;
	for (char c : boot)
		if (c != '-')
			hex += c;
	struct stat st;
	if (hex.size() != 32 || ::stat("/proc/self/ns/pid", &st) != 0)
		return id; // unknown: no pid is probed
	Bytes b;
	if (!hex_decode(hex, b) || b.size() != id.boot_id.size())
		return id;
	std::copy(b.begin(), b.end(), id.boot_id.begin());
	id.pid_ns = uint64_t(st.st_ino);
	return id;
}

// Judges one lock from what this host watched of it (updated in `watch`, by this host's clock).
bool judged_stale(const LockInfo &l, LockWatch &watch, int64_t now)
{
	// A process of this very boot and pid namespace that is gone holds nothing (a killed push,
	// a crashed gc).
	const HostIdentity &me = this_host();
	if (me.known() && l.identity == me && l.pid && ::kill(pid_t(l.pid), 0) != 0 && errno == ESRCH)
		return true;
	// Otherwise: stale once watched unchanged for kLockStale, whatever its dates say (they are
	// another host's clock: a host 10 minutes behind is not dead, and a lock dated a year ahead
	// blocks nobody for longer than one that stopped).
	auto [it, fresh] = watch.seen.try_emplace(l.name, LockWatch::Seen{l.refreshed_ns, now});
	auto &seen = it->second;
	if (!fresh && (seen.refreshed_ns != l.refreshed_ns || seen.since_ns > now))
		seen = {l.refreshed_ns, now}; // refreshed since (or this host's clock went back)
	return now - seen.since_ns >= std::chrono::nanoseconds(kLockStale).count();
}

LockWatch load_lock_watch(Repository &repo)
{
	try {
		return decode_lock_watch(repo.get_sealed(Kind::Lock, ObjectKind::LockWatch, lock_watch_name()));
	} catch (const Error &) {
		// None yet; or damaged or forged: what was watched is forgotten, which only delays
		// judging a lock stale.
		return {};
	}
}

} // namespace

const HostIdentity &this_host()
{
	static const HostIdentity id = probe_identity();
	return id;
}

std::string lock_watch_name()
{
	std::string machine = read_small_file("/etc/machine-id");
	if (machine.empty())
		machine = host_name();
	return crypto::sha256(as_bytes("plakar lock watch " + machine)).hex().substr(0, 32);
}

void save_lock_watch(Repository &repo, const LockWatch &watch)
{
	if (watch.seen.empty())
		repo.store().remove(Kind::Lock, lock_watch_name()); // nothing to watch: nothing left behind
	else
		repo.put_sealed(Kind::Lock, ObjectKind::LockWatch, lock_watch_name(), encode_lock_watch(watch));
}

std::vector<LockInfo> list_locks(Repository &repo, LockWatch *watch_out)
{
	LockWatch watch = load_lock_watch(repo), now_seen;
	int64_t now = wall_clock_ns();
	std::vector<LockInfo> out;
	for (const auto &name : repo.store().list(Kind::Lock)) {
		try {
			Bytes raw = repo.store().get(Kind::Lock, name);
			if (sealed_kind(raw) != uint8_t(ObjectKind::Lock))
				continue; // a gc plan or a lock watch, not a lock
			LockInfo l = decode_lock(name, repo.open_sealed(ObjectKind::Lock, name, raw));
			l.stale = judged_stale(l, watch, now);
			now_seen.seen[name] = watch.seen[name];
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
	if (watch_out)
		*watch_out = std::move(now_seen); // locks gone are forgotten
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
    : repo_(repo), type_(type), name_(std::move(name)), created_ns_(wall_clock_ns())
{
}

void RepoLock::write()
{
	repo_.put_sealed(Kind::Lock, ObjectKind::Lock, name_,
	                 encode_lock(type_, host_name(), uint32_t(::getpid()), created_ns_, wall_clock_ns(), this_host()));
}

std::unique_ptr<RepoLock> RepoLock::acquire(Repository &repo, LockType type)
{
	std::unique_ptr<RepoLock> l(new RepoLock(repo, type, hex_encode(crypto::random_bytes(16))));
	l->write();
	l->last_ok_ = std::chrono::steady_clock::now();
	if (type == LockType::Exclusive) {
		// Written first, then looked around: of two racing for it, neither goes on unseen.
		LockWatch watch;
		for (const auto &o : list_locks(repo, &watch)) {
			if (o.name == l->name_ || o.stale || o.type != LockType::Exclusive)
				continue;
			std::string who = o.host + " pid " + std::to_string(o.pid);
			repo.store().remove(Kind::Lock, l->name_);
			watch.seen.erase(l->name_);
			l->name_.clear();
			try {
				save_lock_watch(repo, watch); // so that a later try can judge it stale
			} catch (const Error &) {
			}
			fail(Code::Locked, "the repository is locked by another gc (" + who + ", lock " + o.name.substr(0, 8) +
			                       "); a lock is stale once seen unrefreshed for " +
			                       std::to_string(kLockStale.count() / 60) + " minutes");
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
