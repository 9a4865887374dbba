#include "snapshot/tree.h"

#include <algorithm>

#include "base/error.h"
#include "repository/repository.h"
#include "snapshot/codec.h"

namespace plakar {

namespace {
Id put_node(Repository &repo, const Bytes &node)
{
	Id id = repo.blob_id(node);
	repo.put_blob(BlobType::Tree, id, node);
	return id;
}
} // namespace

Id store_leaf(Repository &repo, const Entry *entries, size_t n)
{
	return put_node(repo, encode_leaf(entries, n));
}

Id store_levels(Repository &repo, std::vector<TreeNodeRef> level)
{
	while (level.size() > 1) {
		std::vector<TreeNodeRef> up;
		for (size_t i = 0; i < level.size(); i += kLeafMax) {
			size_t end = std::min(level.size(), i + kLeafMax);
			up.push_back({level[i].first, put_node(repo, encode_inner(level.data() + i, end - i))});
		}
		level = std::move(up);
	}
	return level.at(0).id;
}

Id store_directory(Repository &repo, const std::vector<Entry> &entries)
{
	// Leaves of at most kLeafMax entries, then inner levels until one node remains.
	std::vector<TreeNodeRef> level;
	for (size_t i = 0; i < entries.size() || i == 0; i += kLeafMax) {
		size_t end = std::min(entries.size(), i + kLeafMax);
		level.push_back({i < entries.size() ? entries[i].name : std::string(),
		                 store_leaf(repo, entries.data() + i, end - i)});
		if (entries.empty())
			break;
	}
	return store_levels(repo, std::move(level));
}

void set_chunks(Repository &repo, Entry &e, std::vector<ChunkRef> chunks)
{
	if (chunks.size() <= kInlineChunks) {
		e.chunks = std::move(chunks);
		return;
	}
	Bytes list = encode_chunk_list(chunks);
	e.list = repo.blob_id(list);
	repo.put_blob(BlobType::ChunkList, e.list, list);
	e.has_list = true;
}

std::vector<ChunkRef> file_chunks(Repository &repo, const Entry &e, bool from_store)
{
	if (!e.has_list)
		return e.chunks;
	return decode_chunk_list(repo.get_blob(e.list, BlobType::ChunkList, from_store));
}

namespace {
using Node = TreeNode;

Node read_node(Repository &repo, const Id &id, bool from_store = false)
{
	return decode_tree_node(repo.get_blob(id, BlobType::Tree, from_store), id);
}

[[noreturn]] void unordered(const Id &id)
{
	fail(Code::Corrupt, "directory node " + id.hex().substr(0, 16) + " has unsorted or duplicate names");
}

// A node below an inner node starts with the name its parent gives for it and is not empty,
// so a lookup (which descends by these names) finds what a listing shows.
void check_first(const Node &n, const Id &id, const std::string &first)
{
	const std::string *have = n.leaf ? (n.entries.empty() ? nullptr : &n.entries[0].name) : &n.children[0].first;
	if (!have || *have != first)
		fail(Code::Corrupt, "directory node " + id.hex().substr(0, 16) + " does not start where its parent says");
}
} // namespace

DirIterator::DirIterator(Repository &repo, const Id &tree, bool from_store) : repo_(repo), from_store_(from_store)
{
	stack_.push_back(Level{{{std::string(), tree}}, 0, true});
}

bool DirIterator::next(Entry &out)
{
	while (pos_ == leaf_.size()) {
		// Descend from the deepest level that still has children to visit.
		while (!stack_.empty() && stack_.back().next == stack_.back().children.size())
			stack_.pop_back();
		if (stack_.empty())
			return false;
		if (stack_.size() > 16)
			fail(Code::Corrupt, "directory tree is too deep");
		Level &at = stack_.back();
		bool top = at.top;
		TreeNodeRef ref = at.children[at.next++];
		if (on_node)
			on_node(ref.id);
		Node n = read_node(repo_, ref.id, from_store_);
		if (!top)
			check_first(n, ref.id, ref.first);
		if (n.leaf) {
			// Across nodes too: every name follows the one before it.
			if (!n.entries.empty() && have_last_ && !(last_ < n.entries[0].name))
				unordered(ref.id);
			leaf_ = std::move(n.entries);
			pos_ = 0;
		} else {
			stack_.push_back(Level{std::move(n.children), 0, false});
		}
	}
	out = std::move(leaf_[pos_++]);
	last_ = out.name;
	have_last_ = true;
	return true;
}

bool find_in_directory(Repository &repo, const Id &tree, const std::string &name, Entry &out)
{
	Id at = tree;
	std::string first; // what the parent says the node starts with (below the top)
	for (int depth = 0; depth < 16; depth++) {
		Node n = read_node(repo, at);
		if (depth > 0)
			check_first(n, at, first);
		if (n.leaf) {
			auto it = std::lower_bound(n.entries.begin(), n.entries.end(), name,
			                           [](const Entry &e, const std::string &k) { return e.name < k; });
			if (it == n.entries.end() || it->name != name)
				return false;
			out = std::move(*it);
			return true;
		}
		// The last child whose first name is <= name.
		auto it = std::upper_bound(n.children.begin(), n.children.end(), name,
		                           [](const std::string &k, const TreeNodeRef &c) { return k < c.first; });
		if (it == n.children.begin())
			return false;
		at = std::prev(it)->id;
		first = std::move(std::prev(it)->first);
	}
	fail(Code::Corrupt, "directory tree is too deep");
}

void for_each_entry(Repository &repo, const Id &tree, const std::function<bool(Entry &)> &fn)
{
	DirIterator it(repo, tree);
	Entry e;
	while (it.next(e))
		if (!fn(e))
			return;
}

} // namespace plakar
