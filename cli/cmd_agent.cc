// `plakar agent [-timeout SECONDS] [-foreground] [-socket PATH]` starts a key agent and prints
// the shell commands that point later commands at it (`eval "$(plakar agent)"`, as with
// ssh-agent); `plakar agent -stop` stops the one $PLAKAR_AGENT names. Commands run with
// $PLAKAR_AGENT set ask the agent for the repository's master key before any passphrase, and
// hand it the key after a passphrase opened the repository: the passphrase is asked once per
// shell, and the key derivation runs once.
#include <plakar/plakar.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <cstdlib>
#include <string>

#include "args.h"
#include "commands.h"
#include "report.h"

namespace plakar::cli {

namespace {

// A fresh directory only this user can enter, holding the socket.
std::string make_socket_dir()
{
	std::string base = "/tmp";
	if (const char *x = std::getenv("XDG_RUNTIME_DIR"); x && *x == '/') {
		struct stat st;
		if (::stat(x, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::getuid())
			base = x;
	}
	std::string tmpl = base + "/plakar-agent-XXXXXX";
	if (!::mkdtemp(tmpl.data()))
		throw Failure("cannot create a directory under " + base + ": " + std::strerror(errno));
	return tmpl;
}

void print_env(const std::string &socket, long pid)
{
	std::printf("PLAKAR_AGENT=%s; export PLAKAR_AGENT;\necho plakar agent pid %ld;\n", socket.c_str(), pid);
	std::fflush(stdout);
}

} // namespace

int cmd_agent(Session &session)
{
	FlagSet flags("agent");
	bool stop = false, foreground = false;
	int timeout = 3600;
	std::optional<std::string> socket_flag;
	flags.add_bool("stop", &stop);
	flags.add_bool("foreground", &foreground);
	flags.add_int("timeout", &timeout, 0, 31 * 24 * 3600);
	flags.add_string("socket", &socket_flag);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos != args.size())
		throw UsageError("unexpected argument: " + args[pos]);
	std::string socket = socket_flag.value_or("");

	if (stop) {
		const char *env = std::getenv("PLAKAR_AGENT");
		std::string target = socket.empty() ? (env ? env : "") : socket;
		if (target.empty())
			throw Failure("PLAKAR_AGENT is not set: no agent to stop");
		int rc = plakar_agent_stop(target.c_str());
		if (rc != PLAKAR_OK)
			throw_library_error(rc);
		std::printf("unset PLAKAR_AGENT;\n");
		return kExitOk;
	}

	std::string dir;
	if (socket.empty()) {
		dir = make_socket_dir();
		socket = dir + "/agent.sock";
	}
	plakar_agent *agent = nullptr;
	int rc = plakar_agent_listen(&agent, socket.c_str());
	if (rc != PLAKAR_OK) {
		if (!dir.empty())
			::rmdir(dir.c_str());
		throw_library_error(rc);
	}
	if (foreground) {
		print_env(socket, long(::getpid()));
		rc = plakar_agent_serve(agent, unsigned(timeout));
		plakar_agent_free(agent);
		if (!dir.empty())
			::rmdir(dir.c_str());
		if (rc != PLAKAR_OK)
			throw_library_error(rc);
		return kExitOk;
	}
	std::fflush(nullptr);
	pid_t pid = ::fork();
	if (pid < 0) {
		plakar_agent_free(agent);
		throw Failure(std::string("fork: ") + std::strerror(errno));
	}
	if (pid == 0) {
		::setsid();
		if (::chdir("/") != 0) {
		}
		int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			::dup2(null, 0);
			::dup2(null, 1);
			::dup2(null, 2);
		}
		int src = plakar_agent_serve(agent, unsigned(timeout));
		plakar_agent_free(agent);
		if (!dir.empty())
			::rmdir(dir.c_str());
		::_exit(src == PLAKAR_OK ? 0 : 1);
	}
	plakar_agent_free(agent); // the parent's copy of the socket; the child serves it
	print_env(socket, long(pid));
	return kExitOk;
}

} // namespace plakar::cli
