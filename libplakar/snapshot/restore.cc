#include "snapshot/restore.h"

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

namespace plakar {

namespace {

// Nanoseconds since the epoch (negative before it) as a timespec with 0 <= tv_nsec < 1e9.
struct timespec to_timespec(int64_t ns)
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

bool all_zero(const uint8_t *p, size_t n)
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
std::string child_rel(const DirJob *parent, const std::string &name)
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
size_t max_open_dirs()
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
Prefetched &thread_prefetched()
{
	thread_local Prefetched pre;
	return pre;
}

int64_t mtime_of(const struct stat &st)
{
	return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

bool same_type(const Entry &e, mode_t m)
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
std::optional<std::string> read_link_at(int dirfd, const std::string &name)
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
std::string proc_path(int dirfd, const std::string &name)
{
	return "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
}

std::string temp_name()
{
	return ".plakar-restore-" + hex_encode(crypto::random_bytes(6));
}

// Removes name (a directory) from dirfd with everything under it, through descriptors only.
void remove_tree_at(int dirfd, const std::string &name, const std::string &dest, int depth = 0)
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

Counters Restorer::counters()
{
	return count.load();
}

// Any thread; the event is emitted by the walker.
void Restorer::item_error(const std::string &path, const std::string &msg)
{
	count.errors++;
	relay_.error(path, msg);
}

void Restorer::failed(const std::string &dest, const Error &err)
{
	if (err.code() == Code::Corrupt)
		corrupt = true;
	item_error(dest, err.what());
}

void Restorer::report(bool force)
{
	relay_.report(opts_.progress, [this] { return counters(); }, force);
}

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

// Writes a file's content at fd: chunk by chunk, each run of non-zero 64 KiB blocks in one
// pwrite, runs of zero blocks left as holes (sparse files stay sparse).
void Restorer::write_content(const std::vector<ChunkRef> &chunks, int fd, const std::string &dest, Prefetched *pre)
{
	constexpr size_t kBlock = 64 * 1024;
	thread_local BlobBuffers bufs;
	uint64_t off = 0, written_end = 0;
	// A file restored alone is read a stretch of chunks at a time (kBatchBytes), each stretch
	// prefetched like a batch of small files.
	bool stretches = !pre && chunks.size() > 1;
	size_t stretch_end = 0;
	for (size_t ci = 0; ci < chunks.size(); ci++) {
		const ChunkRef &c = chunks[ci];
		if (stretches && ci == stretch_end) {
			std::vector<Id> ids;
			uint64_t bytes = 0;
			for (; stretch_end < chunks.size() && (ids.empty() || bytes + chunks[stretch_end].len <= kBatchBytes);
			     stretch_end++) {
				ids.push_back(chunks[stretch_end].id);
				bytes += chunks[stretch_end].len;
			}
			pre = &thread_prefetched();
			prefetch(ids, *pre);
		}
		bool zero;
		{
			std::lock_guard lk(mu_);
			zero = zero_ids_.count(c.id) != 0;
		}
		if (!zero) {
			ByteView b;
			bool have = false;
			if (pre) {
				auto it = pre->slots.find(c.id);
				if (it != pre->slots.end() && !it->second.used) {
					auto &slot = it->second;
					slot.used = true;
					try {
						b = repo_.open_blob(c.id, BlobType::Chunk, slot.pack, slot.rec,
						                    std::span<uint8_t>(slot.sealed, slot.rec.length), bufs.plain);
						have = true;
					} catch (const Error &err) {
						if (err.code() == Code::Canceled)
							throw;
					}
				}
			}
			if (!have)
				b = repo_.get_blob(c.id, BlobType::Chunk, bufs);
			if (b.size() != c.len)
				fail(Code::Corrupt, "chunk " + c.id.hex().substr(0, 16) + " has the wrong size");
			bool any = false;
			for (size_t i = 0; i < b.size();) {
				size_t m = std::min(kBlock, b.size() - i);
				if (all_zero(b.data() + i, m)) {
					i += m;
					continue;
				}
				size_t j = i + m; // extend the run over the following non-zero blocks
				while (j < b.size()) {
					size_t k = std::min(kBlock, b.size() - j);
					if (all_zero(b.data() + j, k))
						break;
					j += k;
				}
				for (size_t w = i; w < j;) {
					ssize_t k = ::pwrite(fd, b.data() + w, j - w, off_t(off + w));
					if (k < 0) {
						if (errno == EINTR)
							continue;
						fail_errno(dest, errno);
					}
					w += size_t(k);
				}
				written_end = off + j;
				any = true;
				i = j;
			}
			if (!any && c.len >= kBlock) {
				std::lock_guard lk(mu_);
				zero_ids_.insert(c.id);
			}
		}
		off += c.len;
		count.bytes += c.len;
	}
	if (written_end < off && ::ftruncate(fd, off_t(off)) != 0)
		fail_errno(dest, errno);
}

// -verify: reads back what was written and checks each chunk against its id (a keyed MAC of
// the plaintext), so a file that the disk, the filesystem or a concurrent writer changed fails.
void Restorer::verify_content(const std::vector<ChunkRef> &chunks, int fd, const std::string &dest)
{
	thread_local Scratch buf;
	uint64_t off = 0;
	for (const auto &c : chunks) {
		uint8_t *p = buf.get(c.len);
		for (size_t got = 0; got < c.len;) {
			ssize_t k = ::pread(fd, p + got, c.len - got, off_t(off + got));
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				fail_errno(dest + ": verify", errno);
			if (k == 0)
				fail(Code::Error, dest + ": verify: the file is shorter than in the snapshot");
			got += size_t(k);
		}
		if (repo_.blob_id(ByteView(p, c.len)) != c.id)
			fail(Code::Error, dest + ": verify: the content read back differs from the snapshot");
		off += c.len;
	}
	struct stat st;
	if (::fstat(fd, &st) != 0)
		fail_errno(dest + ": verify", errno);
	if (uint64_t(st.st_size) != off)
		fail(Code::Error, dest + ": verify: the file is longer than in the snapshot");
}

// Reads these chunks into pre (emptied first), a few ranges per pack. Best effort: a chunk it
// cannot place or read is left out, for get_blob to read. Throws only Code::Canceled.
void Restorer::prefetch(const std::vector<Id> &ids, Prefetched &pre)
{
	pre.slots.clear();
	try {
		prefetch_into(ids, pre);
	} catch (const Error &err) {
		if (err.code() == Code::Canceled)
			throw;
		pre.slots.clear(); // each chunk is then read alone, and what is wrong reported
	}
}

void Restorer::prefetch_into(const std::vector<Id> &ids, Prefetched &pre)
{
	struct Want {
		Id id;
		Repository::BlobPlace place;
	};
	std::vector<Want> want;
	std::unordered_set<Id, IdHash> seen;
	for (const auto &id : ids) {
		if (!seen.insert(id).second)
			continue;
		{
			std::lock_guard lk(mu_);
			if (zero_ids_.count(id))
				continue;
		}
		if (auto place = repo_.place_blob(id))
			want.push_back({id, std::move(*place)});
	}
	std::sort(want.begin(), want.end(), [](const Want &a, const Want &b) {
		return a.place.pack != b.place.pack ? a.place.pack < b.place.pack : a.place.rec.offset < b.place.rec.offset;
	});
	// Runs of blobs of one pack, each run one read.
	struct Region {
		size_t first, last; // in want, inclusive
		uint64_t begin, end;
	};
	std::vector<Region> regions;
	uint64_t total = 0;
	for (size_t i = 0; i < want.size(); i++) {
		const auto &w = want[i];
		uint64_t b = w.place.rec.offset, e = b + w.place.rec.length;
		if (!regions.empty()) {
			Region &r = regions.back();
			const auto &prev = want[r.last].place;
			if (prev.pack == w.place.pack && b >= r.end && b - r.end <= kRegionGap && e - r.begin <= kRegionMax) {
				total += e - r.end;
				r.last = i;
				r.end = e;
				continue;
			}
		}
		regions.push_back({i, i, b, e});
		total += e - b;
	}
	uint8_t *buf = pre.buf.get(total);
	for (const auto &r : regions) {
		const Id &pack = want[r.first].place.pack;
		try {
			repo_.store().read_range(Kind::Pack, pack.hex(), r.begin, r.end - r.begin, buf);
		} catch (const Error &err) {
			if (err.code() == Code::Canceled)
				throw;
			continue; // get_blob reads these, and reports what is wrong
		}
		for (size_t i = r.first; i <= r.last; i++)
			pre.slots.emplace(want[i].id, Prefetched::Slot{pack, want[i].place.rec, buf + (want[i].place.rec.offset - r.begin)});
		buf += r.end - r.begin;
	}
}


void Restorer::restore_batch(std::vector<BatchFile> &files)
{
	Prefetched &pre = thread_prefetched();
	std::vector<Id> ids;
	for (const auto &f : files)
		for (const auto &c : f.entry.chunks)
			ids.push_back(c.id);
	prefetch(ids, pre);
	for (const auto &f : files) {
		try {
			restore_file(f.entry, f.parent, f.entry.name, f.dest, &pre);
		} catch (const Error &err) {
			if (err.code() == Code::Canceled)
				throw;
			failed(f.dest, err);
		}
		dir_done(f.parent);
	}
}

void Restorer::submit_batch()
{
	if (batch_.empty())
		return;
	auto files = std::make_shared<std::vector<BatchFile>>(std::move(batch_));
	batch_.clear();
	batch_bytes_ = 0;
	pool_.submit([this, files] { restore_batch(*files); });
}

// Links name in dirfd to the file first restored at first_rel (relative to the base), opening
// its directory one component at a time without following any link.
void Restorer::make_link(const std::string &first_rel, int dirfd, const std::string &name, const std::string &dest,
                         bool replace)
{
	size_t slash = first_rel.rfind('/');
	std::string src_name = slash == std::string::npos ? first_rel : first_rel.substr(slash + 1);
	Fd src(::dup(base_));
	if (src.fd < 0)
		fail_errno(dest, errno);
	if (slash != std::string::npos) {
		std::string dir = first_rel.substr(0, slash);
		for (size_t at = 0; at <= dir.size();) {
			size_t end = std::min(dir.find('/', at), dir.size());
			Fd next(::openat(src.fd, dir.substr(at, end - at).c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
			if (next.fd < 0)
				fail_errno(dest + ": hard link", errno);
			src = std::move(next);
			at = end + 1;
		}
	}
	std::string tmp = replace ? temp_name() : name;
	if (::linkat(src.fd, src_name.c_str(), dirfd, tmp.c_str(), 0) != 0)
		fail_errno(dest, errno);
	if (replace && ::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) {
		int err = errno;
		::unlinkat(dirfd, tmp.c_str(), 0);
		fail_errno(dest, err);
	}
}

// Any thread for a file without other links; the walker for hard links (it knows the first
// path of each).
void Restorer::restore_file(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest,
                            Prefetched *pre)
{
	if (!e.error.empty()) {
		item_error(dest, "not restored: its content could not be read at backup time (" + e.error + ")");
		return;
	}
	int dirfd = parent->fd.fd;
	// Something already there is replaced only once the new content is complete: the content
	// goes to a temporary name in the same directory, renamed over it at the end. A new file is
	// written in place. Either way a failed file (a chunk that does not authenticate) is
	// removed: it never stays with wrong or partial content.
	bool replace;
	if (!make_way(e, dirfd, name, dest, replace))
		return;
	if (e.nlink > 1) {
		auto it = links_.find({e.dev, e.ino});
		if (it != links_.end()) {
			make_link(it->second, dirfd, name, dest, replace);
			count.files++;
			return;
		}
	}
	auto chunks = file_chunks(repo_, e);
	std::string target = replace ? temp_name() : name;
	Fd f(::openat(dirfd, target.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
	if (f.fd < 0)
		fail_errno(dest, errno);
	try {
		write_content(chunks, f.fd, dest, pre);
		if (opts_.verify)
			verify_content(chunks, f.fd, dest);
		set_file_metadata(e, f.fd, dest);
		if (::close(f.release()) != 0)
			fail_errno(dest, errno);
		if (replace && ::renameat(dirfd, target.c_str(), dirfd, name.c_str()) != 0)
			fail_errno(dest, errno);
	} catch (...) {
		::unlinkat(dirfd, target.c_str(), 0);
		throw;
	}
	if (e.nlink > 1)
		links_[{e.dev, e.ino}] = child_rel(parent, name);
	count.files++;
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

DirJob *Restorer::adopt(Fd fd, const Entry &e, const std::string &dest, const std::string &rel, bool apply)
{
	auto j = std::make_unique<DirJob>();
	j->entry = e;
	j->dest = dest;
	j->rel = rel;
	j->fd = std::move(fd);
	j->apply = apply;
	if (j->fd.fd >= 0)
		open_dirs_++;
	std::lock_guard lk(mu_);
	jobs_.push_front(std::move(j));
	jobs_.front()->self = jobs_.begin();
	return jobs_.front().get();
}

// Any thread: one item of the directory is done; the last one sets its metadata and closes it.
void Restorer::dir_done(DirJob *job)
{
	while (job && job->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
		if (job->apply && job->fd.fd >= 0 && !opts_.dry_run) {
			try {
				set_dir_metadata(job->entry, job->fd.fd, job->dest);
			} catch (const Error &err) {
				failed(job->dest, err);
			}
			count.directories++;
		}
		if (job->fd.fd >= 0)
			open_dirs_--;
		DirJob *parent = job->parent;
		{
			std::lock_guard lk(mu_);
			jobs_.erase(job->self);
		}
		job = parent;
	}
}

void Restorer::queue_file(const Entry &e, DirJob *parent, const std::string &dest)
{
	parent->pending++;
	if (!e.has_list && e.size <= kBatchFileMax) {
		batch_.push_back({e, dest, parent});
		batch_bytes_ += e.size;
		if (batch_.size() >= kBatchFiles || batch_bytes_ >= kBatchBytes)
			submit_batch();
		return;
	}
	pool_.submit([this, e, dest, parent] {
		try {
			restore_file(e, parent, e.name, dest);
		} catch (const Error &err) {
			if (err.code() == Code::Canceled)
				throw;
			failed(dest, err);
		}
		dir_done(parent);
	});
}

void Restorer::restore(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest, bool top)
{
	try {
		restore_item(e, parent, name, dest, top);
	} catch (const Error &err) {
		if (err.code() == Code::Canceled || top)
			throw;
		failed(dest, err);
	}
}

// Lists a directory (its job just made, holding one pending count for the walker) and restores
// each entry under it.
void Restorer::walk_dir(const Entry &e, DirJob *job, DirJob *parent, const std::string &dest)
{
	job->parent = parent;
	parent->pending++;
	try {
		if (e.has_tree) {
			std::string prefix = dest == "/" ? "/" : dest + "/";
			for_each_entry(repo_, e.tree, [&](Entry &c) {
				restore(c, job, c.name, prefix + c.name);
				return true;
			});
		}
	} catch (...) {
		dir_done(job);
		throw;
	}
	dir_done(job);
	emit(opts_.progress, EventKind::Directory, counters(), &dest);
}

void Restorer::restore_dir(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest)
{
	if (open_dirs_ >= max_open_dirs_) {
		// Let the queued files finish, which closes their directories.
		submit_batch();
		pool_.wait();
	}
	int pfd = parent->fd.fd;
	Fd fd(-1);
	bool apply = true;
	if (::mkdirat(pfd, name.c_str(), 0700) != 0) {
		if (errno != EEXIST)
			fail_errno(dest, errno);
		fd = Fd(::openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
		if (fd.fd >= 0) {
			apply = opts_.overwrite != Overwrite::Never; // an existing directory is merged into
		} else if (errno == ENOTDIR || errno == ELOOP) {
			// Not a directory (a symlink, say): replaced per the policy, never followed.
			struct stat st;
			if (decide(e, pfd, name, dest, st) == Action::Skip) {
				skipped++;
				return;
			}
			if (::unlinkat(pfd, name.c_str(), 0) != 0 || ::mkdirat(pfd, name.c_str(), 0700) != 0)
				fail_errno(dest, errno);
		} else {
			fail_errno(dest, errno);
		}
	}
	if (fd.fd < 0) {
		fd = Fd(::openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
		if (fd.fd < 0)
			fail_errno(dest, errno);
	}
	walk_dir(e, adopt(std::move(fd), e, dest, child_rel(parent, name), apply), parent, dest);
}

// -dry-run: says what the restore would do at each item through progress events, reading the
// target and writing nothing.
void Restorer::plan(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest)
{
	int pfd = parent->fd.fd;
	struct stat st;
	Action a = decide(e, pfd, name, dest, st);
	bool dir_there = a != Action::Create && S_ISDIR(st.st_mode);
	if (e.type == EntryType::Directory) {
		Fd fd(-1);
		if (dir_there) { // merged into
			fd = Fd(::openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
			if (fd.fd < 0)
				fail_errno(dest, errno);
		} else if (a == Action::Skip) {
			skipped++;
			emit(opts_.progress, EventKind::Skip, counters(), &dest);
			return;
		} else {
			emit(opts_.progress, a == Action::Create ? EventKind::Create : EventKind::Replace, counters(), &dest);
		}
		count.directories++;
		walk_dir(e, adopt(std::move(fd), e, dest, child_rel(parent, name), false), parent, dest);
		return;
	}
	if (e.type == EntryType::Socket)
		return;
	if (e.type == EntryType::File && !e.error.empty()) {
		item_error(dest, "not restored: its content could not be read at backup time (" + e.error + ")");
		return;
	}
	if (a == Action::Skip) {
		skipped++;
		emit(opts_.progress, EventKind::Skip, counters(), &dest);
		return;
	}
	if (dir_there) {
		Fd fd(::openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
		if (fd.fd < 0)
			fail_errno(dest, errno);
		DIR *d = ::fdopendir(fd.fd);
		if (!d)
			fail_errno(dest, errno);
		fd.release();
		bool empty = true;
		while (struct dirent *de = ::readdir(d))
			if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0)
				empty = false;
		::closedir(d);
		if (!empty) {
			if (!opts_.force)
				fail(Code::Exists, dest + ": a non-empty directory is in the way (not removed without -force)");
			emit(opts_.progress, EventKind::Remove, counters(), &dest);
		}
	}
	if (e.type == EntryType::File) {
		count.files++;
		count.bytes += e.size;
	}
	emit(opts_.progress, a == Action::Create ? EventKind::Create : EventKind::Replace, counters(), &dest);
}

void Restorer::restore_item(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest,
                            bool top)
{
	if (opts_.dry_run) {
		plan(e, parent, name, dest);
		report();
		return;
	}
	switch (e.type) {
	case EntryType::Directory: restore_dir(e, parent, name, dest); return;
	case EntryType::File:
		if (top || e.nlink > 1 || !e.error.empty())
			restore_file(e, parent, name, dest); // hard links: the walker knows the first path
		else
			queue_file(e, parent, dest);
		if (e.error.empty())
			emit(opts_.progress, EventKind::File, counters(), &dest);
		report();
		return;
	case EntryType::Socket: return; // a socket is recreated by the program that listens on it
	default: restore_special(e, parent->fd.fd, name, dest); return;
	}
}

void Restorer::finish()
{
	submit_batch();
	while (!pool_.wait_for(std::chrono::milliseconds(200)))
		report(true);
	report(true);
	for (const auto &bad : repo_.take_bad_copies())
		emit(opts_.progress, EventKind::Warning, counters(), nullptr, &bad);
}

// Opens name in dirfd as a directory without following it, creating it (0700) unless dry;
// Fd(-1) in a dry run when it is not there.
Fd open_ancestor(int dirfd, const std::string &name, const std::string &dest, bool dry, bool &created)
{
	created = false;
	if (dirfd < 0)
		return Fd(-1);
	if (!dry && ::mkdirat(dirfd, name.c_str(), 0700) == 0)
		created = true;
	else if (!dry && errno != EEXIST)
		fail_errno("cannot create restore target " + dest, errno);
	Fd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	if (fd.fd < 0) {
		if (dry && errno == ENOENT)
			return fd;
		if (errno == ENOTDIR || errno == ELOOP)
			fail(Code::Error, "cannot restore under " + dest + ": not a directory");
		fail_errno("cannot open restore target " + dest, errno);
	}
	return fd;
}

} // namespace

void pull(Repository &repo, const SnapshotHeader &h, const std::string &path, const PullOptions &opts)
{
	std::vector<std::string> parts = split_path(path);
	Entry e = lookup(repo, h, path);
	std::error_code ec;
	std::filesystem::path to = std::filesystem::absolute(opts.to.empty() ? "." : opts.to, ec);
	if (ec)
		fail(Code::Invalid, opts.to + ": " + ec.message());
	std::string base = to.lexically_normal().string();
	while (base.size() > 1 && base.back() == '/')
		base.pop_back();

	// The target directory is the caller's: its path is taken as given (links in it followed).
	// Everything below it comes from the snapshot and is reached through descriptors only.
	if (!opts.dry_run) {
		std::filesystem::create_directories(base, ec);
		if (ec)
			fail(Code::Error, "cannot create restore target " + base + ": " + ec.message());
	}
	Fd base_fd(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (base_fd.fd < 0 && !(opts.dry_run && errno == ENOENT))
		fail_errno("cannot open restore target " + base, errno);

	Restorer r(repo, opts, base_fd.fd);
	std::string prefix = base == "/" ? "" : base;
	// Ancestors of the item that the restore creates get their metadata from the snapshot.
	struct Ancestor {
		Entry entry;
		Fd fd;
		std::string dest;
	};
	std::vector<Ancestor> created;
	if (parts.empty()) {
		// The whole snapshot: its root directory is the target itself.
		Fd fd(base_fd.fd >= 0 ? ::dup(base_fd.fd) : -1);
		if (base_fd.fd >= 0 && fd.fd < 0)
			fail_errno(base, errno);
		DirJob *holder = r.adopt(Fd(-1), Entry{}, base, "", false);
		bool apply = !opts.dry_run && opts.overwrite != Overwrite::Never;
		DirJob *job = r.adopt(std::move(fd), e, base, "", apply);
		r.walk_dir(e, job, holder, base);
		r.dir_done(holder);
	} else {
		int at_fd = base_fd.fd;
		Fd held(-1);
		std::string at = prefix, rel;
		if (!opts.rebase) {
			// Recreate the path's ancestors as in the snapshot.
			Entry cur = h.root;
			for (size_t i = 0; i + 1 < parts.size(); i++) {
				Entry next;
				if (!find_in_directory(repo, cur.tree, parts[i], next))
					fail(Code::NotFound, path + ": not found in snapshot");
				at += "/" + parts[i];
				rel += (rel.empty() ? "" : "/") + parts[i];
				bool made = false;
				Fd fd = open_ancestor(at_fd, parts[i], at, opts.dry_run, made);
				at_fd = fd.fd;
				if (made) {
					Fd keep(::dup(fd.fd));
					if (keep.fd < 0)
						fail_errno(at, errno);
					created.push_back({next, std::move(keep), at});
				}
				held = std::move(fd);
				cur = std::move(next);
			}
		}
		Fd parent_fd(at_fd >= 0 ? ::dup(at_fd) : -1);
		if (at_fd >= 0 && parent_fd.fd < 0)
			fail_errno(at, errno);
		DirJob *holder = r.adopt(std::move(parent_fd), Entry{}, at.empty() ? "/" : at, rel, false);
		try {
			r.restore(e, holder, parts.back(), at + "/" + parts.back(), true);
		} catch (...) {
			r.dir_done(holder);
			throw;
		}
		r.dir_done(holder);
	}
	r.finish();
	for (auto it = created.rbegin(); it != created.rend(); ++it) {
		try {
			r.set_dir_metadata(it->entry, it->fd.fd, it->dest);
		} catch (const Error &err) {
			r.corrupt = r.corrupt || err.code() == Code::Corrupt;
			r.count.errors++;
		}
	}
	uint64_t errors = r.count.errors;
	if (r.corrupt)
		fail(Code::Corrupt, "some content failed authentication and was not restored (" + std::to_string(errors) +
		                        " errors)");
	if (errors)
		fail(Code::Partial, std::to_string(errors) + (errors == 1 ? " item" : " items") + " could not be restored");
}

} // namespace plakar
