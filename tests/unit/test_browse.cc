// The filesystem view beyond lookups: streaming directory iteration, diff, locate.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

#include "base/error.h"
#include "helpers.h"
#include "repository/repository.h"
#include "snapshot/builder.h"
#include "snapshot/diff.h"
#include "snapshot/locate.h"
#include "snapshot/snapshot.h"

using namespace plakar;
namespace fs = std::filesystem;

namespace {
std::unique_ptr<Repository> repo_in(const test::TempDir &d)
{
	CreateOptions o;
	o.passphrase = "pw";
	o.kdf.log2_n = 10;
	Repository::create(d / "repo", o);
	OpenOptions oo;
	oo.use_cache = false;
	return Repository::open(d / "repo", std::string("pw"), oo);
}
} // namespace

TEST_CASE("directory iteration streams every entry in order, across split nodes", "[browse]")
{
	test::TempDir d;
	fs::create_directories(d / "src/big");
	for (int i = 0; i < 4500; i++)
		test::write_file(d / ("src/big/n" + std::to_string(100000 + i)), {});
	auto r = repo_in(d);
	auto h = push(*r, {d / "src"}, {});
	Entry dir = lookup(*r, h, d / "src/big");
	DirIterator it(*r, dir.tree);
	Entry e;
	int n = 0;
	std::string prev;
	while (it.next(e)) {
		CHECK(e.name == "n" + std::to_string(100000 + n));
		CHECK(e.name > prev);
		prev = e.name;
		n++;
	}
	CHECK(n == 4500);
	CHECK_FALSE(it.next(e));
}

TEST_CASE("diff reports additions, removals and changes, and skips identical directories", "[browse]")
{
	test::TempDir d;
	fs::create_directories(d / "src/same/deep");
	fs::create_directories(d / "src/changes");
	test::write_file(d / "src/same/deep/f", as_bytes("unchanged"));
	test::write_file(d / "src/changes/edit", as_bytes("v1"));
	test::write_file(d / "src/changes/gone", as_bytes("bye"));
	auto r = repo_in(d);
	auto h1 = push(*r, {d / "src"}, {});
	test::write_file(d / "src/changes/edit", as_bytes("v2-longer"));
	fs::remove(d / "src/changes/gone");
	fs::create_directories(d / "src/changes/newdir/x");
	auto h2 = push(*r, {d / "src"}, {});

	// Reopen so no tree node is cached in memory, then count the nodes the diff reads.
	OpenOptions oo;
	oo.use_cache = false;
	auto r2 = Repository::open(d / "repo", std::string("pw"), oo);
	auto before = r2->stats().meta_fetched;
	std::map<std::string, Change> seen;
	std::vector<std::string> order;
	diff(*r2, h1.root, h2.root, "/", [&](const Change &c) {
		order.push_back(c.path);
		seen.emplace(c.path, c);
	});
	std::string base = d.path();
	REQUIRE(seen.count(base + "/src/changes/edit"));
	auto &edit = seen.at(base + "/src/changes/edit");
	CHECK(edit.kind == ChangeKind::Modified);
	CHECK((edit.what & kChangeContent));
	CHECK((edit.what & kChangeSize));
	CHECK(seen.at(base + "/src/changes/gone").kind == ChangeKind::Removed);
	CHECK(seen.at(base + "/src/changes/newdir").kind == ChangeKind::Added);
	CHECK_FALSE(seen.count(base + "/src/changes/newdir/x")); // one line for a new directory
	for (const auto &p : order)
		CHECK(p.find("/same") == std::string::npos);
	CHECK(std::is_sorted(order.begin(), order.end()));
	// The unchanged subtree /src/same was skipped by id: only the nodes on the changed path
	// (/, each ancestor, src, changes) were read on both sides.
	CHECK(r2->stats().meta_fetched - before <= 2 * (split_path(base).size() + 3));
	// A snapshot compared with itself: nothing, and nothing read.
	int n = 0;
	diff(*r2, h2.root, h2.root, "/", [&](const Change &) { n++; });
	CHECK(n == 0);
}

TEST_CASE("locate finds names and paths, and reads a shared directory once", "[browse]")
{
	test::TempDir d;
	fs::create_directories(d / "src/a/b");
	test::write_file(d / "src/a/b/target.txt", as_bytes("1"));
	test::write_file(d / "src/a/other.txt", as_bytes("2"));
	test::write_file(d / "src/target.txt", as_bytes("3"));
	auto r = repo_in(d);
	auto h1 = push(*r, {d / "src"}, {});
	auto h2 = push(*r, {d / "src"}, {});
	LocateMemo memo;
	std::vector<std::string> found;
	LocateQuery q{"target.*", false};
	auto before = r->stats().meta_fetched;
	locate(*r, h1, q, memo, [&](const std::string &p) { found.push_back(p); });
	auto reads_first = r->stats().meta_fetched - before;
	locate(*r, h2, q, memo, [&](const std::string &p) { found.push_back(p); });
	// The second snapshot shares src/ with the first: nothing below it is read again. Only its
	// ancestors may differ (tests running alongside change the temporary directory's parent).
	std::string base = d.path();
	CHECK(r->stats().meta_fetched - before <= reads_first + split_path(base).size() + 1);
	CHECK(reads_first > split_path(base).size() + 1);
	CHECK(found == std::vector<std::string>{base + "/src/a/b/target.txt", base + "/src/target.txt",
	                                        base + "/src/a/b/target.txt", base + "/src/target.txt"});
	LocateMemo m2;
	std::vector<std::string> paths;
	locate(*r, h1, LocateQuery{"*/a/*.txt", true}, m2, [&](const std::string &p) { paths.push_back(p); });
	CHECK(paths == std::vector<std::string>{base + "/src/a/b/target.txt", base + "/src/a/other.txt"});
}
