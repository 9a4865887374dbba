#include "net/privsep_server.h"

#include <dirent.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "net/asio.h"
#include "net/gate.h"
#include "net/request_store.h"
#include "net/sandbox.h"
#include "net/tls.h"
#include "privsep/daemon.h"

namespace plakar::net {

namespace asio = boost::asio;

namespace {

using privsep::Channel;
using privsep::Daemon;
using privsep::Message;

// net -> store: queries answered by kStoreOk or kStoreFail, and one message. The store process
// holds the gate (net/gate.h): sessions, tokens, rights. net holds no secret.
//   kStoreCall     [u64 session][u8 type][request body]   -> the Ok body
//   kOpenSession   [client nonce]                         -> [u64 session][server nonce]
//   kAuthSession   [u64 session][auth message]            -> [welcome message][session secret:32]
//   kCloseSession  [u64 session]                          (a message, no answer)
//   kReadRange     [u64 session][get-range request body]  -> the bytes, in a memfd past kInline
//                  (read by the store straight into the memfd, by net straight out of it)
constexpr uint32_t kStoreCall = 1, kStoreOk = 2, kStoreFail = 3, kOpenSession = 4, kAuthSession = 5,
                   kCloseSession = 6, kReadRange = 7;
// Payloads above this travel in a memfd passed with the message (objects may exceed the
// channel's payload limit).
constexpr size_t kInline = 256 * 1024;

struct Payload {
	Bytes data;
	Fd fd{-1};
};

// A body as a message payload: [0] + body inline, or [1] and the body in a memfd.
Payload wrap(ByteView body)
{
	Payload p;
	if (body.size() <= kInline) {
		p.data.reserve(body.size() + 1);
		p.data.push_back(0);
		p.data.insert(p.data.end(), body.begin(), body.end());
		return p;
	}
	p.fd = Fd(::memfd_create("plakar-object", MFD_CLOEXEC));
	if (p.fd.fd < 0)
		fail_errno("memfd_create", errno);
	size_t at = 0;
	while (at < body.size()) {
		ssize_t n = ::write(p.fd.fd, body.data() + at, body.size() - at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail_errno("memfd write", errno);
		at += size_t(n);
	}
	p.data.push_back(1);
	return p;
}

// The size of a received payload's body, inline or in the memfd that came with it (checked).
size_t body_size(const Message &m)
{
	if (m.data.empty() || m.data[0] > 1 || (m.data[0] == 1) != (m.fd.fd >= 0) || (m.data[0] == 1 && m.data.size() != 1))
		fail(Code::Corrupt, "privsep: malformed store message");
	if (m.data[0] == 0)
		return m.data.size() - 1;
	struct stat st;
	if (::fstat(m.fd.fd, &st) != 0)
		fail_errno("privsep: fstat", errno);
	if (uint64_t(st.st_size) > kMaxMessage + 1024)
		fail(Code::Corrupt, "privsep: object over the message limit");
	return size_t(st.st_size);
}

// Copies the body (body_size(m) bytes) into dst: straight out of the memfd when there is one.
void copy_body(const Message &m, uint8_t *dst, size_t n)
{
	if (m.fd.fd < 0) {
		if (n) // an empty body may come with no buffer at all: memcpy of a null pointer is undefined
			std::memcpy(dst, m.data.data() + 1, n);
		return;
	}
	for (size_t at = 0; at < n;) {
		ssize_t k = ::pread(m.fd.fd, dst + at, n - at, off_t(at));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			fail(Code::Corrupt, "privsep: short object");
		at += size_t(k);
	}
}

// The body of a received payload.
Bytes unwrap(Message &m)
{
	Bytes out(body_size(m));
	copy_body(m, out.data(), out.size());
	return out;
}

// The gate as the net process sees it: every call is a query to the store process.
class IpcBackend : public Backend {
public:
	explicit IpcBackend(Daemon &d) : d_(d) {}

	Opened open_session(ByteView client_nonce) override
	{
		Bytes a = ask(kOpenSession, client_nonce);
		Reader r(a, "session");
		Opened o;
		o.session = r.u64();
		ByteView nonce = r.raw(kNonce);
		r.expect_done();
		o.server_nonce = Bytes(nonce.begin(), nonce.end());
		return o;
	}
	Welcomed authenticate(uint64_t session, const AuthMsg &auth) override
	{
		Writer w;
		w.u64(session);
		Bytes m = encode(auth);
		w.buf().insert(w.buf().end(), m.begin(), m.end());
		Bytes a = ask(kAuthSession, w.buf());
		if (a.size() < 32)
			fail(Code::Corrupt, "privsep: malformed welcome");
		Welcomed out{decode_welcome(ByteView(a).first(a.size() - 32)), crypto::SecureBytes(ByteView(a).last(32))};
		crypto::wipe(a.data(), a.size());
		return out;
	}
	void close_session(uint64_t session) override
	{
		Writer w;
		w.u64(session);
		Payload p = wrap(w.buf());
		d_.process("store").message(kCloseSession, p.data);
	}
	Bytes call(uint64_t session, Type type, ByteView body) override
	{
		Writer w;
		w.u64(session);
		w.u8(uint8_t(type));
		w.buf().insert(w.buf().end(), body.begin(), body.end());
		return ask(kStoreCall, w.buf());
	}
	void read_range(uint64_t session, Kind kind, const std::string &name, uint64_t offset, uint64_t n,
	                uint8_t *dst) override
	{
		Writer w;
		w.u64(session);
		Bytes range = encode_range(kind, name, offset, n);
		w.buf().insert(w.buf().end(), range.begin(), range.end());
		Payload p = wrap(w.buf());
		Message r = d_.process("store").query(kReadRange, p.data, p.fd.fd);
		if (r.type == kStoreFail)
			throw_fail(unwrap(r), "");
		if (r.type != kStoreOk)
			fail(Code::Corrupt, "privsep: unexpected answer from the store process");
		size_t got = body_size(r);
		if (got != n)
			fail(Code::Corrupt, std::string(kind_name(kind)) + " " + name + ": " + std::to_string(got) +
			                        " bytes came of " + std::to_string(n));
		copy_body(r, dst, got);
	}

private:
	Bytes ask(uint32_t type, ByteView body)
	{
		Payload p = wrap(body);
		Message r = d_.process("store").query(type, p.data, p.fd.fd);
		Bytes answer = unwrap(r);
		if (r.type == kStoreOk)
			return answer;
		if (r.type != kStoreFail)
			fail(Code::Corrupt, "privsep: unexpected answer from the store process");
		throw_fail(answer, "");
	}
	Daemon &d_;
};

// In the store process: a range read straight into the answer (a memfd past kInline).
Payload read_range_answer(Gate &gate, ByteView body)
{
	Reader r(body, "store call");
	uint64_t session = r.u64();
	Request q = decode_request(Type::GetRange, r.raw(r.remaining()));
	if (q.length > kMaxMessage)
		fail(Code::Corrupt, "privsep: a range over the message limit");
	Payload p;
	if (q.length <= kInline) {
		p.data.resize(1 + q.length);
		p.data[0] = 0;
		gate.read_range(session, q.kind, q.name, q.offset, q.length, p.data.data() + 1);
		return p;
	}
	p.fd = Fd(::memfd_create("plakar-object", MFD_CLOEXEC));
	if (p.fd.fd < 0)
		fail_errno("memfd_create", errno);
	if (::ftruncate(p.fd.fd, off_t(q.length)) != 0)
		fail_errno("memfd ftruncate", errno);
	void *map = ::mmap(nullptr, q.length, PROT_READ | PROT_WRITE, MAP_SHARED, p.fd.fd, 0);
	if (map == MAP_FAILED)
		fail_errno("memfd mmap", errno);
	try {
		gate.read_range(session, q.kind, q.name, q.offset, q.length, static_cast<uint8_t *>(map));
	} catch (...) {
		::munmap(map, q.length);
		throw;
	}
	::munmap(map, q.length);
	p.data.push_back(1);
	return p;
}

// In the store process: one query from net, through the gate.
Bytes run_query(Gate &gate, uint32_t type, ByteView body)
{
	Reader r(body, "store call");
	switch (type) {
	case kOpenSession: {
		auto o = gate.open_session(body);
		Writer w;
		w.u64(o.session);
		w.buf().insert(w.buf().end(), o.server_nonce.begin(), o.server_nonce.end());
		return w.take();
	}
	case kAuthSession: {
		uint64_t session = r.u64();
		auto w = gate.authenticate(session, decode_auth(r.raw(r.remaining())));
		Bytes out = encode(w.welcome);
		out.insert(out.end(), w.secret.data(), w.secret.data() + w.secret.size());
		return out;
	}
	case kStoreCall: {
		uint64_t session = r.u64();
		Type t = Type(r.u8());
		return gate.call(session, t, r.raw(r.remaining()));
	}
	default: fail(Code::Corrupt, "privsep: unknown store query");
	}
}

std::optional<struct passwd> user_named(const char *name)
{
	struct passwd *pw = ::getpwnam(name);
	if (!pw)
		return std::nullopt;
	return *pw;
}

void unblock_signals()
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_UNBLOCK, &all, nullptr);
}

} // namespace

// The empty chroot directories of servers that died without removing theirs (kill -9):
// /tmp/plakar-server-PID-XXXXXX, empty, owned by root, whose PID no longer runs.
static void remove_stale_chroots()
{
	DIR *d = ::opendir("/tmp");
	if (!d)
		return;
	std::vector<std::string> stale;
	while (struct dirent *de = ::readdir(d)) {
		std::string n = de->d_name;
		const std::string prefix = "plakar-server-";
		if (n.rfind(prefix, 0) != 0)
			continue;
		char *end = nullptr;
		long pid = std::strtol(n.c_str() + prefix.size(), &end, 10);
		if (pid <= 0 || !end || *end != '-' || ::kill(pid_t(pid), 0) == 0 || errno != ESRCH)
			continue;
		struct stat st;
		std::string p = "/tmp/" + n;
		if (::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0)
			stale.push_back(p);
	}
	::closedir(d);
	for (const auto &p : stale)
		::rmdir(p.c_str()); // only when empty
}

struct PrivsepServer::Impl {
	std::string store_uri;
	ServerOptions opts;
	int listen_fd = -1;
	std::string address;
	std::string pin; // of the TLS certificate
	Layout layout;
	std::string empty_dir; // made for net's chroot, removed at the end
	std::string store_inside; // the store's URI inside its chroot
	int stop_pipe[2] = {-1, -1};
	std::atomic<bool> ran{false};
	// Here, not in ~PrivsepServer: a constructor that throws half-way still closes the socket
	// it bound and removes the directory it made.
	~Impl()
	{
		if (listen_fd >= 0)
			::close(listen_fd);
		for (int fd : stop_pipe)
			if (fd >= 0)
				::close(fd);
		if (!empty_dir.empty())
			::rmdir(empty_dir.c_str());
	}
};

PrivsepServer::PrivsepServer(std::string store_uri, ServerOptions opts) : impl_(std::make_unique<Impl>())
{
	if (opts.tokens.empty())
		fail(Code::Invalid, "server: no token; a server never runs open");
	// The TLS identity is checked here, in the calling process, which also initializes OpenSSL
	// (its configuration is read now, not in net's empty chroot).
	if (opts.tls) {
		server_tls_context(*opts.tls);
		impl_->pin = net::tls_pin(*opts.tls);
	}
	auto &m = *impl_;
	m.store_uri = std::move(store_uri);
	// The listening socket, bound here (still privileged) and inherited by net.
	auto [host, port_number] = parse_listen(opts.listen);
	std::string port = std::to_string(port_number);
	addrinfo hints{}, *res = nullptr;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
		fail(Code::Invalid, "server: cannot resolve '" + host + "': " + gai_strerror(rc));
	int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	bool ok = fd >= 0 && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
	          ::bind(fd, res->ai_addr, res->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0;
	int err = errno;
	::freeaddrinfo(res);
	if (!ok) {
		if (fd >= 0)
			::close(fd);
		fail(Code::Error, "server: cannot listen on " + opts.listen + ": " + std::strerror(err));
	}
	m.listen_fd = fd;
	sockaddr_storage ss{};
	socklen_t len = sizeof ss;
	::getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len);
	char buf[INET6_ADDRSTRLEN] = "";
	if (ss.ss_family == AF_INET6) {
		auto *a = reinterpret_cast<sockaddr_in6 *>(&ss);
		::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
		m.address = "[" + std::string(buf) + "]:" + std::to_string(ntohs(a->sin6_port));
	} else {
		auto *a = reinterpret_cast<sockaddr_in *>(&ss);
		::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
		m.address = std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
	}
	opts.listen_fd = fd;
	m.opts = std::move(opts);
	if (::pipe2(m.stop_pipe, O_CLOEXEC) != 0)
		fail_errno("pipe", errno);

	// Where each process will run.
	m.layout.privileged = ::geteuid() == 0;
	m.store_inside = m.store_uri;
	if (!m.layout.privileged)
		return;
	for (const char *u : {"_plakar", "nobody"})
		if (user_named(u)) {
			m.layout.net_user = u;
			break;
		}
	if (m.layout.net_user.empty())
		fail(Code::Invalid, "server: started as root, but neither _plakar nor nobody exists to run the network");
	std::string path;
	if (m.store_uri.rfind("fs://", 0) == 0)
		path = m.store_uri.substr(5);
	else if (m.store_uri[0] == '/')
		path = m.store_uri;
	std::string dir;
	if (!path.empty()) {
		dir = path;
		m.store_inside = "/";
	} else if (m.store_uri.rfind("sqlite://", 0) == 0) {
		std::filesystem::path db(m.store_uri.substr(9));
		dir = db.parent_path().string();
		m.store_inside = "sqlite:///" + db.filename().string();
	}
	if (!dir.empty()) {
		std::error_code ec;
		std::filesystem::create_directories(dir, ec); // a client may create the repository
		m.layout.store_root = dir;
		struct stat st;
		if (::stat(dir.c_str(), &st) == 0 && st.st_uid != 0)
			if (struct passwd *pw = ::getpwuid(st.st_uid))
				m.layout.store_user = pw->pw_name;
	}
	m.layout.net_root = "/var/empty";
	struct stat st;
	bool usable = ::stat("/var/empty", &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0 && !(st.st_mode & 022);
	if (usable)
		usable = std::filesystem::is_empty("/var/empty");
	remove_stale_chroots();
	if (!usable) {
		std::string tmpl = "/tmp/plakar-server-" + std::to_string(::getpid()) + "-XXXXXX";
		if (!::mkdtemp(tmpl.data()))
			fail_errno("server: mkdtemp", errno);
		::chmod(tmpl.c_str(), 0755);
		m.empty_dir = m.layout.net_root = tmpl;
	}
}

std::string PrivsepServer::tls_pin() const { return impl_->pin; }

PrivsepServer::~PrivsepServer() = default;

std::string PrivsepServer::address() const { return impl_->address; }

PrivsepServer::Layout PrivsepServer::layout() const { return impl_->layout; }

void PrivsepServer::stop()
{
	char c = 1;
	while (::write(impl_->stop_pipe[1], &c, 1) < 0 && errno == EINTR) {
	}
}

void PrivsepServer::run()
{
	auto &m = *impl_;
	if (m.ran.exchange(true))
		fail(Code::Invalid, "this server already ran");
	Daemon d;
	int stop_read = m.stop_pipe[0];

	std::thread watch;
	d.parent("parent", [&, stop_read](Daemon &dm) {
		// Wakes on stop(), or when the daemon stops because a child died.
		watch = std::thread([&dm, &m] {
			dm.serve();
			char c = 0;
			while (::write(m.stop_pipe[1], &c, 1) < 0 && errno == EINTR) {
			}
		});
		char c;
		while (::read(stop_read, &c, 1) < 0 && errno == EINTR) {
		}
		return 0;
	});

	// The store process.
	std::unique_ptr<Store> store;
	std::unique_ptr<Gate> gate;
	std::unique_ptr<asio::thread_pool> pool;
	auto &sp = d.child("store").talks_to({"net"});
	if (m.layout.privileged && !m.layout.store_root.empty())
		sp.chroot(m.layout.store_root);
	if (m.layout.privileged && !m.layout.store_user.empty())
		sp.user(m.layout.store_user);
	sp.pre_chroot([&] {
		unblock_signals();
		::close(m.listen_fd);
	});
	sp.pre_start([&] {
		store = open_store(m.store_inside);
		gate = std::make_unique<Gate>(*store, m.opts.tokens);
		pool = std::make_unique<asio::thread_pool>(std::max(1u, m.opts.workers));
	});
	auto query = [&](Channel &ch, Message &msg) {
		auto held = std::make_shared<Message>(std::move(msg));
		asio::post(*pool, [&ch, &gate, held] {
			Payload p;
			uint32_t type = kStoreOk;
			try {
				Bytes body = unwrap(*held);
				if (held->type == kReadRange)
					p = read_range_answer(*gate, body);
				else
					p = wrap(run_query(*gate, held->type, body));
			} catch (const Error &e) {
				type = kStoreFail;
				p = wrap(encode_fail(e.code(), e.what()));
			} catch (const std::exception &e) {
				type = kStoreFail;
				p = wrap(encode_fail(Code::Error, e.what()));
			}
			try {
				ch.reply(*held, type, p.data, p.fd.fd);
			} catch (const Error &) {
				// The channel closed: the daemon is stopping.
			}
		});
	};
	for (uint32_t type : {kStoreCall, kOpenSession, kAuthSession, kReadRange})
		sp.handler("net", type, query);
	sp.handler("net", kCloseSession, [&](Channel &, Message &msg) {
		Bytes body = unwrap(msg);
		Reader r(body, "session");
		uint64_t session = r.u64();
		r.expect_done();
		gate->close_session(session);
	});

	// The network process.
	std::unique_ptr<Server> server;
	auto &np = d.child("net", [&](Daemon &dm) {
		std::thread parent_gone([&] {
			dm.serve();
			server->stop();
		});
		server->run();
		parent_gone.detach();
		return 0;
	});
	np.talks_to({"store"});
	if (m.layout.privileged)
		np.user(m.layout.net_user).chroot(m.layout.net_root);
	np.pre_chroot([&] { unblock_signals(); });
	np.pre_start([&] {
		// net holds no secret: the tokens stay with the gate in the store process. Its copy,
		// inherited through fork, is wiped (SecureBytes) before anything reads the network.
		m.opts.tokens.clear();
		m.opts.tokens.shrink_to_fit();
		ServerOptions o = m.opts;
		server = std::make_unique<Server>(std::make_unique<IpcBackend>(d), std::move(o));
		// From here on: accept, read, write, poll, memory, threads; nothing else.
		sandbox_network_process();
	});
	// serve() returns once the daemon stops, which start() does before it returns or throws.
	struct Join {
		std::thread &t;
		~Join()
		{
			if (t.joinable())
				t.join();
		}
	} join{watch};
	d.start();
}

} // namespace plakar::net
