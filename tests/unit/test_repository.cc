#include <catch2/catch.hpp>

#include "base/error.h"
#include "helpers.h"
#include "repository/repository.h"

using namespace plakar;

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

Code code_of(const std::function<void()> &f)
{
	try {
		f();
	} catch (const Error &e) {
		return e.code();
	}
	return Code(0);
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

TEST_CASE("index segments are compacted and stay bounded", "[repository]")
{
	test::TempDir d;
	std::string uri = d / "repo";
	std::vector<Id> ids;
	Repository::create(uri, cheap(false));
	for (int round = 0; round < 20; round++) {
		auto r = Repository::open(uri, std::nullopt);
		Bytes b = test::random_data(1000, uint64_t(round));
		ids.push_back(r->blob_id(b));
		r->put_blob(BlobType::Chunk, ids.back(), b);
		r->flush();
		CHECK(test::files_under(d / "repo/index").size() <= 9);
	}
	auto r = Repository::open(uri, std::nullopt);
	for (const auto &id : ids)
		CHECK(r->has_blob(id));
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
