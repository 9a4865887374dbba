// Progress events and cancellation shared by push and pull.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace plakar {

enum class EventKind { File = 1, Directory = 2, Error = 3, Bytes = 4 };

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

} // namespace plakar
