#include "repository/uploader.h"

#include <algorithm>
#include <utility>

namespace plakar {

PackUploader::PackUploader(Store &store, size_t depth) : store_(store), depth_(depth ? depth : 1)
{
	thread_ = std::thread([this] { run(); });
}

PackUploader::~PackUploader()
{
	{
		std::unique_lock lk(mu_);
		cv_.wait(lk, [&] { return queue_.empty() && !working_; });
		stop_ = true;
	}
	cv_.notify_all();
	thread_.join();
}

void PackUploader::run()
{
	std::unique_lock lk(mu_);
	for (;;) {
		cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
		if (queue_.empty())
			return;
		Job job = std::move(queue_.front());
		queue_.pop_front();
		working_ = true;
		current_ = job.name;
		cv_.notify_all(); // room for one more
		lk.unlock();
		std::exception_ptr err;
		try {
			store_.put(Kind::Pack, job.name.hex(), job.pack);
		} catch (...) {
			err = std::current_exception();
		}
		job.pack.clear(); // the memory is kept: the next pack reuses it
		lk.lock();
		working_ = false;
		if (err) {
			if (!done_.error)
				done_.error = err;
			done_.failed.push_back(std::move(job));
		} else {
			done_.stored.push_back(std::move(job));
		}
		cv_.notify_all();
	}
}

void PackUploader::enqueue(Job job)
{
	{
		std::lock_guard lk(mu_);
		queue_.push_back(std::move(job));
	}
	cv_.notify_all();
}

void PackUploader::wait_room()
{
	std::unique_lock lk(mu_);
	cv_.wait(lk, [&] { return queue_.size() < depth_; });
}

void PackUploader::drain()
{
	std::unique_lock lk(mu_);
	cv_.wait(lk, [&] { return queue_.empty() && !working_; });
}

void PackUploader::wait_for(const Id &name)
{
	std::unique_lock lk(mu_);
	cv_.wait(lk, [&] {
		return !(working_ && current_ == name) &&
		       std::none_of(queue_.begin(), queue_.end(), [&](const Job &j) { return j.name == name; });
	});
}

PackUploader::Done PackUploader::take_done()
{
	std::lock_guard lk(mu_);
	return std::exchange(done_, Done{});
}

bool PackUploader::busy() const
{
	std::lock_guard lk(mu_);
	return working_ || !queue_.empty();
}

} // namespace plakar
