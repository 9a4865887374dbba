#include "textdiff.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace plakar::cli {

namespace {

std::vector<std::string_view> split_lines(std::string_view s)
{
	std::vector<std::string_view> out;
	size_t i = 0;
	while (i < s.size()) {
		size_t j = s.find('\n', i);
		size_t end = j == std::string_view::npos ? s.size() : j + 1;
		out.push_back(s.substr(i, end - i));
		i = end;
	}
	return out;
}

enum class Op { Keep, Del, Add };
struct Edit {
	Op op;
	size_t a, b; // line numbers (0-based) in a and b
};

void append_line(std::string &out, char tag, std::string_view line)
{
	out.push_back(tag);
	out.append(line);
	if (line.empty() || line.back() != '\n')
		out += "\n\\ No newline at end of file\n";
}

} // namespace

bool looks_like_text(std::string_view data)
{
	return data.substr(0, 8192).find('\0') == std::string_view::npos;
}

std::optional<std::string> unified_diff(std::string_view a_text, std::string_view b_text)
{
	auto a = split_lines(a_text), b = split_lines(b_text);
	size_t pre = 0;
	while (pre < a.size() && pre < b.size() && a[pre] == b[pre])
		pre++;
	size_t suf = 0;
	while (suf < a.size() - pre && suf < b.size() - pre && a[a.size() - 1 - suf] == b[b.size() - 1 - suf])
		suf++;
	size_t n = a.size() - pre - suf, m = b.size() - pre - suf;
	if (n == 0 && m == 0)
		return std::string();
	if (uint64_t(n + 1) * uint64_t(m + 1) > 4'000'000)
		return std::nullopt;
	// Longest common subsequence of the middle parts (dynamic programming, from the end).
	std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
	auto at = [&](size_t i, size_t j) -> uint32_t & { return lcs[i * (m + 1) + j]; };
	for (size_t i = n; i-- > 0;)
		for (size_t j = m; j-- > 0;)
			at(i, j) = a[pre + i] == b[pre + j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
	std::vector<Edit> edits;
	for (size_t i = 0; i < pre; i++)
		edits.push_back({Op::Keep, i, i});
	size_t i = 0, j = 0;
	while (i < n || j < m) {
		if (i < n && j < m && a[pre + i] == b[pre + j]) {
			edits.push_back({Op::Keep, pre + i, pre + j});
			i++, j++;
		} else if (i < n && (j == m || at(i + 1, j) >= at(i, j + 1))) {
			edits.push_back({Op::Del, pre + i, pre + j}); // deletions first, as diff(1) prints them
			i++;
		} else {
			edits.push_back({Op::Add, pre + i, pre + j});
			j++;
		}
	}
	for (size_t k = 0; k < suf; k++)
		edits.push_back({Op::Keep, pre + n + k, pre + m + k});

	// Group the changes into hunks with 3 lines of context.
	const size_t ctx = 3;
	std::string out;
	size_t e = 0;
	while (e < edits.size()) {
		while (e < edits.size() && edits[e].op == Op::Keep)
			e++;
		if (e == edits.size())
			break;
		size_t start = e >= ctx ? e - ctx : 0;
		size_t end = e;
		// Extend while the next change is within 2*ctx kept lines.
		for (;;) {
			while (end < edits.size() && edits[end].op != Op::Keep)
				end++;
			size_t keep = end;
			while (keep < edits.size() && edits[keep].op == Op::Keep && keep - end < 2 * ctx)
				keep++;
			if (keep < edits.size() && edits[keep].op != Op::Keep) {
				end = keep;
				continue;
			}
			end = std::min(edits.size(), end + ctx);
			break;
		}
		size_t a0 = edits[start].a, b0 = edits[start].b, na = 0, nb = 0;
		std::string body;
		for (size_t k = start; k < end; k++) {
			const Edit &ed = edits[k];
			if (ed.op == Op::Keep) {
				append_line(body, ' ', a[ed.a]);
				na++, nb++;
			} else if (ed.op == Op::Del) {
				append_line(body, '-', a[ed.a]);
				na++;
			} else {
				append_line(body, '+', b[ed.b]);
				nb++;
			}
		}
		out += "@@ -" + std::to_string(na ? a0 + 1 : a0) + (na == 1 ? "" : "," + std::to_string(na)) + " +" +
		       std::to_string(nb ? b0 + 1 : b0) + (nb == 1 ? "" : "," + std::to_string(nb)) + " @@\n" + body;
		e = end;
	}
	return out;
}

} // namespace plakar::cli
