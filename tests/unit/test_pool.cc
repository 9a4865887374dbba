// Component tests of the CPU-budget pool and the buffer pool (base/pool.h): what they promise,
// asserted by counting, never by timing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <thread>

#include "base/error.h"
#include "base/pool.h"
#include "helpers.h"

using namespace plakar;
using plakar::test::code_of;

namespace {
// Counts the tasks computing at once and the most there ever were.
struct Concurrency {
	std::atomic<int> now{0}, most{0};
	void enter()
	{
		int n = ++now;
		int m = most.load();
		while (n > m && !most.compare_exchange_weak(m, n)) {
		}
	}
	void leave() { now--; }
};

void spin(int rounds)
{
	volatile uint64_t x = 0;
	for (int i = 0; i < rounds; i++)
		x = x + uint64_t(i);
}
} // namespace

TEST_CASE("pool: at most the budget computes at once, and every task runs", "[pool]")
{
	for (unsigned cpu : {1u, 2u, 3u}) {
		Concurrency c;
		std::atomic<int> ran{0};
		WorkPool pool(cpu, 8);
		for (int i = 0; i < 300; i++)
			pool.submit([&] {
				c.enter();
				spin(20000);
				c.leave();
				ran++;
			});
		pool.wait();
		INFO("cpu " << cpu);
		CHECK(ran == 300);
		// The owner held a token while it submitted: workers never had more than the rest,
		// and once it waited, never more than the budget.
		CHECK(c.most.load() <= int(cpu));
		CHECK(c.most.load() >= 1);
		CHECK_FALSE(pool.failed());
	}
}

TEST_CASE("pool: the first error is rethrown by wait, the tasks not started are dropped", "[pool]")
{
	std::atomic<int> ran{0};
	// One token, held by the owner while it submits (the queue has room for all): the single
	// worker starts only at wait(), with the failing task, first in the queue.
	WorkPool pool(1, 1000);
	pool.submit([] { fail(Code::Corrupt, "the first"); });
	pool.submit([] { fail(Code::Error, "a later one"); });
	for (int i = 0; i < 50; i++)
		pool.submit([&] { ran++; });
	try {
		pool.wait();
		FAIL("wait() did not rethrow");
	} catch (const Error &e) {
		CHECK(e.code() == Code::Corrupt);
		CHECK(std::string(e.what()) == "the first");
	}
	CHECK(pool.failed());
	CHECK(ran == 0); // every task after the failure was dropped
	int before = ran;
	pool.submit([&] { ran++; }); // dropped after a failure
	CHECK(code_of([&] { pool.wait(); }) == Code(0)); // the error was reported once
	CHECK(ran == before);
	CHECK(pool.failed());
}

TEST_CASE("pool: tasks submit tasks, the queue full, without deadlock", "[pool]")
{
	std::atomic<int> ran{0};
	WorkPool pool(2, 2); // a queue of two: workers find it full and run the sub-task themselves
	for (int i = 0; i < 20; i++)
		pool.submit([&] {
			for (int j = 0; j < 10; j++)
				pool.submit([&] { ran++; });
			ran++;
		});
	pool.wait();
	CHECK(ran == 20 * 11);
}

TEST_CASE("pool: cancel drops what has not started; stop waits for the rest", "[pool]")
{
	std::atomic<int> ran{0};
	std::atomic<bool> started{false}, go{false};
	// Two tokens: the owner's, and the one the first task holds while it waits for go, so no
	// other task can start before cancel().
	WorkPool pool(2, 1000);
	pool.submit([&] {
		started = true;
		while (!go)
			std::this_thread::yield();
		ran++;
	});
	for (int i = 0; i < 100; i++)
		pool.submit([&] { ran++; });
	while (!started)
		std::this_thread::yield();
	pool.cancel();
	go = true;
	pool.stop();
	CHECK(pool.failed());
	CHECK(ran == 1); // the running one finished, the rest never started
}

TEST_CASE("buffer pool: released buffers are reused, at most max_kept of them", "[pool]")
{
	const size_t big = 1 << 20;
	BufferPool bp(1);
	{
		auto a = bp.take(big);
		auto b = bp.take(big);
		CHECK(a->size() == big);
		(*a)[0] = 7;
	}
	// One of the two came back (max_kept 1): a small take gets its capacity.
	auto c = bp.take(10);
	auto d = bp.take(10);
	CHECK(c->size() == 10);
	CHECK(d->size() == 10);
	int reused = (c->capacity() >= big) + (d->capacity() >= big);
	CHECK(reused == 1);
	auto copied = bp.copy(as_bytes("some bytes"));
	CHECK(as_string(*copied) == "some bytes");
	// Buffers handed to other threads come back from there too.
	BufferPool shared(4);
	std::vector<std::thread> ts;
	for (int t = 0; t < 4; t++)
		ts.emplace_back([&shared] {
			for (int i = 0; i < 100; i++) {
				auto b = shared.take(4096);
				(*b)[0] = uint8_t(i);
			}
		});
	for (auto &t : ts)
		t.join();
	std::vector<std::shared_ptr<Bytes>> held;
	for (int i = 0; i < 6; i++)
		held.push_back(shared.take(1));
	CHECK(std::count_if(held.begin(), held.end(), [](const auto &b) { return b->capacity() >= 4096; }) <= 4);
	CHECK(std::count_if(held.begin(), held.end(), [](const auto &b) { return b->capacity() >= 4096; }) >= 1);
}
