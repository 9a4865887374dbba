// The codecs of snapshot objects (docs/format.md): pure functions over bytes, fuzzed in
// tests/fuzz. See snapshot/codec.h.
#include "snapshot/codec.h"

#include "base/error.h"

namespace plakar {

namespace {
constexpr uint8_t kNodeVersion = 1;
constexpr uint8_t kHeaderVersion = 1;
constexpr uint8_t kPlanVersion = 2;
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


std::string dashed(const std::string &h)
{
	return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

void encode_list(Writer &w, const std::vector<std::string> &v)
{
	w.varint(v.size());
	for (const auto &s : v)
		w.str(s);
}

std::vector<std::string> decode_list(Reader &r)
{
	std::vector<std::string> v(r.count(1));
	for (auto &s : v)
		s = r.str();
	return v;
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
[[noreturn]] void unordered(const Id &id)
{
	fail(Code::Corrupt, "directory node " + id.hex().substr(0, 16) + " has unsorted or duplicate names");
}

} // namespace

Bytes encode_leaf(const Entry *entries, size_t n)
{
	Writer w;
	w.u8(kNodeVersion);
	w.u8(kLeaf);
	w.varint(n);
	for (size_t j = 0; j < n; j++)
		entries[j].encode(w);
	return w.take();
}

Bytes encode_inner(const TreeNodeRef *children, size_t n)
{
	Writer w;
	w.u8(kNodeVersion);
	w.u8(kInner);
	w.varint(n);
	for (size_t j = 0; j < n; j++) {
		w.str(children[j].first);
		w.raw(children[j].id.view());
	}
	return w.take();
}

// Names strictly increase inside a node, so a directory never holds one name twice: no later
// entry can stand in for an earlier one (a symlink replacing the directory restore is filling).
TreeNode decode_tree_node(ByteView body, const Id &id)
{
	Reader r(body, "directory node");
	if (r.u8() != kNodeVersion)
		fail(Code::Version, "directory node version is not supported");
	TreeNode n;
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

Bytes encode_chunk_list(const std::vector<ChunkRef> &chunks)
{
	Writer w;
	encode_chunks(w, chunks);
	return w.take();
}

std::vector<ChunkRef> decode_chunk_list(ByteView body)
{
	Reader r(body, "chunk list");
	auto out = decode_chunks(r);
	r.expect_done();
	return out;
}

Bytes encode_gc_plan(const GcPlan &p)
{
	Writer w;
	w.u8(kPlanVersion);
	w.u64(uint64_t(p.time_ns));
	w.varint(p.witnesses.size());
	for (const auto &s : p.witnesses)
		w.str(s);
	w.varint(p.packs.size());
	for (const auto &id : p.packs)
		w.raw(id.view());
	w.varint(p.segments.size());
	for (const auto &s : p.segments)
		w.str(s);
	return w.take();
}

GcPlan decode_gc_plan(const std::string &name, ByteView body)
{
	Reader r(body, "gc plan");
	uint8_t version = r.u8();
	if (version != 1 && version != kPlanVersion)
		fail(Code::Version, "gc plan " + name + ": unknown version");
	GcPlan p;
	p.name = name;
	p.time_ns = int64_t(r.u64());
	size_t nw = r.count(1);
	for (size_t i = 0; i < nw; i++)
		p.witnesses.push_back(r.str());
	size_t np = r.count(32);
	for (size_t i = 0; i < np; i++)
		p.packs.push_back(Id::from(r.raw(32)));
	if (version >= 2) {
		size_t ns = r.count(1);
		for (size_t i = 0; i < ns; i++)
			p.segments.push_back(r.str());
	}
	r.expect_done();
	return p;
}

std::string SnapshotHeader::id_string() const { return dashed(hex_encode(ByteView(id.data(), id.size()))); }

Bytes SnapshotHeader::encode() const
{
	Writer w;
	w.u8(kHeaderVersion);
	w.raw(id.data(), id.size());
	w.svarint(time_ns);
	w.str(hostname);
	w.str(username);
	w.str(command_line);
	encode_list(w, paths);
	encode_list(w, tags);
	w.varint(files);
	w.varint(directories);
	w.varint(size);
	root.encode(w);
	w.varint(errors.size());
	for (const auto &[p, m] : errors) {
		w.str(p);
		w.str(m);
	}
	return w.take();
}

SnapshotHeader SnapshotHeader::decode(ByteView body, const std::string &name)
{
	Reader r(body, "snapshot header");
	if (r.u8() != kHeaderVersion)
		fail(Code::Version, "snapshot " + name + ": header version is not supported");
	SnapshotHeader h;
	r.raw(h.id.data(), h.id.size());
	h.time_ns = r.svarint();
	h.hostname = r.str();
	h.username = r.str();
	h.command_line = r.str();
	h.paths = decode_list(r);
	h.tags = decode_list(r);
	h.files = r.varint();
	h.directories = r.varint();
	h.size = r.varint();
	h.root = Entry::decode(r, true);
	h.errors.resize(r.count(2));
	for (auto &[p, m] : h.errors) {
		p = r.str();
		m = r.str();
	}
	r.expect_done();
	if (h.id_string() != name)
		fail(Code::Corrupt, "snapshot " + name + ": header names another snapshot (replayed or renamed)");
	if (h.root.type != EntryType::Directory || !h.root.has_tree)
		fail(Code::Corrupt, "snapshot " + name + ": malformed root");
	return h;
}

} // namespace plakar
