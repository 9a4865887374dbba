// The index lifecycle on its own (repository/segments.h): a real filesystem store, keys and a
// real local cache, no Repository, no packs (an index entry names a pack; nothing here reads
// one), so a failure names the segment logic.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "base/error.h"
#include "helpers.h"
#include "repository/cache.h"
#include "repository/sealed.h"
#include "repository/segments.h"
#include "storage/wrappers/store_wrapper.h"

using namespace plakar;

namespace {

Id make_id(uint8_t tag, uint32_t n)
{
	Id id;
	id.b.fill(tag);
	for (int i = 0; i < 4; i++)
		id.b[i] = uint8_t(n >> (8 * i));
	return id;
}

BlobRecord rec(uint32_t n)
{
	return BlobRecord{make_id(0xb0, n), BlobType::Chunk, 0, 100 + n, 64, 48};
}

struct SegFixture {
	test::TempDir d;
	test::Identity who;
	std::unique_ptr<Store> store;
	SegFixture()
	{
		store = open_store(d / "store");
		store->create(as_bytes("C"), "", {});
	}
	IndexSegments handle(Cache *cache = nullptr, Store *s = nullptr)
	{
		return IndexSegments(s ? *s : *store, who.keys, true, 3, cache);
	}
	// One plain segment of `count` entries in pack `pack`, from blob number `first`.
	static void write(IndexSegments &segs, uint8_t pack, uint32_t first, uint32_t count = 1)
	{
		for (uint32_t n = first; n < first + count; n++)
			segs.index().add(make_id(pack, 0), rec(n));
		segs.write_fresh();
	}
	std::set<std::string> listed() const
	{
		auto v = store->list(Kind::Index);
		return {v.begin(), v.end()};
	}
};

std::set<std::string> as_set(const std::vector<std::string> &v) { return {v.begin(), v.end()}; }

} // namespace

TEST_CASE("segments: written by one handle, loaded by another, refreshed with what was written since",
          "[segments]")
{
	SegFixture f;
	auto a = f.handle();
	a.load();
	SegFixture::write(a, 1, 0, 3);
	SegFixture::write(a, 2, 3, 2);
	CHECK(a.take_written());
	CHECK(!a.take_written());
	CHECK(!a.index().has_fresh());

	auto b = f.handle();
	b.load();
	CHECK(as_set(b.live()) == f.listed());
	CHECK(b.index().size() == 5);
	auto loc = b.index().find(rec(4).id);
	REQUIRE(loc);
	CHECK(b.index().pack_name(loc->pack) == make_id(2, 0));
	CHECK(loc->offset == rec(4).offset);
	CHECK(b.counters().loads == 1);
	CHECK(b.counters().fetched == 2);
	auto entries = b.live_entries();
	uint64_t total = 0;
	for (const auto &[n, e] : entries)
		total += e;
	CHECK(total == 5);

	CHECK(!b.refresh()); // nothing new
	SegFixture::write(a, 3, 5);
	bool replaced = true;
	CHECK(b.refresh(&replaced));
	CHECK(!replaced);
	CHECK(b.index().contains(rec(5).id));
	CHECK(b.live().size() == 3);
}

TEST_CASE("segments: a full tier is merged into one segment superseding the others, which a later load skips",
          "[segments]")
{
	SegFixture f;
	auto a = f.handle();
	a.load();
	for (uint32_t n = 0; n < kSegmentsPerTier - 1; n++)
		SegFixture::write(a, 1, n);
	a.compact();
	CHECK(a.live().size() == kSegmentsPerTier - 1); // the tier is not full yet
	SegFixture::write(a, 1, kSegmentsPerTier - 1);
	a.compact();
	REQUIRE(a.live().size() == 1);
	CHECK(a.superseded().size() == kSegmentsPerTier);
	CHECK(a.counters().merged == 1);
	CHECK(f.listed().size() == kSegmentsPerTier + 1); // gc deletes the superseded ones, not compact

	auto b = f.handle();
	b.load();
	CHECK(b.live() == a.live());
	CHECK(b.superseded() == a.superseded());
	CHECK(b.index().size() == kSegmentsPerTier); // no entry twice

	// gc deletes the superseded segments: the index is the same.
	for (const auto &s : a.superseded())
		f.store->remove(Kind::Index, s);
	auto c = f.handle();
	c.load();
	CHECK(c.live() == a.live());
	CHECK(c.superseded().empty());
	CHECK(c.index().size() == kSegmentsPerTier);
}

TEST_CASE("segments: nothing is merged on an append-only store", "[segments]")
{
	struct AppendOnly : StoreWrapper {
		using StoreWrapper::StoreWrapper;
		bool append_only() override { return true; }
	};
	SegFixture f;
	AppendOnly store(open_store(f.d / "store"));
	auto a = f.handle(nullptr, &store);
	a.load();
	for (uint32_t n = 0; n < 2 * kSegmentsPerTier; n++)
		SegFixture::write(a, 1, n);
	a.compact();
	CHECK(a.live().size() == 2 * kSegmentsPerTier);
	CHECK(a.counters().merged == 0);
}

TEST_CASE("segments: through the cache, a superseded segment is skipped on its tombstone without a read",
          "[segments]")
{
	SegFixture f;
	auto cache = Cache::open(f.d / "cache", f.who.cfg, f.who.keys);
	REQUIRE(cache);
	{
		auto a = f.handle(cache.get());
		a.load();
		for (uint32_t n = 0; n < kSegmentsPerTier; n++)
			SegFixture::write(a, 1, n);
		a.compact();
		REQUIRE(a.live().size() == 1);
	}
	auto b = f.handle(cache.get());
	b.load();
	CHECK(b.counters().fetched == 0); // the merged one from the cache, the others on their marker
	CHECK(b.live().size() == 1);
	CHECK(b.superseded().size() == kSegmentsPerTier);
	CHECK(b.index().size() == kSegmentsPerTier);

	// Without the cache, every segment is read to learn what supersedes what.
	auto c = f.handle();
	c.load();
	CHECK(c.counters().fetched == kSegmentsPerTier + 1);
	CHECK(c.index().size() == kSegmentsPerTier);
}

TEST_CASE("segments: a rewrite drops the entries of packs gc condemns and leaves other segments alone",
          "[segments]")
{
	SegFixture f;
	auto a = f.handle();
	a.load();
	SegFixture::write(a, 1, 0, 2); // pack 1
	SegFixture::write(a, 2, 2, 2); // pack 2
	std::string condemned_seg = a.live()[0], untouched = a.live()[1];
	CHECK(!a.rewrite([](const Id &) { return true; }, a.live())); // nothing condemned: nothing written
	CHECK(f.listed().size() == 2);

	Id condemned = make_id(1, 0);
	CHECK(a.rewrite([&](const Id &p) { return p != condemned; }, a.live()));
	CHECK(!a.index().contains(rec(0).id));
	CHECK(!a.index().contains(rec(1).id));
	CHECK(a.index().contains(rec(2).id));
	// Pack 1's segment is superseded by a merged one holding what it kept (nothing here).
	CHECK(a.live().size() == 2);
	CHECK(std::count(a.live().begin(), a.live().end(), untouched) == 1);
	CHECK(a.superseded() == std::set<std::string>{condemned_seg});
	CHECK(a.counters().merged == 1);

	auto b = f.handle();
	b.load();
	CHECK(b.index().size() == 2);
	CHECK(as_set(b.live()) == as_set(a.live()));
	CHECK(b.superseded() == a.superseded());
}

TEST_CASE("segments: a plain segment that claims to supersede others is refused, a damaged live one is an error",
          "[segments]")
{
	SegFixture f;
	auto a = f.handle();
	a.load();
	SegFixture::write(a, 1, 0);
	std::string victim = a.live()[0];

	// Any writer may add a plain segment; naming another as superseded must not hide it.
	Index forged;
	forged.add(make_id(9, 0), rec(99));
	Bytes body = forged.encode_fresh({victim});
	std::string name(64, 'f');
	f.store->put(Kind::Index, name, seal_object(f.who.keys, true, ObjectKind::IndexSegment, name, body, 3));
	auto b = f.handle();
	CHECK(test::code_of([&] { b.load(); }) == Code::Corrupt);
	f.store->remove(Kind::Index, name);

	// A damaged segment that nothing supersedes: its entries would be lost, so loading fails.
	f.store->remove(Kind::Index, victim);
	f.store->put(Kind::Index, victim, as_bytes("damaged"));
	auto c = f.handle();
	CHECK(test::code_of([&] { c.load(); }) == Code::Corrupt);
}

TEST_CASE("segments: replace writes one merged segment holding exactly the given entries", "[segments]")
{
	SegFixture f;
	auto a = f.handle();
	a.load();
	SegFixture::write(a, 1, 0, 3);
	SegFixture::write(a, 2, 3, 3);
	std::vector<std::string> old = a.live();
	Index next;
	next.add(make_id(5, 0), rec(10));
	a.replace(next, old);
	CHECK(a.live().size() == 1);
	CHECK(a.index().size() == 1);
	CHECK(a.index().contains(rec(10).id));
	CHECK(as_set({a.superseded().begin(), a.superseded().end()}) == as_set(old));
	auto b = f.handle();
	b.load();
	CHECK(b.index().size() == 1);
	CHECK(b.live() == a.live());
}
