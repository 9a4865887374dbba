// ipcmsg frames (docs/privsep.md, "Frames"): what travels on a channel between two processes.
//
// A frame is a fixed 24-byte header followed by exactly `length` bytes of payload:
//
//     type:u32 length:u32 peer_id:u32 pid:u32 seq:u32 flags:u16 reserved:u16(=0)
//
// little-endian. The decoder is the only code that reads bytes from the peer: it refuses a
// header with unknown flags, a reserved field that is not zero, an inconsistent query/reply
// marking or a payload above the channel's limit, before any payload is buffered. It is a pure
// function of the bytes fed to it (no I/O), so it is fuzzed on its own (tests/fuzz).
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"

namespace plakar::privsep {

constexpr size_t kFrameHeader = 24;
// Message types from kReservedTypes up belong to the channel itself (the hello).
constexpr uint32_t kReservedTypes = 0xffffff00u;
constexpr uint32_t kTypeHello = 0xffffff01u;
constexpr uint32_t kProtocolVersion = 1;

enum FrameFlags : uint16_t {
	kFrameFd = 1,    // a descriptor travels with the frame (SCM_RIGHTS)
	kFrameQuery = 2, // the sender waits for a reply with the same seq
	kFrameReply = 4, // answers the query with the same seq
};

struct FrameHeader {
	uint32_t type = 0;
	uint32_t length = 0;
	uint32_t peer_id = 0;
	uint32_t pid = 0;
	uint32_t seq = 0;
	uint16_t flags = 0;
};

struct Frame {
	FrameHeader h;
	Bytes payload;
};

void encode_header(const FrameHeader &h, uint8_t out[kFrameHeader]);
// Parses and validates a header (Code::Corrupt with the reason when it is malformed or its
// payload exceeds max_payload).
FrameHeader parse_header(const uint8_t in[kFrameHeader], size_t max_payload);

// Cuts a byte stream into frames. feed() may be given any split of the stream.
class FrameDecoder {
public:
	explicit FrameDecoder(size_t max_payload) : max_(max_payload) {}
	// Appends the frames completed by data to out. Throws Code::Corrupt on a malformed header;
	// the decoder is unusable after that (the channel closes).
	void feed(ByteView data, std::vector<Frame> &out);
	// Whether part of a frame is buffered (at the end of the stream: a truncated frame).
	bool mid_frame() const { return have_ > 0 || in_payload_; }

private:
	size_t max_;
	uint8_t head_[kFrameHeader];
	size_t have_ = 0; // header bytes buffered
	bool in_payload_ = false;
	Frame cur_;
	size_t got_ = 0; // payload bytes of cur_ received
};

// The hello each side sends first: magic, protocol version, its payload limit and the
// channel's name as it sees it.
struct Hello {
	uint32_t version = kProtocolVersion;
	uint32_t max_payload = 0;
	std::string name;
};
Bytes encode_hello(const Hello &h);
// Code::Corrupt when malformed, Code::Version when the version is not ours.
Hello parse_hello(ByteView payload);

// One sendmsg(MSG_NOSIGNAL) of iov on a UNIX socket, with fd (when >= 0) attached as
// SCM_RIGHTS. Returns what sendmsg returns (errno set on -1).
ssize_t send_with_fd(int sock, const struct iovec *iov, size_t iovcnt, int fd);

} // namespace plakar::privsep
