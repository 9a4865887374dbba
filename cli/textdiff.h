// Unified diffs of text, for `plakar diff -u`.
#ifndef PLAKAR_CLI_TEXTDIFF_H
#define PLAKAR_CLI_TEXTDIFF_H

#include <optional>
#include <string>
#include <string_view>

namespace plakar::cli {

// True when data looks like text: no NUL byte in its first 8 KiB.
bool looks_like_text(std::string_view data);

// The hunks of a unified diff (3 lines of context) from a to b, without the ---/+++ header;
// "" when equal. nullopt when the changed region is too large to diff line by line (more
// than about 4 million line pairs after the common prefix and suffix are set aside).
std::optional<std::string> unified_diff(std::string_view a, std::string_view b);

} // namespace plakar::cli

#endif
