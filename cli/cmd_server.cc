// `plakar [on REPOSITORY] server [-listen HOST:PORT] [-tokens FILE] [-workers N]
// [-max-connections N] [-tls-cert FILE -tls-key FILE]` serves the repository's store to
// plakar:// (or, with a certificate, plakar+tls://) clients until SIGINT or SIGTERM;
// `plakar token [-rights rw|ro|append] [-tokens FILE] NAME` adds a token to the server's
// tokens file and prints the client's form of it (docs/protocol.md, "Tokens");
// `plakar tls-cert [-name HOST] [-days N] CERT KEY` makes a self-signed certificate for a
// server and prints its pin (docs/protocol.md, "TLS").
#include <plakar/plakar.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "args.h"
#include "commands.h"
#include "report.h"

namespace plakar::cli {

namespace {

// $PLAKAR_SERVER_TOKENS, else ~/.config/plakar/server-tokens.
std::string default_tokens_file()
{
	if (const char *f = std::getenv("PLAKAR_SERVER_TOKENS"); f && *f)
		return f;
	const char *home = std::getenv("HOME");
	if (!home || !*home)
		throw Failure("HOME is not set: name the tokens file with -tokens");
	return std::string(home) + "/.config/plakar/server-tokens";
}

void make_parents(const std::string &path)
{
	for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1)) {
		std::string dir = path.substr(0, at);
		if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
			throw Failure("cannot create " + dir + ": " + std::strerror(errno));
	}
}

struct Owned {
	char *s = nullptr;
	~Owned() { plakar_string_free(s); }
};

} // namespace

int cmd_token(Session &session)
{
	FlagSet flags("token");
	std::optional<std::string> rights, tokens;
	flags.add_string("rights", &rights);
	flags.add_string("tokens", &tokens);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos == args.size())
		throw UsageError("a token name is required");
	if (pos + 1 != args.size())
		throw UsageError("unexpected argument: " + args[pos + 1]);
	std::string file = tokens.value_or(default_tokens_file());
	make_parents(file);
	Owned client;
	int rc = plakar_token_add(&client.s, file.c_str(), args[pos].c_str(), rights.value_or("rw").c_str());
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	std::fprintf(stderr, "plakar: token '%s' (%s) added to %s\n", args[pos].c_str(), rights.value_or("rw").c_str(),
	             file.c_str());
	std::printf("%s\n", client.s);
	session.finish_output();
	return kExitOk;
}

int cmd_tls_cert(Session &session)
{
	FlagSet flags("tls-cert");
	std::optional<std::string> name;
	int days = 3650;
	flags.add_string("name", &name);
	flags.add_int("days", &days, 1, 36500);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (args.size() - pos != 2)
		throw UsageError("expected CERT KEY: the certificate's and the key's files (neither may exist)");
	std::string host = name.value_or("");
	if (host.empty()) {
		char buf[256] = "";
		if (::gethostname(buf, sizeof buf - 1) != 0 || !*buf)
			throw UsageError("cannot tell this host's name: give it with -name");
		host = buf;
	}
	Owned pin;
	int rc = plakar_tls_cert_new(&pin.s, args[pos].c_str(), args[pos + 1].c_str(), host.c_str(), unsigned(days));
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	std::fprintf(stderr, "plakar: certificate for %s (%d days) in %s, its key in %s\n", host.c_str(), days,
	             args[pos].c_str(), args[pos + 1].c_str());
	std::printf("%s\n", pin.s);
	session.finish_output();
	return kExitOk;
}

int cmd_server(Session &session)
{
	FlagSet flags("server");
	std::optional<std::string> listen, tokens, tls_cert, tls_key;
	int workers = 4, max_connections = 64;
	flags.add_string("listen", &listen);
	flags.add_string("tokens", &tokens);
	flags.add_string("tls-cert", &tls_cert);
	flags.add_string("tls-key", &tls_key);
	flags.add_int("workers", &workers, 1, 256);
	flags.add_int("max-connections", &max_connections, 1, 100000);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos != args.size())
		throw UsageError("unexpected argument: " + args[pos]);
	if (tls_cert.has_value() != tls_key.has_value())
		throw UsageError("-tls-cert and -tls-key go together");
	std::string repo = session.repository_uri();
	std::string file = tokens.value_or(default_tokens_file());

	// SIGINT and SIGTERM go to a thread that stops the server; every thread the server starts
	// inherits the mask.
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, nullptr);

	plakar_server_options o = PLAKAR_SERVER_OPTIONS_INIT;
	o.listen = listen ? listen->c_str() : nullptr;
	o.tokens_file = file.c_str();
	o.workers = unsigned(workers);
	o.max_connections = unsigned(max_connections);
	o.log = [](const char *line, void *) { std::fprintf(stderr, "plakar server: %s\n", line); };
	o.flags = PLAKAR_SERVER_PRIVSEP;
	o.tls_cert_file = tls_cert ? tls_cert->c_str() : nullptr;
	o.tls_key_file = tls_key ? tls_key->c_str() : nullptr;
	plakar_server *server = nullptr;
	int rc = plakar_server_new(&server, repo.c_str(), &o);
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	Owned addr;
	if (int r = plakar_server_address(&addr.s, server); r != PLAKAR_OK) {
		plakar_server_free(server);
		throw_library_error(r);
	}
	Owned pin;
	if (int r = tls_cert ? plakar_server_tls_pin(&pin.s, server) : PLAKAR_OK; r != PLAKAR_OK) {
		plakar_server_free(server);
		throw_library_error(r);
	}
	if (pin.s)
		std::fprintf(stderr, "plakar server: serving %s on %s, TLS, certificate %s\n", repo.c_str(), addr.s, pin.s);
	else
		std::fprintf(stderr, "plakar server: serving %s on %s\n", repo.c_str(), addr.s);
	if (::geteuid() != 0)
		std::fprintf(stderr, "plakar server: not started as root: the network and store processes run as uid %d, "
		                     "without chroot\n",
		             int(::geteuid()));
	std::fflush(stderr);

	std::thread stopper([&] {
		int sig = 0;
		sigwait(&set, &sig);
		if (plakar_server_stop(server) != PLAKAR_OK)
			std::fprintf(stderr, "plakar server: %s\n", plakar_error_last());
	});
	rc = plakar_server_run(server);
	std::string err = rc == PLAKAR_OK ? "" : plakar_error_last();
	pthread_kill(stopper.native_handle(), SIGTERM); // wakes sigwait when run ended on its own
	stopper.join();
	plakar_server_free(server);
	if (rc != PLAKAR_OK)
		throw Failure("server: " + err);
	std::fprintf(stderr, "plakar server: stopped\n");
	return kExitOk;
}

} // namespace plakar::cli
