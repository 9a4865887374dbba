#include "helpers.h"

#include "net/remote_store.h"
#include "snapshot/file_reader.h"
#include "snapshot/snapshot.h"
#include "net/tls.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <vector>

namespace fs = std::filesystem;

namespace plakar::test {

namespace {
// plakar:// and plakar+tls:// are the caller's to register (the C ABI does it), and their token
// the caller's to give (the library reads no environment). The tests register them with a
// default token, the one the test's server set last in $PLAKAR_TOKEN (ServerThread), which the
// CLI processes they start read too.
bool register_test_remote_stores()
{
	auto remote = [](const std::string &uri, const StoreOptions &so) {
		StoreOptions o = so;
		if (const char *t = std::getenv("PLAKAR_TOKEN"); o.token.empty() && o.token_file.empty() && t && *t)
			o.token = t;
		return net::open_remote_store(uri, o);
	};
	register_store("plakar", remote);
	register_store("plakar+tls", remote);
	return true;
}
const bool kRemoteStores = register_test_remote_stores();
} // namespace

TempDir::TempDir()
{
	const char *t = std::getenv("TMPDIR");
	std::string tmpl = std::string(t && *t ? t : "/tmp") + "/plakar-test-XXXXXX";
	std::vector<char> buf(tmpl.begin(), tmpl.end());
	buf.push_back('\0');
	if (!mkdtemp(buf.data()))
		throw std::runtime_error("mkdtemp failed");
	path_ = buf.data();
}

TempDir::~TempDir()
{
	std::error_code ec;
	fs::remove_all(path_, ec);
}

void write_file(const std::string &path, ByteView data)
{
	std::ofstream f(path, std::ios::binary | std::ios::trunc);
	f.write(reinterpret_cast<const char *>(data.data()), std::streamsize(data.size()));
	if (!f)
		throw std::runtime_error("cannot write " + path);
}

Bytes read_file(const std::string &path)
{
	std::ifstream f(path, std::ios::binary);
	if (!f)
		throw std::runtime_error("cannot read " + path);
	return Bytes(std::istreambuf_iterator<char>(f), {});
}

Bytes random_data(size_t n, uint64_t seed)
{
	std::mt19937_64 g(seed);
	Bytes b(n);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = g();
		for (size_t j = 0; j < 8 && i + j < n; j++)
			b[i + j] = uint8_t(v >> (8 * j));
	}
	return b;
}

Bytes hex(const char *s)
{
	Bytes out;
	if (!hex_decode(s, out))
		throw std::runtime_error("bad hex in test");
	return out;
}

std::vector<std::string> files_under(const std::string &dir)
{
	std::vector<std::string> out;
	if (!fs::exists(dir))
		return out;
	for (auto &e : fs::recursive_directory_iterator(dir))
		if (e.is_regular_file())
			out.push_back(e.path().string());
	std::sort(out.begin(), out.end());
	return out;
}

std::unique_ptr<Repository> small_repo(const std::string &uri)
{
	CreateOptions o;
	o.passphrase = "pw";
	o.kdf.log2_n = 10;
	o.chunks.min = 4096;
	o.chunks.avg = 16384;
	o.chunks.max = 65536;
	return Repository::create(uri, o);
}

RepoFixture::RepoFixture(Options o) : encrypted(o.encrypted)
{
	uri = d / "repo";
	CreateOptions c;
	c.encryption = o.encrypted;
	if (o.encrypted)
		c.passphrase = "pw";
	c.kdf.log2_n = 10;
	if (o.pack_size)
		c.pack_size = o.pack_size;
	Repository::create(uri, c);
}

std::unique_ptr<Repository> RepoFixture::open(bool cache) const { return open(open_store(uri), cache); }

std::unique_ptr<Repository> RepoFixture::open(std::unique_ptr<Store> store, bool cache) const
{
	OpenOptions o;
	o.use_cache = cache;
	if (cache)
		o.cache_dir = d / "cache";
	return Repository::open(std::move(store), encrypted ? std::optional<std::string>("pw") : std::nullopt, o);
}

Bytes RepoFixture::read_back(const std::string &snap, const std::string &path) const
{
	auto r = open();
	auto h = load_snapshot(*r, resolve_snapshot(*r, snap));
	FileReader f(*r, lookup(*r, h, path));
	Bytes out(f.size());
	out.resize(f.read(out.data(), out.size()));
	return out;
}

Identity::Identity(bool encrypted)
{
	auto id = crypto::random_bytes(16);
	std::copy(id.begin(), id.end(), cfg.repo_id.begin());
	cfg.encrypted = encrypted;
	crypto::SecureBytes master(crypto::random_bytes(32));
	if (!encrypted)
		cfg.plain_master = master;
	keys = KeyRing::derive(master, cfg);
}

Code code_of(const std::function<void()> &f)
{
	try {
		f();
	} catch (const Error &e) {
		return e.code();
	}
	return Code(0);
}

} // namespace plakar::test

namespace plakar::test {

ServerThread::ServerThread(const std::string &store_uri, std::function<void(net::ServerOptions &)> tune)
{
	net::ServerOptions o;
	o.listen = "127.0.0.1:0";
	for (auto r : {net::Rights::ReadWrite, net::Rights::ReadOnly, net::Rights::AppendOnly}) {
		auto t = net::make_token(net::rights_name(r), r);
		o.tokens.push_back(net::parse_client_token(t.client_token));
		o.tokens.back().rights = r;
		client_tokens_.push_back(t.client_token);
	}
	if (tune)
		tune(o);
	server_ = std::make_unique<net::Server>(open_store(store_uri), std::move(o));
	setenv("PLAKAR_TOKEN", client_tokens_[0].c_str(), 1);
	thread_ = std::thread([this] { server_->run(); });
}

ServerThread::~ServerThread()
{
	server_->stop();
	thread_.join();
}

std::string ServerThread::uri() const
{
	std::string pin = server_->tls_pin();
	if (!pin.empty())
		return "plakar+tls://127.0.0.1:" + std::to_string(server_->port()) + "?pin=" + pin;
	return "plakar://127.0.0.1:" + std::to_string(server_->port());
}

std::string ServerThread::token(net::Rights r) const
{
	return client_tokens_[r == net::Rights::ReadWrite ? 0 : r == net::Rights::ReadOnly ? 1 : 2];
}

std::string lasting_server(const std::string &store_uri, bool tls)
{
	static std::vector<std::unique_ptr<ServerThread>> servers;
	std::function<void(net::ServerOptions &)> tune;
	if (tls)
		tune = [](net::ServerOptions &o) {
			o.tls = std::make_shared<net::TlsIdentity>(net::make_tls_identity("127.0.0.1", 1));
		};
	servers.push_back(std::make_unique<ServerThread>(store_uri, tune));
	return servers.back()->uri();
}

} // namespace plakar::test
