#include "net/tokens.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string_view>

#include "base/fd.h"

namespace plakar::net {

namespace {

// 64 hex digits straight into wiped memory.
crypto::SecureBytes secret_from_hex(std::string_view hex, const std::string &where)
{
	crypto::SecureBytes s(32);
	if (!hex_decode_into(hex, s.data(), s.size()))
		fail(Code::Invalid, where + ": the secret must be 64 hex digits");
	return s;
}

crypto::SecureBytes parse_secret(const std::string &hex, const std::string &where)
{
	Bytes b;
	if (hex.size() != 64 || !hex_decode(hex, b))
		fail(Code::Invalid, where + ": the secret must be 64 hex digits");
	crypto::SecureBytes s(b);
	std::fill(b.begin(), b.end(), 0);
	return s;
}

std::string trim(const std::string &s)
{
	size_t a = s.find_first_not_of(" \t\r\n");
	if (a == std::string::npos)
		return "";
	size_t b = s.find_last_not_of(" \t\r\n");
	return s.substr(a, b - a + 1);
}

} // namespace

bool valid_token_name(const std::string &name)
{
	if (name.empty() || name.size() > 64)
		return false;
	for (char c : name)
		if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '@'))
			return false;
	return true;
}

namespace {

// The tokens file's text, in wiped memory, after the checks of load_tokens.
crypto::SecureBytes read_tokens_file(const std::string &path)
{
	struct stat st;
	if (stat(path.c_str(), &st) != 0)
		fail_errno("tokens file " + path, errno);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		fail(Code::Invalid, "tokens file " + path + " is open to its group or others (mode " +
		                        std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
		                        std::to_string(st.st_mode & 7) + "): chmod 600 it");
	if (!S_ISREG(st.st_mode) || st.st_size > (1 << 24))
		fail(Code::Invalid, "tokens file " + path + ": not a regular file of at most 16 MiB");
	Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
	if (fd.fd < 0)
		fail_errno("tokens file " + path, errno);
	crypto::SecureBytes text(size_t(st.st_size));
	size_t got = 0;
	while (got < text.size()) {
		ssize_t n = ::read(fd.fd, text.data() + got, text.size() - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail_errno("tokens file " + path, errno);
		if (n == 0)
			break;
		got += size_t(n);
	}
	if (got == text.size())
		return text;
	return crypto::SecureBytes(ByteView(text.data(), got));
}

std::vector<Token> parse_tokens_text(ByteView text, const std::string &path, bool allow_empty);

} // namespace

std::vector<Token> load_tokens(const std::string &path)
{
	// The file is read into wiped memory and parsed in place: no copy of a secret outlives
	// this call outside the tokens' SecureBytes (a privilege-separated server forks its
	// network process after this, and that process must find no secret in its memory).
	crypto::SecureBytes text = read_tokens_file(path);
	return parse_tokens(ByteView(text.data(), text.size()), path);
}

std::vector<Token> parse_tokens(ByteView text, const std::string &path)
{
	return parse_tokens_text(text, path, false);
}

namespace {

std::vector<Token> parse_tokens_text(ByteView text, const std::string &path, bool allow_empty)
{
	std::string_view all(reinterpret_cast<const char *>(text.data()), text.size());
	std::vector<Token> out;
	std::set<std::string> names;
	int no = 0;
	while (!all.empty()) {
		no++;
		size_t eol = all.find('\n');
		std::string_view line = all.substr(0, eol);
		all = eol == std::string_view::npos ? std::string_view() : all.substr(eol + 1);
		if (auto h = line.find('#'); h != std::string_view::npos)
			line = line.substr(0, h);
		// Fields separated by blanks.
		std::vector<std::string_view> f;
		for (size_t i = 0; i < line.size();) {
			while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i])))
				i++;
			size_t j = i;
			while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j])))
				j++;
			if (j > i)
				f.push_back(line.substr(i, j - i));
			i = j;
		}
		if (f.empty())
			continue;
		std::string where = path + ":" + std::to_string(no);
		if (f.size() != 3)
			fail(Code::Invalid, where + ": expected NAME RIGHTS SECRET");
		std::string name(f[0]), rights(f[1]);
		if (!valid_token_name(name))
			fail(Code::Invalid, where + ": malformed token name '" + name + "'");
		auto r = parse_rights(rights);
		if (!r)
			fail(Code::Invalid, where + ": rights must be rw, ro or append, not '" + rights + "'");
		if (!names.insert(name).second)
			fail(Code::Invalid, where + ": token '" + name + "' appears twice");
		out.push_back(Token{name, *r, secret_from_hex(f[2], where)});
	}
	if (out.empty() && !allow_empty)
		fail(Code::Invalid, "tokens file " + path + " holds no token");
	return out;
}

} // namespace

NewToken add_token(const std::string &path, const std::string &name, Rights rights)
{
	NewToken t = make_token(name, rights);
	size_t slash = path.rfind('/');
	std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
	// Two adders at once must not both read the old file and each rename theirs over it (one
	// token would be lost): the read-modify-write holds an exclusive lock on the directory.
	Fd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (dirfd.fd < 0)
		fail_errno("tokens file " + path, errno);
	while (::flock(dirfd.fd, LOCK_EX) != 0)
		if (errno != EINTR)
			fail_errno("tokens file " + path + ": lock", errno);
	crypto::SecureBytes text;
	struct stat st;
	if (::stat(path.c_str(), &st) == 0) {
		text = read_tokens_file(path);
		for (const auto &tok : parse_tokens_text(ByteView(text.data(), text.size()), path, true))
			if (tok.name == name)
				fail(Code::Exists, "tokens file " + path + " already has a token named '" + name +
				                       "' (remove its line first)");
	} else if (errno != ENOENT) {
		fail_errno("tokens file " + path, errno);
	}
	std::string tmp = path + ".tmp-" + std::to_string(::getpid());
	Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
	if (fd.fd < 0)
		fail_errno("tokens file " + tmp, errno);
	auto write_all = [&](const uint8_t *p, size_t n) {
		while (n) {
			ssize_t w = ::write(fd.fd, p, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				int err = errno;
				::unlink(tmp.c_str());
				fail_errno("tokens file " + tmp, err);
			}
			p += w;
			n -= size_t(w);
		}
	};
	write_all(text.data(), text.size());
	if (text.size() && text.data()[text.size() - 1] != '\n')
		write_all(reinterpret_cast<const uint8_t *>("\n"), 1);
	std::string line = t.server_line + "\n";
	write_all(reinterpret_cast<const uint8_t *>(line.data()), line.size());
	std::fill(line.begin(), line.end(), '\0');
	if (::fsync(fd.fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
		int err = errno;
		::unlink(tmp.c_str());
		fail_errno("tokens file " + path, err);
	}
	::fsync(dirfd.fd);
	return t;
}

Token parse_client_token(const std::string &text)
{
	std::string t = trim(text);
	auto colon = t.find(':');
	if (colon == std::string::npos)
		fail(Code::Invalid, "a token is NAME:SECRET");
	Token tok;
	tok.name = t.substr(0, colon);
	if (!valid_token_name(tok.name))
		fail(Code::Invalid, "malformed token name '" + tok.name + "'");
	tok.secret = parse_secret(t.substr(colon + 1), "token '" + tok.name + "'");
	return tok;
}

Token client_token(const std::string &token, const std::string &token_file)
{
	if (!token.empty())
		return parse_client_token(token);
	if (token_file.empty())
		fail(Code::Auth, "no token for the server (give one, or the file holding it)");
	std::ifstream in(token_file);
	if (!in)
		fail(Code::Auth, "no token for the server: cannot read " + token_file);
	std::string line;
	if (!std::getline(in, line) || trim(line).empty())
		fail(Code::Auth, "no token for the server: " + token_file + " is empty");
	return parse_client_token(line);
}

NewToken make_token(const std::string &name, Rights rights)
{
	if (!valid_token_name(name))
		fail(Code::Invalid, "malformed token name '" + name + "' (letters, digits, - _ . @; at most 64)");
	Bytes secret = crypto::random_bytes(32);
	std::string hex = hex_encode(secret);
	std::fill(secret.begin(), secret.end(), 0);
	return NewToken{name + " " + rights_name(rights) + " " + hex, name + ":" + hex};
}

} // namespace plakar::net
