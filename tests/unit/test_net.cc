// plakar server and the plakar:// store, through a real server on 127.0.0.1.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "crypto/crypto.h"
#include "helpers.h"
#include "net/protocol.h"
#include "net/tokens.h"
#include "snapshot/builder.h"
#include "snapshot/check.h"
#include "snapshot/restore.h"
#include "snapshot/snapshot.h"
#include "storage/remote/remote_store.h"

using namespace plakar;
using namespace plakar::net;
using plakar::test::code_of;

namespace {

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
	void send_message(Type t, uint64_t id, ByteView body)
	{
		Bytes out;
		append_message(out, t, id, body, kMaxFrameLimit);
		send(out);
	}
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
		send_message(Type::Hello, 0, encode(h));
		auto c = next();
		REQUIRE(c);
		REQUIRE(c->type == Type::Challenge);
		Challenge ch = decode_challenge(c->body);
		if (server_nonce)
			*server_nonce = ch.nonce;
		send_message(Type::Auth, 0, encode(AuthMsg{t.name, client_proof(t.secret.view(), ch.nonce, h.nonce, t.name)}));
		auto w = next();
		REQUIRE(w);
		return std::move(*w);
	}
	int fd() const { return fd_; }

private:
	int fd_ = -1;
	Decoder dec_{kMaxFrameLimit, kMaxMessage};
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
	std::string h;
	uint16_t p = 0;
	parse_remote_uri("plakar://backup.example", h, p);
	CHECK(h == "backup.example");
	CHECK(p == 9876);
	parse_remote_uri("plakar://10.0.0.1:1234/", h, p);
	CHECK(h == "10.0.0.1");
	CHECK(p == 1234);
	parse_remote_uri("plakar://[::1]:99", h, p);
	CHECK(h == "::1");
	CHECK(p == 99);
	for (const char *bad : {"plakar://", "plakar://h:", "plakar://h:0", "plakar://h:70000", "plakar://h:12x",
	                        "plakar://h/path", "plakar://[::1", "http://h"})
		CHECK(code_of([&] { parse_remote_uri(bad, h, p); }) == Code::Invalid);
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
		CHECK(fail_text(*m).find("version 1") != std::string::npos);
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
		append_message(two, Type::Ping, 5, {}, kDefaultFrame);
		append_message(two, Type::Ping, 5, {}, kDefaultFrame);
		c->send(two);
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
	CHECK(code_of([&] { ro->put(Kind::Lock, hexname(2), as_bytes("x")); }) == Code::Auth);
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
	// Its own locks: put, refreshed, removed. Not another token's.
	ap->put(Kind::Lock, hexname(60), as_bytes("mine"));
	ap->put(Kind::Lock, hexname(60), as_bytes("mine, refreshed"));
	CHECK(code_of([&] { ap->put(Kind::Lock, hexname(50), as_bytes("stolen")); }) == Code::Auth);
	CHECK(code_of([&] { ap->remove(Kind::Lock, hexname(50)); }) == Code::Auth);
	ap->remove(Kind::Lock, hexname(60));
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
	std::atomic<int> failed{0};
	std::thread writer([&] {
		for (int i = 2; !stop; i++) {
			try {
				s->put(Kind::Pack, hexname(i), test::random_data(1 << 20, uint64_t(i)));
			} catch (const Error &e) {
				failed++;
				if (failed == 1)
					UNSCOPED_INFO(e.what());
				std::this_thread::sleep_for(std::chrono::milliseconds(20));
			}
		}
	});
	std::this_thread::sleep_for(std::chrono::milliseconds(300));
	srv.reset(); // the server goes away while puts are in flight
	std::this_thread::sleep_for(std::chrono::milliseconds(200));
	CHECK(failed > 0);
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
