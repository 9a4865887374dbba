// check at its three depths, on a clean repository and on each kind of damage: every problem
// is found at the depth that can see it, and named.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>

#include "base/error.h"
#include "helpers.h"
#include "repository/repository.h"
#include "snapshot/file_reader.h"
#include "snapshot/builder.h"
#include "repository/repair.h"
#include "snapshot/check.h"
#include "snapshot/restore.h"
#include "snapshot/snapshot.h"
#include "storage/wrappers/store_wrapper.h"

using namespace plakar;
namespace fs = std::filesystem;

namespace {

struct Fixture : test::RepoFixture {
	std::string s1, s2;
	Fixture()
	{
		fs::create_directories(d / "src/sub/deeper");
		test::write_file(d / "src/file", test::random_data(50000, 1));
		test::write_file(d / "src/other", test::random_data(40000, 2));
		test::write_file(d / "src/sub/deeper/x", test::random_data(30000, 3));
		auto r = open();
		s1 = push(*r, {d / "src"}, {}).id_string();
		test::write_file(d / "src/other", test::random_data(40000, 4));
		s2 = push(*r, {d / "src"}, {}).id_string();
	}
	CheckReport run(std::vector<std::string> snaps, bool fast = false, bool read_data = false, bool refcounts = false)
	{
		auto r = open();
		CheckOptions o;
		o.snapshots = std::move(snaps);
		o.fast = fast;
		o.read_data = read_data;
		o.refcounts = refcounts;
		return check(*r, o);
	}
	// Packs of one type (1 data, 2 metadata), in the order they were written.
	std::vector<std::string> packs(int type)
	{
		std::vector<std::pair<fs::file_time_type, std::string>> v;
		for (auto &p : test::files_under(uri + "/packs"))
			if (test::read_file(p).at(5) == type)
				v.emplace_back(fs::last_write_time(p), p);
		std::sort(v.begin(), v.end());
		std::vector<std::string> out;
		for (auto &[t, p] : v)
			out.push_back(p);
		return out;
	}
	Id chunk_of(const std::string &snap, const std::string &path)
	{
		auto r = open();
		auto h = load_snapshot(*r, resolve_snapshot(*r, snap));
		return lookup(*r, h, path).chunks.at(0).id;
	}
};

void flip(const std::string &path, size_t pos)
{
	Bytes b = test::read_file(path);
	b.at(pos) ^= 0x20;
	test::write_file(path, b);
}

bool has_problem(const CheckReport &r, Code code, const std::string &object_part, const std::string &message_part = "")
{
	for (const auto &p : r.problems)
		if (p.code == code && p.object.find(object_part) != std::string::npos &&
		    p.message.find(message_part) != std::string::npos)
			return true;
	return false;
}

std::string dump(const CheckReport &r)
{
	std::string s;
	for (const auto &p : r.problems)
		s += "[" + std::to_string(int(p.code)) + "] " + p.object + ": " + p.message + "\n";
	return s;
}

std::string base(const std::string &path) { return fs::path(path).filename().string(); }

} // namespace

TEST_CASE("check: a clean repository passes at every depth", "[check]")
{
	Fixture f;
	auto full = f.run({f.s1, f.s2});
	INFO(dump(full));
	CHECK(full.ok());
	CHECK(full.snapshots == 2);
	CHECK(full.bytes >= 50000 + 40000 + 40000 + 30000); // every distinct chunk read once
	CHECK(full.entries >= 8);
	auto fast = f.run({f.s1.substr(0, 8)}, true);
	CHECK(fast.ok());
	CHECK(fast.blobs > 0);
	CHECK(fast.bytes < 50000); // no chunk read
	auto repo = f.run({}, false, true, true);
	INFO(dump(repo));
	CHECK(repo.ok());
	CHECK(repo.packs == 4);
	CHECK(repo.unreferenced_blobs == 0);
	CHECK(repo.unindexed_packs == 0);
	// Reference counts: the unchanged file is in both snapshots, the changed one in one each.
	auto count = [&](const Id &id) {
		for (const auto &[b, n] : repo.refcounts)
			if (b == id)
				return n;
		return 0u;
	};
	CHECK(count(f.chunk_of(f.s1, f.d / "src/file")) == 2);
	CHECK(count(f.chunk_of(f.s1, f.d / "src/other")) == 1);
	CHECK(count(f.chunk_of(f.s2, f.d / "src/other")) == 1);
	CHECK(std::is_sorted(repo.refcounts.begin(), repo.refcounts.end()));
}

namespace {
// Counts the bytes read from packs.
class CountingStore : public StoreWrapper {
public:
	using StoreWrapper::StoreWrapper;
	Bytes get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length) override
	{
		if (kind == Kind::Pack)
			pack_bytes += length;
		return StoreWrapper::get_range(kind, name, offset, length);
	}
	void read_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length, uint8_t *dst) override
	{
		if (kind == Kind::Pack)
			pack_bytes += length;
		StoreWrapper::read_range(kind, name, offset, length, dst);
	}
	std::atomic<uint64_t> pack_bytes{0};
};
} // namespace

TEST_CASE("check: snapshots sharing data read each chunk once; a damaged shared chunk is named in each", "[check]")
{
	Fixture f;
	uint64_t data_bytes = 0;
	for (const auto &p : f.packs(1))
		data_bytes += fs::file_size(p);
	auto counting = std::make_unique<CountingStore>(open_store(f.uri));
	CountingStore *store = counting.get();
	auto r = f.open(std::move(counting));
	CheckOptions o;
	o.snapshots = {f.s1, f.s2, f.s1.substr(0, 8)};
	auto one = check(*r, o);
	INFO(dump(one));
	CHECK(one.ok());
	CHECK(one.snapshots == 2); // named twice, checked once
	// Three snapshots' worth of references, each chunk read once: no more than the data packs
	// (plus the metadata packs' blobs, a few KB).
	CHECK(store->pack_bytes < data_bytes + 64 * 1024);
	CHECK(one.bytes >= 50000 + 40000 + 40000 + 30000);

	auto data = f.packs(1);
	flip(data[0], 100); // src/file's first chunk: in both snapshots (it did not change)
	auto two = f.run({f.s1, f.s2});
	INFO(dump(two));
	CHECK(has_problem(two, Code::Corrupt, f.s1 + ":" + f.d / "src/file", "failed authentication"));
	CHECK(has_problem(two, Code::Corrupt, f.s2 + ":" + f.d / "src/file", "failed authentication"));
	CHECK(!has_problem(two, Code::Corrupt, ":" + f.d / "src/other"));
	CHECK(two.blobs < one.blobs);
}

TEST_CASE("check: an unknown snapshot is an error, not a report", "[check]")
{
	Fixture f;
	CHECK(test::code_of([&] { f.run({"ffffffff"}); }) == Code::NotFound);
}

TEST_CASE("check: a flipped bit in a data pack", "[check]")
{
	Fixture f;
	auto data = f.packs(1);
	REQUIRE(data.size() == 2);
	flip(data[0], 100); // inside the first blob of the first push's data pack
	auto full = f.run({f.s1});
	INFO(dump(full));
	CHECK_FALSE(full.ok());
	CHECK(has_problem(full, Code::Corrupt, f.s1 + ":" + f.d / "src/", "failed authentication"));
	// Existence only: nothing is read, nothing is seen.
	CHECK(f.run({f.s1}, true).ok());
	// The structure is intact; reading the data finds it and names the pack.
	CHECK(f.run({}).ok());
	auto deep = f.run({}, false, true);
	INFO(dump(deep));
	CHECK(has_problem(deep, Code::Corrupt, "pack " + base(data[0]), "failed authentication"));
}

TEST_CASE("check: a flipped bit in a metadata pack", "[check]")
{
	Fixture f;
	auto meta = f.packs(2);
	REQUIRE(meta.size() == 2);
	flip(meta[1], 60);
	auto full = f.run({f.s2});
	INFO(dump(full));
	CHECK_FALSE(full.ok());
	CHECK(has_problem(full, Code::Corrupt, f.s2 + ":"));
	auto repo = f.run({});
	INFO(dump(repo));
	CHECK_FALSE(repo.ok());
	CHECK(has_problem(repo, Code::Corrupt, f.s2 + ":"));
}

TEST_CASE("check: a truncated pack", "[check]")
{
	Fixture f;
	auto data = f.packs(1);
	fs::resize_file(data[1], 200);
	auto fast = f.run({f.s2}, true);
	INFO(dump(fast));
	CHECK(has_problem(fast, Code::Corrupt, f.s2 + ":" + f.d / "src/other", "is truncated"));
	CHECK(f.run({f.s1}, true).ok()); // the first snapshot does not use that pack
	auto repo = f.run({});
	INFO(dump(repo));
	CHECK(has_problem(repo, Code::Corrupt, "pack " + base(data[1])));
	CHECK_FALSE(f.run({f.s2}).ok());
}

TEST_CASE("check: a missing pack", "[check]")
{
	Fixture f;
	auto data = f.packs(1);
	fs::remove(data[1]);
	auto fast = f.run({f.s2}, true);
	INFO(dump(fast));
	CHECK(has_problem(fast, Code::NotFound, f.s2 + ":" + f.d / "src/other", "is missing"));
	auto repo = f.run({});
	INFO(dump(repo));
	CHECK(has_problem(repo, Code::NotFound, "pack " + base(data[1]), "is missing"));
	auto full = f.run({f.s1, f.s2});
	CHECK(has_problem(full, Code::NotFound, f.s2 + ":" + f.d / "src/other"));
	CHECK_FALSE(has_problem(full, Code::NotFound, f.s1 + ":"));
}

TEST_CASE("check: packs swapped with each other", "[check]")
{
	Fixture f;
	auto data = f.packs(1);
	Bytes a = test::read_file(data[0]), b = test::read_file(data[1]);
	test::write_file(data[0], b);
	test::write_file(data[1], a);
	auto repo = f.run({});
	INFO(dump(repo));
	CHECK(has_problem(repo, Code::Corrupt, "pack " + base(data[0])));
	CHECK(has_problem(repo, Code::Corrupt, "pack " + base(data[1])));
	CHECK_FALSE(f.run({f.s1}).ok());
}

TEST_CASE("check: a flipped bit in an index segment names it", "[check]")
{
	Fixture f;
	auto segs = test::files_under(f.uri + "/index");
	REQUIRE(segs.size() == 2);
	flip(segs[0], 30);
	auto repo = f.run({});
	INFO(dump(repo));
	CHECK_FALSE(repo.ok());
	bool named = false;
	for (const auto &p : repo.problems)
		named = named || (p.message.find(base(segs[0])) != std::string::npos && p.code == Code::Corrupt);
	CHECK(named);
}

TEST_CASE("check: blobs that lost their index entry are still read, and reported", "[check]")
{
	Fixture f;
	for (const auto &s : test::files_under(f.uri + "/index"))
		fs::remove(s);
	// A restore still finds every blob through the packs' own tables of contents.
	CHECK(f.read_back(f.s1, f.d / "src/file") == test::random_data(50000, 1));
	CHECK(f.run({f.s1}).ok());
	auto repo = f.run({});
	INFO(dump(repo));
	CHECK_FALSE(repo.ok());
	CHECK(has_problem(repo, Code::Corrupt, "blob ", "has no index entry"));
	CHECK(repo.unindexed_packs == 4);
}

TEST_CASE("check: what an interrupted push leaves is garbage, not a problem", "[check]")
{
	Fixture f;
	// A pack written, its index segment not: what a push killed between the two leaves.
	auto before = test::files_under(f.uri + "/index");
	{
		auto r = f.open();
		Bytes junk = test::random_data(10000, 77);
		r->put_blob(BlobType::Chunk, r->blob_id(junk), junk);
		r->flush();
	}
	for (const auto &s : test::files_under(f.uri + "/index"))
		if (std::find(before.begin(), before.end(), s) == before.end())
			fs::remove(s);
	auto repo = f.run({});
	INFO(dump(repo));
	CHECK(repo.ok());
	CHECK(repo.unindexed_packs == 1);
	CHECK(repo.unreferenced_blobs == 1);
	CHECK(repo.unreferenced_bytes > 10000);
}

TEST_CASE("repair: the index rebuilt from the packs after its files were deleted", "[check][repair]")
{
	Fixture f;
	for (const auto &s : test::files_under(f.uri + "/index"))
		fs::remove(s);
	CHECK_FALSE(f.run({}).ok());
	{
		auto r = f.open();
		auto dry = repair_index(*r, false);
		CHECK_FALSE(dry.applied);
		CHECK(dry.packs == 4);
		CHECK(dry.added == dry.blobs);
		CHECK(dry.blobs > 0);
	}
	CHECK(test::files_under(f.uri + "/index").empty()); // a dry run writes nothing
	{
		auto r = f.open();
		auto done = repair_index(*r, true);
		CHECK(done.applied);
		CHECK(done.damaged.empty());
	}
	CHECK(test::files_under(f.uri + "/index").size() == 1);
	auto rep = f.run({});
	INFO(dump(rep));
	CHECK(rep.ok());
	CHECK(rep.unindexed_packs == 0);
	CHECK(f.read_back(f.s2, f.d / "src/other") == test::random_data(40000, 4));
}

TEST_CASE("repair: entries of a missing pack are dropped, a damaged pack keeps its entries", "[check][repair]")
{
	Fixture f;
	auto data = f.packs(1);
	fs::remove(data[1]); // the second push's data
	Bytes b = test::read_file(data[0]);
	b[b.size() - 30] ^= 1; // inside the first data pack's table of contents
	test::write_file(data[0], b);
	auto r = f.open();
	auto done = repair_index(*r, true);
	CHECK(done.dropped >= 1);
	REQUIRE(done.damaged.size() == 1);
	CHECK(done.damaged[0].find(base(data[0])) != std::string::npos);
	r.reset();
	// The first snapshot's blobs are still indexed and readable; the second's missing chunk is
	// reported by check as missing, not as an index inconsistency.
	CHECK(f.read_back(f.s1, f.d / "src/file") == test::random_data(50000, 1));
	auto rep = f.run({f.s2}, true);
	CHECK(has_problem(rep, Code::NotFound, f.s2 + ":" + f.d / "src/other"));
}

TEST_CASE("a push after a pack was lost stores those blobs again instead of reusing them", "[check]")
{
	Fixture f;
	auto data = f.packs(1);
	fs::remove(data[1]); // the second push's data: src/other as it is now
	CHECK_FALSE(f.run({f.s2}, true).ok());
	std::string s3;
	{
		OpenOptions o;
		o.cache_dir = f.d / "cache"; // the parent's nodes come from the cache: files look unchanged
		auto r = Repository::open(f.uri, std::string("pw"), o);
		s3 = push(*r, {f.d / "src"}, {}).id_string();
	}
	auto rep = f.run({s3});
	INFO(dump(rep));
	CHECK(rep.ok());
	CHECK(f.read_back(s3, f.d / "src/other") == test::random_data(40000, 4));
}

TEST_CASE("repair -read-data leaves a damaged blob out, and the next push heals every snapshot", "[check][repair]")
{
	Fixture f;
	auto data = f.packs(1);
	Bytes b = test::read_file(data[0]);
	b[100] ^= 1; // inside the first blob of the first push's data pack
	test::write_file(data[0], b);
	CHECK_FALSE(f.run({f.s1}).ok());
	{
		auto r = f.open();
		auto dry = repair_index(*r, false, true);
		CHECK(dry.unindexed_damaged == 1);
		CHECK_FALSE(dry.applied);
		auto done = repair_index(*r, true, true);
		CHECK(done.unindexed_damaged == 1);
		REQUIRE(done.damaged.size() == 1);
		CHECK(done.damaged[0].find(base(data[0])) != std::string::npos);
	}
	// The same content pushed again is stored again, under the same id: the old snapshots
	// read it from its new pack.
	{
		auto r = f.open();
		push(*r, {f.d / "src"}, {});
	}
	auto rep = f.run({f.s1, f.s2});
	INFO(dump(rep));
	CHECK(rep.ok());
}

TEST_CASE("check: canceled while walking the snapshots, with pack tasks queued and running", "[check]")
{
	Fixture f;
	for (bool read_data : {false, true}) {
		auto r = f.open();
		CheckOptions o;
		o.read_data = read_data;
		int calls = 0;
		o.progress = [&](const std::string &stage, uint64_t, uint64_t) { return !(stage == "snapshots" && ++calls == 2); };
		CHECK(test::code_of([&] { check(*r, o); }) == Code::Canceled);
		// The same handle checks cleanly afterwards.
		CheckOptions again;
		again.read_data = read_data;
		CheckReport rep = check(*r, again);
		CHECK(rep.ok());
		CHECK(rep.packs > 0);
	}
}
