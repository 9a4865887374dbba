#include "args.h"

#include <cerrno>
#include <cstdlib>
#include <climits>

#include "report.h"

namespace plakar::cli {

void FlagSet::add_bool(std::string name, bool *out) { flags_.push_back({std::move(name), Kind::Bool, out}); }

void FlagSet::add_string(std::string name, std::optional<std::string> *out) {
	flags_.push_back({std::move(name), Kind::String, out});
}

void FlagSet::add_int(std::string name, int *out, int min, int max) {
	flags_.push_back({std::move(name), Kind::Int, out, min, max});
}

void FlagSet::add_list(std::string name, std::vector<std::string> *out) {
	flags_.push_back({std::move(name), Kind::List, out});
}

const FlagSet::Flag *FlagSet::find(std::string_view name) const {
	for (const Flag &flag : flags_)
		if (flag.name == name)
			return &flag;
	return nullptr;
}

void FlagSet::assign(const Flag &flag, const std::string &value) const {
	switch (flag.kind) {
	case Kind::Bool:
		if (value == "true" || value == "1")
			*static_cast<bool *>(flag.out) = true;
		else if (value == "false" || value == "0")
			*static_cast<bool *>(flag.out) = false;
		else
			throw UsageError("invalid value \"" + value + "\" for flag -" + flag.name + ": expected true or false");
		return;
	case Kind::List:
		if (value.empty())
			throw UsageError("empty value for flag -" + flag.name);
		static_cast<std::vector<std::string> *>(flag.out)->push_back(value);
		return;
	case Kind::String:
		*static_cast<std::optional<std::string> *>(flag.out) = value;
		return;
	case Kind::Int: {
		errno = 0;
		char *end = nullptr;
		long n = std::strtol(value.c_str(), &end, 10);
		if (value.empty() || *end != '\0' || errno == ERANGE || n < flag.min || n > flag.max)
			throw UsageError("invalid value \"" + value + "\" for flag -" + flag.name + ": expected an integer from " +
			                 std::to_string(flag.min) + " to " + std::to_string(flag.max));
		*static_cast<int *>(flag.out) = static_cast<int>(n);
		return;
	}
	}
}

std::size_t FlagSet::parse(const std::vector<std::string> &args, std::size_t pos) const {
	while (pos < args.size()) {
		const std::string &arg = args[pos];
		if (arg == "--")
			return pos + 1;
		if (arg.size() < 2 || arg[0] != '-') {
			// "-" alone is a positional argument (it could name a file). A command checks all
			// of its arguments before it acts: a flag after an argument ("pull SNAP -to DIR")
			// is refused here, never taken for an argument nor ignored. Arguments that start
			// with a dash follow "--".
			if (!scope_.empty())
				for (std::size_t i = pos + 1; i < args.size(); ++i) {
					if (args[i].size() >= 2 && args[i][0] == '-')
						throw UsageError("flags go before arguments: " + args[i].substr(0, args[i].find('=')) +
						                 " after " + arg);
				}
			return pos;
		}
		std::string_view body(arg);
		body.remove_prefix(body.starts_with("--") ? 2 : 1);
		std::optional<std::string> inline_value;
		if (auto eq = body.find('='); eq != std::string_view::npos) {
			inline_value = std::string(body.substr(eq + 1));
			body = body.substr(0, eq);
		}
		const Flag *flag = find(body);
		if (flag == nullptr)
			throw UsageError("unknown flag " + arg.substr(0, arg.find('=')));
		++pos;
		if (flag->kind == Kind::Bool) {
			assign(*flag, inline_value.value_or("true"));
			continue;
		}
		if (!inline_value) {
			if (pos >= args.size())
				throw UsageError("flag -" + flag->name + " needs a value");
			inline_value = args[pos++];
		}
		assign(*flag, *inline_value);
	}
	return pos;
}

GlobalOptions parse_global(int argc, char **argv) {
	GlobalOptions opts;
	std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
	for (int i = 0; i < argc; ++i) {
		if (i > 0)
			opts.command_line += ' ';
		opts.command_line += argv[i];
	}

	FlagSet flags("");
	flags.add_int("cpu", &opts.cpu, 1, 1024);
	flags.add_string("passphrase-file", &opts.passphrase_file);
	flags.add_bool("no-cache", &opts.no_cache);
	flags.add_bool("h", &opts.help);
	flags.add_bool("help", &opts.help);
	std::size_t pos = flags.parse(args, 0);
	if (opts.help)
		return opts;

	if (pos < args.size() && (args[pos] == "on" || args[pos] == "at")) {
		if (pos + 1 >= args.size())
			throw UsageError("\"" + args[pos] + "\" needs a REPOSITORY");
		opts.repository = args[pos + 1];
		if (opts.repository->empty())
			throw UsageError("empty REPOSITORY after \"" + args[pos] + "\"");
		pos += 2;
	}
	if (pos >= args.size())
		throw UsageError("missing COMMAND");
	opts.command = args[pos];
	opts.args.assign(args.begin() + static_cast<std::ptrdiff_t>(pos) + 1, args.end());
	return opts;
}

SnapshotArg parse_snapshot_arg(const std::string &arg) {
	SnapshotArg out;
	std::size_t colon = arg.find(':');
	out.snapshot = arg.substr(0, colon);
	if (out.snapshot.empty())
		throw UsageError("missing SNAPSHOT in \"" + arg + "\"");
	if (colon != std::string::npos) {
		out.has_path = true;
		std::string path = arg.substr(colon + 1);
		if (path.empty() || path[0] != '/')
			path.insert(0, "/");
		out.path = std::move(path);
	}
	return out;
}

std::string usage_line(std::string_view command) {
	static const char *const global = "plakar [-cpu N] [-no-cache] [-passphrase-file FILE] [on REPOSITORY] ";
	if (command == "create")
		return std::string(global) + "create [-no-encryption] [-kdf-log2-n N]";
	if (command == "push")
		return std::string(global) + "push PATH...";
	if (command == "ls")
		return std::string(global) + "ls [-R] [-json] [SNAPSHOT[:PATH]...]";
	if (command == "cat")
		return std::string(global) + "cat SNAPSHOT:PATH...";
	if (command == "pull")
		return std::string(global) + "pull [-to DIR] [-rebase] [-overwrite always|if-changed|if-newer|never] [-force] [-dry-run] [-verify] SNAPSHOT[:PATH]...";
	if (command == "version")
		return "plakar version";
	if (command == "diff")
		return std::string(global) + "diff [-u | -json] SNAPSHOT[:PATH] SNAPSHOT[:PATH]";
	if (command == "locate")
		return std::string(global) + "locate [-path] [-json] PATTERN [SNAPSHOT...]";
	if (command == "info")
		return std::string(global) + "info [-json] [SNAPSHOT]";
	if (command == "tarball")
		return std::string(global) + "tarball [-o FILE] [-format tar|tar.gz|tar.zst|zip] SNAPSHOT[:PATH]";
	if (command == "rm")
		return std::string(global) + "rm [-no-gc] [-json] SNAPSHOT...";
	if (command == "keep")
		return std::string(global) + "keep [-last N] [-hourly N] [-daily N] [-weekly N] [-monthly N] [-yearly N] "
		                             "[-dry-run] [-no-gc] [-json] [N]";
	if (command == "repair")
		return std::string(global) + "repair [-read-data] [-yes] [-json]";
	if (command == "gc")
		return std::string(global) + "gc [-dry-run] [-repack PERCENT] [-json]";
	if (command == "agent")
		return "plakar agent [-timeout SECONDS] [-foreground] [-socket PATH] | plakar agent -stop";
	if (command == "check")
		return std::string(global) + "check [-fast] [-read-data] [-refcounts] [-json] [SNAPSHOT...]";
	if (command == "server")
		return std::string(global) + "server [-listen HOST:PORT] [-tokens FILE] [-workers N] [-max-connections N] "
		                             "[-tls-cert FILE -tls-key FILE]";
	if (command == "token")
		return "plakar token [-rights rw|ro|append] [-tokens FILE] NAME";
	if (command == "tls-cert")
		return "plakar tls-cert [-name HOST] [-days N] CERT KEY";
	return std::string(global) + "create|push|ls|cat|pull|diff|locate|info|tarball|check|rm|keep|gc|repair|agent|"
	                             "server|token|tls-cert|version [options] [args]";
}

} // namespace plakar::cli
