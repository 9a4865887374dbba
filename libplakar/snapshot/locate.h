// Searching snapshots by name.
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "snapshot/snapshot.h"

namespace plakar {

struct LocateQuery {
	std::string pattern;    // a glob (fnmatch): * ? [...]
	bool full_path = false; // match the whole path ("/usr/share/doc/x") instead of the name
};

// Remembers, per directory (tree id, and its path when matching full paths), which of its
// entries matched and which subdirectories hold matches, so that a directory shared by
// several snapshots is read once. Memory grows with the matches, not with the snapshot.
// Keep one per query.
class LocateMemo {
public:
	struct Item {
		std::string name;
		bool matched = false;
		bool has_child = false; // a subdirectory with matches below it
		Id child;               // its memo key
	};
	std::unordered_map<Id, std::vector<Item>, IdHash> dirs;
};

// Calls fn(path) for every entry of the snapshot whose name (or path) matches, in path order.
void locate(Repository &repo, const SnapshotHeader &h, const LocateQuery &q, LocateMemo &memo,
            const std::function<void(const std::string &)> &fn);

// The whole search: in the snapshots named (ids or unique prefixes, all resolved first), or in
// every snapshot, oldest first, with one memo; fn(snapshot, path) for every match. Holds the
// handle's reader lock throughout, so gc deletes nothing the search may still read.
void locate_snapshots(Repository &repo, const std::vector<std::string> &snapshots, const LocateQuery &q,
                      const std::function<void(const SnapshotHeader &, const std::string &)> &fn);

} // namespace plakar
