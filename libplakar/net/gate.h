// The authority over a served store (docs/protocol.md, "Tokens" and "Privilege separation").
//
// The gate holds the tokens, checks each client's proof, and runs a client's requests only as
// far as its token's rights allow. The network side (net/server.cc) speaks to clients and asks
// the gate through the Backend interface; it holds no secret and decides nothing. Without
// privilege separation the gate runs in the server's process; with it, in the store process
// (net/privsep_server.cc), so that a compromised network process can do no more than the
// clients that authenticate through it while it runs.
//
// A session is one client connection: opened by its hello (the gate draws the server's nonce,
// so a proof recorded earlier never matches again), bound to a token by its auth, closed with
// the connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "net/protocol.h"
#include "net/tokens.h"
#include "storage/store.h"

namespace plakar::net {

// What the network side asks of the gate. Every call may come from any thread.
class Backend {
public:
	virtual ~Backend() = default;
	struct Opened {
		uint64_t session = 0;
		Bytes server_nonce;
	};
	// A new session for a client's hello (its nonce): the id and the nonce of the challenge.
	virtual Opened open_session(ByteView client_nonce) = 0;
	// What an auth that succeeds gives the network side: the welcome to send (rights and the
	// server's proof) and the session secret its frame keys derive from (protocol.h), which
	// only the token's secret could give.
	struct Welcomed {
		WelcomeMsg welcome;
		crypto::SecureBytes secret;
	};
	// The client's auth on a session: the session is bound to the token. Code::Auth,
	// "authentication failed", when the proof is wrong or the token unknown; the session is
	// closed then.
	virtual Welcomed authenticate(uint64_t session, const AuthMsg &auth) = 0;
	virtual void close_session(uint64_t session) = 0;
	// Runs a request (its type and body, as on the wire) for an authenticated session and
	// returns the body of its Ok answer. Code::Auth when the session is not authenticated or
	// the token's rights refuse the request; what the store throws otherwise.
	virtual Bytes call(uint64_t session, Type type, ByteView body) = 0;
	// n bytes of an object at offset into dst, for an authenticated session (what a get or a
	// get-range streams, piece by piece).
	virtual void read_range(uint64_t session, Kind kind, const std::string &name, uint64_t offset, uint64_t n,
	                        uint8_t *dst) = 0;
};

class Gate : public Backend {
public:
	// Code::Invalid without a token: a server never runs open.
	Gate(Store &store, std::vector<Token> tokens);

	Opened open_session(ByteView client_nonce) override;
	Welcomed authenticate(uint64_t session, const AuthMsg &auth) override;
	void close_session(uint64_t session) override;
	Bytes call(uint64_t session, Type type, ByteView body) override;
	void read_range(uint64_t session, Kind kind, const std::string &name, uint64_t offset, uint64_t n,
	                uint8_t *dst) override;

	// Sessions open now (authenticated or not).
	size_t sessions() const;
	// Sessions that never authenticate are dropped, oldest first, past this many.
	static constexpr size_t kMaxPending = 4096;

private:
	struct Session {
		Bytes server_nonce, client_nonce;
		const Token *token = nullptr; // once authenticated
	};
	const Token &token_of(uint64_t session) const;
	void check_rights(const Token &t, const Request &q);
	void put(const Token &t, const Request &q);
	bool owns_lock(const Token &t, const std::string &name) const;

	Store &store_;
	const std::vector<Token> tokens_;
	mutable std::mutex mu_;
	std::map<uint64_t, Session> sessions_;
	std::set<uint64_t> pending_; // not authenticated yet
	uint64_t next_ = 1;
	// Lock objects each token put and has not removed: a token without full rights may
	// replace or remove only its own, and holds at most kMaxLocksPerToken.
	std::map<std::string, std::set<std::string>> locks_of_;
	// Removes what killed writes left in the store (Store::remove_stale_temporaries): at the
	// first put, then at most once per kTempFileAge.
	void sweep_temporaries();
	std::optional<std::chrono::steady_clock::time_point> swept_;
	static constexpr size_t kMaxLocksPerToken = 256;
};

} // namespace plakar::net
