// The filesystem view of a snapshot (docs/format.md, "Directory trees").
//
// A directory is stored as content-addressed tree blobs: one leaf node holding the entries
// sorted by name, or, past kLeafMax entries, leaves under index nodes (first name + child id),
// so no blob grows without bound and a lookup reads only the nodes on its path. An unchanged
// directory produces the same blobs, which deduplicate to nothing in the next snapshot.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/id.h"

namespace plakar {

class Repository;

enum class EntryType : uint8_t { File = 1, Directory = 2, Symlink = 3, Fifo = 4, CharDev = 5, BlockDev = 6, Socket = 7 };

struct ChunkRef {
	Id id;
	uint32_t len;
};

struct Entry {
	std::string name;
	EntryType type = EntryType::File;
	uint32_t mode = 0;
	uint32_t uid = 0, gid = 0;
	std::string uname, gname;
	uint64_t size = 0;
	int64_t mtime_ns = 0, ctime_ns = 0;
	uint64_t ino = 0, dev = 0, nlink = 1, rdev = 0;
	std::string target; // symlink target
	std::vector<std::pair<std::string, std::string>> xattrs;
	// Content: files hold chunks inline (small files) or in a chunk-list blob; directories hold
	// the id of their top tree node.
	std::vector<ChunkRef> chunks;
	bool has_list = false;
	Id list;
	bool has_tree = false;
	Id tree;
	std::string error; // recorded at push time: the content is missing

	void encode(Writer &w) const;
	// allow_root: accept the name "/" (only the root entry of a snapshot header has it).
	static Entry decode(Reader &r, bool allow_root = false);
};

constexpr size_t kInlineChunks = 16;
constexpr size_t kLeafMax = 2048;

// Stores a directory's entries (sorted by name) as tree blobs; returns the top node's id.
Id store_directory(Repository &repo, const std::vector<Entry> &entries);
// The same in steps, for a directory built leaf by leaf: each run of kLeafMax entries (the last
// one shorter) is a leaf; store_levels() stores the inner nodes above the leaves and returns
// the top node's id (a single leaf is its own top).
struct TreeNodeRef {
	std::string first; // the first name under the node
	Id id;
};
Id store_leaf(Repository &repo, const Entry *entries, size_t n);
Id store_levels(Repository &repo, std::vector<TreeNodeRef> leaves);
// Stores a file's chunk list, inline or as a chunk-list blob, into e.
void set_chunks(Repository &repo, Entry &e, std::vector<ChunkRef> chunks);
// The chunks of a file entry (reads the chunk-list blob when there is one).
// from_store: read the chunk-list blob from the store, not the local cache (check).
std::vector<ChunkRef> file_chunks(Repository &repo, const Entry &e, bool from_store = false);

// Streams the entries of a directory in name order, one node at a time: memory stays bounded
// by one leaf (2048 entries) plus the path of inner nodes, whatever the directory's size.
// Names strictly increase across the whole directory (a duplicate or out-of-order name, in a
// node or across nodes, fails with Code::Corrupt naming the node), so no name is seen twice.
class DirIterator {
public:
	// from_store: read every node from the store, not the local cache (check).
	DirIterator(Repository &repo, const Id &tree, bool from_store = false);
	// Called with the id of each node just before it is read (check counts and verifies them).
	std::function<void(const Id &)> on_node;
	// The next entry, or false at the end.
	bool next(Entry &out);

private:
	struct Level {
		std::vector<TreeNodeRef> children;
		size_t next = 0;
		bool top = false; // the directory's top node: no parent names its first entry
	};
	Repository &repo_;
	bool from_store_;
	std::vector<Level> stack_;
	std::vector<Entry> leaf_;
	size_t pos_ = 0;
	std::string last_; // the name returned last: each one must be greater
	bool have_last_ = false;
};

// Finds name in the directory whose top node is tree; false when absent.
bool find_in_directory(Repository &repo, const Id &tree, const std::string &name, Entry &out);
// Calls fn for every entry of the directory, in name order; fn returns false to stop.
void for_each_entry(Repository &repo, const Id &tree, const std::function<bool(Entry &)> &fn);

} // namespace plakar
