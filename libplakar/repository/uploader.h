// Stores finished packs on a thread of its own, so that writing one pack overlaps with
// filling the next. Writers call wait_room() before they take their repository's lock, so
// that about `depth` packs wait (back-pressure when the store is the bottleneck) and nobody
// waits for an upload while holding that lock. The uploader never calls back into the Repository:
// the Repository collects what was stored with take_done() and indexes it then.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/id.h"
#include "repository/pack.h"
#include "storage/store.h"

namespace plakar {

class PackUploader {
public:
	struct Job {
		Id name;
		Bytes pack;
		std::vector<BlobRecord> records;
	};
	explicit PackUploader(Store &store, size_t depth = 2);
	// Waits for the packs queued (errors are dropped: the packs of a failed upload are simply
	// not indexed), then stops the thread.
	~PackUploader();
	PackUploader(const PackUploader &) = delete;
	PackUploader &operator=(const PackUploader &) = delete;

	// Queues a pack; never waits (the caller may hold its repository's lock): back-pressure is
	// wait_room(), called before, without that lock.
	void enqueue(Job job);
	// Waits while `depth` packs wait already.
	void wait_room();
	// Waits until every queued pack is stored or failed.
	void drain();
	// Waits until this pack is no longer queued nor being stored.
	void wait_for(const Id &name);
	// The packs stored since the last call (their buffers emptied, capacity kept for reuse), and
	// the failed ones.
	struct Done {
		std::vector<Job> stored, failed;
		std::exception_ptr error; // the first failure, if any
	};
	Done take_done();
	// Whether a pack is queued or being stored.
	bool busy() const;

private:
	void run();

	Store &store_;
	const size_t depth_;
	mutable std::mutex mu_;
	std::condition_variable cv_;
	std::deque<Job> queue_;
	bool working_ = false, stop_ = false;
	Id current_; // the pack being stored while working_
	Done done_;
	std::thread thread_;
};

} // namespace plakar
