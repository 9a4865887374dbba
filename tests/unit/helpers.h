// Test helpers: temporary directories and small file utilities.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include <thread>

#include "net/server.h"
#include "repository/repository.h"

namespace plakar::test {

// A fresh directory under $TMPDIR, removed with its content when the object goes.
class TempDir {
public:
	TempDir();
	~TempDir();
	const std::string &path() const { return path_; }
	std::string operator/(const std::string &name) const { return path_ + "/" + name; }

private:
	std::string path_;
};

void write_file(const std::string &path, ByteView data);
Bytes read_file(const std::string &path);
Bytes random_data(size_t n, uint64_t seed);
Bytes hex(const char *s);
// Files of a kind in a filesystem repository (full paths).
std::vector<std::string> files_under(const std::string &dir);
// A new encrypted repository with a cheap scrypt cost (tests only) and small chunks
// (4 / 16 / 64 KiB), so that small files span several chunks. Passphrase "pw".
std::unique_ptr<Repository> small_repo(const std::string &uri);
// The base of the test files' fixtures: a repository at d / "repo" in a fresh directory, with
// passphrase "pw" (or plaintext) and a cheap key derivation.
struct RepoFixture {
	struct Options {
		bool encrypted = true;
		uint32_t pack_size = 0; // 0: the default
	};
	TempDir d;
	std::string uri;
	bool encrypted;

	RepoFixture() : RepoFixture(Options{}) {}
	explicit RepoFixture(Options o);
	// Opens the repository. Without the local cache unless cache (then in d / "cache"): what
	// damage, faults and tampering change is the store.
	std::unique_ptr<Repository> open(bool cache = false) const;
	// The same over a store of the caller's (a wrapper of open_store(uri)).
	std::unique_ptr<Repository> open(std::unique_ptr<Store> store, bool cache = false) const;
	// The content of a file of a snapshot (id or prefix), read back through a fresh handle.
	Bytes read_back(const std::string &snap, const std::string &path) const;
};

// A repository's identity and keys, without a repository: for the parts of one tested alone.
struct Identity {
	Config cfg;
	KeyRing keys;
	explicit Identity(bool encrypted = true);
};

// The code of the plakar::Error that f throws, or Code(0) when it throws none.
Code code_of(const std::function<void()> &f);

// A real `plakar server` on 127.0.0.1 (a free port), run by a thread of this process, serving
// the store at store_uri with three tokens, "rw", "ro" and "append" (their rights). Sets
// PLAKAR_TOKEN to the rw token, so plakar:// URIs work in this process and its children.
// uri() is plakar+tls://...?pin=... when tune gave the server a TLS identity.
class ServerThread {
public:
	explicit ServerThread(const std::string &store_uri, std::function<void(net::ServerOptions &)> tune = {});
	~ServerThread();
	std::string uri() const;
	// "NAME:SECRET" of the token with these rights.
	std::string token(net::Rights r) const;
	net::Server &server() const { return *server_; }

private:
	std::unique_ptr<net::Server> server_;
	std::vector<std::string> client_tokens_;
	std::thread thread_;
};
// A server that lives until the test program exits (for tables of store URIs); with tls, a
// TLS server with a fresh certificate, its URI carrying the pin.
std::string lasting_server(const std::string &store_uri, bool tls = false);

} // namespace plakar::test
