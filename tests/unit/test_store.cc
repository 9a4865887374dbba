// The Store contract (storage/store.h), run against the filesystem store.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>

#include "base/error.h"
#include "helpers.h"
#include "storage/store.h"

using namespace plakar;
using plakar::test::code_of;

namespace {
} // namespace

TEST_CASE("store URIs", "[store]")
{
	CHECK(open_store("/tmp/x")->location() == "/tmp/x");
	CHECK(open_store("fs:///tmp/x/")->location() == "/tmp/x");
	CHECK(code_of([] { open_store("relative/path"); }) == Code::Invalid);
	CHECK(code_of([] { open_store("nosuch://x"); }) == Code::Invalid);
	CHECK(code_of([] { open_store("fs://relative"); }) == Code::Invalid);
	CHECK(code_of([] { open_store(""); }) == Code::Invalid);
}

TEST_CASE("filesystem store: create, open, put, get, list, remove", "[store]")
{
	test::TempDir d;
	auto s = open_store(d / "repo");
	CHECK(code_of([&] { s->open(); }) == Code::NotFound);
	s->create(as_bytes("config-bytes"), "00aa", as_bytes("key"));
	CHECK(as_string(s->open()) == "config-bytes");
	CHECK(code_of([&] { s->create(as_bytes("again"), "", {}); }) == Code::Exists);
	CHECK(s->list(Kind::Key) == std::vector<std::string>{"00aa"});

	std::string name(64, 'b');
	Bytes data = test::random_data(10000, 1);
	s->put(Kind::Pack, name, data);
	CHECK(s->get(Kind::Pack, name) == data);
	Bytes part = s->get_range(Kind::Pack, name, 100, 50);
	CHECK(part == Bytes(data.begin() + 100, data.begin() + 150));
	CHECK(code_of([&] { s->get_range(Kind::Pack, name, 9990, 50); }) == Code::Corrupt);
	CHECK(code_of([&] { s->get(Kind::Pack, std::string(64, 'c')); }) == Code::NotFound);
	CHECK(s->list(Kind::Pack) == std::vector<std::string>{name});
	CHECK(test::files_under(d / "repo/packs/bb").size() == 1);

	// Replacing is atomic and leaves no temporary file behind.
	s->put(Kind::Pack, name, as_bytes("new"));
	CHECK(as_string(s->get(Kind::Pack, name)) == "new");
	CHECK(test::files_under(d / "repo/tmp").empty());

	s->remove(Kind::Pack, name);
	s->remove(Kind::Pack, name); // missing is fine
	CHECK(s->list(Kind::Pack).empty());
	CHECK(code_of([&] { s->put(Kind::Index, "../escape", as_bytes("x")); }) == Code::Invalid);
}

TEST_CASE("filesystem store refuses to create over something else", "[store]")
{
	test::TempDir d;
	test::write_file(d / "file", as_bytes("x"));
	CHECK(code_of([&] { open_store(d / "file")->create(as_bytes("c"), "", {}); }) == Code::Exists);
	::mkdir((d / "nonempty").c_str(), 0700);
	test::write_file(d / "nonempty/x", as_bytes("x"));
	CHECK(code_of([&] { open_store(d / "nonempty")->create(as_bytes("c"), "", {}); }) == Code::Exists);
	CHECK(code_of([&] { open_store(d / "nonempty")->open(); }) == Code::NotFound);
	// Missing parent directories are created.
	open_store(d / "a/b/repo")->create(as_bytes("c"), "", {});
	CHECK(as_string(open_store(d / "a/b/repo")->open()) == "c");
	// An empty existing directory is fine.
	::mkdir((d / "empty").c_str(), 0700);
	open_store(d / "empty")->create(as_bytes("c"), "", {});
	CHECK(as_string(open_store(d / "empty")->open()) == "c");
}
