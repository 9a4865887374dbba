#include "net/remote_store.h"

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "net/asio.h"
#include "net/tls.h"

namespace plakar::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

void parse_remote_uri(const std::string &uri, RemoteOptions &o)
{
	std::string rest;
	bool tls;
	if (uri.compare(0, 9, "plakar://") == 0) {
		rest = uri.substr(9);
		tls = false;
	} else if (uri.compare(0, 13, "plakar+tls://") == 0) {
		rest = uri.substr(13);
		tls = true;
	} else {
		fail(Code::Invalid, "not a plakar:// or plakar+tls:// address: " + uri);
	}
	std::string pin;
	if (auto q = rest.find('?'); q != std::string::npos) {
		std::string query = rest.substr(q + 1);
		rest.resize(q);
		if (!tls || query.compare(0, 4, "pin=") != 0 || query.find('&') != std::string::npos)
			fail(Code::Invalid, "malformed address (the one option is ?pin=sha256:HEX, with plakar+tls://): " + uri);
		pin = parse_tls_pin(query.substr(4));
	}
	if (!rest.empty() && rest.back() == '/')
		rest.pop_back();
	uint16_t port = kDefaultPort;
	std::string host, portstr;
	if (!rest.empty() && rest.front() == '[') {
		auto close = rest.find(']');
		if (close == std::string::npos)
			fail(Code::Invalid, "malformed address: " + uri);
		host = rest.substr(1, close - 1);
		if (close + 1 < rest.size()) {
			if (rest[close + 1] != ':')
				fail(Code::Invalid, "malformed address: " + uri);
			portstr = rest.substr(close + 2);
		}
	} else {
		auto colon = rest.find(':');
		host = rest.substr(0, colon);
		if (colon != std::string::npos)
			portstr = rest.substr(colon + 1);
	}
	if (host.empty() || host.find('/') != std::string::npos)
		fail(Code::Invalid, "malformed address (plakar://HOST[:PORT]): " + uri);
	if (!portstr.empty() || rest.find(':') != std::string::npos) {
		unsigned long p = 0;
		for (char c : portstr) {
			if (c < '0' || c > '9' || p > 65535)
				fail(Code::Invalid, "malformed port in " + uri);
			p = p * 10 + unsigned(c - '0');
		}
		if (portstr.empty() || p == 0 || p > 65535)
			fail(Code::Invalid, "malformed port in " + uri);
		port = uint16_t(p);
	}
	o.host = host;
	o.port = port;
	o.tls = tls;
	o.pin = pin;
}

namespace {

// One request waiting for its answer.
struct Pending {
	std::mutex mu;
	std::condition_variable cv;
	bool done = false;
	Type type{};
	Bytes body;
};

// Frames prefix || data as one message without joining them first, each frame with room for
// its tag (written when it is queued: Conn::enqueue).
Bytes frame_message(Type type, uint64_t id, ByteView prefix, ByteView data, uint32_t limit)
{
	size_t total = prefix.size() + data.size();
	size_t frames = total ? (total + limit - 1) / limit : 1;
	Bytes out;
	out.reserve(total + frames * (kHeader + kTag));
	size_t at = 0;
	do {
		size_t n = std::min<size_t>(total - at, limit);
		Header h{uint32_t(n), type, uint8_t(at + n < total ? kFlagMore : 0), id};
		size_t o = out.size();
		out.resize(o + kHeader);
		encode_header(h, out.data() + o);
		for (size_t i = at; i < at + n;) {
			if (i < prefix.size()) {
				size_t k = std::min(prefix.size() - i, at + n - i);
				out.insert(out.end(), prefix.begin() + long(i), prefix.begin() + long(i + k));
				i += k;
			} else {
				size_t j = i - prefix.size();
				size_t k = at + n - i;
				out.insert(out.end(), data.begin() + long(j), data.begin() + long(j + k));
				i += k;
			}
		}
		out.resize(out.size() + kTag);
		at += n;
	} while (at < total);
	return out;
}

} // namespace

// One connection: its reader runs on the io thread; callers queue frames and wait.
struct Conn : std::enable_shared_from_this<Conn> {
	explicit Conn(asio::io_context &io) : io(io), stream(tcp::socket(io)), timer(io), decoder(kMaxFrameLimit, kMaxMessage)
	{
	}

	asio::io_context &io;
	Stream stream;
	asio::steady_timer timer; // connect timeout, then keep-alive
	Decoder decoder;
	uint32_t frame_limit = kMinFrame;
	Rights rights{};
	std::optional<FrameSealer> sealer; // set by the handshake, then io thread only
	std::deque<Bytes> outq;            // io thread only
	bool writing = false;

	std::mutex mu;
	std::map<uint64_t, std::shared_ptr<Pending>> pending;
	uint64_t next_id = 1;
	bool broken = false;
	std::string error;
	Clock::time_point last_used = Clock::now();

	void fail_all(const std::string &why)
	{
		std::map<uint64_t, std::shared_ptr<Pending>> p;
		{
			std::lock_guard lk(mu);
			if (broken)
				return;
			broken = true;
			error = why;
			p.swap(pending);
		}
		for (auto &[id, w] : p) {
			std::lock_guard lk(w->mu);
			w->done = true;
			w->type = Type::Fail;
			w->body.clear();
			w->cv.notify_all();
		}
		asio::post(io, [self = shared_from_this()] {
			self->stream.close();
			self->timer.cancel();
		});
	}

	// Frames are tagged here, on the io thread, in the order they are written.
	void enqueue(Bytes frames)
	{
		if (!sealer) { // never: requests wait for the handshake
			fail_all("protocol: a request before the handshake");
			return;
		}
		sealer->seal(frames);
		outq.push_back(std::move(frames));
		if (!writing)
			write_next();
	}

	void write_next()
	{
		if (outq.empty()) {
			writing = false;
			return;
		}
		writing = true;
		stream.async_write_all(asio::buffer(outq.front()), [self = shared_from_this()](boost::system::error_code ec, size_t) {
			if (ec) {
				self->fail_all("connection lost: " + ec.message());
				return;
			}
			self->outq.pop_front();
			self->write_next();
		});
	}

	asio::awaitable<void> read_loop()
	{
		auto self = shared_from_this();
		std::vector<uint8_t> buf(64 * 1024);
		std::vector<Decoder::Message> msgs;
		try {
			for (;;) {
				size_t n = co_await stream.read_some(asio::buffer(buf));
				msgs.clear();
				decoder.feed(ByteView(buf.data(), n), msgs);
				for (auto &m : msgs)
					deliver(m);
			}
		} catch (const boost::system::system_error &e) {
			fail_all(e.code() == asio::error::eof || e.code() == ssl::error::stream_truncated
			             ? "the server closed the connection"
			             : "connection lost: " + e.code().message());
		} catch (const Error &e) {
			fail_all(e.what());
		}
	}

	void deliver(Decoder::Message &m)
	{
		if (m.type == Type::Fail && m.id == 0) {
			// About the connection: the server closes it after this.
			std::string why = "the server closed the connection";
			try {
				throw_fail(m.body, "server");
			} catch (const Error &e) {
				why = e.what();
			}
			fail_all(why);
			return;
		}
		if (m.type != Type::Ok && m.type != Type::Fail)
			fail(Code::Corrupt, std::string("protocol: a ") + type_name(m.type) + " frame from the server");
		std::shared_ptr<Pending> w;
		{
			std::lock_guard lk(mu);
			auto it = pending.find(m.id);
			if (it == pending.end())
				fail(Code::Corrupt, "protocol: an answer to no request (id " + std::to_string(m.id) + ")");
			w = std::move(it->second);
			pending.erase(it);
			last_used = Clock::now();
		}
		std::lock_guard lk(w->mu);
		w->done = true;
		w->type = m.type;
		w->body = std::move(m.body);
		w->cv.notify_all();
	}

	asio::awaitable<void> keepalive(std::chrono::milliseconds every)
	{
		auto self = shared_from_this();
		for (;;) {
			timer.expires_after(every);
			boost::system::error_code ec;
			co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
			if (ec)
				co_return;
			std::lock_guard lk(mu);
			if (broken)
				co_return;
			if (pending.empty() && Clock::now() - last_used >= every) {
				uint64_t id = next_id++;
				pending[id] = std::make_shared<Pending>(); // nobody waits: the answer is dropped
				last_used = Clock::now();
				enqueue(frame_message(Type::Ping, id, {}, {}, frame_limit));
			}
		}
	}
};

struct RemoteStore::Impl {
	explicit Impl(RemoteOptions o) : opts(std::move(o)), guard(asio::make_work_guard(io))
	{
		if (opts.tls)
			tls = client_tls_context(opts.pin, opts.ca_file);
		slots.resize(std::max(1u, opts.connections));
		thread = std::thread([this] { io.run(); });
	}
	~Impl()
	{
		for (auto &s : slots)
			if (s.conn)
				s.conn->fail_all("closed");
		guard.reset();
		io.stop();
		thread.join();
	}

	struct Slot {
		std::mutex connect_mu;
		std::shared_ptr<Conn> conn;
	};

	RemoteOptions opts;
	std::unique_ptr<ssl::context> tls;
	asio::io_context io;
	asio::executor_work_guard<asio::io_context::executor_type> guard;
	std::thread thread;
	std::deque<Slot> slots;
	std::mutex mu; // the slots' conn pointers

	std::string where() const
	{
		std::string h = opts.host.find(':') != std::string::npos ? "[" + opts.host + "]" : opts.host;
		return (opts.tls ? "plakar+tls://" : "plakar://") + h + ":" + std::to_string(opts.port);
	}

	// TLS, then the certificate: its pin, or the authorities' word and the host name.
	asio::awaitable<void> start_tls(Conn &c)
	{
		c.stream.start_tls(*tls);
		auto &ts = c.stream.tls_stream();
		boost::system::error_code ec;
		asio::ip::make_address(opts.host, ec);
		bool is_name = bool(ec); // SNI carries names, not addresses
		if (is_name && !SSL_set_tlsext_host_name(ts.native_handle(), opts.host.c_str()))
			fail(Code::Error, where() + ": TLS: cannot set the server name");
		if (opts.pin.empty())
			ts.set_verify_callback(ssl::host_name_verification(opts.host));
		boost::system::error_code hs;
		co_await ts.async_handshake(ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, hs));
		if (hs) {
			long v = SSL_get_verify_result(ts.native_handle());
			if (v != X509_V_OK)
				fail(Code::Auth, where() + ": the server's TLS certificate is refused: " + X509_verify_cert_error_string(v));
			if (hs.category() == asio::error::get_ssl_category() &&
			    ERR_GET_REASON(static_cast<unsigned long>(hs.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED)
				fail(Code::Auth, where() + ": the server's TLS certificate is refused: it is not for " + opts.host);
			if (hs == asio::error::eof || hs == ssl::error::stream_truncated)
				fail(Code::Error, where() + ": the server closed the connection during the TLS handshake");
			fail(Code::Error, where() + ": TLS handshake failed: " + hs.message() + " (does the server speak TLS?)");
		}
		if (!opts.pin.empty()) {
			std::string got = peer_tls_pin(ts.native_handle());
			if (got != opts.pin)
				fail(Code::Auth, where() + ": the server's TLS certificate is " + (got.empty() ? "missing" : got) +
				                     ", not the pinned " + opts.pin);
		}
	}

	// The handshake, on the io thread.
	asio::awaitable<void> handshake(std::shared_ptr<Conn> c)
	{
		tcp::resolver res(io);
		auto eps = co_await res.async_resolve(opts.host, std::to_string(opts.port), asio::use_awaitable);
		co_await asio::async_connect(c->stream.socket(), eps, asio::use_awaitable);
		c->stream.socket().set_option(tcp::no_delay(true));
		c->stream.socket().set_option(asio::socket_base::keep_alive(true));
		if (tls)
			co_await start_tls(*c);
		Hello h;
		h.nonce = crypto::random_bytes(kNonce);
		Bytes hello = encode(h);
		Bytes out;
		append_message(out, Type::Hello, 0, hello, kMaxFrameLimit);
		co_await c->stream.write_all(asio::buffer(out));
		auto next = [&]() -> asio::awaitable<Decoder::Message> {
			std::vector<Decoder::Message> msgs;
			uint8_t buf[4096];
			while (msgs.empty()) {
				// One byte at a time past the header is not needed: handshake frames are small and
				// the server sends nothing else before the client's next step.
				size_t n = co_await c->stream.read_some(asio::buffer(buf));
				c->decoder.feed(ByteView(buf, n), msgs);
			}
			if (msgs.size() != 1)
				fail(Code::Corrupt, "protocol: the server sent more than its handshake");
			co_return std::move(msgs[0]);
		};
		Decoder::Message m = co_await next();
		if (m.type == Type::Fail)
			throw_fail(m.body, where());
		if (m.type != Type::Challenge)
			fail(Code::Corrupt, "protocol: expected a challenge from " + where());
		Challenge ch = decode_challenge(m.body);
		Bytes challenge = std::move(m.body);
		AuthMsg a{opts.token.name, client_proof(opts.token.secret.view(), ch.nonce, h.nonce, opts.token.name)};
		Bytes auth = encode(a);
		out.clear();
		append_message(out, Type::Auth, 0, auth, kMaxFrameLimit);
		co_await c->stream.write_all(asio::buffer(out));
		m = co_await next();
		if (m.type == Type::Fail)
			throw_fail(m.body, where());
		if (m.type != Type::Welcome)
			fail(Code::Corrupt, "protocol: expected a welcome from " + where());
		WelcomeMsg w = decode_welcome(m.body);
		if (!crypto::equal(w.proof, server_proof(opts.token.secret.view(), ch.nonce, h.nonce, opts.token.name)))
			fail(Code::Auth, where() + ": the server does not know this token (its proof is wrong)");
		c->frame_limit = ch.frame_limit;
		c->rights = w.rights;
		c->decoder.set_frame_limit(ch.frame_limit);
		// Every frame from now on is authenticated, each way under its own key.
		FrameKeys k = frame_keys(session_secret(opts.token.secret.view(), ch.nonce, h.nonce, opts.token.name).view(),
		                         hello, challenge, auth, m.body);
		c->sealer.emplace(k.to_server.view(), Direction::ToServer);
		c->decoder.authenticate(k.to_client.view(), Direction::ToClient);
	}

	std::shared_ptr<Conn> connect()
	{
		auto c = std::make_shared<Conn>(io);
		std::promise<void> done;
		auto fut = done.get_future();
		asio::co_spawn(io, handshake(c), [&done](std::exception_ptr e) {
			if (e)
				done.set_exception(e);
			else
				done.set_value();
		});
		if (fut.wait_for(opts.connect_timeout) != std::future_status::ready) {
			asio::post(io, [c] { c->stream.close(); });
			fut.wait();
			fail(Code::Error, where() + ": no answer within " + std::to_string(opts.connect_timeout.count() / 1000) +
			                      " s");
		}
		try {
			fut.get();
		} catch (const Error &) {
			throw;
		} catch (const boost::system::system_error &e) {
			fail(Code::Error, where() + ": " + e.code().message());
		}
		asio::co_spawn(io, c->read_loop(), asio::detached);
		asio::co_spawn(io, c->keepalive(opts.keepalive), asio::detached);
		return c;
	}

	// A live connection, the least busy one; a slot without one connects (one slot at a time).
	std::shared_ptr<Conn> pick()
	{
		size_t best = 0, best_load = SIZE_MAX;
		{
			std::lock_guard lk(mu);
			for (size_t i = 0; i < slots.size(); i++) {
				auto &c = slots[i].conn;
				size_t load = SIZE_MAX - 1;
				if (c) {
					std::lock_guard lc(c->mu);
					load = c->broken ? SIZE_MAX - 1 : c->pending.size();
				} else if (i > 0) {
					// Another connection only once the first ones are busy.
					load = SIZE_MAX - 1;
				}
				if (load < best_load) {
					best = i;
					best_load = load;
				}
			}
			if (best_load > 0 && best_load != SIZE_MAX - 1) {
				// All live connections are busy: open the next slot if there is one.
				for (size_t i = 0; i < slots.size(); i++)
					if (!slots[i].conn) {
						best = i;
						best_load = SIZE_MAX - 1;
						break;
					}
			}
		}
		Slot &s = slots[best];
		std::lock_guard cl(s.connect_mu);
		{
			std::lock_guard lk(mu);
			if (s.conn) {
				std::lock_guard lc(s.conn->mu);
				if (!s.conn->broken)
					return s.conn;
			}
		}
		auto c = connect();
		std::lock_guard lk(mu);
		s.conn = c;
		return c;
	}

	// Sends one request and waits for its answer; returns the Ok body or throws the failure.
	Bytes call(Type type, ByteView prefix, ByteView data = {})
	{
		auto c = pick();
		auto w = std::make_shared<Pending>();
		{
			std::lock_guard lk(c->mu);
			if (c->broken)
				fail(Code::Error, where() + ": " + c->error);
			uint64_t id = c->next_id++;
			c->pending[id] = w;
			c->last_used = Clock::now();
			Bytes frames = frame_message(type, id, prefix, data, c->frame_limit);
			asio::post(io, [c, f = std::move(frames)]() mutable { c->enqueue(std::move(f)); });
		}
		std::unique_lock lk(w->mu);
		if (!w->cv.wait_for(lk, opts.request_timeout, [&] { return w->done; })) {
			lk.unlock();
			c->fail_all("no answer within " + std::to_string(opts.request_timeout.count() / 1000) + " s");
			lk.lock();
		}
		if (w->type == Type::Fail) {
			if (w->body.empty()) {
				std::lock_guard lc(c->mu);
				fail(Code::Error, where() + ": " + c->error);
			}
			throw_fail(w->body, where());
		}
		return std::move(w->body);
	}
};

RemoteStore::RemoteStore(RemoteOptions opts)
{
	if (opts.host.empty())
		fail(Code::Invalid, "plakar://: no host");
	if (!opts.tls && (!opts.pin.empty() || !opts.ca_file.empty()))
		fail(Code::Invalid, "plakar://: a pin or authorities without TLS (plakar+tls://)");
	impl_ = std::make_shared<Impl>(std::move(opts));
}

RemoteStore::~RemoteStore() = default;

Bytes RemoteStore::call(Type type, ByteView prefix, ByteView data) { return impl_->call(type, prefix, data); }

std::string RemoteStore::location() const { return impl_->where(); }

Rights RemoteStore::rights() { return impl_->pick()->rights; }

bool RemoteStore::append_only() { return rights() != Rights::ReadWrite; }

std::unique_ptr<Store> open_remote_store(const std::string &uri, const StoreOptions &so)
{
	RemoteOptions o;
	parse_remote_uri(uri, o);
	if (o.tls && o.pin.empty())
		o.ca_file = so.tls_ca_file;
	o.token = client_token(so.token, so.token_file);
	return std::make_unique<RemoteStore>(std::move(o));
}

void register_remote_stores()
{
	static std::once_flag once;
	std::call_once(once, [] {
		register_store("plakar", open_remote_store);
		register_store("plakar+tls", open_remote_store);
	});
}

} // namespace plakar::net
