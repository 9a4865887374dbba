// `plakar server` split into processes (docs/protocol.md, "Privilege separation"):
//
//   parent   the process that started it; waits, and stops the others on stop() or when one
//            of them dies
//   net      every byte from the network: the Asio server, its handshakes and its frames.
//            Started as root: runs as _plakar (else nobody), chrooted to an empty directory
//   store    the repository's store: runs each call net forwards over ipcmsg. Started as
//            root: chrooted to the repository (filesystem and SQLite stores), and runs as the
//            repository directory's owner unless that is root
//
// Started as another user, the same processes run without chroot or privilege drop (say()
// says so). The listening socket is bound by the calling process before anything forks, so a
// port below 1024 works when started as root.
//
// run() forks: call it from a process that exists to serve (the CLI's `plakar server`), not
// from a host program with threads and state of its own.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "net/server.h"

namespace plakar::net {

class PrivsepServer {
public:
	// Checks the options and binds the listening socket. Throws like Server's constructor.
	PrivsepServer(std::string store_uri, ServerOptions opts);
	~PrivsepServer();
	PrivsepServer(const PrivsepServer &) = delete;
	PrivsepServer &operator=(const PrivsepServer &) = delete;

	std::string address() const;
	// The pin of the TLS certificate ("" without TLS).
	std::string tls_pin() const;
	// Runs the three processes until stop(); throws Code::Error when a child process died.
	void run();
	// From any thread of the calling process.
	void stop();

	// Where each process runs, as run() set it up (for messages and tests).
	struct Layout {
		bool privileged = false; // started as root: chroot and privilege drop
		std::string net_user, net_root, store_user, store_root;
	};
	Layout layout() const;

private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
};

} // namespace plakar::net
