// The commands. Each takes the session and its own arguments, prints its output on stdout,
// reports per-item failures on stderr, and returns the exit code; a failure that ends the
// command is thrown (Failure, UsageError) and printed by main().
#ifndef PLAKAR_CLI_COMMANDS_H
#define PLAKAR_CLI_COMMANDS_H

#include <string_view>

#include "session.h"

namespace plakar::cli {

int cmd_create(Session &session);
int cmd_push(Session &session);
int cmd_ls(Session &session);
int cmd_cat(Session &session);
int cmd_pull(Session &session);
int cmd_version(Session &session);
int cmd_diff(Session &session);
int cmd_locate(Session &session);
int cmd_info(Session &session);
int cmd_tarball(Session &session);
int cmd_check(Session &session);
int cmd_agent(Session &session);
int cmd_rm(Session &session);
int cmd_gc(Session &session);
int cmd_keep(Session &session);
int cmd_repair(Session &session);
int cmd_server(Session &session);
int cmd_token(Session &session);
int cmd_tls_cert(Session &session);

// The command of that name, or nullptr.
using CommandFn = int (*)(Session &);
CommandFn find_command(std::string_view name);

// Set by SIGINT/SIGTERM during push and pull; progress callbacks then cancel the operation.
// A second signal kills the process as usual.
class InterruptGuard {
public:
	InterruptGuard();
	~InterruptGuard();
	InterruptGuard(const InterruptGuard &) = delete;
	InterruptGuard &operator=(const InterruptGuard &) = delete;
	static bool interrupted();
};

} // namespace plakar::cli

#endif
