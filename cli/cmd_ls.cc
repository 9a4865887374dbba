// `plakar ls`: the snapshots of the repository, or the entries of a directory in a snapshot.
#include <plakar/plakar.h>

#include <cinttypes>
#include <cstdio>
#include <string>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "report.h"

namespace plakar::cli {

namespace {

char type_char(int type) {
	switch (type) {
	case PLAKAR_TYPE_DIRECTORY: return 'd';
	case PLAKAR_TYPE_SYMLINK: return 'l';
	case PLAKAR_TYPE_FIFO: return 'p';
	case PLAKAR_TYPE_CHARDEV: return 'c';
	case PLAKAR_TYPE_BLOCKDEV: return 'b';
	case PLAKAR_TYPE_SOCKET: return 's';
	default: return '-';
	}
}

// The recorded name, else the numeric id.
std::string owner(const char *name, uint32_t id) {
	if (name != nullptr && *name != '\0')
		return escape_name(name);
	return std::to_string(id);
}

// "2021-11-27T00:12:04Z  99e53a9c-e503-4c32-8622-924bf966f15b     11 MB /bin, /etc"
void print_snapshot_line(const plakar_snapshot *snap) {
	std::string paths;
	std::size_t n = plakar_snapshot_path_count(snap);
	for (std::size_t i = 0; i < n; ++i) {
		if (i > 0)
			paths += ", ";
		const char *p = plakar_snapshot_path(snap, i);
		paths += escape_name(p ? p : "");
	}
	std::printf("%s  %s %10s %s\n", format_time(plakar_snapshot_time(snap)).c_str(), plakar_snapshot_id(snap),
	            humanize_bytes(plakar_snapshot_size(snap)).c_str(), paths.c_str());
}

// "2021-11-27T00:12:04Z drwxr-xr-x     root     root    4.1 kB name"
void print_entry_line(const plakar_entry *e) {
	int type = plakar_entry_type(e);
	std::string name = escape_name(plakar_entry_name(e));
	if (type == PLAKAR_TYPE_SYMLINK) {
		name += " -> ";
		name += escape_name(plakar_entry_symlink(e));
	}
	std::printf("%s %s %8s %8s %9s %s\n", format_time(plakar_entry_mtime(e)).c_str(),
	            mode_string(type_char(type), plakar_entry_mode(e)).c_str(),
	            owner(plakar_entry_username(e), plakar_entry_uid(e)).c_str(),
	            owner(plakar_entry_groupname(e), plakar_entry_gid(e)).c_str(),
	            humanize_bytes(plakar_entry_size(e)).c_str(), name.c_str());
}

void list_snapshots(Session &session) {
	plakar_snapshot_list *raw = nullptr;
	int rc = plakar_snapshot_list_new(&raw, session.repository());
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	SnapshotList list(raw);
	std::size_t n = plakar_snapshot_list_count(list.get());
	for (std::size_t i = 0; i < n; ++i)
		if (const plakar_snapshot *snap = plakar_snapshot_list_get(list.get(), i))
			print_snapshot_line(snap);
}

void list_entries(Session &session, const SnapshotArg &target) {
	plakar_snapshot *snap = session.snapshot(target.snapshot);
	plakar_entry_list *raw = nullptr;
	int rc = plakar_snapshot_ls(&raw, snap, target.path.c_str());
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	EntryList list(raw);
	std::size_t n = plakar_entry_list_count(list.get());
	for (std::size_t i = 0; i < n; ++i)
		if (const plakar_entry *e = plakar_entry_list_get(list.get(), i))
			print_entry_line(e);
}

} // namespace

int cmd_ls(Session &session) {
	FlagSet flags("ls");
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos == args.size()) {
		list_snapshots(session);
		session.finish_output();
		return kExitOk;
	}

	std::vector<SnapshotArg> targets;
	for (std::size_t i = pos; i < args.size(); ++i)
		targets.push_back(parse_snapshot_arg(args[i]));
	session.repository(); // a repository that cannot open is one error, not one per argument
	int exit_code = kExitOk;
	for (const SnapshotArg &target : targets) {
		try {
			list_entries(session, target);
		} catch (const UsageError &) {
			throw;
		} catch (const Failure &f) {
			report_error(session.command(), f.what());
			exit_code = worst_exit(exit_code, f.exit_code());
		}
	}
	session.finish_output();
	return exit_code;
}

} // namespace plakar::cli
