// pull, file content: chunks prefetched and written in order, holes left as holes, verified on
// request, small files batched on the workers, hard links as links.
#include "snapshot/restore_internal.h"

namespace plakar::restore_detail {

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

} // namespace plakar::restore_detail
