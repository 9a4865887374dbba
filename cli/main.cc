// The `plakar` command: parse the command line, run one command, map failures to exit codes.
#include <malloc.h>
#include <sched.h>

#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "args.h"
#include "commands.h"
#include "report.h"
#include "session.h"

using namespace plakar::cli;

namespace {

void print_help() {
	std::printf("usage: %s\n"
	            "\n"
	            "  create [-no-encryption]         create a repository\n"
	            "  push PATH...                    back up files and directories into a new snapshot\n"
	            "  ls [SNAPSHOT[:PATH]...]         list snapshots, or the entries of a directory\n"
	            "  cat SNAPSHOT:PATH...            write file contents to stdout\n"
	            "  pull [-to DIR] [-rebase] [-overwrite POLICY] [-force] [-dry-run] [-verify] SNAPSHOT[:PATH]...\n"
	            "                                  restore files\n"
	            "  diff [-u] SNAPSHOT[:PATH] SNAPSHOT[:PATH]\n"
	            "                                  what was added, removed or changed\n"
	            "  locate [-path] PATTERN [SNAPSHOT...]\n"
	            "                                  find entries by name (glob) in snapshots\n"
	            "  info [SNAPSHOT]                 describe the repository or a snapshot\n"
	            "  tarball [-o FILE] [-format tar|tar.gz|tar.zst|zip] SNAPSHOT[:PATH]\n"
	            "                                  write an archive of a snapshot\n"
	            "  check [-fast] [SNAPSHOT...]     verify snapshots (everything they reference is read),\n"
	            "                                  or the whole repository; -read-data, -refcounts\n"
	            "  rm [-no-gc] SNAPSHOT...         remove snapshots, then collect garbage\n"
	            "  keep [-last N] [-daily N] [-weekly N] [-monthly N] [-yearly N] [N]\n"
	            "                                  remove the snapshots no rule keeps (per host and paths)\n"
	            "  gc [-dry-run] [-repack PERCENT] delete unused packs, repack mostly unused ones\n"
	            "  repair [-read-data] [-yes]      rebuild the index from the packs (-yes applies)\n"
	            "  agent [-timeout SECONDS] | agent -stop\n"
	            "                                  keep master keys for this shell: eval \"$(plakar agent)\"\n"
	            "  server [-listen HOST:PORT] [-tokens FILE] [-tls-cert FILE -tls-key FILE]\n"
	            "                                  serve the repository to plakar:// (plakar+tls://) clients\n"
	            "  token [-rights rw|ro|append] [-tokens FILE] NAME\n"
	            "                                  add a server token; prints the client's NAME:SECRET\n"
	            "  tls-cert [-name HOST] [-days N] CERT KEY\n"
	            "                                  make a server's TLS certificate; prints its pin\n"
	            "  version                         print the version\n"
	            "\n"
	            "REPOSITORY defaults to $PLAKAR_REPOSITORY, else ~/.plakar. See docs/cli.md.\n",
	            usage_line("").c_str());
}

int run(int argc, char **argv) {
	std::string command;
	try {
		GlobalOptions options = parse_global(argc, argv);
		if (options.help) {
			print_help();
			return kExitOk;
		}
		command = options.command;
		if (options.cpu > 0) {
			// The library clamps too; saying so here makes the clamp visible.
			cpu_set_t set;
			int cores = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
			if (cores > 0 && options.cpu > cores)
				std::fprintf(stderr, "plakar: note: -cpu %d is more than the %d cores usable: using %d\n", options.cpu,
				             cores, cores);
		}
		CommandFn fn = find_command(command);
		if (fn == nullptr)
			throw UsageError("unknown command");
		Session session(std::move(options));
		return fn(session);
	} catch (const UsageError &e) {
		report_error(command, std::string(e.what()) + " (usage: " + usage_line(command) + ")");
		return e.exit_code();
	} catch (const Failure &e) {
		report_error(command, e.what());
		return e.exit_code();
	} catch (const std::bad_alloc &) {
		report_error(command, "out of memory");
		return kExitFailure;
	} catch (const std::exception &e) {
		report_error(command, e.what());
		return kExitFailure;
	}
}

} // namespace

int main(int argc, char **argv) {
	// Packs and read buffers (megabytes each) come and go all through a push or a pull. Setting
	// the threshold keeps every allocation of 1 MiB or more in its own mapping, returned to the
	// system when freed; glibc's adaptive threshold would move them into the heap arenas, where
	// freed buffers stay resident. The library leaves this choice to the program embedding it.
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	int code = run(argc, argv);
	if (std::fflush(stdout) != 0 && code == kExitOk) {
		report_error("", "cannot write the output");
		code = kExitFailure;
	}
	return code;
}
