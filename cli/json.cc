#include "json.h"

#include <cstdio>

#include "format.h"

namespace plakar::cli {

bool valid_utf8(std::string_view s)
{
	size_t i = 0;
	while (i < s.size()) {
		unsigned char c = static_cast<unsigned char>(s[i]);
		size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (n == 0 || i + n > s.size())
			return false;
		uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
		for (size_t k = 1; k < n; k++) {
			unsigned char d = static_cast<unsigned char>(s[i + k]);
			if ((d >> 6) != 2)
				return false;
			cp = (cp << 6) | (d & 0x3f);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n;
	}
	return true;
}

std::string json_quote(std::string_view s)
{
	std::string out = "\"";
	size_t i = 0;
	while (i < s.size()) {
		unsigned char c = static_cast<unsigned char>(s[i]);
		size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (n > 1 && i + n <= s.size() && valid_utf8(s.substr(i, n))) {
			out.append(s.substr(i, n));
			i += n;
			continue;
		}
		if (n != 1) {
			out += "\xef\xbf\xbd"; // U+FFFD
			i++;
			continue;
		}
		switch (c) {
		case '"': out += "\\\""; break;
		case '\\': out += "\\\\"; break;
		case '\n': out += "\\n"; break;
		case '\t': out += "\\t"; break;
		case '\r': out += "\\r"; break;
		default:
			if (c < 0x20 || c == 0x7f) {
				char b[8];
				std::snprintf(b, sizeof b, "\\u%04x", c);
				out += b;
			} else {
				out.push_back(char(c));
			}
		}
		i++;
	}
	return out + "\"";
}

void JsonObject::key(std::string_view k)
{
	if (out_.size() > 1)
		out_ += ",";
	out_ += json_quote(k) + ":";
}

JsonObject &JsonObject::str(std::string_view k, std::string_view value)
{
	key(k);
	out_ += json_quote(value);
	if (!valid_utf8(value)) {
		std::string hex;
		static const char digits[] = "0123456789abcdef";
		for (unsigned char c : value) {
			hex.push_back(digits[c >> 4]);
			hex.push_back(digits[c & 15]);
		}
		key(std::string(k) + "_hex");
		out_ += "\"" + hex + "\"";
	}
	return *this;
}

JsonObject &JsonObject::num(std::string_view k, int64_t value)
{
	key(k);
	out_ += std::to_string(value);
	return *this;
}

JsonObject &JsonObject::unum(std::string_view k, uint64_t value)
{
	key(k);
	out_ += std::to_string(value);
	return *this;
}

JsonObject &JsonObject::boolean(std::string_view k, bool value)
{
	key(k);
	out_ += value ? "true" : "false";
	return *this;
}

JsonObject &JsonObject::raw(std::string_view k, std::string_view json)
{
	key(k);
	out_ += json;
	return *this;
}

const char *type_name(int type)
{
	switch (type) {
	case PLAKAR_TYPE_FILE: return "file";
	case PLAKAR_TYPE_DIRECTORY: return "directory";
	case PLAKAR_TYPE_SYMLINK: return "symlink";
	case PLAKAR_TYPE_FIFO: return "fifo";
	case PLAKAR_TYPE_CHARDEV: return "chardev";
	case PLAKAR_TYPE_BLOCKDEV: return "blockdev";
	case PLAKAR_TYPE_SOCKET: return "socket";
	default: return "unknown";
	}
}

std::string entry_json(const plakar_entry *e, std::string_view path)
{
	JsonObject o;
	o.str("path", path).str("name", plakar_entry_name(e)).str("type", type_name(plakar_entry_type(e)));
	o.unum("mode", plakar_entry_mode(e) & 07777).unum("uid", plakar_entry_uid(e)).unum("gid", plakar_entry_gid(e));
	o.str("user", plakar_entry_username(e)).str("group", plakar_entry_groupname(e));
	o.unum("size", plakar_entry_size(e)).num("mtime_ns", plakar_entry_mtime(e));
	o.str("mtime", format_time(plakar_entry_mtime(e))).unum("nlink", plakar_entry_nlink(e));
	if (plakar_entry_type(e) == PLAKAR_TYPE_SYMLINK)
		o.str("target", plakar_entry_symlink(e));
	if (*plakar_entry_error(e))
		o.str("error", plakar_entry_error(e));
	return o.done();
}

} // namespace plakar::cli
