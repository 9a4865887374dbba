// `plakar cat SNAPSHOT:PATH...`: the content of files, concatenated on stdout.
#include <plakar/plakar.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "args.h"
#include "commands.h"
#include "report.h"

namespace plakar::cli {

namespace {

constexpr std::size_t kBufferSize = 1 << 20;

// Streams one file to stdout. Every byte the library returns has been authenticated, so a
// corrupted chunk stops the output at its start: what was written is a correct prefix.
void cat_file(Session &session, const SnapshotArg &target, char *buf) {
	plakar_snapshot *snap = session.snapshot(target.snapshot);
	plakar_file *raw = nullptr;
	int rc = plakar_file_open(&raw, snap, target.path.c_str());
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	File file(raw);
	for (;;) {
		std::size_t n = 0;
		rc = plakar_file_read(&n, file.get(), buf, kBufferSize);
		if (rc != PLAKAR_OK)
			throw_library_error(rc);
		if (n == 0)
			break;
		if (std::fwrite(buf, 1, n, stdout) != n)
			throw Failure(std::string("cannot write the output: ") + std::strerror(errno));
	}
}

} // namespace

int cmd_cat(Session &session) {
	FlagSet flags("cat");
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos >= args.size())
		throw UsageError("missing SNAPSHOT:PATH");
	std::vector<SnapshotArg> targets;
	for (std::size_t i = pos; i < args.size(); ++i) {
		targets.push_back(parse_snapshot_arg(args[i]));
		if (!targets.back().has_path)
			throw UsageError("missing PATH in \"" + args[i] + "\"");
	}

	session.repository();
	std::unique_ptr<char[]> buf(new char[kBufferSize]);
	int exit_code = kExitOk;
	for (const SnapshotArg &target : targets) {
		try {
			cat_file(session, target, buf.get());
		} catch (const Failure &f) {
			report_error(session.command(), f.what());
			exit_code = worst_exit(exit_code, f.exit_code());
			if (std::ferror(stdout))
				break; // the output is gone: the other files cannot be written either
		}
	}
	session.finish_output();
	return exit_code;
}

} // namespace plakar::cli
