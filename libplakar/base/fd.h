// A file descriptor closed when it goes out of scope.
#pragma once

#include <unistd.h>

#include <utility>

namespace plakar {

struct Fd {
	int fd = -1;
	explicit Fd(int f) : fd(f) {}
	Fd(const Fd &) = delete;
	Fd &operator=(const Fd &) = delete;
	Fd(Fd &&o) noexcept : fd(std::exchange(o.fd, -1)) {}
	Fd &operator=(Fd &&o) noexcept
	{
		if (this != &o) {
			if (fd >= 0)
				::close(fd);
			fd = std::exchange(o.fd, -1);
		}
		return *this;
	}
	~Fd()
	{
		if (fd >= 0)
			::close(fd);
	}
	// Gives the descriptor up (the caller closes it).
	int release() { return std::exchange(fd, -1); }
};

} // namespace plakar
