// Minimal JSON output for -json: one object per line (JSON Lines), so output streams in
// constant memory and scripts can read it line by line.
#ifndef PLAKAR_CLI_JSON_H
#define PLAKAR_CLI_JSON_H

#include <plakar/plakar.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace plakar::cli {

// True when s is valid UTF-8.
bool valid_utf8(std::string_view s);

// Builds one JSON object.
class JsonObject {
public:
	// A string value. JSON strings are Unicode: bytes that are not valid UTF-8 become U+FFFD,
	// and then "<key>_hex" carries the exact bytes in hexadecimal.
	JsonObject &str(std::string_view key, std::string_view value);
	JsonObject &num(std::string_view key, int64_t value);
	JsonObject &unum(std::string_view key, uint64_t value);
	JsonObject &boolean(std::string_view key, bool value);
	// A value already encoded as JSON (an array built by the caller).
	JsonObject &raw(std::string_view key, std::string_view json);
	std::string done() const { return out_ + "}"; }

private:
	void key(std::string_view k);
	std::string out_ = "{";
};

// A JSON string literal (quotes included), invalid UTF-8 replaced by U+FFFD.
std::string json_quote(std::string_view s);
// The entry's fields: path, name, type, mode, uid, gid, user, group, size, mtime, nlink, target.
std::string entry_json(const plakar_entry *e, std::string_view path);
// "file", "directory", "symlink", ...
const char *type_name(int type);

} // namespace plakar::cli

#endif
