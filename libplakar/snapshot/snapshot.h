// Snapshot headers and the read side of a snapshot: listing, prefix resolution, path lookup.
#pragma once

#include <array>
#include <optional>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "snapshot/tree.h"

namespace plakar {

class Repository;

struct SnapshotHeader {
	std::array<uint8_t, 16> id{};
	int64_t time_ns = 0;
	std::string hostname, username, command_line;
	std::vector<std::string> paths, tags;
	uint64_t files = 0, directories = 0, size = 0;
	Entry root; // the "/" directory
	std::vector<std::pair<std::string, std::string>> errors; // path, message

	std::string id_string() const; // "99e53a9c-e503-4c32-8622-924bf966f15b", also the store name
	Bytes encode() const;
	static SnapshotHeader decode(ByteView body, const std::string &name);
};

std::array<uint8_t, 16> new_snapshot_id();

// Resolves an id or unique prefix (dashes optional, any case) to a store name.
// Throws Code::NotFound, Code::Ambiguous, Code::Invalid (not hex).
std::string resolve_snapshot(Repository &repo, const std::string &prefix);
SnapshotHeader load_snapshot(Repository &repo, const std::string &name);
// Every snapshot, oldest first (time, then id). A header that cannot be read (malformed,
// failed authentication, unknown version: any writer of the store can add one) is left out,
// and named in unreadable ("snapshot ID: why") when given: one bad header never hides the
// others, nor stops a push looking for its parent.
std::vector<SnapshotHeader> list_snapshots(Repository &repo, std::vector<std::string> *unreadable = nullptr);
void store_snapshot(Repository &repo, const SnapshotHeader &h);
// The latest snapshot of exactly these paths taken on this host, if any (the parent a push
// compares against).
std::optional<SnapshotHeader> find_parent(Repository &repo, const std::vector<std::string> &paths,
                                          const std::string &hostname);

// What `info` shows of a repository: its settings, the index's counts, the snapshots' sizes.
struct RepositoryInfo {
	uint64_t snapshots = 0;
	uint64_t packs = 0;
	uint64_t data_blobs = 0, meta_blobs = 0; // file chunks; directory nodes and chunk lists
	uint64_t stored_bytes = 0;               // all blobs as stored
	uint64_t data_bytes = 0;                 // plaintext bytes of the distinct chunks
	uint64_t logical_bytes = 0;              // sum of the snapshots' sizes
};
// Loads the index and reads every snapshot header, under the handle's reader lock.
RepositoryInfo describe_repository(Repository &repo);

// Splits "/a/b/" into {"a", "b"}; refuses "..". An empty path is the root.
std::vector<std::string> split_path(const std::string &path);
// Finds the entry at path (Code::NotFound when absent).
Entry lookup(Repository &repo, const SnapshotHeader &h, const std::string &path);

} // namespace plakar
