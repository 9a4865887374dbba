// Command-line parsing: the global part (flags, `on REPOSITORY`, the command) and the
// per-command flags, in the seed's style: single-dash long flags ("-to DIR", "-to=DIR";
// "--to" is accepted too), flags before positional arguments, "--" ends the flags.
#ifndef PLAKAR_CLI_ARGS_H
#define PLAKAR_CLI_ARGS_H

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace plakar::cli {

// The flags one command (or the global level) accepts. Parsing throws UsageError on an unknown
// flag, a missing or malformed value; the message names the flag.
class FlagSet {
public:
	// `scope` names the command in messages ("" for the global flags).
	explicit FlagSet(std::string scope) : scope_(std::move(scope)) {}

	void add_bool(std::string name, bool *out);
	void add_string(std::string name, std::optional<std::string> *out);
	// An integer in [min, max].
	void add_int(std::string name, int *out, int min, int max);
	// A flag that may be given several times; each value is appended.
	void add_list(std::string name, std::vector<std::string> *out);

	// Consumes flags from args[pos...] and stops at the first positional argument (or after
	// "--"); returns the index of that argument.
	std::size_t parse(const std::vector<std::string> &args, std::size_t pos) const;

private:
	enum class Kind { Bool, String, Int, List };
	struct Flag {
		std::string name;
		Kind kind;
		void *out;
		int min = 0, max = 0;
	};
	const Flag *find(std::string_view name) const;
	void assign(const Flag &flag, const std::string &value) const;

	std::string scope_;
	std::vector<Flag> flags_;
};

// What precedes the command's own arguments.
struct GlobalOptions {
	int cpu = 0;                                // 0: the library's default
	bool no_cache = false;                      // -no-cache: bypass the local cache
	std::optional<std::string> passphrase_file; // -passphrase-file FILE
	std::optional<std::string> repository;      // on|at REPOSITORY, as typed
	bool help = false;                          // -h / -help
	std::string command;                        // "" when none was given
	std::vector<std::string> args;              // the command's arguments
	std::string command_line;                   // argv joined by spaces, recorded by push
};

// Parses argv. Throws UsageError.
GlobalOptions parse_global(int argc, char **argv);

// A SNAP[:PATH] argument. The path is made absolute inside the snapshot ("etc" -> "/etc");
// has_path tells whether a ":" was present.
struct SnapshotArg {
	std::string snapshot;
	std::string path = "/";
	bool has_path = false;
};

// Splits at the first ':'. Throws UsageError on an empty snapshot part.
SnapshotArg parse_snapshot_arg(const std::string &arg);

// The one-line usage of a command ("" or an unknown name: the global usage).
std::string usage_line(std::string_view command);

} // namespace plakar::cli

#endif
