#include "session.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <unistd.h>

#include "passphrase.h"
#include "report.h"

namespace plakar::cli {

namespace {

std::string current_directory() {
	std::string buf(4096, '\0');
	for (;;) {
		if (::getcwd(buf.data(), buf.size()) != nullptr)
			return std::string(buf.c_str());
		if (errno != ERANGE)
			throw Failure(std::string("cannot get the current directory: ") + std::strerror(errno));
		buf.resize(buf.size() * 2);
	}
}

// A filesystem path relative to the current directory becomes absolute; URIs with a scheme
// ("fs://", "sqlite://", ...) are left alone.
std::string absolute_location(const std::string &location) {
	if (location.empty() || location[0] == '/' || location.find("://") != std::string::npos)
		return location;
	std::string cwd = current_directory();
	if (cwd.empty() || cwd.back() != '/')
		cwd += '/';
	return cwd + location;
}

// $name when set and not empty.
std::optional<std::string> env(const char *name) {
	const char *v = std::getenv(name);
	if (!v || !*v)
		return std::nullopt;
	return std::string(v);
}

} // namespace

Environment Environment::read() {
	Environment e;
	e.repository = env("PLAKAR_REPOSITORY");
	std::optional<std::string> home = env("HOME");
	if (!e.repository && home)
		e.repository = *home + "/.plakar";
	// An absolute $XDG_CACHE_HOME is honoured (the XDG rule); else the library's default.
	if (auto x = env("XDG_CACHE_HOME"); x && (*x)[0] == '/')
		e.cache_dir = *x + "/plakar";
	e.agent = env("PLAKAR_AGENT");
	e.token = env("PLAKAR_TOKEN");
	e.token_file = env("PLAKAR_TOKEN_FILE");
	if (!e.token && !e.token_file && home)
		e.token_file = *home + "/.config/plakar/token";
	e.tls_ca_file = env("PLAKAR_TLS_CA");
	return e;
}

void Environment::apply(plakar_open_options &o) const {
	o.cache_dir = cache_dir ? cache_dir->c_str() : nullptr;
	o.agent = agent ? agent->c_str() : nullptr;
	apply_credentials(o.token, o.token_file, o.tls_ca_file);
}

void Environment::apply(plakar_create_options &o) const {
	apply_credentials(o.token, o.token_file, o.tls_ca_file);
}

void Environment::apply_credentials(const char *&tok, const char *&tok_file, const char *&ca) const {
	tok = token ? token->c_str() : nullptr;
	tok_file = token_file ? token_file->c_str() : nullptr;
	ca = tls_ca_file ? tls_ca_file->c_str() : nullptr;
}

std::string Session::repository_uri() const {
	if (options_.repository)
		return absolute_location(*options_.repository);
	if (!env_.repository)
		throw Failure("no repository: neither PLAKAR_REPOSITORY nor HOME is set (name one with `on REPOSITORY`)");
	return absolute_location(*env_.repository);
}

plakar_repository *Session::repository() {
	if (repository_)
		return repository_.get();
	std::string uri = repository_uri();
	std::optional<Secret> passphrase = supplied_passphrase(options_.passphrase_file);
	const bool supplied = passphrase.has_value();

	for (;;) {
		plakar_open_options opts = PLAKAR_OPEN_OPTIONS_INIT;
		opts.cpu = options_.cpu;
		opts.no_cache = options_.no_cache ? 1 : 0;
		env_.apply(opts);
		if (passphrase) {
			opts.passphrase = passphrase->data();
			opts.passphrase_len = passphrase->size();
		}
		plakar_repository *raw = nullptr;
		int rc = plakar_repository_open(&raw, uri.c_str(), &opts);
		if (rc == PLAKAR_OK) {
			repository_.reset(raw);
			return raw;
		}
		// A server refused for want of a token: say where the command line looks for one.
		if (rc == PLAKAR_EAUTH && std::strncmp(plakar_error_last(), "no token for the server", 23) == 0)
			throw Failure(std::string(plakar_error_last()) +
			                  " (set PLAKAR_TOKEN or PLAKAR_TOKEN_FILE, or write it to ~/.config/plakar/token)",
			              exit_code_for(PLAKAR_EAUTH));
		// Prompt only when nothing was supplied and nothing was tried yet: a plaintext
		// repository opens without a passphrase and never asks for one.
		if (rc == PLAKAR_EAUTH && !supplied && !passphrase) {
			passphrase = prompt_passphrase(false);
			continue;
		}
		throw_library_error(rc);
	}
}

plakar_snapshot *Session::snapshot(const std::string &id_or_prefix) {
	if (auto it = snapshots_.find(id_or_prefix); it != snapshots_.end())
		return it->second.get();
	plakar_repository *repo = repository();
	plakar_snapshot *raw = nullptr;
	int rc = plakar_snapshot_open(&raw, repo, id_or_prefix.c_str());
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	snapshots_.emplace(id_or_prefix, Snapshot(raw));
	return raw;
}

void Session::finish_output() {
	if (std::fflush(stdout) != 0 || std::ferror(stdout))
		throw Failure(std::string("cannot write the output: ") + std::strerror(errno));
}

} // namespace plakar::cli

