// Exit codes and error reporting for the `plakar` command.
//
// Every error the command prints is ONE line on stderr, "plakar: <command>: <message>", with
// control bytes and invalid UTF-8 escaped so a hostile file name cannot split or forge lines.
// Commands signal failure by throwing Failure (or UsageError); main() prints it and exits.
#ifndef PLAKAR_CLI_REPORT_H
#define PLAKAR_CLI_REPORT_H

#include <stdexcept>
#include <string>
#include <string_view>

namespace plakar::cli {

// The process exit codes (documented in docs/cli.md).
enum ExitCode : int {
	kExitOk = 0,
	kExitFailure = 1, // the command failed (including corrupted data, wrong passphrase)
	kExitUsage = 2,   // unknown command or flag, missing or malformed argument
	kExitPartial = 3, // committed or restored, but some items failed (each printed on stderr)
};

// The more serious of two exit codes: failure > partial > ok. Usage errors end the command
// before anything runs, so they never need combining.
int worst_exit(int a, int b);

// A failure that ends the command. The message is printed as-is (after escaping) after
// "plakar: <command>: ".
class Failure : public std::runtime_error {
public:
	explicit Failure(const std::string &message, int exit_code = kExitFailure)
	    : std::runtime_error(message), exit_code_(exit_code) {}
	int exit_code() const { return exit_code_; }

private:
	int exit_code_;
};

// A usage error: exit code 2, and the line ends with a usage hint for the command.
class UsageError : public Failure {
public:
	explicit UsageError(const std::string &message) : Failure(message, kExitUsage) {}
};

// The message of the library call that just failed with `code`: plakar_error_last(), or the
// generic name of the code when the library gave no message. Call it right after the failing
// call: any later plakar_* call clears the message.
std::string library_message(int code);

// The exit code for a library failure code: PLAKAR_EPARTIAL -> 3, anything else -> 1.
int exit_code_for(int code);

// Throws Failure(library_message(code), exit_code_for(code)), optionally prefixed by
// "<context>: ".
[[noreturn]] void throw_library_error(int code, std::string_view context = {});

// Prints "plakar: <command>: <message>" (or "plakar: <message>" when command is empty) as
// one escaped line on stderr.
void report_error(std::string_view command, std::string_view message);

// Prints one failed item: "plakar: <command>: <path>: <message>". The path is omitted when
// empty or when the message already names it.
void report_item(std::string_view command, std::string_view path, std::string_view message);

} // namespace plakar::cli

#endif
