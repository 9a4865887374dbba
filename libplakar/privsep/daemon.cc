#include "privsep/daemon.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>

#include "base/error.h"

namespace plakar::privsep {

namespace {
constexpr size_t kMaxPayload = 16 << 20;
constexpr auto kStopGrace = std::chrono::seconds(5);

std::string ended(int status)
{
	if (WIFSIGNALED(status))
		return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
	if (WIFEXITED(status))
		return "exited with status " + std::to_string(WEXITSTATUS(status));
	return "ended";
}

void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = static_cast<const uint8_t *>(p);
	while (n) {
		ssize_t w = ::send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			fail_errno("privsep: send", errno);
		}
		b += w;
		n -= size_t(w);
	}
}

void read_all(int fd, void *p, size_t n)
{
	uint8_t *b = static_cast<uint8_t *>(p);
	while (n) {
		ssize_t r = ::read(fd, b, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail_errno("privsep: read", errno);
		}
		if (r == 0)
			fail(Code::Error, "privsep: the parent went away before the start");
		b += r;
		n -= size_t(r);
	}
}
} // namespace

Daemon::Process &Daemon::Process::user(std::string name)
{
	user_ = std::move(name);
	return *this;
}

Daemon::Process &Daemon::Process::chroot(std::string dir)
{
	chroot_ = std::move(dir);
	return *this;
}

Daemon::Process &Daemon::Process::talks_to(std::vector<std::string> peers)
{
	peers_.insert(peers_.end(), peers.begin(), peers.end());
	return *this;
}

Daemon::Process &Daemon::Process::pre_chroot(std::function<void()> hook)
{
	pre_chroot_ = std::move(hook);
	return *this;
}

Daemon::Process &Daemon::Process::pre_start(std::function<void()> hook)
{
	pre_start_ = std::move(hook);
	return *this;
}

Daemon::Process &Daemon::Process::handler(const std::string &peer, uint32_t type, Channel::Handler fn)
{
	handlers_[peer][type] = std::move(fn);
	return *this;
}

Daemon::Daemon() = default;

Daemon::~Daemon()
{
	for (auto &[i, ch] : channels_)
		ch->close();
	for (auto &t : readers_)
		if (t.joinable())
			t.join();
}

Daemon::Process &Daemon::declare(const std::string &name, Main run, bool parent)
{
	if (started_)
		fail(Code::Invalid, "privsep: the daemon has started: no more declarations");
	if (name.empty())
		fail(Code::Invalid, "privsep: a process needs a name");
	for (auto &p : procs_)
		if (p->name_ == name) {
			if (p->is_parent_ != parent)
				fail(Code::Invalid, "privsep: '" + name + "' is declared both as the parent and as a child");
			if (run)
				p->main_ = std::move(run);
			return *p;
		}
	if (parent)
		for (auto &p : procs_)
			if (p->is_parent_)
				fail(Code::Invalid, "privsep: two parents ('" + p->name_ + "' and '" + name + "')");
	auto p = std::make_unique<Process>();
	p->name_ = name;
	p->main_ = std::move(run);
	p->is_parent_ = parent;
	procs_.push_back(std::move(p));
	return *procs_.back();
}

Daemon::Process &Daemon::parent(const std::string &name, Main run) { return declare(name, std::move(run), true); }
Daemon::Process &Daemon::child(const std::string &name, Main run) { return declare(name, std::move(run), false); }

size_t Daemon::index_of(const std::string &name) const
{
	for (size_t i = 0; i < procs_.size(); i++)
		if (procs_[i]->name_ == name)
			return i;
	fail(Code::NotFound, "privsep: no process named '" + name + "'");
}

void Daemon::check_declarations()
{
	size_t parents = 0;
	for (auto &p : procs_)
		parents += p->is_parent_;
	if (parents != 1)
		fail(Code::Invalid, "privsep: a daemon needs its parent declared");
	for (auto &p : procs_) {
		if (p->is_parent_ && (!p->user_.empty() || !p->chroot_.empty()))
			fail(Code::Invalid, "privsep: the parent '" + p->name_ + "' keeps its privileges: declare a user or a chroot on a child");
		auto declared = [&](const std::string &n) {
			return std::any_of(procs_.begin(), procs_.end(), [&](const auto &x) { return x->name_ == n; });
		};
		for (const auto &peer : p->peers_) {
			if (!declared(peer))
				fail(Code::Invalid, "privsep: '" + p->name_ + "' talks to '" + peer + "', which is not declared");
			auto &q = *procs_[index_of(peer)];
			if (q.is_parent_)
				continue; // the parent talks to every child anyway
			if (&q == p.get())
				fail(Code::Invalid, "privsep: '" + p->name_ + "' lists itself in talks_to");
			if (std::find(q.peers_.begin(), q.peers_.end(), p->name_) == q.peers_.end())
				fail(Code::Invalid, "privsep: '" + p->name_ + "' talks to '" + peer + "', but '" + peer +
				                        "' does not list '" + p->name_ + "' in talks_to");
		}
		for (const auto &[peer, hs] : p->handlers_) {
			if (!declared(peer))
				fail(Code::Invalid, "privsep: '" + p->name_ + "' has handlers for '" + peer + "', which is not declared");
			auto &q = *procs_[index_of(peer)];
			bool linked = p->is_parent_ || q.is_parent_ ||
			              std::find(p->peers_.begin(), p->peers_.end(), peer) != p->peers_.end();
			if (!linked || &q == p.get())
				fail(Code::Invalid, "privsep: '" + p->name_ + "' has handlers for '" + peer + "' but no channel to it");
		}
		if (!p->user_.empty() || !p->chroot_.empty()) {
			if (::geteuid() != 0)
				fail(Code::Invalid, "privsep: process '" + p->name_ + "' runs " +
				                        (p->user_.empty() ? "" : "as user " + p->user_) +
				                        (!p->user_.empty() && !p->chroot_.empty() ? " and " : "") +
				                        (p->chroot_.empty() ? "" : "chrooted to " + p->chroot_) +
				                        ": the daemon must be started as root");
		}
		if (!p->user_.empty()) {
			struct passwd pw, *res = nullptr;
			char buf[4096];
			if (::getpwnam_r(p->user_.c_str(), &pw, buf, sizeof buf, &res) != 0 || !res)
				fail(Code::Invalid, "privsep: process '" + p->name_ + "': no user " + p->user_);
			if (pw.pw_uid == 0)
				fail(Code::Invalid, "privsep: process '" + p->name_ + "': user " + p->user_ + " is root");
			p->uid_ = pw.pw_uid;
			p->gid_ = pw.pw_gid;
		}
		if (!p->chroot_.empty()) {
			struct stat st;
			if (p->chroot_[0] != '/' || ::stat(p->chroot_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
				fail(Code::Invalid, "privsep: process '" + p->name_ + "': " + p->chroot_ + " is not a directory (absolute path)");
		}
	}
}

int Daemon::start()
{
	if (started_)
		fail(Code::Invalid, "privsep: a daemon starts once");
	check_declarations();
	started_ = true;
	size_t parent = 0;
	while (!procs_[parent]->is_parent_)
		parent++;
	// The channels: parent to every child, and between children that list each other.
	std::vector<Link> links;
	for (size_t i = 0; i < procs_.size(); i++) {
		if (i == parent)
			continue;
		links.push_back({parent, i});
		for (size_t j = i + 1; j < procs_.size(); j++)
			if (j != parent && std::find(procs_[i]->peers_.begin(), procs_[i]->peers_.end(), procs_[j]->name_) !=
			                       procs_[i]->peers_.end())
				links.push_back({i, j});
	}
	auto close_links = [&] {
		for (auto &l : links) {
			if (l.fd_a >= 0)
				::close(l.fd_a);
			if (l.fd_b >= 0)
				::close(l.fd_b);
			l.fd_a = l.fd_b = -1;
		}
	};
	for (auto &l : links) {
		int sv[2];
		if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
			int err = errno;
			close_links();
			fail_errno("privsep: socketpair", err);
		}
		l.fd_a = sv[0];
		l.fd_b = sv[1];
	}
	me_ = parent;
	const pid_t self = ::getpid();
	procs_[parent]->pid_ = self;
	std::fflush(nullptr); // nothing buffered is written twice
	for (size_t i = 0; i < procs_.size(); i++) {
		if (i == parent)
			continue;
		pid_t pid = ::fork();
		if (pid == 0)
			run_child(i, links, self);
		if (pid < 0) {
			int err = errno;
			for (size_t k = 0; k < i; k++)
				if (k != parent && procs_[k]->pid_ > 0) {
					::kill(procs_[k]->pid_, SIGKILL);
					::waitpid(procs_[k]->pid_, nullptr, 0);
				}
			close_links();
			fail_errno("privsep: fork", err);
		}
		procs_[i]->pid_ = pid;
	}
	// The parent keeps its ends of its links and tells each child every pid.
	std::vector<uint32_t> table;
	table.push_back(uint32_t(procs_.size()));
	for (auto &p : procs_)
		table.push_back(uint32_t(p->pid_));
	for (auto &l : links) {
		if (l.a != parent) {
			::close(l.fd_a);
			::close(l.fd_b);
			l.fd_a = l.fd_b = -1;
			continue;
		}
		::close(l.fd_b);
		l.fd_b = -1;
	}

	int rc = 0;
	std::exception_ptr err;
	try {
		for (auto &l : links)
			if (l.a == parent)
				write_all(l.fd_a, table.data(), table.size() * sizeof(uint32_t));
		open_channels(parent, links);
	} catch (...) {
		err = std::current_exception();
	}

	// Children that end are reaped here; one that ends before the daemon stops stops it. (After
	// open_channels: stop() walks the channels, which must no longer change.)
	size_t children = procs_.size() - 1, reaped = 0;
	std::vector<std::thread> monitors;
	for (size_t i = 0; i < procs_.size(); i++) {
		if (i == parent)
			continue;
		monitors.emplace_back([this, i, &reaped] {
			int st = 0;
			while (::waitpid(procs_[i]->pid_, &st, 0) < 0 && errno == EINTR) {
			}
			bool unexpected;
			{
				std::lock_guard lk(mu_);
				reaped++;
				unexpected = !stopping_ && !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
			}
			if (unexpected)
				stop("process '" + procs_[i]->name_ + "' (pid " + std::to_string(procs_[i]->pid_) + ") " + ended(st));
			stopped_cv_.notify_all();
		});
	}
	if (!err) {
		try {
			rc = procs_[parent]->main_ ? procs_[parent]->main_(*this) : (serve(), 0);
		} catch (...) {
			err = std::current_exception();
		}
	}
	stop("");
	{
		std::unique_lock lk(mu_);
		if (!stopped_cv_.wait_for(lk, kStopGrace, [&] { return reaped == children; }))
			for (size_t i = 0; i < procs_.size(); i++)
				if (i != parent)
					::kill(procs_[i]->pid_, SIGKILL); // a reaped pid cannot be reused before its monitor ends
	}
	for (auto &t : monitors)
		t.join();
	for (auto &t : readers_)
		t.join();
	readers_.clear();
	channels_.clear();
	close_links(); // those no channel took (open_channels failed midway)
	if (!why_.empty())
		fail(Code::Error, "privsep: " + why_ + "; the daemon stopped");
	if (err)
		std::rethrow_exception(err);
	return rc;
}

void Daemon::run_child(size_t me, std::vector<Link> links, pid_t parent)
{
	Process &p = *procs_[me];
	try {
		// A child never outlives the parent.
		::prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (::getppid() != parent)
			::_exit(1);
		me_ = me;
		std::string title = "plakar: " + p.name_;
		::prctl(PR_SET_NAME, title.substr(0, 15).c_str());
		for (auto &l : links) {
			if (l.a != me && l.fd_a >= 0)
				::close(std::exchange(l.fd_a, -1));
			if (l.b != me && l.fd_b >= 0)
				::close(std::exchange(l.fd_b, -1));
		}
		if (p.pre_chroot_)
			p.pre_chroot_();
		if (!p.chroot_.empty()) {
			if (::chroot(p.chroot_.c_str()) != 0)
				fail_errno("chroot " + p.chroot_, errno);
			if (::chdir("/") != 0)
				fail_errno("chdir /", errno);
		}
		if (!p.user_.empty()) {
			// No capability can come back (a setuid binary, file capabilities): the bounding
			// set emptied while still root, then no new privileges ever.
			for (int cap = 0; cap <= 63; cap++)
				if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
					fail_errno("prctl PR_CAPBSET_DROP", errno);
			if (::setgroups(1, &p.gid_) != 0)
				fail_errno("setgroups", errno);
			if (::setresgid(p.gid_, p.gid_, p.gid_) != 0)
				fail_errno("setresgid", errno);
			if (::setresuid(p.uid_, p.uid_, p.uid_) != 0)
				fail_errno("setresuid", errno);
			if (::setresuid(0, 0, 0) == 0 || ::getuid() != p.uid_ || ::geteuid() != p.uid_)
				fail(Code::Error, "the privilege drop to " + p.user_ + " did not hold");
		}
		if ((!p.user_.empty() || !p.chroot_.empty()) && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
			fail_errno("prctl PR_SET_NO_NEW_PRIVS", errno);
		if (p.pre_start_)
			p.pre_start_();
		// Every pid, from the parent, before the channels open.
		for (const auto &l : links)
			if (l.b == me && l.a != me && procs_[l.a]->is_parent_) {
				uint32_t n = 0;
				read_all(l.fd_b, &n, sizeof n);
				if (n != procs_.size())
					fail(Code::Error, "the parent sent a process table of another daemon");
				std::vector<uint32_t> pids(n);
				read_all(l.fd_b, pids.data(), n * sizeof(uint32_t));
				for (size_t i = 0; i < n; i++)
					procs_[i]->pid_ = pid_t(pids[i]);
			}
		open_channels(me, links);
		int rc = p.main_ ? p.main_(*this) : (serve(), 0);
		stop("");
		for (auto &t : readers_)
			t.join();
		readers_.clear();
		channels_.clear();
		std::fflush(nullptr);
		::_exit(rc & 0xff);
	} catch (const std::exception &e) {
		std::fprintf(stderr, "plakar: privsep: %s: %s\n", p.name_.c_str(), e.what());
		std::fflush(nullptr);
		::_exit(1);
	}
}

void Daemon::open_channels(size_t me, std::vector<Link> &links)
{
	Process &p = *procs_[me];
	for (auto &l : links) {
		if (l.a != me && l.b != me)
			continue;
		size_t peer = l.a == me ? l.b : l.a;
		int fd = std::exchange(l.a == me ? l.fd_a : l.fd_b, -1); // the channel owns it now
		Channel::Options o;
		o.pass_fds = true;
		o.local_id = uint32_t(me);
		o.max_payload = kMaxPayload;
		auto ch = std::make_unique<Channel>(p.name_ + "<->" + procs_[peer]->name_, fd, procs_[peer]->pid_, o);
		auto hs = p.handlers_.find(procs_[peer]->name_);
		if (hs != p.handlers_.end())
			for (const auto &[type, fn] : hs->second)
				ch->handler(type, fn);
		channels_[peer] = std::move(ch);
	}
	for (auto &[peer, ch] : channels_) {
		Channel *c = ch.get();
		bool to_parent = procs_[peer]->is_parent_;
		std::string peer_name = procs_[peer]->name_;
		readers_.emplace_back([this, c, to_parent, peer_name, me] {
			try {
				c->dispatch();
				if (to_parent)
					stop(""); // the parent closed: the daemon is stopping
			} catch (const std::exception &e) {
				if (procs_[me]->is_parent_)
					stop("process '" + peer_name + "' broke the protocol (" + e.what() + ")");
				else {
					std::fprintf(stderr, "plakar: privsep: %s: %s\n", procs_[me]->name_.c_str(), e.what());
					if (to_parent)
						stop("");
				}
			}
		});
	}
}

void Daemon::stop(const std::string &why)
{
	{
		std::lock_guard lk(mu_);
		if (stopping_)
			return;
		stopping_ = true;
		why_ = why;
	}
	for (auto &[peer, ch] : channels_)
		ch->close();
	stopped_cv_.notify_all();
}

void Daemon::serve()
{
	std::unique_lock lk(mu_);
	stopped_cv_.wait(lk, [&] { return stopping_; });
}

const std::string &Daemon::self() const { return procs_[me_]->name_; }

pid_t Daemon::pid_of(const std::string &name) const { return procs_[index_of(name)]->pid_; }

Channel &Daemon::process(const std::string &peer)
{
	size_t i = index_of(peer);
	auto it = channels_.find(i);
	if (it == channels_.end())
		fail(Code::NotFound, "privsep: '" + self() + "' has no channel to '" + peer + "' (not declared in talks_to)");
	return *it->second;
}

} // namespace plakar::privsep
