#include "passphrase.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "report.h"

namespace plakar::cli {

namespace {

constexpr std::size_t kInitialCapacity = 4096;

void wipe(char *p, std::size_t n) {
	if (p != nullptr && n > 0)
		explicit_bzero(p, n);
}

} // namespace

Secret::Secret() : data_(new char[kInitialCapacity]), capacity_(kInitialCapacity) {}

Secret::~Secret() { wipe(data_.get(), capacity_); }

Secret::Secret(Secret &&other) noexcept
    : data_(std::move(other.data_)), size_(other.size_), capacity_(other.capacity_) {
	other.size_ = other.capacity_ = 0;
}

Secret &Secret::operator=(Secret &&other) noexcept {
	if (this != &other) {
		wipe(data_.get(), capacity_);
		data_ = std::move(other.data_);
		size_ = other.size_;
		capacity_ = other.capacity_;
		other.size_ = other.capacity_ = 0;
	}
	return *this;
}

void Secret::push_back(char c) {
	if (size_ == capacity_) {
		std::size_t capacity = capacity_ == 0 ? kInitialCapacity : capacity_ * 2;
		std::unique_ptr<char[]> grown(new char[capacity]);
		if (size_ > 0)
			std::memcpy(grown.get(), data_.get(), size_);
		wipe(data_.get(), capacity_);
		data_ = std::move(grown);
		capacity_ = capacity;
	}
	data_[size_++] = c;
}

void Secret::pop_back() {
	if (size_ > 0)
		data_[--size_] = '\0';
}

void Secret::clear() {
	wipe(data_.get(), size_);
	size_ = 0;
}

bool Secret::operator==(const Secret &other) const {
	return size_ == other.size_ && (size_ == 0 || std::memcmp(data_.get(), other.data_.get(), size_) == 0);
}

std::optional<Secret> supplied_passphrase(const std::optional<std::string> &passphrase_file) {
	// An explicit -passphrase-file wins over the environment.
	if (!passphrase_file) {
		const char *env = std::getenv("PLAKAR_PASSPHRASE");
		if (env == nullptr)
			return std::nullopt;
		Secret s;
		for (const char *p = env; *p != '\0'; ++p)
			s.push_back(*p);
		return s;
	}

	int fd = ::open(passphrase_file->c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		throw Failure("cannot read passphrase file " + *passphrase_file + ": " + std::strerror(errno));
	Secret s;
	char buf[512];
	for (;;) {
		ssize_t n = ::read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			wipe(buf, sizeof buf);
			::close(fd);
			throw Failure("cannot read passphrase file " + *passphrase_file + ": " + std::strerror(err));
		}
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; ++i)
			s.push_back(buf[i]);
	}
	wipe(buf, sizeof buf);
	::close(fd);
	if (!s.empty() && s.back() == '\n') {
		s.pop_back();
		if (!s.empty() && s.back() == '\r')
			s.pop_back();
	}
	return s;
}

namespace {

// The terminal state to put back if a signal arrives while echo is off.
volatile sig_atomic_t g_tty_fd = -1;
struct termios g_saved_termios;

const int kRestoreSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};

extern "C" void restore_terminal_and_reraise(int sig) {
	if (g_tty_fd >= 0)
		tcsetattr(g_tty_fd, TCSAFLUSH, &g_saved_termios);
	signal(sig, SIG_DFL);
	raise(sig);
}

// Echo off for the lifetime of the object; signals that would leave the terminal mute
// restore it first.
class NoEcho {
public:
	explicit NoEcho(int fd) : fd_(fd) {
		if (tcgetattr(fd, &g_saved_termios) != 0)
			throw Failure(std::string("cannot read the terminal settings: ") + std::strerror(errno));
		struct sigaction sa {};
		sa.sa_handler = restore_terminal_and_reraise;
		sigemptyset(&sa.sa_mask);
		for (std::size_t i = 0; i < std::size(kRestoreSignals); ++i)
			sigaction(kRestoreSignals[i], &sa, &old_actions_[i]);
		g_tty_fd = fd;
		struct termios quiet = g_saved_termios;
		quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHOE | ECHOK);
		quiet.c_lflag |= ECHONL | ICANON; // the newline still shows, the passphrase does not
		if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
			int err = errno;
			restore();
			throw Failure(std::string("cannot turn off the terminal echo: ") + std::strerror(err));
		}
	}
	~NoEcho() { restore(); }
	NoEcho(const NoEcho &) = delete;
	NoEcho &operator=(const NoEcho &) = delete;

private:
	void restore() {
		tcsetattr(fd_, TCSAFLUSH, &g_saved_termios);
		g_tty_fd = -1;
		for (std::size_t i = 0; i < std::size(kRestoreSignals); ++i)
			sigaction(kRestoreSignals[i], &old_actions_[i], nullptr);
	}
	int fd_;
	struct sigaction old_actions_[std::size(kRestoreSignals)];
};

void write_all(int fd, const char *s) {
	std::size_t len = std::strlen(s);
	while (len > 0) {
		ssize_t n = ::write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			throw Failure(std::string("cannot write to the terminal: ") + std::strerror(errno));
		s += n;
		len -= static_cast<std::size_t>(n);
	}
}

Secret read_line(int fd, const char *prompt) {
	// Echo goes off (discarding anything typed ahead) before the prompt shows: what is typed
	// after the prompt is never echoed.
	NoEcho no_echo(fd);
	write_all(fd, prompt);
	Secret s;
	for (;;) {
		char c;
		ssize_t n = ::read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			throw Failure(std::string("cannot read the passphrase: ") + std::strerror(errno));
		if (n == 0) {
			if (s.empty())
				throw Failure("no passphrase entered");
			break;
		}
		if (c == '\n')
			break;
		s.push_back(c);
		c = '\0';
	}
	if (!s.empty() && s.back() == '\r')
		s.pop_back();
	return s;
}

class Fd {
public:
	explicit Fd(int fd) : fd_(fd) {}
	~Fd() {
		if (fd_ >= 0)
			::close(fd_);
	}
	Fd(const Fd &) = delete;
	Fd &operator=(const Fd &) = delete;
	int get() const { return fd_; }

private:
	int fd_;
};

} // namespace

Secret prompt_passphrase(bool confirm) {
	Fd tty(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
	if (tty.get() < 0)
		throw Failure("a passphrase is required: set PLAKAR_PASSPHRASE, use -passphrase-file FILE, "
		              "or run on a terminal");
	Secret first = read_line(tty.get(), "passphrase: ");
	if (!confirm)
		return first;
	Secret second = read_line(tty.get(), "passphrase (again): ");
	if (!(first == second))
		throw Failure("passphrases do not match");
	return first;
}

} // namespace plakar::cli
