#include "net/server.h"

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <unordered_set>

#include "net/asio.h"
#include "net/request_store.h"

namespace plakar::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// The queued answer bytes past which a worker streaming an object waits for the client.
constexpr size_t kQueueHigh = 4u << 20;

Bytes one_frame(Type type, uint64_t id, ByteView body, uint32_t limit)
{
	Bytes out;
	append_message(out, type, id, body, limit);
	return out;
}

} // namespace

struct Connection;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
	Impl(std::unique_ptr<Store> s, ServerOptions o)
	    : store(std::move(s)), opts(std::move(o)), acceptor(io), workers(std::max(1u, opts.workers))
	{
	}

	void log(const std::string &line)
	{
		if (opts.log)
			opts.log(line);
	}

	std::unique_ptr<Store> store;
	ServerOptions opts;
	asio::io_context io;
	tcp::acceptor acceptor;
	asio::thread_pool workers;
	std::atomic<uint64_t> buffered{0}; // request bytes held (being received or executed)

	mutable std::mutex mu;
	ServerStats stats;
	// Lock objects each token put: a token without full rights may replace or remove only
	// its own.
	std::map<std::string, std::set<std::string>> locks_of;
	std::set<std::shared_ptr<Connection>> conns;
};

struct Connection : std::enable_shared_from_this<Connection> {
	Connection(std::shared_ptr<Server::Impl> s, tcp::socket sock)
	    : srv(std::move(s)), sock(std::move(sock)), wake(srv->io), watchdog(srv->io),
	      decoder(kMinFrame, srv->opts.max_message)
	{
		try {
			peer = this->sock.remote_endpoint().address().to_string() + ":" +
			       std::to_string(this->sock.remote_endpoint().port());
		} catch (...) {
			peer = "?";
		}
	}

	enum class State { Hello, Auth, Ready };

	std::shared_ptr<Server::Impl> srv;
	tcp::socket sock;
	asio::steady_timer wake;     // the reader waits here while the connection is at its limits
	asio::steady_timer watchdog; // timeouts
	Decoder decoder;
	std::string peer;
	State state = State::Hello;
	Bytes server_nonce, client_nonce;
	const Token *token = nullptr;
	Clock::time_point since = Clock::now(), last_read = Clock::now(), write_started{};
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
			srv->log("connection " + peer + (token ? " (" + token->name + ")" : "") + ": " + why);
		boost::system::error_code ec;
		sock.shutdown(tcp::socket::shutdown_both, ec);
		sock.close(ec);
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

	// Sends a connection-level failure, then closes once it is written.
	void refuse(Code code, const std::string &why)
	{
		if (closing || closed)
			return;
		enqueue(one_frame(Type::Fail, 0, encode_fail(code, why), kMinFrame));
		closing = true;
	}

	void enqueue(Bytes frames)
	{
		if (closed)
			return;
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
		asio::async_write(sock, asio::buffer(outq.front()), [self](boost::system::error_code ec, size_t n) {
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
			} else if (writing && now - write_started > o.write_timeout) {
				close("the client stopped reading");
			} else if (in_flight == 0 && !writing && now - last_read > o.idle_timeout) {
				close("idle");
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
			while (!closed && !closing) {
				// Back-pressure: a connection at its limits is not read until answers go out.
				while (!closed && (in_flight >= o.max_in_flight || srv->buffered.load() >= o.max_buffered)) {
					wake.expires_at(Clock::time_point::max());
					boost::system::error_code ec;
					co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
				}
				if (closed)
					break;
				size_t n = co_await sock.async_read_some(asio::buffer(buf), asio::use_awaitable);
				last_read = Clock::now();
				msgs.clear();
				uint64_t before = decoder.partial_bytes();
				decoder.feed(ByteView(buf.data(), n), msgs);
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
			    e.code() == asio::error::operation_aborted)
				close("");
			else
				close(e.code().message());
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
			client_nonce = h.nonce;
			server_nonce = crypto::random_bytes(kNonce);
			Challenge c;
			c.frame_limit = srv->opts.frame_limit;
			c.max_in_flight = srv->opts.max_in_flight;
			c.nonce = server_nonce;
			enqueue(one_frame(Type::Challenge, 0, encode(c), kMaxFrameLimit));
			state = State::Auth;
			return;
		}
		case State::Auth: {
			if (m.type != Type::Auth)
				fail(Code::Corrupt, "protocol: expected an auth");
			AuthMsg a = decode_auth(m.body);
			const Token *t = nullptr;
			for (const auto &k : srv->opts.tokens)
				if (k.name == a.token_name)
					t = &k;
			// The same work whether the name exists or not.
			static const crypto::SecureBytes dummy(ByteView(Bytes(32, 0)));
			Bytes want = client_proof(t ? t->secret.view() : dummy.view(), server_nonce, client_nonce, a.token_name);
			if (!t || !crypto::equal(want, a.proof)) {
				{
					std::lock_guard lk(srv->mu);
					srv->stats.auth_failures++;
				}
				srv->log("connection " + peer + ": authentication failed (token '" + a.token_name + "')");
				refuse(Code::Auth, "authentication failed");
				return;
			}
			token = t;
			state = State::Ready;
			decoder.set_frame_limit(srv->opts.frame_limit);
			WelcomeMsg w{t->rights, server_proof(t->secret.view(), server_nonce, client_nonce, t->name)};
			enqueue(one_frame(Type::Welcome, 0, encode(w), kMaxFrameLimit));
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
		asio::post(srv->workers, [self, type = m.type, id = m.id, body = std::move(m.body), bytes]() mutable {
			self->execute(type, id, body);
			asio::post(self->srv->io, [self, id, bytes] { self->finished(id, bytes); });
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
		// Other connections may be waiting for the server's buffered bytes to go down.
		std::vector<std::shared_ptr<Connection>> all;
		{
			std::lock_guard lk(srv->mu);
			if (srv->buffered.load() < srv->opts.max_buffered)
				all.assign(srv->conns.begin(), srv->conns.end());
		}
		for (auto &c : all)
			if (c.get() != this)
				c->wake.cancel();
	}

	// On a worker: runs one request against the store and queues its answer.
	void execute(Type type, uint64_t id, const Bytes &body)
	{
		uint32_t limit = srv->opts.frame_limit;
		try {
			Request q = decode_request(type, body);
			check_rights(q);
			Store &st = *srv->store;
			switch (q.type) {
			case Type::Put: put(q); break;
			// Objects go out piece by piece.
			case Type::Get: stream(id, q.kind, q.name, 0, st.size(q.kind, q.name)); return;
			case Type::GetRange:
				// No size() first (a round trip more to the store process): a range past the
				// end fails in read_range, as the Store contract says (Code::Corrupt).
				stream(id, q.kind, q.name, q.offset, q.length);
				return;
			default: {
				Bytes answer = run_request(st, q);
				if (q.type == Type::Remove && q.kind == Kind::Lock) {
					std::lock_guard lk(srv->mu);
					srv->locks_of[token->name].erase(q.name);
				}
				post_frames(one_frame(Type::Ok, id, answer, limit), false);
				return;
			}
			}
			post_frames(one_frame(Type::Ok, id, {}, limit), false);
		} catch (const Error &e) {
			post_frames(one_frame(Type::Fail, id, encode_fail(e.code(), e.what()), limit), false);
		} catch (const std::exception &e) {
			post_frames(one_frame(Type::Fail, id, encode_fail(Code::Error, e.what()), limit), false);
		}
	}

	bool owns_lock(const std::string &name)
	{
		std::lock_guard lk(srv->mu);
		return srv->locks_of[token->name].count(name) > 0;
	}

	void check_rights(const Request &q)
	{
		Rights r = token->rights;
		if (r == Rights::ReadWrite)
			return;
		auto refuse = [&](const std::string &what) {
			fail(Code::Auth, "token '" + token->name + "' is " +
			                     (r == Rights::ReadOnly ? "read-only" : "append-only") + ": " + what + " refused");
		};
		switch (q.type) {
		case Type::Open:
		case Type::Get:
		case Type::GetRange:
		case Type::Size:
		case Type::List:
		case Type::Ping: return;
		case Type::Create: refuse("create"); return;
		case Type::Put:
			if (r == Rights::ReadOnly)
				refuse("put");
			return; // checked against what exists in put()
		case Type::Remove:
			if (r == Rights::ReadOnly || q.kind != Kind::Lock || !owns_lock(q.name))
				refuse(std::string("remove of ") + kind_name(q.kind) + " " + q.name);
			return;
		default: return;
		}
	}

	void put(const Request &q)
	{
		Store &st = *srv->store;
		if (token->rights == Rights::AppendOnly) {
			bool exists = true;
			try {
				st.size(q.kind, q.name);
			} catch (const Error &e) {
				if (!e.is_not_found())
					throw;
				exists = false;
			}
			if (exists) {
				// Its own lock (refreshed), or the very same bytes again (a retried put).
				bool own = q.kind == Kind::Lock && owns_lock(q.name);
				if (!own && st.get(q.kind, q.name) != Bytes(q.data.begin(), q.data.end()))
					fail(Code::Auth, "token '" + token->name + "' is append-only: " + kind_name(q.kind) + " " +
					                     q.name + " exists and would be replaced");
				if (!own)
					return;
			}
		}
		st.put(q.kind, q.name, q.data);
		if (q.kind == Kind::Lock) {
			std::lock_guard lk(srv->mu);
			srv->locks_of[token->name].insert(q.name);
		}
	}

	// Sends [offset, offset + length) of an object in frames, read piece by piece: the
	// object is never whole in memory, and a client that reads slowly holds the worker back.
	void stream(uint64_t id, Kind kind, const std::string &name, uint64_t offset, uint64_t length)
	{
		uint32_t limit = srv->opts.frame_limit;
		uint64_t at = 0;
		do {
			size_t n = size_t(std::min<uint64_t>(length - at, limit));
			Bytes frame(kHeader + n);
			if (n)
				srv->store->read_range(kind, name, offset + at, n, frame.data() + kHeader);
			at += n;
			Header h{uint32_t(n), Type::Ok, uint8_t(at < length ? kFlagMore : 0), id};
			encode_header(h, frame.data());
			if (!post_frames(std::move(frame), true))
				return;
		} while (at < length);
	}
};

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
		{
			std::lock_guard lk(srv->mu);
			if (srv->stats.active >= srv->opts.max_connections) {
				srv->stats.refused++;
			} else {
				c = std::make_shared<Connection>(srv, std::move(sock));
				srv->conns.insert(c);
				srv->stats.connections++;
				srv->stats.active++;
			}
		}
		if (!c) {
			srv->log("connection refused: " + std::to_string(srv->opts.max_connections) + " already open");
			sock.close(ec);
			continue;
		}
		c->start();
	}
}

Server::Server(std::unique_ptr<Store> store, ServerOptions opts)
{
	if (opts.tokens.empty())
		fail(Code::Invalid, "server: no token; a server never runs open");
	if (opts.frame_limit < kMinFrame || opts.frame_limit > kMaxFrameLimit)
		fail(Code::Invalid, "server: frame limit out of range");
	if (opts.max_in_flight == 0 || opts.max_connections == 0)
		fail(Code::Invalid, "server: limits must be at least 1");
	int adopt = opts.listen_fd;
	std::pair<std::string, uint16_t> hp;
	if (adopt < 0)
		hp = parse_listen(opts.listen);
	impl_ = std::make_shared<Impl>(std::move(store), std::move(opts));
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
	srv->io.poll(); // the answers workers posted while stopping
}

void Server::stop()
{
	auto srv = impl_;
	asio::post(srv->io, [srv] {
		boost::system::error_code ec;
		srv->acceptor.close(ec);
		srv->io.stop();
	});
}

ServerStats Server::stats() const
{
	std::lock_guard lk(impl_->mu);
	return impl_->stats;
}

} // namespace plakar::net
