// SQLite store: a whole repository in one database file, `sqlite:///abs/path/plakar.db`.
//
// Tables: plakar_meta(key, value) holds the CONFIG and the schema version; objects(kind,
// name, data) holds everything else, one row per object. WAL mode, a busy timeout and
// one-statement transactions let several processes write the same database at once; each put
// is one atomic, durable (synchronous=FULL) transaction. Ranged reads use incremental blob
// I/O, so reading a blob from a 16 MiB pack reads only that blob.
#pragma once

#include <memory>
#include <cstdint>
#include <mutex>
#include <string>

#include "storage/store.h"

struct sqlite3;
struct sqlite3_blob;

namespace plakar {

class SqliteStore : public Store {
public:
	explicit SqliteStore(std::string path);
	~SqliteStore() override;

	void create(ByteView config, const std::string &key_name, ByteView key) override;
	Bytes open() override;
	void put(Kind kind, const std::string &name, ByteView data) override;
	Bytes get(Kind kind, const std::string &name) override;
	Bytes get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length) override;
	uint64_t size(Kind kind, const std::string &name) override;
	std::vector<std::string> list(Kind kind) override;
	void remove(Kind kind, const std::string &name) override;
	std::string location() const override { return "sqlite://" + path_; }
	// The database and the files SQLite keeps beside it.
	std::vector<std::string> local_paths() const override
	{
		return {path_, path_ + "-wal", path_ + "-shm", path_ + "-journal"};
	}

private:
	void connect(bool create);
	sqlite3 *db();
	void close_blob_locked();

	std::string path_;
	std::mutex mu_;
	sqlite3 *db_ = nullptr;
	// The last pack read through incremental blob I/O, kept open: SQLite then remembers where
	// the blob's overflow pages are, so reading the next blob of the same pack does not walk
	// the chain of pages from the start again. Closed before any write on this connection.
	sqlite3_blob *blob_ = nullptr;
	int64_t blob_rowid_ = -1;
	int64_t blob_size_ = 0;
	std::string blob_name_;
	int blob_kind_ = -1;
};

} // namespace plakar
