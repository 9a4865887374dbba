// The key agent: a process of the user's that keeps the master keys of the repositories opened
// in a shell session, so that each command does not pay the passphrase's key derivation again
// (scrypt: about 0.5 s and 64 MiB by design). Modelled on ssh-agent: one UNIX socket in a
// directory only the user can enter, every peer's uid checked (SO_PEERCRED), keys held in
// locked, non-dumpable memory, forgotten after an idle timeout or on request.
//
// Protocol (docs/cli.md, "agent"): one request and one answer per connection, each a frame
// "PLKA", version u8, type u8, payload length u16, payload.
//   GET  (1): repository id [16]           -> KEY (0x81): master key [32], or NONE (0x82)
//   PUT  (2): repository id [16], key [32] -> OK (0x83)
//   STOP (3): empty                        -> OK, then the agent exits
// Anything else, or a peer of another uid, is refused (0x84) and the connection closed.
//
// The client side never throws: an unreachable or misbehaving agent means "no key", and the
// caller derives the key from the passphrase as if there were no agent. A key from the agent
// is still checked against the repository's CONFIG before use.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "base/fd.h"
#include "crypto/crypto.h"

namespace plakar::agent {

using RepoId = std::array<uint8_t, 16>;

// The frame codec, pure (the only code that reads an agent peer's bytes; fuzzed):
// decode_frame_header takes the kFrameHeader bytes of a frame and gives its type and payload
// length, or false when the magic, the version or the length is wrong; classify_request tells
// what a request of that type and payload length asks, Invalid for anything else.
constexpr uint8_t kFrameVersion = 1;
constexpr size_t kFrameHeader = 8;
constexpr size_t kFramePayloadMax = 64;
bool decode_frame_header(ByteView header, uint8_t &type, size_t &len);
enum class Request { Invalid, Get, Put, Stop };
Request classify_request(uint8_t type, size_t len);

// The master key the agent holds for this repository, if any.
std::optional<crypto::SecureBytes> fetch(const std::string &socket, const RepoId &repo);
// Hands a master key to the agent (best effort).
void offer(const std::string &socket, const RepoId &repo, const crypto::SecureBytes &master);
// Asks the agent to forget its keys and exit. Throws Code::NotFound when no agent answers.
void stop(const std::string &socket);

// A bound, listening agent socket. listen() creates it (mode 0600; the directory holding it
// must exist and belong to the user); serve() runs the agent until STOP or until no request
// came for idle_timeout_s seconds (0: never), then removes the socket. Between the two the
// caller may fork (the CLI daemonizes there); only the serving process removes the socket.
class Listener {
public:
	static Listener listen(const std::string &socket);
	void serve(unsigned idle_timeout_s);
	const std::string &path() const { return path_; }

private:
	Listener(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
	std::string path_;
	Fd fd_;

public:
	Listener(Listener &&o) noexcept : path_(std::move(o.path_)), fd_(o.fd_.release()) {}
};

} // namespace plakar::agent
