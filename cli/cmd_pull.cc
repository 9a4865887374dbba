// `plakar pull [-to DIR] [-rebase] [-overwrite POLICY] [-force] [-dry-run] [-verify]
// SNAPSHOT[:PATH]...`: restore from snapshots.
#include <plakar/plakar.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "report.h"

namespace plakar::cli {

namespace {

extern "C" int on_pull_event(const plakar_event *event, void *payload) {
	const auto *command = static_cast<const std::string *>(payload);
	const char *path = event->path ? event->path : "";
	switch (event->kind) {
	case PLAKAR_EVENT_ERROR: report_item(*command, path, event->message ? event->message : "failed"); break;
	// -dry-run: one line per item on stdout, "create PATH".
	case PLAKAR_EVENT_CREATE: std::printf("create %s\n", escape_name(path).c_str()); break;
	case PLAKAR_EVENT_REPLACE: std::printf("replace %s\n", escape_name(path).c_str()); break;
	case PLAKAR_EVENT_REMOVE: std::printf("remove %s\n", escape_name(path).c_str()); break;
	case PLAKAR_EVENT_SKIP: std::printf("keep %s\n", escape_name(path).c_str()); break;
	case PLAKAR_EVENT_WARNING:
		report_item(*command, "warning", event->message ? event->message : "");
		break;
	default: break;
	}
	return InterruptGuard::interrupted() ? 1 : 0;
}

} // namespace

int cmd_pull(Session &session) {
	std::optional<std::string> to, overwrite;
	bool rebase = false, force = false, dry_run = false, verify = false;
	FlagSet flags("pull");
	flags.add_string("to", &to);
	flags.add_bool("rebase", &rebase);
	flags.add_string("overwrite", &overwrite);
	flags.add_bool("force", &force);
	flags.add_bool("dry-run", &dry_run);
	flags.add_bool("verify", &verify);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos >= args.size())
		throw UsageError("missing SNAPSHOT[:PATH]");
	if (to && to->empty())
		throw UsageError("empty directory for flag -to");
	int policy = PLAKAR_OVERWRITE_ALWAYS;
	if (overwrite) {
		if (*overwrite == "always")
			policy = PLAKAR_OVERWRITE_ALWAYS;
		else if (*overwrite == "if-changed")
			policy = PLAKAR_OVERWRITE_IF_CHANGED;
		else if (*overwrite == "if-newer")
			policy = PLAKAR_OVERWRITE_IF_NEWER;
		else if (*overwrite == "never")
			policy = PLAKAR_OVERWRITE_NEVER;
		else
			throw UsageError("invalid value \"" + *overwrite +
			                 "\" for flag -overwrite: expected always, if-changed, if-newer or never");
	}
	std::vector<SnapshotArg> targets;
	for (std::size_t i = pos; i < args.size(); ++i)
		targets.push_back(parse_snapshot_arg(args[i]));

	session.repository();
	std::string command = session.command();
	plakar_pull_options opts = PLAKAR_PULL_OPTIONS_INIT;
	opts.to = to ? to->c_str() : nullptr;
	opts.rebase = rebase ? 1 : 0;
	opts.overwrite = policy;
	opts.force = force ? 1 : 0;
	opts.dry_run = dry_run ? 1 : 0;
	opts.verify = verify ? 1 : 0;
	opts.progress = on_pull_event;
	opts.payload = &command;

	InterruptGuard guard;
	int exit_code = kExitOk;
	for (const SnapshotArg &target : targets) {
		try {
			plakar_snapshot *snap = session.snapshot(target.snapshot);
			int rc = plakar_snapshot_pull(snap, target.path.c_str(), &opts);
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
