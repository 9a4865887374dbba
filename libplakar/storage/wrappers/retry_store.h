// RetryStore: wraps a Store and retries operations that failed for a reason that may pass
// (Code::Error: I/O, network; Code::Locked: busy), with exponential backoff. Answers that are
// final (NotFound, Corrupt, Invalid, Exists, Version, Auth) are passed through at once.
// Every operation of the Store contract is idempotent, so a retried put cannot duplicate.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include "storage/wrappers/store_wrapper.h"

namespace plakar {

struct RetryPolicy {
	int attempts = 5; // total tries per operation
	std::chrono::milliseconds first_delay{100};
	std::chrono::milliseconds max_delay{5000};
};

class RetryStore : public StoreWrapper {
public:
	RetryStore(std::unique_ptr<Store> inner, RetryPolicy policy = {}) : StoreWrapper(std::move(inner)), policy_(policy)
	{
	}

	// create() is not retried (the wrapped store's): a create that failed half-way must not be
	// mistaken for "exists" on retry.
	Bytes open() override;
	void put(Kind kind, const std::string &name, ByteView data) override;
	Bytes get(Kind kind, const std::string &name) override;
	Bytes get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length) override;
	void read_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length, uint8_t *dst) override;
	uint64_t size(Kind kind, const std::string &name) override;
	std::vector<std::string> list(Kind kind) override;
	void remove(Kind kind, const std::string &name) override;

	// Retries so far, by every thread using this store.
	uint64_t retries() const { return retries_.load(); }

private:
	template <class F> auto run(F &&f) -> decltype(f());
	RetryPolicy policy_;
	std::atomic<uint64_t> retries_{0};
};

} // namespace plakar
