#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <utility>
#include <thread>

#include "base/error.h"
#include "helpers.h"
#include "repository/repository.h"
#include "snapshot/file_reader.h"
#include "snapshot/gc.h"
#include "storage/wrappers/fault_store.h"
#include "storage/store.h"

using namespace plakar;
using plakar::test::code_of;

namespace {
CreateOptions cheap(bool encrypted = true)
{
	CreateOptions o;
	o.encryption = encrypted;
	if (encrypted)
		o.passphrase = "secret";
	o.kdf.log2_n = 10;
	return o;
}

} // namespace

TEST_CASE("create, open, and the passphrase check", "[repository]")
{
	test::TempDir d;
	std::string uri = d / "repo";
	{
		auto r = Repository::create(uri, cheap());
		CHECK(r->encrypted());
	}
	CHECK(Repository::open(uri, std::string("secret"))->encrypted());
	CHECK(code_of([&] { Repository::open(uri, std::string("wrong")); }) == Code::Auth);
	CHECK(code_of([&] { Repository::open(uri, std::nullopt); }) == Code::Auth);
	CHECK(code_of([&] { Repository::create(uri, cheap()); }) == Code::Exists);
	CHECK(code_of([&] { Repository::open(d / "missing", std::string("secret")); }) == Code::NotFound);
	auto no_pass = cheap();
	no_pass.passphrase.reset();
	CHECK(code_of([&] { Repository::create(d / "other", no_pass); }) == Code::Invalid);
	CHECK(code_of([&] {
		      auto o = cheap();
		      o.kdf.log2_n = 5;
		      Repository::create(d / "weak", o);
	      }) == Code::Invalid);
}

TEST_CASE("blobs: dedup by keyed id, read back, persist across opens", "[repository]")
{
	test::TempDir d;
	std::string uri = d / "repo";
	Bytes a = test::random_data(100000, 1);
	Id id;
	{
		auto r = Repository::create(uri, cheap());
		id = r->blob_id(a);
		CHECK(r->put_blob(BlobType::Chunk, id, a));
		CHECK_FALSE(r->put_blob(BlobType::Chunk, id, a));
		CHECK(r->get_blob(id, BlobType::Chunk) == a); // from the still-open pack
		r->flush();
		CHECK(r->stats().blobs_written == 1);
	}
	auto r = Repository::open(uri, std::string("secret"));
	CHECK(r->has_blob(id));
	CHECK(r->get_blob(id, BlobType::Chunk) == a);
	CHECK(code_of([&] { r->get_blob(id, BlobType::Tree); }) == Code::Corrupt);
	Id other = r->blob_id(as_bytes("nope"));
	CHECK(code_of([&] { r->get_blob(other, BlobType::Chunk); }) == Code::NotFound);
	// Ids are keyed: another repository names the same content differently.
	auto r2 = Repository::create(d / "repo2", cheap());
	CHECK(r2->blob_id(a) != id);
}

namespace {
// Adds n synthetic entries (in a pack that is never read) and flushes: one segment of n.
void add_entries(Repository &r, size_t n, uint64_t seed)
{
	std::vector<BlobRecord> recs;
	for (size_t i = 0; i < n; i++) {
		Bytes b = test::random_data(32, seed * 1000003 + i);
		recs.push_back(BlobRecord{Id::from(b), BlobType::Chunk, 0, uint32_t(i * 100), 100, 100});
	}
	Bytes p = test::random_data(32, ~seed);
	r.index_pack(Id::from(p), recs);
	r.flush();
}
size_t files_in(const std::string &dir) { return test::files_under(dir).size(); }

// A store whose listing of index segments is followed by something else (a gc deleting).
class AfterList : public FaultStore {
public:
	AfterList(std::unique_ptr<Store> inner) : FaultStore(std::move(inner), FaultPlan{}) {}
	std::function<void(const std::vector<std::string> &)> after;
	std::vector<std::string> list(Kind kind) override
	{
		auto v = FaultStore::list(kind);
		if (kind == Kind::Index && after)
			std::exchange(after, nullptr)(v);
		return v;
	}
};
} // namespace

TEST_CASE("index segments are merged in tiers: live ones stay bounded, superseded ones wait for gc", "[repository]")
{
	test::TempDir d;
	std::string uri = d / "repo";
	std::vector<Id> ids;
	Repository::create(uri, cheap(false));
	OpenOptions oo;
	oo.cache_dir = d / "cache";
	for (int round = 0; round < 20; round++) {
		auto r = Repository::open(uri, std::nullopt, oo);
		Bytes b = test::random_data(1000, uint64_t(round));
		ids.push_back(r->blob_id(b));
		r->put_blob(BlobType::Chunk, ids.back(), b);
		r->flush();
		CHECK(r->live_segments().size() < kSegmentsPerTier);
		if (round == 7) {
			// The eighth segment filled tier 0: one merged segment supersedes the eight, which
			// stay in the store (a reader may have listed them) until gc deletes them.
			CHECK(r->stats().segments_merged == 1);
			CHECK(r->live_segments().size() == 1);
			CHECK(r->superseded_segments().size() == 8);
			CHECK(files_in(d / "repo/index") == 9);
		}
	}
	{
		// A fresh handle loads only live segments; superseded ones are not even read (their
		// cache entries are markers naming their successor).
		auto r = Repository::open(uri, std::nullopt, oo);
		for (const auto &id : ids)
			CHECK(r->has_blob(id));
		CHECK(r->live_segments().size() < kSegmentsPerTier);
		CHECK(r->superseded_segments().size() == 16);
		CHECK(r->stats().segments_fetched == 0);
		// Without a cache, each segment is read from the store once, superseded ones included.
		OpenOptions nc;
		nc.use_cache = false;
		auto bare = Repository::open(uri, std::nullopt, nc);
		for (const auto &id : ids)
			CHECK(bare->has_blob(id));
		CHECK(bare->stats().segments_fetched == files_in(d / "repo/index"));
	}
	auto r = Repository::open(uri, std::nullopt, oo);
	GcReport rep = collect_garbage(*r, GcOptions{});
	CHECK(rep.segments_deleted >= 16); // and those its repacking rewrote
	CHECK(rep.segments_pending == 0);
	CHECK(files_in(d / "repo/index") == rep.segments_after);
	CHECK(rep.segments_after < kSegmentsPerTier);
	auto again = Repository::open(uri, std::nullopt, oo);
	CHECK(again->superseded_segments().empty());
}

TEST_CASE("a merge rewrites what is new, not the whole index", "[repository]")
{
	test::TempDir d;
	std::string uri = d / "repo";
	Repository::create(uri, cheap(false));
	OpenOptions oo;
	oo.cache_dir = d / "cache";
	std::string big;
	{
		auto r = Repository::open(uri, std::nullopt, oo);
		add_entries(*r, 200000, 1); // tier 2
		big = r->live_segments().at(0).first;
	}
	for (int i = 0; i < 8; i++) {
		auto r = Repository::open(uri, std::nullopt, oo);
		add_entries(*r, 100, uint64_t(10 + i));
		if (i == 7) {
			auto live = r->live_segments();
			REQUIRE(live.size() == 2);
			CHECK(r->stats().segments_merged == 1);
			// The big segment is untouched; the merged one holds the 800 new entries.
			CHECK(std::count_if(live.begin(), live.end(), [&](const auto &l) { return l.first == big; }) == 1);
			for (const auto &[n, entries] : live)
				CHECK((n == big ? entries == 200000 : entries == 800));
		}
	}
	// Tiers climb: eight tier-1 segments (8,192 entries or more each) become one of tier 2.
	auto r = Repository::open(uri, std::nullopt, oo);
	for (int i = 0; i < 8; i++)
		add_entries(*r, 9000, uint64_t(100 + i));
	auto live = r->live_segments();
	CHECK(live.size() <= 3);
	uint64_t total = 0;
	for (const auto &[n, entries] : live)
		total += entries;
	CHECK(total == 200000 + 800 + 8 * 9000);
	CHECK(r->index_summary().blobs[int(BlobType::Chunk)] == total);
}

TEST_CASE("loading the index never retries: a segment deleted meanwhile is skipped when superseded, an error when not",
          "[repository]")
{
	test::TempDir d;
	std::string uri = d / "repo";
	Repository::create(uri, cheap(false));
	std::vector<Id> ids;
	{
		auto r = Repository::open(uri, std::nullopt);
		for (int i = 0; i < 9; i++) {
			Bytes b = test::random_data(500, uint64_t(i));
			ids.push_back(r->blob_id(b));
			r->put_blob(BlobType::Chunk, ids.back(), b);
			r->flush();
		}
		REQUIRE(r->superseded_segments().size() == 8);
	}
	OpenOptions nc;
	nc.use_cache = false;
	std::vector<std::string> superseded, live;
	{
		auto r = Repository::open(uri, std::nullopt, nc);
		r->has_blob(ids[0]);
		superseded = r->superseded_segments();
		for (const auto &[n, e] : r->live_segments())
			live.push_back(n);
	}
	REQUIRE(live.size() == 2);
	{
		// gc deletes superseded segments right after this loader listed them.
		auto s = std::make_unique<AfterList>(open_store(uri));
		AfterList *hook = s.get();
		auto r = Repository::open(std::move(s), std::nullopt, nc);
		hook->after = [&](const std::vector<std::string> &) {
			for (const auto &n : superseded)
				hook->remove(Kind::Index, n);
		};
		for (const auto &id : ids)
			CHECK(r->has_blob(id));
		CHECK(r->stats().index_loads == 1);
	}
	{
		// A live segment vanishing is not something gc does: a clear error, no retry loop.
		auto s = std::make_unique<AfterList>(open_store(uri));
		AfterList *hook = s.get();
		auto r = Repository::open(std::move(s), std::nullopt, nc);
		hook->after = [&](const std::vector<std::string> &) { hook->remove(Kind::Index, live[0]); };
		try {
			r->has_blob(ids[0]);
			FAIL("a live segment vanishing went unnoticed");
		} catch (const Error &e) {
			CHECK(e.code() == Code::Corrupt);
			CHECK(std::string(e.what()).find(live[0]) != std::string::npos);
			CHECK(std::string(e.what()).find('\n') == std::string::npos);
		}
	}
}

TEST_CASE("a superseded segment may be damaged; a plain segment cannot supersede", "[repository]")
{
	test::TempDir d;
	std::string uri = d / "repo";
	Repository::create(uri, cheap(false));
	std::vector<Id> ids;
	std::vector<std::string> superseded;
	{
		auto r = Repository::open(uri, std::nullopt);
		for (int i = 0; i < 8; i++) {
			Bytes b = test::random_data(500, uint64_t(i));
			ids.push_back(r->blob_id(b));
			r->put_blob(BlobType::Chunk, ids.back(), b);
			r->flush();
		}
		superseded = r->superseded_segments();
		REQUIRE(superseded.size() == 8);
	}
	OpenOptions nc;
	nc.use_cache = false;
	for (const auto &f : test::files_under(uri + "/index"))
		if (std::filesystem::path(f).filename() == superseded[0]) {
			Bytes b = test::read_file(f);
			b[100] ^= 1;
			test::write_file(f, b);
		}
	{
		auto r = Repository::open(uri, std::nullopt, nc);
		for (const auto &id : ids)
			CHECK(r->has_blob(id));
	}
	// Any writer may add a plain segment (an append-only token does): one whose body claims
	// to supersede the live segments is refused, and supersedes nothing.
	{
		auto r = Repository::open(uri, std::nullopt, nc);
		r->has_blob(ids[0]);
		std::vector<std::string> live;
		for (const auto &[n, e] : r->live_segments())
			live.push_back(n);
		Index empty;
		std::string forged(64, 'a');
		r->put_sealed(Kind::Index, ObjectKind::IndexSegment, forged, empty.encode_all(live));
		auto r2 = Repository::open(uri, std::nullopt, nc);
		try {
			r2->has_blob(ids[0]);
			FAIL("a plain segment superseding others was accepted");
		} catch (const Error &e) {
			CHECK(e.code() == Code::Corrupt);
			CHECK(std::string(e.what()).find("a plain segment supersedes others") != std::string::npos);
		}
	}
}

TEST_CASE("plaintext repositories need no passphrase and still key their ids", "[repository]")
{
	test::TempDir d;
	auto r = Repository::create(d / "repo", cheap(false));
	CHECK_FALSE(r->encrypted());
	auto r2 = Repository::create(d / "repo2", cheap(false));
	CHECK(r->blob_id(as_bytes("x")) != r2->blob_id(as_bytes("x")));
	CHECK_FALSE(Repository::open(d / "repo", std::nullopt)->encrypted());
	CHECK(test::files_under(d / "repo/keys").empty());
}

TEST_CASE("packs are split at the target size", "[repository]")
{
	test::TempDir d;
	auto o = cheap();
	o.pack_size = 256 * 1024;
	auto r = Repository::create(d / "repo", o);
	for (int i = 0; i < 10; i++) {
		Bytes b = test::random_data(100000, uint64_t(i));
		r->put_blob(BlobType::Chunk, r->blob_id(b), b);
	}
	r->flush();
	auto packs = test::files_under(d / "repo/packs");
	CHECK(packs.size() >= 3);
	CHECK(packs.size() <= 5);
}

TEST_CASE("readers of a handle go on while its packs upload to a slow store", "[repository]")
{
	// Each pack takes 2 s to store. A writer fills four packs and flushes; meanwhile another
	// thread of the same handle reads a blob stored earlier, again and again: no read waits for
	// an upload (none is waited for under the repository's lock).
	test::TempDir d;
	auto o = cheap();
	o.pack_size = 256 * 1024;
	Bytes old = test::random_data(50000, 99);
	Id old_id;
	{
		auto r = Repository::create(d / "repo", o);
		old_id = r->blob_id(old);
		r->put_blob(BlobType::Chunk, old_id, old);
		r->flush();
	}
	FaultPlan plan;
	plan.pack_put_latency = std::chrono::milliseconds(2000);
	OpenOptions oo;
	oo.use_cache = false;
	auto r = Repository::open(std::make_unique<FaultStore>(open_store(d / "repo"), plan),
	                          std::string("secret"), oo);
	CHECK(r->get_blob(old_id, BlobType::Chunk) == old);
	std::atomic<bool> done{false};
	std::thread writer([&] {
		for (int i = 0; i < 12; i++) {
			Bytes b = test::random_data(100000, uint64_t(i));
			r->put_blob(BlobType::Chunk, r->blob_id(b), b);
		}
		r->flush();
		done = true;
	});
	using Clock = std::chrono::steady_clock;
	auto started = Clock::now();
	std::chrono::milliseconds slowest{0};
	int reads = 0;
	while (!done) {
		auto t0 = Clock::now();
		CHECK(r->has_blob(old_id));
		CHECK(r->get_blob(old_id, BlobType::Chunk) == old);
		slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0));
		reads++;
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
	}
	writer.join();
	// The writer's packs took several uploads of 2 s; every read answered well within one.
	CHECK(Clock::now() - started > std::chrono::seconds(4));
	CHECK(slowest < std::chrono::milliseconds(1000));
	CHECK(reads > 50);
	for (int i = 0; i < 12; i++) {
		Bytes b = test::random_data(100000, uint64_t(i));
		CHECK(r->get_blob(r->blob_id(b), BlobType::Chunk) == b);
	}
}

TEST_CASE("blobs sealed by several threads at once, read back while their packs are open", "[repository]")
{
	// Blobs are sealed outside the repository lock: small packs fill up while other threads
	// still seal into them, and reads of blobs in open packs wait for their seals.
	test::TempDir d;
	auto o = cheap();
	o.pack_size = 64 * 1024;
	auto r = Repository::create(d / "repo", o);
	constexpr int kThreads = 4, kPer = 150;
	std::vector<std::vector<std::pair<Id, Bytes>>> put(kThreads);
	std::atomic<int> bad{0};
	{
		std::vector<std::thread> ts;
		for (int t = 0; t < kThreads; t++)
			ts.emplace_back([&, t] {
				for (int i = 0; i < kPer; i++) {
					Bytes b = test::random_data(1000 + size_t(i * 97 % 20000), uint64_t(t * 100000 + i));
					if (i % 3 == 0)
						std::fill(b.begin() + long(b.size() / 2), b.end(), uint8_t(0x7a)); // compresses
					Id id = r->blob_id(b);
					r->put_blob(i % 10 ? BlobType::Chunk : BlobType::Tree, id, b);
					put[size_t(t)].emplace_back(id, b);
					if (i % 7 == 0) { // read back one put a moment ago, maybe still open
						auto &[pid, pb] = put[size_t(t)][size_t(i / 2)];
						if (r->get_blob(pid, (i / 2) % 10 ? BlobType::Chunk : BlobType::Tree) != pb)
							bad++;
					}
				}
			});
		for (auto &t : ts)
			t.join();
	}
	CHECK(bad == 0);
	r->flush();
	auto r2 = Repository::open(d / "repo", std::string("secret"));
	int n = 0;
	for (int t = 0; t < kThreads; t++)
		for (int i = 0; i < kPer; i++) {
			auto &[id, b] = put[size_t(t)][size_t(i)];
			CHECK(r2->get_blob(id, i % 10 ? BlobType::Chunk : BlobType::Tree) == b);
			n++;
		}
	CHECK(n == kThreads * kPer);
	CHECK(test::files_under(d / "repo/packs").size() >= 10);
}

// ---------------------------------------------------------------- the local cache

#include <sqlite3.h>
#include <sys/wait.h>

#include <filesystem>

#include "repository/cache.h"
#include "snapshot/builder.h"
#include "snapshot/restore.h"
#include "snapshot/snapshot.h"

namespace {
OpenOptions cache_in(const std::string &dir)
{
	OpenOptions o;
	o.cache_dir = dir;
	return o;
}

std::string read_all(Repository &r, const SnapshotHeader &h, const std::string &path)
{
	FileReader f(r, lookup(r, h, path));
	Bytes out(f.size());
	out.resize(f.read(out.data(), out.size()));
	return std::string(as_string(out));
}

void make_tree(const test::TempDir &d)
{
	std::filesystem::create_directories(d / "src/a/b");
	for (int i = 0; i < 50; i++)
		test::write_file(d / ("src/a/f" + std::to_string(i)), as_bytes("file " + std::to_string(i)));
	test::write_file(d / "src/a/b/deep", as_bytes("deep"));
}
} // namespace

TEST_CASE("cache: a second open and a second push fetch nothing the cache holds", "[cache]")
{
	test::TempDir d;
	make_tree(d);
	Repository::create(d / "repo", cheap());
	{
		auto r = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
		REQUIRE(r->cache());
		push(*r, {d / "src"}, {});
	}
	{
		// Browsing a snapshot whose directory nodes are cached loads no index at all.
		auto b = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
		auto h = list_snapshots(*b).at(0);
		Entry dir = lookup(*b, h, d / "src/a");
		DirIterator it(*b, dir.tree);
		Entry e;
		int n = 0;
		while (it.next(e))
			n++;
		CHECK(n == 51);
		CHECK(b->stats().index_loads == 0);
		// Reading content locates its chunks through the cached index table: still no index.
		CHECK(read_all(*b, h, d / "src/a/f7") == "file 7");
		CHECK(read_all(*b, h, d / "src/a/f8") == "file 8");
		CHECK(b->stats().index_loads == 0);
		CHECK(b->stats().table_hits >= 2);
	}
	auto r = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
	CHECK(r->stats().segments_fetched == 0);
	PushStats ps;
	auto h = push(*r, {d / "src"}, {}, &ps);
	CHECK(ps.unchanged == 51);
	CHECK(r->stats().meta_fetched == 0);
	CHECK(read_all(*r, h, d / "src/a/b/deep") == "deep");

	// Without the cache, the same push reads the trees from the repository.
	OpenOptions none;
	none.use_cache = false;
	auto r2 = Repository::open(d / "repo", std::string("secret"), none);
	CHECK(r2->cache() == nullptr);
	CHECK(r2->stats().segments_fetched == 0); // the index is loaded on first use
	PushStats ps2;
	push(*r2, {d / "src"}, {}, &ps2);
	CHECK(ps2.unchanged == 51);
	CHECK(r2->stats().segments_fetched >= 1);
	CHECK(r2->stats().meta_fetched > 0);
}

TEST_CASE("cache: the index table locates blobs, and a stale or damaged table falls back to the index", "[cache]")
{
	test::TempDir d;
	make_tree(d);
	Repository::create(d / "repo", cheap());
	std::string first;
	{
		auto r = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
		first = push(*r, {d / "src"}, {}).id_string();
		CHECK(r->stats().tables_written == 1); // written with the push's index segment
	}
	REQUIRE(std::filesystem::exists(d / "cache/index.tbl"));
	auto read_first = [&](const std::string &name, const std::string &want, uint64_t loads) {
		auto r = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
		auto h = load_snapshot(*r, resolve_snapshot(*r, first));
		CHECK(read_all(*r, h, d / ("src/a/" + name)) == want);
		CHECK(r->stats().index_loads == loads);
		return r->stats();
	};
	SECTION("a blob newer than the table")
	{
		// Another writer, without this cache, adds content the table does not know.
		test::write_file(d / "src/a/new", as_bytes("brand new content"));
		OpenOptions none;
		none.use_cache = false;
		std::string second;
		{
			auto w = Repository::open(d / "repo", std::string("secret"), none);
			second = push(*w, {d / "src"}, {}).id_string();
		}
		{
			auto r = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
			auto h = load_snapshot(*r, resolve_snapshot(*r, second));
			CHECK(read_all(*r, h, d / "src/a/new") == "brand new content");
			CHECK(r->stats().index_loads == 1);   // the table missed: the index decided
			CHECK(r->stats().tables_written == 1); // and the table was brought up to date
		}
		auto r = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
		auto h = load_snapshot(*r, resolve_snapshot(*r, second));
		CHECK(read_all(*r, h, d / "src/a/new") == "brand new content");
		CHECK(r->stats().index_loads == 0);
		CHECK(r->stats().table_hits >= 1);
	}
	SECTION("a flipped byte in a block")
	{
		auto t = test::read_file(d / "cache/index.tbl");
		t[20] ^= 1;
		test::write_file(d / "cache/index.tbl", t);
		read_first("f3", "file 3", 1);
		read_first("f4", "file 4", 0); // rebuilt when the index was loaded
	}
	SECTION("garbage, truncation, and a table of another repository")
	{
		test::write_file(d / "cache/index.tbl", test::random_data(5000, 9));
		read_first("f3", "file 3", 1);
		auto t = test::read_file(d / "cache/index.tbl");
		t.resize(t.size() - 7);
		test::write_file(d / "cache/index.tbl", t);
		read_first("f5", "file 5", 1);
		// Another repository's table, under the same name: its key differs, it never verifies.
		Repository::create(d / "other", cheap());
		{
			auto o = Repository::open(d / "other", std::string("secret"), cache_in(d / "ocache"));
			push(*o, {d / "src"}, {});
		}
		std::filesystem::copy_file(d / "ocache/index.tbl", d / "cache/index.tbl",
		                           std::filesystem::copy_options::overwrite_existing);
		read_first("f6", "file 6", 1);
	}
	SECTION("a table pointing at packs that are gone")
	{
		// What a repack does: the blobs move to new packs and the old ones are deleted. Here the
		// packs and index are deleted and the same tree pushed again by a writer without this
		// cache, so the cached table names packs that no longer exist.
		CHECK(read_first("f1", "file 1", 0).table_hits >= 1);
		for (const char *kind : {"repo/packs", "repo/index"})
			for (const auto &f : test::files_under(d / kind))
				std::filesystem::remove(f);
		OpenOptions none;
		none.use_cache = false;
		{
			auto w = Repository::open(d / "repo", std::string("secret"), none);
			push(*w, {d / "src"}, {});
		}
		read_first("f2", "file 2", 1);
		CHECK(read_first("f2", "file 2", 0).table_hits >= 1);
	}
}

TEST_CASE("cache: deleted, garbage, damaged or foreign caches lose nothing", "[cache]")
{
	test::TempDir d;
	make_tree(d);
	Repository::create(d / "repo", cheap());
	Repository::create(d / "other", cheap());
	std::string snap;
	{
		auto r = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
		snap = push(*r, {d / "src"}, {}).id_string();
	}
	auto check_ok = [&] {
		auto r = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
		REQUIRE(r->cache());
		auto h = load_snapshot(*r, resolve_snapshot(*r, snap));
		CHECK(read_all(*r, h, d / "src/a/f7") == "file 7");
		CHECK(read_all(*r, h, d / "src/a/b/deep") == "deep");
		push(*r, {d / "src"}, {});
	};
	SECTION("deleted")
	{
		std::filesystem::remove_all(d / "cache");
		check_ok();
	}
	SECTION("garbage instead of a database")
	{
		std::filesystem::remove(d / "cache/cache.db-wal");
		std::filesystem::remove(d / "cache/cache.db-shm");
		test::write_file(d / "cache/cache.db", test::random_data(100000, 5));
		check_ok();
	}
	SECTION("every value damaged")
	{
		{
			auto r = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
			r->cache()->flush();
		}
		// Rewrite every stored value with random bytes, through SQLite itself.
		sqlite3 *db = nullptr;
		REQUIRE(sqlite3_open((d / "cache/cache.db").c_str(), &db) == SQLITE_OK);
		CHECK(sqlite3_exec(db, "UPDATE entries SET value = randomblob(64)", nullptr, nullptr, nullptr) == SQLITE_OK);
		CHECK(sqlite3_changes(db) > 0);
		sqlite3_close(db);
		check_ok();
	}
	SECTION("a cache of another version")
	{
		{
			auto r = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
			r->cache()->flush();
		}
		sqlite3 *db = nullptr;
		REQUIRE(sqlite3_open((d / "cache/cache.db").c_str(), &db) == SQLITE_OK);
		CHECK(sqlite3_exec(db, "UPDATE meta SET value = '99' WHERE key = 'version'", nullptr, nullptr, nullptr) ==
		      SQLITE_OK);
		sqlite3_close(db);
		check_ok();
		REQUIRE(sqlite3_open((d / "cache/cache.db").c_str(), &db) == SQLITE_OK);
		sqlite3_stmt *q = nullptr;
		sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'version'", -1, &q, nullptr);
		REQUIRE(sqlite3_step(q) == SQLITE_ROW);
		CHECK(std::string(reinterpret_cast<const char *>(sqlite3_column_text(q, 0))) == "1");
		sqlite3_finalize(q);
		sqlite3_close(db);
	}
	SECTION("the cache of another repository")
	{
		auto o = Repository::open(d / "other", std::string("secret"), cache_in(d / "cache"));
		// Opening another repository on that cache wiped it and made it its own.
		CHECK(o->cache() != nullptr);
		o.reset();
		check_ok();
	}
}

TEST_CASE("cache: two processes using one cache at once", "[cache]")
{
	test::TempDir d;
	make_tree(d);
	Repository::create(d / "repo", cheap());
	std::vector<pid_t> kids;
	for (int p = 0; p < 2; p++) {
		pid_t pid = fork();
		REQUIRE(pid >= 0);
		if (pid == 0) {
			int rc = 0;
			try {
				for (int i = 0; i < 3; i++) {
					auto r = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
					if (!r->cache())
						rc = 2;
					push(*r, {d / "src"}, {});
				}
			} catch (const std::exception &e) {
				fprintf(stderr, "child: %s\n", e.what());
				rc = 1;
			}
			_exit(rc);
		}
		kids.push_back(pid);
	}
	for (pid_t k : kids) {
		int st = 0;
		waitpid(k, &st, 0);
		CHECK(WIFEXITED(st));
		CHECK(WEXITSTATUS(st) == 0);
	}
	auto r = Repository::open(d / "repo", std::string("secret"), cache_in(d / "cache"));
	auto all = list_snapshots(*r);
	CHECK(all.size() == 6);
	for (const auto &h : all)
		CHECK(read_all(*r, h, d / "src/a/f3") == "file 3");
}
