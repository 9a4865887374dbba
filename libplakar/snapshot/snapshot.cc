#include "snapshot/snapshot.h"

#include <algorithm>

#include "base/error.h"
#include "crypto/crypto.h"
#include "repository/repository.h"

namespace plakar {

namespace {
constexpr uint8_t kHeaderVersion = 1;

std::string dashed(const std::string &h)
{
	return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

std::string undashed(const std::string &s)
{
	std::string out;
	for (char c : s)
		if (c != '-')
			out.push_back(char(std::tolower(static_cast<unsigned char>(c))));
	return out;
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

std::array<uint8_t, 16> new_snapshot_id()
{
	std::array<uint8_t, 16> id;
	crypto::random_bytes(id.data(), id.size());
	id[6] = (id[6] & 0x0f) | 0x40;
	id[8] = (id[8] & 0x3f) | 0x80;
	return id;
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

void store_snapshot(Repository &repo, const SnapshotHeader &h) { repo.put_snapshot(h.id_string(), h.encode()); }

SnapshotHeader load_snapshot(Repository &repo, const std::string &name)
{
	return SnapshotHeader::decode(repo.get_snapshot(name), name);
}

std::string resolve_snapshot(Repository &repo, const std::string &prefix)
{
	std::string want = undashed(prefix);
	if (want.empty())
		fail(Code::Invalid, "empty snapshot id");
	for (char c : want)
		if (!std::isxdigit(static_cast<unsigned char>(c)))
			fail(Code::Invalid, "malformed snapshot id: " + prefix);
	std::vector<std::string> hits;
	for (const auto &n : repo.list_snapshots()) {
		std::string u = undashed(n);
		if (u.size() == 32 && u.compare(0, want.size(), want) == 0)
			hits.push_back(n);
	}
	if (hits.empty())
		fail(Code::NotFound, "no snapshot matches " + prefix);
	if (hits.size() > 1)
		fail(Code::Ambiguous, "snapshot prefix " + prefix + " is ambiguous (" + std::to_string(hits.size()) + " matches)");
	return hits[0];
}

std::vector<SnapshotHeader> list_snapshots(Repository &repo, std::vector<std::string> *unreadable)
{
	std::vector<SnapshotHeader> out;
	for (const auto &n : repo.list_snapshots()) {
		if (undashed(n).size() != 32)
			continue;
		try {
			out.push_back(load_snapshot(repo, n));
		} catch (const Error &e) {
			if (e.code() != Code::Corrupt && e.code() != Code::Version)
				throw; // the store failing is not the header's fault
			if (unreadable)
				unreadable->push_back(e.what());
		}
	}
	std::sort(out.begin(), out.end(), [](const SnapshotHeader &a, const SnapshotHeader &b) {
		return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.id < b.id;
	});
	return out;
}

std::optional<SnapshotHeader> find_parent(Repository &repo, const std::vector<std::string> &paths,
                                          const std::string &hostname)
{
	std::optional<SnapshotHeader> best;
	for (auto &h : list_snapshots(repo))
		if (h.paths == paths && h.hostname == hostname && repo.has_blob(h.root.tree))
			best = std::move(h); // sorted oldest first: the last match is the latest
	return best;
}

std::vector<std::string> split_path(const std::string &path)
{
	std::vector<std::string> parts;
	size_t i = 0;
	while (i <= path.size()) {
		size_t j = path.find('/', i);
		if (j == std::string::npos)
			j = path.size();
		std::string c = path.substr(i, j - i);
		if (c == "..")
			fail(Code::Invalid, "'..' is not allowed in a snapshot path: " + path);
		if (!c.empty() && c != ".")
			parts.push_back(std::move(c));
		i = j + 1;
	}
	return parts;
}

Entry lookup(Repository &repo, const SnapshotHeader &h, const std::string &path)
{
	Entry cur = h.root;
	std::string at;
	for (const auto &c : split_path(path)) {
		at += "/" + c;
		if (cur.type != EntryType::Directory || !cur.has_tree)
			fail(Code::NotFound, at + ": not found in snapshot");
		Entry next;
		if (!find_in_directory(repo, cur.tree, c, next))
			fail(Code::NotFound, at + ": not found in snapshot");
		cur = std::move(next);
	}
	return cur;
}

} // namespace plakar
