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
// The token a client gives: token ("NAME:SECRET") when not empty, else the first line of
// token_file. Throws Code::Auth when neither gives one, Code::Invalid when malformed.
Token client_token(const std::string &token, const std::string &token_file);
// A new random token: its tokens-file line and its client form.
struct NewToken {
	std::string server_line;
	std::string client_token;
};
NewToken make_token(const std::string &name, Rights rights);
// make_token, and its line added to the tokens file at path: created 0600 when absent, else
// checked like load_tokens (an empty one is fine) and rewritten whole under a temporary name,
// then renamed (a reader sees the old file or the new one). Code::Exists when the name is
// taken. Returns the new token.
NewToken add_token(const std::string &path, const std::string &name, Rights rights);
bool valid_token_name(const std::string &name);

} // namespace plakar::net
