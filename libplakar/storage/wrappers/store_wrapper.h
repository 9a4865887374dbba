// StoreWrapper: a Store that forwards every call to the store it wraps. Wrappers (retries,
// injected faults) derive from it and override only what they change, so a call added to Store
// (or one a wrapper does not care about, such as append_only()) is never silently answered
// with the base class's default instead of the wrapped store's.
#pragma once

#include <memory>
#include <utility>

#include "storage/store.h"

namespace plakar {

class StoreWrapper : public Store {
public:
	explicit StoreWrapper(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}

	void create(ByteView config, const std::string &key_name, ByteView key) override
	{
		inner_->create(config, key_name, key);
	}
	Bytes open() override { return inner_->open(); }
	void put(Kind kind, const std::string &name, ByteView data) override { inner_->put(kind, name, data); }
	Bytes get(Kind kind, const std::string &name) override { return inner_->get(kind, name); }
	Bytes get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length) override
	{
		return inner_->get_range(kind, name, offset, length);
	}
	void read_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length, uint8_t *dst) override
	{
		inner_->read_range(kind, name, offset, length, dst);
	}
	uint64_t size(Kind kind, const std::string &name) override { return inner_->size(kind, name); }
	std::vector<std::string> list(Kind kind) override { return inner_->list(kind); }
	void remove(Kind kind, const std::string &name) override { inner_->remove(kind, name); }
	bool append_only() override { return inner_->append_only(); }
	uint64_t remove_stale_temporaries(std::chrono::seconds min_age) override
	{
		return inner_->remove_stale_temporaries(min_age);
	}
	std::string location() const override { return inner_->location(); }
	std::vector<std::string> local_paths() const override { return inner_->local_paths(); }

protected:
	Store &inner() { return *inner_; }

private:
	std::unique_ptr<Store> inner_;
};

} // namespace plakar
