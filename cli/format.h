// Text formatting shared by the commands: sizes, times, modes and safe names.
// Pure functions, no I/O; the exact formats are documented in docs/cli.md.
#ifndef PLAKAR_CLI_FORMAT_H
#define PLAKAR_CLI_FORMAT_H

#include <cstdint>
#include <string>
#include <string_view>

namespace plakar::cli {

// A byte count in SI units, base 1000: "0 B", "512 B", "4.1 kB", "11 MB", "1.2 GB".
// Below 1000 bytes: the exact count. Above, the value is rounded to one decimal while it is
// below 10 (the decimal is dropped when it is 0: "2 MB"), to an integer from 10 on; a value
// that would round to 1000 moves to the next unit.
std::string humanize_bytes(uint64_t n);

// RFC 3339 in UTC, to the second: "2021-11-27T00:12:04Z". ns counts from the epoch; times
// before it round down to the previous second.
std::string format_time(int64_t ns);

// An `ls -l` mode string ("drwxr-xr-x", "-rw-r--r--", "lrwxrwxrwx", with s/S/t/T for the
// set-id and sticky bits). type_char is the first character ('-', 'd', 'l', 'p', 'c', 'b', 's').
std::string mode_string(char type_char, uint32_t mode);

// Escapes a name (or path) so it prints as one unambiguous line: valid UTF-8 passes through;
// '\\' becomes "\\\\", '\n' "\\n", '\t' "\\t", '\r' "\\r", other control bytes (C0, DEL and the
// C1 range) and every byte of an invalid UTF-8 sequence become "\\xNN".
std::string escape_name(std::string_view name);

// The same for error messages, except that '\\' is left alone: plakar_error_last() already
// escapes control characters this way, and its escapes must not be doubled.
std::string escape_message(std::string_view message);

} // namespace plakar::cli

#endif
