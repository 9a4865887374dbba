// Internal to push (snapshot/builder*.cc): the Builder that walks the tree, reads and chunks
// files on a pool of workers and assembles directory trees leaf by leaf. Not part of the
// engine's interface: push() in builder.h is.
#pragma once


#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
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
#include <atomic>
#include <future>
#include <deque>
#include <cstdint>
#include <string>
#include <vector>
#include <list>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "base/system.h"
#include "base/fd.h"
#include "base/pool.h"
#include "repository/lock.h"
#include "repository/repository.h"

#include "snapshot/builder.h"

namespace plakar::build {

inline int64_t ts_ns(const struct timespec &t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

inline EntryType type_of(mode_t m)
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

// Holes of a sparse file at least this long are not read (see store_file).
constexpr uint64_t kHoleMin = 1 << 20;

// A virtual directory on the way to a pushed path: "/" and "/usr" when pushing /usr/share.
struct VNode {
	bool pushed = false; // this path itself was pushed: walk it for real
	std::map<std::string, std::unique_ptr<VNode>> children;
};

// Whether two entries are the same apart from a directory's tree (compared on its own).
inline bool same_entry(const Entry &a, const Entry &b)
{
	auto chunks_equal = [](const std::vector<ChunkRef> &x, const std::vector<ChunkRef> &y) {
		if (x.size() != y.size())
			return false;
		for (size_t i = 0; i < x.size(); i++)
			if (x[i].id != y[i].id || x[i].len != y[i].len)
				return false;
		return true;
	};
	return a.name == b.name && a.type == b.type && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid &&
	       a.uname == b.uname && a.gname == b.gname && a.size == b.size && a.mtime_ns == b.mtime_ns &&
	       a.ctime_ns == b.ctime_ns && a.ino == b.ino && a.dev == b.dev && a.nlink == b.nlink && a.rdev == b.rdev &&
	       a.target == b.target && a.xattrs == b.xattrs && a.error == b.error && a.has_list == b.has_list &&
	       (!a.has_list || a.list == b.list) && chunks_equal(a.chunks, b.chunks);
}

// A directory being built, leaf by leaf (runs of kLeafMax entries, as stored). The walker
// appends each entry's metadata; workers fill in file contents. A leaf is stored (and its
// entries freed) once its last entry is in, so a directory of a million entries never holds
// them all; the directory is stored when its last leaf is, by whichever thread got there, and
// its parent is told. The walker holds one pending count on the directory while it lists it,
// and one on the leaf it is appending to.
struct Leaf {
	std::vector<Entry> entries; // reserved: no reallocation while workers fill them
	std::atomic<size_t> pending{1};
	bool stored = false;
	TreeNodeRef ref;
};

struct DirNode {
	DirNode *parent = nullptr;
	size_t leaf = 0, slot = 0; // this directory's entry: parent->leaves[leaf].entries[slot]
	std::deque<Leaf> leaves;   // a deque: appending keeps the addresses of the others
	std::atomic<size_t> pending{1};
	// The tree of this directory in the parent snapshot, and whether any entry differs from
	// it: an unchanged directory takes that tree without encoding anything.
	bool has_prev = false;
	Id prev_tree;
	std::atomic<bool> changed{false};
	size_t expected = 0, appended = 0; // entries listed, entries appended (walker)
	std::list<std::unique_ptr<DirNode>>::iterator self;
	Entry &entry(size_t l, size_t i) { return leaves[l].entries[i]; }
};

// A directory's entries as the walker needs them: names in byte order (excluded names left
// out, never stat'ed) and each one's lstat: taken with the listing by the read-ahead, or one at
// a time as the walker goes (through dir), so that a directory of a million entries holds its
// names only.
struct Listing {
	std::string path;
	int error = 0;             // opendir's errno, 0 when listed
	bool walker_lists = false; // left to the walker, with its subtree (DirScanner, too large)
	std::vector<std::string> names;
	std::vector<struct stat> st; // with the listing, else empty
	std::vector<int> st_error;   // fstatat's errno per name, 0 when st holds its answer
	Fd dir{-1};                  // without st: the directory, for the stats taken later
	// The lstat of names[k]: 0, or an errno.
	int stat(size_t k, struct stat &out) const
	{
		if (!st.empty()) {
			out = st[k];
			return st_error[k];
		}
		return ::fstatat(dir.fd, names[k].c_str(), &out, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : (errno ? errno : EIO);
	}
};
using ExcludeFn = std::function<bool(const std::string &path, const std::string &name)>;
// Lists path (any thread); with stat_all, stats every entry too. More than max_names names:
// only walker_lists is set.
Listing list_directory(const std::string &path, const ExcludeFn &excluded, bool stat_all,
                       size_t max_names = SIZE_MAX);

// The walker's read-ahead (a CPU budget of 2 or more): a thread that lists and stats the
// directories of one walked tree in the order the walker visits them (depth first, names in
// byte order), so that the walk's system calls run beside the walker's comparing and
// dispatching. Bounded: at most kAheadNames names listed ahead of the walker. A directory of
// more than kListMax names is handed to the walker unlisted (walker_lists), and the reader skips
// its subtree, which the walker lists as it goes, as it does without read-ahead.
class DirScanner {
public:
	static constexpr size_t kListMax = 32768;
	static constexpr size_t kAheadNames = 65536;
	DirScanner(std::string root, ExcludeFn excluded, size_t list_max = kListMax);
	// Stops the reader and waits for it.
	~DirScanner();
	DirScanner(const DirScanner &) = delete;
	DirScanner &operator=(const DirScanner &) = delete;
	// The listing of the next directory in walk order, which must be path; nullopt when the
	// walk and the reader are out of step (the walker then lists by itself).
	std::optional<Listing> next(const std::string &path);

private:
	void run();
	// Lists path and, unless it is left to the walker, its subdirectories; false once stopped.
	bool visit(const std::string &path);
	bool push(Listing l);

	const std::string root_;
	const ExcludeFn excluded_;
	const size_t list_max_;
	std::mutex mu_;
	std::condition_variable cv_;
	std::deque<Listing> queue_;
	size_t queued_names_ = 0;
	bool stop_ = false, done_ = false;
	std::thread thread_; // last: started once the rest exists
};

class Builder {
public:
	Builder(Repository &repo, const PushOptions &opts)
	    : repo_(repo), opts_(opts), pool_(repo.cpu(), 256, size_t(repo.chunker().params().max) * 4)
	{
	}
	~Builder() { stop(); }
	// Drops the work not started and waits for the running tasks (after a failure).
	void stop() { pool_.stop(); }

	// Builds the snapshot's root ("/") and returns it once every file and directory is stored.
	Entry build_root(const VNode &top, const Entry *prev);
	SnapshotHeader header;
	PushStats stats;
	Counters counters();
	const std::string &user_name(uid_t uid);

private:
	// prev: the same path in the parent snapshot; when its inode and ctime are unchanged, its
	// xattrs and symlink target are too (changing either changes the ctime) and are not read.
	Entry stat_entry(const std::string &path, const std::string &name, const struct stat &st,
	                 const Entry *prev = nullptr);
	void read_xattrs(const std::string &path, Entry &e);
	void dispatch(DirNode *node, size_t l, size_t i, const std::string &path, const VNode *v, const Entry *prev);
	void walk_dir(DirNode *node, size_t l, size_t i, const std::string &path, const Entry *prev);
	void virtual_dir(DirNode *node, size_t l, size_t i, const std::string &path, const VNode &v, const Entry *prev);
	// Walker: appends an entry to the directory; returns its (leaf, slot).
	std::pair<size_t, size_t> append(DirNode *d, Entry e);
	// Worker: reads and stores file i of leaf l of node.
	void store_one(DirNode *node, size_t l, size_t i, const std::string &path);
	// Walker: hands the batched small files to a worker.
	void flush_batch();
	void store_file(const std::string &path, Entry &e);
	void read_file(const std::string &path, Entry &e);
	class FileReading; // read_file's state (builder_files.cc)
	bool reuse(Entry &e, const Entry *prev);
	// expected: how many entries the directory lists (an upper bound).
	DirNode *new_node(DirNode *parent, size_t leaf, size_t slot, const Entry *prev, size_t expected);
	// Whether the item at path (named name) is left out (opts_.exclude, exclude_patterns).
	bool excluded(const std::string &path, const std::string &name) const
	{
		if (std::find(opts_.exclude.begin(), opts_.exclude.end(), path) != opts_.exclude.end())
			return true;
		for (const auto &p : opts_.exclude_patterns)
			if (p.find('/') == std::string::npos ? ::fnmatch(p.c_str(), name.c_str(), 0) == 0
			                                     : ::fnmatch(p.c_str(), path.c_str(), FNM_PATHNAME) == 0)
				return true;
		return false;
	}
	Id zero_chunk(size_t n);
	// Any thread: one entry of leaf l of n is complete.
	void entry_done(DirNode *n, size_t l);
	// Any thread: one leaf of n (or the walker's hold) is done.
	void dir_done(DirNode *n);
	void record_error(const std::string &path, const std::string &msg);
	// Emits the errors workers recorded, and a Bytes event at most every 200 ms (walker only).
	void report(bool force = false);
	const std::string &group_name(gid_t gid);

	Repository &repo_;
	const PushOptions &opts_;

	// Shared with the workers.
	SharedCounters count_;
	std::atomic<uint64_t> size_{0};
	std::mutex mu_; // header.errors, nodes_, hardlinks_
	EventRelay relay_;
	std::list<std::unique_ptr<DirNode>> nodes_;
	struct Content {
		bool ok = false;
		std::vector<ChunkRef> chunks;
		bool has_list = false;
		Id list;
	};
	std::map<std::pair<uint64_t, uint64_t>, std::shared_future<Content>> hardlinks_;

	std::mutex zero_mu_;
	std::unordered_map<size_t, Id> zero_ids_; // chunks of zeros, by length

	// Copies of chunks handed to other workers: as many as can be in flight with every worker
	// reading a large file.
	BufferPool copies_{2 * size_t(repo_.cpu()) + 2};

	// Walker only.
	struct FileJob {
		DirNode *node;
		size_t leaf, slot;
		std::string path;
	};
	static constexpr uint64_t kSmallFile = 256 * 1024;
	static constexpr size_t kBatchFiles = 64;
	static constexpr uint64_t kBatchBytes = 2 << 20;
	std::vector<FileJob> batch_;
	uint64_t batch_bytes_ = 0;
	std::unordered_map<uid_t, std::string> users_;
	std::unordered_map<gid_t, std::string> groups_;
	DirNode top_; // holds the root entry
	// The read-ahead of the tree being walked (nullptr with a budget of 1), how deep the walker
	// is in it, and how deep in a subtree it lists by itself.
	std::unique_ptr<DirScanner> scanner_;
	size_t walk_depth_ = 0, self_listed_depth_ = 0;

	WorkPool pool_; // last: destroyed (joined) first
};

} // namespace plakar::build
