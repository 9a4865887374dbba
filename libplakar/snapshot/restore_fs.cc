// pull, the target filesystem: every item created or changed relative to its open parent
// directory, never following links (what to do with what is there, clearing the way, metadata,
// special files).
#include "snapshot/restore_internal.h"

namespace plakar::restore_detail {

// What to do at name, per the overwrite policy; st describes what is there (Replace, Skip).
Action Restorer::decide(const Entry &e, int dirfd, const std::string &name, const std::string &dest,
                        struct stat &st)
{
	if (dirfd < 0)
		return Action::Create; // dry run, under a directory that would be created
	if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return Action::Create;
		fail_errno(dest, errno);
	}
	switch (opts_.overwrite) {
	case Overwrite::Always: return Action::Replace;
	case Overwrite::Never: return Action::Skip;
	case Overwrite::IfNewer: return e.mtime_ns > mtime_of(st) ? Action::Replace : Action::Skip;
	case Overwrite::IfChanged: {
		if (!same_type(e, st.st_mode))
			return Action::Replace;
		switch (e.type) {
		case EntryType::File:
			return uint64_t(st.st_size) == e.size && mtime_of(st) == e.mtime_ns ? Action::Skip : Action::Replace;
		case EntryType::Symlink: return read_link_at(dirfd, name) == e.target ? Action::Skip : Action::Replace;
		case EntryType::CharDev:
		case EntryType::BlockDev: return uint64_t(st.st_rdev) == e.rdev ? Action::Skip : Action::Replace;
		default: return Action::Skip;
		}
	}
	}
	return Action::Replace;
}

// Before a non-directory replaces what st describes at name: a directory there is removed when
// empty, or with everything in it under -force; a non-empty one is otherwise kept and the item
// fails. Returns whether the name is free now (false: something that a rename replaces).
bool Restorer::clear_way(int dirfd, const std::string &name, const std::string &dest, const struct stat &st)
{
	if (!S_ISDIR(st.st_mode))
		return false;
	if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) == 0)
		return true;
	if (errno != ENOTEMPTY && errno != EEXIST)
		fail_errno(dest, errno);
	if (!opts_.force)
		fail(Code::Exists, dest + ": a non-empty directory is in the way (not removed without -force)");
	remove_tree_at(dirfd, name, dest);
	return true;
}

// Applies the overwrite policy at name for a non-directory: false when what is there is kept;
// else replace says whether something stays there to be renamed over (a directory in the way
// is removed first), or the name is free.
bool Restorer::make_way(const Entry &e, int dirfd, const std::string &name, const std::string &dest, bool &replace)
{
	struct stat st;
	Action a = decide(e, dirfd, name, dest, st);
	if (a == Action::Skip) {
		skipped++;
		return false;
	}
	replace = a == Action::Replace && !clear_way(dirfd, name, dest, st);
	return true;
}

// Metadata of a directory, through its descriptor. Order matters: xattrs while the item is
// still writable, then owner (chown clears the set-id bits), then mode, then times (every
// change above touches ctime, not mtime).
void Restorer::set_dir_metadata(const Entry &e, int fd, const std::string &dest)
{
	set_file_metadata(e, fd, dest);
}

// The same through the open descriptor of a file just written.
void Restorer::set_file_metadata(const Entry &e, int fd, const std::string &dest)
{
	for (const auto &[k, v] : e.xattrs)
		if (::fsetxattr(fd, k.c_str(), v.data(), v.size(), 0) != 0 && errno != ENOTSUP && errno != EPERM)
			fail_errno(dest + ": setxattr " + k, errno);
	if (root_ && ::fchown(fd, e.uid, e.gid) != 0)
		fail_errno(dest + ": chown", errno);
	if (::fchmod(fd, e.mode & 07777) != 0)
		fail_errno(dest + ": chmod", errno);
	struct timespec ts[2];
	ts[0] = ts[1] = to_timespec(e.mtime_ns);
	if (::futimens(fd, ts) != 0)
		fail_errno(dest + ": utimensat", errno);
}

// The same for an item that cannot be opened (symlink, fifo, device): by name in its
// directory, never following the name.
void Restorer::set_metadata_at(const Entry &e, int dirfd, const std::string &name, const std::string &dest)
{
	bool link = e.type == EntryType::Symlink;
	if (!e.xattrs.empty()) {
		std::string at = proc_path(dirfd, name);
		for (const auto &[k, v] : e.xattrs)
			if (::lsetxattr(at.c_str(), k.c_str(), v.data(), v.size(), 0) != 0 && errno != ENOTSUP && errno != EPERM)
				fail_errno(dest + ": setxattr " + k, errno);
	}
	if (root_ && ::fchownat(dirfd, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0)
		fail_errno(dest + ": chown", errno);
	if (!link && ::fchmodat(dirfd, name.c_str(), e.mode & 07777, AT_SYMLINK_NOFOLLOW) != 0)
		fail_errno(dest + ": chmod", errno);
	struct timespec ts[2];
	ts[0] = ts[1] = to_timespec(e.mtime_ns);
	if (::utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
		fail_errno(dest + ": utimensat", errno);
}

// Symlinks, fifos and devices: made under a temporary name when something is there, then
// renamed over it.
void Restorer::restore_special(const Entry &e, int dirfd, const std::string &name, const std::string &dest)
{
	bool replace;
	if (!make_way(e, dirfd, name, dest, replace))
		return;
	std::string target = replace ? temp_name() : name;
	int rc = 0;
	switch (e.type) {
	case EntryType::Symlink: rc = ::symlinkat(e.target.c_str(), dirfd, target.c_str()); break;
	case EntryType::Fifo: rc = ::mkfifoat(dirfd, target.c_str(), 0600); break;
	default: rc = ::mknodat(dirfd, target.c_str(), (e.mode & S_IFMT) | 0600, dev_t(e.rdev)); break;
	}
	if (rc != 0)
		fail_errno(dest, errno);
	try {
		if (opts_.verify && e.type == EntryType::Symlink && read_link_at(dirfd, target) != e.target)
			fail(Code::Error, dest + ": verify: the link read back differs from the snapshot");
		set_metadata_at(e, dirfd, target, dest);
		if (replace && ::renameat(dirfd, target.c_str(), dirfd, name.c_str()) != 0)
			fail_errno(dest, errno);
	} catch (...) {
		::unlinkat(dirfd, target.c_str(), 0);
		throw;
	}
}

} // namespace plakar::restore_detail
