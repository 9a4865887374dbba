#include <catch2/catch.hpp>

#include "base/error.h"
#include "crypto/crypto.h"
#include "helpers.h"
#include "repository/pack.h"

using namespace plakar;

namespace {
KeyRing test_keys()
{
	Config cfg;
	cfg.repo_id.fill(7);
	return KeyRing::derive(crypto::SecureBytes(test::random_data(32, 1)), cfg);
}
} // namespace

TEST_CASE("a pack round-trips its blobs and its table of contents", "[pack]")
{
	for (bool encrypted : {true, false}) {
		KeyRing keys = test_keys();
		PackWriter w(keys, encrypted, PackType::Data, 3);
		Bytes a = test::random_data(5000, 1);
		std::string text(20000, 'x');
		Id ida = crypto::sha256(a), idb = crypto::sha256(as_bytes(text));
		w.add(ida, BlobType::Chunk, a);
		w.add(idb, BlobType::Chunk, as_bytes(text));
		auto recs = w.records();
		Id name = w.name();
		Bytes pack = w.finish();
		CHECK(recs[1].flags == kBlobCompressed);
		CHECK(recs[1].length < 1000);
		CHECK(recs[0].flags == 0);

		PackKey k(keys, encrypted, name, ByteView(pack).first(kPackHeader));
		CHECK(k.type() == PackType::Data);
		auto toc = k.read_toc(pack);
		REQUIRE(toc.size() == 2);
		CHECK(toc[0].id == ida);
		CHECK(toc[1].offset == recs[1].offset);
		CHECK(k.blob_plaintext(toc[0], ByteView(pack).subspan(toc[0].offset, toc[0].length)) == a);
		CHECK(as_string(k.blob_plaintext(toc[1], ByteView(pack).subspan(toc[1].offset, toc[1].length))) == text);
		if (encrypted) // ciphertext does not show the plaintext
			CHECK(std::search(pack.begin(), pack.end(), a.begin(), a.begin() + 64) == pack.end());
	}
}

TEST_CASE("pack blobs are bound to their pack, offset, id and type", "[pack][tamper]")
{
	KeyRing keys = test_keys();
	PackWriter w(keys, true, PackType::Data, 3);
	Bytes a = test::random_data(3000, 1), b = test::random_data(3000, 2);
	w.add(crypto::sha256(a), BlobType::Chunk, a);
	w.add(crypto::sha256(b), BlobType::Chunk, b);
	auto recs = w.records();
	Id name = w.name();
	Bytes pack = w.finish();
	PackKey k(keys, true, name, ByteView(pack).first(kPackHeader));
	auto sealed = [&](const BlobRecord &r) { return ByteView(pack).subspan(r.offset, r.length); };

	BlobRecord moved = recs[0];
	moved.offset = recs[1].offset; // blob 0 claimed at blob 1's place
	CHECK_THROWS_AS(k.open_blob(moved, sealed(recs[1])), Error);
	BlobRecord retyped = recs[0];
	retyped.type = BlobType::Tree;
	CHECK_THROWS_AS(k.open_blob(retyped, sealed(recs[0])), Error);
	BlobRecord renamed = recs[0];
	renamed.id = crypto::sha256(b);
	CHECK_THROWS_AS(k.open_blob(renamed, sealed(recs[0])), Error);
	// The same bytes read as another pack (pack renamed) do not open.
	Id other;
	other.b.fill(1);
	PackKey k2(keys, true, other, ByteView(pack).first(kPackHeader));
	CHECK_THROWS_AS(k2.open_blob(recs[0], sealed(recs[0])), Error);
	CHECK_THROWS_AS(k2.read_toc(pack), Error);
	// A flipped bit in the table of contents, or a truncated pack.
	Bytes bad = pack;
	bad[bad.size() - 20] ^= 4;
	CHECK_THROWS_AS(k.read_toc(bad), Error);
	CHECK_THROWS_AS(k.read_toc(ByteView(pack).first(pack.size() - 1)), Error);
	// An unknown version is refused, not parsed.
	Bytes v2 = pack;
	v2[4] = 2;
	try {
		PackKey k3(keys, true, name, ByteView(v2).first(kPackHeader));
		FAIL("version 2 accepted");
	} catch (const Error &e) {
		CHECK(e.code() == Code::Version);
	}
}

TEST_CASE("writing the same content twice never reuses a key and nonce", "[pack][crypto]")
{
	KeyRing keys = test_keys();
	Bytes a = test::random_data(4096, 1);
	PackWriter w1(keys, true, PackType::Data, 3), w2(keys, true, PackType::Data, 3);
	w1.add(crypto::sha256(a), BlobType::Chunk, a);
	w2.add(crypto::sha256(a), BlobType::Chunk, a);
	auto r1 = w1.records()[0], r2 = w2.records()[0];
	Bytes p1 = w1.finish(), p2 = w2.finish();
	// Same offset (so the same nonce), but each pack has its own salt and thus its own key.
	CHECK(r1.offset == r2.offset);
	CHECK(Bytes(p1.begin() + 8, p1.begin() + 40) != Bytes(p2.begin() + 8, p2.begin() + 40));
	CHECK(Bytes(p1.begin() + r1.offset, p1.begin() + r1.offset + r1.length) !=
	      Bytes(p2.begin() + r2.offset, p2.begin() + r2.offset + r2.length));
}

TEST_CASE("blobs opened in place into reused buffers read as the allocating path does", "[pack]")
{
	for (bool encrypted : {true, false}) {
		KeyRing keys = test_keys();
		PackWriter w(keys, encrypted, PackType::Data, 3);
		Bytes a = test::random_data(70000, 1);
		std::string text(90000, 'y');
		Bytes small = test::random_data(2000, 3);
		w.add(crypto::sha256(a), BlobType::Chunk, a);
		w.add(crypto::sha256(as_bytes(text)), BlobType::Chunk, as_bytes(text));
		w.add(crypto::sha256(small), BlobType::Chunk, small);
		Id name = w.name();
		Bytes pack = w.finish();
		PackKey k(keys, encrypted, name, ByteView(pack).first(kPackHeader));
		auto toc = k.read_toc(pack);
		REQUIRE(toc.size() == 3);
		Scratch plain; // one buffer for the three: the large compressed blob first, then smaller
		Bytes copy = pack;
		auto open = [&](const BlobRecord &r) {
			return k.blob_plaintext(r, std::span<uint8_t>(copy).subspan(r.offset, r.length), plain);
		};
		ByteView pb = open(toc[1]);
		CHECK(as_string(pb) == text);
		ByteView pa = open(toc[0]);
		CHECK(Bytes(pa.begin(), pa.end()) == a);
		ByteView ps = open(toc[2]);
		CHECK(Bytes(ps.begin(), ps.end()) == small);
		// A flipped byte fails authentication, in place as elsewhere.
		copy = pack;
		copy[toc[0].offset + 10] ^= 1;
		CHECK(test::code_of([&] { open(toc[0]); }) == Code::Corrupt);
		copy = pack;
		copy[toc[1].offset + toc[1].length - 1] ^= 0x80;
		CHECK(test::code_of([&] { open(toc[1]); }) == Code::Corrupt);
	}
}
