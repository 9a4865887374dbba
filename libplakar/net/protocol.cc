#include "net/protocol.h"

#include <algorithm>
#include <cstring>

#include "crypto/crypto.h"

namespace plakar::net {

namespace {

[[noreturn]] void bad(const std::string &why) { fail(Code::Corrupt, "protocol: " + why); }

bool known_type(uint8_t t)
{
	return (t >= 1 && t <= 4) || t == 8 || t == 9 || (t >= 16 && t <= 24);
}

bool handshake(Type t) { return uint8_t(t) <= uint8_t(Type::Welcome); }

void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = uint8_t(v >> (8 * i));
}

uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= uint64_t(p[i]) << (8 * i);
	return v;
}

Kind decode_kind(uint8_t k)
{
	if (k > uint8_t(Kind::Lock))
		bad("unknown object kind " + std::to_string(k));
	return Kind(k);
}

std::string decode_name(Reader &r)
{
	std::string name = r.str();
	if (!valid_object_name(name))
		bad("malformed object name");
	return name;
}

void magic_and_version(Reader &r, uint16_t &version)
{
	uint8_t m[4];
	r.raw(m, 4);
	if (std::memcmp(m, kMagic, 4) != 0)
		bad("not a plakar server or client (bad magic)");
	version = uint16_t(r.u8() | (uint16_t(r.u8()) << 8));
}

// What hello and challenge begin with.
void magic_and_version(Writer &w, uint16_t version)
{
	w.raw(kMagic, 4);
	w.u8(uint8_t(version));
	w.u8(uint8_t(version >> 8));
}

Bytes nonce_of(Reader &r)
{
	ByteView n = r.raw(kNonce);
	return Bytes(n.begin(), n.end());
}

// [direction:u8][0:u24][sequence:u64 LE]: never the same twice under one key.
void frame_nonce(uint8_t out[crypto::kGcmNonce], Direction dir, uint64_t seq)
{
	out[0] = uint8_t(dir);
	out[1] = out[2] = out[3] = 0;
	put_le(out + 4, seq, 8);
}

Bytes proof(const char *label, ByteView secret, ByteView first, ByteView second, const std::string &name)
{
	Writer w;
	w.raw(label, std::strlen(label));
	w.raw(first);
	w.raw(second);
	w.str(name);
	Id mac = crypto::hmac_sha256(secret, w.buf());
	return Bytes(mac.b.begin(), mac.b.end());
}

} // namespace

const char *type_name(Type t)
{
	switch (t) {
	case Type::Hello: return "hello";
	case Type::Challenge: return "challenge";
	case Type::Auth: return "auth";
	case Type::Welcome: return "welcome";
	case Type::Ok: return "ok";
	case Type::Fail: return "fail";
	case Type::Create: return "create";
	case Type::Open: return "open";
	case Type::Put: return "put";
	case Type::Get: return "get";
	case Type::GetRange: return "get-range";
	case Type::Size: return "size";
	case Type::List: return "list";
	case Type::Remove: return "remove";
	case Type::Ping: return "ping";
	}
	return "?";
}

bool is_request(Type t) { return uint8_t(t) >= uint8_t(Type::Create); }

const char *rights_name(Rights r)
{
	switch (r) {
	case Rights::ReadOnly: return "ro";
	case Rights::AppendOnly: return "append";
	case Rights::ReadWrite: return "rw";
	}
	return "?";
}

std::optional<Rights> parse_rights(const std::string &s)
{
	if (s == "ro")
		return Rights::ReadOnly;
	if (s == "append")
		return Rights::AppendOnly;
	if (s == "rw")
		return Rights::ReadWrite;
	return std::nullopt;
}

std::pair<std::string, uint16_t> parse_listen(const std::string &s)
{
	auto colon = s.rfind(':');
	if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
		fail(Code::Invalid, "listen address must be HOST:PORT, not '" + s + "'");
	std::string host = s.substr(0, colon);
	if (host.size() > 2 && host.front() == '[' && host.back() == ']')
		host = host.substr(1, host.size() - 2);
	int port = 0;
	for (char c : s.substr(colon + 1)) {
		if (c < '0' || c > '9' || port > 65535)
			fail(Code::Invalid, "malformed port in '" + s + "'");
		port = port * 10 + (c - '0');
	}
	if (port > 65535)
		fail(Code::Invalid, "malformed port in '" + s + "'");
	return {host, uint16_t(port)};
}

void encode_header(const Header &h, uint8_t out[kHeader])
{
	put_le(out, h.length, 4);
	out[4] = uint8_t(h.type);
	out[5] = h.flags;
	out[6] = out[7] = 0;
	put_le(out + 8, h.id, 8);
}

Header decode_header(const uint8_t in[kHeader], uint32_t frame_limit)
{
	Header h;
	h.length = uint32_t(get_le(in, 4));
	if (!known_type(in[4]))
		bad("unknown frame type " + std::to_string(in[4]));
	h.type = Type(in[4]);
	h.flags = in[5];
	if (h.flags & ~kFlagMore)
		bad("unknown frame flags");
	if (in[6] || in[7])
		bad("reserved header bytes are not zero");
	h.id = get_le(in + 8, 8);
	if (h.length > frame_limit)
		bad("frame of " + std::to_string(h.length) + " bytes is over the limit of " + std::to_string(frame_limit));
	if (handshake(h.type) && (h.id != 0 || (h.flags & kFlagMore)))
		bad(std::string("malformed ") + type_name(h.type) + " frame");
	// A failure with id 0 is about the connection itself (sent before the server closes it).
	if (h.type == Type::Fail && h.id == 0 && (h.flags & kFlagMore))
		bad("malformed fail frame");
	if (!handshake(h.type) && h.type != Type::Fail && h.id == 0)
		bad(std::string(type_name(h.type)) + " frame without a request id");
	return h;
}

void append_message(Bytes &out, Type type, uint64_t id, ByteView body, uint32_t frame_limit, bool tagged)
{
	size_t at = 0;
	size_t room = tagged ? kTag : 0;
	do {
		size_t n = std::min<size_t>(body.size() - at, frame_limit);
		Header h{uint32_t(n), type, uint8_t(at + n < body.size() ? kFlagMore : 0), id};
		size_t o = out.size();
		out.resize(o + kHeader + n + room);
		encode_header(h, out.data() + o);
		if (n)
			std::memcpy(out.data() + o + kHeader, body.data() + at, n);
		at += n;
	} while (at < body.size());
}

crypto::SecureBytes session_secret(ByteView secret, ByteView server_nonce, ByteView client_nonce,
                                   const std::string &name)
{
	Bytes mac = proof("plakar/v2/net/session", secret, server_nonce, client_nonce, name);
	crypto::SecureBytes out(mac);
	crypto::wipe(mac.data(), mac.size());
	return out;
}

FrameKeys frame_keys(ByteView session, ByteView hello, ByteView challenge, ByteView auth, ByteView welcome)
{
	Writer w;
	for (ByteView b : {hello, challenge, auth, welcome}) {
		w.varint(b.size());
		w.raw(b);
	}
	Id th = crypto::sha256(w.buf());
	ByteView salt(th.b.data(), th.b.size());
	return FrameKeys{crypto::hkdf(session, salt, "plakar/v2/net/frames/to-server", 32),
	                 crypto::hkdf(session, salt, "plakar/v2/net/frames/to-client", 32)};
}

void FrameSealer::seal(uint8_t *frames, size_t n)
{
	size_t at = 0;
	while (at < n) {
		if (n - at < kHeader + kTag)
			fail(Code::Error, "protocol: sealing a partial frame");
		size_t len = size_t(get_le(frames + at, 4));
		if (n - at - kHeader - kTag < len)
			fail(Code::Error, "protocol: sealing a partial frame");
		uint8_t nonce[crypto::kGcmNonce];
		frame_nonce(nonce, dir_, seq_++);
		mac_.tag(nonce, ByteView(frames + at, kHeader), ByteView(frames + at + kHeader, len), frames + at + kHeader + len);
		at += kHeader + len + kTag;
	}
}

void Decoder::authenticate(ByteView key, Direction dir)
{
	mac_ = std::make_unique<crypto::Gmac>(key);
	dir_ = dir;
	seq_ = 0;
}

void Decoder::check_tag(const uint8_t *frame, size_t payload)
{
	if (!mac_)
		return;
	uint8_t nonce[crypto::kGcmNonce], want[kTag];
	frame_nonce(nonce, dir_, seq_++);
	mac_->tag(nonce, ByteView(frame, kHeader), ByteView(frame + kHeader, payload), want);
	if (!crypto::equal(ByteView(want, kTag), ByteView(frame + kHeader + payload, kTag)))
		bad("a frame failed authentication (changed on the way, replayed, or not from the peer that authenticated)");
}

void Decoder::feed(ByteView bytes, std::vector<Message> &done)
{
	size_t at = 0;
	while (at < bytes.size()) {
		// Complete a header, then its payload (and tag), in pending_ only when split across feeds.
		if (pending_.empty() && bytes.size() - at >= kHeader) {
			Header h = decode_header(bytes.data() + at, frame_limit_);
			size_t whole = kHeader + h.length + tag_size();
			if (bytes.size() - at >= whole) {
				check_tag(bytes.data() + at, h.length);
				frame(h, bytes.subspan(at + kHeader, h.length), done);
				at += whole;
				continue;
			}
		}
		size_t want = kHeader;
		if (pending_.size() >= kHeader)
			want += decode_header(pending_.data(), frame_limit_).length + tag_size();
		else if (pending_.size() + (bytes.size() - at) >= kHeader) {
			uint8_t hdr[kHeader];
			size_t have = pending_.size();
			if (have)
				std::memcpy(hdr, pending_.data(), have);
			std::memcpy(hdr + have, bytes.data() + at, kHeader - have);
			want += decode_header(hdr, frame_limit_).length + tag_size();
		}
		size_t n = std::min(want - pending_.size(), bytes.size() - at);
		pending_.insert(pending_.end(), bytes.begin() + long(at), bytes.begin() + long(at + n));
		at += n;
		if (pending_.size() >= kHeader && pending_.size() == want) {
			Header h = decode_header(pending_.data(), frame_limit_);
			check_tag(pending_.data(), h.length);
			frame(h, ByteView(pending_).subspan(kHeader, h.length), done);
			pending_.clear();
		}
	}
}

void Decoder::frame(const Header &h, ByteView payload, std::vector<Message> &done)
{
	frames_++;
	auto it = std::find_if(partial_.begin(), partial_.end(), [&](const Message &m) { return m.id == h.id && h.id; });
	if (it == partial_.end()) {
		if (!(h.flags & kFlagMore)) {
			done.push_back(Message{h.type, h.id, Bytes(payload.begin(), payload.end())});
			return;
		}
		partial_.push_back(Message{h.type, h.id, {}});
		it = partial_.end() - 1;
	} else if (it->type == Type::Ok && h.type == Type::Fail) {
		// An answer that failed midway (a store read error while streaming an object): what
		// came before is dropped, the failure is the answer.
		partial_bytes_ -= it->body.size();
		partial_.erase(it);
		frame(h, payload, done);
		return;
	} else if (it->type != h.type) {
		bad("frames of one message change type");
	}
	if (it->body.size() + payload.size() > message_limit_)
		bad("message over the limit of " + std::to_string(message_limit_) + " bytes");
	it->body.insert(it->body.end(), payload.begin(), payload.end());
	partial_bytes_ += payload.size();
	if (!(h.flags & kFlagMore)) {
		partial_bytes_ -= it->body.size();
		done.push_back(std::move(*it));
		partial_.erase(it);
	}
}

Bytes encode(const Hello &m)
{
	Writer w;
	magic_and_version(w, m.version);
	w.raw(m.nonce);
	return w.take();
}

Bytes encode(const Challenge &m)
{
	Writer w;
	magic_and_version(w, m.version);
	w.u32(m.frame_limit);
	w.u32(m.max_in_flight);
	w.raw(m.nonce);
	return w.take();
}

Bytes encode(const AuthMsg &m)
{
	Writer w;
	w.str(m.token_name);
	w.raw(m.proof);
	return w.take();
}

Bytes encode(const WelcomeMsg &m)
{
	Writer w;
	w.u8(uint8_t(m.rights));
	w.raw(m.proof);
	return w.take();
}

Hello decode_hello(ByteView b)
{
	Reader r(b, "hello");
	Hello m;
	magic_and_version(r, m.version);
	if (m.version != kVersion)
		return m; // the caller answers with the versions it speaks
	m.nonce = nonce_of(r);
	r.expect_done();
	return m;
}

Challenge decode_challenge(ByteView b)
{
	Reader r(b, "challenge");
	Challenge m;
	magic_and_version(r, m.version);
	if (m.version != kVersion)
		fail(Code::Version, "protocol: the server speaks version " + std::to_string(m.version) + ", this client " +
		                        std::to_string(kVersion));
	m.frame_limit = r.u32();
	m.max_in_flight = r.u32();
	m.nonce = nonce_of(r);
	r.expect_done();
	if (m.frame_limit < kMinFrame || m.frame_limit > kMaxFrameLimit || m.max_in_flight == 0)
		bad("the server announced impossible limits");
	return m;
}

AuthMsg decode_auth(ByteView b)
{
	Reader r(b, "auth");
	AuthMsg m;
	m.token_name = r.str();
	if (m.token_name.empty() || m.token_name.size() > 64)
		bad("malformed token name");
	ByteView p = r.raw(32);
	m.proof.assign(p.begin(), p.end());
	r.expect_done();
	return m;
}

WelcomeMsg decode_welcome(ByteView b)
{
	Reader r(b, "welcome");
	WelcomeMsg m;
	uint8_t rights = r.u8();
	if (rights < 1 || rights > 3)
		bad("unknown rights");
	m.rights = Rights(rights);
	ByteView p = r.raw(32);
	m.proof.assign(p.begin(), p.end());
	r.expect_done();
	return m;
}

Bytes client_proof(ByteView secret, ByteView server_nonce, ByteView client_nonce, const std::string &name)
{
	return proof("plakar/v1/net/client", secret, server_nonce, client_nonce, name);
}

Bytes server_proof(ByteView secret, ByteView server_nonce, ByteView client_nonce, const std::string &name)
{
	return proof("plakar/v1/net/server", secret, client_nonce, server_nonce, name);
}

Request decode_request(Type type, ByteView body)
{
	Reader r(body, "request");
	Request q;
	q.type = type;
	switch (type) {
	case Type::Create: {
		auto bytes = [&r] {
			uint64_t n = r.varint();
			if (n > r.remaining())
				r.bad();
			ByteView b = r.raw(size_t(n));
			return Bytes(b.begin(), b.end());
		};
		q.config = bytes();
		q.name = r.str();
		if (!q.name.empty() && !valid_object_name(q.name))
			bad("malformed key name");
		q.key = bytes();
		break;
	}
	case Type::Open:
	case Type::Ping: break;
	case Type::Put:
		q.kind = decode_kind(r.u8());
		q.name = decode_name(r);
		q.data = r.raw(r.remaining());
		break;
	case Type::Get:
	case Type::Size:
	case Type::Remove:
		q.kind = decode_kind(r.u8());
		q.name = decode_name(r);
		break;
	case Type::GetRange:
		q.kind = decode_kind(r.u8());
		q.name = decode_name(r);
		q.offset = r.u64();
		q.length = r.u64();
		if (q.length > kMaxMessage)
			bad("range longer than a message");
		break;
	case Type::List: q.kind = decode_kind(r.u8()); break;
	default: bad(std::string("a ") + type_name(type) + " frame is not a request");
	}
	r.expect_done();
	return q;
}

Bytes encode_create(ByteView config, const std::string &key_name, ByteView key)
{
	Writer w;
	w.varint(config.size());
	w.raw(config);
	w.str(key_name);
	w.varint(key.size());
	w.raw(key);
	return w.take();
}

Bytes encode_named(Kind kind, const std::string &name)
{
	Writer w;
	w.u8(uint8_t(kind));
	w.str(name);
	return w.take();
}

Bytes encode_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length)
{
	Writer w;
	w.u8(uint8_t(kind));
	w.str(name);
	w.u64(offset);
	w.u64(length);
	return w.take();
}

Bytes encode_kind(Kind kind)
{
	Writer w;
	w.u8(uint8_t(kind));
	return w.take();
}

Bytes encode_fail(Code code, const std::string &message)
{
	Writer w;
	w.u8(uint8_t(-int(code)));
	w.str(message.substr(0, 1024));
	return w.take();
}

void throw_fail(ByteView body, const std::string &where)
{
	Reader r(body, "failure");
	int c = r.u8();
	std::string msg = r.str();
	r.expect_done();
	Code code = Code::Error;
	for (Code k : {Code::NotFound, Code::Auth, Code::Corrupt, Code::Locked, Code::Exists, Code::Invalid,
	               Code::Ambiguous, Code::Canceled, Code::Partial, Code::Version, Code::Unsupported})
		if (-int(k) == c)
			code = k;
	for (char &ch : msg)
		if (ch == '\n' || ch == '\r')
			ch = ' ';
	fail(code, where.empty() ? msg : where + ": " + msg);
}

Bytes encode_names(const std::vector<std::string> &names)
{
	Writer w;
	w.varint(names.size());
	for (const auto &n : names)
		w.str(n);
	return w.take();
}

std::vector<std::string> decode_names(ByteView body)
{
	Reader r(body, "list");
	size_t n = r.count(2);
	std::vector<std::string> out;
	out.reserve(n);
	for (size_t i = 0; i < n; i++) {
		std::string s = r.str();
		if (!valid_object_name(s))
			bad("malformed object name in a list");
		out.push_back(std::move(s));
	}
	r.expect_done();
	return out;
}

} // namespace plakar::net
