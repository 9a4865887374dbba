#include "net/gate.h"

#include "crypto/crypto.h"
#include "net/request_store.h"
#include "storage/object_kind.h"

namespace plakar::net {

Gate::Gate(Store &store, std::vector<Token> tokens) : store_(store), tokens_(std::move(tokens))
{
	if (tokens_.empty())
		fail(Code::Invalid, "server: no token; a server never runs open");
}

Backend::Opened Gate::open_session(ByteView client_nonce)
{
	if (client_nonce.size() != kNonce)
		fail(Code::Corrupt, "protocol: a hello nonce of " + std::to_string(client_nonce.size()) + " bytes");
	Opened o;
	o.server_nonce = crypto::random_bytes(kNonce);
	std::lock_guard lk(mu_);
	while (pending_.size() >= kMaxPending) {
		sessions_.erase(*pending_.begin());
		pending_.erase(pending_.begin());
	}
	o.session = next_++;
	Session &s = sessions_[o.session];
	s.server_nonce = o.server_nonce;
	s.client_nonce = Bytes(client_nonce.begin(), client_nonce.end());
	pending_.insert(o.session);
	return o;
}

Backend::Welcomed Gate::authenticate(uint64_t session, const AuthMsg &a)
{
	Bytes server_nonce, client_nonce;
	{
		std::lock_guard lk(mu_);
		auto it = sessions_.find(session);
		// Once only per session: a session that authenticated (or failed to) takes no other auth.
		if (it == sessions_.end() || !pending_.count(session))
			fail(Code::Auth, "authentication failed");
		server_nonce = it->second.server_nonce;
		client_nonce = it->second.client_nonce;
		pending_.erase(session);
	}
	const Token *t = nullptr;
	for (const auto &k : tokens_)
		if (k.name == a.token_name)
			t = &k;
	// The same work whether the name exists or not.
	static const crypto::SecureBytes dummy(ByteView(Bytes(32, 0)));
	Bytes want = client_proof(t ? t->secret.view() : dummy.view(), server_nonce, client_nonce, a.token_name);
	if (!t || !crypto::equal(want, a.proof)) {
		std::lock_guard lk(mu_);
		sessions_.erase(session);
		fail(Code::Auth, "authentication failed");
	}
	std::lock_guard lk(mu_);
	auto it = sessions_.find(session);
	if (it == sessions_.end())
		fail(Code::Auth, "authentication failed"); // closed meanwhile
	it->second.token = t;
	return Welcomed{WelcomeMsg{t->rights, server_proof(t->secret.view(), server_nonce, client_nonce, t->name)},
	                session_secret(t->secret.view(), server_nonce, client_nonce, t->name)};
}

void Gate::close_session(uint64_t session)
{
	std::lock_guard lk(mu_);
	sessions_.erase(session);
	pending_.erase(session);
}

size_t Gate::sessions() const
{
	std::lock_guard lk(mu_);
	return sessions_.size();
}

const Token &Gate::token_of(uint64_t session) const
{
	std::lock_guard lk(mu_);
	auto it = sessions_.find(session);
	if (it == sessions_.end() || !it->second.token)
		fail(Code::Auth, "no authenticated session " + std::to_string(session));
	return *it->second.token;
}

void Gate::sweep_temporaries()
{
	auto now = std::chrono::steady_clock::now();
	{
		std::lock_guard lk(mu_);
		if (swept_ && now - *swept_ < kTempFileAge)
			return;
		swept_ = now;
	}
	try {
		store_.remove_stale_temporaries(kTempFileAge);
	} catch (const Error &) {
		// The next sweep tries again; a stray file wastes space, nothing else.
	}
}

bool Gate::owns_lock(const Token &t, const std::string &name) const
{
	std::lock_guard lk(mu_);
	auto it = locks_of_.find(t.name);
	return it != locks_of_.end() && it->second.count(name) > 0;
}

void Gate::check_rights(const Token &t, const Request &q)
{
	Rights r = t.rights;
	if (r == Rights::ReadWrite)
		return;
	auto refuse = [&](const std::string &what) {
		fail(Code::Auth, "token '" + t.name + "' is " + (r == Rights::ReadOnly ? "read-only" : "append-only") + ": " +
		                     what + " refused");
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
		// A reader's lock (repository/lock.h) is the one thing a read-only token writes.
		if (r == Rights::ReadOnly && q.kind != Kind::Lock)
			refuse("put");
		// Packs, index segments, snapshot headers and its own locks: a key file would let
		// whoever wrote it add a passphrase of its own to every later open.
		if (q.kind == Kind::Key)
			refuse(std::string("put of key ") + q.name);
		return; // what exists is checked in put()
	case Type::Remove:
		if (q.kind != Kind::Lock || !owns_lock(t, q.name))
			refuse(std::string("remove of ") + kind_name(q.kind) + " " + q.name);
		return;
	default: refuse(type_name(q.type)); return;
	}
}

void Gate::put(const Token &t, const Request &q)
{
	if (t.rights != Rights::ReadWrite && q.kind == Kind::Lock) {
		// Locks only: a gc plan (the same namespace) names packs for a later gc to delete, and
		// only a token that may delete writes one. The kind byte is authenticated by the
		// object's seal, so a plan cannot pass for a lock.
		if (sealed_kind(q.data) != uint8_t(ObjectKind::Lock))
			fail(Code::Auth, "token '" + t.name + "' is " + (t.rights == Rights::ReadOnly ? "read-only" : "append-only") +
			                     ": put of " + q.name + " refused (only locks go in the lock namespace)");
		std::lock_guard lk(mu_);
		auto it = locks_of_.find(t.name);
		if (it != locks_of_.end() && it->second.size() >= kMaxLocksPerToken && !it->second.count(q.name))
			fail(Code::Auth, "token '" + t.name + "' holds " + std::to_string(kMaxLocksPerToken) +
			                     " locks already: put of lock " + q.name + " refused");
	}
	// A merged index segment supersedes others (loaders skip them, gc deletes them): as good
	// as removing them, so only a token that may remove writes one. Sealed kinds are
	// authenticated, so a merged segment cannot pass for a plain one.
	if (t.rights != Rights::ReadWrite && q.kind == Kind::Index && sealed_kind(q.data) != uint8_t(ObjectKind::IndexSegment))
		fail(Code::Auth, "token '" + t.name + "' is " + (t.rights == Rights::ReadOnly ? "read-only" : "append-only") +
		                     ": put of index segment " + q.name + " refused (a merged segment supersedes others)");
	if (t.rights != Rights::ReadWrite) {
		bool exists = true;
		try {
			store_.size(q.kind, q.name);
		} catch (const Error &e) {
			if (!e.is_not_found())
				throw;
			exists = false;
		}
		if (exists) {
			// Its own lock (refreshed), or the very same bytes again (a retried put).
			bool own = q.kind == Kind::Lock && owns_lock(t, q.name);
			if (!own && store_.get(q.kind, q.name) != Bytes(q.data.begin(), q.data.end()))
				fail(Code::Auth, "token '" + t.name + "' is " +
				                     (t.rights == Rights::ReadOnly ? "read-only" : "append-only") + ": " +
				                     kind_name(q.kind) + " " + q.name + " exists and would be replaced");
			if (!own)
				return;
		}
	}
	store_.put(q.kind, q.name, q.data);
	sweep_temporaries();
	if (q.kind == Kind::Lock) {
		std::lock_guard lk(mu_);
		locks_of_[t.name].insert(q.name);
	}
}

Bytes Gate::call(uint64_t session, Type type, ByteView body)
{
	const Token &t = token_of(session);
	Request q = decode_request(type, body);
	check_rights(t, q);
	if (q.type == Type::Put) {
		put(t, q);
		return {};
	}
	Bytes answer = run_request(store_, q);
	if (q.type == Type::Remove && q.kind == Kind::Lock) {
		std::lock_guard lk(mu_);
		locks_of_[t.name].erase(q.name);
	}
	return answer;
}

void Gate::read_range(uint64_t session, Kind kind, const std::string &name, uint64_t offset, uint64_t n, uint8_t *dst)
{
	token_of(session); // every token may read
	if (!valid_object_name(name))
		fail(Code::Corrupt, "protocol: invalid object name");
	store_.read_range(kind, name, offset, n, dst);
}

} // namespace plakar::net
