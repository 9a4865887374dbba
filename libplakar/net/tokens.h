// Tokens: the shared secrets that let a client in (docs/protocol.md, "Tokens").
//
// The server reads a tokens file, one token per line, "NAME RIGHTS SECRET" (RIGHTS: rw, ro or
// append; SECRET: 64 hex digits), '#' starting a comment. The client holds the same token as
// "NAME:SECRET". The secret never travels: the handshake proves it with HMAC-SHA-256 over both
// sides' nonces.
#pragma once

#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "net/protocol.h"

namespace plakar::net {

struct Token {
	std::string name;
	Rights rights = Rights::ReadWrite;
	crypto::SecureBytes secret;
};

// Loads a server's tokens file. Throws Code::NotFound when it does not exist, Code::Invalid on
// a malformed line (with its number), on a duplicate name, on an empty file, and when the file
// can be read or written by its group or others (it holds secrets).
std::vector<Token> load_tokens(const std::string &path);
// The parser behind it: the file's text (path names it in messages). Throws Code::Invalid.
std::vector<Token> parse_tokens(ByteView text, const std::string &path);
// Parses a client's token, "NAME:SECRET". Throws Code::Invalid.
Token parse_client_token(const std::string &text);
// The token a client uses when none is given: $PLAKAR_TOKEN, else the file named by
// $PLAKAR_TOKEN_FILE, else ~/.config/plakar/token. Throws Code::Auth when there is none.
Token client_token_from_environment();
// A new random token: its tokens-file line and its client form.
struct NewToken {
	std::string server_line;
	std::string client_token;
};
NewToken make_token(const std::string &name, Rights rights);
bool valid_token_name(const std::string &name);

} // namespace plakar::net
