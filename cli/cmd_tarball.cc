// `plakar tarball [-o FILE] [-format tar|tar.gz|tar.zst|zip] SNAPSHOT[:PATH]`: an archive of a
// snapshot or of a subtree, streamed to stdout or into FILE.
#include <plakar/plakar.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "args.h"
#include "commands.h"
#include "report.h"

namespace plakar::cli {

namespace {

struct TarballState {
	std::string command;
	int write_errno = 0; // set when stdout could not be written
};

extern "C" int on_tarball_event(const plakar_event *event, void *payload) {
	const auto *state = static_cast<const TarballState *>(payload);
	if (event->kind == PLAKAR_EVENT_ERROR)
		report_item(state->command, event->path ? event->path : "", event->message ? event->message : "failed");
	else if (event->kind == PLAKAR_EVENT_WARNING)
		report_item(state->command, "warning", event->message ? event->message : "");
	return InterruptGuard::interrupted() ? 1 : 0;
}

extern "C" int on_tarball_write(const void *buf, size_t len, void *payload) {
	auto *state = static_cast<TarballState *>(payload);
	if (std::fwrite(buf, 1, len, stdout) == len)
		return 0;
	state->write_errno = errno ? errno : EIO;
	return 1;
}

// The format: -format if given, else the one FILE's extension names, else tar.
int choose_format(const std::optional<std::string> &name, const std::optional<std::string> &out) {
	int format = PLAKAR_ARCHIVE_TAR;
	if (name) {
		if (plakar_archive_format_from_name(&format, name->c_str()) != PLAKAR_OK)
			throw UsageError("unknown format \"" + *name + "\" for flag -format (tar, tar.gz, tar.zst or zip)");
	} else if (out) {
		// PLAKAR_ENOTFOUND (no known extension) leaves the default, tar.
		int rc = plakar_archive_format_from_filename(&format, out->c_str());
		(void)rc;
	}
	return format;
}

} // namespace

int cmd_tarball(Session &session) {
	std::optional<std::string> out, format_name;
	FlagSet flags("tarball");
	flags.add_string("o", &out);
	flags.add_string("format", &format_name);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos >= args.size())
		throw UsageError("missing SNAPSHOT[:PATH]");
	if (pos + 1 < args.size())
		throw UsageError("one SNAPSHOT[:PATH] only");
	if (out && out->empty())
		throw UsageError("empty file name for flag -o");
	int format = choose_format(format_name, out);
	SnapshotArg target = parse_snapshot_arg(args[pos]);

	session.repository();
	plakar_snapshot *snap = session.snapshot(target.snapshot);
	TarballState state{session.command()};
	plakar_archive_options opts = PLAKAR_ARCHIVE_OPTIONS_INIT;
	opts.progress = on_tarball_event;
	opts.payload = &state;

	InterruptGuard guard;
	int rc;
	if (out) {
		rc = plakar_snapshot_archive_file(snap, target.path.c_str(), format, out->c_str(), &opts);
	} else {
		opts.write = on_tarball_write;
		rc = plakar_snapshot_archive(snap, target.path.c_str(), format, &opts);
	}
	if (state.write_errno != 0)
		throw Failure(std::string("cannot write the output: ") + std::strerror(state.write_errno));
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	if (!out)
		session.finish_output();
	return kExitOk;
}

} // namespace plakar::cli
