// privsep: a daemon split into processes declared up front, each with its own privileges,
// talking only over ipcmsg channels (docs/privsep.md).
//
//     Daemon d;
//     d.parent("parent", run_parent);
//     d.child("store", run_store).user("_plakar").chroot("/var/empty").talks_to({"net"});
//     d.child("net", run_net).talks_to({"store"});
//     d.child("net", ...).handler("store", MSG_PONG, on_pong);   // what net does with store's PONGs
//     return d.start();
//
// start() checks the declarations (before anything forks), forks one process per child and
// runs the parent's function in the calling process. The process table is the declaration:
//  - a channel exists between two children only when each lists the other in talks_to; the
//    parent has one to every child. A child asking for a peer it has no channel to gets
//    Code::NotFound;
//  - each child names itself ("plakar: store" in /proc/PID/comm, truncated to 15 bytes), runs
//    its pre_chroot hook, chroots, drops to its user (setgroups, setresgid, setresuid, then
//    checks that root cannot be regained), runs its pre_start hook, then its function. A layout
//    with a user or a chroot needs root: start() refuses it otherwise (Code::Invalid);
//  - a child's function returning ends that child (its result is the exit status); without a
//    function it serves its channels until the parent stops the daemon;
//  - the parent's function returning stops the daemon: the channels close, children exit
//    (SIGKILL after 5 s), start() returns the function's result. A child that dies or breaks
//    the protocol before that stops the daemon too: the parent's channels close (its queries
//    fail, serve() returns) and start() throws Code::Error naming the child and how it ended.
//
// Inside a running process, process(peer) is the channel to that peer: message(), query() and
// reply() as ipcmsg.h describes, from any thread of that process. Handlers run on the channel's
// reader thread. Every channel passes descriptors.
//
// The children are forked, not re-executed: they share the parent's address-space layout. The
// Daemon object must outlive start(); call start() once per object.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "privsep/ipcmsg.h"

namespace plakar::privsep {

class Daemon {
public:
	using Main = std::function<int(Daemon &)>;

	class Process {
	public:
		// Run as this user (name resolved when the daemon starts) and its primary group.
		Process &user(std::string name);
		// Chroot to this directory (which must exist) before running.
		Process &chroot(std::string dir);
		// The children this one has channels with (each must list this one too).
		Process &talks_to(std::vector<std::string> peers);
		// Runs in the process, still privileged, before the chroot (open what it needs).
		Process &pre_chroot(std::function<void()> hook);
		// Runs in the process after the privilege drop, before its channels and its function.
		Process &pre_start(std::function<void()> hook);
		// What this process does with messages of a type from a peer.
		Process &handler(const std::string &peer, uint32_t type, Channel::Handler fn);

	private:
		friend class Daemon;
		std::string name_;
		Main main_;
		bool is_parent_ = false;
		std::string user_, chroot_;
		std::vector<std::string> peers_;
		std::function<void()> pre_chroot_, pre_start_;
		std::map<std::string, std::map<uint32_t, Channel::Handler>> handlers_;
		uid_t uid_ = 0;
		gid_t gid_ = 0;
		pid_t pid_ = 0;
	};

	Daemon();
	~Daemon();
	Daemon(const Daemon &) = delete;
	Daemon &operator=(const Daemon &) = delete;

	// Declares the parent (exactly one) and the children. Returns the declaration to refine;
	// declaring a name again returns the same declaration (its function replaced if given).
	Process &parent(const std::string &name, Main run = nullptr);
	Process &child(const std::string &name, Main run = nullptr);

	// Runs the daemon (see above). Code::Invalid for a bad declaration, Code::Error when a
	// child ended it.
	int start();

	// In a running process: its own name, and the channel to a peer.
	const std::string &self() const;
	Channel &process(const std::string &peer);
	// The pid of a process of the daemon (children: known once the daemon runs).
	pid_t pid_of(const std::string &name) const;
	// Blocks until the daemon stops (in the parent: its channels close; in a child: the parent
	// closes the channel to it).
	void serve();

private:
	struct Link {
		size_t a, b;       // process indices
		int fd_a = -1, fd_b = -1;
	};
	void check_declarations();
	[[noreturn]] void run_child(size_t me, std::vector<Link> links, pid_t parent);
	// Makes this process's channels (each takes its descriptor from links) and their readers.
	void open_channels(size_t me, std::vector<Link> &links);
	void stop(const std::string &why);
	Process &declare(const std::string &name, Main run, bool parent);
	size_t index_of(const std::string &name) const;

	std::vector<std::unique_ptr<Process>> procs_;
	bool started_ = false;
	size_t me_ = 0; // the running process's index
	std::map<size_t, std::unique_ptr<Channel>> channels_; // by peer index, in this process
	std::vector<std::thread> readers_;

	std::mutex mu_;
	std::condition_variable stopped_cv_;
	bool stopping_ = false;
	std::string why_; // set when a child ended the daemon
};

} // namespace plakar::privsep
