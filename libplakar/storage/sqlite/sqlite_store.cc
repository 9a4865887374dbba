#include "storage/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/error.h"

namespace plakar {

namespace {

constexpr int kSchemaVersion = 1;
constexpr int kBusyTimeoutMs = 60000;

class Stmt {
public:
	Stmt(sqlite3 *db, const char *sql, const std::string &where) : db_(db), where_(where)
	{
		if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
			check(sqlite3_errcode(db));
	}
	~Stmt() { sqlite3_finalize(s_); }
	Stmt &bind(int i, int64_t v)
	{
		check(sqlite3_bind_int64(s_, i, v));
		return *this;
	}
	Stmt &bind(int i, const std::string &v)
	{
		check(sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT));
		return *this;
	}
	Stmt &bind(int i, ByteView v)
	{
		static const uint8_t empty = 0;
		check(sqlite3_bind_blob64(s_, i, v.empty() ? &empty : v.data(), v.size(), SQLITE_STATIC));
		return *this;
	}
	// Returns true while rows come.
	bool step()
	{
		int rc = sqlite3_step(s_);
		if (rc == SQLITE_ROW)
			return true;
		if (rc == SQLITE_DONE)
			return false;
		check(rc);
		return false;
	}
	int64_t int_col(int i) { return sqlite3_column_int64(s_, i); }
	std::string text_col(int i)
	{
		auto *p = reinterpret_cast<const char *>(sqlite3_column_text(s_, i));
		return p ? std::string(p, size_t(sqlite3_column_bytes(s_, i))) : std::string();
	}
	Bytes blob_col(int i)
	{
		auto *p = static_cast<const uint8_t *>(sqlite3_column_blob(s_, i));
		int n = sqlite3_column_bytes(s_, i);
		return p ? Bytes(p, p + n) : Bytes();
	}
	void check(int rc)
	{
		if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE)
			return;
		std::string msg = where_ + ": " + sqlite3_errmsg(db_);
		if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
			fail(Code::Corrupt, where_ + ": not a valid SQLite database");
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			fail(Code::Locked, msg);
		fail(Code::Error, msg);
	}

private:
	sqlite3 *db_;
	sqlite3_stmt *s_ = nullptr;
	std::string where_;
};

void exec(sqlite3 *db, const char *sql, const std::string &where)
{
	char *err = nullptr;
	int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
	if (rc == SQLITE_OK)
		return;
	std::string msg = err ? err : sqlite3_errstr(rc);
	sqlite3_free(err);
	if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
		fail(Code::Corrupt, where + ": not a valid SQLite database");
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		fail(Code::Locked, where + ": " + msg);
	fail(Code::Error, where + ": " + msg);
}

} // namespace

SqliteStore::SqliteStore(std::string path) : path_(std::move(path)) {}

SqliteStore::~SqliteStore()
{
	close_blob_locked();
	if (db_)
		sqlite3_close_v2(db_);
}

void SqliteStore::close_blob_locked()
{
	if (blob_)
		sqlite3_blob_close(blob_);
	blob_ = nullptr;
	blob_rowid_ = -1;
	blob_kind_ = -1;
	blob_name_.clear();
}

void SqliteStore::connect(bool create)
{
	if (db_)
		return;
	struct stat st;
	bool exists = ::stat(path_.c_str(), &st) == 0;
	if (!exists && !create)
		fail(Code::NotFound, path_ + ": repository does not exist");
	if (exists && !S_ISREG(st.st_mode))
		fail(create ? Code::Exists : Code::NotFound, path_ + ": not a plakar repository (not a regular file)");
	if (!exists && create) {
		// Missing parent directories are created, as for the filesystem store.
		std::error_code ec;
		std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
		if (ec)
			fail(Code::Error, path_ + ": " + ec.message());
	}
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	// A read-only file still opens, for reading; writes then fail with a clear error.
	if (exists && ::access(path_.c_str(), W_OK) != 0)
		flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX;
	// A new database file is made 0600 first (SQLite gives its -wal and -shm files the same
	// mode): a plaintext repository must not be readable by every local user.
	if (create && !exists) {
		int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			fail_errno(path_, errno);
		::close(fd);
	}
	sqlite3 *db = nullptr;
	int rc = sqlite3_open_v2(path_.c_str(), &db, flags, nullptr);
	if (rc != SQLITE_OK) {
		std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
		sqlite3_close_v2(db);
		fail(Code::Error, path_ + ": " + msg);
	}
	db_ = db;
	sqlite3_busy_timeout(db_, kBusyTimeoutMs);
	sqlite3_extended_result_codes(db_, 0);
	try {
		// Touches the file header: a file that is not a database fails here.
		exec(db_, "PRAGMA schema_version;", path_);
		if (!(flags & SQLITE_OPEN_READONLY)) {
			// Large pages for a new database: packs are megabytes, and fewer overflow pages
			// make ranged reads cheaper. Only possible before WAL mode is on.
			if (!exists)
				exec(db_, "PRAGMA page_size=65536;", path_);
			exec(db_, "PRAGMA journal_mode=WAL;", path_);
			exec(db_, "PRAGMA synchronous=FULL;", path_);
		}
	} catch (...) {
		sqlite3_close_v2(db_);
		db_ = nullptr;
		throw;
	}
}

sqlite3 *SqliteStore::db()
{
	connect(false);
	return db_;
}

void SqliteStore::create(ByteView config, const std::string &key_name, ByteView key)
{
	std::lock_guard lk(mu_);
	connect(true);
	{
		Stmt s(db_, "SELECT count(*) FROM sqlite_master", path_);
		s.step();
		if (s.int_col(0) != 0) {
			Stmt t(db_, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='plakar_meta'", path_);
			t.step();
			fail(Code::Exists, path_ + (t.int_col(0) ? ": a repository already exists there"
			                                          : ": database belongs to another program"));
		}
	}
	// One transaction: the repository appears whole (CONFIG included) or not at all.
	exec(db_, "BEGIN IMMEDIATE", path_);
	try {
		exec(db_,
		     "CREATE TABLE plakar_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
		     "CREATE TABLE objects (kind INTEGER NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL,"
		     "                      UNIQUE (kind, name));",
		     path_);
		Stmt(db_, "INSERT INTO plakar_meta VALUES ('schema', ?)", path_).bind(1, int64_t(kSchemaVersion)).step();
		if (!key.empty())
			Stmt(db_, "INSERT INTO objects VALUES (?, ?, ?)", path_)
			    .bind(1, int64_t(Kind::Key))
			    .bind(2, key_name)
			    .bind(3, key)
			    .step();
		Stmt(db_, "INSERT INTO plakar_meta VALUES ('config', ?)", path_).bind(1, config).step();
		exec(db_, "COMMIT", path_);
	} catch (...) {
		sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
		throw;
	}
}

Bytes SqliteStore::open()
{
	std::lock_guard lk(mu_);
	close_blob_locked();
	sqlite3 *d = db();
	{
		Stmt t(d, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ('plakar_meta', 'objects')", path_);
		t.step();
		if (t.int_col(0) != 2)
			fail(Code::NotFound, path_ + ": not a plakar repository (an SQLite database of another program)");
	}
	Stmt v(d, "SELECT value FROM plakar_meta WHERE key='schema'", path_);
	if (!v.step())
		fail(Code::NotFound, path_ + ": not a plakar repository");
	if (v.int_col(0) != kSchemaVersion)
		fail(Code::Version, path_ + ": database schema version " + std::to_string(v.int_col(0)) + " is not supported");
	Stmt s(d, "SELECT length(value), value FROM plakar_meta WHERE key='config'", path_);
	if (!s.step())
		fail(Code::NotFound, path_ + ": not a plakar repository (no CONFIG)");
	if (uint64_t(s.int_col(0)) > kMaxConfigSize)
		fail(Code::Corrupt, path_ + ": CONFIG is larger than a CONFIG can be");
	return s.blob_col(1);
}

void SqliteStore::put(Kind kind, const std::string &name, ByteView data)
{
	if (!valid_object_name(name))
		fail(Code::Invalid, std::string("invalid ") + kind_name(kind) + " name: " + name);
	std::lock_guard lk(mu_);
	close_blob_locked();
	Stmt(db(), "INSERT OR REPLACE INTO objects (kind, name, data) VALUES (?, ?, ?)", path_)
	    .bind(1, int64_t(kind))
	    .bind(2, name)
	    .bind(3, data)
	    .step();
}

Bytes SqliteStore::get(Kind kind, const std::string &name)
{
	std::lock_guard lk(mu_);
	// The size first (from the record, without reading the object): bounded by its kind.
	Stmt s(db(), "SELECT length(data), data FROM objects WHERE kind = ? AND name = ?", path_);
	s.bind(1, int64_t(kind)).bind(2, name);
	if (!s.step())
		fail(Code::NotFound, std::string(kind_name(kind)) + " " + name + " not found");
	if (uint64_t(s.int_col(0)) > max_object_size(kind))
		fail(Code::Corrupt, std::string(kind_name(kind)) + " " + name + ": " + std::to_string(s.int_col(0)) +
		                        " bytes, more than such an object can hold");
	return s.blob_col(1);
}

Bytes SqliteStore::get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length)
{
	std::lock_guard lk(mu_);
	sqlite3 *d = db();
	if (!(blob_ && blob_kind_ == int(kind) && blob_name_ == name)) {
		close_blob_locked();
		int64_t rowid;
		{
			Stmt s(d, "SELECT rowid FROM objects WHERE kind = ? AND name = ?", path_);
			s.bind(1, int64_t(kind)).bind(2, name);
			if (!s.step())
				fail(Code::NotFound, std::string(kind_name(kind)) + " " + name + " not found");
			rowid = s.int_col(0);
		}
		int rc = sqlite3_blob_open(d, "main", "objects", "data", rowid, 0, &blob_);
		if (rc != SQLITE_OK) {
			blob_ = nullptr;
			fail(rc == SQLITE_BUSY ? Code::Locked : Code::Error, path_ + ": " + sqlite3_errmsg(d));
		}
		blob_rowid_ = rowid;
		blob_size_ = sqlite3_blob_bytes(blob_);
		blob_kind_ = int(kind);
		blob_name_ = name;
	}
	if (offset > uint64_t(blob_size_) || length > uint64_t(blob_size_) - offset)
		fail(Code::Corrupt, std::string(kind_name(kind)) + " " + name + ": truncated (wanted " +
		                        std::to_string(length) + " bytes at offset " + std::to_string(offset) + ")");
	Bytes out(length);
	if (length == 0)
		return out;
	int rc = sqlite3_blob_read(blob_, out.data(), int(length), int(offset));
	if (rc != SQLITE_OK) {
		// The row changed under the handle (SQLITE_ABORT), or a real error: start afresh once.
		close_blob_locked();
		fail(rc == SQLITE_BUSY ? Code::Locked : Code::Error, path_ + ": " + sqlite3_errmsg(d));
	}
	return out;
}

uint64_t SqliteStore::size(Kind kind, const std::string &name)
{
	std::lock_guard lk(mu_);
	Stmt s(db(), "SELECT length(data) FROM objects WHERE kind = ? AND name = ?", path_);
	s.bind(1, int64_t(kind)).bind(2, name);
	if (!s.step())
		fail(Code::NotFound, std::string(kind_name(kind)) + " " + name + " not found");
	return uint64_t(s.int_col(0));
}

std::vector<std::string> SqliteStore::list(Kind kind)
{
	std::lock_guard lk(mu_);
	close_blob_locked(); // an open blob holds a read transaction: listings must see new objects
	Stmt s(db(), "SELECT name FROM objects WHERE kind = ?", path_);
	s.bind(1, int64_t(kind));
	std::vector<std::string> out;
	while (s.step())
		out.push_back(s.text_col(0));
	return out;
}

void SqliteStore::remove(Kind kind, const std::string &name)
{
	std::lock_guard lk(mu_);
	close_blob_locked();
	Stmt(db(), "DELETE FROM objects WHERE kind = ? AND name = ?", path_).bind(1, int64_t(kind)).bind(2, name).step();
}

} // namespace plakar
