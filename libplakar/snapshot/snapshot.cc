#include "snapshot/snapshot.h"

#include <algorithm>

#include "base/error.h"
#include "crypto/crypto.h"
#include "repository/lock.h"
#include "repository/repository.h"

namespace plakar {

namespace {
std::string undashed(const std::string &s)
{
	std::string out;
	for (char c : s)
		if (c != '-')
			out.push_back(char(std::tolower(static_cast<unsigned char>(c))));
	return out;
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

RepositoryInfo describe_repository(Repository &repo)
{
	auto reading = protect_reads(repo); // the index is loaded: no segment goes meanwhile
	auto sum = repo.index_summary();
	RepositoryInfo out;
	out.packs = sum.packs;
	out.data_blobs = sum.blobs[int(BlobType::Chunk)];
	out.meta_blobs = sum.blobs[int(BlobType::Tree)] + sum.blobs[int(BlobType::ChunkList)];
	for (int t = 1; t <= 3; t++)
		out.stored_bytes += sum.stored_bytes[t];
	out.data_bytes = sum.raw_bytes[int(BlobType::Chunk)];
	for (const auto &h : list_snapshots(repo)) {
		out.snapshots++;
		out.logical_bytes += h.size;
	}
	return out;
}

} // namespace plakar
