#include "base/pool.h"

#include <sched.h>

#include <chrono>

namespace plakar {

namespace {
thread_local const WorkPool *tl_pool = nullptr; // the pool whose worker this thread is
constexpr auto kBatch = std::chrono::milliseconds(20); // how long a worker keeps its token
} // namespace

unsigned usable_cores()
{
	cpu_set_t set;
	if (::sched_getaffinity(0, sizeof set, &set) == 0) {
		int n = CPU_COUNT(&set);
		if (n > 0)
			return unsigned(n);
	}
	unsigned n = std::thread::hardware_concurrency();
	return n ? n : 1;
}

unsigned default_cpu_budget()
{
	unsigned n = usable_cores();
	return n > 1 ? n - 1 : 1;
}

WorkPool::WorkPool(unsigned cpu, size_t max_tasks, size_t max_bytes)
    : cpu_(cpu ? cpu : 1), max_tasks_(max_tasks ? max_tasks : 1), max_bytes_(max_bytes), tokens_(cpu_ - 1)
{
	threads_.reserve(cpu_);
	for (unsigned i = 0; i < cpu_; i++)
		threads_.emplace_back([this] { worker(); });
}

WorkPool::~WorkPool()
{
	{
		std::lock_guard lk(mu_);
		stop_ = true;
		queue_.clear();
	}
	work_cv_.notify_all();
	for (auto &t : threads_)
		t.join();
}

// What the owner waits for, evaluated by whoever changes the state: it is woken only when it
// can go on (one wake-up per wait, not one per task).
bool WorkPool::owner_ready_locked() const
{
	switch (owner_waits_) {
	case Wait::None: return false;
	case Wait::Room:
		return failed_ || (queue_.size() <= max_tasks_ / 2 && queued_bytes_ <= max_bytes_ / 2);
	case Wait::Idle: return queue_.empty() && running_ == 0;
	case Wait::Token: return tokens_ > 0;
	}
	return false;
}

void WorkPool::wake_owner_locked()
{
	if (owner_waits_ != Wait::None && owner_ready_locked())
		owner_cv_.notify_one();
}

void WorkPool::release_token_locked()
{
	tokens_++;
	if (!queue_.empty())
		work_cv_.notify_one();
	wake_owner_locked();
}

void WorkPool::owner_wait_locked(std::unique_lock<std::mutex> &lk, Wait what)
{
	owner_waits_ = what;
	owner_cv_.wait(lk, [&] { return owner_ready_locked(); });
	owner_waits_ = Wait::None;
}

void WorkPool::take_token_locked(std::unique_lock<std::mutex> &lk)
{
	if (tokens_ == 0)
		owner_wait_locked(lk, Wait::Token);
	tokens_--;
}

void WorkPool::run(std::function<void()> &task)
{
	try {
		task();
	} catch (...) {
		std::lock_guard lk(mu_);
		if (!error_)
			error_ = std::current_exception();
		failed_ = true;
		queued_bytes_ = 0;
		queue_.clear();
		wake_owner_locked();
	}
}

void WorkPool::worker()
{
	tl_pool = this;
	std::unique_lock lk(mu_);
	for (;;) {
		work_cv_.wait(lk, [&] { return stop_ || (!queue_.empty() && tokens_ > 0); });
		if (stop_)
			return;
		tokens_--;
		auto start = std::chrono::steady_clock::now();
		while (!queue_.empty() && !stop_) {
			Item it = std::move(queue_.front());
			queue_.pop_front();
			queued_bytes_ -= it.bytes;
			running_++;
			wake_owner_locked(); // room in the queue
			lk.unlock();
			run(it.fn);
			it.fn = nullptr; // what the task captured goes now, outside the lock
			lk.lock();
			running_--;
			if (std::chrono::steady_clock::now() - start > kBatch)
				break;
		}
		release_token_locked();
	}
}

void WorkPool::submit(std::function<void()> task, size_t bytes)
{
	std::unique_lock lk(mu_);
	if (failed_)
		return;
	if (queue_.size() >= max_tasks_ || (queued_bytes_ > 0 && queued_bytes_ + bytes > max_bytes_)) {
		if (tl_pool == this) {
			// A worker holds a token already: doing the work is the back-pressure.
			lk.unlock();
			run(task);
			return;
		}
		// Hysteresis: the owner wakes when the queue is half empty, not at every free slot.
		release_token_locked();
		owner_wait_locked(lk, Wait::Room);
		take_token_locked(lk);
		if (failed_)
			return;
	}
	queue_.push_back({std::move(task), bytes});
	queued_bytes_ += bytes;
	if (tokens_ > 0)
		work_cv_.notify_one();
}

bool WorkPool::wait_for(std::chrono::milliseconds period)
{
	std::unique_lock lk(mu_);
	release_token_locked();
	owner_waits_ = Wait::Idle;
	bool done = owner_cv_.wait_for(lk, period, [&] { return owner_ready_locked(); });
	owner_waits_ = Wait::None;
	take_token_locked(lk);
	if (done && error_) {
		auto e = error_;
		error_ = nullptr;
		std::rethrow_exception(e);
	}
	return done;
}

void WorkPool::wait()
{
	while (!wait_for(std::chrono::hours(1))) {
	}
}

void WorkPool::cancel()
{
	std::lock_guard lk(mu_);
	failed_ = true;
	queued_bytes_ = 0;
	queue_.clear();
	wake_owner_locked();
}

void WorkPool::stop()
{
	cancel();
	try {
		wait();
	} catch (...) {
	}
}

bool WorkPool::failed() const
{
	std::lock_guard lk(mu_);
	return failed_;
}

std::unique_ptr<Bytes> BufferPool::reuse()
{
	std::lock_guard lk(mu_);
	if (spare_.empty())
		return std::make_unique<Bytes>();
	auto b = std::move(spare_.back());
	spare_.pop_back();
	return b;
}

std::shared_ptr<Bytes> BufferPool::wrap(std::unique_ptr<Bytes> b)
{
	return std::shared_ptr<Bytes>(b.release(), [this](Bytes *p) {
		std::unique_ptr<Bytes> back(p);
		std::lock_guard lk(mu_);
		if (spare_.size() < max_)
			spare_.push_back(std::move(back));
	});
}

std::shared_ptr<Bytes> BufferPool::take(size_t n)
{
	auto b = reuse();
	b->resize(n);
	return wrap(std::move(b));
}

std::shared_ptr<const Bytes> BufferPool::copy(ByteView data)
{
	auto b = reuse();
	b->assign(data.begin(), data.end());
	return wrap(std::move(b));
}

} // namespace plakar
