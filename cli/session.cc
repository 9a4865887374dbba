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

} // namespace

std::string Session::repository_uri() const {
	if (options_.repository)
		return absolute_location(*options_.repository);
	char *raw = nullptr;
	int rc = plakar_default_repository(&raw);
	if (rc != PLAKAR_OK)
		throw_library_error(rc, "cannot find the default repository");
	LibraryString owned(raw);
	return absolute_location(owned.get());
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
		if (const char *a = std::getenv("PLAKAR_AGENT"); a && *a)
			opts.agent = a;
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

