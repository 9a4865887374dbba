// `plakar server`: serves one Store to plakar:// clients (docs/protocol.md).
//
// The server carries opaque objects: it never holds a repository key and never sees plaintext.
// Every connection proves a token (challenge-response) before its first request; what the
// token's rights allow is checked on every request, by the gate (net/gate.h), which holds the
// tokens. Limits (connections, requests in flight, frame and message sizes, buffered bytes)
// and timeouts (handshake, idle, stalled writes) keep a slow or hostile client from
// exhausting it.
//
// With a TLS identity, connections are TLS 1.3 and the token handshake runs inside.
//
// Threads: one thread runs the network (Boost.Asio); store calls run on a pool of workers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/tokens.h"
#include "storage/store.h"

namespace plakar::net {

struct TlsIdentity; // net/tls.h
class Backend;      // net/gate.h

struct ServerOptions {
	std::string listen = "127.0.0.1:9876"; // HOST:PORT; port 0 picks a free one (see port())
	int listen_fd = -1; // a listening socket to serve instead of binding listen (it is adopted)
	std::vector<Token> tokens;
	// With an identity, every connection is TLS 1.3 (net/tls.h); a client speaking in the
	// clear gets one failure saying so.
	std::shared_ptr<const TlsIdentity> tls;
	unsigned workers = 4;                 // threads calling the store
	uint32_t frame_limit = kDefaultFrame; // announced to clients
	uint32_t max_in_flight = 32;          // requests per connection; more are not read yet
	unsigned max_connections = 64;        // more are closed at once
	// Request bytes held by the whole server. Past it, only the connections holding more than
	// their share (max_buffered / connections) stop being read; the others go on, so one client
	// that never finishes a put stops nobody else (the server may then hold up to about twice
	// this).
	uint64_t max_buffered = 512ull << 20;
	// Request bytes one connection may hold: one message of the largest size, and some more.
	uint64_t max_connection_buffered = kMaxMessage + (64ull << 20);
	uint64_t max_message = kMaxMessage;   // one request with its object
	std::chrono::milliseconds handshake_timeout{10000};
	std::chrono::milliseconds idle_timeout{300000}; // no request in flight, nothing received
	std::chrono::milliseconds write_timeout{60000}; // a client that stops reading
	// A frame begun must be complete within this (a slow drip of bytes does not keep a
	// connection: the deadline is for the whole frame, not for each byte).
	std::chrono::milliseconds frame_timeout{30000};
	// Connections still in their handshake, at most (of max_connections). When they are that
	// many, a new connection takes the place of a random one that sent no hello within 50 ms
	// or left the challenge unanswered for a second (else it is refused): a flood of
	// connections that never authenticate cannot keep a real client out, and neither an
	// authenticated connection nor a progressing handshake is ever dropped for it.
	unsigned max_handshakes = 48;
	// One line per event worth a log (a connection refused, a failed authentication).
	std::function<void(const std::string &)> log;
};

struct ServerStats {
	uint64_t connections = 0;     // accepted since start
	uint64_t active = 0;          // open now
	uint64_t auth_failures = 0;   // handshakes refused
	uint64_t protocol_errors = 0; // connections closed for a malformed frame or message
	uint64_t requests = 0;        // answered
	uint64_t refused = 0;         // connections over max_connections
	uint64_t dropped = 0;         // handshakes dropped to make room for new connections
};

class Server {
public:
	// Binds the listening socket (throws Code::Error when it cannot: the address in use, ...).
	// Serves store through a gate (net/gate.h) over opts.tokens; no token is Code::Invalid:
	// the server never runs open.
	Server(std::unique_ptr<Store> store, ServerOptions opts);
	// Serves what a gate elsewhere allows (the network process of a privilege-separated
	// server: the gate runs in the store process). opts.tokens are not used.
	Server(std::unique_ptr<Backend> backend, ServerOptions opts);
	~Server();
	Server(const Server &) = delete;
	Server &operator=(const Server &) = delete;

	// The port listened on (the one picked when the options said 0).
	uint16_t port() const;
	std::string address() const;
	// The pin of the TLS certificate clients check ("sha256:..."); "" without TLS.
	std::string tls_pin() const;
	// Serves until stop(); open connections are closed then.
	void run();
	// May be called from any thread, and from a signal-handling thread.
	void stop();
	ServerStats stats() const;

	struct Impl; // server.cc's

private:
	void init(std::unique_ptr<Backend> backend, ServerOptions opts);
	std::shared_ptr<Impl> impl_;
};

} // namespace plakar::net
