#include "repository/cache.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "base/error.h"
#include "base/system.h"
#include "crypto/crypto.h"

namespace plakar {

namespace {

constexpr int kCacheVersion = 1;
constexpr int kBatch = 512;
constexpr auto kBatchTime = std::chrono::milliseconds(200);

// The outcome of an SQLite call, as far as the cache is concerned.
enum class Status { Ok, Foreign, Broken, Busy };

Status status_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE: return Status::Ok;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
	case SQLITE_FORMAT:
	case SQLITE_SCHEMA: return Status::Broken;
	default: return Status::Busy; // busy, locked, I/O, full disk: leave the file alone
	}
}

bool exec(sqlite3 *db, const char *sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }

Status exec_status(sqlite3 *db, const char *sql) { return status_of(sqlite3_exec(db, sql, nullptr, nullptr, nullptr)); }

struct Stmt {
	sqlite3_stmt *s = nullptr;
	Stmt(sqlite3 *db, const char *sql)
	{
		if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK)
			s = nullptr;
	}
	~Stmt() { sqlite3_finalize(s); }
	explicit operator bool() const { return s != nullptr; }
};

// Creates the schema, or checks that it belongs to this repository and version.
Status prepare(sqlite3 *db, const std::string &repo_id)
{
	sqlite3_busy_timeout(db, 30000);
	Status st = exec_status(db, "PRAGMA journal_mode=WAL");
	if (st == Status::Ok)
		st = exec_status(db, "PRAGMA synchronous=OFF");
	if (st == Status::Ok)
		st = exec_status(db, "BEGIN IMMEDIATE");
	if (st != Status::Ok)
		return st;
	st = exec_status(db, "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	                     "CREATE TABLE IF NOT EXISTS entries (tab INTEGER NOT NULL, key TEXT NOT NULL,"
	                     " value BLOB NOT NULL, PRIMARY KEY (tab, key)) WITHOUT ROWID;");
	std::string repo, version;
	if (st == Status::Ok) {
		Stmt q(db, "SELECT key, value FROM meta");
		if (!q) {
			st = status_of(sqlite3_errcode(db));
			if (st == Status::Ok)
				st = Status::Broken;
		} else {
			int rc;
			while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) {
				auto *k = reinterpret_cast<const char *>(sqlite3_column_text(q.s, 0));
				auto *v = reinterpret_cast<const char *>(sqlite3_column_text(q.s, 1));
				if (k && v)
					(std::string(k) == "repository" ? repo : version) = v;
			}
			st = status_of(rc);
		}
	}
	if (st == Status::Ok) {
		if (repo.empty() && version.empty()) {
			std::string sql = "INSERT INTO meta VALUES ('repository', '" + repo_id + "'), ('version', '" +
			                  std::to_string(kCacheVersion) + "')";
			st = exec_status(db, sql.c_str());
		} else if (repo != repo_id || version != std::to_string(kCacheVersion)) {
			st = Status::Foreign;
		}
	}
	if (st == Status::Ok)
		st = exec_status(db, "COMMIT");
	if (st != Status::Ok)
		exec(db, "ROLLBACK");
	return st;
}

sqlite3 *connect(const std::string &path)
{
	// 0600 before SQLite opens it (its -wal and -shm files take the same mode): the cache holds
	// names and sizes in the clear.
	int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		::fchmod(fd, 0600);
		::close(fd);
	}
	sqlite3 *db = nullptr;
	if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
	                    nullptr) != SQLITE_OK) {
		sqlite3_close_v2(db);
		return nullptr;
	}
	return db;
}

} // namespace

std::string Cache::default_dir(const Config &cfg, const std::string &root)
{
	if (!root.empty())
		return root + "/" + cfg.id_string();
	std::string home = home_directory();
	if (home.empty() || home[0] != '/')
		return "";
	return home + "/.cache/plakar/" + cfg.id_string();
}

void Cache::remember_encrypted(const std::string &dir)
{
	if (dir.empty() || was_encrypted(dir))
		return;
	std::error_code ec;
	std::filesystem::create_directories(dir, ec);
	if (ec)
		return;
	::chmod(dir.c_str(), 0700);
	int fd = ::open((dir + "/encrypted").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		::close(fd);
}

bool Cache::was_encrypted(const std::string &dir)
{
	struct stat st;
	return !dir.empty() && ::lstat((dir + "/encrypted").c_str(), &st) == 0;
}

std::unique_ptr<Cache> Cache::open(const std::string &dir, const Config &cfg, const KeyRing &keys)
{
	if (dir.empty())
		return nullptr;
	std::error_code ec;
	std::filesystem::create_directories(dir, ec);
	if (ec)
		return nullptr;
	::chmod(dir.c_str(), 0700);
	std::string path = dir + "/cache.db";
	// A damaged cache, or one of another repository or version, is wiped and made anew; a busy
	// one is retried a little, then left alone (this run goes without a cache).
	for (int attempt = 0; attempt < 5; attempt++) {
		sqlite3 *db = connect(path);
		Status st = db ? prepare(db, cfg.id_string()) : Status::Busy;
		if (st == Status::Ok) {
			auto key = crypto::hkdf(keys.master.view(), ByteView(cfg.repo_id.data(), cfg.repo_id.size()),
			                        "plakar/v1/cache", 32);
			return std::unique_ptr<Cache>(new Cache(path, db, std::move(key)));
		}
		sqlite3_close_v2(db);
		if (st == Status::Busy) {
			std::this_thread::sleep_for(std::chrono::milliseconds(50 * (attempt + 1)));
			continue;
		}
		for (const char *suffix : {"", "-wal", "-shm"})
			::unlink((path + suffix).c_str());
	}
	return nullptr;
}

Cache::~Cache()
{
	try {
		flush();
	} catch (...) {
	}
	for (auto *s : stmts_)
		sqlite3_finalize(s);
	sqlite3_close_v2(db_);
}

Cache::Prepared::~Prepared()
{
	if (s) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
}

Cache::Prepared Cache::prepared_locked(Query q)
{
	static const char *const sql[kQueries] = {
	    "SELECT value FROM entries WHERE tab = ? AND key = ?",
	    "INSERT OR REPLACE INTO entries (tab, key, value) VALUES (?, ?, ?)",
	    "INSERT OR IGNORE INTO entries (tab, key, value) VALUES (?, ?, ?)",
	    "DELETE FROM entries WHERE tab = ? AND key = ?",
	};
	if (!stmts_[q] && sqlite3_prepare_v2(db_, sql[q], -1, &stmts_[q], nullptr) != SQLITE_OK) {
		sqlite3_finalize(stmts_[q]);
		stmts_[q] = nullptr;
	}
	return Prepared(stmts_[q]);
}

crypto::SecureBytes Cache::subkey(std::string_view purpose) const
{
	std::string info = "plakar/v1/cache/" + std::string(purpose);
	return crypto::hkdf(key_.view(), as_bytes(info), info, 32);
}

Bytes Cache::aad(CacheTable t, const std::string &key) const
{
	Writer w;
	w.u8(uint8_t(t));
	w.str(key);
	return w.take();
}

void Cache::begin_locked()
{
	if (in_txn_)
		return;
	if (exec(db_, "BEGIN IMMEDIATE")) {
		in_txn_ = true;
		pending_ = 0;
		txn_start_ = std::chrono::steady_clock::now();
	}
}

void Cache::commit_locked()
{
	if (!in_txn_)
		return;
	if (!exec(db_, "COMMIT"))
		exec(db_, "ROLLBACK");
	in_txn_ = false;
}

void Cache::flush()
{
	std::lock_guard lk(mu_);
	commit_locked();
}

std::optional<Bytes> Cache::get(CacheTable t, const std::string &key)
{
	std::lock_guard lk(mu_);
	auto q = prepared_locked(kGet);
	if (!q)
		return std::nullopt;
	sqlite3_bind_int(q.s, 1, int(t));
	sqlite3_bind_text(q.s, 2, key.data(), int(key.size()), SQLITE_STATIC);
	if (sqlite3_step(q.s) != SQLITE_ROW)
		return std::nullopt;
	auto *p = static_cast<const uint8_t *>(sqlite3_column_blob(q.s, 0));
	size_t n = size_t(sqlite3_column_bytes(q.s, 0));
	if (p && n >= crypto::kGcmNonce + crypto::kGcmTag) {
		try {
			return crypto::gcm_open(key_.view(), ByteView(p, crypto::kGcmNonce), aad(t, key),
			                        ByteView(p + crypto::kGcmNonce, n - crypto::kGcmNonce));
		} catch (const Error &) {
		}
	}
	// Damaged: forget it, the caller fetches the real thing.
	sqlite3_reset(q.s);
	auto d = prepared_locked(kRemove);
	if (d) {
		sqlite3_bind_int(d.s, 1, int(t));
		sqlite3_bind_text(d.s, 2, key.data(), int(key.size()), SQLITE_STATIC);
		sqlite3_step(d.s);
	}
	return std::nullopt;
}

void Cache::put(CacheTable t, const std::string &key, ByteView value) { store(kPut, t, key, value); }

void Cache::put_new(CacheTable t, const std::string &key, ByteView value) { store(kPutNew, t, key, value); }

void Cache::store(Query query, CacheTable t, const std::string &key, ByteView value)
{
	Bytes sealed = crypto::random_bytes(crypto::kGcmNonce);
	Bytes nonce = sealed;
	crypto::gcm_seal_append(sealed, key_.view(), nonce, aad(t, key), value);
	std::lock_guard lk(mu_);
	begin_locked();
	{
		auto q = prepared_locked(query);
		if (!q)
			return;
		sqlite3_bind_int(q.s, 1, int(t));
		sqlite3_bind_text(q.s, 2, key.data(), int(key.size()), SQLITE_STATIC);
		sqlite3_bind_blob(q.s, 3, sealed.data(), int(sealed.size()), SQLITE_STATIC);
		if (sqlite3_step(q.s) != SQLITE_DONE || sqlite3_changes(db_) == 0)
			return; // nothing written (put_new of a key present, or a failure: a cache may miss)
	} // reset before a commit
	if (++pending_ >= kBatch || std::chrono::steady_clock::now() - txn_start_ > kBatchTime)
		commit_locked();
}

void Cache::remove(CacheTable t, const std::string &key)
{
	std::lock_guard lk(mu_);
	auto q = prepared_locked(kRemove);
	if (!q)
		return;
	sqlite3_bind_int(q.s, 1, int(t));
	sqlite3_bind_text(q.s, 2, key.data(), int(key.size()), SQLITE_STATIC);
	sqlite3_step(q.s);
}

std::vector<std::string> Cache::keys(CacheTable t)
{
	std::lock_guard lk(mu_);
	std::vector<std::string> out;
	Stmt q(db_, "SELECT key FROM entries WHERE tab = ?");
	if (!q)
		return out;
	sqlite3_bind_int(q.s, 1, int(t));
	while (sqlite3_step(q.s) == SQLITE_ROW)
		out.emplace_back(reinterpret_cast<const char *>(sqlite3_column_text(q.s, 0)));
	return out;
}

} // namespace plakar
