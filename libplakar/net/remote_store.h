// The plakar:// store: a Store whose objects live behind `plakar server` (docs/protocol.md).
//
//     plakar://HOST[:PORT]                         (PORT defaults to 9876; HOST may be [v6])
//     plakar+tls://HOST[:PORT][?pin=sha256:HEX]     the same inside TLS 1.3 (net/tls.h)
//
// Over TLS, the server's certificate is checked against the pin when the URI has one, else
// against $PLAKAR_TLS_CA (a PEM file of authorities) or the system's authorities, with the
// host name. A connection whose certificate does not pass fails with Code::Auth.
//
// Connections are opened on first use and again after one is lost; each carries many requests
// at once (answers arrive in any order), and calls from several threads spread over a few
// connections. Every call is synchronous for its caller and may come from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "net/request_store.h"
#include "net/tokens.h"

namespace plakar::net {

struct RemoteOptions {
	std::string host;
	uint16_t port = kDefaultPort;
	bool tls = false;
	std::string pin;     // "sha256:HEX" (parse_tls_pin); with tls only
	std::string ca_file; // PEM authorities; empty: the system's (when no pin)
	Token token;
	unsigned connections = 2;
	// A request unanswered for this long fails (the connection is dropped and reopened later).
	std::chrono::milliseconds request_timeout{300000};
	std::chrono::milliseconds connect_timeout{10000};
	// An idle connection sends a ping this often, so the server's idle timeout keeps it open.
	std::chrono::milliseconds keepalive{60000};
};

// Parses "plakar://HOST[:PORT]" or "plakar+tls://HOST[:PORT][?pin=PIN]" into o's host, port,
// tls and pin. Throws Code::Invalid.
void parse_remote_uri(const std::string &uri, RemoteOptions &o);

// Registers plakar:// and plakar+tls:// with open_store() (storage/store.h): the token and the
// authorities come from its StoreOptions (net/tokens.h, client_token). The engine never
// registers them by itself (storage/ does not know the network): the C ABI does, once, and
// so do the tests. Idempotent, thread-safe.
void register_remote_stores();
// What register_remote_stores registers: a RemoteStore for a plakar:// or plakar+tls:// URI,
// with the token and authorities of opts.
std::unique_ptr<Store> open_remote_store(const std::string &uri, const StoreOptions &opts);

class RemoteStore : public RequestStore {
public:
	explicit RemoteStore(RemoteOptions opts);
	~RemoteStore() override;

	std::string location() const override;
	bool append_only() override;

	// The rights the server granted (connects when not connected yet).
	Rights rights();

protected:
	Bytes call(Type type, ByteView prefix, ByteView data) override;

private:
	struct Impl;
	std::shared_ptr<Impl> impl_;
};

} // namespace plakar::net
