#include "net/server.h"

#include <poll.h>

#include <random>

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_set>

#include "net/asio.h"
#include "net/gate.h"
#include "net/tls.h"

namespace plakar::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// The queued answer bytes past which a worker streaming an object waits for the client.
constexpr size_t kQueueHigh = 4u << 20;

// One message as frames; tagged past the handshake (room for the tags enqueue() writes).
Bytes one_frame(Type type, uint64_t id, ByteView body, uint32_t limit, bool tagged)
{
	Bytes out;
	append_message(out, type, id, body, limit, tagged);
	return out;
}

} // namespace

struct Connection;

static std::string escape_log_line(const std::string &line)
{
	static const char hex[] = "0123456789abcdef";
	std::string out;
	out.reserve(line.size());
	for (unsigned char c : line) {
		if (c < 0x20 || c >= 0x7f || c == '\\') {
			out += "\\x";
			out += hex[c >> 4];
			out += hex[c & 15];
		} else {
			out += char(c);
		}
	}
	return out;
}

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
	Impl(std::unique_ptr<Backend> b, ServerOptions o)
	    : backend(std::move(b)), opts(std::move(o)), acceptor(io), workers(std::max(1u, opts.workers))
	{
		if (opts.tls) {
			tls = server_tls_context(*opts.tls);
			pin = net::tls_pin(*opts.tls);
		}
	}

	// Every line is escaped (names and messages come from peers: a control byte or a byte
	// past ASCII is written \xNN, so no peer can end a line or send a terminal escape) and
	// rate-limited: at most kLogBurst lines per kLogWindow, the rest counted and summed up in
	// one line when a later window opens (a flood of refused connections writes a few lines,
	// not megabytes).
	static constexpr size_t kLogBurst = 20;
	static constexpr std::chrono::seconds kLogWindow{10};
	void log(const std::string &line)
	{
		if (!opts.log)
			return;
		std::string summary;
		{
			std::lock_guard lk(log_mu);
			auto now = std::chrono::steady_clock::now();
			if (now - log_window >= kLogWindow) {
				if (log_dropped)
					summary = std::to_string(log_dropped) + " more log lines left out in " +
					          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - log_window).count()) +
					          " s";
				log_window = now;
				log_lines = log_dropped = 0;
			}
			if (log_lines >= kLogBurst) {
				log_dropped++;
				return;
			}
			log_lines++;
		}
		if (!summary.empty())
			opts.log(summary);
		opts.log(escape_log_line(line));
	}
	std::mutex log_mu;
	std::chrono::steady_clock::time_point log_window{};
	size_t log_lines = 0, log_dropped = 0;

	std::unique_ptr<Store> store;     // served here (the gate below is over it), or null
	std::unique_ptr<Backend> backend; // the gate, here or in the store process
	ServerOptions opts;
	std::unique_ptr<ssl::context> tls; // with opts.tls
	std::string pin;
	asio::io_context io;
	tcp::acceptor acceptor;
	asio::thread_pool workers;
	std::atomic<uint64_t> buffered{0}; // request bytes held (being received or executed)

	mutable std::mutex mu;
	ServerStats stats;
	std::set<std::shared_ptr<Connection>> conns;
};

struct Connection : std::enable_shared_from_this<Connection> {
	Connection(std::shared_ptr<Server::Impl> s, tcp::socket sock)
	    : srv(std::move(s)), stream(std::move(sock)), wake(srv->io), watchdog(srv->io),
	      decoder(kMinFrame, srv->opts.max_message)
	{
		try {
			auto ep = stream.socket().remote_endpoint();
			address = ep.address().to_string();
			peer = address + ":" + std::to_string(ep.port());
		} catch (...) {
			peer = "?";
		}
	}

	// Waiting: the gate is asked (a session, a proof); the client has nothing to send then.
	enum class State { Hello, Waiting, Auth, Ready };

	std::shared_ptr<Server::Impl> srv;
	Stream stream;
	asio::steady_timer wake;     // the reader waits here while the connection is at its limits
	asio::steady_timer watchdog; // timeouts
	Decoder decoder;
	std::string peer;
	std::string address; // the peer's address without the port (handshake limits)
	State state = State::Hello;
	Clock::time_point frame_since{}; // when the frame being received began ({} : none)
	Clock::time_point challenged{};  // when the challenge was sent
	uint64_t session = 0; // the gate's, from the hello on
	Bytes hs_hello, hs_challenge, hs_auth; // the handshake so far, for the frame keys
	std::optional<FrameSealer> sealer;     // once welcomed: every frame out is tagged
	std::string token;    // the token's name once authenticated (for the log)
	Clock::time_point since = Clock::now(), last_read = Clock::now(), write_started{};
	bool paused = false;  // the reader waits for room (over_limits): it sees no EOF itself
	bool closing = false; // no more requests: close once the queue is written
	bool closed = false;
	unsigned in_flight = 0;
	uint64_t held = 0; // request bytes of this connection in srv->buffered
	std::unordered_set<uint64_t> ids;

	// The answers waiting to be written (io thread only), and their byte count, which workers
	// streaming an object watch (under qmu).
	std::deque<Bytes> outq;
	bool writing = false;
	std::mutex qmu;
	std::condition_variable qcv;
	size_t queued = 0;
	bool dead = false; // closed: workers stop streaming

	// Whether the client closed its end (or the socket failed), whatever is still unread.
	bool peer_hung_up()
	{
		pollfd p{stream.socket().native_handle(), POLLRDHUP, 0};
		return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
	}

	void start()
	{
		auto self = shared_from_this();
		asio::co_spawn(srv->io, [self]() { return self->reader(); }, asio::detached);
		asio::co_spawn(srv->io, [self]() { return self->guard(); }, asio::detached);
	}

	void close(const std::string &why)
	{
		if (closed)
			return;
		closed = true;
		if (!why.empty())
			srv->log("connection " + peer + (token.empty() ? "" : " (" + token + ")") + ": " + why);
		stream.close();
		end_session();
		wake.cancel();
		watchdog.cancel();
		{
			std::lock_guard lk(qmu);
			dead = true;
		}
		qcv.notify_all();
		std::lock_guard lk(srv->mu);
		srv->stats.active--;
		srv->conns.erase(shared_from_this());
	}

	// Tells the gate the session is over (on a worker: the gate may be another process).
	void end_session()
	{
		if (!session)
			return;
		auto s = srv;
		uint64_t sid = session;
		session = 0;
		asio::post(srv->workers, [s, sid] {
			try {
				s->backend->close_session(sid);
			} catch (const std::exception &) {
				// the store process is gone: the server is stopping
			}
		});
	}

	// Sends a connection-level failure, then closes once it is written.
	void refuse(Code code, const std::string &why)
	{
		if (closing || closed)
			return;
		enqueue(one_frame(Type::Fail, 0, encode_fail(code, why), kMinFrame, sealer.has_value()));
		closing = true;
	}

	// Queues frames to write; past the handshake their tags are written here, on the io
	// thread, in the order they go out.
	void enqueue(Bytes frames)
	{
		if (closed)
			return;
		if (sealer)
			sealer->seal(frames);
		outq.push_back(std::move(frames));
		if (!writing)
			write_next();
	}

	void write_next()
	{
		if (outq.empty() || closed) {
			writing = false;
			if (closing && !closed)
				close("");
			return;
		}
		writing = true;
		write_started = Clock::now();
		auto self = shared_from_this();
		stream.async_write_all(asio::buffer(outq.front()), [self](boost::system::error_code ec, size_t n) {
			if (ec) {
				self->close("write failed: " + ec.message());
				return;
			}
			self->outq.pop_front();
			{
				std::lock_guard lk(self->qmu);
				self->queued -= std::min(self->queued, n);
			}
			self->qcv.notify_all();
			self->write_next();
		});
	}

	// From a worker: queues answer frames, waiting first while the client is behind.
	bool post_frames(Bytes frames, bool wait_for_room)
	{
		{
			std::unique_lock lk(qmu);
			if (wait_for_room)
				qcv.wait(lk, [&] { return dead || queued < kQueueHigh; });
			if (dead)
				return false;
			queued += frames.size();
		}
		asio::post(srv->io, [self = shared_from_this(), f = std::move(frames)]() mutable { self->enqueue(std::move(f)); });
		return true;
	}

	asio::awaitable<void> guard()
	{
		auto self = shared_from_this();
		while (!closed) {
			watchdog.expires_after(std::chrono::milliseconds(250));
			boost::system::error_code ec;
			co_await watchdog.async_wait(asio::redirect_error(asio::use_awaitable, ec));
			if (closed)
				break;
			auto now = Clock::now();
			const auto &o = srv->opts;
			if (state != State::Ready && now - since > o.handshake_timeout) {
				close("no handshake within " + std::to_string(o.handshake_timeout.count()) + " ms");
			} else if (frame_since != Clock::time_point{} && now - frame_since > o.frame_timeout) {
				close("a frame not finished within " + std::to_string(o.frame_timeout.count()) + " ms");
			} else if (writing && now - write_started > o.write_timeout) {
				close("the client stopped reading");
			} else if (in_flight == 0 && !writing && now - last_read > o.idle_timeout) {
				close("idle");
			} else if (paused && peer_hung_up()) {
				close(""); // its partial requests are freed, and the others may read again
			}
		}
	}

	asio::awaitable<void> reader()
	{
		auto self = shared_from_this();
		std::vector<uint8_t> buf(64 * 1024);
		std::vector<Decoder::Message> msgs;
		const auto &o = srv->opts;
		try {
			if (srv->tls && !co_await start_tls())
				co_return;
			while (!closed && !closing) {
				// Back-pressure: a connection at its limits is not read until answers go out.
				while (!closed && over_limits()) {
					paused = true;
					wake.expires_at(Clock::time_point::max());
					boost::system::error_code ec;
					co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
					paused = false;
					if (frame_since != Clock::time_point{})
						frame_since = Clock::now(); // not read meanwhile: not the client's delay
				}
				if (closed)
					break;
				size_t n = co_await stream.read_some(asio::buffer(buf));
				last_read = Clock::now();
				msgs.clear();
				uint64_t before = decoder.partial_bytes();
				uint64_t frames_before = decoder.frames();
				decoder.feed(ByteView(buf.data(), n), msgs);
				if (!decoder.frame_pending())
					frame_since = {};
				else if (frame_since == Clock::time_point{} || decoder.frames() != frames_before)
					frame_since = last_read; // a new frame began in this read
				account(int64_t(decoder.partial_bytes()) - int64_t(before));
				if (decoder.partial_count() > o.max_in_flight)
					fail(Code::Corrupt, "protocol: too many messages begun at once");
				for (auto &m : msgs) {
					if (closing || closed)
						break;
					handle(m);
				}
			}
		} catch (const boost::system::system_error &e) {
			if (e.code() == asio::error::eof || e.code() == asio::error::connection_reset ||
			    e.code() == asio::error::operation_aborted || e.code() == ssl::error::stream_truncated)
				close("");
			else
				close((is_tls_error(e.code()) ? "TLS: " : "") + e.code().message());
		} catch (const Error &e) {
			{
				std::lock_guard lk(srv->mu);
				srv->stats.protocol_errors++;
			}
			srv->log("connection " + peer + ": " + e.what());
			refuse(e.code(), e.what());
		}
		account(-int64_t(decoder.partial_bytes()));
		decoder = Decoder(kMinFrame, o.max_message); // what an aborted message held is freed
		wake_others();
	}

	// Whether this connection must wait before reading more: too many requests in flight, or
	// more request bytes held than one connection may hold, or the server over its bound
	// while this connection holds more than its share (the others go on reading).
	bool over_limits() const
	{
		const auto &o = srv->opts;
		if (in_flight >= o.max_in_flight || held >= o.max_connection_buffered)
			return true;
		if (srv->buffered.load() < o.max_buffered)
			return false;
		uint64_t active;
		{
			std::lock_guard lk(srv->mu);
			active = std::max<uint64_t>(1, srv->stats.active);
		}
		return held > o.max_buffered / active;
	}

	// Connections waiting for the server's buffered bytes to go down may read again.
	void wake_others()
	{
		std::vector<std::shared_ptr<Connection>> all;
		{
			std::lock_guard lk(srv->mu);
			all.assign(srv->conns.begin(), srv->conns.end());
		}
		for (auto &c : all)
			if (c.get() != this)
				c->wake.cancel();
	}

	// The TLS handshake, within the handshake timeout (guard() closes the socket past it). A
	// client that speaks the protocol in the clear (its first byte is not a TLS record's) gets
	// a failure it can read. False when the connection is over.
	asio::awaitable<bool> start_tls()
	{
		uint8_t first = 0;
		co_await stream.socket().async_receive(asio::buffer(&first, 1), tcp::socket::message_peek,
		                                       asio::use_awaitable);
		if (first != 0x16) { // a TLS handshake record
			srv->log("connection " + peer + ": not TLS");
			refuse(Code::Auth, "this server speaks TLS only: use plakar+tls://");
			co_return false;
		}
		stream.start_tls(*srv->tls);
		co_await stream.tls_stream().async_handshake(ssl::stream_base::server, asio::use_awaitable);
		co_return true;
	}

	void account(int64_t delta)
	{
		held = uint64_t(int64_t(held) + delta);
		srv->buffered += uint64_t(delta);
	}

	void handle(Decoder::Message &m)
	{
		switch (state) {
		case State::Hello: {
			if (m.type != Type::Hello)
				fail(Code::Corrupt, "protocol: expected a hello");
			Hello h = decode_hello(m.body);
			if (h.version != kVersion) {
				refuse(Code::Version, "this server speaks protocol version " + std::to_string(kVersion) +
				                          ", not " + std::to_string(h.version));
				return;
			}
			state = State::Waiting;
			hs_hello = std::move(m.body);
			ask_gate([nonce = std::move(h.nonce)](Connection &c) {
				auto o = c.srv->backend->open_session(nonce);
				return [o = std::move(o)](Connection &c) {
					c.session = o.session;
					Challenge ch;
					ch.frame_limit = c.srv->opts.frame_limit;
					ch.max_in_flight = c.srv->opts.max_in_flight;
					ch.nonce = o.server_nonce;
					c.hs_challenge = encode(ch);
					c.enqueue(one_frame(Type::Challenge, 0, c.hs_challenge, kMaxFrameLimit, false));
					c.state = State::Auth;
					c.challenged = Clock::now();
				};
			});
			return;
		}
		case State::Waiting: fail(Code::Corrupt, "protocol: a message in the middle of the handshake");
		case State::Auth: {
			if (m.type != Type::Auth)
				fail(Code::Corrupt, "protocol: expected an auth");
			AuthMsg a = decode_auth(m.body);
			state = State::Waiting;
			hs_auth = std::move(m.body);
			std::string name = a.token_name;
			ask_gate(
			    [a = std::move(a), sid = session](Connection &c) {
				    auto w = c.srv->backend->authenticate(sid, a);
				    return [w = std::move(w), name = a.token_name](Connection &c) {
					    c.token = name;
					    c.state = State::Ready;
					    c.decoder.set_frame_limit(c.srv->opts.frame_limit);
					    Bytes body = encode(w.welcome);
					    c.enqueue(one_frame(Type::Welcome, 0, body, kMaxFrameLimit, false));
					    FrameKeys k = frame_keys(w.secret.view(), c.hs_hello, c.hs_challenge, c.hs_auth, body);
					    c.sealer.emplace(k.to_client.view(), Direction::ToClient);
					    c.decoder.authenticate(k.to_server.view(), Direction::ToServer);
					    c.hs_hello.clear();
					    c.hs_challenge.clear();
					    c.hs_auth.clear();
				    };
			    },
			    name);
			return;
		}
		case State::Ready: break;
		}
		if (!is_request(m.type))
			fail(Code::Corrupt, std::string("protocol: a ") + type_name(m.type) + " frame from a client");
		if (!ids.insert(m.id).second)
			fail(Code::Corrupt, "protocol: request id " + std::to_string(m.id) + " is already in flight");
		in_flight++;
		uint64_t bytes = m.body.size();
		account(int64_t(bytes));
		auto self = shared_from_this();
		asio::post(srv->workers, [self, type = m.type, id = m.id, body = std::move(m.body), bytes, sid = session]() mutable {
			self->execute(sid, type, id, body);
			asio::post(self->srv->io, [self, id, bytes] { self->finished(id, bytes); });
		});
	}

	// A handshake step asks the gate on a worker (the gate may be another process), then goes
	// on on the io thread. ask(c) returns what to do next there; a failure refuses the
	// connection (an Auth failure is counted and logged).
	template <class Ask> void ask_gate(Ask ask, std::string token_name = "")
	{
		auto self = shared_from_this();
		asio::post(srv->workers, [self, ask = std::move(ask), token_name = std::move(token_name)]() mutable {
			std::function<void(Connection &)> next;
			std::optional<Error> err;
			try {
				next = ask(*self);
			} catch (const Error &e) {
				err = e;
			} catch (const std::exception &e) {
				err = Error(Code::Error, e.what());
			}
			asio::post(self->srv->io, [self, next = std::move(next), err = std::move(err), token_name] {
				if (!err) {
					next(*self); // nothing is sent on a closed connection
					if (self->closed)
						self->end_session(); // the session it just opened
					return;
				}
				if (self->closed)
					return;
				if (err->code() == Code::Auth) {
					{
						std::lock_guard lk(self->srv->mu);
						self->srv->stats.auth_failures++;
					}
					self->srv->log("connection " + self->peer + ": authentication failed (token '" + token_name + "')");
					self->refuse(Code::Auth, "authentication failed");
				} else {
					self->srv->log("connection " + self->peer + ": " + err->what());
					self->refuse(err->code() == Code::Corrupt ? Code::Corrupt : Code::Error, err->what());
				}
			});
		});
	}

	void finished(uint64_t id, uint64_t bytes)
	{
		ids.erase(id);
		in_flight--;
		account(-int64_t(bytes));
		{
			std::lock_guard lk(srv->mu);
			srv->stats.requests++;
		}
		wake.cancel();
		wake_others();
	}

	// On a worker: runs one request through the gate and queues its answer. Gets stream.
	void execute(uint64_t sid, Type type, uint64_t id, const Bytes &body)
	{
		uint32_t limit = srv->opts.frame_limit;
		Backend &gate = *srv->backend;
		try {
			if (type == Type::Get || type == Type::GetRange) {
				// Decoded here for the range; the gate decodes and checks again.
				Request q = decode_request(type, body);
				if (type == Type::Get) {
					Bytes sz = gate.call(sid, Type::Size, encode_named(q.kind, q.name));
					Reader r(sz, "size");
					q.offset = 0;
					q.length = r.u64();
				}
				// No size() first for a range (a round trip more to the store process): a range
				// past the end fails in read_range, as the Store contract says (Code::Corrupt).
				send_object(sid, id, q.kind, q.name, q.offset, q.length);
				return;
			}
			Bytes answer = gate.call(sid, type, body);
			post_frames(one_frame(Type::Ok, id, answer, limit, true), false);
		} catch (const Error &e) {
			post_frames(one_frame(Type::Fail, id, encode_fail(e.code(), e.what()), limit, true), false);
		} catch (const std::exception &e) {
			post_frames(one_frame(Type::Fail, id, encode_fail(Code::Error, e.what()), limit, true), false);
		}
	}

	// Sends [offset, offset + length) of an object in frames, read piece by piece: the
	// object is never whole in memory, and a client that reads slowly holds the worker back.
	void send_object(uint64_t sid, uint64_t id, Kind kind, const std::string &name, uint64_t offset, uint64_t length)
	{
		uint32_t limit = srv->opts.frame_limit;
		uint64_t at = 0;
		do {
			size_t n = size_t(std::min<uint64_t>(length - at, limit));
			Bytes frame(kHeader + n + kTag); // the tag is written when it is queued
			if (n)
				srv->backend->read_range(sid, kind, name, offset + at, n, frame.data() + kHeader);
			at += n;
			Header h{uint32_t(n), Type::Ok, uint8_t(at < length ? kFlagMore : 0), id};
			encode_header(h, frame.data());
			if (!post_frames(std::move(frame), true))
				return;
		} while (at < length);
	}
};

// Before a new connection from `address` starts its handshake: when the connections still in
// theirs fill their pool (max_handshakes), one of them is dropped to make room. First those
// that sent no hello within 50 ms, else those that left the challenge unanswered for a
// second; among them, those of the address holding the most handshakes, one at random. Else,
// when some address holds more handshakes than the newcomer's would with it, one of that
// address's waiting for its client (not one with the gate) is dropped: an address flooding
// with hellos takes no place from the others, only from itself. A handshake with the gate is
// never dropped; when nothing can be, the new connection is refused (returns false). io thread.
bool make_room_for_handshake(Server::Impl &srv, const std::string &address)
{
	using State = Connection::State;
	auto now = Clock::now();
	std::vector<std::shared_ptr<Connection>> pending;
	std::map<std::string, size_t> per_address;
	{
		std::lock_guard lk(srv.mu);
		for (const auto &c : srv.conns)
			if (c->state != State::Ready && !c->closed) {
				pending.push_back(c);
				per_address[c->address]++;
			}
	}
	if (pending.size() < std::max(1u, srv.opts.max_handshakes))
		return true;
	auto silent = [&](const Connection &c) {
		return c.state == State::Hello && now - c.since >= std::chrono::milliseconds(50);
	};
	auto stalled = [&](const Connection &c) {
		return c.state == State::Auth && now - c.challenged >= std::chrono::seconds(1);
	};
	// Among the connections `pred` accepts, those of the address holding the most handshakes.
	auto crowded = [&](auto pred) {
		std::vector<std::shared_ptr<Connection>> out;
		size_t most = 0;
		for (const auto &c : pending) {
			if (!pred(*c))
				continue;
			size_t n = per_address[c->address];
			if (n > most) {
				most = n;
				out.clear();
			}
			if (n == most)
				out.push_back(c);
		}
		return out;
	};
	auto victims = crowded(silent);
	if (victims.empty())
		victims = crowded(stalled);
	if (victims.empty()) {
		size_t mine = per_address.count(address) ? per_address[address] : 0;
		victims = crowded([&](const Connection &c) { return c.state != State::Waiting; });
		if (!victims.empty() && per_address[victims.front()->address] <= mine + 1)
			victims.clear(); // the newcomer's address already holds its share
	}
	if (victims.empty())
		return false;
	thread_local std::mt19937_64 rng{std::random_device{}()};
	auto victim = victims[size_t(rng() % victims.size())];
	{
		std::lock_guard lk(srv.mu);
		srv.stats.dropped++;
	}
	victim->close("handshake dropped: too many connections in their handshake");
	return true;
}

asio::awaitable<void> accept_loop(std::shared_ptr<Server::Impl> srv)
{
	for (;;) {
		boost::system::error_code ec;
		tcp::socket sock = co_await srv->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
		if (ec == asio::error::operation_aborted || !srv->acceptor.is_open())
			co_return;
		if (ec) {
			srv->log(std::string("accept: ") + ec.message());
			continue;
		}
		sock.set_option(tcp::no_delay(true), ec);
		sock.set_option(asio::socket_base::keep_alive(true), ec);
		std::shared_ptr<Connection> c;
		std::string address;
		if (auto ep = sock.remote_endpoint(ec); !ec)
			address = ep.address().to_string();
		bool room = make_room_for_handshake(*srv, address);
		{
			std::lock_guard lk(srv->mu);
			if (!room || srv->stats.active >= srv->opts.max_connections) {
				srv->stats.refused++;
			} else {
				c = std::make_shared<Connection>(srv, std::move(sock));
				srv->conns.insert(c);
				srv->stats.connections++;
				srv->stats.active++;
			}
		}
		if (!c) {
			srv->log(room ? "connection refused: " + std::to_string(srv->opts.max_connections) + " already open"
			              : "connection refused: " + std::to_string(srv->opts.max_handshakes) +
			                    " handshakes under way, none of them stalled");
			sock.close(ec);
			continue;
		}
		c->start();
	}
}

Server::Server(std::unique_ptr<Store> store, ServerOptions opts)
{
	auto gate = std::make_unique<Gate>(*store, opts.tokens);
	init(std::move(gate), std::move(opts));
	impl_->store = std::move(store);
}

Server::Server(std::unique_ptr<Backend> backend, ServerOptions opts) { init(std::move(backend), std::move(opts)); }

void Server::init(std::unique_ptr<Backend> backend, ServerOptions opts)
{
	if (opts.frame_limit < kMinFrame || opts.frame_limit > kMaxFrameLimit)
		fail(Code::Invalid, "server: frame limit out of range");
	if (opts.max_in_flight == 0 || opts.max_connections == 0)
		fail(Code::Invalid, "server: limits must be at least 1");
	int adopt = opts.listen_fd;
	std::pair<std::string, uint16_t> hp;
	if (adopt < 0)
		hp = parse_listen(opts.listen);
	impl_ = std::make_shared<Impl>(std::move(backend), std::move(opts));
	auto &a = impl_->acceptor;
	boost::system::error_code ec;
	if (adopt >= 0) {
		sockaddr_storage ss{};
		socklen_t len = sizeof ss;
		::getsockname(adopt, reinterpret_cast<sockaddr *>(&ss), &len);
		a.assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), adopt, ec);
		if (ec)
			fail(Code::Error, "server: cannot serve the listening socket: " + ec.message());
		return;
	}
	auto &[host, port] = hp;
	auto addr = asio::ip::make_address(host, ec);
	tcp::endpoint ep;
	if (!ec) {
		ep = tcp::endpoint(addr, port);
	} else {
		tcp::resolver res(impl_->io);
		auto found = res.resolve(host, std::to_string(port), ec);
		if (ec || found.empty())
			fail(Code::Invalid, "server: cannot resolve '" + host + "': " + ec.message());
		ep = found.begin()->endpoint();
	}
	a.open(ep.protocol(), ec);
	if (!ec)
		a.set_option(tcp::acceptor::reuse_address(true), ec);
	if (!ec)
		a.bind(ep, ec);
	if (!ec)
		a.listen(asio::socket_base::max_listen_connections, ec);
	if (ec)
		fail(Code::Error, "server: cannot listen on " + impl_->opts.listen + ": " + ec.message());
}

Server::~Server()
{
	stop();
	impl_->workers.join();
}

std::string Server::tls_pin() const { return impl_->pin; }

uint16_t Server::port() const { return impl_->acceptor.local_endpoint().port(); }

std::string Server::address() const
{
	auto ep = impl_->acceptor.local_endpoint();
	std::string h = ep.address().to_string();
	if (ep.address().is_v6())
		h = "[" + h + "]";
	return h + ":" + std::to_string(ep.port());
}

void Server::run()
{
	auto srv = impl_;
	asio::co_spawn(srv->io, accept_loop(srv), asio::detached);
	srv->io.run();
	// Stopped: every connection goes, and workers still streaming are released.
	std::set<std::shared_ptr<Connection>> left;
	{
		std::lock_guard lk(srv->mu);
		left = srv->conns;
	}
	for (auto &c : left)
		c->close("");
	srv->workers.join();
	srv->io.restart();
	// The answers workers posted while stopping, and every coroutine the closes canceled: run
	// until nothing is ready (a coroutine resumed by a cancellation may post more), so that no
	// handler is left holding the server or a connection (their frames would keep each other).
	while (srv->io.poll() > 0) {
	}
}

void Server::stop()
{
	// A weak reference: a stop posted when run() is over (or never ran) stays in the server's
	// own io_context, and a strong one there would keep the server alive for ever.
	std::weak_ptr<Impl> weak = impl_;
	asio::post(impl_->io, [weak] {
		if (auto srv = weak.lock()) {
			boost::system::error_code ec;
			srv->acceptor.close(ec);
			srv->io.stop();
		}
	});
}

ServerStats Server::stats() const
{
	std::lock_guard lk(impl_->mu);
	return impl_->stats;
}

} // namespace plakar::net
