// `plakar diff SNAP1[:PATH] SNAP2[:PATH]`: what was added, removed or changed between two
// snapshots (or two subtrees), in path order; -u adds a unified diff of changed text files.
#include <plakar/plakar.h>

#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "json.h"
#include "report.h"
#include "textdiff.h"

namespace plakar::cli {

namespace {

constexpr uint64_t kMaxTextDiff = 8 * 1024 * 1024;

struct DiffState {
	plakar_snapshot *a, *b;
	std::string path_a, path_b; // as given (for -u file reads)
	std::string label_a, label_b;
	bool unified = false, json = false;
	int exit_code = kExitOk;
};

std::string what_list(unsigned what, bool json)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{PLAKAR_CHANGED_TYPE, "type"},   {PLAKAR_CHANGED_CONTENT, "content"}, {PLAKAR_CHANGED_SIZE, "size"},
	             {PLAKAR_CHANGED_MODE, "mode"},   {PLAKAR_CHANGED_OWNER, "owner"},     {PLAKAR_CHANGED_MTIME, "mtime"},
	             {PLAKAR_CHANGED_XATTRS, "xattrs"}};
	std::string out;
	for (const auto &n : names)
		if (what & n.bit) {
			if (!out.empty())
				out += ",";
			out += json ? "\"" + std::string(n.name) + "\"" : n.name;
		}
	return out;
}

bool read_file(plakar_snapshot *snap, const std::string &path, std::string &out)
{
	plakar_file *raw = nullptr;
	if (plakar_file_open(&raw, snap, path.c_str()) != PLAKAR_OK)
		throw_library_error(plakar_error_last_code(), escape_name(path));
	File f(raw);
	if (plakar_file_size(f.get()) > kMaxTextDiff)
		return false;
	out.resize(plakar_file_size(f.get()));
	size_t got = 0;
	while (got < out.size()) {
		size_t n = 0;
		int rc = plakar_file_read(&n, f.get(), out.data() + got, out.size() - got);
		if (rc != PLAKAR_OK)
			throw_library_error(rc, escape_name(path));
		if (n == 0)
			break;
		got += n;
	}
	out.resize(got);
	return true;
}

// The path of a changed entry inside snapshot a: the change names it in b's terms.
std::string path_in_a(const DiffState &st, const std::string &path_b)
{
	std::string rest = path_b.substr(st.path_b.size() == 1 ? 0 : st.path_b.size());
	return st.path_a == "/" ? (rest.empty() ? "/" : rest) : st.path_a + rest;
}

void text_diff(const DiffState &st, const std::string &path)
{
	std::string ta, tb;
	std::string pa = path_in_a(st, path);
	if (!read_file(st.a, pa, ta) || !read_file(st.b, path, tb) || !looks_like_text(ta) || !looks_like_text(tb)) {
		std::printf("Binary files %s:%s and %s:%s differ\n", st.label_a.c_str(), escape_name(pa).c_str(),
		            st.label_b.c_str(), escape_name(path).c_str());
		return;
	}
	auto d = unified_diff(ta, tb);
	if (!d) {
		std::printf("Files %s:%s and %s:%s differ (too many changes to show)\n", st.label_a.c_str(),
		            escape_name(pa).c_str(), st.label_b.c_str(), escape_name(path).c_str());
		return;
	}
	std::printf("--- %s:%s\n+++ %s:%s\n%s", st.label_a.c_str(), escape_name(pa).c_str(), st.label_b.c_str(),
	            escape_name(path).c_str(), d->c_str());
}

extern "C" int on_change(const plakar_change *c, void *payload)
{
	auto *st = static_cast<DiffState *>(payload);
	const char *kind = c->kind == PLAKAR_CHANGE_ADDED ? "added" : c->kind == PLAKAR_CHANGE_REMOVED ? "removed" : "changed";
	if (st->json) {
		JsonObject o;
		o.str("change", kind).str("path", c->path);
		const plakar_entry *e = c->after ? c->after : c->before;
		o.str("type", type_name(plakar_entry_type(e)));
		if (c->kind == PLAKAR_CHANGE_MODIFIED)
			o.raw("what", "[" + what_list(c->what, true) + "]");
		std::printf("%s\n", o.done().c_str());
		return 0;
	}
	std::string line = std::string(kind) + std::string(8 - std::string(kind).size(), ' ') + escape_name(c->path);
	const plakar_entry *e = c->after ? c->after : c->before;
	if (plakar_entry_type(e) == PLAKAR_TYPE_DIRECTORY && c->kind != PLAKAR_CHANGE_MODIFIED)
		line += "/";
	if (c->kind == PLAKAR_CHANGE_MODIFIED)
		line += " (" + what_list(c->what, false) + ")";
	std::printf("%s\n", line.c_str());
	if (st->unified && c->kind == PLAKAR_CHANGE_MODIFIED && (c->what & PLAKAR_CHANGED_CONTENT) &&
	    plakar_entry_type(c->before) == PLAKAR_TYPE_FILE && plakar_entry_type(c->after) == PLAKAR_TYPE_FILE) {
		try {
			text_diff(*st, c->path);
		} catch (const Failure &f) {
			report_error("diff", f.what());
			st->exit_code = worst_exit(st->exit_code, f.exit_code());
		}
	}
	return 0;
}

std::string normalized(const std::string &p)
{
	std::string out = "/";
	size_t i = 0;
	while (i < p.size()) {
		size_t j = p.find('/', i);
		if (j == std::string::npos)
			j = p.size();
		std::string c = p.substr(i, j - i);
		if (!c.empty() && c != ".")
			out += (out == "/" ? "" : "/") + c;
		i = j + 1;
	}
	return out;
}

} // namespace

int cmd_diff(Session &session)
{
	FlagSet flags("diff");
	DiffState st;
	flags.add_bool("u", &st.unified);
	flags.add_bool("json", &st.json);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (args.size() - pos != 2)
		throw UsageError(args.size() - pos < 2 ? "two snapshots are needed" : "too many arguments");
	if (st.unified && st.json)
		throw UsageError("-u and -json cannot be combined");
	SnapshotArg a = parse_snapshot_arg(args[pos]), b = parse_snapshot_arg(args[pos + 1]);
	st.a = session.snapshot(a.snapshot);
	st.b = session.snapshot(b.snapshot);
	st.path_a = normalized(a.path);
	st.path_b = normalized(b.has_path ? b.path : a.path);
	st.label_a = std::string(plakar_snapshot_id(st.a)).substr(0, 8);
	st.label_b = std::string(plakar_snapshot_id(st.b)).substr(0, 8);
	plakar_diff_options o = PLAKAR_DIFF_OPTIONS_INIT;
	o.change = on_change;
	o.payload = &st;
	int rc = plakar_snapshot_diff(st.a, st.path_a.c_str(), st.b, st.path_b.c_str(), &o);
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	session.finish_output();
	return st.exit_code;
}

} // namespace plakar::cli
