#include "base/system.h"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <vector>

namespace plakar {

int64_t wall_clock_ns()
{
	return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
	    .count();
}

std::string host_name()
{
	char buf[256] = {};
	if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0])
		return "unknown";
	return buf;
}

std::string home_directory()
{
	long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
	std::vector<char> buf(hint > 0 ? size_t(hint) : 16384);
	struct passwd pw, *res = nullptr;
	while (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &res) == ERANGE && buf.size() < (1u << 20))
		buf.resize(buf.size() * 2);
	return res && res->pw_dir ? res->pw_dir : "";
}

} // namespace plakar
