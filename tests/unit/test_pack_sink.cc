// The write path of a repository on its own (repository/pack_sink.h): a real filesystem store
// and keys, no index, no Repository, so a failure names the sink. What it stored is read back
// with the pack format's own reader (PackKey).
#include <catch2/catch.hpp>

#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "base/error.h"
#include "helpers.h"
#include "repository/pack_sink.h"
#include "storage/wrappers/fault_store.h"

using namespace plakar;

namespace {

Id blob(uint32_t n)
{
	Id id;
	id.b.fill(0);
	for (int i = 0; i < 4; i++)
		id.b[i] = uint8_t(n >> (8 * i));
	id.b[31] = 0x5a;
	return id;
}

struct SinkFixture {
	test::TempDir d;
	test::Identity who;
	std::unique_ptr<Store> store;
	std::mutex mu;
	SinkFixture()
	{
		store = open_store(d / "store");
		store->create(as_bytes("C"), "", {});
	}
	PackSink::Params params(uint32_t pack_size = 64 * 1024, size_t blobs_max = 32768) const
	{
		return PackSink::Params{true, 3, pack_size, 8 * 1024, blobs_max};
	}
	// Adds one blob as the Repository does: reserved, then added, under the lock.
	void add(PackSink &sink, BlobType type, const Id &id, ByteView payload)
	{
		std::unique_lock lk(mu);
		REQUIRE(sink.reserve(id));
		sink.add(lk, type, id, 0, payload, uint32_t(payload.size()));
	}
	PackSink::Stored finish(PackSink &sink)
	{
		std::unique_lock lk(mu);
		sink.finish_all(lk);
		return sink.take_stored();
	}
	// Every blob of a stored pack, read back through the pack's own table of contents.
	std::map<Id, Bytes> read_pack(Store &s, const Id &pack, PackType *type = nullptr) const
	{
		Bytes raw = s.get(Kind::Pack, pack.hex());
		PackKey key(who.keys, true, pack, ByteView(raw.data(), kPackHeader));
		if (type)
			*type = key.type();
		std::map<Id, Bytes> out;
		for (const auto &rec : key.read_toc(raw))
			out[rec.id] = key.blob_plaintext(rec, ByteView(raw.data() + rec.offset, rec.length));
		return out;
	}
};

} // namespace

TEST_CASE("pack sink: blobs added from several threads are stored in bounded packs, each handed back once",
          "[pack_sink]")
{
	SinkFixture f;
	PackSink sink(*f.store, f.who.keys, f.params());
	constexpr int kThreads = 4, kEach = 100;
	std::vector<std::thread> threads;
	for (int t = 0; t < kThreads; t++)
		threads.emplace_back([&, t] {
			for (int i = 0; i < kEach; i++) {
				uint32_t n = uint32_t(t * kEach + i);
				Bytes data = test::random_data(1024 + (n % 4) * 1024, n);
				f.add(sink, BlobType::Chunk, blob(n), data);
			}
		});
	for (auto &t : threads)
		t.join();
	auto done = f.finish(sink);
	CHECK(!done.error);
	CHECK(sink.idle());
	CHECK(sink.blobs_added() == kThreads * kEach);

	std::set<Id> seen;
	uint64_t sealed = 0;
	for (const auto &p : done.packs) {
		auto blobs = f.read_pack(*f.store, p.name);
		REQUIRE(blobs.size() == p.records.size());
		// Closed once it reaches pack_size: at most one blob more.
		CHECK(f.store->size(Kind::Pack, p.name.hex()) <= 64 * 1024 + 8 * 1024 + 1024);
		for (const auto &r : p.records) {
			CHECK(seen.insert(r.id).second); // handed back once
			sealed += r.length;
			uint32_t n = uint32_t(r.id.b[0]) | uint32_t(r.id.b[1]) << 8;
			CHECK(blobs[r.id] == test::random_data(1024 + (n % 4) * 1024, n));
		}
	}
	CHECK(seen.size() == size_t(kThreads * kEach));
	CHECK(sealed == sink.bytes_added());
	CHECK(done.packs.size() > 1);
	CHECK(f.store->list(Kind::Pack).size() == done.packs.size());
	for (uint32_t n = 0; n < kThreads * kEach; n++)
		CHECK(!sink.holds(blob(n)));
	std::unique_lock lk(f.mu);
	CHECK(sink.take_stored().packs.empty());
}

TEST_CASE("pack sink: holds a blob from reserve until its pack is stored; a second writer is refused",
          "[pack_sink]")
{
	SinkFixture f;
	PackSink sink(*f.store, f.who.keys, f.params());
	std::unique_lock lk(f.mu);
	CHECK(sink.reserve(blob(1)));
	CHECK(!sink.reserve(blob(1))); // another writer stores it already
	CHECK(sink.holds(blob(1)));
	sink.release(blob(1));
	CHECK(!sink.holds(blob(1)));
	CHECK(sink.idle());

	Bytes data = test::random_data(3000, 1);
	CHECK(sink.reserve(blob(1)));
	sink.add(lk, BlobType::Chunk, blob(1), 0, data, 3000);
	CHECK(sink.holds(blob(1)));
	CHECK(!sink.idle());
	CHECK(f.store->list(Kind::Pack).empty()); // still open
	CHECK(sink.take_stored().packs.empty());

	CHECK(!sink.finish_holding(lk, blob(2))); // in no open pack
	CHECK(sink.finish_holding(lk, blob(1)));  // finished and stored now: readable
	CHECK(sink.idle());
	REQUIRE(f.store->list(Kind::Pack).size() == 1);
	CHECK(sink.holds(blob(1))); // until handed back
	auto done = sink.take_stored();
	REQUIRE(done.packs.size() == 1);
	CHECK(!sink.holds(blob(1)));
	lk.unlock();
	CHECK(f.read_pack(*f.store, done.packs[0].name)[blob(1)] == data);
}

TEST_CASE("pack sink: chunks and tree blobs go to packs of their own type", "[pack_sink]")
{
	SinkFixture f;
	PackSink sink(*f.store, f.who.keys, f.params());
	f.add(sink, BlobType::Chunk, blob(1), test::random_data(100, 1));
	f.add(sink, BlobType::Tree, blob(2), test::random_data(100, 2));
	auto done = f.finish(sink);
	REQUIRE(done.packs.size() == 2);
	for (const auto &p : done.packs) {
		PackType type{};
		auto blobs = f.read_pack(*f.store, p.name, &type);
		REQUIRE(blobs.size() == 1);
		CHECK(type == (blobs.count(blob(1)) ? PackType::Data : PackType::Meta));
	}
}

TEST_CASE("pack sink: a pack is closed at blobs_max blobs however small they are", "[pack_sink]")
{
	SinkFixture f;
	PackSink sink(*f.store, f.who.keys, f.params(64 * 1024, 10));
	for (uint32_t n = 0; n < 25; n++)
		f.add(sink, BlobType::Chunk, blob(n), test::random_data(10, n));
	auto done = f.finish(sink);
	REQUIRE(done.packs.size() == 3);
	CHECK(done.packs[0].records.size() == 10);
	CHECK(done.packs[1].records.size() == 10);
	CHECK(done.packs[2].records.size() == 5);
}

TEST_CASE("pack sink: a failed upload forgets its blobs and reports the error; the next pack is stored",
          "[pack_sink]")
{
	SinkFixture f;
	FaultPlan plan;
	plan.fail_put_at = 1;
	FaultStore store(std::move(f.store), plan);
	PackSink sink(store, f.who.keys, f.params());
	Bytes data = test::random_data(2000, 7);
	f.add(sink, BlobType::Chunk, blob(7), data);
	auto failed = f.finish(sink);
	CHECK(failed.error);
	CHECK(failed.packs.empty());
	CHECK(!sink.holds(blob(7))); // forgotten: a later writer stores it again
	CHECK(store.puts() == 1);

	f.add(sink, BlobType::Chunk, blob(7), data);
	auto done = f.finish(sink);
	CHECK(!done.error);
	REQUIRE(done.packs.size() == 1);
	CHECK(f.read_pack(store, done.packs[0].name)[blob(7)] == data);
	CHECK(store.list(Kind::Pack).size() == 1);
}

TEST_CASE("pack sink: destroyed with packs open or queued, it stores the queued ones", "[pack_sink]")
{
	SinkFixture f;
	{
		PackSink sink(*f.store, f.who.keys, f.params(64 * 1024, 2));
		for (uint32_t n = 0; n < 5; n++) // two full packs handed to the uploader, one left open
			f.add(sink, BlobType::Chunk, blob(n), test::random_data(100, n));
	}
	CHECK(f.store->list(Kind::Pack).size() == 2);
}
