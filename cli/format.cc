#include "format.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace plakar::cli {

std::string humanize_bytes(uint64_t n) {
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
	char buf[32];
	if (n < 1000) {
		std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
		return buf;
	}
	std::size_t unit = 1;
	double value = static_cast<double>(n) / 1000.0;
	// Move up while the value would print as 1000 or more in this unit.
	while (unit + 1 < std::size(units) && std::round(value) >= 1000.0) {
		value /= 1000.0;
		++unit;
	}
	double tenths = std::round(value * 10.0) / 10.0;
	if (tenths < 10.0 && tenths != std::floor(tenths))
		std::snprintf(buf, sizeof buf, "%.1f %s", tenths, units[unit]);
	else
		std::snprintf(buf, sizeof buf, "%.0f %s", std::round(value), units[unit]);
	return buf;
}

std::string format_time(int64_t ns) {
	int64_t secs = ns / 1000000000;
	if (ns % 1000000000 < 0)
		--secs; // round toward the past, like the second hand of a clock
	std::time_t t = static_cast<std::time_t>(secs);
	std::tm tm{};
	if (gmtime_r(&t, &tm) == nullptr)
		return "0000-00-00T00:00:00Z"; // beyond what gmtime can represent
	char buf[64];
	std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

std::string mode_string(char type_char, uint32_t mode) {
	std::string s(10, '-');
	s[0] = type_char;
	static const char rwx[] = "rwxrwxrwx";
	for (int i = 0; i < 9; ++i)
		if (mode & (0400u >> i))
			s[1 + i] = rwx[i];
	auto special = [&](int pos, uint32_t bit, char set_exec, char set_noexec) {
		if (mode & bit)
			s[pos] = (s[pos] == '-') ? set_noexec : set_exec;
	};
	special(3, 04000, 's', 'S'); // set-user-id
	special(6, 02000, 's', 'S'); // set-group-id
	special(9, 01000, 't', 'T'); // sticky
	return s;
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when it is invalid (overlong forms,
// surrogates and code points above U+10FFFF are invalid).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
	auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
	unsigned char c = byte(i);
	std::size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	else if (c >= 0xC2 && c <= 0xDF)
		len = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (i + len > s.size())
		return 0;
	for (std::size_t k = 1; k < len; ++k) {
		if ((byte(i + k) & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (byte(i + k) & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

void append_hex(std::string &out, unsigned char c) {
	static const char digits[] = "0123456789abcdef";
	out += "\\x";
	out += digits[c >> 4];
	out += digits[c & 0xF];
}

} // namespace

namespace {

std::string escape(std::string_view name, bool escape_backslash) {
	std::string out;
	out.reserve(name.size());
	for (std::size_t i = 0; i < name.size();) {
		unsigned char c = static_cast<unsigned char>(name[i]);
		if (c == '\\' && escape_backslash) {
			out += "\\\\";
			++i;
			continue;
		}
		switch (c) {
		case '\n': out += "\\n"; ++i; continue;
		case '\t': out += "\\t"; ++i; continue;
		case '\r': out += "\\r"; ++i; continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7F) {
			append_hex(out, c);
			++i;
			continue;
		}
		std::size_t len = utf8_sequence_length(name, i);
		if (len == 0) {
			append_hex(out, c);
			++i;
			continue;
		}
		// C1 controls (U+0080..U+009F) are valid UTF-8 but move terminals around.
		if (len == 2 && c == 0xC2 && static_cast<unsigned char>(name[i + 1]) < 0xA0) {
			append_hex(out, c);
			append_hex(out, static_cast<unsigned char>(name[i + 1]));
			i += 2;
			continue;
		}
		out.append(name.substr(i, len));
		i += len;
	}
	return out;
}

} // namespace

std::string escape_name(std::string_view name) { return escape(name, true); }

std::string escape_message(std::string_view message) { return escape(message, false); }

} // namespace plakar::cli
