// The local cache on its own (repository/cache.h): no repository, no store, only the Cache
// API and the database it writes, so a failure names the cache and nothing else.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <filesystem>

#include "crypto/crypto.h"
#include "helpers.h"
#include "repository/cache.h"

using namespace plakar;

namespace {

using test::Identity;

std::string text(const std::optional<Bytes> &b) { return b ? std::string(b->begin(), b->end()) : "<none>"; }

// Runs one statement on the cache's database, as another program (or an attacker) could.
void sql(const std::string &db, const std::string &stmt)
{
	sqlite3 *h = nullptr;
	REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
	char *err = nullptr;
	int rc = sqlite3_exec(h, stmt.c_str(), nullptr, nullptr, &err);
	std::string msg = err ? err : "";
	sqlite3_free(err);
	sqlite3_close(h);
	INFO(msg);
	REQUIRE(rc == SQLITE_OK);
}

} // namespace

TEST_CASE("cache component: values in their own table, after a flush from another handle", "[cache]")
{
	test::TempDir d;
	Identity id;
	std::string dir = d / "c";
	auto c = Cache::open(dir, id.cfg, id.keys);
	REQUIRE(c);
	c->put(CacheTable::Segment, "k", as_bytes("segment value"));
	c->put(CacheTable::Blob, "k", as_bytes("blob value"));
	CHECK(text(c->get(CacheTable::Segment, "k")) == "segment value");
	CHECK(text(c->get(CacheTable::Blob, "k")) == "blob value");
	CHECK(!c->get(CacheTable::Snapshot, "k"));
	CHECK(c->keys(CacheTable::Segment) == std::vector<std::string>{"k"});
	c->put(CacheTable::Segment, "k", as_bytes("replaced"));
	c->remove(CacheTable::Blob, "k");
	CHECK(!c->get(CacheTable::Blob, "k"));
	c->flush();

	auto again = Cache::open(dir, id.cfg, id.keys);
	REQUIRE(again);
	CHECK(text(again->get(CacheTable::Segment, "k")) == "replaced");
	CHECK(again->keys(CacheTable::Blob).empty());
	CHECK(again->path() == dir + "/cache.db");
	// Subkeys differ by purpose and are stable across handles.
	CHECK(crypto::equal(c->subkey("a").view(), again->subkey("a").view()));
	CHECK(!crypto::equal(c->subkey("a").view(), c->subkey("b").view()));
}

TEST_CASE("cache component: a value moved to another key or table, or altered, is never returned", "[cache][trust]")
{
	test::TempDir d;
	Identity id;
	std::string dir = d / "c";
	{
		auto c = Cache::open(dir, id.cfg, id.keys);
		REQUIRE(c);
		c->put(CacheTable::Segment, "a", as_bytes("value of a"));
		c->put(CacheTable::Segment, "b", as_bytes("value of b"));
		c->put(CacheTable::Blob, "x", as_bytes("value of x"));
		c->flush();
	}
	std::string db = dir + "/cache.db";
	// b's sealed value under a's key; x's under another table; a bit flipped in x.
	sql(db, "UPDATE entries SET value = (SELECT value FROM entries WHERE tab = 0 AND key = 'b') "
	        "WHERE tab = 0 AND key = 'a'");
	sql(db, "INSERT OR REPLACE INTO entries (tab, key, value) SELECT 1, key, value FROM entries WHERE key = 'x'");
	sql(db, "UPDATE entries SET value = CAST(value AS BLOB) || x'00' WHERE tab = 2 AND key = 'x'");
	auto c = Cache::open(dir, id.cfg, id.keys);
	REQUIRE(c);
	CHECK(!c->get(CacheTable::Segment, "a"));
	CHECK(text(c->get(CacheTable::Segment, "b")) == "value of b");
	CHECK(!c->get(CacheTable::Snapshot, "x"));
	CHECK(!c->get(CacheTable::Blob, "x"));
}

TEST_CASE("cache component: another repository's cache, or another key's, is wiped, not read", "[cache][trust]")
{
	test::TempDir d;
	Identity one, two;
	std::string dir = d / "c";
	{
		auto c = Cache::open(dir, one.cfg, one.keys);
		REQUIRE(c);
		c->put(CacheTable::Snapshot, "s", as_bytes("one's"));
		c->flush();
	}
	// The same directory opened for another repository: nothing of the first one shows.
	{
		auto c = Cache::open(dir, two.cfg, two.keys);
		REQUIRE(c);
		CHECK(!c->get(CacheTable::Snapshot, "s"));
		CHECK(c->keys(CacheTable::Snapshot).empty());
		c->put(CacheTable::Snapshot, "s", as_bytes("two's"));
		c->flush();
	}
	// The same repository id under other keys (a replaced CONFIG): nothing authenticates.
	Identity forged;
	forged.cfg.repo_id = two.cfg.repo_id;
	forged.keys = KeyRing::derive(crypto::SecureBytes(crypto::random_bytes(32)), forged.cfg);
	auto c = Cache::open(dir, forged.cfg, forged.keys);
	REQUIRE(c);
	CHECK(!c->get(CacheTable::Snapshot, "s"));
}

TEST_CASE("cache component: a directory that cannot hold a cache gives none, and a garbage file is replaced",
          "[cache]")
{
	test::TempDir d;
	Identity id;
	// A regular file where the directory should be: no cache, no exception.
	std::string blocked = d / "file";
	test::write_file(blocked, as_bytes("not a directory"));
	CHECK(!Cache::open(blocked, id.cfg, id.keys));
	// Garbage where the database should be: rebuilt.
	std::string dir = d / "c";
	std::filesystem::create_directories(dir);
	test::write_file(dir + "/cache.db", as_bytes(std::string(4096, 'x')));
	auto c = Cache::open(dir, id.cfg, id.keys);
	REQUIRE(c);
	c->put(CacheTable::Blob, "k", as_bytes("v"));
	c->flush();
	CHECK(text(c->get(CacheTable::Blob, "k")) == "v");
}

TEST_CASE("cache component: the encryption a client saw is remembered per directory", "[cache][trust]")
{
	test::TempDir d;
	std::string dir = d / "c";
	CHECK(!Cache::was_encrypted(dir));
	Cache::remember_encrypted(dir);
	CHECK(Cache::was_encrypted(dir));
	CHECK(!Cache::was_encrypted(d / "other"));
	Cache::remember_encrypted(""); // remembers nothing, fails nothing
	CHECK(!Cache::was_encrypted(""));
}
