// What the engine asks of the system in many places, in one place.
#pragma once

#include <cstdint>
#include <string>

namespace plakar {

// The wall clock, in nanoseconds since the epoch (shown and stored; never compared across hosts).
int64_t wall_clock_ns();
// This machine's host name; "unknown" when it cannot be had.
std::string host_name();
// The home directory of the process's user, from the passwd database (never $HOME: the engine
// reads no environment); "" when there is none.
std::string home_directory();

} // namespace plakar
