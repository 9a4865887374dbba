// Errors inside libplakar.
//
// The engine reports failures with exceptions of one type, plakar::Error, that carry a Code
// mirroring the C ABI's PLAKAR_E* values and a one-line message. Nothing else is thrown on
// purpose; the C ABI shim (capi/) turns any exception into a code plus plakar_error_last().
#pragma once

#include <stdexcept>
#include <string>

namespace plakar {

enum class Code {
	Error = -1,
	NotFound = -3,
	Auth = -4,
	Corrupt = -5,
	Locked = -6,
	Exists = -7,
	Invalid = -8,
	Ambiguous = -9,
	Canceled = -10,
	Partial = -11,
	Version = -12,
	Unsupported = -13,
};

class Error : public std::runtime_error {
public:
	Error(Code code, const std::string &message) : std::runtime_error(message), code_(code) {}
	Code code() const noexcept { return code_; }
	bool is_not_found() const noexcept { return code_ == Code::NotFound; }
	bool is_corrupt() const noexcept { return code_ == Code::Corrupt; }

private:
	Code code_;
};

[[noreturn]] void fail(Code code, const std::string &message);
// Throws Code::Error (or NotFound for ENOENT) with "what: strerror(err)".
[[noreturn]] void fail_errno(const std::string &what, int err);

} // namespace plakar
