// What the layers above a store do when it misbehaves (FaultStore), and the retry wrapper.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "base/error.h"
#include "helpers.h"
#include "repository/repository.h"
#include "snapshot/file_reader.h"
#include "snapshot/builder.h"
#include "snapshot/restore.h"
#include "snapshot/snapshot.h"
#include "storage/wrappers/fault_store.h"
#include "storage/wrappers/retry_store.h"

using namespace plakar;
using plakar::test::code_of;
namespace fs = std::filesystem;

namespace {
struct Fixture : test::RepoFixture {
	Fixture() : RepoFixture(Options{true, 64 * 1024}) // many packs: many puts to fail
	{
		fs::create_directories(d / "src/sub");
		for (int i = 0; i < 20; i++)
			test::write_file(d / ("src/sub/f" + std::to_string(i)), test::random_data(30000, uint64_t(i)));
	}
	std::unique_ptr<Repository> open(FaultPlan plan, bool retry = false, FaultStore **fault = nullptr)
	{
		auto f = std::make_unique<FaultStore>(open_store(uri), plan);
		if (fault)
			*fault = f.get();
		std::unique_ptr<Store> s = std::move(f);
		if (retry)
			s = std::make_unique<RetryStore>(std::move(s), RetryPolicy{3, std::chrono::milliseconds(1)});
		return RepoFixture::open(std::move(s));
	}
	void verify(Repository &r, const SnapshotHeader &h)
	{
		for (int i = 0; i < 20; i++) {
			std::string p = d / ("src/sub/f" + std::to_string(i));
			FileReader f(r, lookup(r, h, p));
			Bytes b(f.size());
			b.resize(f.read(b.data(), b.size()));
			CHECK(b == test::random_data(30000, uint64_t(i)));
		}
	}
};

} // namespace

TEST_CASE("faults: a failed put fails the push cleanly, and the next push succeeds", "[faults]")
{
	for (int n : {1, 3, 6}) {
		Fixture fx;
		{
			auto r = fx.open(FaultPlan{n, 0, 0, {}});
			CHECK(code_of([&] { push(*r, {fx.d / "src"}, {}); }) == Code::Error);
		}
		auto r = fx.open({});
		CHECK(list_snapshots(*r).empty());
		auto h = push(*r, {fx.d / "src"}, {});
		fx.verify(*r, h);
		CHECK(test::files_under(fx.uri + "/tmp").empty());
	}
}

TEST_CASE("faults: running out of space during push", "[faults]")
{
	Fixture fx;
	{
		auto r = fx.open(FaultPlan{0, 200 * 1024, 0, {}});
		try {
			push(*r, {fx.d / "src"}, {});
			FAIL("push succeeded");
		} catch (const Error &e) {
			CHECK(std::string(e.what()).find("No space left on device") != std::string::npos);
		}
	}
	auto r = fx.open({});
	auto h = push(*r, {fx.d / "src"}, {});
	fx.verify(*r, h);
}

TEST_CASE("faults: a short read is detected as corruption, never returned", "[faults]")
{
	Fixture fx;
	std::string snap;
	{
		auto r = fx.open({});
		snap = push(*r, {fx.d / "src"}, {}).id_string();
	}
	// Every read of the fresh handle is cut short once, at some point: whatever it hits
	// (segment, header, tree, chunk), the failure is an error, never wrong data.
	for (int n = 1; n < 12; n++) {
		FaultStore *fault = nullptr;
		std::unique_ptr<Repository> r; // outlives the call: fault is its store
		Code c = code_of([&] {
			r = fx.open(FaultPlan{0, 0, n, {}}, false, &fault);
			auto h = load_snapshot(*r, resolve_snapshot(*r, snap));
			fx.verify(*r, h);
		});
		INFO("short read at " << n);
		// The fault fired (every restore reads more than 12 objects): during the open (which then
		// failed, and its store went with it) or after it.
		CHECK((r ? fault->short_reads() == 1 : c == Code::Corrupt));
		CHECK((c == Code::Corrupt || c == Code(0)));
	}
}

TEST_CASE("faults: added latency changes nothing but time", "[faults]")
{
	Fixture fx;
	auto r = fx.open(FaultPlan{0, 0, 0, std::chrono::milliseconds(1)});
	auto h = push(*r, {fx.d / "src"}, {});
	fx.verify(*r, h);
}

TEST_CASE("retry: transient failures are retried, final answers are not", "[faults][retry]")
{
	Fixture fx;
	{
		auto r = fx.open(FaultPlan{2, 0, 0, {}}, true);
		auto h = push(*r, {fx.d / "src"}, {});
		fx.verify(*r, h);
	}
	test::TempDir d;
	auto s = std::make_unique<FaultStore>(open_store(d / "x"), FaultPlan{});
	RetryStore rs(std::move(s), RetryPolicy{3, std::chrono::milliseconds(1)});
	CHECK(code_of([&] { rs.open(); }) == Code::NotFound);
	CHECK(rs.retries() == 0);
	// Space never comes back: the error surfaces after the last attempt.
	RetryStore full(std::make_unique<FaultStore>(open_store(fx.uri), FaultPlan{0, 1, 0, {}}),
	                RetryPolicy{3, std::chrono::milliseconds(1)});
	CHECK(code_of([&] { full.put(Kind::Lock, "00", as_bytes("xx")); }) == Code::Error);
	CHECK(full.retries() == 2);
}

namespace {
// A store that refuses to remove or replace (as a plakar:// store with an append token does).
class AppendOnly : public StoreWrapper {
public:
	using StoreWrapper::StoreWrapper;
	bool append_only() override { return true; }
};
// Each object's first put fails with an I/O error; the second goes through.
class FirstPutFails : public StoreWrapper {
public:
	using StoreWrapper::StoreWrapper;
	void put(Kind kind, const std::string &name, ByteView data) override
	{
		{
			std::lock_guard lk(mu_);
			if (tried_.insert(name).second)
				fail(Code::Error, name + ": injected I/O error");
		}
		StoreWrapper::put(kind, name, data);
	}

private:
	std::mutex mu_;
	std::set<std::string> tried_;
};
} // namespace

TEST_CASE("wrappers answer for the store they wrap, and count retries across threads", "[faults][retry]")
{
	test::TempDir d;
	open_store(d / "x")->create(as_bytes("C"), "", {});
	// append_only() (which keeps a client from merging index segments) goes through every layer.
	RetryStore wrapped(std::make_unique<FaultStore>(std::make_unique<AppendOnly>(open_store(d / "x")), FaultPlan{}));
	CHECK(wrapped.append_only());
	CHECK_FALSE(RetryStore(std::make_unique<FaultStore>(open_store(d / "x"), FaultPlan{})).append_only());
	CHECK(wrapped.location() == open_store(d / "x")->location());
	// Four threads, 50 puts each, each put failing once: 200 retries, none lost.
	RetryStore rs(std::make_unique<FirstPutFails>(open_store(d / "x")), RetryPolicy{3, std::chrono::milliseconds(0)});
	rs.open();
	std::vector<std::thread> ts;
	for (int t = 0; t < 4; t++)
		ts.emplace_back([&, t] {
			for (int i = 0; i < 50; i++)
				rs.put(Kind::Pack, hex_encode(as_bytes(std::to_string(t * 100 + i))), as_bytes("x"));
		});
	for (auto &t : ts)
		t.join();
	CHECK(rs.retries() == 200);
	CHECK(rs.list(Kind::Pack).size() == 200);
}

namespace {
// A tree of many small files and one of many chunks, pushed with small chunks (4 to 64 KiB).
struct PullFixture {
	test::TempDir d;
	std::string uri, snap;
	std::map<std::string, Bytes> files; // path under src -> content
	PullFixture()
	{
		uri = d / "repo";
		for (int i = 0; i < 300; i++) {
			std::string rel = "d" + std::to_string(i % 7) + "/f" + std::to_string(i);
			fs::create_directories(d / ("src/d" + std::to_string(i % 7)));
			files[rel] = test::random_data(500 + 37 * size_t(i), uint64_t(i));
		}
		files["big"] = test::random_data(3 << 20, 999);
		for (const auto &[rel, b] : files)
			test::write_file(d / ("src/" + rel), b);
		auto r = test::small_repo(uri);
		snap = push(*r, {d / "src"}, {}).id_string();
	}
	// Pulls src to `to` through a FaultStore; returns the get_range calls the pull made.
	int pull_through(FaultPlan plan, const std::string &to)
	{
		auto store = std::make_unique<FaultStore>(open_store(uri), plan);
		FaultStore *fault = store.get();
		OpenOptions oo;
		oo.use_cache = false;
		auto r = Repository::open(std::move(store), std::string("pw"), oo);
		auto h = load_snapshot(*r, resolve_snapshot(*r, snap));
		int before = fault->ranges();
		PullOptions po;
		po.to = to;
		po.rebase = true;
		pull(*r, h, d / "src", po);
		return fault->ranges() - before;
	}
	// How many files of `to` are missing or differ from what was pushed (none is allowed to
	// differ: a file that could not be restored must not be there).
	std::pair<int, int> compare(const std::string &to)
	{
		int missing = 0, wrong = 0;
		for (const auto &[rel, b] : files) {
			std::string p = to + "/src/" + rel;
			if (!fs::exists(p))
				missing++;
			else if (test::read_file(p) != b)
				wrong++;
		}
		return {missing, wrong};
	}
};
} // namespace

TEST_CASE("pull: the chunks of many small files are read in a few ranges", "[faults][pull]")
{
	PullFixture fx;
	int ranges = fx.pull_through({}, fx.d / "out");
	CHECK(fx.compare(fx.d / "out") == std::pair<int, int>{0, 0});
	// 300 small files and ~190 chunks of the large one: one range per chunk would be ~500.
	CHECK(ranges < 40);
}

TEST_CASE("pull: what a batched range cannot read is read chunk by chunk", "[faults][pull]")
{
	PullFixture fx;
	FaultPlan plan;
	plan.fail_range_over = 128 << 10; // every batched range fails; single chunks (<= 64 KiB) do not
	int ranges = fx.pull_through(plan, fx.d / "out");
	CHECK(fx.compare(fx.d / "out") == std::pair<int, int>{0, 0});
	CHECK(ranges > 400);
}

TEST_CASE("pull: a damaged blob in a batch fails its file only", "[faults][pull]")
{
	PullFixture fx;
	int damaged = 0;
	for (const auto &p : test::files_under(fx.uri + "/packs")) {
		Bytes b = test::read_file(p);
		if (b[5] != 1) // data packs only
			continue;
		b.at(b.size() / 3) ^= 0x20;
		test::write_file(p, b);
		damaged++;
	}
	REQUIRE(damaged >= 1);
	CHECK(code_of([&] { fx.pull_through({}, fx.d / "out"); }) == Code::Corrupt);
	auto [missing, wrong] = fx.compare(fx.d / "out");
	CHECK(wrong == 0);
	CHECK(missing >= 1);
	CHECK(missing <= damaged);
}
