// plakar server and the plakar:// store, through a real server on 127.0.0.1.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "crypto/crypto.h"
#include "helpers.h"
#include "net/gate.h"
#include "net/privsep_server.h"
#include "net/sandbox.h"
#include "net/protocol.h"
#include "net/tls.h"
#include "net/tokens.h"
#include "repository/sealed.h"
#include "snapshot/builder.h"
#include "snapshot/check.h"
#include "snapshot/restore.h"
#include "snapshot/snapshot.h"
#include "net/remote_store.h"

using namespace plakar;
using namespace plakar::net;
using plakar::test::code_of;

namespace {

// Waits until pred() holds, checking every millisecond; gives up after guard (a hung server
// fails the test instead of hanging it). A wait for a condition, never a timing assertion.
template <class P> bool eventually(P pred, std::chrono::seconds guard = std::chrono::seconds(60))
{
	auto until = std::chrono::steady_clock::now() + guard;
	while (!pred()) {
		if (std::chrono::steady_clock::now() > until)
			return false;
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	}
	return true;
}

// A client that speaks raw bytes, to send what a real client never would.
class RawClient {
public:
	explicit RawClient(uint16_t port)
	{
		fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		REQUIRE(fd_ >= 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_port = htons(port);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		REQUIRE(::connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
	}
	~RawClient() { ::close(fd_); }
	void send(ByteView b)
	{
		size_t at = 0;
		while (at < b.size()) {
			ssize_t n = ::send(fd_, b.data() + at, b.size() - at, MSG_NOSIGNAL);
			if (n <= 0)
				return; // the server closed: what it said is still readable
			at += size_t(n);
		}
	}
	// One message as frames; past the handshake, tagged as a real client tags them.
	void send_message(Type t, uint64_t id, ByteView body)
	{
		Bytes out;
		append_message(out, t, id, body, kMaxFrameLimit, sealer_.has_value());
		send_frames(std::move(out));
	}
	// Frames built with append_message(..., tagged) once authenticated: sealed, then sent.
	void send_frames(Bytes frames)
	{
		if (sealer_)
			sealer_->seal(frames);
		send(frames);
	}
	bool authenticated() const { return sealer_.has_value(); }
	// Writes the tags of frames to send past the handshake (in the order they are sent).
	void seal(Bytes &frames) { sealer_->seal(frames); }
	// The next message, or nullopt when the server closed the connection (within 10 s).
	std::optional<Decoder::Message> next()
	{
		std::vector<Decoder::Message> got;
		uint8_t buf[65536];
		while (got.empty()) {
			if (!queue_.empty()) {
				auto m = std::move(queue_.front());
				queue_.erase(queue_.begin());
				return m;
			}
			pollfd p{fd_, POLLIN, 0};
			if (::poll(&p, 1, 10000) <= 0)
				return std::nullopt;
			ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
			if (n <= 0)
				return std::nullopt;
			dec_.feed(ByteView(buf, size_t(n)), got);
		}
		for (size_t i = 1; i < got.size(); i++)
			queue_.push_back(std::move(got[i]));
		return std::move(got[0]);
	}
	// True when the server closed the connection (reads EOF), within 10 s.
	bool closed_by_server()
	{
		uint8_t buf[4096];
		for (;;) {
			pollfd p{fd_, POLLIN, 0};
			if (::poll(&p, 1, 10000) <= 0)
				return false;
			ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
			if (n <= 0)
				return true;
		}
	}
	// Runs the handshake with token text ("NAME:SECRET"); returns the server's answer to Auth.
	Decoder::Message handshake(const std::string &token_text, Bytes *server_nonce = nullptr)
	{
		Token t = parse_client_token(token_text);
		Hello h;
		h.nonce = crypto::random_bytes(kNonce);
		Bytes hello = encode(h);
		send_message(Type::Hello, 0, hello);
		auto c = next();
		REQUIRE(c);
		REQUIRE(c->type == Type::Challenge);
		Challenge ch = decode_challenge(c->body);
		if (server_nonce)
			*server_nonce = ch.nonce;
		Bytes auth = encode(AuthMsg{t.name, client_proof(t.secret.view(), ch.nonce, h.nonce, t.name)});
		send_message(Type::Auth, 0, auth);
		auto w = next();
		REQUIRE(w);
		if (w->type == Type::Welcome) {
			FrameKeys k = frame_keys(session_secret(t.secret.view(), ch.nonce, h.nonce, t.name).view(), hello, c->body,
			                         auth, w->body);
			sealer_.emplace(k.to_server.view(), Direction::ToServer);
			dec_.authenticate(k.to_client.view(), Direction::ToClient);
		}
		return std::move(*w);
	}
	int fd() const { return fd_; }

private:
	int fd_ = -1;
	Decoder dec_{kMaxFrameLimit, kMaxMessage};
	std::optional<FrameSealer> sealer_;
	std::vector<Decoder::Message> queue_;
};

std::string fail_text(const Decoder::Message &m)
{
	try {
		throw_fail(m.body, "server");
	} catch (const Error &e) {
		return e.what();
	}
	return "";
}

Code fail_code(const Decoder::Message &m)
{
	try {
		throw_fail(m.body, "server");
	} catch (const Error &e) {
		return e.code();
	}
	return Code(0);
}

std::unique_ptr<RemoteStore> remote(const test::ServerThread &s, Rights r)
{
	RemoteOptions o;
	o.host = "127.0.0.1";
	o.port = s.server().port();
	o.token = parse_client_token(s.token(r));
	return std::make_unique<RemoteStore>(std::move(o));
}

std::string hexname(int i)
{
	std::string h = hex_encode(as_bytes(std::to_string(i)));
	return h + std::string(64 - h.size(), '0');
}

} // namespace

TEST_CASE("net: frames past the handshake are authenticated each way, in order", "[net]")
{
	Bytes secret = test::random_data(32, 5), sn(kNonce, 1), cn(kNonce, 2);
	auto session = session_secret(secret, sn, cn, "alice");
	FrameKeys k = frame_keys(session.view(), as_bytes("hello"), as_bytes("challenge"), as_bytes("auth"),
	                         as_bytes("welcome"));
	CHECK_FALSE(crypto::equal(k.to_server.view(), k.to_client.view()));
	// Any change to the handshake as either end saw it gives other keys.
	for (auto other : {frame_keys(session.view(), as_bytes("hellO"), as_bytes("challenge"), as_bytes("auth"),
	                              as_bytes("welcome")),
	                   frame_keys(session.view(), as_bytes("hello"), as_bytes("challenge"), as_bytes("auth"),
	                              as_bytes("welcomf")),
	                   frame_keys(session.view(), as_bytes("hellochallenge"), as_bytes(""), as_bytes("auth"),
	                              as_bytes("welcome")),
	                   frame_keys(session_secret(secret, sn, cn, "alicf").view(), as_bytes("hello"),
	                              as_bytes("challenge"), as_bytes("auth"), as_bytes("welcome"))})
		CHECK_FALSE(crypto::equal(k.to_server.view(), other.to_server.view()));

	// Three messages as a client sends them: a put in three frames, a ping, a get.
	auto frames = [] {
		std::vector<Bytes> f;
		Bytes put;
		append_message(put, Type::Put, 7, test::random_data(10000, 1), 4096, true);
		for (size_t at = 0; at < put.size();) {
			size_t n = kHeader + (put[at] | put[at + 1] << 8 | put[at + 2] << 16) + kTag;
			f.emplace_back(put.begin() + long(at), put.begin() + long(at + n));
			at += n;
		}
		f.emplace_back();
		append_message(f.back(), Type::Ping, 8, {}, 4096, true);
		f.emplace_back();
		append_message(f.back(), Type::Get, 9, as_bytes("x"), 4096, true);
		return f;
	}();
	REQUIRE(frames.size() == 5);
	auto sealed = [&](const std::vector<Bytes> &f, ByteView key, Direction dir) {
		FrameSealer sealer(key, dir);
		std::vector<Bytes> out = f;
		for (auto &b : out)
			sealer.seal(b);
		return out;
	};
	auto joined = [](const std::vector<Bytes> &f) {
		Bytes all;
		for (const auto &b : f)
			all.insert(all.end(), b.begin(), b.end());
		return all;
	};
	auto decode = [&](ByteView stream, size_t split, ByteView key = {}, Direction dir = Direction::ToServer) {
		Decoder d(4096, 1 << 20);
		d.authenticate(key.empty() ? k.to_server.view() : key, dir);
		std::vector<Decoder::Message> got;
		for (size_t at = 0; at < stream.size(); at += split)
			d.feed(stream.subspan(at, std::min(split, stream.size() - at)), got);
		return got;
	};
	auto good = sealed(frames, k.to_server.view(), Direction::ToServer);
	Bytes stream = joined(good);
	for (size_t split : {1, 5, 16, 31, 32, 4096, 100000}) {
		auto got = decode(stream, split);
		REQUIRE(got.size() == 3);
		CHECK(got[0].body == test::random_data(10000, 1));
		CHECK(got[1].type == Type::Ping);
		CHECK(as_string(got[2].body) == "x");
	}
	// One bit anywhere (header, payload, tag), a frame replayed, dropped or swapped, frames of
	// the other direction or under another key: refused, with the same one line.
	auto refused = [&](Bytes b, ByteView key = {}, Direction dir = Direction::ToServer) {
		try {
			decode(b, 1000, key, dir);
		} catch (const Error &e) {
			return e.code() == Code::Corrupt && std::string(e.what()).find("a frame failed authentication") != std::string::npos;
		}
		return false;
	};
	for (size_t at : {size_t(0), size_t(9), size_t(kHeader + 100), size_t(kHeader + 4096 + 3)}) {
		Bytes b = stream;
		b[at] ^= 1;
		if (at == 0)
			b[at + 1] = 0; // a length still within the limit
		CHECK(refused(b));
	}
	auto with = [&](std::vector<size_t> order) {
		std::vector<Bytes> f;
		for (size_t i : order)
			f.push_back(good[i]);
		return joined(f);
	};
	CHECK(refused(with({0, 0, 1, 2, 3, 4})));  // replayed
	CHECK(refused(with({0, 2, 3, 4})));        // dropped
	CHECK(refused(with({1, 0, 2, 3, 4})));     // swapped
	CHECK(refused(joined(sealed(frames, k.to_server.view(), Direction::ToClient)))); // reflected
	CHECK(refused(joined(sealed(frames, k.to_client.view(), Direction::ToServer)))); // the other key
	CHECK(refused(stream, k.to_client.view()));
	// A tagged stream is not read as an untagged one, and the reverse.
	Bytes plain;
	append_message(plain, Type::Ping, 8, {}, 4096);
	append_message(plain, Type::Ping, 9, {}, 4096);
	CHECK(code_of([&] { decode(plain, 1000); }) == Code::Corrupt);
}

TEST_CASE("net: frames are decoded in any split, and malformed ones are refused", "[net]")
{
	Bytes stream;
	append_message(stream, Type::Put, 7, test::random_data(10000, 1), 4096); // 3 frames
	append_message(stream, Type::Ping, 8, {}, 4096);
	append_message(stream, Type::Get, 9, as_bytes("x"), 4096);
	for (size_t split : {1, 3, 16, 17, 4096, 100000}) {
		Decoder d(4096, 1 << 20);
		std::vector<Decoder::Message> got;
		for (size_t at = 0; at < stream.size(); at += split)
			d.feed(ByteView(stream).subspan(at, std::min(split, stream.size() - at)), got);
		REQUIRE(got.size() == 3);
		CHECK(got[0].type == Type::Put);
		CHECK(got[0].id == 7);
		CHECK(got[0].body == test::random_data(10000, 1));
		CHECK(got[1].type == Type::Ping);
		CHECK(got[1].body.empty());
		CHECK(as_string(got[2].body) == "x");
		CHECK(d.partial_count() == 0);
	}
	auto refused = [](Bytes b, uint32_t limit = 4096, uint64_t msg = 1 << 20) {
		Decoder d(limit, msg);
		std::vector<Decoder::Message> got;
		return code_of([&] { d.feed(b, got); });
	};
	uint8_t h[kHeader];
	encode_header(Header{5000, Type::Put, 0, 1}, h);
	CHECK(refused(Bytes(h, h + kHeader)) == Code::Corrupt); // over the frame limit, before any payload
	encode_header(Header{0, Type::Put, 0, 0}, h);
	CHECK(refused(Bytes(h, h + kHeader)) == Code::Corrupt); // a request without an id
	encode_header(Header{0, Type::Hello, 0, 3}, h);
	CHECK(refused(Bytes(h, h + kHeader)) == Code::Corrupt); // a handshake frame with an id
	encode_header(Header{0, Type::Ping, 0, 1}, h);
	h[4] = 77;
	CHECK(refused(Bytes(h, h + kHeader)) == Code::Corrupt); // unknown type
	encode_header(Header{0, Type::Ping, 0, 1}, h);
	h[5] = 2;
	CHECK(refused(Bytes(h, h + kHeader)) == Code::Corrupt); // unknown flag
	encode_header(Header{0, Type::Ping, 0, 1}, h);
	h[7] = 1;
	CHECK(refused(Bytes(h, h + kHeader)) == Code::Corrupt); // reserved bytes
	Bytes big;
	append_message(big, Type::Put, 1, test::random_data(9000, 2), 4096);
	CHECK(refused(big, 4096, 8192) == Code::Corrupt); // a message over the message limit
	Bytes mixed;
	append_message(mixed, Type::Put, 1, test::random_data(9000, 2), 4096);
	mixed[kHeader + 4096 + 4] = uint8_t(Type::Get); // the second frame changes type
	CHECK(refused(mixed) == Code::Corrupt);
	CHECK(code_of([] { decode_request(Type::Put, as_bytes("\x00\x05../xx")); }) == Code::Corrupt);
	CHECK(code_of([] { decode_request(Type::Get, Bytes{9, 1, 'a'}); }) == Code::Corrupt); // unknown kind
	CHECK(code_of([] { decode_request(Type::Ok, {}); }) == Code::Corrupt);
	Bytes trailing = encode_named(Kind::Pack, hexname(1));
	trailing.push_back(0);
	CHECK(code_of([&] { decode_request(Type::Get, trailing); }) == Code::Corrupt);
}

TEST_CASE("net: tokens files", "[net]")
{
	test::TempDir d;
	auto a = make_token("alice", Rights::ReadWrite), b = make_token("bob", Rights::AppendOnly);
	test::write_file(d / "tokens", as_bytes("# comment\n" + a.server_line + "\n\n" + b.server_line + "  # bob\n"));
	chmod((d / "tokens").c_str(), 0600);
	auto t = load_tokens(d / "tokens");
	REQUIRE(t.size() == 2);
	CHECK(t[1].name == "bob");
	CHECK(t[1].rights == Rights::AppendOnly);
	CHECK(crypto::equal(t[0].secret.view(), parse_client_token(a.client_token).secret.view()));
	chmod((d / "tokens").c_str(), 0644);
	CHECK(code_of([&] { load_tokens(d / "tokens"); }) == Code::Invalid);
	auto bad = [&](const std::string &text) {
		test::write_file(d / "bad", as_bytes(text));
		chmod((d / "bad").c_str(), 0600);
		return code_of([&] { load_tokens(d / "bad"); });
	};
	CHECK(bad("") == Code::Invalid);
	CHECK(bad("alice rw 00\n") == Code::Invalid);
	CHECK(bad("alice admin " + std::string(64, 'a') + "\n") == Code::Invalid);
	CHECK(bad(a.server_line + "\n" + a.server_line + "\n") == Code::Invalid);
	CHECK(bad("al/ice rw " + std::string(64, 'a') + "\n") == Code::Invalid);
	CHECK(code_of([&] { load_tokens(d / "missing"); }) == Code::NotFound);
	CHECK(code_of([] { parse_client_token("nocolon"); }) == Code::Invalid);
	CHECK(code_of([] { parse_client_token("a:zz"); }) == Code::Invalid);
	CHECK(code_of([] { make_token("", Rights::ReadOnly); }) == Code::Invalid);
}

TEST_CASE("net: plakar:// addresses", "[net]")
{
	RemoteOptions o;
	parse_remote_uri("plakar://backup.example", o);
	CHECK(o.host == "backup.example");
	CHECK(o.port == 9876);
	CHECK(!o.tls);
	parse_remote_uri("plakar://10.0.0.1:1234/", o);
	CHECK(o.host == "10.0.0.1");
	CHECK(o.port == 1234);
	parse_remote_uri("plakar://[::1]:99", o);
	CHECK(o.host == "::1");
	CHECK(o.port == 99);
	std::string pin = "sha256:" + std::string(64, 'a');
	parse_remote_uri("plakar+tls://h:7?pin=SHA256:" + std::string(64, 'A'), o);
	CHECK(o.tls);
	CHECK(o.host == "h");
	CHECK(o.port == 7);
	CHECK(o.pin == pin);
	parse_remote_uri("plakar+tls://h", o);
	CHECK((o.tls && o.pin.empty() && o.port == 9876));
	for (std::string bad : std::vector<std::string>{"plakar://", "plakar://h:", "plakar://h:0", "plakar://h:70000", "plakar://h:12x",
	                        "plakar://h/path", "plakar://[::1", "http://h", "plakar://h?pin=" + pin,
	                        "plakar+tls://h?pin=sha256:zz", "plakar+tls://h?pin=" + pin + "&x=1",
	                        "plakar+tls://h?ca=/etc/x", "plakar+tls://?pin=" + pin})
		CHECK(code_of([&] { parse_remote_uri(bad, o); }) == Code::Invalid);
}

TEST_CASE("net: a repository pushed, pulled and checked through the server", "[net]")
{
	test::TempDir d;
	std::filesystem::create_directories(d / "src/sub");
	for (int i = 0; i < 40; i++)
		test::write_file(d / ("src/f" + std::to_string(i)), test::random_data(size_t(1000 + i * 3000), uint64_t(i)));
	test::write_file(d / "src/sub/big", test::random_data(3 << 20, 99));
	test::ServerThread srv(d / "served");
	SnapshotHeader h;
	{
		auto r = test::small_repo(srv.uri());
		h = push(*r, {d / "src"}, {});
	}
	CheckOptions co;
	co.read_data = true;
	{
		auto r = Repository::open(srv.uri(), std::string("pw"));
		PullOptions po;
		po.to = d / "out";
		pull(*r, h, "/", po);
		CHECK(check(*r, co).ok());
	} // (its local cache is shared with the handle below, by repository id: one at a time)
	std::string restored = d / ("out" + (d / "src"));
	for (int i = 0; i < 40; i++)
		CHECK(test::read_file(restored + "/f" + std::to_string(i)) ==
		      test::random_data(size_t(1000 + i * 3000), uint64_t(i)));
	CHECK(test::read_file(restored + "/sub/big") == test::random_data(3 << 20, 99));
	// The server stored opaque objects in the store it serves: the same repository opens there.
	auto local = Repository::open(d / "served", std::string("pw"));
	CHECK(check(*local, co).ok());
	CHECK(srv.server().stats().auth_failures == 0);
}

TEST_CASE("net: several clients at once", "[net]")
{
	test::TempDir d;
	test::ServerThread srv(d / "served");
	{
		auto r = test::small_repo(srv.uri());
	}
	std::atomic<int> bad{0};
	std::vector<std::thread> ts;
	for (int c = 0; c < 4; c++)
		ts.emplace_back([&, c] {
			try {
				std::string src = d / ("src" + std::to_string(c));
				std::filesystem::create_directories(src);
				for (int i = 0; i < 20; i++)
					test::write_file(src + "/f" + std::to_string(i), test::random_data(20000, uint64_t(c * 100 + i)));
				auto r = Repository::open(srv.uri(), std::string("pw"));
				auto h = push(*r, {src}, {});
				PullOptions po;
				po.to = d / ("out" + std::to_string(c));
				pull(*r, h, "/", po);
				for (int i = 0; i < 20; i++)
					if (test::read_file(po.to + src + "/f" + std::to_string(i)) !=
					    test::random_data(20000, uint64_t(c * 100 + i)))
						bad++;
			} catch (const std::exception &e) {
				UNSCOPED_INFO(e.what());
				bad += 100;
			}
		});
	for (auto &t : ts)
		t.join();
	CHECK(bad == 0);
	auto r = Repository::open(srv.uri(), std::string("pw"));
	CHECK(list_snapshots(*r).size() == 4);
	CheckOptions co;
	co.read_data = true;
	CHECK(check(*r, co).ok());
}

TEST_CASE("net: authentication", "[net]")
{
	test::TempDir d;
	test::ServerThread srv(d / "served");
	open_store(srv.uri())->create(as_bytes("C"), "", {});
	uint16_t port = srv.server().port();
	SECTION("the right token")
	{
		RawClient c(port);
		auto w = c.handshake(srv.token(Rights::ReadOnly));
		CHECK(w.type == Type::Welcome);
		CHECK(decode_welcome(w.body).rights == Rights::ReadOnly);
	}
	SECTION("a wrong secret, an unknown name")
	{
		for (std::string t : {"rw:" + std::string(64, '1'), "nobody:" + std::string(64, '2')}) {
			RawClient c(port);
			auto w = c.handshake(t);
			CHECK(w.type == Type::Fail);
			CHECK(fail_code(w) == Code::Auth);
			CHECK(fail_text(w).find("authentication failed") != std::string::npos);
			CHECK(c.closed_by_server());
		}
		CHECK(srv.server().stats().auth_failures == 2);
		// Through the store: a clear error, no hang.
		RemoteOptions o;
		o.host = "127.0.0.1";
		o.port = port;
		o.token = parse_client_token("rw:" + std::string(64, '1'));
		RemoteStore s(std::move(o));
		try {
			s.open();
			FAIL("opened with a wrong token");
		} catch (const Error &e) {
			CHECK(e.code() == Code::Auth);
			CHECK(std::string(e.what()).find("authentication failed") != std::string::npos);
		}
	}
	SECTION("no token: a request before the handshake")
	{
		RawClient c(port);
		c.send_message(Type::Open, 1, {});
		auto m = c.next();
		REQUIRE(m);
		CHECK(m->type == Type::Fail);
		CHECK(fail_text(*m).find("expected a hello") != std::string::npos);
		CHECK(c.closed_by_server());
	}
	SECTION("a replayed handshake")
	{
		// The proof of one connection is worthless on another: the server's nonce differs.
		Token t = parse_client_token(srv.token(Rights::ReadWrite));
		Hello h;
		h.nonce = crypto::random_bytes(kNonce);
		Bytes hello, auth;
		append_message(hello, Type::Hello, 0, encode(h), kMaxFrameLimit);
		Bytes first_nonce;
		{
			RawClient c(port);
			c.send(hello);
			auto ch = c.next();
			REQUIRE(ch);
			first_nonce = decode_challenge(ch->body).nonce;
			append_message(auth, Type::Auth, 0,
			               encode(AuthMsg{t.name, client_proof(t.secret.view(), first_nonce, h.nonce, t.name)}),
			               kMaxFrameLimit);
			c.send(auth);
			auto w = c.next();
			REQUIRE(w);
			CHECK(w->type == Type::Welcome);
		}
		RawClient c(port);
		c.send(hello);
		auto ch = c.next();
		REQUIRE(ch);
		CHECK(decode_challenge(ch->body).nonce != first_nonce);
		c.send(auth);
		auto w = c.next();
		REQUIRE(w);
		CHECK(w->type == Type::Fail);
		CHECK(fail_code(*w) == Code::Auth);
	}
	SECTION("another protocol version")
	{
		RawClient c(port);
		Bytes b(kMagic, kMagic + 4);
		b.push_back(9);
		b.push_back(0);
		c.send_message(Type::Hello, 0, b);
		auto m = c.next();
		REQUIRE(m);
		CHECK(fail_code(*m) == Code::Version);
		CHECK(fail_text(*m).find("version " + std::to_string(kVersion)) != std::string::npos);
	}
	SECTION("no handshake at all: the server gives up")
	{
		test::ServerThread quick(d / "served", [](ServerOptions &o) { o.handshake_timeout = std::chrono::milliseconds(300); });
		RawClient c(quick.server().port());
		CHECK(c.closed_by_server());
	}
}

TEST_CASE("net: malformed frames close the connection, the server goes on", "[net]")
{
	test::TempDir d;
	test::ServerThread srv(d / "served");
	open_store(srv.uri())->create(as_bytes("C"), "", {});
	uint16_t port = srv.server().port();
	auto ready = [&] {
		auto c = std::make_unique<RawClient>(port);
		REQUIRE(c->handshake(srv.token(Rights::ReadWrite)).type == Type::Welcome);
		return c;
	};
	SECTION("an oversized length")
	{
		auto c = ready();
		uint8_t h[kHeader];
		encode_header(Header{1, Type::Put, 0, 1}, h);
		h[0] = h[1] = h[2] = h[3] = 0xff;
		c->send(ByteView(h, kHeader));
		auto m = c->next();
		REQUIRE(m);
		CHECK(m->type == Type::Fail);
		CHECK(m->id == 0);
		CHECK(fail_text(*m).find("over the limit") != std::string::npos);
		CHECK(c->closed_by_server());
	}
	SECTION("garbage")
	{
		auto c = ready();
		c->send(test::random_data(5000, 3));
		CHECK(c->closed_by_server());
	}
	SECTION("a request id reused while in flight")
	{
		auto c = ready();
		// Both in one write: decoded together, before the first can have been answered.
		Bytes two;
		append_message(two, Type::Ping, 5, {}, kDefaultFrame, true);
		append_message(two, Type::Ping, 5, {}, kDefaultFrame, true);
		c->send_frames(std::move(two));
		bool saw_error = false;
		while (auto m = c->next())
			if (m->type == Type::Fail && m->id == 0)
				saw_error = fail_text(*m).find("already in flight") != std::string::npos;
		CHECK(saw_error);
	}
	SECTION("a malformed request is answered, the connection stays")
	{
		auto c = ready();
		c->send_message(Type::Get, 3, Bytes{0, 3, '.', '.', '/'});
		auto m = c->next();
		REQUIRE(m);
		CHECK(m->id == 3);
		CHECK(fail_code(*m) == Code::Corrupt);
		c->send_message(Type::Ping, 4, {});
		m = c->next();
		REQUIRE(m);
		CHECK(m->type == Type::Ok);
		CHECK(m->id == 4);
	}
	// Whatever happened, a real client still works.
	auto s = open_store(srv.uri());
	CHECK(as_string(s->open()) == "C");
	CHECK(srv.server().stats().active <= 2);
}

namespace {
// Bytes that pass for a sealed object of this kind as far as the server can tell (the kind
// byte of the envelope, repository/sealed.h); the server never opens them.
Bytes sealed_like(ObjectKind kind, const std::string &text)
{
	std::string raw = std::string("PLKO\x01") + char(kind) + text;
	return Bytes(raw.begin(), raw.end());
}
} // namespace

TEST_CASE("net: read-only and append-only tokens", "[net]")
{
	test::TempDir d;
	test::ServerThread srv(d / "served");
	auto rw = remote(srv, Rights::ReadWrite);
	rw->create(as_bytes("C"), "", {});
	rw->put(Kind::Pack, hexname(1), as_bytes("one"));
	rw->put(Kind::Lock, hexname(50), as_bytes("theirs"));
	auto ro = remote(srv, Rights::ReadOnly);
	CHECK(as_string(ro->get(Kind::Pack, hexname(1))) == "one");
	CHECK(ro->list(Kind::Pack).size() == 1);
	CHECK(ro->append_only());
	CHECK_FALSE(rw->append_only());
	CHECK(code_of([&] { ro->put(Kind::Pack, hexname(2), as_bytes("x")); }) == Code::Auth);
	CHECK(code_of([&] { ro->put(Kind::Index, hexname(2), as_bytes("x")); }) == Code::Auth);
	// A reader's own lock: put, refreshed, removed. Not a gc plan, not another's lock.
	ro->put(Kind::Lock, hexname(40), sealed_like(ObjectKind::Lock, "reading"));
	ro->put(Kind::Lock, hexname(40), sealed_like(ObjectKind::Lock, "reading, refreshed"));
	ro->remove(Kind::Lock, hexname(40));
	CHECK(code_of([&] { ro->put(Kind::Lock, hexname(2), as_bytes("x")); }) == Code::Auth);
	CHECK(code_of([&] { ro->put(Kind::Lock, hexname(41), sealed_like(ObjectKind::GcPlan, "delete all")); }) ==
	      Code::Auth);
	CHECK(code_of([&] { ro->put(Kind::Lock, hexname(50), sealed_like(ObjectKind::Lock, "stolen")); }) == Code::Auth);
	CHECK(code_of([&] { ro->remove(Kind::Lock, hexname(50)); }) == Code::Auth);
	CHECK(code_of([&] { ro->remove(Kind::Pack, hexname(1)); }) == Code::Auth);
	CHECK(code_of([&] { ro->create(as_bytes("C2"), "", {}); }) == Code::Auth);
	try {
		ro->remove(Kind::Pack, hexname(1));
	} catch (const Error &e) {
		CHECK(std::string(e.what()).find("read-only") != std::string::npos);
	}

	auto ap = remote(srv, Rights::AppendOnly);
	ap->put(Kind::Pack, hexname(3), as_bytes("three"));
	ap->put(Kind::Pack, hexname(3), as_bytes("three")); // the same bytes again: a retry
	CHECK(code_of([&] { ap->put(Kind::Pack, hexname(3), as_bytes("other")); }) == Code::Auth);
	CHECK(code_of([&] { ap->put(Kind::Pack, hexname(1), as_bytes("evil")); }) == Code::Auth);
	CHECK(code_of([&] { ap->remove(Kind::Pack, hexname(1)); }) == Code::Auth);
	CHECK(code_of([&] { ap->remove(Kind::Index, hexname(1)); }) == Code::Auth);
	// Only packs, index segments, snapshot headers and its own locks: no key file, no CONFIG.
	CHECK(code_of([&] { ap->put(Kind::Key, hexname(70), as_bytes("a key of its own")); }) == Code::Auth);
	CHECK(code_of([&] { ap->create(as_bytes("C3"), "", {}); }) == Code::Auth);
	CHECK(rw->list(Kind::Key).empty());
	ap->put(Kind::Index, hexname(71), sealed_like(ObjectKind::IndexSegment, "segment"));
	// A merged segment supersedes others (loaders skip them, gc deletes them): rw tokens only.
	try {
		ap->put(Kind::Index, hexname(72), sealed_like(ObjectKind::IndexMerge, "supersedes everything"));
		FAIL("a merged index segment from an append-only token was accepted");
	} catch (const Error &e) {
		CHECK(e.code() == Code::Auth);
		CHECK(std::string(e.what()).find("a merged segment supersedes others") != std::string::npos);
	}
	CHECK(rw->list(Kind::Index).size() == 1);
	ap->put(Kind::Snapshot, "11111111-2222-4333-8444-555555555555", as_bytes("header"));
	// Its own locks: put, refreshed, removed. Not another token's.
	ap->put(Kind::Lock, hexname(60), sealed_like(ObjectKind::Lock, "mine"));
	ap->put(Kind::Lock, hexname(60), sealed_like(ObjectKind::Lock, "mine, refreshed"));
	CHECK(code_of([&] { ap->put(Kind::Lock, hexname(50), sealed_like(ObjectKind::Lock, "stolen")); }) == Code::Auth);
	CHECK(code_of([&] { ap->remove(Kind::Lock, hexname(50)); }) == Code::Auth);
	ap->remove(Kind::Lock, hexname(60));
	// A gc plan names packs for the next gc to delete: only an rw token writes one.
	try {
		ap->put(Kind::Lock, hexname(61), sealed_like(ObjectKind::GcPlan, "condemned: everything"));
		FAIL("a gc plan from an append-only token was accepted");
	} catch (const Error &e) {
		CHECK(e.code() == Code::Auth);
		CHECK(std::string(e.what()).find("only locks go in the lock namespace") != std::string::npos);
	}
	// At most 256 locks per token at once.
	for (int i = 0; i < 256; i++)
		ap->put(Kind::Lock, hexname(1000 + i), sealed_like(ObjectKind::Lock, "many"));
	CHECK(code_of([&] { ap->put(Kind::Lock, hexname(2000), sealed_like(ObjectKind::Lock, "one more")); }) ==
	      Code::Auth);
	ap->put(Kind::Lock, hexname(1000), sealed_like(ObjectKind::Lock, "a refresh still goes"));
	for (int i = 0; i < 256; i++)
		ap->remove(Kind::Lock, hexname(1000 + i));
	CHECK(as_string(rw->get(Kind::Pack, hexname(1))) == "one");
	CHECK(as_string(rw->get(Kind::Pack, hexname(3))) == "three");
	CHECK(as_string(rw->get(Kind::Lock, hexname(50))) == "theirs");
	CHECK(rw->list(Kind::Lock).size() == 1);
}

TEST_CASE("net: pushes with an append-only token, and what it cannot do", "[net]")
{
	test::TempDir d;
	std::filesystem::create_directories(d / "src");
	test::write_file(d / "src/a", test::random_data(100000, 1));
	test::ServerThread srv(d / "served");
	{
		auto r = test::small_repo(srv.uri());
	}
	setenv("PLAKAR_TOKEN", srv.token(Rights::AppendOnly).c_str(), 1);
	std::vector<SnapshotHeader> snaps;
	// More pushes than the index keeps segments: the append-only client never compacts.
	for (int i = 0; i < 3; i++) {
		test::write_file(d / "src/a", test::random_data(100000, uint64_t(i + 10)));
		auto r = Repository::open(srv.uri(), std::string("pw"));
		snaps.push_back(push(*r, {d / "src"}, {}));
	}
	auto r = Repository::open(srv.uri(), std::string("pw"));
	CHECK(list_snapshots(*r).size() == 3);
	CHECK(code_of([&] { r->remove_snapshot(snaps[0].id_string()); }) == Code::Auth);
	CHECK(list_snapshots(*r).size() == 3);
	setenv("PLAKAR_TOKEN", srv.token(Rights::ReadWrite).c_str(), 1);
	auto full = Repository::open(srv.uri(), std::string("pw"));
	CHECK(check(*full, {}).ok());
}

TEST_CASE("net: a server stopped mid-request fails the client cleanly; a new one serves the same store", "[net]")
{
	test::TempDir d;
	auto srv = std::make_unique<test::ServerThread>(d / "served");
	auto s = remote(*srv, Rights::ReadWrite);
	s->create(as_bytes("C"), "", {});
	s->put(Kind::Pack, hexname(1), test::random_data(1 << 20, 1));
	uint16_t port = srv->server().port();
	std::atomic<bool> stop{false};
	std::atomic<int> failed{0}, stored{0};
	std::thread writer([&] {
		for (int i = 2; !stop; i++) {
			try {
				s->put(Kind::Pack, hexname(i), test::random_data(1 << 20, uint64_t(i)));
				stored++;
			} catch (const Error &e) {
				failed++;
				if (failed == 1)
					UNSCOPED_INFO(e.what());
				std::this_thread::sleep_for(std::chrono::milliseconds(20)); // no busy loop while it is down
			}
		}
	});
	CHECK(eventually([&] { return stored > 0; })); // puts go through
	srv.reset(); // the server goes away while puts are in flight
	CHECK(eventually([&] { return failed > 0; })); // and the writer notices
	// A new server on the same port: the client reconnects by itself.
	test::ServerThread again(d / "served", [&](ServerOptions &o) { o.listen = "127.0.0.1:" + std::to_string(port); });
	// The store's tokens are new: give this client the new rw token through a fresh store.
	stop = true;
	writer.join();
	auto s2 = remote(again, Rights::ReadWrite);
	CHECK(s2->get(Kind::Pack, hexname(1)) == test::random_data(1 << 20, 1));
	// Every pack that exists is whole: puts are atomic in the served store.
	for (const auto &n : s2->list(Kind::Pack))
		CHECK(s2->size(Kind::Pack, n) == (1u << 20));
}

namespace {
void with_tls(ServerOptions &o, const std::string &name = "127.0.0.1")
{
	o.tls = std::make_shared<TlsIdentity>(make_tls_identity(name, 2));
}

// A plakar+tls:// store for srv's rw token, as the URI and these changes say.
std::unique_ptr<RemoteStore> tls_client(const test::ServerThread &srv, const std::string &uri,
                                        const std::string &ca_file = "")
{
	RemoteOptions o;
	parse_remote_uri(uri, o);
	o.ca_file = ca_file;
	o.token = parse_client_token(srv.token(Rights::ReadWrite));
	o.connect_timeout = std::chrono::milliseconds(5000);
	return std::make_unique<RemoteStore>(std::move(o));
}

std::string message_of(const std::function<void()> &f)
{
	try {
		f();
	} catch (const Error &e) {
		return e.what();
	}
	return "";
}
} // namespace

TEST_CASE("net: TLS identities", "[net][tls]")
{
	test::TempDir d;
	auto id = make_tls_identity("backup.example", 30);
	std::string pin = tls_pin(id);
	CHECK(pin.size() == 7 + 64);
	CHECK(pin.rfind("sha256:", 0) == 0);
	CHECK(parse_tls_pin(pin) == pin);
	write_tls_identity(id, d / "cert.pem", d / "key.pem");
	struct stat st;
	REQUIRE(::stat((d / "key.pem").c_str(), &st) == 0);
	CHECK((st.st_mode & 0777) == 0600);
	auto back = load_tls_identity(d / "cert.pem", d / "key.pem");
	CHECK(tls_pin(back) == pin);
	CHECK(server_tls_context(back) != nullptr);
	// Never over an existing file: the key stays.
	CHECK(code_of([&] { write_tls_identity(make_tls_identity("x", 1), d / "cert.pem", d / "new.pem"); }) == Code::Exists);
	CHECK(!std::filesystem::exists(d / "new.pem"));
	// A key open to others, another certificate's key, missing files, not PEM.
	::chmod((d / "key.pem").c_str(), 0644);
	CHECK(message_of([&] { load_tls_identity(d / "cert.pem", d / "key.pem"); }).find("chmod 600") != std::string::npos);
	::chmod((d / "key.pem").c_str(), 0600);
	write_tls_identity(make_tls_identity("other", 1), d / "c2.pem", d / "k2.pem");
	CHECK(message_of([&] { load_tls_identity(d / "cert.pem", d / "k2.pem"); }).find("is not the key of") !=
	      std::string::npos);
	CHECK(code_of([&] { load_tls_identity(d / "missing.pem", d / "key.pem"); }) == Code::NotFound);
	CHECK(code_of([&] { load_tls_identity(d / "cert.pem", d / "missing.pem"); }) == Code::NotFound);
	test::write_file(d / "junk.pem", as_bytes("not a certificate"));
	CHECK(code_of([&] { load_tls_identity(d / "junk.pem", d / "key.pem"); }) == Code::Invalid);
	for (const char *bad : {"", "two words", "a/b"})
		CHECK(code_of([&] { make_tls_identity(bad, 1); }) == Code::Invalid);
	CHECK(code_of([&] { make_tls_identity("h", 0); }) == Code::Invalid);
	for (const char *bad : {"sha256:", "sha1:abcd", "sha256:xyz"})
		CHECK(code_of([&] { parse_tls_pin(bad); }) == Code::Invalid);
	// A server refuses a mismatched identity at once.
	TlsIdentity mixed{id.cert_pem, make_tls_identity("x", 1).key_pem};
	CHECK(code_of([&] { server_tls_context(mixed); }) == Code::Invalid);
}

TEST_CASE("net: a repository through a TLS server, its certificate pinned", "[net][tls]")
{
	test::TempDir d;
	std::filesystem::create_directories(d / "src");
	for (int i = 0; i < 20; i++)
		test::write_file(d / ("src/f" + std::to_string(i)), test::random_data(size_t(2000 + i * 5000), uint64_t(i)));
	test::write_file(d / "src/big", test::random_data(2 << 20, 77));
	test::ServerThread srv(d / "served", [](ServerOptions &o) { with_tls(o); });
	REQUIRE(srv.uri().rfind("plakar+tls://127.0.0.1:", 0) == 0);
	SnapshotHeader h;
	{
		auto r = test::small_repo(srv.uri());
		h = push(*r, {d / "src"}, {});
	}
	{
		auto r = Repository::open(srv.uri(), std::string("pw"));
		PullOptions po;
		po.to = d / "out";
		pull(*r, h, "/", po);
		CheckOptions co;
		co.read_data = true;
		CHECK(check(*r, co).ok());
	}
	for (int i = 0; i < 20; i++)
		CHECK(test::read_file(d / ("out" + (d / "src/f") + std::to_string(i))) ==
		      test::random_data(size_t(2000 + i * 5000), uint64_t(i)));
	CHECK(test::read_file(d / ("out" + (d / "src/big"))) == test::random_data(2 << 20, 77));
	CHECK(srv.server().stats().auth_failures == 0);
}

TEST_CASE("net: TLS certificates that are refused, and clients that speak the other way", "[net][tls]")
{
	test::TempDir d;
	test::ServerThread srv(d / "served", [](ServerOptions &o) { with_tls(o); });
	open_store(srv.uri())->create(as_bytes("C"), "", {});
	std::string hostport = "127.0.0.1:" + std::to_string(srv.server().port());
	SECTION("the right pin")
	{
		CHECK(tls_client(srv, srv.uri())->list(Kind::Pack).empty());
	}
	SECTION("another pin")
	{
		std::string other = tls_pin(make_tls_identity("127.0.0.1", 1));
		auto c = tls_client(srv, "plakar+tls://" + hostport + "?pin=" + other);
		std::string msg = message_of([&] { c->list(Kind::Pack); });
		CHECK(msg.find("not the pinned " + other) != std::string::npos);
		CHECK(code_of([&] { c->list(Kind::Pack); }) == Code::Auth);
	}
	SECTION("no pin: the certificate as the authority, for the right address")
	{
		// A server whose certificate is written where the client reads its authorities.
		auto own = make_tls_identity("127.0.0.1", 2);
		test::ServerThread s2(d / "served2", [&](ServerOptions &o) { o.tls = std::make_shared<TlsIdentity>(own); });
		test::write_file(d / "ca.pem", as_bytes(own.cert_pem));
		std::string uri = "plakar+tls://127.0.0.1:" + std::to_string(s2.server().port());
		auto c = tls_client(s2, uri, d / "ca.pem");
		CHECK_NOTHROW(c->list(Kind::Pack));
		// Another authority, or none but the system's: refused.
		auto stranger = make_tls_identity("127.0.0.1", 2);
		test::write_file(d / "other-ca.pem", as_bytes(stranger.cert_pem));
		for (std::string ca : {d / "other-ca.pem", std::string()}) {
			auto c2 = tls_client(s2, uri, ca);
			std::string msg = message_of([&] { c2->list(Kind::Pack); });
			CHECK(msg.find("TLS certificate is refused") != std::string::npos);
			CHECK(code_of([&] { c2->list(Kind::Pack); }) == Code::Auth);
		}
	}
	SECTION("no pin: a certificate for another name")
	{
		auto named = make_tls_identity("backup.example", 2);
		test::ServerThread s3(d / "served3", [&](ServerOptions &o) { o.tls = std::make_shared<TlsIdentity>(named); });
		test::write_file(d / "ca3.pem", as_bytes(named.cert_pem));
		auto c = tls_client(s3, "plakar+tls://127.0.0.1:" + std::to_string(s3.server().port()), d / "ca3.pem");
		std::string msg = message_of([&] { c->list(Kind::Pack); });
		CHECK(msg.find("TLS certificate is refused") != std::string::npos);
	}
	SECTION("a client in the clear")
	{
		auto c = open_store("plakar://" + hostport);
		std::string msg = message_of([&] { c->list(Kind::Pack); });
		CHECK(msg.find("this server speaks TLS only") != std::string::npos);
		CHECK(code_of([&] { c->list(Kind::Pack); }) == Code::Auth);
		RawClient raw(srv.server().port());
		raw.send_message(Type::Hello, 0, encode(Hello{kVersion, crypto::random_bytes(kNonce)}));
		auto m = raw.next();
		REQUIRE(m.has_value());
		CHECK(m->type == Type::Fail);
		CHECK(raw.closed_by_server());
	}
	SECTION("a TLS client to a server in the clear")
	{
		test::ServerThread plain(d / "served4");
		std::string uri = "plakar+tls://127.0.0.1:" + std::to_string(plain.server().port()) + "?pin=" + srv.server().tls_pin();
		auto c = tls_client(plain, uri);
		std::string msg = message_of([&] { c->list(Kind::Pack); });
		CHECK(msg.find("TLS") != std::string::npos);
		CHECK(code_of([&] { c->list(Kind::Pack); }) != Code(0));
	}
	SECTION("garbage that looks like TLS")
	{
		RawClient raw(srv.server().port());
		Bytes junk = test::random_data(4000, 5);
		junk[0] = 0x16;
		raw.send(junk);
		CHECK(raw.closed_by_server());
		CHECK(tls_client(srv, srv.uri())->list(Kind::Pack).empty());
	}
}

TEST_CASE("net: the gate decides sessions and rights on its own", "[net][gate]")
{
	// The gate is what runs in the store process of a privilege-separated server: whatever the
	// network process asks, only a session it authenticated with a fresh proof may call, and
	// only as its token allows.
	test::TempDir d;
	auto store = open_store(d / "store");
	store->create(as_bytes("C"), "", {});
	std::vector<Token> tokens;
	std::map<Rights, std::string> client;
	for (auto r : {Rights::ReadWrite, Rights::ReadOnly, Rights::AppendOnly}) {
		auto t = make_token(rights_name(r), r);
		tokens.push_back(parse_client_token(t.client_token));
		tokens.back().rights = r;
		client[r] = t.client_token;
	}
	Gate gate(*store, tokens);
	CHECK(code_of([&] { Gate(*store, {}); }) == Code::Invalid);
	// A client's side of the handshake on a new session.
	auto login = [&](Rights r) {
		Token t = parse_client_token(client[r]);
		Bytes nonce = crypto::random_bytes(kNonce);
		auto o = gate.open_session(nonce);
		auto w = gate.authenticate(o.session, AuthMsg{t.name, client_proof(t.secret.view(), o.server_nonce, nonce, t.name)});
		CHECK(w.welcome.rights == r);
		CHECK(w.welcome.proof == server_proof(t.secret.view(), o.server_nonce, nonce, t.name));
		// The secret the frame keys derive from: the client computes the same one.
		CHECK(crypto::equal(w.secret.view(), session_secret(t.secret.view(), o.server_nonce, nonce, t.name).view()));
		return o.session;
	};
	auto put = [&](uint64_t s, Kind k, const std::string &name, const char *data) {
		Bytes body = encode_named(k, name);
		ByteView b = as_bytes(data);
		body.insert(body.end(), b.begin(), b.end());
		return gate.call(s, Type::Put, body);
	};
	auto remove = [&](uint64_t s, Kind k, const std::string &name) {
		return gate.call(s, Type::Remove, encode_named(k, name));
	};

	SECTION("no call without an authenticated session")
	{
		CHECK(code_of([&] { gate.call(12345, Type::List, encode_kind(Kind::Pack)); }) == Code::Auth);
		Bytes nonce = crypto::random_bytes(kNonce);
		auto o = gate.open_session(nonce);
		CHECK(code_of([&] { gate.call(o.session, Type::List, encode_kind(Kind::Pack)); }) == Code::Auth);
		Bytes buf(1);
		CHECK(code_of([&] { gate.read_range(o.session, Kind::Pack, "00", 0, 1, buf.data()); }) == Code::Auth);
		CHECK(code_of([&] { gate.open_session(Bytes(5)); }) == Code::Corrupt);
	}
	SECTION("a wrong proof ends the session; a proof is good for its own session only")
	{
		Token t = parse_client_token(client[Rights::ReadWrite]);
		Bytes nonce = crypto::random_bytes(kNonce);
		auto a = gate.open_session(nonce);
		auto b = gate.open_session(nonce); // the same client nonce: the server's differs
		CHECK(a.server_nonce != b.server_nonce);
		Bytes proof_a = client_proof(t.secret.view(), a.server_nonce, nonce, t.name);
		CHECK(code_of([&] { gate.authenticate(b.session, AuthMsg{t.name, proof_a}); }) == Code::Auth);
		CHECK(code_of([&] { gate.authenticate(b.session, AuthMsg{t.name, client_proof(t.secret.view(), b.server_nonce, nonce, t.name)}); }) == Code::Auth); // b is gone
		CHECK(code_of([&] { gate.authenticate(a.session, AuthMsg{"nobody", proof_a}); }) == Code::Auth);
		CHECK(code_of([&] { gate.authenticate(a.session, AuthMsg{t.name, proof_a}); }) == Code::Auth); // a is gone too
		CHECK(gate.sessions() == 0);
		// Once authenticated, a session takes no other auth (no switching tokens).
		uint64_t s = login(Rights::ReadOnly);
		Token rw = parse_client_token(client[Rights::ReadWrite]);
		CHECK(code_of([&] { gate.authenticate(s, AuthMsg{rw.name, Bytes(32)}); }) == Code::Auth);
		CHECK(code_of([&] { put(s, Kind::Pack, "01", "x"); }) == Code::Auth);
		gate.close_session(s);
		CHECK(code_of([&] { gate.call(s, Type::List, encode_kind(Kind::Pack)); }) == Code::Auth);
	}
	SECTION("rights, call by call")
	{
		uint64_t rw = login(Rights::ReadWrite), ro = login(Rights::ReadOnly), ap = login(Rights::AppendOnly);
		put(rw, Kind::Pack, "01", "one");
		put(rw, Kind::Lock, "50", "theirs");
		Bytes got(3);
		gate.read_range(ro, Kind::Pack, "01", 0, 3, got.data());
		CHECK(as_string(got) == "one");
		CHECK(code_of([&] { put(ro, Kind::Pack, "02", "x"); }) == Code::Auth);
		CHECK(code_of([&] { remove(ro, Kind::Pack, "01"); }) == Code::Auth);
		CHECK(code_of([&] { gate.call(ro, Type::Create, encode_create(as_bytes("C2"), "", {})); }) == Code::Auth);
		put(ap, Kind::Pack, "03", "three");
		put(ap, Kind::Pack, "03", "three"); // a retry
		CHECK(code_of([&] { put(ap, Kind::Pack, "03", "other"); }) == Code::Auth);
		CHECK(code_of([&] { put(ap, Kind::Pack, "01", "evil"); }) == Code::Auth);
		CHECK(code_of([&] { remove(ap, Kind::Pack, "01"); }) == Code::Auth);
		CHECK(code_of([&] { remove(ap, Kind::Lock, "50"); }) == Code::Auth);
		put(ap, Kind::Lock, "60", "PLKO\x01\x03" "mine"); // the kind byte of a sealed lock
		put(ap, Kind::Lock, "60", "PLKO\x01\x03" "mine, refreshed");
		remove(ap, Kind::Lock, "60");
		CHECK(code_of([&] { put(ap, Kind::Lock, "61", "PLKO\x01\x04" "a gc plan"); }) == Code::Auth);
		put(ro, Kind::Lock, "62", "PLKO\x01\x03" "reading");
		remove(ro, Kind::Lock, "62");
		CHECK(as_string(store->get(Kind::Pack, "01")) == "one");
		CHECK(as_string(store->get(Kind::Lock, "50")) == "theirs");
		remove(rw, Kind::Pack, "03");
		CHECK(code_of([&] { store->get(Kind::Pack, "03"); }) == Code::NotFound);
	}
	SECTION("sessions that never authenticate are bounded")
	{
		for (size_t i = 0; i < Gate::kMaxPending + 50; i++)
			gate.open_session(crypto::random_bytes(kNonce));
		CHECK(gate.sessions() == Gate::kMaxPending);
		login(Rights::ReadOnly); // the newest still work
	}
}

TEST_CASE("net: a privilege-separated server whose constructor fails releases its socket", "[net][trust]")
{
	test::TempDir d;
	ServerOptions o;
	o.listen = "127.0.0.1:0";
	o.tokens.push_back(parse_client_token("t:" + std::string(64, '1')));
	// The lowest free descriptor goes to the listening socket; with the limit just above it,
	// the stop pipe cannot be made and the constructor throws after binding.
	int probe = ::dup(0);
	REQUIRE(probe >= 0);
	::close(probe);
	struct rlimit saved;
	REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
	struct rlimit tight = saved;
	tight.rlim_cur = rlim_t(probe + 1);
	REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
	Code c = code_of([&] { PrivsepServer s(d / "store", o); });
	REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
	CHECK(c != Code(0));
	CHECK(::fcntl(probe, F_GETFD) == -1); // the socket it bound is closed
}

TEST_CASE("net: log lines escape what peers send and are rate-limited", "[net][server]")
{
	test::TempDir d;
	std::mutex mu;
	std::vector<std::string> lines;
	test::ServerThread srv(d / "served", [&](ServerOptions &o) {
		o.log = [&](const std::string &l) {
			std::lock_guard lk(mu);
			lines.push_back(l);
		};
	});
	uint16_t port = srv.server().port();
	// A token name with a newline and a terminal escape: refused, and logged on one line.
	{
		RawClient c(port);
		Hello h;
		h.nonce = crypto::random_bytes(kNonce);
		c.send_message(Type::Hello, 0, encode(h));
		REQUIRE(c.next());
		c.send_message(Type::Auth, 0, encode(AuthMsg{"evil\nplakar server: forged line \x1b[31m", Bytes(32, 0)}));
		c.next();
	}
	// A flood of connections that fail their handshake: a few lines, then a count.
	for (int i = 0; i < 100; i++) {
		RawClient c(port);
		c.send_message(Type::Open, 1, {});
		c.next();
	}
	// The forged name's line, escaped, reaches the log (the log runs on the server's thread).
	auto escaped = [&] {
		std::lock_guard lk(mu);
		for (const auto &l : lines)
			if (l.find("evil\\x0aplakar server: forged line \\x1b[31m") != std::string::npos)
				return true;
		return false;
	};
	CHECK(eventually(escaped));
	std::lock_guard lk(mu);
	REQUIRE(!lines.empty());
	for (const auto &l : lines)
		for (unsigned char ch : l)
			CHECK((ch >= 0x20 && ch < 0x7f));
	CHECK(lines.size() <= 20); // the burst; the rest is summed up when a later window opens
}

TEST_CASE("net: the network process's system-call filter refuses what it does not need", "[net][server]")
{
	test::TempDir d;
	std::string probe = d / "created-by-a-sandboxed-process";
	int pipefd[2];
	REQUIRE(::pipe(pipefd) == 0);
	pid_t pid = ::fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		try {
			sandbox_network_process();
		} catch (...) {
			::_exit(10);
		}
		// Allowed: writing to a descriptor it holds, memory, time.
		if (::write(pipefd[1], "ok", 2) != 2)
			::_exit(11);
		// Refused: a new file, a new socket.
		int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT, 0600);
		if (fd >= 0 || errno != EPERM)
			::_exit(12);
		int s = ::socket(AF_INET, SOCK_STREAM, 0);
		if (s >= 0 || errno != EPERM)
			::_exit(13);
		// Fatal: exec.
		char *argv[] = {const_cast<char *>("/bin/true"), nullptr};
		::execv("/bin/true", argv);
		::_exit(14);
	}
	::close(pipefd[1]);
	int st = 0;
	REQUIRE(::waitpid(pid, &st, 0) == pid);
	char buf[2] = {};
	CHECK(::read(pipefd[0], buf, 2) == 2);
	::close(pipefd[0]);
	CHECK(WIFSIGNALED(st));
	CHECK(WTERMSIG(st) == SIGSYS);
	CHECK_FALSE(std::filesystem::exists(probe));
}

namespace {
// A connection that never sends a byte (the raw flood of an attacker); -1 when refused.
int idle_connection(uint16_t port)
{
	int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
		::close(fd);
		return -1;
	}
	return fd;
}

// A connection from `source` (a loopback address) that sends a hello and then nothing: it
// waits in its handshake, answered, as a client does; -1 when refused.
int hello_connection(uint16_t port, const char *source)
{
	int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	sockaddr_in from{};
	from.sin_family = AF_INET;
	::inet_pton(AF_INET, source, &from.sin_addr);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (::bind(fd, reinterpret_cast<sockaddr *>(&from), sizeof from) != 0 ||
	    ::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
		::close(fd);
		return -1;
	}
	Hello h;
	h.nonce = crypto::random_bytes(kNonce);
	Bytes out;
	append_message(out, Type::Hello, 0, encode(h), kMaxFrameLimit);
	if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != ssize_t(out.size())) {
		::close(fd);
		return -1;
	}
	return fd;
}

// A thread opening connections with open_one() (-1: refused) every `pause`, keeping each
// until it is older than max_age or more than `keep` are open; stopped and joined when it
// goes (also when a check throws).
class Flood {
public:
	Flood(std::function<int()> open_one, std::chrono::milliseconds pause, size_t keep,
	      std::chrono::milliseconds max_age = std::chrono::hours(1))
	    : thread_([=, this] {
		      using Clock = std::chrono::steady_clock;
		      std::deque<std::pair<int, Clock::time_point>> fds;
		      while (!stop_) {
			      if (int fd = open_one(); fd >= 0) {
				      fds.emplace_back(fd, Clock::now());
				      opened_++;
			      }
			      while (!fds.empty() && (fds.size() > keep || Clock::now() - fds.front().second > max_age)) {
				      ::close(fds.front().first);
				      fds.pop_front();
			      }
			      std::this_thread::sleep_for(pause);
		      }
		      for (auto &[fd, t] : fds)
			      ::close(fd);
	      })
	{
	}
	~Flood()
	{
		stop_ = true;
		thread_.join();
	}
	int opened() const { return opened_; }

private:
	std::atomic<bool> stop_{false};
	std::atomic<int> opened_{0};
	std::thread thread_;
};

// What a real client does: a put, a list, a get, on a fresh connection each time.
void real_client_works(const test::ServerThread &srv, int round)
{
	auto s = remote(srv, Rights::ReadWrite);
	std::string name = hexname(1000 + round);
	s->put(Kind::Pack, name, as_bytes("data " + std::to_string(round)));
	CHECK(!s->list(Kind::Pack).empty());
	CHECK(as_string(s->get(Kind::Pack, name)) == "data " + std::to_string(round));
}
} // namespace

TEST_CASE("net: idle connections filling every slot do not keep a real client out", "[net][server]")
{
	test::TempDir d;
	test::ServerThread srv(d / "served");
	remote(srv, Rights::ReadWrite)->create(as_bytes("C"), "", {});
	uint16_t port = srv.server().port();
	std::vector<int> idle;
	for (int i = 0; i < 80; i++)
		if (int fd = idle_connection(port); fd >= 0)
			idle.push_back(fd);
	std::this_thread::sleep_for(std::chrono::milliseconds(100)); // past the 50 ms grace
	for (int round = 0; round < 3; round++)
		real_client_works(srv, round);
	CHECK(srv.server().stats().dropped > 0);
	for (int fd : idle)
		::close(fd);
}

TEST_CASE("net: a flood of connections from one address while a real client works", "[net][server]")
{
	test::TempDir d;
	test::ServerThread srv(d / "served");
	remote(srv, Rights::ReadWrite)->create(as_bytes("C"), "", {});
	uint16_t port = srv.server().port();
	int opened = 0;
	{
		// About 500 new connections a second, each left silent until the server drops it.
		Flood flood([port] { return idle_connection(port); }, std::chrono::milliseconds(2), 400);
		std::this_thread::sleep_for(std::chrono::milliseconds(300));
		for (int round = 0; round < 10; round++)
			real_client_works(srv, round);
		opened = flood.opened();
	}
	CHECK(opened > 100);
}

TEST_CASE("net: an address flooding with answered hellos takes no handshake place from another", "[net][server]")
{
	// Each of the flood's connections sends its hello at once and is closed before it has left
	// the challenge unanswered for a second: none of them is silent or stalled, and without a
	// share per address they would hold every place of the handshake pool.
	test::TempDir d;
	test::ServerThread srv(d / "served");
	remote(srv, Rights::ReadWrite)->create(as_bytes("C"), "", {});
	uint16_t port = srv.server().port();
	int opened = 0;
	{
		Flood flood([port] { return hello_connection(port, "127.0.0.2"); }, std::chrono::milliseconds(1), 400,
		            std::chrono::milliseconds(700));
		std::this_thread::sleep_for(std::chrono::milliseconds(800)); // the pool is full of the flood's handshakes
		for (int round = 0; round < 10; round++)
			real_client_works(srv, round); // from 127.0.0.1
		opened = flood.opened();
	}
	CHECK(opened > 100);
	CHECK(srv.server().stats().dropped > 0);
}

TEST_CASE("net: a frame dripped byte by byte is cut off at the frame deadline", "[net][server]")
{
	test::TempDir d;
	test::ServerThread srv(d / "served", [](ServerOptions &o) { o.frame_timeout = std::chrono::milliseconds(500); });
	remote(srv, Rights::ReadWrite)->create(as_bytes("C"), "", {});
	RawClient c(srv.server().port());
	REQUIRE(c.handshake(srv.token(Rights::ReadWrite)).type == Type::Welcome);
	uint8_t h[kHeader];
	encode_header(Header{100, Type::Put, 0, 1}, h);
	bool cut = false;
	for (size_t i = 0; i < kHeader + 100 && !cut; i++) {
		uint8_t b = i < kHeader ? h[i] : 0;
		if (::send(c.fd(), &b, 1, MSG_NOSIGNAL) != 1)
			cut = true;
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
		pollfd p{c.fd(), POLLIN, 0};
		if (::poll(&p, 1, 0) > 0) {
			uint8_t buf[256];
			if (::recv(c.fd(), buf, sizeof buf, MSG_DONTWAIT) <= 0)
				cut = true;
		}
	}
	CHECK(cut); // within the 11 s of dripping: the 500 ms frame deadline, not the 300 s idle one
}

TEST_CASE("net: a client that never finishes a put stops nobody else, and its leaving is noticed",
          "[net][server]")
{
	test::TempDir d;
	test::ServerThread srv(d / "served", [](ServerOptions &o) { o.max_buffered = 8 << 20; });
	remote(srv, Rights::ReadWrite)->create(as_bytes("C"), "", {});
	// The stalled client: 24 MiB of a 64 MiB put, three times the server's bound, then silence.
	auto staller = std::make_unique<RawClient>(srv.server().port());
	REQUIRE(staller->handshake(srv.token(Rights::ReadWrite)).type == Type::Welcome);
	{
		const uint32_t frame = 1 << 20;
		Bytes chunk(kHeader + frame + kTag, 0);
		for (int i = 0; i < 24; i++) {
			encode_header(Header{frame, Type::Put, kFlagMore, 7}, chunk.data());
			staller->seal(chunk);
			size_t at = 0;
			while (at < chunk.size()) {
				pollfd p{staller->fd(), POLLOUT, 0};
				if (::poll(&p, 1, 2000) <= 0)
					break; // the server stopped reading this one: enough
				ssize_t n = ::send(staller->fd(), chunk.data() + at, chunk.size() - at, MSG_NOSIGNAL | MSG_DONTWAIT);
				if (n <= 0)
					break;
				at += size_t(n);
			}
			if (at < chunk.size())
				break;
		}
	}
	// Ten clients push and pull meanwhile.
	std::vector<std::thread> clients;
	std::atomic<int> ok{0};
	for (int i = 0; i < 10; i++)
		clients.emplace_back([&, i] {
			try {
				auto s = remote(srv, Rights::ReadWrite);
				Bytes data = test::random_data(1 << 20, uint64_t(i));
				s->put(Kind::Pack, hexname(2000 + i), data);
				if (s->get(Kind::Pack, hexname(2000 + i)) == data)
					ok++;
			} catch (const std::exception &) {
			}
		});
	for (auto &t : clients)
		t.join();
	CHECK(ok == 10);
	// The staller leaves (its process killed: a reset, since the server was not reading what
	// it had still queued): the server notices although it was not reading this connection,
	// and lets go of what it held.
	struct linger lg{1, 0};
	::setsockopt(staller->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	staller.reset();
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
	while (srv.server().stats().active > 0 && std::chrono::steady_clock::now() < deadline)
		std::this_thread::sleep_for(std::chrono::milliseconds(50));
	CHECK(srv.server().stats().active == 0);
}
