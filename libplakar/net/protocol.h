// The plakar:// wire protocol (docs/protocol.md): what travels between a client and
// `plakar server`. This file is pure: encoding and decoding, no I/O, so the decoder is fuzzed on
// its own (tests/fuzz).
//
// Everything is a frame: a 16-byte header followed by `length` bytes of payload,
//
//     length:u32 type:u8 flags:u8 reserved:u16(=0) id:u64
//
// little-endian. Past the handshake, every frame also carries a 16-byte tag after its payload
// (not counted in length): the GMAC of its header and payload under the key of its direction,
// derived from the token's secret and the whole handshake, with its sequence number in that
// direction as the nonce (FrameSealer, Decoder::authenticate). A frame changed, dropped,
// replayed, reordered or moved to another connection fails its tag. A message (a request or its answer) is one frame, or several frames with the
// same id where every frame but the last carries kFlagMore: large objects travel in pieces no
// larger than the negotiated frame limit, interleaved with other requests' frames.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/crypto.h"
#include "storage/store.h"

namespace plakar::net {

constexpr uint16_t kVersion = 2;
constexpr size_t kHeader = 16;
constexpr size_t kTag = 16; // after the payload of every frame past the handshake
constexpr char kMagic[4] = {'P', 'L', 'K', 'N'};
constexpr size_t kNonce = 32;
constexpr uint16_t kDefaultPort = 9876;
// Frame payload limits: what a peer may announce, and what this side announces.
constexpr uint32_t kMinFrame = 4096;
constexpr uint32_t kMaxFrameLimit = 16u << 20;
constexpr uint32_t kDefaultFrame = 1u << 20;
// A whole message (a request with its object) may not exceed this many bytes.
constexpr uint64_t kMaxMessage = 1ull << 30;

enum FrameFlags : uint8_t {
	kFlagMore = 1, // more frames of this message follow
};

enum class Type : uint8_t {
	// The handshake (id 0).
	Hello = 1,     // client: magic, version, client nonce
	Challenge = 2, // server: magic, version, frame limit, in-flight limit, server nonce
	Auth = 3,      // client: token name, proof
	Welcome = 4,   // server: rights, server proof
	// Answers (the id of their request).
	Ok = 8,
	Fail = 9, // code:u8 (a Code, negated) message:str
	// Requests (id > 0, unique among the requests in flight on the connection).
	Create = 16,   // config:bytes key_name:str key:bytes
	Open = 17,     // -> config (the rest of the answer)
	Put = 18,      // kind:u8 name:str, then the object (the rest of the message)
	Get = 19,      // kind:u8 name:str -> the object
	GetRange = 20, // kind:u8 name:str offset:u64 length:u64 -> the bytes
	Size = 21,     // kind:u8 name:str -> size:u64
	List = 22,     // kind:u8 -> count:u32 then count names:str
	Remove = 23,   // kind:u8 name:str
	Ping = 24,     // -> nothing; keeps an idle connection open
};
const char *type_name(Type t);
bool is_request(Type t);

// What a token allows (docs/protocol.md, "Tokens").
enum class Rights : uint8_t {
	ReadOnly = 1,   // open, get, list, size; its own locks
	AppendOnly = 2, // and put new objects; its own locks; never remove or replace data
	ReadWrite = 3,  // everything
};
const char *rights_name(Rights r);
std::optional<Rights> parse_rights(const std::string &s);

// "HOST:PORT" ("[v6]:PORT") as a listen address: the host without brackets, and the port.
// Throws Code::Invalid.
std::pair<std::string, uint16_t> parse_listen(const std::string &s);

struct Header {
	uint32_t length = 0;
	Type type{};
	uint8_t flags = 0;
	uint64_t id = 0;
};

void encode_header(const Header &h, uint8_t out[kHeader]);
// Decodes and validates a header against the frame limit; throws Code::Corrupt with a one-line
// reason (unknown type, unknown flags, reserved bytes, a length above the limit, a handshake
// frame with an id or a request with none, a handshake frame split in pieces).
Header decode_header(const uint8_t in[kHeader], uint32_t frame_limit);

// Appends whole frames (header + payload) for one message to out, split at frame_limit. With
// tagged, each frame is followed by kTag bytes of room for its tag (FrameSealer fills them).
void append_message(Bytes &out, Type type, uint64_t id, ByteView body, uint32_t frame_limit, bool tagged = false);

// The two directions of a connection: part of each frame's nonce.
enum class Direction : uint8_t { ToServer = 1, ToClient = 2 };

// What both ends derive once the handshake is done. The session secret is the HMAC-SHA-256,
// under the token's secret, of both nonces and the token's name (the gate computes it: only it
// holds the token's secret on the server's side). The frame keys (one per direction) are
// HKDF-SHA-256 of the session secret, salted with the SHA-256 of the four handshake bodies as
// they travelled (hello, challenge, auth, welcome): a handshake changed on the way (the limits
// of a challenge, the rights of a welcome) leaves the two ends with different keys, and the
// first frame fails.
crypto::SecureBytes session_secret(ByteView secret, ByteView server_nonce, ByteView client_nonce,
                                   const std::string &name);
struct FrameKeys {
	crypto::SecureBytes to_server, to_client;
};
FrameKeys frame_keys(ByteView session_secret, ByteView hello, ByteView challenge, ByteView auth, ByteView welcome);

// Writes the tags of one direction's frames, in the order they are sent. Not thread-safe.
class FrameSealer {
public:
	FrameSealer(ByteView key, Direction dir) : mac_(key), dir_(dir) {}
	// frames: whole frames written with tag room (append_message(..., tagged)), all of them
	// sealed in order. Throws Code::Error on a buffer that is not whole frames (a bug).
	void seal(uint8_t *frames, size_t n);
	void seal(Bytes &frames) { seal(frames.data(), frames.size()); }

private:
	crypto::Gmac mac_;
	Direction dir_;
	uint64_t seq_ = 0;
};

// Gathers the frames of the messages arriving on a connection. feed() consumes bytes (any
// split) and returns the messages completed; a protocol violation throws Code::Corrupt, after
// which the decoder must not be fed again. The bytes held for incomplete messages are bounded
// by message_limit per message and by the caller (limit the ids in flight).
class Decoder {
public:
	struct Message {
		Type type{};
		uint64_t id = 0;
		Bytes body;
	};
	Decoder(uint32_t frame_limit, uint64_t message_limit) : frame_limit_(frame_limit), message_limit_(message_limit) {}
	void feed(ByteView bytes, std::vector<Message> &done);
	// Messages begun and not yet complete, and the bytes they hold.
	size_t partial_count() const { return partial_.size(); }
	uint64_t partial_bytes() const { return partial_bytes_; }
	// Whether a frame has begun and is not complete, and how many frames were complete so far.
	bool frame_pending() const { return !pending_.empty(); }
	uint64_t frames() const { return frames_; }
	void set_frame_limit(uint32_t limit) { frame_limit_ = limit; }
	// From now on every frame carries a tag, checked in order under key (the peer's
	// direction); a frame whose tag fails is Code::Corrupt, "protocol: a frame failed
	// authentication ...". Called once the handshake is done.
	void authenticate(ByteView key, Direction dir);
	bool authenticated() const { return mac_ != nullptr; }

private:
	void frame(const Header &h, ByteView payload, std::vector<Message> &done);
	// Checks the tag after a frame's payload (frame: header, payload, tag).
	void check_tag(const uint8_t *frame, size_t payload);
	size_t tag_size() const { return mac_ ? kTag : 0; }

	uint32_t frame_limit_;
	uint64_t message_limit_;
	Bytes pending_; // a header and payload not yet complete
	std::vector<Message> partial_;
	uint64_t partial_bytes_ = 0;
	uint64_t frames_ = 0;
	std::unique_ptr<crypto::Gmac> mac_;
	Direction dir_{};
	uint64_t seq_ = 0;
};

// The bodies of the handshake.
struct Hello {
	uint16_t version = kVersion;
	Bytes nonce;
};
struct Challenge {
	uint16_t version = kVersion;
	uint32_t frame_limit = kDefaultFrame;
	uint32_t max_in_flight = 0;
	Bytes nonce;
};
struct AuthMsg {
	std::string token_name;
	Bytes proof;
};
struct WelcomeMsg {
	Rights rights{};
	Bytes proof;
};
Bytes encode(const Hello &m);
Bytes encode(const Challenge &m);
Bytes encode(const AuthMsg &m);
Bytes encode(const WelcomeMsg &m);
Hello decode_hello(ByteView b);
Challenge decode_challenge(ByteView b);
AuthMsg decode_auth(ByteView b);
WelcomeMsg decode_welcome(ByteView b);

// Challenge-response proofs: HMAC-SHA-256 of both nonces and the token's name, with a
// different label each way, keyed by the token's secret.
Bytes client_proof(ByteView secret, ByteView server_nonce, ByteView client_nonce, const std::string &name);
Bytes server_proof(ByteView secret, ByteView server_nonce, ByteView client_nonce, const std::string &name);

// A request, decoded. The object of a Put is a view into the message body.
struct Request {
	Type type{};
	Kind kind = Kind::Pack;
	std::string name;
	uint64_t offset = 0, length = 0;
	Bytes config, key; // Create
	ByteView data;     // Put
};
// Throws Code::Corrupt on a malformed request (unknown kind, bad name, trailing bytes).
Request decode_request(Type type, ByteView body);
// The request bodies, as the client sends them (Put's object follows the returned prefix).
Bytes encode_create(ByteView config, const std::string &key_name, ByteView key);
Bytes encode_named(Kind kind, const std::string &name);
Bytes encode_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length);
Bytes encode_kind(Kind kind);

Bytes encode_fail(Code code, const std::string &message);
// Throws the Error a Fail body carries, its message prefixed with "where: " unless where is
// empty (a malformed body is Code::Corrupt).
[[noreturn]] void throw_fail(ByteView body, const std::string &where);

Bytes encode_names(const std::vector<std::string> &names);
std::vector<std::string> decode_names(ByteView body);

} // namespace plakar::net
