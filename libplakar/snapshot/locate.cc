#include "snapshot/locate.h"

#include "repository/lock.h"

#include <fnmatch.h>

#include "base/error.h"
#include "crypto/crypto.h"

namespace plakar {

namespace {

Id memo_key(const Id &tree, const std::string &prefix, bool full_path)
{
	if (!full_path)
		return tree;
	Bytes b(tree.b.begin(), tree.b.end());
	b.insert(b.end(), prefix.begin(), prefix.end());
	return crypto::sha256(b);
}

// Fills memo for the directory `tree` found at `prefix`; returns its key, and whether
// anything below it matched.
bool search(Repository &repo, const Id &tree, const std::string &prefix, const LocateQuery &q, LocateMemo &memo,
            Id &key, int depth)
{
	if (depth > 4096)
		fail(Code::Corrupt, prefix + ": directory nesting too deep");
	key = memo_key(tree, prefix, q.full_path);
	if (auto it = memo.dirs.find(key); it != memo.dirs.end())
		return !it->second.empty();
	std::vector<LocateMemo::Item> items;
	DirIterator it(repo, tree);
	Entry e;
	while (it.next(e)) {
		std::string path = prefix + "/" + e.name;
		LocateMemo::Item item;
		item.matched = ::fnmatch(q.pattern.c_str(), (q.full_path ? path : e.name).c_str(), 0) == 0;
		if (e.type == EntryType::Directory && e.has_tree)
			item.has_child = search(repo, e.tree, path, q, memo, item.child, depth + 1);
		if (item.matched || item.has_child) {
			item.name = e.name;
			items.push_back(std::move(item));
		}
	}
	bool any = !items.empty();
	memo.dirs[key] = std::move(items);
	return any;
}

void emit(const LocateMemo &memo, const Id &key, const std::string &prefix,
          const std::function<void(const std::string &)> &fn)
{
	auto it = memo.dirs.find(key);
	if (it == memo.dirs.end())
		return;
	for (const auto &item : it->second) {
		std::string path = prefix + "/" + item.name;
		if (item.matched)
			fn(path);
		if (item.has_child)
			emit(memo, item.child, path, fn);
	}
}

} // namespace

void locate(Repository &repo, const SnapshotHeader &h, const LocateQuery &q, LocateMemo &memo,
            const std::function<void(const std::string &)> &fn)
{
	if (!h.root.has_tree)
		return;
	Id key;
	search(repo, h.root.tree, "", q, memo, key, 0);
	emit(memo, key, "", fn);
}

void locate_snapshots(Repository &repo, const std::vector<std::string> &snapshots, const LocateQuery &q,
                      const std::function<void(const SnapshotHeader &, const std::string &)> &fn)
{
	auto reading = protect_reads(repo); // before any header is read
	std::vector<SnapshotHeader> targets;
	for (const auto &s : snapshots)
		targets.push_back(load_snapshot(repo, resolve_snapshot(repo, s)));
	if (snapshots.empty())
		targets = list_snapshots(repo);
	LocateMemo memo;
	for (const auto &h : targets)
		locate(repo, h, q, memo, [&](const std::string &path) { fn(h, path); });
}

} // namespace plakar
