#include "base/error.h"

#include <cerrno>
#include <cstring>

namespace plakar {

void fail(Code code, const std::string &message) { throw Error(code, message); }

void fail_errno(const std::string &what, int err)
{
	Code code = err == ENOENT ? Code::NotFound : Code::Error;
	throw Error(code, what + ": " + std::strerror(err));
}

} // namespace plakar
