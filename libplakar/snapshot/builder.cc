#include "snapshot/builder.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

#include "base/error.h"
#include "base/fd.h"
#include "repository/lock.h"
#include "repository/repository.h"

namespace plakar {

namespace {

int64_t ts_ns(const struct timespec &t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

EntryType type_of(mode_t m)
{
	if (S_ISREG(m))
		return EntryType::File;
	if (S_ISDIR(m))
		return EntryType::Directory;
	if (S_ISLNK(m))
		return EntryType::Symlink;
	if (S_ISFIFO(m))
		return EntryType::Fifo;
	if (S_ISCHR(m))
		return EntryType::CharDev;
	if (S_ISBLK(m))
		return EntryType::BlockDev;
	return EntryType::Socket;
}

// A virtual directory on the way to a pushed path: "/" and "/usr" when pushing /usr/share.
struct VNode {
	bool pushed = false; // this path itself was pushed: walk it for real
	std::map<std::string, std::unique_ptr<VNode>> children;
};

class Builder {
public:
	Builder(Repository &repo, const PushOptions &opts) : repo_(repo), opts_(opts)
	{
		buf_.resize(size_t(repo.chunker().params().max) * 2);
	}

	// prev: the same path's entry in the parent snapshot, if any.
	Entry build(const std::string &path, const std::string &name, const VNode *v, const Entry *prev);
	SnapshotHeader header;

private:
	Entry stat_entry(const std::string &path, const std::string &name, const struct stat &st);
	void read_xattrs(const std::string &path, Entry &e);
	void store_file(const std::string &path, Entry &e);
	Entry walk_dir(const std::string &path, Entry e, const Entry *prev);
	bool reuse(Entry &e, const Entry *prev);
	std::unordered_map<std::string, Entry> previous_children(const Entry *prev);
	void record_error(const std::string &path, const std::string &msg);
	const std::string &user_name(uid_t uid);
	const std::string &group_name(gid_t gid);

	Repository &repo_;
	const PushOptions &opts_;
	Counters counters_;
	Bytes buf_;

public:
	PushStats stats;

private:
	std::unordered_map<uid_t, std::string> users_;
	std::unordered_map<gid_t, std::string> groups_;
	struct Content {
		std::vector<ChunkRef> chunks;
		bool has_list;
		Id list;
	};
	std::map<std::pair<uint64_t, uint64_t>, Content> hardlinks_;
	std::chrono::steady_clock::time_point last_bytes_event_{};
	friend SnapshotHeader plakar::push(Repository &, const std::vector<std::string> &, const PushOptions &,
	                                   PushStats *);
};

const std::string &Builder::user_name(uid_t uid)
{
	auto it = users_.find(uid);
	if (it != users_.end())
		return it->second;
	std::string name;
	struct passwd pw, *res = nullptr;
	char buf[4096];
	if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res)
		name = res->pw_name;
	return users_[uid] = name;
}

const std::string &Builder::group_name(gid_t gid)
{
	auto it = groups_.find(gid);
	if (it != groups_.end())
		return it->second;
	std::string name;
	struct group gr, *res = nullptr;
	char buf[4096];
	if (getgrgid_r(gid, &gr, buf, sizeof buf, &res) == 0 && res)
		name = res->gr_name;
	return groups_[gid] = name;
}

void Builder::record_error(const std::string &path, const std::string &msg)
{
	counters_.errors++;
	header.errors.emplace_back(path, msg);
	emit(opts_.progress, EventKind::Error, counters_, &path, &msg);
}

Entry Builder::stat_entry(const std::string &path, const std::string &name, const struct stat &st)
{
	Entry e;
	e.name = name;
	e.type = type_of(st.st_mode);
	e.mode = st.st_mode;
	e.uid = st.st_uid;
	e.gid = st.st_gid;
	e.uname = user_name(st.st_uid);
	e.gname = group_name(st.st_gid);
	e.size = e.type == EntryType::File || e.type == EntryType::Symlink ? uint64_t(st.st_size) : 0;
	e.mtime_ns = ts_ns(st.st_mtim);
	e.ctime_ns = ts_ns(st.st_ctim);
	e.ino = st.st_ino;
	e.dev = st.st_dev;
	e.nlink = st.st_nlink;
	e.rdev = st.st_rdev;
	if (e.type == EntryType::Symlink) {
		std::string t(size_t(st.st_size > 0 ? st.st_size : 256) + 1, '\0');
		ssize_t n = ::readlink(path.c_str(), t.data(), t.size());
		if (n < 0) {
			e.error = std::string("readlink: ") + std::strerror(errno);
			record_error(path, e.error);
		} else {
			t.resize(size_t(n));
			e.target = t;
			e.size = t.size();
		}
	}
	read_xattrs(path, e);
	return e;
}

void Builder::read_xattrs(const std::string &path, Entry &e)
{
	ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
	if (n <= 0)
		return;
	std::string names(size_t(n), '\0');
	n = ::llistxattr(path.c_str(), names.data(), names.size());
	if (n <= 0)
		return;
	names.resize(size_t(n));
	for (size_t i = 0; i < names.size();) {
		std::string key = names.c_str() + i;
		i += key.size() + 1;
		if (key.empty())
			continue;
		ssize_t vn = ::lgetxattr(path.c_str(), key.c_str(), nullptr, 0);
		if (vn < 0)
			continue;
		std::string val(size_t(vn), '\0');
		vn = ::lgetxattr(path.c_str(), key.c_str(), val.data(), val.size());
		if (vn < 0)
			continue;
		val.resize(size_t(vn));
		e.xattrs.emplace_back(std::move(key), std::move(val));
	}
	std::sort(e.xattrs.begin(), e.xattrs.end());
}

void Builder::store_file(const std::string &path, Entry &e)
{
	if (e.nlink > 1) {
		auto it = hardlinks_.find({e.dev, e.ino});
		if (it != hardlinks_.end()) {
			e.chunks = it->second.chunks;
			e.has_list = it->second.has_list;
			e.list = it->second.list;
			return;
		}
	}
	int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		e.error = errno == ENOENT ? "vanished during backup" : std::string("open: ") + std::strerror(errno);
		record_error(path, e.error);
		return;
	}
	Fd f(fd);
	const Chunker &ck = repo_.chunker();
	std::vector<ChunkRef> chunks;
	size_t have = 0; // bytes in buf_[0, have)
	bool eof = false;
	uint64_t total = 0;
	while (!eof || have > 0) {
		while (!eof && have < ck.params().max) {
			ssize_t r = ::read(fd, buf_.data() + have, buf_.size() - have);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				e.error = std::string("read: ") + std::strerror(errno);
				record_error(path, e.error);
				e.chunks.clear();
				return;
			}
			if (r == 0)
				eof = true;
			have += size_t(r);
		}
		size_t start = 0;
		// Cut every chunk that the buffer holds entirely, then refill.
		while (have - start > 0) {
			size_t n = ck.cut(buf_.data() + start, have - start, eof);
			if (n == 0)
				break;
			ByteView chunk(buf_.data() + start, n);
			Id id = repo_.blob_id(chunk);
			repo_.put_blob(BlobType::Chunk, id, chunk);
			chunks.push_back({id, uint32_t(n)});
			start += n;
			total += n;
			counters_.bytes += n;
			auto now = std::chrono::steady_clock::now();
			if (now - last_bytes_event_ > std::chrono::milliseconds(200)) {
				last_bytes_event_ = now;
				counters_.stored_bytes = repo_.stats().bytes_written;
				emit(opts_.progress, EventKind::Bytes, counters_, &path);
			}
		}
		std::memmove(buf_.data(), buf_.data() + start, have - start);
		have -= start;
	}
	// The size recorded is the size read: a file that grew or shrank meanwhile stays consistent.
	e.size = total;
	set_chunks(repo_, e, std::move(chunks));
	if (e.nlink > 1)
		hardlinks_[{e.dev, e.ino}] = Content{e.chunks, e.has_list, e.list};
}

// A file whose size, mtime, ctime, inode and mode are those recorded in the parent snapshot is
// not read again: its chunk list is taken from the parent (after checking the repository
// still has its blobs).
bool Builder::reuse(Entry &e, const Entry *prev)
{
	if (!prev || prev->type != EntryType::File || !prev->error.empty() || prev->size != e.size ||
	    prev->mtime_ns != e.mtime_ns || prev->ctime_ns != e.ctime_ns || prev->ino != e.ino || prev->mode != e.mode)
		return false;
	if (prev->has_list) {
		if (!repo_.has_blob(prev->list))
			return false;
	} else {
		for (const auto &c : prev->chunks)
			if (!repo_.has_blob(c.id))
				return false;
	}
	e.chunks = prev->chunks;
	e.has_list = prev->has_list;
	e.list = prev->list;
	if (e.nlink > 1)
		hardlinks_[{e.dev, e.ino}] = Content{e.chunks, e.has_list, e.list};
	stats.unchanged++;
	return true;
}

std::unordered_map<std::string, Entry> Builder::previous_children(const Entry *prev)
{
	std::unordered_map<std::string, Entry> out;
	if (!prev || prev->type != EntryType::Directory || !prev->has_tree)
		return out;
	try {
		for_each_entry(repo_, prev->tree, [&](Entry &c) {
			std::string n = c.name;
			out.emplace(std::move(n), std::move(c));
			return true;
		});
	} catch (const Error &e) {
		// The parent is only a shortcut: if it cannot be read, read everything.
		if (e.code() == Code::Canceled)
			throw;
		out.clear();
	}
	return out;
}

Entry Builder::walk_dir(const std::string &path, Entry e, const Entry *prev)
{
	std::vector<std::string> names;
	DIR *d = ::opendir(path.c_str());
	if (!d) {
		e.error = std::string("opendir: ") + std::strerror(errno);
		record_error(path, e.error);
	} else {
		errno = 0;
		while (auto *de = ::readdir(d)) {
			if (std::strcmp(de->d_name, ".") == 0 || std::strcmp(de->d_name, "..") == 0)
				continue;
			names.emplace_back(de->d_name);
		}
		::closedir(d);
		std::sort(names.begin(), names.end());
	}
	std::vector<Entry> children;
	children.reserve(names.size());
	auto before = previous_children(prev);
	std::string prefix = path == "/" ? "/" : path + "/";
	for (const auto &n : names) {
		std::string child = prefix + n;
		if (std::find(opts_.exclude.begin(), opts_.exclude.end(), child) != opts_.exclude.end())
			continue;
		struct stat st;
		if (::lstat(child.c_str(), &st) != 0) {
			record_error(child, errno == ENOENT ? "vanished during backup"
			                                    : std::string("lstat: ") + std::strerror(errno));
			continue;
		}
		auto it = before.find(n);
		children.push_back(build(child, n, nullptr, it == before.end() ? nullptr : &it->second));
	}
	e.tree = store_directory(repo_, children);
	e.has_tree = true;
	return e;
}

Entry Builder::build(const std::string &path, const std::string &name, const VNode *v, const Entry *prev)
{
	struct stat st;
	if (::lstat(path.c_str(), &st) != 0) {
		// Only reachable for a vanished path on the way to a pushed one.
		fail_errno(path, errno);
	}
	Entry e = stat_entry(path, name, st);
	if (v && !v->pushed) {
		std::vector<Entry> children;
		std::string prefix = path == "/" ? "/" : path + "/";
		for (const auto &[n, c] : v->children) {
			Entry pc;
			bool have = false;
			try {
				have = prev && prev->type == EntryType::Directory && prev->has_tree &&
				       find_in_directory(repo_, prev->tree, n, pc);
			} catch (const Error &err) {
				if (err.code() == Code::Canceled)
					throw;
				// The parent is only a shortcut: without it, everything is read.
			}
			children.push_back(build(prefix + n, n, c.get(), have ? &pc : nullptr));
		}
		e.tree = store_directory(repo_, children);
		e.has_tree = true;
		return e;
	}
	switch (e.type) {
	case EntryType::Directory:
		e = walk_dir(path, std::move(e), prev);
		counters_.directories++;
		emit(opts_.progress, EventKind::Directory, counters_, &path);
		break;
	case EntryType::File:
		if (!reuse(e, prev))
			store_file(path, e);
		counters_.files++;
		header.size += e.size;
		emit(opts_.progress, EventKind::File, counters_, &path);
		break;
	default: break;
	}
	return e;
}

std::string hostname()
{
	char h[256] = {};
	if (::gethostname(h, sizeof h - 1) != 0)
		return "";
	return h;
}

} // namespace

SnapshotHeader push(Repository &repo, const std::vector<std::string> &paths, const PushOptions &opts, PushStats *stats)
{
	if (paths.empty())
		fail(Code::Invalid, "nothing to push: no path given");
	std::vector<std::string> abs;
	for (const auto &p : paths) {
		if (p.empty())
			fail(Code::Invalid, "empty path");
		std::error_code ec;
		std::filesystem::path a = std::filesystem::absolute(p, ec);
		if (ec)
			fail(Code::Invalid, p + ": " + ec.message());
		std::string s = a.lexically_normal().string();
		while (s.size() > 1 && s.back() == '/')
			s.pop_back();
		struct stat st;
		if (::lstat(s.c_str(), &st) != 0)
			fail_errno(p, errno);
		abs.push_back(s);
	}
	std::sort(abs.begin(), abs.end());
	abs.erase(std::unique(abs.begin(), abs.end()), abs.end());
	// Drop paths inside another pushed path.
	std::vector<std::string> roots;
	for (const auto &p : abs) {
		bool inside = false;
		for (const auto &r : roots)
			if (r == "/" || (p.size() > r.size() && p.compare(0, r.size(), r) == 0 && p[r.size()] == '/'))
				inside = true;
		if (!inside)
			roots.push_back(p);
	}
	VNode top;
	for (const auto &r : roots) {
		VNode *at = &top;
		for (const auto &c : split_path(r)) {
			auto &slot = at->children[c];
			if (!slot)
				slot = std::make_unique<VNode>();
			at = slot.get();
		}
		at->pushed = true;
	}

	// A shared lock, taken before the index is looked at: it tells a concurrent gc that this
	// push may reuse what the index names now (docs/format.md, "Locks and garbage collection").
	auto lock = RepoLock::acquire(repo, LockType::Shared);
	repo.begin_write();

	Builder b(repo, opts);
	b.header.id = new_snapshot_id();
	b.header.paths = roots;
	b.header.tags = opts.tags;
	b.header.command_line = opts.command_line;
	b.header.hostname = hostname();
	b.header.username = b.user_name(::geteuid());
	b.header.time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
	                       std::chrono::system_clock::now().time_since_epoch())
	                       .count();
	try {
		std::optional<SnapshotHeader> parent;
		if (opts.use_parent) {
			try {
				parent = find_parent(repo, roots, b.header.hostname);
			} catch (const Error &) {
				// Only a shortcut: a damaged snapshot elsewhere must not stop a backup.
			}
		}
		b.header.root = b.build("/", "/", &top, parent ? &parent->root : nullptr);
	} catch (...) {
		// Keep what was stored: index it so the next push reuses it.
		try {
			repo.flush();
		} catch (...) {
		}
		throw;
	}
	b.header.files = b.counters_.files;
	if (stats)
		*stats = b.stats;
	b.header.directories = b.counters_.directories;
	repo.flush();
	// Suspended longer than a lock lives (a laptop asleep), this push may have been taken for
	// dead by a gc that then deleted packs it reuses: do not commit a snapshot that could
	// reference them. What it stored is indexed and reused by the next push.
	if (!lock->held_throughout())
		fail(Code::Locked, "the push's lock lapsed (no refresh for " + std::to_string(kLockStale.count() / 60) +
		                       " minutes): snapshot not committed, run the push again");
	store_snapshot(repo, b.header);
	return b.header;
}

} // namespace plakar
