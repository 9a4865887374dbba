// Fuzz target for directory nodes and their entries (snapshot/codec.h): decode_tree_node
// refuses malformed nodes and entries, and names that do not strictly increase, with
// Code::Corrupt or Code::Version; what it accepts has unique, sorted, safe names.
#include <cstdlib>

#include "common.h"
#include "samples.h"

using namespace plakar;

std::vector<Bytes> fuzz_seeds()
{
	auto e = fuzz::sample_entries();
	std::vector<TreeNodeRef> kids{{"a", Id::from(Bytes(32, 1))}, {"m", Id::from(Bytes(32, 2))}};
	return {encode_leaf(e.data(), e.size()), encode_leaf(nullptr, 0), encode_inner(kids.data(), kids.size())};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz::refused_cleanly([&] {
		TreeNode n = decode_tree_node(ByteView(data, size), Id());
		for (size_t i = 0; i < n.entries.size(); i++) {
			const std::string &name = n.entries[i].name;
			if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
			    name.find('\0') != std::string::npos || (i > 0 && !(n.entries[i - 1].name < name)))
				std::abort();
		}
		for (size_t i = 1; i < n.children.size(); i++)
			if (!(n.children[i - 1].first < n.children[i].first))
				std::abort();
	});
	return 0;
}
