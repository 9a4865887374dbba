// `plakar push [-exclude PATTERN]... [-parent SNAPSHOT | -no-parent] PATH...`: a new snapshot of the
// given files and directories.
#include <plakar/plakar.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "report.h"

namespace plakar::cli {

namespace {

struct PushProgress {
	std::string command;
	uint64_t reported = 0; // item errors already printed
};

extern "C" int on_push_event(const plakar_event *event, void *payload) {
	auto *progress = static_cast<PushProgress *>(payload);
	if (event->kind == PLAKAR_EVENT_ERROR) {
		report_item(progress->command, event->path ? event->path : "",
		            event->message ? event->message : "failed");
		++progress->reported;
	}
	return InterruptGuard::interrupted() ? 1 : 0;
}

} // namespace

int cmd_push(Session &session) {
	FlagSet flags("push");
	std::vector<std::string> excludes;
	std::optional<std::string> parent;
	bool no_parent = false;
	flags.add_list("exclude", &excludes);
	flags.add_string("parent", &parent);
	flags.add_bool("no-parent", &no_parent);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (parent && no_parent)
		throw UsageError("-parent and -no-parent exclude each other");
	if (parent && parent->empty())
		throw UsageError("empty snapshot for flag -parent");
	if (pos >= args.size())
		throw UsageError("missing PATH");
	std::vector<const char *> paths;
	for (std::size_t i = pos; i < args.size(); ++i)
		paths.push_back(args[i].c_str());

	plakar_repository *repo = session.repository();
	PushProgress progress{session.command()};
	plakar_push_options opts = PLAKAR_PUSH_OPTIONS_INIT;
	opts.progress = on_push_event;
	opts.payload = &progress;
	opts.command_line = session.options().command_line.c_str();
	std::vector<const char *> patterns;
	for (const auto &e : excludes)
		patterns.push_back(e.c_str());
	opts.excludes = patterns.empty() ? nullptr : patterns.data();
	opts.nexcludes = patterns.size();
	if (no_parent)
		opts.parent = "";
	else if (parent)
		opts.parent = parent->c_str();

	plakar_snapshot *raw = nullptr;
	int rc;
	std::string message;
	{
		InterruptGuard guard;
		rc = plakar_snapshot_push(&raw, repo, paths.data(), paths.size(), &opts);
		if (rc != PLAKAR_OK)
			message = library_message(rc);
	}
	Snapshot snapshot(raw);
	if (rc != PLAKAR_OK && rc != PLAKAR_EPARTIAL)
		throw Failure(message, exit_code_for(rc));

	std::printf("%s\n", plakar_snapshot_id(snapshot.get()));
	session.finish_output();
	if (rc == PLAKAR_OK)
		return kExitOk;

	// Committed with errors. They were reported as they happened; should the callback have
	// missed them, print the ones recorded in the snapshot.
	if (progress.reported == 0) {
		std::size_t n = plakar_snapshot_error_count(snapshot.get());
		for (std::size_t i = 0; i < n; ++i) {
			const char *path = nullptr, *what = nullptr;
			if (plakar_snapshot_error(&path, &what, snapshot.get(), i) == PLAKAR_OK)
				report_item(session.command(), path ? path : "", what ? what : "failed");
		}
	}
	report_error(session.command(), message);
	return kExitPartial;
}

} // namespace plakar::cli
