#include "privsep/ipcmsg.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace plakar::privsep {

namespace {
constexpr size_t kReadBuffer = 64 * 1024;
// Descriptors accepted per read: more is a protocol error (the peer sends one per frame).
constexpr size_t kMaxFdsPerRead = 8;
} // namespace

Channel::Channel(std::string name, int fd, pid_t peer_pid, Options opts)
    : name_(std::move(name)), peer_pid_(peer_pid), opts_(opts), sock_(fd), decoder_(opts.max_payload)
{
	if (sock_.fd < 0)
		fail(Code::Invalid, "ipcmsg: channel " + name_ + " without a socket");
	Hello h;
	h.max_payload = uint32_t(std::min<size_t>(opts_.max_payload, 0xffffffffu));
	h.name = name_;
	try {
		send(kTypeHello, 0, 0, encode_hello(h), -1);
	} catch (const Error &e) {
		// A peer that is already gone is what dispatch() reports (it returns at once); the
		// channel is closed and queries fail.
		std::lock_guard lk(mu_);
		closed_ = true;
		why_ = "the peer has closed the channel";
	}
}

Channel::~Channel()
{
	close();
	if (async_.joinable())
		async_.join();
}

void Channel::handler(uint32_t type, Handler fn)
{
	if (type >= kReservedTypes)
		fail(Code::Invalid, "ipcmsg: message type " + std::to_string(type) + " is reserved");
	handlers_[type] = std::move(fn);
}

bool Channel::closed() const
{
	std::lock_guard lk(mu_);
	return closed_;
}

void Channel::close()
{
	{
		std::lock_guard lk(mu_);
		closed_ = true;
		if (why_.empty())
			why_ = "closed by this side";
	}
	// Wakes the reader (recvmsg returns 0) without freeing the descriptor under it.
	::shutdown(sock_.fd, SHUT_RDWR);
}

void Channel::fail_pending(const std::string &why)
{
	std::unordered_map<uint32_t, std::promise<Message>> pending;
	{
		std::lock_guard lk(mu_);
		closed_ = true;
		if (why_.empty())
			why_ = why;
		pending.swap(pending_);
	}
	std::string msg = why.rfind("ipcmsg:", 0) == 0 ? why : "ipcmsg: " + name_ + ": " + why;
	for (auto &[seq, p] : pending)
		p.set_exception(std::make_exception_ptr(Error(Code::Error, msg)));
}

void Channel::send(uint32_t type, uint32_t seq, uint16_t flags, ByteView data, int fd)
{
	if (fd >= 0) {
		if (!opts_.pass_fds)
			fail(Code::Invalid, "ipcmsg: " + name_ + ": this channel does not pass descriptors");
		flags |= kFrameFd;
	}
	if (data.size() > 0xffffffffu)
		fail(Code::Invalid, "ipcmsg: " + name_ + ": message too large");
	FrameHeader h;
	h.type = type;
	h.length = uint32_t(data.size());
	h.peer_id = opts_.local_id;
	h.pid = uint32_t(::getpid());
	h.seq = seq;
	h.flags = flags;
	uint8_t head[kFrameHeader];
	encode_header(h, head);

	std::lock_guard lk(send_mu_);
	size_t total = kFrameHeader + data.size(), sent = 0;
	bool fd_pending = fd >= 0;
	while (sent < total) {
		struct iovec part[2];
		size_t n = 0;
		if (sent < kFrameHeader) {
			part[n++] = {head + sent, kFrameHeader - sent};
			if (data.size())
				part[n++] = {const_cast<uint8_t *>(data.data()), data.size()};
		} else {
			size_t off = sent - kFrameHeader;
			part[n++] = {const_cast<uint8_t *>(data.data()) + off, data.size() - off};
		}
		// The descriptor rides on the frame's first bytes: the reader has it by the time it has
		// the header.
		ssize_t w = send_with_fd(sock_.fd, part, n, fd_pending ? fd : -1);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			int err = errno;
			if (err == EPIPE || err == ECONNRESET || err == ENOTCONN)
				fail(Code::Error, "ipcmsg: " + name_ + ": the peer has closed the channel");
			if (err == EBADF && fd_pending)
				fail(Code::Invalid, "ipcmsg: " + name_ + ": descriptor " + std::to_string(fd) + " is not open");
			fail_errno("ipcmsg: " + name_ + ": send", err);
		}
		fd_pending = false;
		sent += size_t(w);
	}
}

void Channel::message(uint32_t type, ByteView data, int fd)
{
	if (type >= kReservedTypes)
		fail(Code::Invalid, "ipcmsg: message type " + std::to_string(type) + " is reserved");
	if (closed())
		fail(Code::Error, "ipcmsg: " + name_ + ": the channel is closed");
	send(type, 0, 0, data, fd);
}

void Channel::reply(const Message &q, uint32_t type, ByteView data, int fd)
{
	if (!q.query || q.seq == 0)
		fail(Code::Invalid, "ipcmsg: " + name_ + ": reply to a message that is not a query");
	if (type >= kReservedTypes)
		fail(Code::Invalid, "ipcmsg: message type " + std::to_string(type) + " is reserved");
	send(type, q.seq, kFrameReply, data, fd);
}

Message Channel::query(uint32_t type, ByteView data, int fd, std::chrono::milliseconds timeout)
{
	if (type >= kReservedTypes)
		fail(Code::Invalid, "ipcmsg: message type " + std::to_string(type) + " is reserved");
	if (std::this_thread::get_id() == dispatch_thread_.load())
		fail(Code::Invalid, "ipcmsg: " + name_ + ": a query from the dispatch thread would wait for itself");
	uint32_t seq;
	std::future<Message> answer;
	{
		std::lock_guard lk(mu_);
		if (closed_)
			fail(Code::Error, why_.rfind("ipcmsg:", 0) == 0 ? why_ : "ipcmsg: " + name_ + ": " + why_);
		do
			seq = next_seq_++;
		while (seq == 0 || pending_.count(seq));
		answer = pending_[seq].get_future();
	}
	try {
		send(type, seq, kFrameQuery, data, fd);
	} catch (...) {
		std::lock_guard lk(mu_);
		pending_.erase(seq);
		throw;
	}
	if (timeout.count() > 0 && answer.wait_for(timeout) != std::future_status::ready) {
		std::lock_guard lk(mu_);
		if (pending_.erase(seq))
			fail(Code::Error, "ipcmsg: " + name_ + ": no reply within " + std::to_string(timeout.count()) + " ms");
		// Answered (or failed) just now: fall through.
	}
	return answer.get();
}

bool Channel::fill(std::vector<Frame> &frames)
{
	if (rbuf_.size() < kReadBuffer)
		rbuf_.resize(kReadBuffer);
	for (;;) {
		struct iovec iov = {rbuf_.data(), rbuf_.size()};
		alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerRead)];
		struct msghdr msg {};
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control;
		msg.msg_controllen = sizeof control;
		ssize_t n = ::recvmsg(sock_.fd, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNRESET)
				return false;
			fail_errno("ipcmsg: " + name_ + ": receive", errno);
		}
		// Every descriptor that arrived is owned at once, so none leaks whatever happens next.
		size_t got_fds = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < count; i++) {
				int f;
				std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				fds_.emplace_back(f);
				got_fds++;
			}
		}
		if (msg.msg_flags & MSG_CTRUNC)
			fail(Code::Corrupt, "ipcmsg: " + name_ + ": the peer sent more descriptors than frames");
		if (got_fds && !opts_.pass_fds)
			fail(Code::Corrupt, "ipcmsg: " + name_ + ": the peer sent a descriptor on a channel that passes none");
		if (n == 0) {
			if (decoder_.mid_frame())
				fail(Code::Corrupt, "ipcmsg: " + name_ + ": the peer closed the channel in the middle of a frame");
			return false;
		}
		decoder_.feed(ByteView(rbuf_.data(), size_t(n)), frames);
		return true;
	}
}

void Channel::deliver(Frame &f)
{
	if (peer_pid_ > 0 && f.h.pid != uint32_t(peer_pid_))
		fail(Code::Corrupt, "ipcmsg: " + name_ + ": a frame claims pid " + std::to_string(f.h.pid) + ", the peer is " +
		                        std::to_string(peer_pid_));
	Message m;
	m.type = f.h.type;
	m.peer_id = f.h.peer_id;
	m.pid = pid_t(f.h.pid);
	m.seq = f.h.seq;
	m.query = f.h.flags & kFrameQuery;
	m.data = std::move(f.payload);
	if (f.h.flags & kFrameFd) {
		if (fds_.empty())
			fail(Code::Corrupt, "ipcmsg: " + name_ + ": a frame announces a descriptor that did not come");
		m.fd = std::move(fds_.front());
		fds_.pop_front();
	}
	if (!hello_seen_) {
		if (m.type != kTypeHello)
			fail(Code::Corrupt, "ipcmsg: " + name_ + ": the peer did not start with a hello");
		parse_hello(m.data);
		hello_seen_ = true;
		return;
	}
	if (m.type == kTypeHello)
		fail(Code::Corrupt, "ipcmsg: " + name_ + ": a second hello");
	if (f.h.flags & kFrameReply) {
		std::promise<Message> p;
		{
			std::lock_guard lk(mu_);
			auto it = pending_.find(m.seq);
			if (it == pending_.end()) {
				// A query given up (timeout) may still be answered; anything else is an error.
				if (m.seq >= next_seq_)
					fail(Code::Corrupt, "ipcmsg: " + name_ + ": a reply to no query");
				return;
			}
			p = std::move(it->second);
			pending_.erase(it);
		}
		p.set_value(std::move(m));
		return;
	}
	auto h = handlers_.find(m.type);
	if (h == handlers_.end())
		fail(Code::Corrupt, "ipcmsg: " + name_ + ": no handler for message type " + std::to_string(m.type));
	h->second(*this, m);
	// m.fd, if the handler did not take it, is closed here.
}

void Channel::dispatch()
{
	if (started_.exchange(true))
		fail(Code::Invalid, "ipcmsg: " + name_ + ": dispatch runs once");
	dispatch_thread_ = std::this_thread::get_id();
	run_loop();
}

std::future<void> Channel::dispatch_async()
{
	if (started_.exchange(true))
		fail(Code::Invalid, "ipcmsg: " + name_ + ": dispatch runs once");
	std::promise<void> done;
	auto f = done.get_future();
	async_ = std::thread([this, p = std::move(done)]() mutable {
		dispatch_thread_ = std::this_thread::get_id();
		try {
			run_loop();
			p.set_value();
		} catch (...) {
			p.set_exception(std::current_exception());
		}
	});
	return f;
}

void Channel::run_loop()
{
	std::vector<Frame> frames;
	try {
		for (;;) {
			frames.clear();
			if (!fill(frames))
				break;
			for (auto &f : frames)
				deliver(f);
		}
	} catch (const std::exception &e) {
		fail_pending(e.what());
		::shutdown(sock_.fd, SHUT_RDWR);
		fds_.clear();
		throw;
	}
	fail_pending("the peer has closed the channel");
	fds_.clear();
}

} // namespace plakar::privsep
