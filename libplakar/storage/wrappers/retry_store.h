// RetryStore: wraps a Store and retries operations that failed for a reason that may pass
// (Code::Error: I/O, network; Code::Locked: busy), with exponential backoff. Answers that are
// final (NotFound, Corrupt, Invalid, Exists, Version, Auth) are passed through at once.
// Every operation of the Store contract is idempotent, so a retried put cannot duplicate.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "storage/store.h"

namespace plakar {

struct RetryPolicy {
	int attempts = 5; // total tries per operation
	std::chrono::milliseconds first_delay{100};
	std::chrono::milliseconds max_delay{5000};
};

class RetryStore : public Store {
public:
	RetryStore(std::unique_ptr<Store> inner, RetryPolicy policy = {}) : inner_(std::move(inner)), policy_(policy) {}

	void create(ByteView config, const std::string &key_name, ByteView key) override;
	Bytes open() override;
	void put(Kind kind, const std::string &name, ByteView data) override;
	Bytes get(Kind kind, const std::string &name) override;
	Bytes get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length) override;
	void read_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length, uint8_t *dst) override;
	uint64_t size(Kind kind, const std::string &name) override;
	std::vector<std::string> list(Kind kind) override;
	void remove(Kind kind, const std::string &name) override;
	uint64_t remove_stale_temporaries(std::chrono::seconds min_age) override
	{
		return inner_->remove_stale_temporaries(min_age);
	}
	std::string location() const override { return inner_->location(); }

	uint64_t retries() const { return retries_; }

private:
	template <class F> auto run(F &&f) -> decltype(f());
	std::unique_ptr<Store> inner_;
	RetryPolicy policy_;
	uint64_t retries_ = 0;
};

} // namespace plakar
