// plakar._plakar: the server and its credentials (capi/server.cc): server_new, tokens, TLS certificates.
#include "common.h"

namespace plakar_py {

ServerHandle server_new(const py::bytes &uri_b, const py::bytes &tokens_b, const std::optional<std::string> &listen,
                        unsigned workers, unsigned max_connections, const std::optional<py::bytes> &cert_b,
                        const std::optional<py::bytes> &key_b)
{
	std::string uri = c_string(uri_b, "repository URI");
	std::string tokens = c_string(tokens_b, "tokens file");
	std::optional<std::string> cert, key;
	if (cert_b)
		cert = c_string(*cert_b, "TLS certificate file");
	if (key_b)
		key = c_string(*key_b, "TLS key file");
	plakar_server_options o = PLAKAR_SERVER_OPTIONS_INIT;
	o.tls_cert_file = cert ? cert->c_str() : nullptr;
	o.tls_key_file = key ? key->c_str() : nullptr;
	o.listen = listen ? listen->c_str() : nullptr;
	o.tokens_file = tokens.c_str();
	o.workers = workers;
	o.max_connections = max_connections;
	plakar_server *srv = nullptr;
	Status s = blocking([&] { return Status::capture(plakar_server_new(&srv, uri.c_str(), &o)); });
	if (!s.ok())
		raise_status(s);
	return ServerHandle{std::shared_ptr<plakar_server>(srv, plakar_server_free)};
}

std::string tls_cert_new(const py::bytes &cert_b, const py::bytes &key_b, const std::string &name, unsigned days)
{
	std::string cert = c_string(cert_b, "TLS certificate file"), key = c_string(key_b, "TLS key file");
	char *pin = nullptr;
	Status s = Status::capture(plakar_tls_cert_new(&pin, cert.c_str(), key.c_str(), name.c_str(), days));
	if (!s.ok())
		raise_status(s);
	std::string out(pin);
	plakar_string_free(pin);
	return out;
}

py::tuple token_new(const std::string &name, const std::string &rights)
{
	char *line = nullptr, *client = nullptr;
	Status s = Status::capture(plakar_token_new(&line, &client, name.c_str(), rights.c_str()));
	if (!s.ok())
		raise_status(s);
	py::tuple t = py::make_tuple(std::string(line), std::string(client));
	plakar_string_free(line);
	plakar_string_free(client);
	return t;
}

std::string token_add(const py::bytes &tokens_file_b, const std::string &name, const std::string &rights)
{
	std::string file = c_string(tokens_file_b, "tokens file");
	char *client = nullptr;
	Status s = Status::capture(plakar_token_add(&client, file.c_str(), name.c_str(), rights.c_str()));
	if (!s.ok())
		raise_status(s);
	std::string out(client);
	plakar_string_free(client);
	return out;
}

} // namespace plakar_py
