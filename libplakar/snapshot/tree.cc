#include "snapshot/tree.h"

#include <algorithm>

#include "base/error.h"
#include "repository/repository.h"

namespace plakar {

namespace {
constexpr uint8_t kNodeVersion = 1;
constexpr uint8_t kLeaf = 0, kInner = 1;
constexpr uint8_t kNoContent = 0, kInline = 1, kList = 2, kTree = 3;

void encode_chunks(Writer &w, const std::vector<ChunkRef> &chunks)
{
	w.varint(chunks.size());
	for (const auto &c : chunks) {
		w.raw(c.id.view());
		w.varint(c.len);
	}
}

std::vector<ChunkRef> decode_chunks(Reader &r)
{
	size_t n = r.count(33);
	std::vector<ChunkRef> out(n);
	for (auto &c : out) {
		c.id = Id::from(r.raw(32));
		uint64_t len = r.varint();
		if (len > UINT32_MAX)
			r.bad();
		c.len = uint32_t(len);
	}
	return out;
}

} // namespace

void Entry::encode(Writer &w) const
{
	w.str(name);
	w.u8(uint8_t(type));
	w.varint(mode);
	w.varint(uid);
	w.varint(gid);
	w.str(uname);
	w.str(gname);
	w.varint(size);
	w.svarint(mtime_ns);
	w.svarint(ctime_ns);
	w.varint(ino);
	w.varint(dev);
	w.varint(nlink);
	w.varint(rdev);
	w.str(target);
	w.varint(xattrs.size());
	for (const auto &[k, v] : xattrs) {
		w.str(k);
		w.str(v);
	}
	if (has_tree) {
		w.u8(kTree);
		w.raw(tree.view());
	} else if (has_list) {
		w.u8(kList);
		w.raw(list.view());
	} else if (!chunks.empty()) {
		w.u8(kInline);
		encode_chunks(w, chunks);
	} else {
		w.u8(kNoContent);
	}
	w.str(error);
}

Entry Entry::decode(Reader &r, bool allow_root)
{
	Entry e;
	e.name = r.str();
	uint8_t t = r.u8();
	if (t < 1 || t > 7)
		r.bad();
	e.type = EntryType(t);
	auto u32 = [&r]() {
		uint64_t v = r.varint();
		if (v > UINT32_MAX)
			r.bad();
		return uint32_t(v);
	};
	e.mode = u32();
	e.uid = u32();
	e.gid = u32();
	e.uname = r.str();
	e.gname = r.str();
	e.size = r.varint();
	e.mtime_ns = r.svarint();
	e.ctime_ns = r.svarint();
	e.ino = r.varint();
	e.dev = r.varint();
	e.nlink = r.varint();
	e.rdev = r.varint();
	e.target = r.str();
	size_t nx = r.count(2);
	e.xattrs.resize(nx);
	for (auto &[k, v] : e.xattrs) {
		k = r.str();
		v = r.str();
	}
	switch (r.u8()) {
	case kNoContent: break;
	case kInline: e.chunks = decode_chunks(r); break;
	case kList:
		e.has_list = true;
		e.list = Id::from(r.raw(32));
		break;
	case kTree:
		e.has_tree = true;
		e.tree = Id::from(r.raw(32));
		break;
	default: r.bad();
	}
	e.error = r.str();
	if (allow_root && e.name == "/")
		return e;
	if (e.name.empty() || e.name.find('/') != std::string::npos || e.name.find('\0') != std::string::npos ||
	    e.name == "." || e.name == "..")
		r.bad();
	return e;
}

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
	Writer w;
	w.u8(kNodeVersion);
	w.u8(kLeaf);
	w.varint(n);
	for (size_t j = 0; j < n; j++)
		entries[j].encode(w);
	return put_node(repo, w.buf());
}

Id store_levels(Repository &repo, std::vector<TreeNodeRef> level)
{
	while (level.size() > 1) {
		std::vector<TreeNodeRef> up;
		for (size_t i = 0; i < level.size(); i += kLeafMax) {
			size_t end = std::min(level.size(), i + kLeafMax);
			Writer w;
			w.u8(kNodeVersion);
			w.u8(kInner);
			w.varint(end - i);
			for (size_t j = i; j < end; j++) {
				w.str(level[j].first);
				w.raw(level[j].id.view());
			}
			up.push_back({level[i].first, put_node(repo, w.buf())});
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
	Writer w;
	encode_chunks(w, chunks);
	e.list = repo.blob_id(w.buf());
	repo.put_blob(BlobType::ChunkList, e.list, w.buf());
	e.has_list = true;
}

std::vector<ChunkRef> file_chunks(Repository &repo, const Entry &e, bool from_store)
{
	if (!e.has_list)
		return e.chunks;
	Bytes b = repo.get_blob(e.list, BlobType::ChunkList, from_store);
	Reader r(b, "chunk list");
	auto out = decode_chunks(r);
	r.expect_done();
	return out;
}

namespace {
// Reads one node: a leaf yields entries, an inner node its children.
struct Node {
	bool leaf;
	std::vector<Entry> entries;
	std::vector<TreeNodeRef> children;
};

[[noreturn]] void unordered(const Id &id)
{
	fail(Code::Corrupt, "directory node " + id.hex().substr(0, 16) + " has unsorted or duplicate names");
}

// Names strictly increase inside a node, so a directory never holds one name twice: no later
// entry can stand in for an earlier one (a symlink replacing the directory restore is filling).
Node read_node(Repository &repo, const Id &id, bool from_store = false)
{
	Bytes b = repo.get_blob(id, BlobType::Tree, from_store);
	Reader r(b, "directory node");
	if (r.u8() != kNodeVersion)
		fail(Code::Version, "directory node version is not supported");
	Node n;
	uint8_t kind = r.u8();
	if (kind == kLeaf) {
		n.leaf = true;
		size_t count = r.count(16);
		n.entries.reserve(count);
		for (size_t i = 0; i < count; i++) {
			n.entries.push_back(Entry::decode(r));
			if (i > 0 && !(n.entries[i - 1].name < n.entries[i].name))
				unordered(id);
		}
	} else if (kind == kInner) {
		n.leaf = false;
		size_t count = r.count(33);
		if (count == 0)
			r.bad();
		for (size_t i = 0; i < count; i++) {
			TreeNodeRef c;
			c.first = r.str();
			c.id = Id::from(r.raw(32));
			if (i > 0 && !(n.children.back().first < c.first))
				unordered(id);
			n.children.push_back(std::move(c));
		}
	} else {
		r.bad();
	}
	r.expect_done();
	return n;
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
