// TLS for `plakar server` and the plakar+tls:// store (docs/protocol.md, "TLS").
//
// Both ends speak TLS 1.3 only. The server holds a certificate and its private key. The client
// checks the certificate one of two ways: against a pin, the SHA-256 of the certificate
// ("sha256:" and 64 hex digits, what `plakar server` and `plakar tls-cert` print), or against
// certificate authorities ($PLAKAR_TLS_CA, else the system's) together with the host name.
// Inside TLS the token handshake runs exactly as in the clear: TLS keeps the traffic private
// and tells the client it reached the right server; the token tells the server who the client
// is.
#pragma once

#include <memory>
#include <string>

#include "net/asio.h"

#include <boost/asio/ssl.hpp>

namespace plakar::net {

namespace ssl = boost::asio::ssl;

struct TlsIdentity {
	std::string cert_pem; // the certificate, then any intermediate ones
	std::string key_pem;  // its private key
};

// Reads a certificate (chain) and its private key, PEM. Throws Code::NotFound when a file is
// missing, Code::Invalid when one is not PEM, when the key is not the certificate's, or when
// the key file can be read by its group or others.
TlsIdentity load_tls_identity(const std::string &cert_file, const std::string &key_file);
// A new self-signed certificate (ECDSA P-256, SHA-256) for name, a host name or an IP address
// (its subject alternative name), valid for days days from an hour ago.
TlsIdentity make_tls_identity(const std::string &name, unsigned days);
// Writes the certificate (mode 0644) and the key (0600). Never replaces a file: Code::Exists.
void write_tls_identity(const TlsIdentity &id, const std::string &cert_file, const std::string &key_file);
// The pin of the identity's certificate (the first of the chain): "sha256:" and the SHA-256 of
// its DER encoding, in lowercase hex. Throws Code::Invalid.
std::string tls_pin(const TlsIdentity &id);
// A pin as a user wrote it, checked and in lowercase. Throws Code::Invalid.
std::string parse_tls_pin(const std::string &text);

// The server's context: TLS 1.3, the identity loaded. Throws Code::Invalid.
std::unique_ptr<ssl::context> server_tls_context(const TlsIdentity &id);
// The client's: with a pin, the certificate chain is not checked against authorities (the pin
// is checked after the handshake, peer_tls_pin); without one, against ca_file or, when empty,
// the system's authorities (the host name is checked on each connection). Throws Code::Invalid.
std::unique_ptr<ssl::context> client_tls_context(const std::string &pin, const std::string &ca_file);
// The pin of the certificate the peer of this connection presented ("" when none).
std::string peer_tls_pin(SSL *ssl);

// A TCP connection, in the clear or, once start_tls() was called, inside TLS. Reads and
// writes go through TLS then; one read and one write may be outstanding at once, on the io
// thread.
class Stream {
public:
	explicit Stream(boost::asio::ip::tcp::socket sock) : sock_(std::move(sock)) {}
	boost::asio::ip::tcp::socket &socket() { return sock_; }
	void start_tls(ssl::context &ctx) { tls_ = std::make_unique<ssl::stream<boost::asio::ip::tcp::socket &>>(sock_, ctx); }
	bool tls() const { return tls_ != nullptr; }
	ssl::stream<boost::asio::ip::tcp::socket &> &tls_stream() { return *tls_; }

	boost::asio::awaitable<size_t> read_some(boost::asio::mutable_buffer b)
	{
		if (tls_)
			co_return co_await tls_->async_read_some(b, boost::asio::use_awaitable);
		co_return co_await sock_.async_read_some(b, boost::asio::use_awaitable);
	}
	boost::asio::awaitable<void> write_all(boost::asio::const_buffer b)
	{
		if (tls_)
			co_await boost::asio::async_write(*tls_, b, boost::asio::use_awaitable);
		else
			co_await boost::asio::async_write(sock_, b, boost::asio::use_awaitable);
	}
	template <class Handler> void async_write_all(boost::asio::const_buffer b, Handler &&h)
	{
		if (tls_)
			boost::asio::async_write(*tls_, b, std::forward<Handler>(h));
		else
			boost::asio::async_write(sock_, b, std::forward<Handler>(h));
	}
	// Closes the socket (a TLS session ends without its close_notify: the protocol's own
	// frames say when a connection is over).
	void close()
	{
		boost::system::error_code ec;
		sock_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
		sock_.close(ec);
	}

private:
	boost::asio::ip::tcp::socket sock_;
	std::unique_ptr<ssl::stream<boost::asio::ip::tcp::socket &>> tls_; // after sock_: goes first
};

// Whether an error came from TLS (a failed handshake, a certificate refused).
bool is_tls_error(const boost::system::error_code &ec);

} // namespace plakar::net
