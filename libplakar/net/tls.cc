#include "net/tls.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "crypto/crypto.h"

namespace plakar::net {

namespace asio = boost::asio;

namespace {

template <class T, void (*Free)(T *)> struct Owned {
	T *p = nullptr;
	Owned() = default;
	explicit Owned(T *v) : p(v) {}
	~Owned()
	{
		if (p)
			Free(p);
	}
	Owned(Owned &&o) noexcept : p(o.p) { o.p = nullptr; }
	Owned(const Owned &) = delete;
	Owned &operator=(const Owned &) = delete;
	T *get() const { return p; }
	explicit operator bool() const { return p != nullptr; }
};
void free_bio(BIO *b) { BIO_free(b); }
using Bio = Owned<BIO, free_bio>;
using X509Ptr = Owned<X509, X509_free>;
using Key = Owned<EVP_PKEY, EVP_PKEY_free>;
using Big = Owned<BIGNUM, BN_free>;
using Ext = Owned<X509_EXTENSION, X509_EXTENSION_free>;

// The last OpenSSL error as text (the queue is emptied).
std::string ssl_error()
{
	unsigned long e = ERR_get_error();
	std::string out = "unknown error";
	if (e) {
		char buf[256];
		ERR_error_string_n(e, buf, sizeof buf);
		out = buf;
	}
	ERR_clear_error();
	return out;
}

std::string read_text(const std::string &path, const char *what)
{
	std::ifstream in(path, std::ios::binary);
	if (!in) {
		int err = errno;
		fail_errno(std::string(what) + " " + path, err ? err : ENOENT);
	}
	std::ostringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

X509Ptr first_cert(const std::string &pem, const std::string &where)
{
	Bio b(BIO_new_mem_buf(pem.data(), int(pem.size())));
	X509Ptr x(b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr);
	if (!x) {
		ERR_clear_error();
		fail(Code::Invalid, where + ": not a PEM certificate");
	}
	return x;
}

Key private_key(const std::string &pem, const std::string &where)
{
	Bio b(BIO_new_mem_buf(pem.data(), int(pem.size())));
	Key k(b ? PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr) : nullptr);
	if (!k) {
		ERR_clear_error();
		fail(Code::Invalid, where + ": not a PEM private key (or one protected by a passphrase)");
	}
	return k;
}

std::string pin_of(X509 *x)
{
	int n = i2d_X509(x, nullptr);
	if (n <= 0)
		fail(Code::Invalid, "TLS certificate: cannot be encoded (" + ssl_error() + ")");
	Bytes der(size_t(n), 0);
	uint8_t *p = der.data();
	i2d_X509(x, &p);
	Id h = crypto::sha256(der);
	return "sha256:" + h.hex();
}

void add_ext(X509 *x, int nid, const std::string &value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
	Ext e(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
	if (!e || !X509_add_ext(x, e.get(), -1))
		fail(Code::Invalid, "TLS certificate: cannot add " + value + " (" + ssl_error() + ")");
}

std::string to_pem(int (*write)(BIO *, void *), void *obj)
{
	Bio b(BIO_new(BIO_s_mem()));
	if (!b || !write(b.get(), obj))
		fail(Code::Error, "TLS: cannot encode PEM (" + ssl_error() + ")");
	char *data = nullptr;
	long n = BIO_get_mem_data(b.get(), &data);
	return std::string(data, size_t(n));
}

void write_new_file(const std::string &path, const std::string &text, mode_t mode)
{
	int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		if (errno == EEXIST)
			fail(Code::Exists, path + " already exists (it is never replaced)");
		fail_errno(path, errno);
	}
	size_t at = 0;
	while (at < text.size()) {
		ssize_t n = ::write(fd, text.data() + at, text.size() - at);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int err = errno;
			::close(fd);
			::unlink(path.c_str());
			fail_errno(path, err);
		}
		at += size_t(n);
	}
	int err = ::fsync(fd) != 0 ? errno : 0;
	if (::close(fd) != 0 && !err)
		err = errno;
	if (err) {
		::unlink(path.c_str());
		fail_errno(path, err);
	}
}

void tls13_only(SSL_CTX *ctx)
{
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION))
		fail(Code::Error, "TLS: cannot require TLS 1.3 (" + ssl_error() + ")");
}

} // namespace

TlsIdentity load_tls_identity(const std::string &cert_file, const std::string &key_file)
{
	TlsIdentity id;
	id.cert_pem = read_text(cert_file, "TLS certificate");
	struct stat st;
	if (::stat(key_file.c_str(), &st) != 0)
		fail_errno("TLS key " + key_file, errno);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		fail(Code::Invalid, "TLS key " + key_file + " is open to its group or others (mode " +
		                        std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
		                        std::to_string(st.st_mode & 7) + "): chmod 600 it");
	id.key_pem = read_text(key_file, "TLS key");
	X509Ptr x = first_cert(id.cert_pem, "TLS certificate " + cert_file);
	Key k = private_key(id.key_pem, "TLS key " + key_file);
	if (X509_check_private_key(x.get(), k.get()) != 1) {
		ERR_clear_error();
		fail(Code::Invalid, "TLS key " + key_file + " is not the key of certificate " + cert_file);
	}
	return id;
}

TlsIdentity make_tls_identity(const std::string &name, unsigned days)
{
	if (name.empty() || name.size() > 253 || name.find_first_of(" ,\n\t/") != std::string::npos)
		fail(Code::Invalid, "TLS certificate: malformed name '" + name + "'");
	if (days == 0 || days > 36500)
		fail(Code::Invalid, "TLS certificate: days must be between 1 and 36500");
	Key k(EVP_EC_gen("P-256"));
	X509Ptr x(X509_new());
	Big serial(BN_new());
	if (!k || !x || !serial)
		fail(Code::Error, "TLS certificate: " + ssl_error());
	X509_set_version(x.get(), 2);
	if (!BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x.get())))
		fail(Code::Error, "TLS certificate: " + ssl_error());
	X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x.get()), long(days) * 86400);
	X509_set_pubkey(x.get(), k.get());
	X509_NAME *subject = X509_get_subject_name(x.get());
	X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char *>(name.c_str()),
	                           -1, -1, 0);
	X509_set_issuer_name(x.get(), subject);
	boost::system::error_code ec;
	asio::ip::make_address(name, ec);
	add_ext(x.get(), NID_subject_alt_name, (ec ? "DNS:" : "IP:") + name);
	add_ext(x.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
	add_ext(x.get(), NID_key_usage, "critical,digitalSignature,keyCertSign");
	add_ext(x.get(), NID_ext_key_usage, "serverAuth");
	if (!X509_sign(x.get(), k.get(), EVP_sha256()))
		fail(Code::Error, "TLS certificate: cannot sign (" + ssl_error() + ")");
	TlsIdentity id;
	id.cert_pem = to_pem([](BIO *b, void *o) { return PEM_write_bio_X509(b, static_cast<X509 *>(o)); }, x.get());
	id.key_pem = to_pem(
	    [](BIO *b, void *o) {
		    return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY *>(o), nullptr, nullptr, 0, nullptr, nullptr);
	    },
	    k.get());
	return id;
}

void write_tls_identity(const TlsIdentity &id, const std::string &cert_file, const std::string &key_file)
{
	struct stat st;
	for (const auto *f : {&cert_file, &key_file})
		if (::lstat(f->c_str(), &st) == 0)
			fail(Code::Exists, *f + " already exists (it is never replaced)");
	write_new_file(key_file, id.key_pem, 0600);
	try {
		write_new_file(cert_file, id.cert_pem, 0644);
	} catch (...) {
		::unlink(key_file.c_str());
		throw;
	}
}

std::string tls_pin(const TlsIdentity &id)
{
	X509Ptr x = first_cert(id.cert_pem, "TLS certificate");
	return pin_of(x.get());
}

std::string parse_tls_pin(const std::string &text)
{
	const std::string prefix = "sha256:";
	std::string s = text;
	for (auto &c : s)
		if (c >= 'A' && c <= 'Z')
			c = char(c - 'A' + 'a');
	Bytes raw;
	if (s.compare(0, prefix.size(), prefix) != 0 || s.size() != prefix.size() + 64 ||
	    !hex_decode(std::string_view(s).substr(prefix.size()), raw))
		fail(Code::Invalid, "malformed TLS pin '" + text + "' (sha256: and 64 hex digits)");
	return s;
}

std::unique_ptr<ssl::context> server_tls_context(const TlsIdentity &id)
{
	auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
	tls13_only(ctx->native_handle());
	boost::system::error_code ec;
	ctx->use_certificate_chain(asio::buffer(id.cert_pem), ec);
	if (ec)
		fail(Code::Invalid, "TLS certificate: " + ec.message());
	ctx->use_private_key(asio::buffer(id.key_pem), ssl::context::pem, ec);
	if (ec)
		fail(Code::Invalid, "TLS key: " + ec.message());
	if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
		ERR_clear_error();
		fail(Code::Invalid, "the TLS key is not the key of the certificate");
	}
	ctx->set_verify_mode(ssl::verify_none); // clients prove themselves with their token
	return ctx;
}

std::unique_ptr<ssl::context> client_tls_context(const std::string &pin, const std::string &ca_file)
{
	auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
	tls13_only(ctx->native_handle());
	boost::system::error_code ec;
	if (!pin.empty()) {
		// The chain is not what is trusted: the pin is, checked once the handshake is done and
		// before the first byte of the protocol.
		ctx->set_verify_mode(ssl::verify_none);
		return ctx;
	}
	ctx->set_verify_mode(ssl::verify_peer);
	if (!ca_file.empty()) {
		struct stat st;
		if (::stat(ca_file.c_str(), &st) != 0)
			fail_errno("TLS authorities file " + ca_file, errno);
		ctx->load_verify_file(ca_file, ec);
		if (ec)
			fail(Code::Invalid, "TLS authorities file " + ca_file + ": " + ec.message());
	} else {
		ctx->set_default_verify_paths(ec);
		if (ec)
			fail(Code::Error, "TLS: cannot load the system's certificate authorities: " + ec.message());
	}
	return ctx;
}

std::string peer_tls_pin(SSL *ssl)
{
	X509Ptr x(SSL_get1_peer_certificate(ssl));
	if (!x)
		return "";
	return pin_of(x.get());
}

bool is_tls_error(const boost::system::error_code &ec)
{
	return ec.category() == asio::error::get_ssl_category() || ec.category() == ssl::error::get_stream_category();
}

} // namespace plakar::net
