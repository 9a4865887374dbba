#include <catch2/catch.hpp>

#include "base/error.h"
#include "crypto/crypto.h"
#include "helpers.h"
#include "repository/index.h"
#include "repository/index_table.h"

using namespace plakar;

TEST_CASE("index: add, save, reload, merge", "[index]")
{
	Index idx;
	Id pack1, pack2;
	pack1.b.fill(1);
	pack2.b.fill(2);
	std::vector<Id> ids;
	for (int i = 0; i < 1000; i++) {
		Id id = crypto::sha256(as_bytes(std::to_string(i)));
		ids.push_back(id);
		idx.add(i % 2 ? pack1 : pack2, BlobRecord{id, BlobType::Chunk, 0, uint32_t(40 + i), 100, 84});
	}
	Bytes seg = idx.encode_fresh();
	idx.commit_fresh();
	CHECK_FALSE(idx.has_fresh());
	CHECK(idx.size() == 1000);

	Index back;
	back.load_segment(seg);
	back.load_segment(seg); // duplicates collapse
	back.finish_load();
	CHECK(back.size() == 1000);
	for (int i = 0; i < 1000; i++) {
		auto loc = back.find(ids[i]);
		REQUIRE(loc);
		CHECK(loc->offset == uint32_t(40 + i));
		CHECK(back.pack_name(loc->pack) == (i % 2 ? pack1 : pack2));
	}
	CHECK_FALSE(back.find(crypto::sha256(as_bytes("absent"))));
	Index all;
	all.load_segment(back.encode_all());
	all.finish_load();
	CHECK(all.size() == 1000);
}

TEST_CASE("index: a malformed segment is refused", "[index]")
{
	Index idx;
	Id p;
	idx.add(p, BlobRecord{crypto::sha256(as_bytes("x")), BlobType::Chunk, 0, 40, 10, 10});
	Bytes seg = idx.encode_fresh();
	Index a;
	CHECK_THROWS_AS(a.load_segment(ByteView(seg).first(seg.size() - 1)), Error);
	Bytes bad = seg;
	bad.back() = 0;     // flags ok, but
	bad[bad.size() - 2] = 9; // unknown blob type
	Index b;
	CHECK_THROWS_AS(b.load_segment(bad), Error);
}

TEST_CASE("index: many fresh blobs cost under 64 bytes each and are all saved", "[index]")
{
	Index idx;
	Id pack;
	pack.b.fill(7);
	const int n = 300000; // several spills of the fresh table into the sorted vector
	for (int i = 0; i < n; i++) {
		Id id = crypto::sha256(as_bytes(std::to_string(i)));
		idx.add(pack, BlobRecord{id, BlobType::Chunk, 0, uint32_t(i), 100, 84});
	}
	CHECK(idx.size() == size_t(n));
	CHECK(idx.memory() / size_t(n) < 64);
	CHECK(idx.has_fresh());
	for (int i = 0; i < n; i += 997) {
		auto loc = idx.find(crypto::sha256(as_bytes(std::to_string(i))));
		REQUIRE(loc);
		CHECK(loc->offset == uint32_t(i));
	}
	Bytes seg = idx.encode_fresh();
	idx.commit_fresh();
	CHECK_FALSE(idx.has_fresh());
	// A second batch: only it is fresh.
	for (int i = n; i < n + 10; i++)
		idx.add(pack, BlobRecord{crypto::sha256(as_bytes(std::to_string(i))), BlobType::Chunk, 0, uint32_t(i), 1, 1});
	Index second;
	second.load_segment(idx.encode_fresh());
	second.finish_load();
	CHECK(second.size() == 10);
	Index back;
	back.load_segment(seg);
	back.finish_load();
	CHECK(back.size() == size_t(n));
	CHECK(back.memory() / size_t(n) < 64);
}

TEST_CASE("index: racing compactions do not multiply a blob stored twice", "[index]")
{
	// Two pushes stored the same blobs in different packs; compactions racing each other
	// wrote segments holding both locations in either order. Loading them all, compaction
	// after compaction, keeps each location of each blob once.
	Id pack1, pack2;
	pack1.b.fill(1);
	pack2.b.fill(2);
	std::vector<Id> ids;
	Index a, b;
	for (int i = 0; i < 50; i++) {
		Id id = crypto::sha256(as_bytes("blob " + std::to_string(i)));
		ids.push_back(id);
		a.add(pack1, BlobRecord{id, BlobType::Chunk, 0, uint32_t(100 * i), 100, 84});
		b.add(pack2, BlobRecord{id, BlobType::Chunk, 0, uint32_t(200 * i), 100, 84});
	}
	Bytes seg_a = a.encode_fresh(), seg_b = b.encode_fresh();
	Bytes compacted = [&] {
		Index one;
		one.load_segment(seg_a);
		one.load_segment(seg_b);
		one.finish_load();
		return one.encode_all();
	}();
	Bytes compacted_other = [&] {
		Index one;
		one.load_segment(seg_b);
		one.load_segment(seg_a);
		one.finish_load();
		return one.encode_all();
	}();
	for (int round = 0; round < 6; round++) {
		Index next;
		next.load_segment(compacted);
		next.load_segment(compacted_other);
		next.load_segment(seg_b);
		next.load_segment(seg_a);
		next.finish_load();
		CHECK(next.size() == 100);
		for (const auto &id : ids)
			CHECK(next.find_all(id).size() == 2);
		compacted_other = compacted;
		compacted = next.encode_all();
	}
}

// The index table on its own (repository/index_table.h): a sealed, sorted copy of the index
// in a directory, read with a key; nothing else involved.
TEST_CASE("index table: every saved blob found at its place, nothing else; tampering disables it", "[index][cache]")
{
	test::TempDir d;
	Index idx;
	std::vector<Id> packs(7);
	for (size_t p = 0; p < packs.size(); p++)
		packs[p].b.fill(uint8_t(p + 1));
	std::vector<Id> ids;
	for (int i = 0; i < 20000; i++) { // several blocks
		Id id = crypto::sha256(as_bytes("blob " + std::to_string(i)));
		ids.push_back(id);
		idx.add(packs[size_t(i) % packs.size()], BlobRecord{id, BlobType::Chunk, 0, uint32_t(i), 100, 84});
	}
	Id unsaved = crypto::sha256(as_bytes("added after the save"));
	idx.commit_fresh();
	idx.add(packs[0], BlobRecord{unsaved, BlobType::Tree, 0, 1, 2, 3});
	crypto::SecureBytes key(crypto::random_bytes(32));
	REQUIRE(IndexTable::write(d.path(), key, {"seg-a", "seg-b"}, idx));

	auto t = IndexTable::open(d.path(), key);
	REQUIRE(t);
	CHECK(t->segments() == std::vector<std::string>{"seg-a", "seg-b"});
	CHECK(t->blocks() > 1);
	for (int i = 0; i < 20000; i += 7) {
		auto hit = t->find(ids[size_t(i)]);
		REQUIRE(hit);
		CHECK(hit->pack == packs[size_t(i) % packs.size()]);
		CHECK(hit->rec.offset == uint32_t(i));
		CHECK(hit->rec.type == BlobType::Chunk);
	}
	CHECK(!t->find(unsaved)); // fresh entries are not in the table
	CHECK(!t->find(crypto::sha256(as_bytes("never added"))));
	CHECK(!t->broken());

	// Another key: the table does not open.
	CHECK(!IndexTable::open(d.path(), crypto::SecureBytes(crypto::random_bytes(32))));
	// A flipped byte in the first block: that block never answers, and the table says so.
	std::string file = d / IndexTable::kFile;
	Bytes raw = test::read_file(file);
	raw[10] ^= 1;
	test::write_file(file, raw);
	auto damaged = IndexTable::open(d.path(), key);
	if (damaged) { // the directory still verifies: the block is found bad when read
		size_t missing = 0;
		for (const auto &id : ids)
			missing += !damaged->find(id).has_value();
		CHECK(missing > 0); // the damaged block's blobs, never a wrong location
		CHECK(damaged->broken());
	}
	// Garbage: no table.
	test::write_file(file, test::random_data(4096, 9));
	CHECK(!IndexTable::open(d.path(), key));
}
