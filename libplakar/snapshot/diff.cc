#include "snapshot/diff.h"

#include "base/error.h"

namespace plakar {

namespace {

bool same_content(const Entry &a, const Entry &b)
{
	if (a.type == EntryType::Symlink)
		return a.target == b.target;
	if (a.type != EntryType::File)
		return a.rdev == b.rdev;
	if (a.has_list != b.has_list)
		return false;
	if (a.has_list)
		return a.list == b.list;
	if (a.chunks.size() != b.chunks.size())
		return false;
	for (size_t i = 0; i < a.chunks.size(); i++)
		if (a.chunks[i].id != b.chunks[i].id)
			return false;
	return a.error == b.error;
}

unsigned compare(const Entry &a, const Entry &b)
{
	if (a.type != b.type)
		return kChangeType;
	unsigned w = 0;
	if (a.type != EntryType::Directory && !same_content(a, b))
		w |= kChangeContent;
	if ((a.mode & 07777) != (b.mode & 07777))
		w |= kChangeMode;
	if (a.uid != b.uid || a.gid != b.gid)
		w |= kChangeOwner;
	if (a.mtime_ns != b.mtime_ns)
		w |= kChangeMtime;
	if (a.xattrs != b.xattrs)
		w |= kChangeXattrs;
	if (a.type != EntryType::Directory && a.size != b.size)
		w |= kChangeSize;
	return w;
}

std::string join(const std::string &dir, const std::string &name) { return dir == "/" ? "/" + name : dir + "/" + name; }

void walk(Repository &repo, const Entry &a, const Entry &b, const std::string &path,
          const std::function<void(const Change &)> &fn, int depth)
{
	if (depth > 4096)
		fail(Code::Corrupt, path + ": directory nesting too deep");
	unsigned w = compare(a, b);
	if (w)
		fn(Change{ChangeKind::Modified, path, &a, &b, w});
	if (a.type != EntryType::Directory || b.type != EntryType::Directory)
		return;
	if (a.has_tree && b.has_tree && a.tree == b.tree)
		return; // same content-addressed tree: nothing below differs
	DirIterator ia(repo, a.tree), ib(repo, b.tree);
	Entry ea, eb;
	bool ha = a.has_tree && ia.next(ea), hb = b.has_tree && ib.next(eb);
	while (ha || hb) {
		if (ha && (!hb || ea.name < eb.name)) {
			fn(Change{ChangeKind::Removed, join(path, ea.name), &ea, nullptr, 0});
			ha = ia.next(ea);
		} else if (hb && (!ha || eb.name < ea.name)) {
			fn(Change{ChangeKind::Added, join(path, eb.name), nullptr, &eb, 0});
			hb = ib.next(eb);
		} else {
			walk(repo, ea, eb, join(path, ea.name), fn, depth + 1);
			ha = ia.next(ea);
			hb = ib.next(eb);
		}
	}
}

} // namespace

void diff(Repository &repo, const Entry &a, const Entry &b, const std::string &path,
          const std::function<void(const Change &)> &fn)
{
	walk(repo, a, b, path, fn, 0);
}

} // namespace plakar
