// `plakar ls`: the snapshots of the repository, or the entries of a directory in a snapshot.
#include <plakar/plakar.h>

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "json.h"
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
// With full_path (ls -R), the whole path is printed instead of the name.
void print_entry_line(const plakar_entry *e, const std::string *full_path = nullptr) {
	int type = plakar_entry_type(e);
	std::string name = escape_name(full_path ? *full_path : plakar_entry_name(e));
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

void print_snapshot_json(const plakar_snapshot *snap) {
	std::string paths = "[", tags = "[";
	for (std::size_t i = 0; i < plakar_snapshot_path_count(snap); ++i)
		paths += (i ? "," : "") + json_quote(plakar_snapshot_path(snap, i));
	for (std::size_t i = 0; i < plakar_snapshot_tag_count(snap); ++i)
		tags += (i ? "," : "") + json_quote(plakar_snapshot_tag(snap, i));
	JsonObject o;
	o.str("id", plakar_snapshot_id(snap)).str("time", format_time(plakar_snapshot_time(snap)));
	o.num("time_ns", plakar_snapshot_time(snap)).str("hostname", plakar_snapshot_hostname(snap));
	o.str("username", plakar_snapshot_username(snap)).unum("size", plakar_snapshot_size(snap));
	o.unum("files", plakar_snapshot_files(snap)).unum("directories", plakar_snapshot_directories(snap));
	o.unum("errors", plakar_snapshot_error_count(snap)).raw("paths", paths + "]").raw("tags", tags + "]");
	std::printf("%s\n", o.done().c_str());
}

int list_snapshots(Session &session, bool json) {
	plakar_snapshot_list *raw = nullptr;
	int rc = plakar_snapshot_list_new(&raw, session.repository());
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	SnapshotList list(raw);
	std::size_t n = plakar_snapshot_list_count(list.get());
	for (std::size_t i = 0; i < n; ++i)
		if (const plakar_snapshot *snap = plakar_snapshot_list_get(list.get(), i))
			json ? print_snapshot_json(snap) : print_snapshot_line(snap);
	// The ones that cannot be read are named after the others, and the exit says so.
	std::size_t bad = plakar_snapshot_list_unreadable_count(list.get());
	for (std::size_t i = 0; i < bad; ++i)
		report_item("ls", "", std::string(plakar_snapshot_list_unreadable(list.get(), i)) +
		                          " (left out; plakar rm ID removes it)");
	return bad ? kExitPartial : kExitOk;
}

struct LsOptions {
	bool recursive = false;
	bool json = false;
};

std::string child_path(const std::string &dir, const char *name) {
	return dir == "/" ? "/" + std::string(name) : dir + "/" + name;
}

void print_entry(const plakar_entry *e, const std::string &path, const LsOptions &o) {
	if (o.json)
		std::printf("%s\n", entry_json(e, path).c_str());
	else
		print_entry_line(e, o.recursive ? &path : nullptr);
}

// Streams a directory (one tree node at a time); with -R, descends depth-first in name order.
void list_directory(plakar_snapshot *snap, const std::string &path, const LsOptions &o) {
	plakar_dir *raw = nullptr;
	int rc = plakar_dir_open(&raw, snap, path.c_str());
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	std::unique_ptr<plakar_dir, void (*)(plakar_dir *)> dir(raw, plakar_dir_free);
	std::vector<std::string> subdirs;
	for (;;) {
		const plakar_entry *e = nullptr;
		rc = plakar_dir_next(&e, dir.get());
		if (rc != PLAKAR_OK)
			throw_library_error(rc, escape_name(path));
		if (e == nullptr)
			break;
		std::string p = child_path(path, plakar_entry_name(e));
		print_entry(e, p, o);
		if (o.recursive && plakar_entry_type(e) == PLAKAR_TYPE_DIRECTORY)
			subdirs.push_back(std::move(p));
	}
	dir.reset();
	for (const auto &sub : subdirs)
		list_directory(snap, sub, o);
}

void list_entries(Session &session, const SnapshotArg &target, const LsOptions &o) {
	plakar_snapshot *snap = session.snapshot(target.snapshot);
	plakar_entry *raw = nullptr;
	int rc = plakar_snapshot_stat(&raw, snap, target.path.c_str());
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	Entry e(raw);
	if (plakar_entry_type(e.get()) != PLAKAR_TYPE_DIRECTORY) {
		print_entry(e.get(), target.path, o);
		return;
	}
	std::string path = target.path.empty() ? "/" : target.path;
	while (path.size() > 1 && path.back() == '/')
		path.pop_back();
	if (path[0] != '/')
		path = "/" + path;
	list_directory(snap, path, o);
}

} // namespace

int cmd_ls(Session &session) {
	FlagSet flags("ls");
	LsOptions o;
	flags.add_bool("R", &o.recursive);
	flags.add_bool("json", &o.json);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos == args.size()) {
		int rc = list_snapshots(session, o.json);
		session.finish_output();
		return rc;
	}

	std::vector<SnapshotArg> targets;
	for (std::size_t i = pos; i < args.size(); ++i)
		targets.push_back(parse_snapshot_arg(args[i]));
	session.repository(); // a repository that cannot open is one error, not one per argument
	int exit_code = kExitOk;
	for (const SnapshotArg &target : targets) {
		try {
			list_entries(session, target, o);
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
