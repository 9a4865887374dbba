#include "agent/agent.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/error.h"

namespace plakar::agent {

namespace {

constexpr uint8_t kVersion = kFrameVersion;
constexpr size_t kHeader = kFrameHeader;
constexpr size_t kMaxPayload = kFramePayloadMax;
constexpr int kIoTimeoutMs = 2000;
enum Type : uint8_t { kGet = 1, kPut = 2, kStop = 3, kKey = 0x81, kNone = 0x82, kOk = 0x83, kRefused = 0x84 };

bool fill_address(const std::string &path, sockaddr_un &sa)
{
	std::memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (path.empty() || path.size() >= sizeof sa.sun_path)
		return false;
	std::memcpy(sa.sun_path, path.data(), path.size());
	return true;
}

// Waits until fd is readable (or writable); false on timeout or error.
bool wait_fd(int fd, short events, int timeout_ms)
{
	pollfd p{fd, events, 0};
	for (;;) {
		int n = ::poll(&p, 1, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		return n == 1 && (p.revents & events);
	}
}

bool send_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		if (!wait_fd(fd, POLLOUT, kIoTimeoutMs))
			return false;
		ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= size_t(w);
	}
	return true;
}

bool recv_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		if (!wait_fd(fd, POLLIN, kIoTimeoutMs))
			return false;
		ssize_t r = ::recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= size_t(r);
	}
	return true;
}

bool send_frame(int fd, uint8_t type, const uint8_t *payload, size_t n)
{
	uint8_t buf[kHeader + kMaxPayload];
	std::memcpy(buf, "PLKA", 4);
	buf[4] = kVersion;
	buf[5] = type;
	buf[6] = uint8_t(n);
	buf[7] = uint8_t(n >> 8);
	if (n)
		std::memcpy(buf + kHeader, payload, n);
	bool ok = send_all(fd, buf, kHeader + n);
	crypto::wipe(buf, sizeof buf);
	return ok;
}

// Reads one frame; false when it is malformed, too long, or does not come in time.
bool recv_frame(int fd, uint8_t &type, uint8_t *payload, size_t &n)
{
	uint8_t h[kHeader];
	if (!recv_all(fd, h, kHeader) || !decode_frame_header(ByteView(h, kHeader), type, n))
		return false;
	return recv_all(fd, payload, n);
}

// One request, one answer, on a fresh connection. Returns the answer's type (0 on failure).
uint8_t exchange(const std::string &socket, uint8_t type, const uint8_t *payload, size_t n, uint8_t *answer,
                 size_t &answer_len)
{
	sockaddr_un sa;
	if (!fill_address(socket, sa))
		return 0;
	Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (fd.fd < 0 || ::connect(fd.fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0)
		return 0;
	// The agent must be ours too: a socket planted by another user gets nothing.
	ucred cred{};
	socklen_t len = sizeof cred;
	if (::getsockopt(fd.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != ::getuid())
		return 0;
	if (!send_frame(fd.fd, type, payload, n))
		return 0;
	uint8_t t = 0;
	if (!recv_frame(fd.fd, t, answer, answer_len))
		return 0;
	return t;
}

// The keys, in a few pages of their own: locked in RAM (never swapped), left out of core
// dumps, wiped before they are unmapped. Locking only these pages stays within the default
// RLIMIT_MEMLOCK, where locking the whole process would not (and would take long).
class KeySlab {
public:
	static constexpr size_t kSlots = 256;
	KeySlab()
	{
		void *p = ::mmap(nullptr, sizeof(Slot) * kSlots, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			fail_errno("mmap", errno);
		slots_ = static_cast<Slot *>(p);
		::mlock(p, sizeof(Slot) * kSlots); // best effort
		::madvise(p, sizeof(Slot) * kSlots, MADV_DONTDUMP);
	}
	~KeySlab()
	{
		crypto::wipe(slots_, sizeof(Slot) * kSlots);
		::munlock(slots_, sizeof(Slot) * kSlots);
		::munmap(slots_, sizeof(Slot) * kSlots);
	}
	KeySlab(const KeySlab &) = delete;
	KeySlab &operator=(const KeySlab &) = delete;
	const uint8_t *find(const uint8_t *id) const
	{
		for (size_t i = 0; i < kSlots; i++)
			if (slots_[i].used && std::memcmp(slots_[i].id, id, 16) == 0)
				return slots_[i].key;
		return nullptr;
	}
	// Stores (or replaces) a key; false when every slot is taken.
	bool put(const uint8_t *id, const uint8_t *key)
	{
		Slot *free_slot = nullptr;
		for (size_t i = 0; i < kSlots; i++) {
			if (slots_[i].used && std::memcmp(slots_[i].id, id, 16) == 0) {
				std::memcpy(slots_[i].key, key, 32);
				return true;
			}
			if (!slots_[i].used && !free_slot)
				free_slot = &slots_[i];
		}
		if (!free_slot)
			return false;
		std::memcpy(free_slot->id, id, 16);
		std::memcpy(free_slot->key, key, 32);
		free_slot->used = 1;
		return true;
	}

private:
	struct Slot {
		uint8_t used;
		uint8_t id[16];
		uint8_t key[32];
	};
	Slot *slots_;
};

} // namespace

std::optional<crypto::SecureBytes> fetch(const std::string &socket, const RepoId &repo)
{
	uint8_t answer[kMaxPayload];
	size_t n = 0;
	uint8_t t = exchange(socket, kGet, repo.data(), repo.size(), answer, n);
	std::optional<crypto::SecureBytes> out;
	if (t == kKey && n == 32)
		out = crypto::SecureBytes(ByteView(answer, 32));
	crypto::wipe(answer, sizeof answer);
	return out;
}

void offer(const std::string &socket, const RepoId &repo, const crypto::SecureBytes &master)
{
	if (master.size() != 32)
		return;
	uint8_t msg[16 + 32];
	std::memcpy(msg, repo.data(), 16);
	std::memcpy(msg + 16, master.data(), 32);
	uint8_t answer[kMaxPayload];
	size_t n = 0;
	exchange(socket, kPut, msg, sizeof msg, answer, n);
	crypto::wipe(msg, sizeof msg);
}

void stop(const std::string &socket)
{
	uint8_t answer[kMaxPayload];
	size_t n = 0;
	if (exchange(socket, kStop, nullptr, 0, answer, n) != kOk)
		fail(Code::NotFound, "no agent answers at " + socket);
}

Listener Listener::listen(const std::string &socket)
{
	sockaddr_un sa;
	if (!fill_address(socket, sa))
		fail(Code::Invalid, "agent socket path is empty or too long: " + socket);
	// The socket must never be reachable with a wider mode than 0600, and the process's umask
	// is not ours to change (other threads create files): it is bound in a fresh directory
	// only this user can enter, made 0600 there, then linked to its name (which fails if
	// anything is there already) and the directory removed.
	size_t slash = socket.rfind('/');
	std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : socket.substr(0, slash);
	std::string tmpl = (dir == "/" ? "" : dir) + "/.plakar-agent-XXXXXX";
	if (::mkdtemp(tmpl.data()) == nullptr)
		fail_errno(dir, errno);
	const std::string inner = tmpl + "/s";
	sockaddr_un ia;
	struct Cleanup {
		const std::string &d, &s;
		~Cleanup()
		{
			::unlink(s.c_str());
			::rmdir(d.c_str());
		}
	} cleanup{tmpl, inner};
	if (!fill_address(inner, ia))
		fail(Code::Invalid, "agent socket path is too long: " + socket);
	Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (fd.fd < 0)
		fail_errno("socket", errno);
	if (::bind(fd.fd, reinterpret_cast<sockaddr *>(&ia), sizeof ia) != 0 || ::chmod(inner.c_str(), 0600) != 0)
		fail_errno(socket, errno);
	if (::link(inner.c_str(), socket.c_str()) != 0) {
		if (errno == EEXIST)
			fail(Code::Exists, socket + ": already exists (another agent?)");
		fail_errno(socket, errno);
	}
	int err = 0;
	if (::listen(fd.fd, 16) != 0) {
		err = errno;
		::unlink(socket.c_str());
		fail_errno(socket, err);
	}
	return Listener(socket, fd.release());
}

void Listener::serve(unsigned idle_timeout_s)
{
	// No core dump, no ptrace by other processes of the user; the keys in locked pages.
	::prctl(PR_SET_DUMPABLE, 0);
	KeySlab keys;
	const uid_t me = ::getuid();
	auto last = std::chrono::steady_clock::now();
	bool running = true;
	while (running) {
		int timeout_ms = -1;
		if (idle_timeout_s) {
			auto left = std::chrono::seconds(idle_timeout_s) - (std::chrono::steady_clock::now() - last);
			if (left <= std::chrono::seconds(0))
				break;
			timeout_ms = int(std::chrono::duration_cast<std::chrono::milliseconds>(left).count()) + 1;
		}
		pollfd p{fd_.fd, POLLIN, 0};
		int n = ::poll(&p, 1, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (n == 0)
			continue; // the loop head decides whether the idle time is over
		Fd c(::accept4(fd_.fd, nullptr, nullptr, SOCK_CLOEXEC));
		if (c.fd < 0)
			continue;
		ucred cred{};
		socklen_t len = sizeof cred;
		if (::getsockopt(c.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != me) {
			send_frame(c.fd, kRefused, nullptr, 0);
			continue;
		}
		uint8_t type = 0;
		uint8_t payload[kMaxPayload];
		size_t plen = 0;
		bool ok = recv_frame(c.fd, type, payload, plen);
		Request q = ok ? classify_request(type, plen) : Request::Invalid;
		if (q == Request::Get) {
			if (const uint8_t *k = keys.find(payload))
				send_frame(c.fd, kKey, k, 32);
			else
				send_frame(c.fd, kNone, nullptr, 0);
			last = std::chrono::steady_clock::now();
		} else if (q == Request::Put) {
			send_frame(c.fd, keys.put(payload, payload + 16) ? kOk : kRefused, nullptr, 0);
			last = std::chrono::steady_clock::now();
		} else if (q == Request::Stop) {
			send_frame(c.fd, kOk, nullptr, 0);
			running = false;
		} else {
			send_frame(c.fd, kRefused, nullptr, 0);
		}
		crypto::wipe(payload, sizeof payload);
	}
	::unlink(path_.c_str());
}

} // namespace plakar::agent
