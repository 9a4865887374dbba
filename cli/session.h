// What every command needs: RAII owners for the library's handles, the repository location,
// and opening the repository with the passphrase rules (docs/cli.md, "Passphrase").
#ifndef PLAKAR_CLI_SESSION_H
#define PLAKAR_CLI_SESSION_H

#include <plakar/plakar.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "args.h"

namespace plakar::cli {

struct HandleDeleter {
	void operator()(plakar_repository *p) const { plakar_repository_free(p); }
	void operator()(plakar_snapshot *p) const { plakar_snapshot_free(p); }
	void operator()(plakar_snapshot_list *p) const { plakar_snapshot_list_free(p); }
	void operator()(plakar_entry *p) const { plakar_entry_free(p); }
	void operator()(plakar_entry_list *p) const { plakar_entry_list_free(p); }
	void operator()(plakar_file *p) const { plakar_file_free(p); }
	void operator()(char *p) const { plakar_string_free(p); }
};
using Repository = std::unique_ptr<plakar_repository, HandleDeleter>;
using Snapshot = std::unique_ptr<plakar_snapshot, HandleDeleter>;
using SnapshotList = std::unique_ptr<plakar_snapshot_list, HandleDeleter>;
using Entry = std::unique_ptr<plakar_entry, HandleDeleter>;
using EntryList = std::unique_ptr<plakar_entry_list, HandleDeleter>;
using File = std::unique_ptr<plakar_file, HandleDeleter>;
using LibraryString = std::unique_ptr<char, HandleDeleter>;

// What the command line takes from the environment (docs/cli.md, "Environment"): the library
// reads none of it, so it is read here once and passed in options.
struct Environment {
	std::optional<std::string> repository;  // $PLAKAR_REPOSITORY, else $HOME/.plakar
	std::optional<std::string> cache_dir;   // $XDG_CACHE_HOME/plakar (absolute only); else the library's
	std::optional<std::string> agent;       // $PLAKAR_AGENT
	std::optional<std::string> token;       // $PLAKAR_TOKEN
	std::optional<std::string> token_file;  // $PLAKAR_TOKEN_FILE, else ~/.config/plakar/token
	std::optional<std::string> tls_ca_file; // $PLAKAR_TLS_CA

	static Environment read();
	// Points the options' fields at these strings (which must outlive the options).
	void apply(plakar_open_options &o) const;
	void apply(plakar_create_options &o) const;

private:
	void apply_credentials(const char *&token, const char *&token_file, const char *&ca) const;
};

// The state of one command run.
class Session {
public:
	explicit Session(GlobalOptions options) : options_(std::move(options)), env_(Environment::read()) {}

	const Environment &environment() const { return env_; }

	const GlobalOptions &options() const { return options_; }
	const std::string &command() const { return options_.command; }

	// The repository URI handed to the library: `on REPOSITORY` or the default, with a
	// relative filesystem path made absolute.
	std::string repository_uri() const;

	// Opens the repository: with the supplied passphrase if any, else without one; when that
	// fails with PLAKAR_EAUTH and none was supplied, prompts once and retries. Throws Failure.
	// The handle lives as long as the session.
	plakar_repository *repository();

	// Opens a snapshot by id or prefix, once per distinct prefix. Throws Failure.
	plakar_snapshot *snapshot(const std::string &id_or_prefix);

	// Flushes stdout; throws Failure when the output could not be written.
	void finish_output();

private:
	GlobalOptions options_;
	Environment env_;
	Repository repository_;
	// Declared after the repository: members are destroyed in reverse order, and snapshots
	// must be freed before their repository.
	std::map<std::string, Snapshot> snapshots_;
};

} // namespace plakar::cli

#endif
