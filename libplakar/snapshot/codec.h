// The codecs of snapshot objects (docs/format.md): snapshot headers, directory nodes and their
// entries, chunk lists and gc plans. Pure functions over bytes, and the only code that reads
// these objects' plaintext, each decoder fuzzed (tests/fuzz). Decoders throw Code::Corrupt
// (or Code::Version for an unknown version), nothing else, whatever the bytes. Entry::encode
// and decode and SnapshotHeader::encode and decode are defined here too.
#pragma once

#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/id.h"
#include "snapshot/snapshot.h"
#include "snapshot/tree.h"

namespace plakar {

// A directory node: a leaf holds entries, an inner node its children. decode_tree_node
// refuses names that do not strictly increase (id names the node in messages).
struct TreeNode {
	bool leaf = true;
	std::vector<Entry> entries;
	std::vector<TreeNodeRef> children;
};
Bytes encode_leaf(const Entry *entries, size_t n);
Bytes encode_inner(const TreeNodeRef *children, size_t n);
TreeNode decode_tree_node(ByteView body, const Id &id);

// A file's chunks, when they do not fit inline in its entry.
Bytes encode_chunk_list(const std::vector<ChunkRef> &chunks);
std::vector<ChunkRef> decode_chunk_list(ByteView body);

// gc's record of condemned packs and superseded index segments: out of the index, deleted
// once every push and reader that was running then (the witnesses) has ended. Version 1 plans
// (packs only) are read too.
struct GcPlan {
	std::string name;
	int64_t time_ns = 0;
	std::vector<std::string> witnesses;
	std::vector<Id> packs;
	std::vector<std::string> segments;
};
Bytes encode_gc_plan(const GcPlan &p);
GcPlan decode_gc_plan(const std::string &name, ByteView body);

} // namespace plakar
