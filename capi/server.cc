// The C ABI of `plakar server` and of tokens.
#include <cstring>
#include <mutex>

#include "internal.h"
#include "net/privsep_server.h"
#include "net/server.h"
#include "net/tls.h"
#include "net/tokens.h"

using namespace plakar;
using namespace plakar::capi;

struct plakar_server {
	std::unique_ptr<net::Server> server;          // in this process
	std::unique_ptr<net::PrivsepServer> privsep; // or split into processes
	std::mutex mu;
	bool ran = false;
};

extern "C" {

int plakar_server_new(plakar_server **out, const char *repository, const plakar_server_options *opts)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(repository && *repository, "repository is NULL or empty");
		require(opts, "options are NULL (tokens_file is required)");
		require(opts->version == PLAKAR_SERVER_OPTIONS_VERSION, "unknown plakar_server_options version");
		require(opts->tokens_file && *opts->tokens_file, "tokens_file is required: a server never runs open");
		require(std::strncmp(repository, "plakar://", 9) != 0 && std::strncmp(repository, "plakar+tls://", 13) != 0,
		        "a server serves a local store, not plakar://");
		net::ServerOptions o;
		if (opts->tls_cert_file || opts->tls_key_file) {
			require(opts->tls_cert_file && *opts->tls_cert_file && opts->tls_key_file && *opts->tls_key_file,
			        "TLS needs both tls_cert_file and tls_key_file");
			o.tls = std::make_shared<net::TlsIdentity>(net::load_tls_identity(opts->tls_cert_file, opts->tls_key_file));
		}
		if (opts->listen)
			o.listen = opts->listen;
		o.tokens = net::load_tokens(opts->tokens_file);
		if (opts->workers)
			o.workers = opts->workers;
		if (opts->max_connections)
			o.max_connections = opts->max_connections;
		if (opts->max_in_flight)
			o.max_in_flight = opts->max_in_flight;
		if (opts->idle_timeout_s)
			o.idle_timeout = std::chrono::seconds(opts->idle_timeout_s);
		if (opts->log) {
			auto cb = opts->log;
			void *payload = opts->payload;
			o.log = [cb, payload](const std::string &line) { cb(line.c_str(), payload); };
		}
		require(!(opts->flags & ~unsigned(PLAKAR_SERVER_PRIVSEP)), "unknown server flags");
		auto s = std::make_unique<plakar_server>();
		if (opts->flags & PLAKAR_SERVER_PRIVSEP)
			s->privsep = std::make_unique<net::PrivsepServer>(repository, std::move(o));
		else
			s->server = std::make_unique<net::Server>(open_store(repository), std::move(o));
		*out = s.release();
	});
}

int plakar_server_address(char **out, const plakar_server *server)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(server, "server is NULL");
		std::string a = server->privsep ? server->privsep->address() : server->server->address();
		*out = strdup(a.c_str());
		if (!*out)
			throw std::bad_alloc();
	});
}

int plakar_server_tls_pin(char **out, const plakar_server *server)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(server, "server is NULL");
		std::string pin = server->privsep ? server->privsep->tls_pin() : server->server->tls_pin();
		if (pin.empty())
			fail(Code::NotFound, "this server runs without TLS");
		*out = strdup(pin.c_str());
		if (!*out)
			throw std::bad_alloc();
	});
}

int plakar_server_run(plakar_server *server)
{
	return guard([&] {
		require(server, "server is NULL");
		{
			std::lock_guard lk(server->mu);
			require(!server->ran, "this server already ran");
			server->ran = true;
		}
		if (server->privsep)
			server->privsep->run();
		else
			server->server->run();
	});
}

int plakar_server_stop(plakar_server *server)
{
	return guard([&] {
		require(server, "server is NULL");
		if (server->privsep)
			server->privsep->stop();
		else
			server->server->stop();
	});
}

void plakar_server_free(plakar_server *server)
{
	delete server;
}

int plakar_token_new(char **server_line, char **client_token, const char *name, const char *rights)
{
	return guard([&] {
		require(server_line && client_token, "out is NULL");
		*server_line = *client_token = nullptr;
		require(name, "name is NULL");
		require(rights, "rights is NULL");
		auto r = net::parse_rights(rights);
		require(r.has_value(), "rights must be rw, ro or append");
		auto t = net::make_token(name, *r);
		char *a = strdup(t.server_line.c_str());
		char *b = strdup(t.client_token.c_str());
		if (!a || !b) {
			free(a);
			free(b);
			throw std::bad_alloc();
		}
		*server_line = a;
		*client_token = b;
	});
}

int plakar_token_add(char **client_token, const char *tokens_file, const char *name, const char *rights)
{
	return guard([&] {
		require(client_token, "out is NULL");
		*client_token = nullptr;
		require(tokens_file && *tokens_file, "tokens_file is NULL or empty");
		require(name, "name is NULL");
		require(rights, "rights is NULL");
		auto r = net::parse_rights(rights);
		require(r.has_value(), "rights must be rw, ro or append");
		// Room for "NAME:SECRET" before the file changes: out of memory leaves it untouched.
		size_t room = std::strlen(name) + 1 + 64 + 1;
		std::unique_ptr<char, decltype(&free)> buf(static_cast<char *>(malloc(room)), &free);
		if (!buf)
			throw std::bad_alloc();
		auto t = net::add_token(tokens_file, name, *r);
		require(t.client_token.size() < room, "token longer than expected");
		std::memcpy(buf.get(), t.client_token.c_str(), t.client_token.size() + 1);
		*client_token = buf.release();
	});
}

int plakar_tls_cert_new(char **pin, const char *cert_file, const char *key_file, const char *name, unsigned int days)
{
	return guard([&] {
		if (pin)
			*pin = nullptr;
		require(cert_file && *cert_file, "cert_file is NULL or empty");
		require(key_file && *key_file, "key_file is NULL or empty");
		require(name && *name, "name is NULL or empty");
		auto id = net::make_tls_identity(name, days);
		std::string p = net::tls_pin(id);
		char *copy = nullptr;
		if (pin) {
			copy = strdup(p.c_str());
			if (!copy)
				throw std::bad_alloc();
		}
		try {
			net::write_tls_identity(id, cert_file, key_file);
		} catch (...) {
			free(copy);
			throw;
		}
		if (pin)
			*pin = copy;
	});
}

} // extern "C"
