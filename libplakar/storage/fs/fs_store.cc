#include "storage/fs/fs_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <filesystem>

#include "base/error.h"
#include "base/fd.h"
#include "crypto/crypto.h"

namespace plakar {

namespace {

const char *subdir(Kind k)
{
	switch (k) {
	case Kind::Pack: return "packs";
	case Kind::Index: return "index";
	case Kind::Snapshot: return "snapshots";
	case Kind::Key: return "keys";
	case Kind::Lock: return "locks";
	}
	return "other";
}

void write_all(int fd, const uint8_t *p, size_t n, const std::string &path)
{
	while (n) {
		ssize_t w = ::write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			fail_errno(path, errno);
		}
		p += w;
		n -= size_t(w);
	}
}

// Large objects (packs) bypass the page cache: they are rarely read back soon, and on the
// machines measured a buffered write costs about ten times the CPU of a direct one. O_DIRECT
// wants the address, length and offset aligned, so the data goes through an aligned staging
// buffer and the unaligned tail is written buffered. Where O_DIRECT is refused (tmpfs, some
// network filesystems) everything is written buffered.
constexpr size_t kDirectMin = 1 << 20;
constexpr size_t kDirectAlign = 4096;
constexpr size_t kDirectStage = 4 << 20;

void write_data(int fd, ByteView data, const std::string &path)
{
	size_t done = 0;
	if (data.size() >= kDirectMin) {
		int flags = ::fcntl(fd, F_GETFL);
		if (flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_DIRECT) == 0) {
			struct Free {
				void operator()(void *p) const { std::free(p); }
			};
			// One per thread that writes packs (the uploader), kept: no mapping per pack.
			thread_local std::unique_ptr<void, Free> stage(std::aligned_alloc(kDirectAlign, kDirectStage));
			size_t aligned = data.size() / kDirectAlign * kDirectAlign;
			while (stage && done < aligned) {
				size_t n = std::min(kDirectStage, aligned - done);
				std::memcpy(stage.get(), data.data() + done, n);
				ssize_t w = ::pwrite(fd, stage.get(), n, off_t(done));
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0 && errno == EINVAL)
					break; // refused after all: the rest goes buffered
				if (w < 0)
					fail_errno(path, errno);
				if (size_t(w) % kDirectAlign != 0) {
					done += size_t(w);
					break; // short write at an odd size: continue buffered
				}
				done += size_t(w);
			}
			if (::fcntl(fd, F_SETFL, flags) != 0)
				fail_errno(path, errno);
			if (::lseek(fd, off_t(done), SEEK_SET) < 0)
				fail_errno(path, errno);
		}
	}
	write_all(fd, data.data() + done, data.size() - done, path);
}

// After a rename into dir: the new name is durable once this returns (docs/storage.md), so a
// failure to open or sync the directory fails the put.
void fsync_dir(const std::string &dir)
{
	Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (d.fd < 0)
		fail_errno(dir, errno);
	if (::fsync(d.fd) != 0 && errno != EINVAL)
		fail_errno(dir + ": fsync", errno);
}

void make_dir(const std::string &p)
{
	if (::mkdir(p.c_str(), 0700) != 0 && errno != EEXIST)
		fail_errno(p, errno);
}

// Reads exactly length bytes at offset into out (Code::Corrupt when the file is shorter).
void pread_exact(int fd, uint64_t offset, uint64_t length, uint8_t *out, const std::string &path)
{
	uint64_t got = 0;
	while (got < length) {
		ssize_t r = ::pread(fd, out + got, length - got, off_t(offset + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail_errno(path, errno);
		}
		if (r == 0)
			fail(Code::Corrupt, path + ": truncated (wanted " + std::to_string(length) + " bytes at offset " +
			                        std::to_string(offset) + ")");
		got += uint64_t(r);
	}
}

Bytes pread_exact(int fd, uint64_t offset, uint64_t length, const std::string &path)
{
	Bytes out(length);
	pread_exact(fd, offset, length, out.data(), path);
	return out;
}

// Opens an object of the store for reading: a regular file only (a FIFO, device or link put in
// the repository is refused, never waited on or followed).
Fd open_object_file(const std::string &path, struct stat &st)
{
	Fd f(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
	if (f.fd < 0) {
		if (errno == ELOOP)
			fail(Code::Corrupt, path + ": not a regular file");
		fail_errno(path, errno);
	}
	if (::fstat(f.fd, &st) != 0)
		fail_errno(path, errno);
	if (!S_ISREG(st.st_mode))
		fail(Code::Corrupt, path + ": not a regular file");
	return f;
}

// A whole object (whole, at most limit bytes) or a range of one.
Bytes read_file_range(const std::string &path, uint64_t offset, uint64_t length, bool whole, uint64_t limit = 0)
{
	struct stat st;
	Fd f = open_object_file(path, st);
	if (whole) {
		length = uint64_t(st.st_size);
		if (length > limit)
			fail(Code::Corrupt, path + ": " + std::to_string(length) + " bytes, more than such an object can hold");
	}
	return pread_exact(f.fd, offset, length, path);
}

} // namespace

FsStore::FsStore(std::string root) : root_(std::move(root))
{
	while (root_.size() > 1 && root_.back() == '/')
		root_.pop_back();
}

std::string FsStore::dir_of(Kind kind, const std::string &name) const
{
	if (!valid_object_name(name))
		fail(Code::Invalid, std::string("invalid ") + kind_name(kind) + " name: " + name);
	std::string d = root_ + "/" + subdir(kind);
	if (kind == Kind::Pack)
		d += "/" + name.substr(0, 2);
	return d;
}

std::string FsStore::path_of(Kind kind, const std::string &name) const { return dir_of(kind, name) + "/" + name; }

void FsStore::write_atomic(const std::string &dir, const std::string &path, ByteView data)
{
	std::string tmp = root_ + "/tmp/" + hex_encode(crypto::random_bytes(8));
	{
		Fd f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
		if (f.fd < 0)
			fail_errno(tmp, errno);
		try {
			write_data(f.fd, data, tmp);
			if (::fsync(f.fd) != 0)
				fail_errno(tmp, errno);
		} catch (...) {
			::unlink(tmp.c_str());
			throw;
		}
	}
	if (::rename(tmp.c_str(), path.c_str()) != 0) {
		int e = errno;
		::unlink(tmp.c_str());
		fail_errno(path, e);
	}
	fsync_dir(dir);
}

uint64_t FsStore::remove_stale_temporaries(std::chrono::seconds min_age)
{
	std::string dir = root_ + "/tmp";
	Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	if (d.fd < 0) {
		if (errno == ENOENT)
			return 0;
		fail_errno(dir, errno);
	}
	DIR *it = ::fdopendir(::dup(d.fd));
	if (!it)
		fail_errno(dir, errno);
	std::unique_ptr<DIR, int (*)(DIR *)> close_it(it, ::closedir);
	time_t now = ::time(nullptr);
	uint64_t removed = 0;
	while (struct dirent *e = ::readdir(it)) {
		std::string name = e->d_name;
		if (name == "." || name == "..")
			continue;
		struct stat st;
		if (::fstatat(d.fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
			continue; // gone meanwhile, or not ours
		if (now - st.st_mtime < min_age.count())
			continue;
		if (::unlinkat(d.fd, name.c_str(), 0) == 0)
			removed++;
	}
	return removed;
}

void FsStore::create(ByteView config, const std::string &key_name, ByteView key)
{
	struct stat st;
	if (::stat(root_.c_str(), &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			fail(Code::Exists, root_ + ": exists and is not a directory");
		DIR *d = ::opendir(root_.c_str());
		if (!d)
			fail_errno(root_, errno);
		bool empty = true;
		while (auto *e = ::readdir(d))
			if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
				empty = false;
		::closedir(d);
		if (::access((root_ + "/CONFIG").c_str(), F_OK) == 0)
			fail(Code::Exists, root_ + ": a repository already exists there");
		if (!empty)
			fail(Code::Exists, root_ + ": directory is not empty");
	} else if (errno == ENOENT) {
		// Missing parents are created too, like mkdir -p; the repository itself is private.
		std::error_code ec;
		std::filesystem::create_directories(root_, ec);
		if (ec)
			fail(Code::Error, root_ + ": " + ec.message());
		::chmod(root_.c_str(), 0700);
	} else {
		fail_errno(root_, errno);
	}
	for (const char *s : {"tmp", "packs", "index", "snapshots", "keys", "locks"})
		make_dir(root_ + "/" + s);
	char xx[3];
	for (int i = 0; i < 256; i++) {
		std::snprintf(xx, sizeof xx, "%02x", i);
		make_dir(root_ + "/packs/" + xx);
	}
	if (!key.empty())
		put(Kind::Key, key_name, key);
	// CONFIG last: a repository without it is not one, so an interrupted create is not mistaken
	// for a repository.
	write_atomic(root_, root_ + "/CONFIG", config);
}

Bytes FsStore::open()
{
	struct stat st;
	if (::stat(root_.c_str(), &st) != 0) {
		if (errno == ENOENT)
			fail(Code::NotFound, root_ + ": repository does not exist");
		fail_errno(root_, errno);
	}
	if (!S_ISDIR(st.st_mode) || ::access((root_ + "/CONFIG").c_str(), F_OK) != 0)
		fail(Code::NotFound, root_ + ": not a plakar repository");
	return read_file_range(root_ + "/CONFIG", 0, 0, true, kMaxConfigSize);
}

void FsStore::put(Kind kind, const std::string &name, ByteView data)
{
	std::string dir = dir_of(kind, name);
	write_atomic(dir, dir + "/" + name, data);
	if (kind == Kind::Pack) { // a pack put again is a new file: a kept descriptor would read the old one
		std::lock_guard lk(fds_mu_);
		fds_.remove_if([&](const auto &f) { return f.first == name; });
	}
}

Bytes FsStore::get(Kind kind, const std::string &name)
{
	std::string p = path_of(kind, name);
	try {
		return read_file_range(p, 0, 0, true, max_object_size(kind));
	} catch (const Error &e) {
		if (e.is_not_found())
			fail(Code::NotFound, std::string(kind_name(kind)) + " " + name + " not found");
		throw;
	}
}

std::shared_ptr<Fd> FsStore::open_pack(const std::string &name, const std::string &path)
{
	constexpr size_t kKept = 16;
	{
		std::lock_guard lk(fds_mu_);
		for (auto it = fds_.begin(); it != fds_.end(); ++it)
			if (it->first == name) {
				fds_.splice(fds_.begin(), fds_, it);
				return it->second;
			}
	}
	struct stat st;
	auto fd = std::make_shared<Fd>(open_object_file(path, st));
	std::lock_guard lk(fds_mu_);
	fds_.emplace_front(name, fd);
	if (fds_.size() > kKept)
		fds_.pop_back();
	return fd;
}

Bytes FsStore::get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length)
{
	if (kind == Kind::Pack) {
		Bytes out(length);
		read_range(kind, name, offset, length, out.data());
		return out;
	}
	std::string p = path_of(kind, name);
	try {
		return read_file_range(p, offset, length, false);
	} catch (const Error &e) {
		if (e.is_not_found())
			fail(Code::NotFound, std::string(kind_name(kind)) + " " + name + " not found");
		throw;
	}
}

void FsStore::read_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length, uint8_t *dst)
{
	if (kind != Kind::Pack) {
		Store::read_range(kind, name, offset, length, dst);
		return;
	}
	std::string p = path_of(kind, name);
	try {
		auto fd = open_pack(name, p);
		pread_exact(fd->fd, offset, length, dst, p);
	} catch (const Error &e) {
		if (e.is_not_found())
			fail(Code::NotFound, std::string(kind_name(kind)) + " " + name + " not found");
		throw;
	}
}

uint64_t FsStore::size(Kind kind, const std::string &name)
{
	std::string p = path_of(kind, name);
	struct stat st;
	if (::stat(p.c_str(), &st) != 0) {
		if (errno == ENOENT)
			fail(Code::NotFound, std::string(kind_name(kind)) + " " + name + " not found");
		fail_errno(p, errno);
	}
	return uint64_t(st.st_size);
}

std::vector<std::string> FsStore::list(Kind kind)
{
	std::vector<std::string> out;
	auto scan = [&](const std::string &dir) {
		DIR *d = ::opendir(dir.c_str());
		if (!d) {
			if (errno == ENOENT)
				return;
			fail_errno(dir, errno);
		}
		while (auto *e = ::readdir(d)) {
			std::string n = e->d_name;
			if (valid_object_name(n))
				out.push_back(std::move(n));
		}
		::closedir(d);
	};
	std::string base = root_ + "/" + subdir(kind);
	if (kind == Kind::Pack) {
		char xx[3];
		for (int i = 0; i < 256; i++) {
			std::snprintf(xx, sizeof xx, "%02x", i);
			scan(base + "/" + xx);
		}
	} else {
		scan(base);
	}
	return out;
}

void FsStore::remove(Kind kind, const std::string &name)
{
	std::string p = path_of(kind, name);
	if (kind == Kind::Pack) {
		std::lock_guard lk(fds_mu_);
		fds_.remove_if([&](const auto &f) { return f.first == name; });
	}
	if (::unlink(p.c_str()) != 0 && errno != ENOENT)
		fail_errno(p, errno);
}

} // namespace plakar
