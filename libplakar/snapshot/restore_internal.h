// Internal to pull (snapshot/restore*.cc): the Restorer and the helpers its parts share. Not
// part of the engine's interface: pull() in restore.h is.
#pragma once


#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <atomic>
#include <chrono>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <utility>

#include "base/error.h"
#include "base/fd.h"
#include "base/pool.h"
#include "crypto/crypto.h"
#include "repository/repository.h"

#include "snapshot/restore.h"

namespace plakar::restore_detail {

// Nanoseconds since the epoch (negative before it) as a timespec with 0 <= tv_nsec < 1e9.
inline struct timespec to_timespec(int64_t ns)
{
	struct timespec t;
	t.tv_sec = ns / 1000000000;
	t.tv_nsec = ns % 1000000000;
	if (t.tv_nsec < 0) {
		t.tv_nsec += 1000000000;
		t.tv_sec -= 1;
	}
	return t;
}

inline bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

// A directory of the restore target, open while it is being filled: every item under it is
// created, opened, renamed and changed relative to its descriptor, never by a path string, so
// nothing the snapshot or a concurrent local writer puts in the way (a symlink to elsewhere)
// is ever followed. Its metadata (times above all) is set through the same descriptor once its
// last item is done, by whichever thread finished it.
struct DirJob {
	DirJob *parent = nullptr;
	Entry entry;
	std::string dest; // for messages and events only
	std::string rel;  // relative to the base (hard links are made from there); "" for the base
	Fd fd{-1};        // -1 only in a dry run, under a directory that would be created
	bool apply = true; // set the entry's metadata when done (false: the holder of the top item,
	                   // or an existing directory kept under -overwrite never)
	std::atomic<size_t> pending{1}; // the walker holds one while it lists the directory
	std::list<std::unique_ptr<DirJob>>::iterator self;
};

// The path of name in parent, relative to the base.
inline std::string child_rel(const DirJob *parent, const std::string &name)
{
	return parent->rel.empty() ? name : parent->rel + "/" + name;
}

// Small files are restored in batches. A batch locates the chunks of all its files first,
// then reads them with one read_range per run of neighbouring blobs of a pack: what push wrote
// side by side is restored side by side, so a remote store answers one request per few MiB
// instead of one per chunk. What the batch could not read or open is read again chunk by chunk
// through get_blob, which reports the error or finds another copy.
constexpr uint64_t kBatchFileMax = 1 << 20; // larger files, or with a chunk list, go alone
constexpr uint64_t kBatchBytes = 4 << 20;
constexpr size_t kBatchFiles = 256;
constexpr uint64_t kRegionGap = 64 << 10; // read through gaps up to this
constexpr uint64_t kRegionMax = 8 << 20;
// Directories held open at once: past this, the walker waits for the queued files to finish
// (which closes their directories) before it opens another one. A quarter of the process's
// descriptor limit, at most 1,024: the rest is for files, packs and the store.
inline size_t max_open_dirs()
{
	struct rlimit rl;
	if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1024;
	return std::clamp<size_t>(size_t(rl.rlim_cur / 4), 16, 1024);
}

struct BatchFile {
	Entry entry;
	std::string dest;
	DirJob *parent;
};

// The sealed blobs a batch read, by id; each one is opened (decrypted in place) once.
struct Prefetched {
	struct Slot {
		Id pack;
		BlobRecord rec;
		uint8_t *sealed;
		bool used = false;
	};
	std::unordered_map<Id, Slot, IdHash> slots;
	Scratch buf;
};

// One per worker thread: a batch, or the current stretch of a large file.
inline Prefetched &thread_prefetched()
{
	thread_local Prefetched pre;
	return pre;
}

inline int64_t mtime_of(const struct stat &st)
{
	return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

inline bool same_type(const Entry &e, mode_t m)
{
	switch (e.type) {
	case EntryType::File: return S_ISREG(m);
	case EntryType::Directory: return S_ISDIR(m);
	case EntryType::Symlink: return S_ISLNK(m);
	case EntryType::Fifo: return S_ISFIFO(m);
	case EntryType::CharDev: return S_ISCHR(m);
	case EntryType::BlockDev: return S_ISBLK(m);
	case EntryType::Socket: return S_ISSOCK(m);
	}
	return false;
}

// The target of the symlink name in dirfd, or nullopt when it cannot be read.
inline std::optional<std::string> read_link_at(int dirfd, const std::string &name)
{
	std::string buf(256, '\0');
	for (;;) {
		ssize_t n = ::readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
		if (n < 0)
			return std::nullopt;
		if (size_t(n) < buf.size()) {
			buf.resize(size_t(n));
			return buf;
		}
		if (buf.size() >= (1 << 20))
			return std::nullopt;
		buf.resize(buf.size() * 2);
	}
}

// The name in the directory (a descriptor) as a path the *xattr calls take without following
// the name itself: the kernel resolves the descriptor's magic link, then looks the name up in
// that directory.
inline std::string proc_path(int dirfd, const std::string &name)
{
	return "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
}

inline std::string temp_name()
{
	return ".plakar-restore-" + hex_encode(crypto::random_bytes(6));
}

// Removes name (a directory) from dirfd with everything under it, through descriptors only.
inline void remove_tree_at(int dirfd, const std::string &name, const std::string &dest, int depth = 0)
{
	if (depth > 4096)
		fail(Code::Error, dest + ": too deep to remove");
	Fd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	if (fd.fd < 0)
		fail_errno(dest, errno);
	int dup = ::dup(fd.fd);
	if (dup < 0)
		fail_errno(dest, errno);
	DIR *d = ::fdopendir(dup);
	if (!d) {
		::close(dup);
		fail_errno(dest, errno);
	}
	std::unique_ptr<DIR, int (*)(DIR *)> closer(d, ::closedir);
	std::vector<std::pair<std::string, bool>> names;
	while (struct dirent *de = ::readdir(d)) {
		std::string n = de->d_name;
		if (n == "." || n == "..")
			continue;
		struct stat st;
		if (::fstatat(fd.fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
			fail_errno(dest + "/" + n, errno);
		names.emplace_back(std::move(n), S_ISDIR(st.st_mode));
	}
	for (const auto &[n, dir] : names) {
		if (dir)
			remove_tree_at(fd.fd, n, dest + "/" + n, depth + 1);
		else if (::unlinkat(fd.fd, n.c_str(), 0) != 0)
			fail_errno(dest + "/" + n, errno);
	}
	if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0)
		fail_errno(dest, errno);
}

// What a restore does at a name where the snapshot has an item.
enum class Action { Create, Replace, Skip };

// Restores a tree: the walker (the calling thread) creates directories and small items and
// hands regular files to a pool of workers (the repository's CPU budget), which read, verify
// and write them. Progress events are emitted by the walker only.
class Restorer {
public:
	Restorer(Repository &repo, const PullOptions &opts, int base)
	    : repo_(repo), opts_(opts), root_(::geteuid() == 0), base_(base), pool_(repo.cpu(), 256)
	{
	}
	~Restorer() { stop(); }
	void stop() { pool_.stop(); }

	// Restores e as name in parent. top: the item the caller asked for, whose own creation
	// failing fails the whole restore (nothing else could be restored).
	void restore(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest, bool top = false);
	// A directory job for an existing directory (the base, a kept ancestor): apply says whether
	// the entry's metadata is set on it at the end.
	DirJob *adopt(Fd fd, const Entry &e, const std::string &dest, const std::string &rel, bool apply);
	// Hands the batch of small files gathered so far to a worker.
	void submit_batch();
	// Waits for the workers (reporting meanwhile); rethrows what is not a per-item failure.
	void finish();
	void dir_done(DirJob *job);
	// Lists e (whose job was just adopted) and restores what it holds; job becomes a child of
	// parent until its last item is done.
	void walk_dir(const Entry &e, DirJob *job, DirJob *parent, const std::string &dest);
	void set_dir_metadata(const Entry &e, int fd, const std::string &dest);
	Counters counters();
	std::atomic<bool> corrupt{false};
	SharedCounters count;
	std::atomic<uint64_t> skipped{0};

private:
	void restore_item(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest, bool top);
	void restore_dir(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest);
	void restore_special(const Entry &e, int dirfd, const std::string &name, const std::string &dest);
	void restore_file(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest,
	                  Prefetched *pre = nullptr);
	void restore_batch(std::vector<BatchFile> &files);
	void queue_file(const Entry &e, DirJob *parent, const std::string &dest);
	Action decide(const Entry &e, int dirfd, const std::string &name, const std::string &dest, struct stat &st);
	bool clear_way(int dirfd, const std::string &name, const std::string &dest, const struct stat &st);
	bool make_way(const Entry &e, int dirfd, const std::string &name, const std::string &dest, bool &replace);
	void plan(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest);
	void prefetch(const std::vector<Id> &ids, Prefetched &pre);
	void prefetch_into(const std::vector<Id> &ids, Prefetched &pre);
	void write_content(const std::vector<ChunkRef> &chunks, int fd, const std::string &dest, Prefetched *pre);
	void verify_content(const std::vector<ChunkRef> &chunks, int fd, const std::string &dest);
	void set_file_metadata(const Entry &e, int fd, const std::string &dest);
	void set_metadata_at(const Entry &e, int dirfd, const std::string &name, const std::string &dest);
	void make_link(const std::string &first_rel, int dirfd, const std::string &name, const std::string &dest,
	               bool replace);
	void item_error(const std::string &path, const std::string &msg);
	void failed(const std::string &dest, const Error &err);
	void report(bool force = false);

	Repository &repo_;
	const PullOptions &opts_;
	bool root_;
	int base_; // the restore target, or -1 in a dry run when it does not exist yet
	std::map<std::pair<uint64_t, uint64_t>, std::string> links_; // walker only: first path (rel)
	std::mutex mu_; // jobs_, zero_ids_
	EventRelay relay_;
	std::list<std::unique_ptr<DirJob>> jobs_;
	std::atomic<size_t> open_dirs_{0};
	const size_t max_open_dirs_ = max_open_dirs();
	std::vector<BatchFile> batch_; // walker only
	uint64_t batch_bytes_ = 0;
	// Chunks known to be all zeros: skipped (left as holes) without being read again. A
	// sparse file's holes are stored as repeats of one zero chunk.
	std::unordered_set<Id, IdHash> zero_ids_;
	WorkPool pool_; // last: joined first
};

} // namespace plakar::restore_detail
