// `plakar pull [-to DIR] [-rebase] SNAPSHOT[:PATH]...`: restore from snapshots.
#include <plakar/plakar.h>

#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "report.h"

namespace plakar::cli {

namespace {

extern "C" int on_pull_event(const plakar_event *event, void *payload) {
	const auto *command = static_cast<const std::string *>(payload);
	if (event->kind == PLAKAR_EVENT_ERROR)
		report_item(*command, event->path ? event->path : "", event->message ? event->message : "failed");
	return InterruptGuard::interrupted() ? 1 : 0;
}

} // namespace

int cmd_pull(Session &session) {
	std::optional<std::string> to;
	bool rebase = false;
	FlagSet flags("pull");
	flags.add_string("to", &to);
	flags.add_bool("rebase", &rebase);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos >= args.size())
		throw UsageError("missing SNAPSHOT[:PATH]");
	if (to && to->empty())
		throw UsageError("empty directory for flag -to");
	std::vector<SnapshotArg> targets;
	for (std::size_t i = pos; i < args.size(); ++i)
		targets.push_back(parse_snapshot_arg(args[i]));

	session.repository();
	std::string command = session.command();
	plakar_pull_options opts = PLAKAR_PULL_OPTIONS_INIT;
	opts.to = to ? to->c_str() : nullptr;
	opts.rebase = rebase ? 1 : 0;
	opts.progress = on_pull_event;
	opts.payload = &command;

	InterruptGuard guard;
	int exit_code = kExitOk;
	for (const SnapshotArg &target : targets) {
		try {
			plakar_snapshot *snap = session.snapshot(target.snapshot);
			int rc = plakar_pull(snap, target.path.c_str(), &opts);
			if (rc != PLAKAR_OK)
				throw_library_error(rc);
		} catch (const Failure &f) {
			report_error(command, f.what());
			exit_code = worst_exit(exit_code, f.exit_code());
		}
		if (InterruptGuard::interrupted())
			break;
	}
	return exit_code;
}

} // namespace plakar::cli
