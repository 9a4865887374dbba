// A pool of worker threads behind a bounded queue, with a CPU budget.
//
// The budget (-cpu N) is the number of threads doing work at once, the caller included: a
// thread holds one of N tokens while it computes and gives it back while it waits. So with
// N = 1 a push really runs on one core: the walker stops when the queue is full, and a worker
// then takes the token. The queue is bounded by a task count and by the bytes its tasks hold,
// so memory stays bounded whatever the size of the tree. A worker whose submit finds the
// queue full runs the task itself rather than wait (tasks may submit tasks without deadlock).
//
// The first exception a task throws is kept; tasks not yet started are then dropped, and
// wait() rethrows it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/bytes.h"

namespace plakar {

// The default budget: one core less than the process may use, at least one.
unsigned default_cpu_budget();
// The cores this process may run on.
unsigned usable_cores();

class WorkPool {
public:
	// cpu: the budget (>= 1). Starts cpu worker threads; the caller holds a token from
	// construction on (it is the walker) until wait() or destruction.
	explicit WorkPool(unsigned cpu, size_t max_tasks = 256, size_t max_bytes = 64 << 20);
	~WorkPool();
	WorkPool(const WorkPool &) = delete;
	WorkPool &operator=(const WorkPool &) = delete;

	// Queues a task holding `bytes` of memory. From the owner thread it waits while the queue is
	// full (giving its token back); from a worker it runs the task at once instead.
	// After a failure or cancel(), the task is dropped.
	void submit(std::function<void()> task, size_t bytes = 0);
	// Waits until every task ran (the caller's token is given back meanwhile, and taken again
	// before returning). Rethrows the first exception a task threw. With a period, returns
	// false when the period passed first (call it again to go on waiting).
	void wait();
	bool wait_for(std::chrono::milliseconds period);
	// Drops the tasks not yet started; running ones finish.
	void cancel();
	// cancel(), then waits for the running tasks; their errors are dropped (after a failure).
	void stop();
	// Whether a task failed (or cancel() was called).
	bool failed() const;
	unsigned cpu() const { return cpu_; }

private:
	enum class Wait { None, Room, Idle, Token };
	void worker();
	void run(std::function<void()> &task);
	bool owner_ready_locked() const;
	void wake_owner_locked();
	void release_token_locked();
	void owner_wait_locked(std::unique_lock<std::mutex> &lk, Wait what);
	void take_token_locked(std::unique_lock<std::mutex> &lk);

	struct Item {
		std::function<void()> fn;
		size_t bytes;
	};
	const unsigned cpu_;
	const size_t max_tasks_, max_bytes_;
	mutable std::mutex mu_;
	std::condition_variable work_cv_;  // workers: a task and a token
	std::condition_variable owner_cv_; // the owner: what owner_waits_ says
	Wait owner_waits_ = Wait::None;
	std::deque<Item> queue_;
	size_t queued_bytes_ = 0;
	unsigned tokens_;  // free CPU tokens
	unsigned running_ = 0; // tasks started and not finished
	bool stop_ = false;
	bool failed_ = false;
	std::exception_ptr error_;
	std::vector<std::thread> threads_;
};

// Byte buffers handed from thread to thread and reused: a buffer whose last reference goes
// comes back here (at most max_kept are kept), so a stream of large buffers (chunks given to
// other workers, packs read for checking) costs no allocation and no fresh pages each. The
// pool must outlive the buffers it gave.
class BufferPool {
public:
	explicit BufferPool(size_t max_kept) : max_(max_kept) {}
	// A buffer of n bytes: its contents are what a previous user left, or zeros.
	std::shared_ptr<Bytes> take(size_t n);
	// A buffer holding a copy of data.
	std::shared_ptr<const Bytes> copy(ByteView data);

private:
	std::unique_ptr<Bytes> reuse();
	std::shared_ptr<Bytes> wrap(std::unique_ptr<Bytes> b);
	const size_t max_;
	std::mutex mu_;
	std::vector<std::unique_ptr<Bytes>> spare_;
};

} // namespace plakar
