// The pack uploader on its own (repository/uploader.h): a real filesystem store, no
// repository, so a failure names the uploader. Counting, never timing: a gate store holds
// puts until the test opens it.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "helpers.h"
#include "repository/uploader.h"
#include "storage/wrappers/fault_store.h"
#include "storage/wrappers/store_wrapper.h"

using namespace plakar;

namespace {

Id pack_name(uint8_t n)
{
	Id id;
	id.b.fill(n);
	return id;
}

PackUploader::Job job(uint8_t n, size_t size = 1000)
{
	PackUploader::Job j;
	j.name = pack_name(n);
	j.pack = test::random_data(size, n);
	j.records.push_back(BlobRecord{});
	return j;
}

// Puts wait until open() (then all go through); counts the puts begun.
class GateStore : public StoreWrapper {
public:
	using StoreWrapper::StoreWrapper;
	void put(Kind kind, const std::string &name, ByteView data) override
	{
		std::unique_lock lk(mu_);
		begun_++;
		cv_.notify_all();
		cv_.wait(lk, [&] { return open_; });
		lk.unlock();
		StoreWrapper::put(kind, name, data);
	}
	void open_gate()
	{
		std::lock_guard lk(mu_);
		open_ = true;
		cv_.notify_all();
	}
	// Waits until n puts have begun.
	void wait_begun(int n)
	{
		std::unique_lock lk(mu_);
		cv_.wait(lk, [&] { return begun_ >= n; });
	}

private:
	std::mutex mu_;
	std::condition_variable cv_;
	bool open_ = false;
	int begun_ = 0;
};

} // namespace

TEST_CASE("uploader: every queued pack is stored, handed back once, its buffer emptied", "[uploader]")
{
	test::TempDir d;
	auto store = open_store(d / "store");
	store->create(as_bytes("C"), "", {});
	PackUploader up(*store, 2);
	for (uint8_t n = 1; n <= 5; n++) {
		up.wait_room();
		up.enqueue(job(n));
	}
	up.drain();
	CHECK(!up.busy());
	auto done = up.take_done();
	REQUIRE(done.stored.size() == 5);
	CHECK(done.failed.empty());
	CHECK(!done.error);
	for (uint8_t n = 1; n <= 5; n++) {
		CHECK(done.stored[n - 1].name == pack_name(n)); // in the order they were queued
		CHECK(done.stored[n - 1].pack.empty());
		CHECK(done.stored[n - 1].records.size() == 1);
		CHECK(store->get(Kind::Pack, pack_name(n).hex()) == test::random_data(1000, n));
	}
	CHECK(up.take_done().stored.empty()); // handed back once
}

TEST_CASE("uploader: a failed put is reported with its pack, the others still stored", "[uploader]")
{
	test::TempDir d;
	auto inner = open_store(d / "store");
	inner->create(as_bytes("C"), "", {});
	FaultPlan plan;
	plan.fail_put_at = 2;
	FaultStore store(std::move(inner), plan);
	PackUploader up(store, 4);
	for (uint8_t n = 1; n <= 3; n++)
		up.enqueue(job(n));
	up.drain();
	auto done = up.take_done();
	REQUIRE(done.failed.size() == 1);
	CHECK(done.failed[0].name == pack_name(2));
	CHECK(done.error);
	REQUIRE(done.stored.size() == 2);
	CHECK(done.stored[0].name == pack_name(1));
	CHECK(done.stored[1].name == pack_name(3));
	CHECK(test::code_of([&] { store.get(Kind::Pack, pack_name(2).hex()); }) == Code::NotFound);
}

TEST_CASE("uploader: busy and wait_for follow a pack held by the store; destruction stores what is queued",
          "[uploader]")
{
	test::TempDir d;
	auto inner = open_store(d / "store");
	inner->create(as_bytes("C"), "", {});
	GateStore store(std::move(inner));
	{
		PackUploader up(store, 2);
		up.enqueue(job(1));
		up.enqueue(job(2));
		store.wait_begun(1); // pack 1 is in the store's hands, pack 2 queued
		CHECK(up.busy());
		CHECK(up.take_done().stored.empty());
		std::thread opener([&] { store.open_gate(); });
		up.wait_for(pack_name(1));
		opener.join();
		auto done = up.take_done();
		REQUIRE(!done.stored.empty());
		CHECK(done.stored[0].name == pack_name(1));
		up.enqueue(job(3));
	} // the destructor waits for packs 2 and 3
	for (uint8_t n = 1; n <= 3; n++)
		CHECK(store.get(Kind::Pack, pack_name(n).hex()) == test::random_data(1000, n));
}
