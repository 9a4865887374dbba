// ipcmsg: typed messages between two processes over a connected UNIX socket, with file
// descriptor passing and synchronous queries (docs/privsep.md).
//
// A Channel owns one end of a socketpair(AF_UNIX, SOCK_STREAM) whose other end belongs to
// another process, the peer, whose pid the channel is bound to. Each side sends a hello (magic,
// protocol version) when the channel is made; the first frame read must be the peer's hello,
// of the same version.
//
//     Channel c("net<->store", fd, peer_pid, {.pass_fds = true});
//     c.handler(MSG_PING, [](Channel &ch, Message &m) { ch.reply(m, MSG_PONG, m.data); });
//     auto done = c.dispatch_async();          // the read loop, on a thread of its own
//     Message r = c.query(MSG_PING, bytes);    // blocks this thread only
//
// Threads: handler() before dispatch starts. message(), query() and reply() may be called
// from any thread at once (frames are never interleaved); query() not from the thread running
// dispatch() (it would wait for itself: Code::Invalid). Handlers run on the dispatch thread,
// one at a time.
//
// A hostile peer cannot crash the process or leak descriptors: payloads above the limit,
// malformed headers, a frame cut short, an unannounced or unexpected descriptor, a wrong pid
// or a message type nobody handles close the channel with a one-line error (dispatch() throws
// it, pending queries fail with it). A descriptor a handler does not take is closed.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "base/bytes.h"
#include "base/fd.h"
#include "privsep/frame.h"

namespace plakar::privsep {

struct Message {
	uint32_t type = 0;
	uint32_t peer_id = 0; // what the sender calls itself (its index in a privsep daemon)
	pid_t pid = 0;        // the sender's pid (checked against the channel's peer)
	uint32_t seq = 0;     // non-zero for a query (reply() echoes it) and for its reply
	bool query = false;
	Bytes data;
	Fd fd{-1}; // the descriptor that came with the message, if any: take it or it is closed

	// Gives the descriptor to the caller (-1 when none came).
	int take_fd() { return fd.release(); }
};

class Channel {
public:
	struct Options {
		size_t max_payload = 1 << 20; // larger frames from the peer close the channel
		bool pass_fds = false;        // descriptors may travel (both ways) on this channel
		uint32_t local_id = 0;        // sent as peer_id in every frame
	};
	using Handler = std::function<void(Channel &, Message &)>;

	// fd: this side of a connected AF_UNIX stream socket pair (owned from now on). peer_pid:
	// the process holding the other end. Sends the hello at once (a peer already gone leaves
	// the channel closed).
	Channel(std::string name, int fd, pid_t peer_pid, Options opts);
	Channel(std::string name, int fd, pid_t peer_pid) : Channel(std::move(name), fd, peer_pid, Options()) {}
	// Closes the socket: a running dispatch returns, pending queries fail; joins the thread of
	// dispatch_async().
	~Channel();
	Channel(const Channel &) = delete;
	Channel &operator=(const Channel &) = delete;

	const std::string &name() const { return name_; }
	pid_t peer_pid() const { return peer_pid_; }

	// Declares what to do with messages of a type (before dispatch starts). A message of a
	// type without a handler is a protocol error.
	void handler(uint32_t type, Handler fn);
	// The read loop: reads, checks and dispatches messages until the peer closes the channel
	// (returns) or breaks the protocol (throws Code::Corrupt / Code::Version, after closing
	// the channel). Either way pending queries fail. Runs once per channel.
	void dispatch();
	// dispatch() on a thread of its own; the future reports how it ended.
	std::future<void> dispatch_async();

	// Sends a message without waiting for anything. fd (optional) stays the caller's: the peer
	// gets its own descriptor of the same open file. Code::Error when the channel is closed.
	void message(uint32_t type, ByteView data = {}, int fd = -1);
	// Sends a query and waits for its reply (type, data, fd). Code::Error when the channel
	// closes first (the peer died, or broke the protocol) or when timeout (if not zero) passes.
	Message query(uint32_t type, ByteView data = {}, int fd = -1,
	              std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
	// Answers a query received by a handler.
	void reply(const Message &query, uint32_t type, ByteView data = {}, int fd = -1);
	// Shuts the channel down: dispatch returns, pending and later queries fail.
	void close();
	bool closed() const;

private:
	void send(uint32_t type, uint32_t seq, uint16_t flags, ByteView data, int fd);
	// Reads from the socket into the decoder; false at the end of the stream.
	bool fill(std::vector<Frame> &frames);
	void deliver(Frame &f);
	void run_loop();
	void fail_pending(const std::string &why);

	const std::string name_;
	const pid_t peer_pid_;
	const Options opts_;
	Fd sock_;
	std::unordered_map<uint32_t, Handler> handlers_;
	std::atomic<std::thread::id> dispatch_thread_{};
	std::atomic<bool> started_{false};
	std::thread async_;

	std::mutex send_mu_; // one frame at a time

	mutable std::mutex mu_; // pending_, next_seq_, closed_, why_
	std::unordered_map<uint32_t, std::promise<Message>> pending_;
	uint32_t next_seq_ = 1;
	bool closed_ = false;
	std::string why_;

	// Reader only.
	FrameDecoder decoder_;
	std::deque<Fd> fds_; // received, not yet claimed by a frame
	bool hello_seen_ = false;
	Bytes rbuf_;
};

} // namespace plakar::privsep
