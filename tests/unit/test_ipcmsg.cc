// ipcmsg between real processes (fork) and against a raw peer writing malformed frames:
// ping/pong, thousands of concurrent queries, descriptor passing, a peer dying mid-query,
// and every malformed frame the decoder refuses.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "base/error.h"
#include "helpers.h"
#include "privsep/frame.h"
#include "privsep/ipcmsg.h"

using namespace plakar;
using namespace plakar::privsep;

namespace {

enum : uint32_t { PING = 1, PONG = 2, READ_FD = 3, CONTENT = 4, DIE = 5, NOTE = 6, OPEN = 7, SLEEP = 8 };

struct Pair {
	int a = -1, b = -1;
	Pair()
	{
		int sv[2];
		REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
		a = sv[0];
		b = sv[1];
	}
};

// Forks a peer that serves PING (reply PONG with the same bytes), READ_FD (reply with the
// file's content read through the descriptor), OPEN (reply with a descriptor of a new pipe
// holding "piped"), DIE (exits at once, without replying) and NOTE (a message: answers with a
// NOTE message of its own). It exits when the channel closes.
pid_t fork_peer(Pair &p, bool pass_fds = true)
{
	pid_t parent = ::getpid();
	pid_t pid = ::fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		::close(p.a);
		int rc = 0;
		try {
			Channel::Options o;
			o.pass_fds = pass_fds;
			Channel c("child<->parent", p.b, parent, o);
			c.handler(PING, [](Channel &ch, Message &m) { ch.reply(m, PONG, m.data); });
			c.handler(READ_FD, [](Channel &ch, Message &m) {
				Fd f(m.take_fd());
				char buf[4096];
				ssize_t n = ::pread(f.fd, buf, sizeof buf, 0);
				ch.reply(m, CONTENT, ByteView(reinterpret_cast<uint8_t *>(buf), size_t(n < 0 ? 0 : n)));
			});
			c.handler(OPEN, [](Channel &ch, Message &m) {
				int fds[2];
				if (::pipe(fds) != 0)
					::_exit(3);
				if (::write(fds[1], "piped", 5) != 5)
					::_exit(3);
				::close(fds[1]);
				ch.reply(m, CONTENT, {}, fds[0]);
				::close(fds[0]);
			});
			c.handler(DIE, [](Channel &, Message &) { ::_exit(0); });
			c.handler(NOTE, [](Channel &ch, Message &m) { ch.message(NOTE, m.data); });
			c.dispatch();
		} catch (const std::exception &e) {
			rc = 2;
		}
		::_exit(rc);
	}
	::close(p.b);
	return pid;
}

int reap(pid_t pid)
{
	int st = 0;
	::waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

size_t open_fds()
{
	size_t n = 0;
	DIR *d = ::opendir("/proc/self/fd");
	while (auto *e = ::readdir(d))
		n += e->d_name[0] != '.';
	::closedir(d);
	return n;
}

Bytes bytes_of(const std::string &s) { return Bytes(s.begin(), s.end()); }

} // namespace

TEST_CASE("ipcmsg: ping/pong with another process, and the channel ends when it closes", "[ipcmsg]")
{
	Pair p;
	pid_t pid = fork_peer(p);
	{
		Channel c("parent<->child", p.a, pid, Channel::Options{.pass_fds = true});
		std::atomic<int> notes{0};
		c.handler(NOTE, [&](Channel &, Message &m) {
			CHECK(m.data == bytes_of("hello"));
			CHECK(m.pid == pid);
			notes++;
		});
		auto done = c.dispatch_async();
		Message r = c.query(PING, bytes_of("ping 1"));
		CHECK(r.type == PONG);
		CHECK(r.data == bytes_of("ping 1"));
		CHECK(r.pid == pid);
		CHECK(r.fd.fd == -1);
		c.message(NOTE, bytes_of("hello"));
		// An empty payload travels too.
		CHECK(c.query(PING).data.empty());
		CHECK(notes.load() == 1); // the NOTE answer came before the PONG that followed it
		c.close();
		done.get();
		CHECK_THROWS_AS(c.query(PING), Error);
		CHECK_THROWS_AS(c.message(PING), Error);
	}
	CHECK(reap(pid) == 0);
}

TEST_CASE("ipcmsg: thousands of queries from several threads each get their own answer", "[ipcmsg]")
{
	Pair p;
	pid_t pid = fork_peer(p);
	{
		Channel c("parent<->child", p.a, pid);
		auto done = c.dispatch_async();
		std::atomic<int> good{0}, bad{0};
		std::vector<std::thread> ts;
		for (int t = 0; t < 6; t++)
			ts.emplace_back([&, t] {
				for (int i = 0; i < 1000; i++) {
					// Sizes vary so that frames span several reads.
					std::string s = std::to_string(t) + ":" + std::to_string(i) + std::string(size_t(i * 37 % 5000), 'x');
					Message r = c.query(PING, bytes_of(s));
					(r.data == bytes_of(s) && r.type == PONG ? good : bad)++;
				}
			});
		for (auto &t : ts)
			t.join();
		CHECK(good.load() == 6000);
		CHECK(bad.load() == 0);
		c.close();
		done.get();
	}
	CHECK(reap(pid) == 0);
}

TEST_CASE("ipcmsg: a descriptor passed each way reads the same open file", "[ipcmsg]")
{
	test::TempDir d;
	test::write_file(d / "f", bytes_of("the content of f"));
	Pair p;
	pid_t pid = fork_peer(p);
	{
		Channel c("parent<->child", p.a, pid, Channel::Options{.pass_fds = true});
		auto done = c.dispatch_async();
		Fd f(::open((d / "f").c_str(), O_RDONLY | O_CLOEXEC));
		REQUIRE(f.fd >= 0);
		Message r = c.query(READ_FD, {}, f.fd);
		CHECK(r.data == bytes_of("the content of f"));
		// And back: the peer's pipe, read here.
		Message o = c.query(OPEN);
		REQUIRE(o.fd.fd >= 0);
		char buf[16] = {};
		CHECK(::read(o.fd.fd, buf, sizeof buf) == 5);
		CHECK(std::string(buf) == "piped");
		// A channel without descriptor passing refuses to send one.
		c.close();
		done.get();
	}
	CHECK(reap(pid) == 0);
	Pair q;
	Channel plain("plain", q.a, ::getpid());
	CHECK(test::code_of([&] { plain.message(PING, {}, 0); }) == Code::Invalid);
	::close(q.b);
}

TEST_CASE("ipcmsg: a peer dying in the middle of a query fails it, nothing hangs", "[ipcmsg]")
{
	Pair p;
	pid_t pid = fork_peer(p);
	Channel c("parent<->child", p.a, pid);
	auto done = c.dispatch_async();
	CHECK(c.query(PING, bytes_of("x")).data == bytes_of("x"));
	// Queries in flight from other threads when the peer dies fail too.
	std::atomic<int> failed{0};
	std::thread t([&] {
		try {
			c.query(DIE);
		} catch (const Error &e) {
			CHECK(std::string(e.what()).find("closed") != std::string::npos);
			failed++;
		}
	});
	t.join();
	CHECK(failed.load() == 1);
	done.get(); // the peer closed at a frame boundary: not an error
	CHECK(test::code_of([&] { c.query(PING); }) == Code::Error);
	CHECK(reap(pid) == 0);
}

TEST_CASE("ipcmsg: a query with a timeout gives up, and its late answer is dropped", "[ipcmsg]")
{
	Pair p;
	Channel c("a", p.a, ::getpid());
	Channel peer("b", p.b, ::getpid());
	std::promise<void> release;
	auto released = release.get_future().share();
	peer.handler(SLEEP, [&](Channel &ch, Message &m) {
		released.wait();
		ch.reply(m, PONG);
	});
	peer.handler(PING, [](Channel &ch, Message &m) { ch.reply(m, PONG, m.data); });
	// A query from the dispatch thread (a handler) would wait for itself: refused.
	std::atomic<int> refused{0};
	peer.handler(NOTE, [&](Channel &ch, Message &) {
		if (test::code_of([&] { ch.query(PING); }) == Code::Invalid)
			refused++;
	});
	auto pd = peer.dispatch_async();
	auto cd = c.dispatch_async();
	CHECK(test::code_of([&] { c.query(SLEEP, {}, -1, std::chrono::milliseconds(100)); }) == Code::Error);
	release.set_value();
	CHECK(c.query(PING, bytes_of("after")).data == bytes_of("after"));
	c.message(NOTE);
	c.query(PING);
	CHECK(refused.load() == 1);
	c.close();
	cd.get();
	pd.get();
}

TEST_CASE("ipcmsg: a descriptor no handler takes is closed", "[ipcmsg]")
{
	Pair p;
	Channel a("a", p.a, ::getpid(), Channel::Options{.pass_fds = true});
	Channel b("b", p.b, ::getpid(), Channel::Options{.pass_fds = true});
	std::atomic<int> seen{0};
	b.handler(NOTE, [&](Channel &, Message &m) {
		CHECK(m.fd.fd >= 0);
		seen++;
	});
	b.handler(PING, [](Channel &ch, Message &m) { ch.reply(m, PONG); });
	auto bd = b.dispatch_async();
	auto ad = a.dispatch_async();
	a.query(PING); // both hellos are through
	size_t before = open_fds();
	Fd f(::open("/dev/null", O_RDONLY | O_CLOEXEC));
	for (int i = 0; i < 50; i++)
		a.message(NOTE, {}, f.fd);
	a.query(PING); // every NOTE was handled before this answer
	CHECK(seen.load() == 50);
	CHECK(open_fds() == before + 1); // only f itself
	a.close();
	ad.get();
	bd.get();
}

namespace {
// A raw peer: writes bytes (and maybe a descriptor) on the socket, as a hostile process would.
struct RawPeer {
	int fd;
	void write_bytes(ByteView b, int pass = -1)
	{
		struct iovec iov = {const_cast<uint8_t *>(b.data()), b.size()};
		REQUIRE(send_with_fd(fd, &iov, 1, pass) == ssize_t(b.size()));
	}
	void frame(FrameHeader h, ByteView payload = {}, int pass = -1)
	{
		uint8_t head[kFrameHeader];
		encode_header(h, head);
		Bytes b(head, head + kFrameHeader);
		b.insert(b.end(), payload.begin(), payload.end());
		write_bytes(b, pass);
	}
	void hello(uint32_t version = kProtocolVersion)
	{
		Hello h;
		h.version = version;
		h.name = "raw";
		FrameHeader fh;
		fh.type = kTypeHello;
		Bytes body = encode_hello(h);
		fh.length = uint32_t(body.size());
		fh.pid = uint32_t(::getpid());
		frame(fh, body);
	}
};

// Runs a channel against what the raw peer sent, then closes the raw side: returns how
// dispatch ended (Code and message), with a query left pending while it ran.
std::pair<Code, std::string> run_against(const std::function<void(RawPeer &)> &send, bool pass_fds = false)
{
	Pair p;
	RawPeer raw{p.b};
	Channel c("victim", p.a, ::getpid(), Channel::Options{.max_payload = 4096, .pass_fds = pass_fds});
	c.handler(PING, [](Channel &, Message &) {});
	std::atomic<bool> query_failed{false};
	auto d = c.dispatch_async();
	std::thread q([&] {
		try {
			c.query(PING);
		} catch (const Error &) {
			query_failed = true;
		}
	});
	send(raw);
	::shutdown(raw.fd, SHUT_WR);
	std::pair<Code, std::string> out{Code::Error, "no error"};
	try {
		d.get();
		out = {Code(0), "ended cleanly"};
	} catch (const Error &e) {
		out = {e.code(), e.what()};
	}
	q.join();
	CHECK(query_failed.load());
	::close(raw.fd);
	return out;
}

FrameHeader ping_header()
{
	FrameHeader h;
	h.type = PING;
	h.pid = uint32_t(::getpid());
	return h;
}
} // namespace

TEST_CASE("ipcmsg: malformed frames close the channel with one clear error", "[ipcmsg]")
{
	size_t before = open_fds();
	auto expect = [](std::pair<Code, std::string> r, Code code, const std::string &needle) {
		INFO(r.second);
		CHECK(r.first == code);
		CHECK(r.second.find(needle) != std::string::npos);
	};
	expect(run_against([](RawPeer &r) { r.frame(ping_header()); }), Code::Corrupt, "did not start with a hello");
	expect(run_against([](RawPeer &r) { r.hello(2); }), Code::Version, "protocol version 2");
	// Headers that are wrong once the hello is through: what changes, and what is said.
	struct HeaderCase {
		std::function<void(FrameHeader &)> change;
		bool pass_fds;
		const char *says;
	};
	const HeaderCase cases[] = {
	    {[](FrameHeader &h) { h.length = 1 << 20; }, false, "above the limit of 4096"},
	    {[](FrameHeader &h) { h.flags = 0x40; }, false, "unknown flags"},
	    {[](FrameHeader &h) { h.flags = kFrameFd; }, true, "did not come"},
	    {[](FrameHeader &h) { h.pid = 1; }, false, "claims pid 1"},
	    {[](FrameHeader &h) { h.type = 99; }, false, "no handler for message type 99"},
	    {[](FrameHeader &h) { h.flags = kFrameReply, h.seq = 777; }, false, "reply to no query"},
	    {[](FrameHeader &h) { h.flags = kFrameQuery; }, false, "without a sequence number"},
	    {[](FrameHeader &h) { h.type = kTypeHello + 1; }, false, "reserved message type"},
	};
	for (const auto &c : cases)
		expect(run_against(
		           [&](RawPeer &r) {
			           r.hello();
			           auto h = ping_header();
			           c.change(h);
			           r.frame(h);
		           },
		           c.pass_fds),
		       Code::Corrupt, c.says);
	expect(run_against([](RawPeer &r) {
		       r.hello();
		       auto h = ping_header();
		       h.length = 100;
		       r.frame(h, Bytes(40, 'x')); // 60 bytes short, then the peer closes
	       }),
	       Code::Corrupt, "middle of a frame");
	expect(run_against([](RawPeer &r) {
		       r.hello();
		       r.write_bytes(Bytes(10, 0)); // a header cut short
	       }),
	       Code::Corrupt, "middle of a frame");
	expect(run_against([](RawPeer &r) {
		       r.hello();
		       Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
		       r.frame(ping_header(), {}, null.fd); // on a channel that passes none
	       }),
	       Code::Corrupt, "passes none");
	expect(run_against([](RawPeer &r) {
		       r.hello();
		       r.hello();
	       }),
	       Code::Corrupt, "second hello");
	// A peer that closes at a frame boundary ends the channel without an error.
	auto clean = run_against([](RawPeer &r) { r.hello(); });
	CHECK(int(clean.first) == 0);
	// No descriptor leaked through all of that.
	CHECK(open_fds() == before);
}

TEST_CASE("ipcmsg: the frame decoder takes any split of the stream", "[ipcmsg]")
{
	std::vector<Bytes> payloads = {{}, bytes_of("a"), Bytes(5000, 7), bytes_of("last")};
	Bytes stream;
	for (size_t i = 0; i < payloads.size(); i++) {
		FrameHeader h;
		h.type = uint32_t(i + 1);
		h.length = uint32_t(payloads[i].size());
		h.seq = uint32_t(i ? 0 : 0);
		uint8_t head[kFrameHeader];
		encode_header(h, head);
		stream.insert(stream.end(), head, head + kFrameHeader);
		stream.insert(stream.end(), payloads[i].begin(), payloads[i].end());
	}
	for (size_t step : {size_t(1), size_t(3), size_t(24), size_t(25), size_t(4096), stream.size()}) {
		FrameDecoder dec(1 << 20);
		std::vector<Frame> out;
		for (size_t i = 0; i < stream.size(); i += step)
			dec.feed(ByteView(stream).subspan(i, std::min(step, stream.size() - i)), out);
		REQUIRE(out.size() == payloads.size());
		for (size_t i = 0; i < out.size(); i++) {
			CHECK(out[i].h.type == i + 1);
			CHECK(out[i].payload == payloads[i]);
		}
		CHECK(!dec.mid_frame());
	}
}
