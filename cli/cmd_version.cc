// `plakar version`, the command table, and the interrupt flag shared by push and pull.
#include <plakar/plakar.h>

#include <csignal>
#include <cstdio>

#include "commands.h"
#include "report.h"

namespace plakar::cli {

int cmd_version(Session &session) {
	if (!session.options().args.empty())
		throw UsageError("unexpected argument \"" + session.options().args.front() + "\"");
	std::printf("plakar %s\n", plakar_version_string());
	session.finish_output();
	return kExitOk;
}

CommandFn find_command(std::string_view name) {
	struct Entry {
		std::string_view name;
		CommandFn fn;
	};
	static const Entry table[] = {
	    {"create", cmd_create}, {"push", cmd_push}, {"ls", cmd_ls},
	    {"cat", cmd_cat},       {"pull", cmd_pull}, {"version", cmd_version},
	    {"diff", cmd_diff},     {"locate", cmd_locate}, {"info", cmd_info},
	    {"tarball", cmd_tarball}, {"check", cmd_check}, {"agent", cmd_agent},
	    {"rm", cmd_rm},         {"gc", cmd_gc},         {"keep", cmd_keep},
	    {"repair", cmd_repair}, {"server", cmd_server}, {"token", cmd_token},
	    {"tls-cert", cmd_tls_cert},
	};
	for (const Entry &e : table)
		if (e.name == name)
			return e.fn;
	return nullptr;
}

namespace {

volatile sig_atomic_t g_interrupted = 0;
struct sigaction g_old_int, g_old_term;

extern "C" void on_interrupt(int) { g_interrupted = 1; }

} // namespace

InterruptGuard::InterruptGuard() {
	struct sigaction sa {};
	sa.sa_handler = on_interrupt;
	sa.sa_flags = SA_RESETHAND; // the second signal takes the default action
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &g_old_int);
	sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptGuard::~InterruptGuard() {
	sigaction(SIGINT, &g_old_int, nullptr);
	sigaction(SIGTERM, &g_old_term, nullptr);
}

bool InterruptGuard::interrupted() { return g_interrupted != 0; }

} // namespace plakar::cli
