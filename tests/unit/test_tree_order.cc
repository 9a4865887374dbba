// Directory nodes: names strictly increase, within a node and across the nodes of a directory,
// so a listing never yields one name twice and a lookup finds what a listing shows. Each forged
// node here is one a writer holding the key could store.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "base/error.h"
#include "helpers.h"
#include "repository/repository.h"
#include "snapshot/tree.h"

using namespace plakar;
using plakar::test::code_of;

namespace {
Entry named(const std::string &name)
{
	Entry e;
	e.name = name;
	e.type = EntryType::Symlink;
	e.mode = S_IFLNK | 0777;
	e.target = "/elsewhere";
	return e;
}

std::vector<std::string> listing(Repository &repo, const Id &tree)
{
	std::vector<std::string> out;
	DirIterator it(repo, tree);
	Entry e;
	while (it.next(e))
		out.push_back(e.name);
	return out;
}
} // namespace

TEST_CASE("directory nodes refuse duplicate and unsorted names", "[tree][trust]")
{
	test::TempDir d;
	auto repo = test::small_repo(d / "repo");
	Entry e;

	std::vector<Entry> good{named("a"), named("b"), named("c")};
	Id ok = store_leaf(*repo, good.data(), good.size());
	CHECK(listing(*repo, ok) == std::vector<std::string>{"a", "b", "c"});
	CHECK(find_in_directory(*repo, ok, "b", e));

	std::vector<Entry> dup{named("a"), named("d"), named("d")};
	Id bad = store_leaf(*repo, dup.data(), dup.size());
	CHECK(code_of([&] { listing(*repo, bad); }) == Code::Corrupt);
	CHECK(code_of([&] { find_in_directory(*repo, bad, "a", e); }) == Code::Corrupt);

	std::vector<Entry> unsorted{named("b"), named("a")};
	bad = store_leaf(*repo, unsorted.data(), unsorted.size());
	CHECK(code_of([&] { listing(*repo, bad); }) == Code::Corrupt);

	// inner nodes: children's first names strictly increase too
	Entry x = named("x"), y = named("y");
	Id lx = store_leaf(*repo, &x, 1), ly = store_leaf(*repo, &y, 1);
	CHECK(listing(*repo, store_levels(*repo, {{"x", lx}, {"y", ly}})) == std::vector<std::string>{"x", "y"});
	Id inner_dup = store_levels(*repo, {{"x", lx}, {"x", ly}});
	CHECK(code_of([&] { listing(*repo, inner_dup); }) == Code::Corrupt);
	Id inner_unsorted = store_levels(*repo, {{"y", ly}, {"x", lx}});
	CHECK(code_of([&] { listing(*repo, inner_unsorted); }) == Code::Corrupt);
}

TEST_CASE("names increase across the nodes of one directory", "[tree][trust]")
{
	test::TempDir d;
	auto repo = test::small_repo(d / "repo");
	Entry e;
	// Two leaves each sorted, but the first one runs past where the second starts: "d" would
	// be listed twice.
	std::vector<Entry> l1{named("a"), named("d")};
	Entry d2 = named("d");
	Id n1 = store_leaf(*repo, l1.data(), l1.size()), n2 = store_leaf(*repo, &d2, 1);
	Id overlapping = store_levels(*repo, {{"a", n1}, {"c", n2}});
	CHECK(code_of([&] { listing(*repo, overlapping); }) == Code::Corrupt);
	// A child whose first entry is not the name its parent gives: listing and lookup would
	// disagree.
	Entry z = named("z");
	Id nz = store_leaf(*repo, &z, 1);
	Id lying = store_levels(*repo, {{"a", n1}, {"m", nz}});
	CHECK(code_of([&] { listing(*repo, lying); }) == Code::Corrupt);
	CHECK(code_of([&] { find_in_directory(*repo, lying, "z", e); }) == Code::Corrupt);
	// An empty leaf below an inner node.
	Id empty = store_leaf(*repo, nullptr, 0);
	Id with_empty = store_levels(*repo, {{"a", n1}, {"q", empty}});
	CHECK(code_of([&] { listing(*repo, with_empty); }) == Code::Corrupt);
	// An empty directory on its own is fine.
	CHECK(listing(*repo, empty).empty());
	// What store_directory writes for a large directory passes all of these.
	std::vector<Entry> many;
	for (int i = 0; i < 5000; i++) {
		char name[16];
		std::snprintf(name, sizeof name, "f%05d", i);
		many.push_back(named(name));
	}
	Id big = store_directory(*repo, many);
	CHECK(listing(*repo, big).size() == 5000);
	CHECK(find_in_directory(*repo, big, "f04321", e));
}
