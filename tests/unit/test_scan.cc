// The walker's read-ahead on its own (snapshot/builder_internal.h, DirScanner): the listings
// it hands over, in the walker's order; a directory too large for it left to the walker with
// its subtree; the walk out of step. Then push itself with and without it: the same trees.
#include <catch2/catch.hpp>

#include <filesystem>

#include "helpers.h"
#include "snapshot/builder.h"
#include "snapshot/builder_internal.h"
#include "snapshot/file_reader.h"
#include "snapshot/snapshot.h"

using namespace plakar;
using namespace plakar::build;
namespace fs = std::filesystem;

namespace {

// The read-ahead's limit in these tests: a directory of more names is the walker's.
constexpr size_t kMax = 100;

// a/{x, b/{y}, big/{kMax + 1 files, inner/{z}}, c/{w}}, skip.tmp, top
void make_tree(const std::string &root, size_t big = kMax + 1)
{
	fs::create_directories(root + "/a/b");
	fs::create_directories(root + "/a/big/inner");
	fs::create_directories(root + "/a/c");
	test::write_file(root + "/a/x", as_bytes("x"));
	test::write_file(root + "/a/b/y", as_bytes("y"));
	test::write_file(root + "/a/big/inner/z", as_bytes("z"));
	test::write_file(root + "/a/c/w", as_bytes("w"));
	test::write_file(root + "/skip.tmp", as_bytes("s"));
	test::write_file(root + "/top", as_bytes("t"));
	for (size_t i = 0; i < big; i++)
		test::write_file(root + "/a/big/f" + std::to_string(i), {});
}

bool no_tmp(const std::string &, const std::string &name) { return name.ends_with(".tmp"); }

} // namespace

TEST_CASE("read-ahead: listings in the walker's order; a large directory and its subtree left to the walker",
          "[scan]")
{
	test::TempDir d;
	std::string root = d / "t";
	make_tree(root);
	DirScanner scan(root, no_tmp, kMax);
	auto l = scan.next(root);
	REQUIRE(l);
	CHECK(l->names == std::vector<std::string>{"a", "top"}); // skip.tmp excluded, never stat'ed
	CHECK(l->st.size() == 2);
	CHECK(S_ISDIR(l->st[0].st_mode));
	auto a = scan.next(root + "/a");
	REQUIRE(a);
	CHECK(a->names == std::vector<std::string>{"b", "big", "c", "x"});
	auto b = scan.next(root + "/a/b");
	REQUIRE(b);
	CHECK(b->names == std::vector<std::string>{"y"});
	auto big = scan.next(root + "/a/big");
	REQUIRE(big);
	CHECK(big->walker_lists);
	CHECK(big->names.empty());
	// a/big/inner is the walker's: the next listing is a/c.
	auto c = scan.next(root + "/a/c");
	REQUIRE(c);
	CHECK(c->names == std::vector<std::string>{"w"});
	CHECK(!scan.next(root + "/nothing")); // the end
}

TEST_CASE("read-ahead: out of step, it says so; stopped early, it stops", "[scan]")
{
	test::TempDir d;
	std::string root = d / "t";
	make_tree(root, 10);
	{
		DirScanner scan(root, no_tmp);
		REQUIRE(scan.next(root));
		CHECK(!scan.next(root + "/a/b")); // the walker went elsewhere
	}
	{
		DirScanner scan(root, no_tmp); // destroyed while reading ahead
	}
	auto l = list_directory(root + "/missing", no_tmp, true);
	CHECK(l.error == ENOENT);
	auto big = list_directory(root + "/a/big", no_tmp, true, 5);
	CHECK(big.walker_lists);
	// Listed by the walker: names only, each stat taken when asked.
	auto a = list_directory(root + "/a", no_tmp, false);
	REQUIRE(a.names.size() == 4);
	CHECK(a.st.empty());
	struct stat st;
	CHECK(a.stat(3, st) == 0);
	CHECK(S_ISREG(st.st_mode));
	fs::remove(root + "/a/x");
	CHECK(a.stat(3, st) == ENOENT);
}

TEST_CASE("read-ahead: push builds the same tree with it (two cores) and without it", "[scan][snapshot]")
{
	test::RepoFixture f;
	std::string root = f.d / "t";
	make_tree(root);
	PushOptions o;
	o.exclude_patterns = {"*.tmp"};
	o.read_ahead_max_names = kMax;
	auto open_cpu = [&](unsigned cpu) {
		OpenOptions oo;
		oo.use_cache = false;
		oo.cpu = cpu;
		return Repository::open(f.uri, std::optional<std::string>("pw"), oo);
	};
	auto one = open_cpu(1);
	auto h1 = push(*one, {root}, o);
	one.reset();
	auto two = open_cpu(2);
	REQUIRE(two->cpu() >= 1);
	PushOptions fresh = o;
	fresh.use_parent = false; // everything read again
	auto h2 = push(*two, {root}, fresh);
	auto h3 = push(*two, {root}, o); // and compared with the parent
	CHECK(h1.files == h2.files);
	CHECK(h1.directories == h2.directories);
	CHECK(h2.errors.empty());
	// The pushed directory's tree (its parents' metadata may change meanwhile: /tmp).
	Entry t1 = lookup(*two, h1, root), t2 = lookup(*two, h2, root), t3 = lookup(*two, h3, root);
	CHECK(t1.tree == t2.tree);
	CHECK(t1.tree == t3.tree);
	CHECK(h1.files == kMax + 1 + 5);
}
