// Progress events and cancellation shared by push and pull.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace plakar {

enum class EventKind {
	File = 1,
	Directory = 2,
	Error = 3,
	Bytes = 4,
	// pull -dry-run: what would be done at path.
	Create = 5,
	Replace = 6,
	Remove = 7,
	Skip = 8,
	// Something wrong in the repository that did not affect the result (message).
	Warning = 9,
};

struct Counters {
	uint64_t files = 0, directories = 0, bytes = 0, errors = 0, stored_bytes = 0;
};

struct Event {
	EventKind kind;
	const std::string *path = nullptr;
	const std::string *message = nullptr;
	Counters counters;
};

// Returns false to cancel.
using ProgressFn = std::function<bool(const Event &)>;

// Calls the callback, if any, and throws Code::Canceled when it asks to stop.
void emit(const ProgressFn &fn, EventKind kind, const Counters &c, const std::string *path = nullptr,
          const std::string *message = nullptr);

// Counters updated by several threads at once.
struct SharedCounters {
	std::atomic<uint64_t> files{0}, directories{0}, bytes{0}, errors{0};
	Counters load() const
	{
		Counters c;
		c.files = files;
		c.directories = directories;
		c.bytes = bytes;
		c.errors = errors;
		return c;
	}
};

// Carries events from worker threads to the calling thread, where callbacks run: errors are
// queued by any thread and emitted by report(), which also emits a Bytes event at most every
// 200 ms (or at once with force).
class EventRelay {
public:
	void error(const std::string &path, const std::string &message);
	void report(const ProgressFn &fn, const std::function<Counters()> &counters, bool force);

private:
	std::mutex mu_;
	std::vector<std::pair<std::string, std::string>> queued_;
	std::chrono::steady_clock::time_point last_{};
};

} // namespace plakar
