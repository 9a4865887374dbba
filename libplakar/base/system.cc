#include "base/system.h"

#include <unistd.h>

#include <chrono>

namespace plakar {

int64_t wall_clock_ns()
{
	return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
	    .count();
}

std::string host_name()
{
	char buf[256] = {};
	if (::gethostname(buf, sizeof buf - 1) != 0)
		return "";
	return buf;
}

} // namespace plakar
