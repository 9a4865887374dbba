// SQLite store: a whole repository in one database file, `sqlite:///abs/path/plakar.db`.
//
// Tables: plakar_meta(key, value) holds the CONFIG and the schema version; objects(kind,
// name, data) holds everything else, one row per object. WAL mode, a busy timeout and
// one-statement transactions let several processes write the same database at once; each put
// is one atomic, durable (synchronous=FULL) transaction. Ranged reads use incremental blob
// I/O, so reading a blob from a 16 MiB pack reads only that blob.
#pragma once

#include <memory>
#include <mutex>

#include "storage/store.h"

struct sqlite3;

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
	std::vector<std::string> list(Kind kind) override;
	void remove(Kind kind, const std::string &name) override;
	std::string location() const override { return "sqlite://" + path_; }

private:
	void connect(bool create);
	sqlite3 *db();

	std::string path_;
	std::mutex mu_;
	sqlite3 *db_ = nullptr;
};

} // namespace plakar
