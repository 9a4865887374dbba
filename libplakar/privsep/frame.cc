#include "privsep/frame.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "base/error.h"

namespace plakar::privsep {

namespace {
void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = uint8_t(v >> (8 * i));
}
uint32_t get32(const uint8_t *p)
{
	return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
[[noreturn]] void bad(const std::string &why) { fail(Code::Corrupt, "ipcmsg: malformed frame: " + why); }

constexpr char kHelloMagic[4] = {'P', 'L', 'K', 'I'};
constexpr size_t kMaxName = 256;
} // namespace

void encode_header(const FrameHeader &h, uint8_t out[kFrameHeader])
{
	put32(out, h.type);
	put32(out + 4, h.length);
	put32(out + 8, h.peer_id);
	put32(out + 12, h.pid);
	put32(out + 16, h.seq);
	out[20] = uint8_t(h.flags);
	out[21] = uint8_t(h.flags >> 8);
	out[22] = out[23] = 0;
}

FrameHeader parse_header(const uint8_t in[kFrameHeader], size_t max_payload)
{
	FrameHeader h;
	h.type = get32(in);
	h.length = get32(in + 4);
	h.peer_id = get32(in + 8);
	h.pid = get32(in + 12);
	h.seq = get32(in + 16);
	h.flags = uint16_t(in[20] | in[21] << 8);
	if (in[22] != 0 || in[23] != 0)
		bad("reserved bytes are not zero");
	if (h.flags & ~uint16_t(kFrameFd | kFrameQuery | kFrameReply))
		bad("unknown flags " + std::to_string(h.flags));
	bool query = h.flags & kFrameQuery, reply = h.flags & kFrameReply;
	if (query && reply)
		bad("both a query and a reply");
	if ((query || reply) != (h.seq != 0))
		bad(h.seq ? "a sequence number on a plain message" : "a query or reply without a sequence number");
	if (h.length > max_payload)
		bad("payload of " + std::to_string(h.length) + " bytes, above the limit of " + std::to_string(max_payload));
	if (h.type >= kReservedTypes && (h.type != kTypeHello || h.flags != 0))
		bad("reserved message type " + std::to_string(h.type));
	return h;
}

void FrameDecoder::feed(ByteView data, std::vector<Frame> &out)
{
	size_t i = 0;
	while (i < data.size()) {
		if (!in_payload_) {
			size_t n = std::min(kFrameHeader - have_, data.size() - i);
			std::memcpy(head_ + have_, data.data() + i, n);
			have_ += n;
			i += n;
			if (have_ < kFrameHeader)
				break;
			have_ = 0;
			cur_ = Frame{parse_header(head_, max_), {}};
			// The length was checked against the limit above: this allocation is bounded.
			cur_.payload.resize(cur_.h.length);
			got_ = 0;
			in_payload_ = true;
		}
		size_t n = std::min<size_t>(cur_.h.length - got_, data.size() - i);
		if (n)
			std::memcpy(cur_.payload.data() + got_, data.data() + i, n);
		got_ += n;
		i += n;
		if (got_ == cur_.h.length) {
			in_payload_ = false;
			out.push_back(std::move(cur_));
			cur_ = Frame{};
		}
	}
}

Bytes encode_hello(const Hello &h)
{
	Writer w;
	w.raw(kHelloMagic, 4);
	w.u32(h.version);
	w.u32(h.max_payload);
	w.str(h.name.substr(0, kMaxName));
	return w.take();
}

Hello parse_hello(ByteView payload)
{
	Reader r(payload, "ipcmsg hello");
	char magic[4];
	r.raw(magic, 4);
	if (std::memcmp(magic, kHelloMagic, 4) != 0)
		bad("the hello does not start with PLKI");
	Hello h;
	h.version = r.u32();
	if (h.version != kProtocolVersion)
		fail(Code::Version, "ipcmsg: the peer speaks protocol version " + std::to_string(h.version) + ", this side " +
		                        std::to_string(kProtocolVersion));
	h.max_payload = r.u32();
	if (r.remaining() > kMaxName + 2)
		bad("hello too long");
	h.name = r.str();
	r.expect_done();
	return h;
}

ssize_t send_with_fd(int sock, const struct iovec *iov, size_t iovcnt, int fd)
{
	struct msghdr msg {};
	msg.msg_iov = const_cast<struct iovec *>(iov);
	msg.msg_iovlen = iovcnt;
	alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
	if (fd >= 0) {
		std::memset(control, 0, sizeof control);
		msg.msg_control = control;
		msg.msg_controllen = sizeof control;
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return ::sendmsg(sock, &msg, MSG_NOSIGNAL);
}

} // namespace plakar::privsep
