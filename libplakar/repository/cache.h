// The local cache: an SQLite database per repository under $XDG_CACHE_HOME/plakar/<repository
// id>/ (else ~/.cache/plakar/...), holding what the next operation would otherwise fetch and
// decrypt again: the decoded index segments, snapshot headers and metadata blobs (directory
// nodes and chunk lists, which is what a push compares against).
//
// It is only a cache. Every value is sealed (AES-256-GCM under a key derived from the master
// key, bound to its table and key), so a damaged or foreign entry is detected and dropped; a
// cache of another repository or another format version is wiped and rebuilt; when the cache
// cannot be used at all, the repository works without it. Several processes may use one
// cache at once (WAL, busy timeout). Writes are batched in short transactions.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "crypto/crypto.h"
#include "repository/keys.h"

struct sqlite3;
struct sqlite3_stmt;

namespace plakar {

enum class CacheTable { Segment = 0, Snapshot = 1, Blob = 2 };

class Cache {
public:
	// The cache directory for a repository: <root>/<id>, root being ~/.cache/plakar of the
	// process's user when empty (the home directory from the passwd database: the engine
	// reads no environment; callers that honour $XDG_CACHE_HOME pass root). "" when the user
	// has no home directory.
	static std::string default_dir(const Config &cfg, const std::string &root = "");
	// Opens (or creates, or wipes and recreates) the cache in dir. Returns nullptr when no
	// usable cache can be had there; the caller then works without one.
	static std::unique_ptr<Cache> open(const std::string &dir, const Config &cfg, const KeyRing &keys);
	// What a client remembers of a repository's encryption, in its cache directory (dir as
	// default_dir gives it; "" remembers nothing): once it opened the repository encrypted, a
	// plaintext CONFIG with the same id is refused (a downgrade by whoever can write the store).
	// Recorded when the cache is used, checked even when it is not (-no-cache).
	static void remember_encrypted(const std::string &dir);
	static bool was_encrypted(const std::string &dir);
	~Cache();

	std::optional<Bytes> get(CacheTable t, const std::string &key);
	void put(CacheTable t, const std::string &key, ByteView value);
	// put, unless the key has a value already: for content-addressed entries (a blob under its
	// id), where the value stored is the same one, and rewriting it is only a cost.
	void put_new(CacheTable t, const std::string &key, ByteView value);
	void remove(CacheTable t, const std::string &key);
	std::vector<std::string> keys(CacheTable t);
	// Commits pending writes.
	void flush();
	const std::string &path() const { return path_; }
	// The directory holding the cache (files besides cache.db live there too).
	std::string dir() const { return path_.substr(0, path_.rfind('/')); }
	// A key for other cached files, derived from the cache key for one purpose.
	crypto::SecureBytes subkey(std::string_view purpose) const;

private:
	Cache(std::string path, sqlite3 *db, crypto::SecureBytes key) : path_(std::move(path)), db_(db), key_(std::move(key)) {}
	void begin_locked();
	void commit_locked();
	Bytes aad(CacheTable t, const std::string &key) const;
	// The statements every get, put and remove runs, prepared once (a push or check makes one
	// call per directory). The returned handle is reset when it goes out of scope.
	enum Query { kGet, kPut, kPutNew, kRemove, kQueries };
	void store(Query query, CacheTable t, const std::string &key, ByteView value);
	struct Prepared {
		sqlite3_stmt *s;
		explicit Prepared(sqlite3_stmt *st) : s(st) {}
		Prepared(const Prepared &) = delete;
		~Prepared();
		explicit operator bool() const { return s != nullptr; }
	};
	Prepared prepared_locked(Query q);
	sqlite3_stmt *stmts_[kQueries] = {};

	std::string path_;
	std::mutex mu_;
	sqlite3 *db_;
	crypto::SecureBytes key_;
	bool in_txn_ = false;
	int pending_ = 0;
	std::chrono::steady_clock::time_point txn_start_;
};

} // namespace plakar
