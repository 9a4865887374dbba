// The C ABI of `plakar server` and of tokens.
#include <cstring>
#include <mutex>

#include "internal.h"
#include "net/privsep_server.h"
#include "net/server.h"
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
		require(std::strncmp(repository, "plakar://", 9) != 0, "a server serves a local store, not plakar://");
		net::ServerOptions o;
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

} // extern "C"
