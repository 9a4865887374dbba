// privsep daemons with real processes: three processes exchanging pings over their declared
// channels, a child that really runs as its user inside its chroot, undeclared peers without a
// channel, a child killed (the daemon stops and says which and how), declarations refused
// before anything forks. The privileged cases need root (CI runs as root).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "helpers.h"
#include "privsep/daemon.h"

using namespace plakar;
using namespace plakar::privsep;
namespace fs = std::filesystem;

namespace {
enum : uint32_t { PING = 1, PONG = 2, REPORT = 3, PROBE = 4, DIE = 5 };

Bytes bytes_of(const std::string &s) { return Bytes(s.begin(), s.end()); }
std::string str_of(const Bytes &b) { return std::string(b.begin(), b.end()); }

std::string comm_of(pid_t pid)
{
	std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
	std::string s;
	std::getline(f, s);
	return s;
}

// Runs f in a forked process and returns its exit status (Catch2 state stays in this one).
int in_child(const std::function<int()> &f)
{
	pid_t pid = ::fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		int rc = 99;
		try {
			rc = f();
		} catch (...) {
		}
		::_exit(rc);
	}
	int st = 0;
	::waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
} // namespace

TEST_CASE("privsep: three processes exchange pings over the channels they declared", "[privsep]")
{
	Daemon d;
	std::string titles, lone_view;
	d.parent("parent", [&](Daemon &d) {
		// net pings store on its own channel and reports what came back.
		Message r = d.process("net").query(REPORT);
		titles = comm_of(d.pid_of("store")) + "|" + comm_of(d.pid_of("net"));
		lone_view = str_of(d.process("lone").query(PROBE).data);
		return str_of(r.data) == "pong from store, via net" ? 0 : 1;
	});
	d.child("store").talks_to({"net"}).handler("net", PING, [](Channel &ch, Message &m) {
		ch.reply(m, PONG, bytes_of("pong from " + std::string(m.peer_id == 0 ? "?" : "store")));
	});
	d.child("net").talks_to({"store"}).handler("parent", REPORT, [&d](Channel &ch, Message &m) {
		// From the reader thread of net's channel to the parent: the store channel is another one.
		Message r = d.process("store").query(PING);
		ch.reply(m, REPORT, bytes_of(str_of(r.data) + ", via net"));
	});
	// lone talks to nobody but the parent: it has no channel to net.
	d.child("lone").handler("parent", PROBE, [&d](Channel &ch, Message &m) {
		Code c = test::code_of([&] { d.process("net"); });
		ch.reply(m, PROBE, bytes_of(c == Code::NotFound ? "no channel to net" : "a channel to net"));
	});
	// A child whose function ends with 0 leaves the daemon running.
	d.child("oneshot", [](Daemon &) { return 0; });
	CHECK(d.start() == 0);
	CHECK(titles == "plakar: store|plakar: net");
	CHECK(lone_view == "no channel to net");
}

TEST_CASE("privsep: a child runs as its user inside its chroot", "[privsep]")
{
	if (::geteuid() != 0) {
		WARN("not root: the privilege drop cannot be tested here (CI runs as root)");
		return;
	}
	struct passwd *nobody = ::getpwnam("nobody");
	REQUIRE(nobody);
	test::TempDir t;
	fs::path jail = t / "jail";
	fs::create_directories(jail);
	fs::permissions(t.path(), fs::perms(0755));
	fs::permissions(jail, fs::perms(0755));
	test::write_file(jail / "inside", bytes_of("inside"));
	test::write_file(t / "outside", bytes_of("outside"));
	fs::permissions(t / "outside", fs::perms(0644));
	std::string outside = t / "outside";

	static bool saw_outside_before = false; // in the child's own copy
	Daemon d;
	std::string report;
	d.parent("parent", [&](Daemon &d) {
		report = str_of(d.process("jail").query(PROBE).data);
		return 0;
	});
	d.child("jail")
	    .user("nobody")
	    .chroot(jail)
	    .pre_chroot([outside] { saw_outside_before = ::access(outside.c_str(), R_OK) == 0; })
	    .handler("parent", PROBE, [outside](Channel &ch, Message &m) {
		    std::string r = "uid=" + std::to_string(::getuid()) + " gid=" + std::to_string(::getgid());
		    int in = ::open("/inside", O_RDONLY);
		    int out = ::open(outside.c_str(), O_RDONLY);
		    r += std::string(" inside=") + (in >= 0 ? "yes" : "no");
		    r += std::string(" outside=") + (out >= 0 ? "yes" : "no");
		    r += std::string(" root-again=") + (::setuid(0) == 0 ? "yes" : "no");
		    r += std::string(" pre-chroot-saw-outside=") + (saw_outside_before ? "yes" : "no");
		    gid_t groups[8];
		    r += " groups=" + std::to_string(::getgroups(8, groups));
		    ch.reply(m, PROBE, bytes_of(r));
	    });
	CHECK(d.start() == 0);
	CHECK(report == "uid=" + std::to_string(nobody->pw_uid) + " gid=" + std::to_string(nobody->pw_gid) +
	                    " inside=yes outside=no root-again=no pre-chroot-saw-outside=yes groups=1");
}

TEST_CASE("privsep: a child killed stops the daemon with a clear message", "[privsep]")
{
	Daemon d;
	d.parent("parent", [](Daemon &d) {
		::kill(d.pid_of("net"), SIGKILL);
		d.serve(); // returns once the parent noticed
		return 0;
	});
	d.child("store");
	d.child("net");
	try {
		d.start();
		FAIL("the daemon did not report the death of net");
	} catch (const Error &e) {
		std::string m = e.what();
		INFO(m);
		CHECK(e.code() == Code::Error);
		CHECK(m.find("process 'net'") != std::string::npos);
		CHECK(m.find("killed by signal 9") != std::string::npos);
		CHECK(m.find("the daemon stopped") != std::string::npos);
	}
}

TEST_CASE("privsep: a query to a child that dies fails, and the daemon stops", "[privsep]")
{
	Daemon d;
	bool query_failed = false;
	d.parent("parent", [&](Daemon &d) {
		query_failed = test::code_of([&] { d.process("worker").query(DIE); }) == Code::Error;
		d.serve();
		return 0;
	});
	d.child("worker").handler("parent", DIE, [](Channel &, Message &) { ::_exit(7); });
	try {
		d.start();
		FAIL("no error");
	} catch (const Error &e) {
		CHECK(std::string(e.what()).find("process 'worker'") != std::string::npos);
		CHECK(std::string(e.what()).find("exited with status 7") != std::string::npos);
	}
	CHECK(query_failed);
}

TEST_CASE("privsep: declarations are checked before anything forks", "[privsep]")
{
	auto code = [](const std::function<void(Daemon &)> &declare) {
		Daemon d;
		declare(d);
		return test::code_of([&] { d.start(); });
	};
	// One-sided talks_to, an unknown peer, handlers for a peer without a channel, no parent.
	CHECK(code([](Daemon &d) {
		      d.parent("p");
		      d.child("a").talks_to({"b"});
		      d.child("b");
	      }) == Code::Invalid);
	CHECK(code([](Daemon &d) {
		      d.parent("p");
		      d.child("a").talks_to({"nobody-here"});
	      }) == Code::Invalid);
	CHECK(code([](Daemon &d) {
		      d.parent("p");
		      d.child("a").handler("b", PING, [](Channel &, Message &) {});
		      d.child("b");
	      }) == Code::Invalid);
	CHECK(code([](Daemon &d) { d.child("a"); }) == Code::Invalid);
	CHECK(code([](Daemon &d) {
		      d.parent("p").user("nobody");
	      }) == Code::Invalid);
	CHECK(code([](Daemon &d) {
		      d.parent("p");
		      d.child("a").user("no-such-user-here");
	      }) == Code::Invalid);
	CHECK(code([](Daemon &d) {
		      d.parent("p");
		      d.child("a").chroot("/no/such/dir");
	      }) == Code::Invalid);
	Daemon twice;
	twice.parent("p");
	CHECK(test::code_of([&] { twice.child("p"); }) == Code::Invalid);
	// Not root: a layout with a user or a chroot is refused with a clear error.
	if (::geteuid() == 0) {
		struct passwd *nobody = ::getpwnam("nobody");
		REQUIRE(nobody);
		int rc = in_child([&] {
			if (::setresuid(nobody->pw_uid, nobody->pw_uid, nobody->pw_uid) != 0)
				return 98;
			Daemon d;
			d.parent("p");
			d.child("a").chroot("/");
			try {
				d.start();
			} catch (const Error &e) {
				return e.code() == Code::Invalid && std::string(e.what()).find("must be started as root") != std::string::npos
				           ? 0
				           : 1;
			}
			return 2;
		});
		CHECK(rc == 0);
	}
}
