// rm and gc on real repositories: space really freed, repacking, two-phase deletion with a
// push running, resurrection of a pack a racing push reused, stale locks, one gc at a time,
// a failed write mid-gc, and a damaged snapshot stopping gc before it deletes anything.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <thread>

#include "base/error.h"
#include "helpers.h"
#include "repository/lock.h"
#include "repository/sealed.h"
#include "repository/repository.h"
#include "snapshot/file_reader.h"
#include "snapshot/builder.h"
#include "snapshot/check.h"
#include "snapshot/gc.h"
#include "snapshot/restore.h"
#include "snapshot/snapshot.h"
#include "storage/wrappers/fault_store.h"

using namespace plakar;
namespace fs = std::filesystem;

namespace {

struct Fixture : test::RepoFixture {
	Fixture() : RepoFixture(Options{true, 256 * 1024}) { fs::create_directories(d / "src"); }
	// With the local cache, as a user's handle.
	std::unique_ptr<Repository> open() const { return RepoFixture::open(true); }
	std::string push_src()
	{
		auto r = open();
		return push(*r, {d / "src"}, {}).id_string();
	}
	// Adds src/name (size random bytes from seed) and pushes src.
	std::string add_and_push(const std::string &name, size_t size, uint64_t seed)
	{
		test::write_file(d / ("src/" + name), test::random_data(size, seed));
		return push_src();
	}
	uint64_t repo_bytes()
	{
		uint64_t n = 0;
		for (const char *k : {"packs", "index", "snapshots", "locks"})
			for (const auto &f : test::files_under(uri + "/" + k))
				n += fs::file_size(f);
		return n;
	}
	size_t count(const char *kind) { return test::files_under(uri + "/" + kind).size(); }
	Bytes read(const std::string &snap, const std::string &path) const { return read_back(snap, path); }
	bool check_ok(std::vector<std::string> snaps = {})
	{
		auto r = open();
		CheckOptions o;
		o.snapshots = std::move(snaps);
		auto rep = check(*r, o);
		for (const auto &p : rep.problems)
			UNSCOPED_INFO(p.object + ": " + p.message);
		return rep.ok();
	}
	GcReport gc(double repack = 0.5)
	{
		auto r = open();
		GcOptions o;
		o.repack_below = repack;
		return collect_garbage(*r, o);
	}
};

} // namespace

TEST_CASE("gc: removing every snapshot brings the repository back to its empty size", "[gc]")
{
	Fixture f;
	uint64_t empty = f.repo_bytes();
	test::write_file(f.d / "src/a", test::random_data(600000, 1));
	test::write_file(f.d / "src/b", test::random_data(300000, 2));
	std::string s1 = f.push_src();
	test::write_file(f.d / "src/c", test::random_data(200000, 3));
	std::string s2 = f.push_src();
	CHECK(f.repo_bytes() > empty + 1000000);
	{
		auto r = f.open();
		CHECK(remove_snapshots(*r, {s1.substr(0, 8), s2}).size() == 2);
	}
	auto rep = f.gc();
	CHECK(rep.packs_pending == 0);
	CHECK(rep.packs_after == 0);
	CHECK(rep.bytes_freed > 1000000);
	CHECK(rep.segments_after == 1);
	CHECK(f.count("packs") == 0);
	CHECK(f.count("locks") == 0);
	CHECK(f.repo_bytes() <= empty + 4096);
	CHECK(f.check_ok());
	// And the repository works on: a new push, restored.
	std::string s3 = f.push_src();
	CHECK(f.read(s3, f.d / "src/c") == test::random_data(200000, 3));
}

TEST_CASE("gc: what the remaining snapshots use stays, and the rest goes", "[gc]")
{
	Fixture f;
	test::write_file(f.d / "src/keep", test::random_data(400000, 1));
	std::string s1 = f.push_src();
	test::write_file(f.d / "src/gone", test::random_data(500000, 2));
	std::string s2 = f.push_src();
	fs::remove(f.d / "src/gone");
	std::string s3 = f.push_src();
	uint64_t before = f.repo_bytes();
	{
		auto r = f.open();
		CHECK(test::code_of([&] { remove_snapshots(*r, {s2, "ffffffff"}); }) == Code::NotFound);
		CHECK(r->list_snapshots().size() == 3); // nothing removed when one id is unknown
		remove_snapshots(*r, {s2});
	}
	auto rep = f.gc();
	CHECK(rep.packs_deleted >= 1);
	CHECK(f.repo_bytes() < before - 400000);
	CHECK(f.read(s1, f.d / "src/keep") == test::random_data(400000, 1));
	CHECK(f.read(s3, f.d / "src/keep") == test::random_data(400000, 1));
	CHECK(f.check_ok({s1, s3}));
	CHECK(f.check_ok());
	// A second gc finds nothing more to do.
	auto again = f.gc();
	CHECK(again.packs_deleted == 0);
	CHECK(again.packs_repacked == 0);
}

TEST_CASE("gc: a pack mostly dead is repacked", "[gc]")
{
	Fixture f;
	// Both files in one data pack (256 KiB target, small files).
	test::write_file(f.d / "src/small", test::random_data(20000, 1));
	test::write_file(f.d / "src/large", test::random_data(150000, 2));
	std::string s1 = f.push_src();
	fs::remove(f.d / "src/large");
	std::string s2 = f.push_src();
	{
		auto r = f.open();
		remove_snapshots(*r, {s1});
	}
	SECTION("repacked")
	{
		auto rep = f.gc();
		CHECK(rep.packs_repacked >= 1);
		CHECK(rep.blobs_repacked >= 1);
		CHECK(rep.bytes_freed > 150000);
		CHECK(f.read(s2, f.d / "src/small") == test::random_data(20000, 1));
		CHECK(f.check_ok({s2}));
		CHECK(f.check_ok());
	}
	SECTION("repacking off: the pack stays")
	{
		auto rep = f.gc(0);
		CHECK(rep.packs_repacked == 0);
		CHECK(f.read(s2, f.d / "src/small") == test::random_data(20000, 1));
		CHECK(f.check_ok());
	}
	SECTION("a dry run changes nothing")
	{
		uint64_t before = f.repo_bytes();
		auto r = f.open();
		GcOptions o;
		o.dry_run = true;
		auto rep = collect_garbage(*r, o);
		CHECK(rep.dry_run);
		CHECK(rep.packs_repacked >= 1);
		CHECK(f.repo_bytes() == before);
	}
}

TEST_CASE("gc: with a push running, condemned packs wait for the next gc", "[gc]")
{
	Fixture f;
	test::write_file(f.d / "src/a", test::random_data(300000, 1));
	std::string s1 = f.push_src();
	{
		auto r = f.open();
		remove_snapshots(*r, {s1});
	}
	auto pusher = f.open();
	{
		auto running = RepoLock::acquire(*pusher, LockType::Shared);
		auto rep = f.gc();
		CHECK(rep.packs_deleted == 0);
		CHECK(rep.packs_pending >= 1);
		CHECK(f.count("packs") >= 1);
		// Still running at the next gc: still waiting.
		auto again = f.gc();
		CHECK(again.packs_deleted == 0);
		CHECK(again.packs_pending >= 1);
	}
	auto rep = f.gc();
	CHECK(rep.packs_deleted >= 1);
	CHECK(rep.packs_pending == 0);
	CHECK(f.count("packs") == 0);
	CHECK(f.count("locks") == 0); // the plan is gone with its packs
	CHECK(f.check_ok());
}

TEST_CASE("gc: a pack condemned while a push reused it is kept and indexed again", "[gc]")
{
	Fixture f;
	Bytes content = test::random_data(100000, 7);
	test::write_file(f.d / "src/x", content);
	std::string s1 = f.push_src();
	Entry old = [&] {
		auto r = f.open();
		return lookup(*r, load_snapshot(*r, resolve_snapshot(*r, s1)), f.d / "src/x");
	}();
	{
		auto r = f.open();
		remove_snapshots(*r, {s1});
	}
	// A push that started before gc: it holds its lock and has loaded the index (which still
	// names x's chunks), so it reuses them without storing them again.
	auto pusher = f.open();
	auto lock = RepoLock::acquire(*pusher, LockType::Shared);
	REQUIRE(pusher->has_blob(old.chunks.at(0).id));
	auto rep = f.gc();
	CHECK(rep.packs_pending >= 1);
	// The push commits a snapshot referencing those chunks, then ends.
	Entry e = old;
	e.name = "x";
	Entry root;
	root.name = "/";
	root.type = EntryType::Directory;
	root.mode = 040755;
	root.has_tree = true;
	root.tree = store_directory(*pusher, {e});
	SnapshotHeader h;
	h.id = new_snapshot_id();
	h.root = root;
	h.paths = {"/"};
	pusher->flush();
	store_snapshot(*pusher, h);
	lock.reset();
	// Before the next gc, check is clean: the chunks are in a pack a gc plan condemned, which
	// the next gc keeps (no false alarm for a healthy repository).
	CHECK(f.check_ok());
	// The next gc sees it: the pack is kept and indexed again, not deleted.
	auto next = f.gc();
	CHECK(next.packs_resurrected >= 1);
	CHECK(f.read(h.id_string(), "/x") == content);
	CHECK(f.check_ok());
}

TEST_CASE("gc: what a reader may still read waits for it, even from a removed snapshot", "[gc]")
{
	Fixture f;
	Bytes content = test::random_data(300000, 3);
	test::write_file(f.d / "src/a", content);
	std::string s1 = f.push_src();
	auto reader = f.open();
	auto reading = protect_reads(*reader);
	REQUIRE(reading);
	SnapshotHeader h = load_snapshot(*reader, resolve_snapshot(*reader, s1));
	{
		auto r = f.open();
		remove_snapshots(*r, {s1});
	}
	auto rep = f.gc();
	CHECK(rep.packs_deleted == 0);
	CHECK(rep.packs_pending >= 1);
	CHECK(rep.readers_running == 1);
	CHECK(rep.pushes_running == 0);
	// The reader, whose index was loaded before or after the gc, reads it all.
	Entry e = lookup(*reader, h, f.d / "src/a");
	Bytes got;
	for (const auto &c : file_chunks(*reader, e)) {
		Bytes b = reader->get_blob(c.id, BlobType::Chunk);
		got.insert(got.end(), b.begin(), b.end());
	}
	CHECK(got == content);
	// A second reader of the handle shares the lock.
	CHECK(protect_reads(*reader) == reading);
	reading.reset();
	auto after = f.gc();
	CHECK(after.packs_deleted >= 1);
	CHECK(after.readers_running == 0);
	CHECK(f.count("packs") == 0);
	CHECK(f.count("locks") == 0);
}

TEST_CASE("gc: superseded index segments wait for readers and pushes, like packs", "[gc]")
{
	Fixture f;
	std::vector<std::string> snaps;
	for (int i = 0; i < 9; i++)
		snaps.push_back(f.add_and_push("f" + std::to_string(i), 3000, uint64_t(i)));
	size_t superseded = 0;
	{
		auto r = f.open();
		r->reload_index();
		superseded = r->superseded_segments().size();
	}
	REQUIRE(superseded >= 8); // the ninth push's segment filled tier 0: a merge superseded eight
	size_t files = f.count("index");
	// A reader that may have listed them before their successor existed.
	auto reader = f.open();
	auto reading = protect_reads(*reader);
	REQUIRE(reading);
	auto rep = f.gc(0);
	CHECK(rep.segments_deleted == 0);
	CHECK(rep.segments_pending >= superseded);
	CHECK(rep.readers_running == 1);
	CHECK(f.count("index") >= files);
	for (int i = 0; i < 9; i++)
		CHECK(f.read(snaps.back(), f.d / ("src/f" + std::to_string(i))) == test::random_data(3000, uint64_t(i)));
	reading.reset();
	reader.reset();
	auto after = f.gc(0);
	CHECK(after.segments_deleted >= superseded);
	CHECK(after.segments_pending == 0);
	{
		auto r = f.open();
		r->reload_index();
		CHECK(r->superseded_segments().empty());
		CHECK(f.count("index") == r->live_segments().size());
	}
	CHECK(f.check_ok());
	for (int i = 0; i < 9; i++)
		CHECK(f.read(snaps[size_t(i)], f.d / ("src/f" + std::to_string(i))) == test::random_data(3000, uint64_t(i)));
}

TEST_CASE("gc: copies of the same blobs from concurrent pushes are freed by the first gc", "[gc]")
{
	Fixture f;
	Bytes content = test::random_data(3 << 20, 5);
	test::write_file(f.d / "src/a", content);
	// Three pushes at once: none sees what the others store before it is indexed, so each
	// stores (nearly) every chunk.
	std::vector<std::string> ids(3);
	{
		std::vector<std::thread> pushes;
		for (int i = 0; i < 3; i++)
			pushes.emplace_back([&, i] { ids[size_t(i)] = f.push_src(); });
		for (auto &t : pushes)
			t.join();
	}
	uint64_t three = f.repo_bytes();
	REQUIRE(three > 2 * content.size()); // the copies this test is about
	auto rep = f.gc();
	CHECK(rep.packs_pending == 0);
	CHECK(rep.packs_deleted >= 2);
	CHECK(f.repo_bytes() < content.size() * 13 / 10);
	auto again = f.gc();
	CHECK(again.packs_deleted == 0);
	CHECK(again.packs_repacked == 0);
	for (const auto &id : ids)
		CHECK(f.read(id, f.d / "src/a") == content);
	CHECK(f.check_ok());
}

TEST_CASE("gc: small packs of many small pushes are merged, the pack count follows the data", "[gc]")
{
	Fixture f; // packs of 256 KiB: small under 64 KiB
	std::vector<std::string> ids;
	for (int i = 0; i < 24; i++)
		ids.push_back(f.add_and_push("f" + std::to_string(i), 3000, uint64_t(100 + i)));
	size_t before = f.count("packs");
	REQUIRE(before >= 24); // each push ends with its own partial packs
	auto rep = f.gc();
	CHECK(rep.packs_merged >= 24);
	CHECK(rep.packs_repacked >= rep.packs_merged);
	CHECK(rep.packs_pending == 0);
	CHECK(f.count("packs") <= 3); // about 100 KB of data and metadata: a pack or two
	for (int i = 0; i < 24; i++)
		CHECK(f.read(ids.back(), f.d / ("src/f" + std::to_string(i))) == test::random_data(3000, uint64_t(100 + i)));
	CHECK(f.read(ids.front(), f.d / "src/f0") == test::random_data(3000, 100));
	CHECK(f.check_ok());
	// Fewer than kSmallPacksToMerge small packs: left alone (no churn at every gc).
	for (int i = 0; i < 3; i++)
		f.add_and_push("g" + std::to_string(i), 3000, uint64_t(200 + i));
	auto again = f.gc();
	CHECK(again.packs_merged == 0);
	CHECK(again.packs_repacked == 0);
	// -repack 0 never repacks, small packs included.
	for (int i = 0; i < 10; i++)
		f.add_and_push("h" + std::to_string(i), 3000, uint64_t(300 + i));
	CHECK(f.gc(0).packs_merged == 0);
	CHECK(f.gc().packs_merged >= 8);
	CHECK(f.check_ok());
}

TEST_CASE("gc: stale locks of dead processes are removed and do not hold gc back", "[gc]")
{
	Fixture f;
	test::write_file(f.d / "src/a", test::random_data(100000, 1));
	std::string s1 = f.push_src();
	{
		auto r = f.open();
		remove_snapshots(*r, {s1});
	}
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		auto r = f.open();
		auto l = RepoLock::acquire(*r, LockType::Shared);
		_exit(0); // killed, in effect: the lock is never released
	}
	int st = 0;
	waitpid(pid, &st, 0);
	REQUIRE(f.count("locks") == 1);
	auto locks = [&] {
		auto r = f.open();
		return list_locks(*r);
	}();
	REQUIRE(locks.size() == 1);
	CHECK(locks[0].stale);
	auto rep = f.gc();
	CHECK(rep.stale_locks_removed == 1);
	CHECK(rep.packs_pending == 0);
	CHECK(rep.packs_deleted >= 1);
	CHECK(f.count("locks") == 0);
}

TEST_CASE("gc: one at a time", "[gc]")
{
	Fixture f;
	auto other = f.open();
	auto l = RepoLock::acquire(*other, LockType::Exclusive);
	CHECK(test::code_of([&] { f.gc(); }) == Code::Locked);
	l.reset();
	f.gc();
}

TEST_CASE("gc: a write failing midway loses nothing", "[gc]")
{
	Fixture f;
	test::write_file(f.d / "src/small", test::random_data(20000, 1));
	test::write_file(f.d / "src/large", test::random_data(150000, 2));
	std::string s1 = f.push_src();
	fs::remove(f.d / "src/large");
	std::string s2 = f.push_src();
	{
		auto r = f.open();
		remove_snapshots(*r, {s1});
	}
	for (int n = 1; n <= 6; n++) {
		FaultPlan plan;
		plan.fail_put_at = n;
		OpenOptions o;
		o.use_cache = false;
		auto r = Repository::open(std::make_unique<FaultStore>(open_store(f.uri), plan), std::string("pw"), o);
		GcOptions go;
		try {
			collect_garbage(*r, go);
		} catch (const Error &) {
		}
		r.reset();
		INFO("put " << n << " failed");
		CHECK(f.read(s2, f.d / "src/small") == test::random_data(20000, 1));
		CHECK(f.check_ok({s2}));
	}
	CHECK(f.check_ok());
	f.gc();
	CHECK(f.check_ok());
	CHECK(f.read(s2, f.d / "src/small") == test::random_data(20000, 1));
}

TEST_CASE("gc: out of space midway loses nothing", "[gc]")
{
	Fixture f;
	test::write_file(f.d / "src/small", test::random_data(20000, 1));
	test::write_file(f.d / "src/large", test::random_data(150000, 2));
	std::string s1 = f.push_src();
	std::filesystem::remove(f.d / "src/large");
	std::string s2 = f.push_src();
	{
		auto r = f.open();
		remove_snapshots(*r, {s1});
	}
	// Out of space once the lock is written: the repack's pack does not fit.
	for (uint64_t space : {1ull, 2000ull, 15000ull}) {
		FaultPlan plan;
		plan.space_bytes = space;
		OpenOptions o;
		o.use_cache = false;
		auto r = Repository::open(std::make_unique<FaultStore>(open_store(f.uri), plan), std::string("pw"), o);
		std::string msg;
		try {
			collect_garbage(*r, GcOptions{});
		} catch (const Error &e) {
			msg = e.what();
		}
		INFO("space " << space);
		CHECK(msg.find("No space left on device") != std::string::npos);
		r.reset();
		CHECK(f.read(s2, f.d / "src/small") == test::random_data(20000, 1));
		CHECK(f.check_ok({s2}));
	}
	auto rep = f.gc();
	CHECK(rep.packs_repacked >= 1);
	CHECK(f.check_ok());
}

TEST_CASE("gc: a snapshot that cannot be read stops it before anything is deleted", "[gc]")
{
	Fixture f;
	f.add_and_push("a", 100000, 1);
	f.add_and_push("b", 100000, 2);
	auto snaps = test::files_under(f.uri + "/snapshots");
	Bytes b = test::read_file(snaps[0]);
	b[b.size() / 2] ^= 1;
	test::write_file(snaps[0], b);
	size_t packs = f.count("packs");
	// Without the local cache, which would still hold the header as it was written.
	OpenOptions no_cache;
	no_cache.use_cache = false;
	auto r = Repository::open(f.uri, std::string("pw"), no_cache);
	GcOptions o;
	CHECK(test::code_of([&] { collect_garbage(*r, o); }) == Code::Corrupt);
	CHECK(f.count("packs") == packs);
}

TEST_CASE("gc: a snapshot removed while gc walks the others is not an error", "[gc]")
{
	Fixture f;
	std::vector<std::string> names = {f.add_and_push("a", 100000, 1), f.add_and_push("b", 100000, 2)};
	std::sort(names.begin(), names.end());
	OpenOptions no_cache;
	no_cache.use_cache = false;
	auto r = Repository::open(f.uri, std::string("pw"), no_cache);
	GcOptions o;
	bool removed = false;
	o.progress = [&](const std::string &stage, uint64_t, uint64_t) {
		if (stage == "walking snapshots" && !removed) {
			// `rm -no-gc` from another process, between gc's listing and its reading.
			auto other = f.open();
			remove_snapshots(*other, {names[1]});
			removed = true;
		}
		return true;
	};
	GcReport rep = collect_garbage(*r, o);
	CHECK(removed);
	CHECK(rep.snapshots == 1);
	CHECK(f.check_ok());
	Bytes a = f.read(names[0], f.d / "src/a");
	CHECK(a == test::random_data(100000, 1));
	// A snapshot still listed but unreadable stops gc, as before (the test above).
}

TEST_CASE("gc: a lock is stale when watched unrefreshed, whatever the clocks of hosts say", "[gc][trust]")
{
	Fixture f;
	test::write_file(f.d / "src/a", test::random_data(100000, 1));
	std::string s1 = f.push_src();
	{
		auto r = f.open();
		remove_snapshots(*r, {s1});
	}
	auto now_ns = [] {
		return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
		    .count();
	};
	const int64_t minute = int64_t(60) * 1000000000;
	// Locks of other hosts, dated by their own clocks: one a year ahead (what a writer holding
	// the key could forge to stop gc), one 20 minutes behind (a push on a host whose clock is
	// late: alive), and one with this host's name and a pid that does not exist here but of
	// another boot (a container, a clone: its pid says nothing here).
	HostIdentity other;
	other.boot_id.fill(0x5a);
	other.pid_ns = 1;
	auto forge = [&](char c, LockType type, const std::string &host, int64_t refreshed) {
		std::string name(32, c);
		auto r = f.open();
		r->put_sealed(Kind::Lock, ObjectKind::Lock, name,
		              encode_lock(type, host, 999999, refreshed, refreshed, other));
		return name;
	};
	char buf[256] = {};
	::gethostname(buf, sizeof buf - 1);
	std::string ahead = forge('a', LockType::Exclusive, "elsewhere", now_ns() + 365 * 24 * 60 * minute);
	std::string behind = forge('b', LockType::Shared, "late-clock", now_ns() - 20 * minute);
	std::string namesake = forge('c', LockType::Shared, buf, now_ns());
	auto judged = [&] {
		auto r = f.open();
		std::map<std::string, bool> out;
		for (const auto &l : list_locks(*r))
			out[l.name] = l.stale;
		return out;
	};
	// Seen for the first time: none is stale, whatever its date.
	auto first = judged();
	CHECK(first == std::map<std::string, bool>{{ahead, false}, {behind, false}, {namesake, false}});
	// The exclusive one holds gc back for now; the gc that backs off records what it saw.
	CHECK(test::code_of([&] { f.gc(); }) == Code::Locked);
	CHECK(f.count("packs") >= 1);
	// Pretend that was 11 minutes ago, and that the late host refreshed its lock since.
	{
		auto r = f.open();
		LockWatch w;
		list_locks(*r, &w);
		REQUIRE(w.seen.size() == 3);
		for (auto &[name, seen] : w.seen)
			seen.since_ns -= 11 * minute;
		save_lock_watch(*r, w);
		r->put_sealed(Kind::Lock, ObjectKind::Lock, behind,
		              encode_lock(LockType::Shared, "late-clock", 999999, 0, now_ns() - 19 * minute, other));
	}
	auto later = judged();
	CHECK(later == std::map<std::string, bool>{{ahead, true}, {behind, false}, {namesake, true}});
	// gc removes the two stale ones; the live one still keeps what it may reuse.
	auto rep = f.gc();
	CHECK(rep.packs_deleted == 0);
	CHECK(rep.packs_pending >= 1);
	CHECK(rep.stale_locks_removed == 2);
	CHECK(rep.pushes_running == 1);
	CHECK(judged() == std::map<std::string, bool>{{behind, false}});
	// Its holder gone (no refresh), it goes stale in turn; then nothing is left in locks/.
	{
		auto r = f.open();
		LockWatch w;
		list_locks(*r, &w);
		w.seen.at(behind).since_ns -= 11 * minute;
		save_lock_watch(*r, w);
	}
	rep = f.gc();
	CHECK(rep.stale_locks_removed == 1);
	CHECK(rep.packs_deleted >= 1);
	CHECK(rep.packs_pending == 0);
	CHECK(f.count("locks") == 0);
	CHECK(f.count("packs") == 0);
}
