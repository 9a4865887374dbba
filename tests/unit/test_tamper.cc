// The tampered-repository corpus of CRYPTO.md: each property, one object each. Reading the
// damaged repository must fail with an error that names the problem, never return bad data.
#include <catch2/catch.hpp>

#include <filesystem>

#include "base/error.h"
#include "helpers.h"
#include "repository/repository.h"
#include "snapshot/file_reader.h"
#include "snapshot/builder.h"
#include "snapshot/restore.h"
#include "snapshot/snapshot.h"

using namespace plakar;
using plakar::test::code_of;
namespace fs = std::filesystem;

namespace {
struct Fixture : test::RepoFixture {
	std::string snap;
	Bytes content;
	explicit Fixture(bool encrypted_ = true) : RepoFixture(Options{encrypted_, 0})
	{
		fs::create_directories(d / "src");
		content = test::random_data(50000, 11);
		test::write_file(d / "src/file", content);
		test::write_file(d / "src/other", test::random_data(50000, 12));
		auto r = open(); // tampering is about the store: no local cache
		snap = push(*r, {d / "src"}, {}).id_string();
	}
	std::vector<std::string> data_packs()
	{
		std::vector<std::string> out;
		for (auto &p : test::files_under(uri + "/packs")) {
			Bytes b = test::read_file(p);
			if (b[5] == 1)
				out.push_back(p);
		}
		return out;
	}
	Bytes read_back()
	{
		auto r = open();
		auto h = load_snapshot(*r, resolve_snapshot(*r, snap));
		FileReader f(*r, lookup(*r, h, d / "src/file"));
		Bytes out(f.size());
		size_t n = f.read(out.data(), out.size());
		out.resize(n);
		return out;
	}
	// The same file through pull (chunks read into reused buffers, decrypted in place).
	Bytes pull_back()
	{
		auto r = open();
		auto h = load_snapshot(*r, resolve_snapshot(*r, snap));
		PullOptions o;
		o.to = d / "out";
		o.rebase = true;
		fs::remove_all(o.to);
		pull(*r, h, d / "src/file", o);
		return test::read_file(d / "out/file");
	}
};


void flip(const std::string &path, size_t pos)
{
	Bytes b = test::read_file(path);
	b.at(pos) ^= 0x20;
	test::write_file(path, b);
}
} // namespace

TEST_CASE("tamper: the untouched fixture reads back", "[tamper]")
{
	Fixture f;
	CHECK(f.read_back() == f.content);
	CHECK(f.pull_back() == f.content);
}

TEST_CASE("tamper: a flipped bit in a data pack", "[tamper]")
{
	for (bool enc : {true, false}) {
		Fixture f(enc);
		auto packs = f.data_packs();
		REQUIRE(packs.size() == 1);
		flip(packs[0], 100);
		CHECK(code_of([&] { f.read_back(); }) == Code::Corrupt);
		CHECK(code_of([&] { f.pull_back(); }) == Code::Corrupt);
	}
}

TEST_CASE("tamper: a truncated pack", "[tamper]")
{
	Fixture f;
	auto p = f.data_packs()[0];
	fs::resize_file(p, 1000);
	CHECK(code_of([&] { f.read_back(); }) == Code::Corrupt);
	CHECK(code_of([&] { f.pull_back(); }) == Code::Corrupt);
}

TEST_CASE("tamper: a pack renamed over another", "[tamper]")
{
	Fixture f;
	// Every pack (data and metadata) content swapped with another: blobs are bound to their pack.
	auto all = test::files_under(f.uri + "/packs");
	REQUIRE(all.size() == 2);
	Bytes a = test::read_file(all[0]), b = test::read_file(all[1]);
	test::write_file(all[0], b);
	test::write_file(all[1], a);
	CHECK(code_of([&] { f.read_back(); }) == Code::Corrupt);
}

TEST_CASE("tamper: a snapshot header replayed under another name", "[tamper]")
{
	Fixture f;
	auto snaps = test::files_under(f.uri + "/snapshots");
	REQUIRE(snaps.size() == 1);
	std::string fake = f.uri + "/snapshots/00000000-0000-4000-8000-000000000000";
	fs::copy_file(snaps[0], fake);
	auto r = f.open();
	CHECK(code_of([&] { load_snapshot(*r, "00000000-0000-4000-8000-000000000000"); }) == Code::Corrupt);
	// A listing leaves it out and names it; the genuine one is still listed.
	std::vector<std::string> bad;
	CHECK(list_snapshots(*r, &bad).size() == 1);
	REQUIRE(bad.size() == 1);
	CHECK(bad[0].find("00000000-0000-4000-8000-000000000000") != std::string::npos);
}

TEST_CASE("tamper: a flipped bit in a snapshot header, an index segment, the CONFIG", "[tamper]")
{
	{
		Fixture f;
		flip(test::files_under(f.uri + "/snapshots")[0], 60);
		CHECK(code_of([&] { f.read_back(); }) == Code::Corrupt);
	}
	{
		Fixture f;
		flip(test::files_under(f.uri + "/index")[0], 60);
		// The index is loaded on first use: the first read that needs it fails.
		CHECK(code_of([&] { f.read_back(); }) == Code::Corrupt);
	}
	{
		Fixture f;
		flip(f.uri + "/CONFIG", 30); // inside the chunk sizes
		Code c = code_of([&] { f.open(); });
		CHECK((c == Code::Corrupt || c == Code::Auth));
		CHECK(c != Code(0));
	}
	{
		Fixture f(false); // plaintext: the CONFIG holds the key, but is still checked
		flip(f.uri + "/CONFIG", 25);
		CHECK(code_of([&] { f.open(); }) == Code::Corrupt);
	}
}

TEST_CASE("tamper: a damaged key file reads as a wrong passphrase, without saying which part failed", "[tamper]")
{
	Fixture f;
	flip(test::files_under(f.uri + "/keys")[0], 70);
	try {
		f.open();
		FAIL("opened");
	} catch (const Error &e) {
		CHECK(e.code() == Code::Auth);
		CHECK(std::string(e.what()) == "wrong passphrase (or a damaged CONFIG or key file)");
	}
}

TEST_CASE("tamper: unknown format versions are refused", "[tamper]")
{
	Fixture f;
	Bytes c = test::read_file(f.uri + "/CONFIG");
	c[4] = 9;
	test::write_file(f.uri + "/CONFIG", c);
	CHECK(code_of([&] { f.open(); }) == Code::Version);
}
