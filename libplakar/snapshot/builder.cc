#include "snapshot/builder.h"

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
#include <list>
#include <condition_variable>
#include <mutex>

#include "base/error.h"
#include "base/system.h"
#include "base/fd.h"
#include "base/pool.h"
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

// Holes of a sparse file at least this long are not read (see store_file).
constexpr uint64_t kHoleMin = 1 << 20;

// A virtual directory on the way to a pushed path: "/" and "/usr" when pushing /usr/share.
struct VNode {
	bool pushed = false; // this path itself was pushed: walk it for real
	std::map<std::string, std::unique_ptr<VNode>> children;
};

// Whether two entries are the same apart from a directory's tree (compared on its own).
bool same_entry(const Entry &a, const Entry &b)
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

	WorkPool pool_; // last: destroyed (joined) first
};

Counters Builder::counters()
{
	Counters c = count_.load();
	c.stored_bytes = repo_.stats().bytes_written;
	return c;
}

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

// Any thread: the event itself is emitted by the walker (callbacks run on the calling thread).
void Builder::record_error(const std::string &path, const std::string &msg)
{
	count_.errors++;
	{
		std::lock_guard lk(mu_);
		header.errors.emplace_back(path, msg);
	}
	relay_.error(path, msg);
}

void Builder::report(bool force)
{
	relay_.report(opts_.progress, [this] { return counters(); }, force);
}

Entry Builder::stat_entry(const std::string &path, const std::string &name, const struct stat &st, const Entry *prev)
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
	if (prev && prev->type == e.type && prev->ino == e.ino && prev->dev == e.dev && prev->ctime_ns == e.ctime_ns &&
	    prev->error.empty()) {
		e.xattrs = prev->xattrs;
		if (e.type == EntryType::Symlink) {
			e.target = prev->target;
			e.size = prev->size;
		}
		return e;
	}
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

// Worker: stores one file's content (once per inode for hard links).
void Builder::store_file(const std::string &path, Entry &e)
{
	if (e.nlink <= 1) {
		read_file(path, e);
		return;
	}
	// A hard link: its content is read once, by the first worker that meets the inode.
	std::promise<Content> mine;
	std::shared_future<Content> first;
	{
		std::lock_guard lk(mu_);
		auto [it, fresh] = hardlinks_.try_emplace({e.dev, e.ino});
		if (fresh)
			it->second = mine.get_future().share();
		else
			first = it->second;
	}
	if (first.valid()) {
		// The first link is being read (or was) by another worker: take its content, or read
		// this link on its own when that failed.
		Content c = first.get();
		if (!c.ok) {
			read_file(path, e);
			return;
		}
		e.chunks = std::move(c.chunks);
		e.has_list = c.has_list;
		e.list = c.list;
		return;
	}
	try {
		read_file(path, e);
	} catch (...) {
		mine.set_value(Content{});
		throw;
	}
	mine.set_value(e.error.empty() ? Content{true, e.chunks, e.has_list, e.list} : Content{});
}

namespace {

// The ids of the chunks cut from one buffer of a large file, computed by its reader and by a
// helper on another worker at once. The reader takes jobs too and then waits only for the jobs
// a helper has begun, so a helper that starts late (or never) costs nothing: it finds no job.
struct HashJobs {
	HashJobs(const Repository &r, const std::vector<ByteView> &p, std::vector<Id> &i) : repo(r), pieces(&p), ids(&i) {}
	// Runs one job; false when none is left.
	bool run_one()
	{
		size_t k;
		{
			std::lock_guard lk(mu);
			if (!pieces || next == pieces->size())
				return false;
			k = next++;
			running++;
		}
		Id id;
		std::exception_ptr err;
		try {
			id = repo.blob_id((*pieces)[k]);
		} catch (...) {
			err = std::current_exception();
		}
		std::lock_guard lk(mu);
		(*ids)[k] = id;
		if (err && !error)
			error = err;
		if (--running == 0)
			cv.notify_all();
		return true;
	}
	// Reader: runs what is left, waits for the helpers' jobs, and closes the batch.
	void finish()
	{
		while (run_one()) {
		}
		std::unique_lock lk(mu);
		cv.wait(lk, [&] { return running == 0; });
		pieces = nullptr;
		if (error)
			std::rethrow_exception(error);
	}
	const Repository &repo;
	std::mutex mu;
	std::condition_variable cv;
	const std::vector<ByteView> *pieces; // null once the reader has moved on
	std::vector<Id> *ids;
	size_t next = 0, running = 0;
	std::exception_ptr error;
};

} // namespace

// Worker: reads, chunks and stores one file. Chunks of a large file are stored by other
// workers while this one reads on.
void Builder::read_file(const std::string &path, Entry &e)
{
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
	const size_t max = ck.params().max;
	// Chunks are handed to other workers only when there are others and the file holds several.
	const bool spread = pool_.cpu() > 1 && e.size > 4 * size_t(ck.params().avg);
	if (e.size > size_t(ck.params().avg))
		::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	thread_local Bytes buf;
	if (buf.size() < 2 * max)
		buf.resize(2 * max);
	std::vector<ChunkRef> chunks;
	std::vector<ByteView> pieces; // the chunks cut from buf, and their ids
	std::vector<Id> ids;
	uint64_t total = 0;
	bool read_failed = false, shrank = false;
	auto store_chunk = [&](ByteView chunk, const Id &id) {
		if (spread && !repo_.has_blob(id)) {
			auto copy = copies_.copy(chunk);
			pool_.submit([this, id, copy] { repo_.put_blob(BlobType::Chunk, id, *copy); }, chunk.size());
		} else {
			repo_.put_blob(BlobType::Chunk, id, chunk);
		}
		chunks.push_back({id, uint32_t(chunk.size())});
		total += chunk.size();
		count_.bytes += chunk.size();
	};
	// Reads [from, to) and cuts it into chunks (the range's end ends the last chunk).
	auto chunk_range = [&](uint64_t from, uint64_t to) {
		size_t have = 0; // bytes in buf[0, have)
		uint64_t at = from;
		bool eof = false;
		while (!eof || have > 0) {
			while (!eof && have < max) {
				if (at >= to) {
					eof = true;
					break;
				}
				size_t room = size_t(std::min<uint64_t>(buf.size() - have, to - at));
				ssize_t r = ::pread(fd, buf.data() + have, room, off_t(at));
				if (r < 0) {
					if (errno == EINTR)
						continue;
					e.error = std::string("read: ") + std::strerror(errno);
					record_error(path, e.error);
					read_failed = true;
					return;
				}
				if (r == 0) {
					eof = shrank = true;
					break;
				}
				have += size_t(r);
				at += uint64_t(r);
			}
			size_t start = 0;
			// Cut every chunk that the buffer holds entirely, then refill.
			pieces.clear();
			while (have - start > 0) {
				size_t n = ck.cut(buf.data() + start, have - start, eof);
				if (n == 0)
					break;
				pieces.emplace_back(buf.data() + start, n);
				start += n;
			}
			ids.resize(pieces.size());
			if (spread && pieces.size() > 1) {
				// Another worker hashes some of the chunks meanwhile (the buffer stays put until
				// every id is known).
				auto jobs = std::make_shared<HashJobs>(repo_, pieces, ids);
				pool_.submit([jobs] {
					while (jobs->run_one()) {
					}
				});
				jobs->finish();
			} else {
				for (size_t k = 0; k < pieces.size(); k++)
					ids[k] = repo_.blob_id(pieces[k]);
			}
			for (size_t k = 0; k < pieces.size(); k++)
				store_chunk(pieces[k], ids[k]);
			std::memmove(buf.data(), buf.data() + start, have - start);
			have -= start;
		}
	};
	// The file is read up to the size it had when it was listed: a file that grows meanwhile is
	// recorded as it was then; one that shrinks, as far as it goes.
	const uint64_t want = e.size;
	struct stat fst;
	bool sparse = want >= kHoleMin && ::fstat(fd, &fst) == 0 && uint64_t(fst.st_blocks) * 512 < want;
	if (!sparse) {
		chunk_range(0, want);
	} else {
		// Holes of a sparse file are not read: each becomes repeats of one stored chunk of zeros
		// (restored as holes again). Data runs between holes are chunked as usual; holes shorter
		// than kHoleMin are read with the data around them.
		uint64_t run = 0, pos = 0; // the data run being gathered starts at run
		while (pos < want && !read_failed && !shrank) {
			off_t d = ::lseek(fd, off_t(pos), SEEK_DATA);
			uint64_t data = d < 0 ? want : std::min<uint64_t>(uint64_t(d), want);
			if (data - pos >= kHoleMin) {
				if (run < pos)
					chunk_range(run, pos);
				for (uint64_t h = pos; h < data;) {
					size_t n = size_t(std::min<uint64_t>(max, data - h));
					Id zid = zero_chunk(n);
					chunks.push_back({zid, uint32_t(n)});
					total += n;
					count_.bytes += n;
					h += n;
				}
				run = data;
			}
			if (data >= want)
				break;
			off_t h = ::lseek(fd, off_t(data), SEEK_HOLE);
			pos = h < 0 ? want : std::min<uint64_t>(uint64_t(h), want);
		}
		if (!read_failed && !shrank && run < want)
			chunk_range(run, want);
	}
	if (read_failed) {
		e.chunks.clear();
		return;
	}
	e.size = total;
	set_chunks(repo_, e, std::move(chunks));
}

// Walker: a file whose size, mtime, ctime, inode and mode are those recorded in the parent
// snapshot is not read again: its chunk list is taken from the parent (after checking the
// repository still has its blobs).
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
	stats.unchanged++;
	return true;
}

// Any thread: the id of a chunk of n zeros, stored once.
Id Builder::zero_chunk(size_t n)
{
	std::lock_guard lk(zero_mu_);
	auto it = zero_ids_.find(n);
	if (it != zero_ids_.end())
		return it->second;
	Bytes zeros(n);
	Id id = repo_.blob_id(zeros);
	repo_.put_blob(BlobType::Chunk, id, zeros);
	zero_ids_.emplace(n, id);
	return id;
}

DirNode *Builder::new_node(DirNode *parent, size_t leaf, size_t slot, const Entry *prev, size_t expected)
{
	auto n = std::make_unique<DirNode>();
	n->parent = parent;
	n->leaf = leaf;
	n->slot = slot;
	if (prev && prev->type == EntryType::Directory && prev->has_tree) {
		n->has_prev = true;
		n->prev_tree = prev->tree;
	}
	n->expected = expected;
	n->leaves.emplace_back();
	n->leaves.back().entries.reserve(std::min(expected, kLeafMax));
	n->pending++; // for its first leaf
	parent->leaves[leaf].pending++;
	std::lock_guard lk(mu_);
	nodes_.push_front(std::move(n));
	nodes_.front()->self = nodes_.begin();
	return nodes_.front().get();
}

std::pair<size_t, size_t> Builder::append(DirNode *d, Entry e)
{
	size_t l = d->leaves.size() - 1;
	if (d->leaves[l].entries.size() == kLeafMax) {
		// Full: a new leaf takes the next entries, and this one is let go.
		d->leaves.emplace_back();
		d->leaves.back().entries.reserve(std::min(d->expected - d->appended, kLeafMax));
		d->pending++;
		entry_done(d, l);
		l++;
	}
	Leaf &leaf = d->leaves[l];
	// Reserved for what the directory listed: entries never move once handed to workers.
	if (leaf.entries.size() == leaf.entries.capacity())
		fail(Code::Error, "push: more entries than listed");
	leaf.entries.push_back(std::move(e));
	d->appended++;
	return {l, leaf.entries.size() - 1};
}

void Builder::entry_done(DirNode *n, size_t l)
{
	Leaf &leaf = n->leaves[l];
	if (leaf.pending.fetch_sub(1, std::memory_order_acq_rel) != 1)
		return;
	if (n == &top_)
		return;
	// A full leaf is stored now and its entries freed; the last one waits for the directory
	// (which may turn out unchanged, then nothing is stored).
	if (leaf.entries.size() == kLeafMax) {
		leaf.ref = {leaf.entries.front().name, store_leaf(repo_, leaf.entries.data(), leaf.entries.size())};
		leaf.stored = true;
		std::vector<Entry>().swap(leaf.entries);
	}
	dir_done(n);
}

void Builder::dir_done(DirNode *n)
{
	if (n->pending.fetch_sub(1, std::memory_order_acq_rel) != 1)
		return;
	Id tree;
	if (n->leaves.size() == 1 && !n->leaves[0].stored && n->has_prev && !n->changed && repo_.has_blob(n->prev_tree)) {
		tree = n->prev_tree;
	} else {
		std::vector<TreeNodeRef> refs;
		refs.reserve(n->leaves.size());
		for (auto &leaf : n->leaves) {
			if (!leaf.stored)
				leaf.ref = {leaf.entries.empty() ? std::string() : leaf.entries.front().name,
				            store_leaf(repo_, leaf.entries.data(), leaf.entries.size())};
			refs.push_back(leaf.ref);
		}
		tree = store_levels(repo_, std::move(refs));
	}
	DirNode *parent = n->parent;
	size_t l = n->leaf;
	Entry &e = parent->entry(l, n->slot);
	e.tree = tree;
	e.has_tree = true;
	if (!n->has_prev || tree != n->prev_tree)
		parent->changed = true;
	{
		std::lock_guard lk(mu_);
		nodes_.erase(n->self);
	}
	entry_done(parent, l);
}

// Walker: fills entry i of node (stat'ed already) with its content, now or through workers.
void Builder::store_one(DirNode *node, size_t l, size_t i, const std::string &path)
{
	Entry &fe = node->entry(l, i);
	store_file(path, fe);
	size_ += fe.size;
	entry_done(node, l);
}

void Builder::flush_batch()
{
	if (batch_.empty())
		return;
	auto jobs = std::make_shared<std::vector<FileJob>>(std::move(batch_));
	batch_.clear();
	pool_.submit(
	    [this, jobs] {
		    for (const auto &j : *jobs)
			    store_one(j.node, j.leaf, j.slot, j.path);
	    },
	    batch_bytes_);
	batch_bytes_ = 0;
}

void Builder::dispatch(DirNode *node, size_t l, size_t i, const std::string &path, const VNode *v, const Entry *prev)
{
	Entry &e = node->entry(l, i);
	if (v && !v->pushed) {
		virtual_dir(node, l, i, path, *v, prev);
		return;
	}
	switch (e.type) {
	case EntryType::Directory:
		if (!prev || !same_entry(e, *prev))
			node->changed = true;
		walk_dir(node, l, i, path, prev);
		count_.directories++;
		emit(opts_.progress, EventKind::Directory, counters(), &path);
		break;
	case EntryType::File:
		count_.files++;
		if (reuse(e, prev)) {
			size_ += e.size;
			if (!same_entry(e, *prev))
				node->changed = true;
		} else {
			node->changed = true;
			node->leaves[l].pending++;
			if (e.size <= kSmallFile) {
				// Small files go to the workers in batches: one task, one wake-up for many.
				batch_.push_back({node, l, i, path});
				batch_bytes_ += e.size;
				if (batch_.size() >= kBatchFiles || batch_bytes_ >= kBatchBytes)
					flush_batch();
			} else {
				pool_.submit([this, node, l, i, path] { store_one(node, l, i, path); });
			}
		}
		emit(opts_.progress, EventKind::File, counters(), &path);
		break;
	default:
		if (!prev || !same_entry(e, *prev))
			node->changed = true;
		break;
	}
	report();
}

void Builder::walk_dir(DirNode *node, size_t l, size_t i, const std::string &path, const Entry *prev)
{
	Entry &e = node->entry(l, i);
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
		std::sort(names.begin(), names.end());
	}
	struct CloseDir {
		DIR *d;
		~CloseDir()
		{
			if (d)
				::closedir(d);
		}
	} closer{d};
	const int dfd = d ? ::dirfd(d) : -1;
	DirNode *dir = new_node(node, l, i, prev, names.size());
	std::string prefix = path == "/" ? "/" : path + "/";
	// The parent snapshot's entries are read alongside, in the same (name) order: one leaf at
	// a time in memory, whatever the size of the directory.
	std::optional<DirIterator> before;
	Entry pe;
	bool have_pe = false;
	auto next_prev = [&] {
		try {
			have_pe = before->next(pe);
		} catch (const Error &err) {
			// The parent is only a shortcut: if it cannot be read, read everything.
			if (err.code() == Code::Canceled)
				throw;
			have_pe = false;
		}
		if (!have_pe)
			before.reset();
	};
	if (dir->has_prev) {
		try {
			before.emplace(repo_, dir->prev_tree);
		} catch (const Error &err) {
			if (err.code() == Code::Canceled)
				throw;
		}
		if (before)
			next_prev();
	}
	size_t matched = 0;
	bool gone = false;
	for (auto &n : names) {
		std::string child = prefix + n;
		while (have_pe && pe.name < n) {
			gone = true; // in the parent snapshot, not here any more
			next_prev();
		}
		const Entry *match = have_pe && pe.name == n ? &pe : nullptr;
		if (excluded(child, n))
			continue;
		struct stat st;
		if (::fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
			record_error(child, errno == ENOENT ? "vanished during backup" : std::string("lstat: ") + std::strerror(errno));
			continue;
		}
		auto [cl, ci] = append(dir, stat_entry(child, n, st, match));
		if (match)
			matched++;
		dispatch(dir, cl, ci, child, nullptr, match);
		if (match)
			next_prev();
	}
	// Entries gone, added, or not read: the directory's tree is encoded anew.
	if (!dir->has_prev || gone || have_pe || matched != dir->appended)
		dir->changed = true;
	// The walker is done with it: its last leaf, then the directory.
	entry_done(dir, dir->leaves.size() - 1);
	dir_done(dir);
}

void Builder::virtual_dir(DirNode *node, size_t l, size_t i, const std::string &path, const VNode &v, const Entry *prev)
{
	DirNode *dir = new_node(node, l, i, prev, v.children.size());
	dir->changed = true; // never compared: a few nodes at most
	std::string prefix = path == "/" ? "/" : path + "/";
	struct Kid {
		std::string name;
		const VNode *v;
		std::pair<size_t, size_t> at;
	};
	std::vector<Kid> kids;
	for (const auto &[n, c] : v.children) {
		struct stat st;
		// Only reachable for a vanished path on the way to a pushed one.
		if (::lstat((prefix + n).c_str(), &st) != 0)
			fail_errno(prefix + n, errno);
		auto at = append(dir, stat_entry(prefix + n, n, st));
		kids.push_back({n, c.get(), at});
	}
	for (size_t k = 0; k < kids.size(); k++) {
		Entry pc;
		bool have = false;
		try {
			have = dir->has_prev && find_in_directory(repo_, dir->prev_tree, kids[k].name, pc);
		} catch (const Error &err) {
			if (err.code() == Code::Canceled)
				throw;
			// The parent is only a shortcut: without it, everything is read.
		}
		dispatch(dir, kids[k].at.first, kids[k].at.second, prefix + kids[k].name, kids[k].v, have ? &pc : nullptr);
	}
	entry_done(dir, dir->leaves.size() - 1);
	dir_done(dir);
}

Entry Builder::build_root(const VNode &top, const Entry *prev)
{
	struct stat st;
	if (::lstat("/", &st) != 0)
		fail_errno("/", errno);
	top_.expected = 1;
	top_.leaves.emplace_back();
	top_.leaves[0].entries.reserve(1);
	append(&top_, stat_entry("/", "/", st));
	dispatch(&top_, 0, 0, "/", &top, prev);
	flush_batch();
	// Every file and directory is handed out: wait for the workers, reporting meanwhile.
	while (!pool_.wait_for(std::chrono::milliseconds(200)))
		report(true);
	report(true);
	entry_done(&top_, 0); // the walker's hold
	Entry &root = top_.entry(0, 0);
	if (top_.leaves[0].pending != 0 || !root.has_tree)
		fail(Code::Error, "push: the tree was not completed");
	header.files = count_.files;
	header.directories = count_.directories;
	header.size = size_;
	std::lock_guard lk(mu_);
	std::sort(header.errors.begin(), header.errors.end());
	return root;
}

} // namespace

SnapshotHeader push(Repository &repo, const std::vector<std::string> &paths, const PushOptions &opts_in, PushStats *stats)
{
	if (paths.empty())
		fail(Code::Invalid, "nothing to push: no path given");
	for (const auto &p : opts_in.exclude_patterns)
		if (p.empty())
			fail(Code::Invalid, "empty exclude pattern");
	PushOptions opts = opts_in;
	for (auto &p : repo.store().local_paths())
		opts.exclude.push_back(std::move(p));
	// A parent named by the caller is resolved before anything is written: an unknown or
	// ambiguous one fails the push.
	std::optional<SnapshotHeader> named_parent;
	if (opts.use_parent && !opts.parent.empty())
		named_parent = load_snapshot(repo, resolve_snapshot(repo, opts.parent));
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
	b.header.hostname = host_name();
	b.header.username = b.user_name(::geteuid());
	b.header.time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
	                       std::chrono::system_clock::now().time_since_epoch())
	                       .count();
	try {
		std::optional<SnapshotHeader> parent = std::move(named_parent);
		if (opts.use_parent && !parent) {
			try {
				parent = find_parent(repo, roots, b.header.hostname);
			} catch (const Error &) {
				// Only a shortcut: a damaged snapshot elsewhere must not stop a backup.
			}
		}
		b.header.root = b.build_root(top, parent ? &parent->root : nullptr);
	} catch (...) {
		// Keep what was stored: index it so the next push reuses it. The workers stop first.
		b.stop();
		try {
			repo.flush();
		} catch (...) {
		}
		throw;
	}
	if (stats)
		*stats = b.stats;
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
