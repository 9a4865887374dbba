// push, the files: an item's metadata (stat, owners, xattrs), reading, chunking and storing a
// file's content on the workers (hard links once, holes skipped, large files chunked by several
// workers), and reuse of an unchanged file's chunks from the parent snapshot.
#include "snapshot/builder_internal.h"

namespace plakar::build {

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

// Worker: reads, chunks and stores one file (Builder::read_file). Chunks of a large file are
// stored by other workers while this one reads on; holes of a sparse file are not read.
class Builder::FileReading {
public:
	FileReading(Builder &b, const std::string &path, Entry &e, int fd)
	    : b_(b), path_(path), e_(e), fd_(fd), ck_(b.repo_.chunker()), max_(ck_.params().max),
	      // Chunks go to other workers only when there are others and the file holds several.
	      spread_(b.pool_.cpu() > 1 && e.size > 4 * size_t(ck_.params().avg))
	{
		thread_local Bytes buf;
		if (buf.size() < 2 * max_)
			buf.resize(2 * max_);
		buf_ = &buf;
	}

	// Reads the file up to the size it had when it was listed: a file that grows meanwhile is
	// recorded as it was then; one that shrinks, as far as it goes.
	void run()
	{
		const uint64_t want = e_.size;
		struct stat fst;
		bool sparse = want >= kHoleMin && ::fstat(fd_, &fst) == 0 && uint64_t(fst.st_blocks) * 512 < want;
		if (sparse)
			read_sparse(want);
		else
			chunk_range(0, want);
		if (read_failed_) {
			e_.chunks.clear();
			return;
		}
		e_.size = total_;
		set_chunks(b_.repo_, e_, std::move(chunks_));
	}

private:
	// Holes of a sparse file are not read: each becomes repeats of one stored chunk of zeros
	// (restored as holes again). Data runs between holes are chunked as usual; holes shorter
	// than kHoleMin are read with the data around them.
	void read_sparse(uint64_t want)
	{
		uint64_t run = 0, pos = 0; // the data run being gathered starts at run
		while (pos < want && !read_failed_ && !shrank_) {
			off_t d = ::lseek(fd_, off_t(pos), SEEK_DATA);
			uint64_t data = d < 0 ? want : std::min<uint64_t>(uint64_t(d), want);
			if (data - pos >= kHoleMin) {
				if (run < pos)
					chunk_range(run, pos);
				zeros(pos, data);
				run = data;
			}
			if (data >= want)
				break;
			off_t h = ::lseek(fd_, off_t(data), SEEK_HOLE);
			pos = h < 0 ? want : std::min<uint64_t>(uint64_t(h), want);
		}
		if (!read_failed_ && !shrank_ && run < want)
			chunk_range(run, want);
	}

	// [from, to) is a hole: chunks of zeros, stored once.
	void zeros(uint64_t from, uint64_t to)
	{
		for (uint64_t h = from; h < to;) {
			size_t n = size_t(std::min<uint64_t>(max_, to - h));
			chunks_.push_back({b_.zero_chunk(n), uint32_t(n)});
			total_ += n;
			b_.count_.bytes += n;
			h += n;
		}
	}

	// Reads [from, to) and cuts it into chunks (the range's end ends the last chunk).
	void chunk_range(uint64_t from, uint64_t to)
	{
		size_t have = 0; // bytes in buf[0, have)
		uint64_t at = from;
		bool eof = false;
		while (!eof || have > 0) {
			if (!fill(have, at, to, eof))
				return;
			size_t start = cut_and_store(have, eof);
			std::memmove(buf_->data(), buf_->data() + start, have - start);
			have -= start;
		}
	}

	// Reads until the buffer holds a whole chunk or the range ends. False on a read error
	// (recorded).
	bool fill(size_t &have, uint64_t &at, uint64_t to, bool &eof)
	{
		while (!eof && have < max_) {
			if (at >= to) {
				eof = true;
				break;
			}
			size_t room = size_t(std::min<uint64_t>(buf_->size() - have, to - at));
			ssize_t r = ::pread(fd_, buf_->data() + have, room, off_t(at));
			if (r < 0) {
				if (errno == EINTR)
					continue;
				e_.error = std::string("read: ") + std::strerror(errno);
				b_.record_error(path_, e_.error);
				read_failed_ = true;
				return false;
			}
			if (r == 0) {
				eof = shrank_ = true;
				break;
			}
			have += size_t(r);
			at += uint64_t(r);
		}
		return true;
	}

	// Cuts every chunk the buffer holds entirely, hashes and stores them; returns where the
	// rest begins.
	size_t cut_and_store(size_t have, bool eof)
	{
		size_t start = 0;
		pieces_.clear();
		while (have - start > 0) {
			size_t n = ck_.cut(buf_->data() + start, have - start, eof);
			if (n == 0)
				break;
			pieces_.emplace_back(buf_->data() + start, n);
			start += n;
		}
		ids_.resize(pieces_.size());
		if (spread_ && pieces_.size() > 1) {
			// Another worker hashes some of the chunks meanwhile (the buffer stays put until
			// every id is known).
			auto jobs = std::make_shared<HashJobs>(b_.repo_, pieces_, ids_);
			b_.pool_.submit([jobs] {
				while (jobs->run_one()) {
				}
			});
			jobs->finish();
		} else {
			for (size_t k = 0; k < pieces_.size(); k++)
				ids_[k] = b_.repo_.blob_id(pieces_[k]);
		}
		for (size_t k = 0; k < pieces_.size(); k++)
			store_chunk(pieces_[k], ids_[k]);
		return start;
	}

	void store_chunk(ByteView chunk, const Id &id)
	{
		if (spread_ && !b_.repo_.has_blob(id)) {
			auto copy = b_.copies_.copy(chunk);
			Repository &repo = b_.repo_;
			b_.pool_.submit([&repo, id, copy] { repo.put_blob(BlobType::Chunk, id, *copy); }, chunk.size());
		} else {
			b_.repo_.put_blob(BlobType::Chunk, id, chunk);
		}
		chunks_.push_back({id, uint32_t(chunk.size())});
		total_ += chunk.size();
		b_.count_.bytes += chunk.size();
	}

	Builder &b_;
	const std::string &path_;
	Entry &e_;
	const int fd_;
	const Chunker &ck_;
	const size_t max_;
	const bool spread_;
	Bytes *buf_;
	std::vector<ChunkRef> chunks_;
	std::vector<ByteView> pieces_; // the chunks cut from the buffer, and their ids
	std::vector<Id> ids_;
	uint64_t total_ = 0;
	bool read_failed_ = false, shrank_ = false;
};

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
	if (e.size > size_t(repo_.chunker().params().avg))
		::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	FileReading(*this, path, e, fd).run();
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

} // namespace plakar::build
