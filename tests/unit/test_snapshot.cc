#include <catch2/catch.hpp>

#include <set>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "base/error.h"
#include "helpers.h"
#include "repository/repository.h"
#include "snapshot/file_reader.h"
#include "snapshot/builder.h"
#include "snapshot/restore.h"
#include "snapshot/snapshot.h"

using namespace plakar;
using plakar::test::small_repo;
namespace fs = std::filesystem;

namespace {
Bytes cat(Repository &r, const SnapshotHeader &h, const std::string &path)
{
	FileReader f(r, lookup(r, h, path));
	Bytes out;
	uint8_t buf[7000];
	while (size_t n = f.read(buf, sizeof buf))
		out.insert(out.end(), buf, buf + n);
	return out;
}
} // namespace

TEST_CASE("push then read back through the filesystem view", "[snapshot]")
{
	test::TempDir d;
	fs::create_directories(d / "src/sub/deeper");
	Bytes big = test::random_data(1 << 20, 1); // ~64 chunks: stored as a chunk-list blob
	test::write_file(d / "src/big", big);
	test::write_file(d / "src/sub/small", as_bytes("hello"));
	test::write_file(d / "src/empty", {});
	::symlink("sub/small", (d / "src/link").c_str());
	auto repo = small_repo(d / "repo");
	auto h = push(*repo, {d / "src"}, {});
	CHECK(h.files == 3);
	CHECK(h.directories == 3);
	CHECK(h.size == big.size() + 5);
	CHECK(h.errors.empty());
	CHECK(h.paths == std::vector<std::string>{d / "src"});

	auto r = Repository::open(d / "repo", std::string("pw"));
	auto hs = list_snapshots(*r);
	REQUIRE(hs.size() == 1);
	CHECK(hs[0].id_string() == h.id_string());
	CHECK(resolve_snapshot(*r, h.id_string().substr(0, 4)) == h.id_string());
	CHECK(cat(*r, hs[0], d / "src/big") == big);
	{
		FileReader f(*r, lookup(*r, hs[0], d / "src/big"));
		uint8_t buf[100];
		for (uint64_t off : {uint64_t(0), uint64_t(500000), uint64_t(70000), uint64_t(big.size() - 50)}) {
			f.seek(off);
			size_t n = f.read(buf, sizeof buf);
			CHECK(n == std::min<size_t>(100, big.size() - off));
			CHECK(std::equal(buf, buf + n, big.begin() + long(off)));
		}
		f.seek(big.size());
		CHECK(f.read(buf, sizeof buf) == 0);
		CHECK_THROWS_AS(f.seek(big.size() + 1), Error);
	}
	CHECK(as_string(cat(*r, hs[0], d / "src/sub/small")) == "hello");
	CHECK(cat(*r, hs[0], d / "src/empty").empty());
	Entry l = lookup(*r, hs[0], d / "src/link");
	CHECK(l.type == EntryType::Symlink);
	CHECK(l.target == "sub/small");
	CHECK(lookup(*r, hs[0], "/").type == EntryType::Directory);
	try {
		lookup(*r, hs[0], d / "src/nope");
		FAIL("found a missing path");
	} catch (const Error &e) {
		CHECK(e.code() == Code::NotFound);
	}
	CHECK_THROWS_AS(lookup(*r, hs[0], d / "src/big/below"), Error);
}

TEST_CASE("large directories are split into bounded nodes and still looked up directly", "[snapshot]")
{
	test::TempDir d;
	fs::create_directories(d / "src");
	for (int i = 0; i < 5000; i++)
		test::write_file(d / ("src/f" + std::to_string(i)), as_bytes(std::to_string(i)));
	auto repo = small_repo(d / "repo");
	auto h = push(*repo, {d / "src"}, {});
	CHECK(h.files == 5000);
	for (int i : {0, 1, 2047, 2048, 4095, 4999})
		CHECK(as_string(cat(*repo, h, d / ("src/f" + std::to_string(i)))) == std::to_string(i));
	Entry dir = lookup(*repo, h, d / "src");
	size_t n = 0;
	std::string prev;
	for_each_entry(*repo, dir.tree, [&](Entry &e) {
		CHECK(e.name > prev);
		prev = e.name;
		n++;
		return true;
	});
	CHECK(n == 5000);
}

TEST_CASE("a second push of an unchanged tree stores no new blob", "[snapshot][dedup]")
{
	test::TempDir d;
	fs::create_directories(d / "src/a");
	test::write_file(d / "src/a/x", test::random_data(300000, 3));
	auto repo = small_repo(d / "repo");
	push(*repo, {d / "src"}, {});
	auto before = repo->stats().blobs_written;
	push(*repo, {d / "src"}, {});
	CHECK(repo->stats().blobs_written == before);
}

TEST_CASE("an unchanged file is not read again, a changed one is", "[snapshot][parent]")
{
	test::TempDir d;
	fs::create_directories(d / "src/sub");
	test::write_file(d / "src/a", test::random_data(100000, 1));
	test::write_file(d / "src/sub/b", as_bytes("bbb"));
	test::write_file(d / "src/sub/c", as_bytes("ccc"));
	auto repo = small_repo(d / "repo");
	PushStats st1, st2, st3, st4;
	push(*repo, {d / "src"}, {}, &st1);
	CHECK(st1.unchanged == 0);
	push(*repo, {d / "src"}, {}, &st2);
	CHECK(st2.unchanged == 3);
	test::write_file(d / "src/sub/b", as_bytes("BBB")); // same size, new content and ctime
	auto h3 = push(*repo, {d / "src"}, {}, &st3);
	CHECK(st3.unchanged == 2);
	CHECK(as_string(cat(*repo, h3, d / "src/sub/b")) == "BBB");
	CHECK(as_string(cat(*repo, h3, d / "src/sub/c")) == "ccc");
	// Another set of paths has no parent; so does a push that asks for none.
	push(*repo, {d / "src/sub"}, {}, &st4);
	CHECK(st4.unchanged == 0);
	PushOptions fresh;
	fresh.use_parent = false;
	PushStats st5;
	push(*repo, {d / "src"}, fresh, &st5);
	CHECK(st5.unchanged == 0);
}

TEST_CASE("a file vanishing during push is recorded, and the rest is committed", "[snapshot]")
{
	test::TempDir d;
	fs::create_directories(d / "src");
	test::write_file(d / "src/a", as_bytes("aaa"));
	test::write_file(d / "src/b", as_bytes("bbb"));
	test::write_file(d / "src/c", as_bytes("ccc"));
	auto repo = small_repo(d / "repo");
	PushOptions o;
	std::string a = d / "src/a", b = d / "src/b";
	o.progress = [&](const Event &ev) {
		if (ev.kind == EventKind::File && ev.path && *ev.path == a)
			fs::remove(b);
		return true;
	};
	auto h = push(*repo, {d / "src"}, o);
	REQUIRE(h.errors.size() == 1);
	CHECK(h.errors[0].first == b);
	CHECK(h.errors[0].second.find("vanished") != std::string::npos);
	CHECK(as_string(cat(*repo, h, d / "src/c")) == "ccc");
	CHECK(list_snapshots(*repo).size() == 1);
}

TEST_CASE("a canceled push commits no snapshot but keeps its packs indexed", "[snapshot]")
{
	test::TempDir d;
	fs::create_directories(d / "src");
	for (int i = 0; i < 8; i++)
		test::write_file(d / ("src/" + std::to_string(i)), test::random_data(1 << 20, uint64_t(i + 1)));
	auto repo = small_repo(d / "repo");
	PushOptions o;
	// Canceled once something was read: the work queued is dropped, what was stored is kept.
	o.progress = [&](const Event &ev) { return !(ev.kind == EventKind::Bytes && ev.counters.bytes > 0); };
	try {
		push(*repo, {d / "src"}, o);
		FAIL("not canceled");
	} catch (const Error &e) {
		CHECK(e.code() == Code::Canceled);
	}
	CHECK(list_snapshots(*repo).empty());
	auto written = repo->stats().blobs_written;
	CHECK(written > 0);
	auto again = Repository::open(d / "repo", std::string("pw"));
	push(*again, {d / "src"}, {});
	// Nothing stored before the cancel is stored again: every blob is indexed once, and the two
	// pushes wrote exactly those.
	std::set<Id> ids;
	uint64_t entries = 0;
	again->for_each_indexed([&](const Id &, const BlobRecord &r) {
		ids.insert(r.id);
		entries++;
	});
	CHECK(entries == ids.size());
	CHECK(written + again->stats().blobs_written == entries);
}

TEST_CASE("a path that does not exist fails the push before anything is written", "[snapshot]")
{
	test::TempDir d;
	auto repo = small_repo(d / "repo");
	try {
		push(*repo, {d / "missing"}, {});
		FAIL("pushed a missing path");
	} catch (const Error &e) {
		CHECK(e.code() == Code::NotFound);
	}
	CHECK(test::files_under(d / "repo/snapshots").empty());
	CHECK(test::files_under(d / "repo/index").empty());
}

TEST_CASE("pull restores content and metadata, with and without rebase", "[snapshot]")
{
	test::TempDir d;
	fs::create_directories(d / "src/dir");
	test::write_file(d / "src/dir/f", as_bytes("content"));
	::chmod((d / "src/dir/f").c_str(), 0640);
	struct timespec ts[2] = {{1600000000, 123456789}, {1600000000, 123456789}};
	::utimensat(AT_FDCWD, (d / "src/dir/f").c_str(), ts, 0);
	::link((d / "src/dir/f").c_str(), (d / "src/hard").c_str());
	auto repo = small_repo(d / "repo");
	auto h = push(*repo, {d / "src"}, {});

	PullOptions o;
	o.to = d / "out";
	pull(*repo, h, d / "src", o);
	std::string f = d / ("out" + d.path() + "/src/dir/f");
	CHECK(as_string(test::read_file(f)) == "content");
	struct stat st, st2;
	REQUIRE(::stat(f.c_str(), &st) == 0);
	CHECK((st.st_mode & 07777) == 0640);
	CHECK(st.st_mtim.tv_sec == 1600000000);
	CHECK(st.st_mtim.tv_nsec == 123456789);
	REQUIRE(::stat((d / ("out" + d.path() + "/src/hard")).c_str(), &st2) == 0);
	CHECK(st.st_ino == st2.st_ino);

	PullOptions rb;
	rb.to = d / "rebased";
	rb.rebase = true;
	pull(*repo, h, d / "src/dir", rb);
	CHECK(as_string(test::read_file(d / "rebased/dir/f")) == "content");

	// A target below a regular file cannot be created: one clear error, nothing written.
	PullOptions bad;
	bad.to = d / "src/dir/f/below";
	CHECK_THROWS_AS(pull(*repo, h, d / "src", bad), Error);
}

TEST_CASE("restore under a tight descriptor limit: directories are held open a bounded number at once",
          "[snapshot][restore]")
{
	test::TempDir d;
	auto repo = small_repo(d / "repo");
	// 300 directories, each with a small file: more than the 16 directories a limit of 64
	// descriptors leaves open at once.
	for (int i = 0; i < 300; i++) {
		std::string dir = d / ("src/d" + std::to_string(i));
		fs::create_directories(dir);
		test::write_file(dir + "/f", test::random_data(100, uint64_t(i)));
	}
	auto h = push(*repo, {d / "src"}, {});
	struct rlimit saved, tight;
	REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
	tight = saved;
	tight.rlim_cur = 64;
	REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
	PullOptions o;
	o.to = d / "out";
	o.rebase = true;
	Code c = test::code_of([&] { pull(*repo, h, d / "src", o); });
	REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
	CHECK(c == Code(0));
	for (int i = 0; i < 300; i += 37)
		CHECK(test::read_file(d / ("out/src/d" + std::to_string(i) + "/f")) == test::random_data(100, uint64_t(i)));
}
