#include "snapshot/restore.h"

#include <fcntl.h>
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
#include <unordered_set>
#include <utility>

#include "base/error.h"
#include "base/fd.h"
#include "base/pool.h"
#include "crypto/crypto.h"
#include "repository/repository.h"

namespace plakar {

FileReader::FileReader(Repository &repo, const Entry &file) : repo_(repo)
{
	if (file.type != EntryType::File)
		fail(Code::Invalid, file.name + ": not a regular file");
	if (!file.error.empty())
		fail(Code::NotFound, file.name + ": content was not backed up (" + file.error + ")");
	chunks_ = file_chunks(repo, file);
	starts_.reserve(chunks_.size());
	for (const auto &c : chunks_) {
		starts_.push_back(size_);
		size_ += c.len;
	}
}

void FileReader::seek(uint64_t offset)
{
	if (offset > size_)
		fail(Code::Invalid, "seek past the end of the file");
	// The chunk holding offset: the last one starting at or before it.
	size_t i = size_t(std::upper_bound(starts_.begin(), starts_.end(), offset) - starts_.begin());
	if (offset == size_ || i == 0) {
		next_ = offset == size_ ? chunks_.size() : 0;
		cur_.clear();
		pos_ = 0;
		return;
	}
	i--;
	// Stay in the current chunk when possible; otherwise load it on the next read.
	if (next_ == i + 1 && !cur_.empty()) {
		pos_ = size_t(offset - starts_[i]);
		return;
	}
	Bytes b = repo_.get_blob(chunks_[i].id, BlobType::Chunk);
	if (b.size() != chunks_[i].len)
		fail(Code::Corrupt, "chunk " + chunks_[i].id.hex().substr(0, 16) + " has the wrong size");
	cur_ = std::move(b);
	next_ = i + 1;
	pos_ = size_t(offset - starts_[i]);
}

size_t FileReader::read(uint8_t *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		if (pos_ == cur_.size()) {
			if (next_ == chunks_.size())
				break;
			const ChunkRef &c = chunks_[next_];
			Bytes b = repo_.get_blob(c.id, BlobType::Chunk);
			if (b.size() != c.len)
				fail(Code::Corrupt, "chunk " + c.id.hex().substr(0, 16) + " has the wrong size");
			cur_ = std::move(b);
			pos_ = 0;
			next_++;
		}
		size_t n = std::min(len - done, cur_.size() - pos_);
		std::memcpy(buf + done, cur_.data() + pos_, n);
		pos_ += n;
		done += n;
	}
	return done;
}

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

// A directory being restored: its metadata (times above all) is set once its last file is
// written, by whichever thread wrote it.
struct DirJob {
	DirJob *parent = nullptr;
	Entry entry;
	std::string dest;
	std::atomic<size_t> pending{1}; // the walker holds one while it lists the directory
	std::list<std::unique_ptr<DirJob>>::iterator self;
};

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

// Restores a tree: the walker (the calling thread) creates directories and small items and
// hands regular files to a pool of workers (the repository's CPU budget), which read, verify
// and write them. Progress events are emitted by the walker only.
class Restorer {
public:
	Restorer(Repository &repo, const PullOptions &opts)
	    : repo_(repo), opts_(opts), root_(::geteuid() == 0), pool_(repo.cpu(), 256)
	{
	}
	~Restorer() { stop(); }
	void stop() { pool_.stop(); }

	void restore(const Entry &e, const std::string &dest, DirJob *parent);
	// Hands the batch of small files gathered so far to a worker.
	void submit_batch();
	// Waits for the workers (reporting meanwhile); rethrows what is not a per-item failure.
	void finish();
	void set_metadata(const Entry &e, const std::string &dest);
	Counters counters();
	std::atomic<bool> corrupt{false};
	SharedCounters count;

private:
	void restore_file(const Entry &e, const std::string &dest, Prefetched *pre = nullptr);
	void restore_batch(std::vector<BatchFile> &files);
	void prefetch(const std::vector<Id> &ids, Prefetched &pre);
	void prefetch_into(const std::vector<Id> &ids, Prefetched &pre);
	void write_content(const Entry &e, int fd, const std::string &dest, Prefetched *pre);
	void set_file_metadata(const Entry &e, int fd, const std::string &dest);
	void remove_existing(const std::string &dest, bool keep_dir);
	void item_error(const std::string &path, const std::string &msg);
	void failed(const std::string &dest, const Error &err);
	void dir_done(DirJob *job);
	void report(bool force = false);

	Repository &repo_;
	const PullOptions &opts_;
	bool root_;
	std::map<std::pair<uint64_t, uint64_t>, std::string> links_; // walker only
	std::mutex mu_; // jobs_, zero_ids_
	EventRelay relay_;
	std::list<std::unique_ptr<DirJob>> jobs_;
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

void Restorer::remove_existing(const std::string &dest, bool keep_dir)
{
	struct stat st;
	if (::lstat(dest.c_str(), &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		if (keep_dir)
			return;
		std::error_code ec;
		std::filesystem::remove_all(dest, ec);
		if (ec)
			fail(Code::Error, dest + ": " + ec.message());
		return;
	}
	if (::unlink(dest.c_str()) != 0)
		fail_errno(dest, errno);
}

void Restorer::set_metadata(const Entry &e, const std::string &dest)
{
	// Order matters: xattrs while the item is still writable, then owner (chown clears the
	// set-id bits), then mode, then times (every change above touches ctime, not mtime).
	bool link = e.type == EntryType::Symlink;
	for (const auto &[k, v] : e.xattrs)
		if (::lsetxattr(dest.c_str(), k.c_str(), v.data(), v.size(), 0) != 0 && errno != ENOTSUP && errno != EPERM)
			fail_errno(dest + ": setxattr " + k, errno);
	if (root_ && ::lchown(dest.c_str(), e.uid, e.gid) != 0)
		fail_errno(dest + ": chown", errno);
	if (!link && ::chmod(dest.c_str(), e.mode & 07777) != 0)
		fail_errno(dest + ": chmod", errno);
	struct timespec ts[2];
	ts[0] = ts[1] = to_timespec(e.mtime_ns);
	if (::utimensat(AT_FDCWD, dest.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
		fail_errno(dest + ": utimensat", errno);
}

// The same as set_metadata, through the open descriptor of a file just written: no path
// lookups.
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

// Writes a file's content at fd: chunk by chunk, each run of non-zero 64 KiB blocks in one
// pwrite, runs of zero blocks left as holes (sparse files stay sparse).
void Restorer::write_content(const Entry &e, int fd, const std::string &dest, Prefetched *pre)
{
	constexpr size_t kBlock = 64 * 1024;
	thread_local BlobBuffers bufs;
	auto chunks = file_chunks(repo_, e);
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
			restore_file(f.entry, f.dest, &pre);
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

void Restorer::restore_file(const Entry &e, const std::string &dest, Prefetched *pre)
{
	if (!e.error.empty()) {
		item_error(dest, "not restored: its content could not be read at backup time (" + e.error + ")");
		return;
	}
	if (e.nlink > 1) {
		auto it = links_.find({e.dev, e.ino});
		if (it != links_.end()) {
			remove_existing(dest, false);
			if (::link(it->second.c_str(), dest.c_str()) != 0)
				fail_errno(dest, errno);
			count.files++;
			return;
		}
	}
	// A file that is already there is replaced only once the new content is complete: the
	// content goes to a temporary name, renamed into place at the end. A new file is written
	// in place. Either way a failed file (a chunk that does not authenticate) is removed: it
	// never stays with wrong or partial content.
	std::string target = dest;
	Fd f(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
	bool exists = f.fd < 0 && errno == EEXIST;
	if (exists) {
		std::string dir = dest.substr(0, dest.rfind('/'));
		target = dir + "/.plakar-restore-" + hex_encode(crypto::random_bytes(6));
		f.fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (f.fd < 0)
		fail_errno(dest, errno);
	try {
		write_content(e, f.fd, dest, pre);
		set_file_metadata(e, f.fd, dest);
		if (::close(f.release()) != 0)
			fail_errno(dest, errno);
		if (exists) {
			remove_existing(dest, false);
			if (::rename(target.c_str(), dest.c_str()) != 0)
				fail_errno(dest, errno);
		}
	} catch (...) {
		::unlink(target.c_str());
		throw;
	}
	if (e.nlink > 1)
		links_[{e.dev, e.ino}] = dest;
	count.files++;
}

// Any thread: one item of the directory is done; the last one sets its metadata.
void Restorer::dir_done(DirJob *job)
{
	while (job && job->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
		try {
			set_metadata(job->entry, job->dest);
		} catch (const Error &err) {
			failed(job->dest, err);
		}
		count.directories++;
		DirJob *parent = job->parent;
		{
			std::lock_guard lk(mu_);
			jobs_.erase(job->self);
		}
		job = parent;
	}
}

void Restorer::restore(const Entry &e, const std::string &dest, DirJob *parent)
{
	try {
		switch (e.type) {
		case EntryType::Directory: {
			struct stat st;
			if (::lstat(dest.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
				remove_existing(dest, false);
			if (::mkdir(dest.c_str(), 0700) != 0 && errno != EEXIST)
				fail_errno(dest, errno);
			DirJob *job;
			{
				auto j = std::make_unique<DirJob>();
				j->parent = parent;
				j->entry = e;
				j->dest = dest;
				std::lock_guard lk(mu_);
				jobs_.push_front(std::move(j));
				jobs_.front()->self = jobs_.begin();
				job = jobs_.front().get();
			}
			if (parent)
				parent->pending++;
			try {
				if (e.has_tree) {
					std::string prefix = dest == "/" ? "/" : dest + "/";
					for_each_entry(repo_, e.tree, [&](Entry &c) {
						restore(c, prefix + c.name, job);
						return true;
					});
				}
			} catch (...) {
				dir_done(job);
				throw;
			}
			dir_done(job);
			emit(opts_.progress, EventKind::Directory, counters(), &dest);
			return;
		}
		case EntryType::File:
			if (e.nlink > 1 || !e.error.empty()) {
				// Hard links are made by the walker, which knows the first path of each.
				restore_file(e, dest);
			} else if (!e.has_list && e.size <= kBatchFileMax) {
				if (parent)
					parent->pending++;
				batch_.push_back({e, dest, parent});
				batch_bytes_ += e.size;
				if (batch_.size() >= kBatchFiles || batch_bytes_ >= kBatchBytes)
					submit_batch();
			} else {
				if (parent)
					parent->pending++;
				pool_.submit([this, e, dest, parent] {
					try {
						restore_file(e, dest);
					} catch (const Error &err) {
						if (err.code() == Code::Canceled)
							throw;
						failed(dest, err);
					}
					dir_done(parent);
				});
			}
			if (e.error.empty())
				emit(opts_.progress, EventKind::File, counters(), &dest);
			report();
			return;
		case EntryType::Symlink:
			remove_existing(dest, false);
			if (::symlink(e.target.c_str(), dest.c_str()) != 0)
				fail_errno(dest, errno);
			break;
		case EntryType::Fifo:
			remove_existing(dest, false);
			if (::mkfifo(dest.c_str(), 0600) != 0)
				fail_errno(dest, errno);
			break;
		case EntryType::CharDev:
		case EntryType::BlockDev:
			remove_existing(dest, false);
			if (::mknod(dest.c_str(), (e.mode & S_IFMT) | 0600, dev_t(e.rdev)) != 0)
				fail_errno(dest, errno);
			break;
		case EntryType::Socket:
			return; // a socket is recreated by the program that listens on it
		}
		set_metadata(e, dest);
	} catch (const Error &err) {
		if (err.code() == Code::Canceled)
			throw;
		failed(dest, err);
	}
}

void Restorer::finish()
{
	submit_batch();
	while (!pool_.wait_for(std::chrono::milliseconds(200)))
		report(true);
	report(true);
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

	Restorer r(repo, opts);
	std::string dest;
	std::vector<std::pair<Entry, std::string>> created; // ancestors we create, for their metadata
	if (opts.rebase || parts.empty()) {
		dest = parts.empty() ? base : (base == "/" ? "" : base) + "/" + parts.back();
		std::filesystem::create_directories(base, ec);
		if (ec)
			fail(Code::Error, "cannot create restore target " + base + ": " + ec.message());
	} else {
		std::filesystem::create_directories(base, ec);
		if (ec)
			fail(Code::Error, "cannot create restore target " + base + ": " + ec.message());
		// Recreate the path's ancestors as in the snapshot.
		std::string at = base == "/" ? "" : base;
		Entry cur = h.root;
		for (size_t i = 0; i + 1 < parts.size(); i++) {
			Entry next;
			find_in_directory(repo, cur.tree, parts[i], next);
			at += "/" + parts[i];
			struct stat st;
			if (::lstat(at.c_str(), &st) != 0) {
				if (::mkdir(at.c_str(), 0700) != 0)
					fail_errno("cannot create restore target " + at, errno);
				created.emplace_back(next, at);
			} else if (!S_ISDIR(st.st_mode)) {
				fail(Code::Error, "cannot restore under " + at + ": not a directory");
			}
			cur = std::move(next);
		}
		dest = at + "/" + parts.back();
	}
	r.restore(e, dest, nullptr);
	r.finish();
	for (auto it = created.rbegin(); it != created.rend(); ++it) {
		try {
			r.set_metadata(it->first, it->second);
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
