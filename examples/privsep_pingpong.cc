// A privilege-separated daemon in a few lines: the parent and two children, "ping" and "pong",
// that talk to each other over a channel both declared. ping sends PING to pong N times and
// tells the parent how many PONGs came back; the parent prints it and stops the daemon.
//
//   privsep_pingpong [N]
//
// Run as root, pong drops to the user nobody and chroots to /var/empty (when they exist).
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/error.h"
#include "privsep/daemon.h"

using namespace plakar;
using namespace plakar::privsep;

enum : uint32_t { PING = 1, PONG = 2, GO = 3, DONE = 4 };

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? std::atoi(argv[1]) : 10;
	Daemon d;
	d.parent("parent", [](Daemon &d) {
		Message r = d.process("ping").query(GO);
		std::printf("%s\n", std::string(r.data.begin(), r.data.end()).c_str());
		return 0; // stops the daemon: the children exit
	});
	d.child("ping").talks_to({"pong"}).handler("parent", GO, [&d, rounds](Channel &ch, Message &m) {
		int pongs = 0;
		for (int i = 0; i < rounds; i++)
			if (d.process("pong").query(PING, as_bytes("ping " + std::to_string(i))).type == PONG)
				pongs++;
		std::string s = "ping got " + std::to_string(pongs) + " pongs of " + std::to_string(rounds) +
		                " from pong (pid " + std::to_string(d.pid_of("pong")) + ")";
		ch.reply(m, DONE, as_bytes(s));
	});
	auto &pong = d.child("pong").talks_to({"ping"}).handler("ping", PING, [](Channel &ch, Message &m) {
		ch.reply(m, PONG, m.data);
	});
	struct stat st;
	if (::geteuid() == 0 && ::getpwnam("nobody") && ::stat("/var/empty", &st) == 0)
		pong.user("nobody").chroot("/var/empty");
	try {
		return d.start();
	} catch (const Error &e) {
		std::fprintf(stderr, "privsep_pingpong: %s\n", e.what());
		return 1;
	}
}
