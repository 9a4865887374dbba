// FaultStore: wraps a Store and injects failures, for tests of what the layers above do when
// storage misbehaves. Faults are counted per operation type, from the wrapper's creation.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

#include "storage/wrappers/store_wrapper.h"

namespace plakar {

struct FaultPlan {
	int fail_put_at = 0;           // the Nth put (1-based) fails with an I/O error; 0: never
	uint64_t space_bytes = 0;      // puts fail with "No space left on device" past this many bytes; 0: no limit
	int short_read_at = 0;         // the Nth get/get_range returns one byte less than asked; 0: never
	std::chrono::milliseconds latency{0}; // added before every operation
	uint64_t fail_range_over = 0;  // a get_range of more bytes than this fails with an I/O error; 0: never
	std::chrono::milliseconds pack_put_latency{0}; // added before every put of a pack (a slow upload)
};

class FaultStore : public StoreWrapper {
public:
	FaultStore(std::unique_ptr<Store> inner, FaultPlan plan) : StoreWrapper(std::move(inner)), plan_(plan) {}

	void create(ByteView config, const std::string &key_name, ByteView key) override;
	Bytes open() override;
	void put(Kind kind, const std::string &name, ByteView data) override;
	Bytes get(Kind kind, const std::string &name) override;
	Bytes get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length) override;
	// Through get_range above, so that its faults reach range reads too.
	void read_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length, uint8_t *dst) override
	{
		Store::read_range(kind, name, offset, length, dst);
	}
	uint64_t size(Kind kind, const std::string &name) override;
	std::vector<std::string> list(Kind kind) override;
	void remove(Kind kind, const std::string &name) override;

	int puts() const { return puts_; }
	// get_range calls so far (failed ones included).
	int ranges() const { return ranges_; }
	// Reads cut short so far (short_read_at): 1 once that fault fired.
	int short_reads() const { return shorts_; }

private:
	void delay() const;
	Bytes maybe_short(Bytes b);
	FaultPlan plan_;
	std::atomic<int> puts_{0}, gets_{0}, ranges_{0}, shorts_{0};
	std::atomic<uint64_t> written_{0};
};

} // namespace plakar
