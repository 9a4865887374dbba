#include "snapshot/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <locale.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "base/error.h"
#include "crypto/crypto.h"
#include "repository/repository.h"
#include "snapshot/file_reader.h"

namespace plakar {

namespace {

bool ends_with_nocase(std::string_view s, std::string_view suffix)
{
	if (s.size() < suffix.size())
		return false;
	return std::equal(suffix.begin(), suffix.end(), s.end() - long(suffix.size()), [](char a, char b) {
		auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
		return lower(a) == lower(b);
	});
}

mode_t file_type_bits(EntryType t)
{
	switch (t) {
	case EntryType::File: return AE_IFREG;
	case EntryType::Directory: return AE_IFDIR;
	case EntryType::Symlink: return AE_IFLNK;
	case EntryType::Fifo: return AE_IFIFO;
	case EntryType::CharDev: return AE_IFCHR;
	case EntryType::BlockDev: return AE_IFBLK;
	case EntryType::Socket: return AE_IFSOCK;
	}
	return 0;
}

// libarchive picks how it encodes names from the calling thread's LC_CTYPE: pax stores a name
// as UTF-8 when it converts from the locale's charset, else (hdrcharset=BINARY) as raw bytes;
// zip sets its UTF-8 flag on non-ASCII names when the locale is UTF-8. A library cannot rely
// on the process locale (the C locale makes every non-ASCII name "binary"), so libarchive is
// called under a thread-local C.UTF-8: valid UTF-8 names are stored as UTF-8, other names
// as their bytes; zip entries whose name is not UTF-8 are written under C so that they do
// not claim to be.
locale_t utf8_ctype()
{
	static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t(nullptr));
	return loc;
}

locale_t c_ctype()
{
	static const locale_t loc = newlocale(LC_CTYPE_MASK, "C", locale_t(nullptr));
	return loc;
}

// Switches the calling thread's locale for one scope (nothing when loc is null).
class ThreadLocale {
public:
	explicit ThreadLocale(locale_t loc) : prev_(loc ? uselocale(loc) : locale_t(nullptr)) {}
	~ThreadLocale()
	{
		if (prev_)
			uselocale(prev_);
	}
	ThreadLocale(const ThreadLocale &) = delete;
	ThreadLocale &operator=(const ThreadLocale &) = delete;

private:
	locale_t prev_;
};

// Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool valid_utf8(std::string_view s)
{
	size_t i = 0;
	while (i < s.size()) {
		auto c = uint8_t(s[i]);
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n >= s.size())
			return false;
		for (size_t k = 1; k <= n; k++) {
			auto cc = uint8_t(s[i + k]);
			if ((cc & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (cc & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

struct EntryDeleter {
	void operator()(archive_entry *e) const { archive_entry_free(e); }
};
using ArchiveEntry = std::unique_ptr<archive_entry, EntryDeleter>;

// One archive being written: libarchive formats it, the sink receives its bytes.
//
// libarchive is C: an exception must not unwind through it. The write callback catches what
// the sink throws, keeps it, and makes libarchive fail; check() rethrows it after the call.
class ArchiveWriter {
public:
	ArchiveWriter(Repository &repo, ArchiveFormat format, const ArchiveSink &sink, const ProgressFn &progress);
	~ArchiveWriter();
	ArchiveWriter(const ArchiveWriter &) = delete;
	ArchiveWriter &operator=(const ArchiveWriter &) = delete;

	// Writes e (found at `at` in the snapshot) as `name` in the archive, then its children.
	// The root of the snapshot has an empty name: only its children are written.
	void add(const Entry &e, const std::string &at, const std::string &name);
	// Writes the end of the archive. Throws Code::Partial when items were left out.
	void finish();

private:
	static la_ssize_t on_write(struct archive *a, void *self, const void *buf, size_t len);
	// Throws the sink's exception, or Code::Error with libarchive's message, when rc says
	// the call failed. ARCHIVE_WARN (a name that could not be converted, and was stored as
	// raw bytes) is not a failure.
	void check(la_ssize_t rc, const std::string &what);
	void item_error(const std::string &at, const std::string &message);
	ArchiveEntry make_entry(const Entry &e, const std::string &name);
	// Writes the header; false when libarchive refused this one entry (reported).
	bool write_header(archive_entry *ae, const std::string &at);
	void write_file(const Entry &e, const std::string &at, const std::string &name);
	void bytes_event(const std::string &at);

	Repository &repo_;
	ArchiveFormat format_;
	const ArchiveSink &sink_;
	const ProgressFn &progress_;
	struct archive *a_ = nullptr;
	std::exception_ptr sink_error_;
	bool closed_ = false;
	bool discard_ = false; // the archive is abandoned: its last bytes go nowhere
	Counters counters_;
	std::chrono::steady_clock::time_point last_bytes_event_{};
	// Hard links (tar only): the archive name of the first entry of each (dev, ino).
	std::map<std::pair<uint64_t, uint64_t>, std::string> links_;
	std::vector<uint8_t> buf_;
};

ArchiveWriter::ArchiveWriter(Repository &repo, ArchiveFormat format, const ArchiveSink &sink,
                             const ProgressFn &progress)
    : repo_(repo), format_(format), sink_(sink), progress_(progress)
{
	ThreadLocale loc(utf8_ctype());
	a_ = archive_write_new();
	if (!a_)
		throw std::bad_alloc();
	int rc = ARCHIVE_OK;
	switch (format) {
	case ArchiveFormat::Tar:
	case ArchiveFormat::TarGz:
	case ArchiveFormat::TarZstd:
		// Full pax (not "restricted"): every entry carries its mtime to the nanosecond.
		rc = archive_write_set_format_pax(a_);
		// Extended attributes as SCHILY.xattr only: the headers GNU tar understands, without
		// the LIBARCHIVE.xattr duplicates it would warn about. Best effort: a libarchive
		// without the option writes both.
		if (rc == ARCHIVE_OK)
			(void)archive_write_set_format_option(a_, "pax", "xattrheader", "SCHILY");
		if (rc == ARCHIVE_OK && format == ArchiveFormat::TarGz)
			rc = archive_write_add_filter_gzip(a_);
		if (rc == ARCHIVE_OK && format == ArchiveFormat::TarZstd)
			rc = archive_write_add_filter_zstd(a_);
		// A plain tar ends padded to its 10240-byte record, as tar(1) writes it; compressed
		// streams must end with the compressor's last byte (gzip -d rejects trailing zeros).
		if (rc == ARCHIVE_OK && format != ArchiveFormat::Tar)
			rc = archive_write_set_bytes_in_last_block(a_, 1);
		break;
	case ArchiveFormat::Zip:
		rc = archive_write_set_format_zip(a_);
		if (rc == ARCHIVE_OK)
			rc = archive_write_set_bytes_in_last_block(a_, 1);
		break;
	default:
		archive_write_free(a_);
		fail(Code::Invalid, "unknown archive format");
	}
	if (rc == ARCHIVE_OK)
		rc = archive_write_open2(a_, this, nullptr, &ArchiveWriter::on_write, nullptr, nullptr);
	if (rc != ARCHIVE_OK) {
		std::string msg = archive_error_string(a_) ? archive_error_string(a_) : "cannot set up the archive";
		discard_ = true;
		archive_write_close(a_);
		archive_write_free(a_);
		fail(Code::Error, "archive: " + msg);
	}
	buf_.resize(1 << 20);
}

ArchiveWriter::~ArchiveWriter()
{
	// An unfinished archive stays unfinished: no end-of-archive marker reaches the sink. It is
	// closed all the same, its bytes dropped, so that its filters free what they hold.
	if (!closed_) {
		discard_ = true;
		ThreadLocale loc(utf8_ctype());
		archive_write_close(a_);
	}
	archive_write_free(a_);
}

// Never fails towards libarchive: an archive in its fatal state is freed without closing its
// filters, which leaks their state (zlib's, zstd's). A failing sink is recorded instead, the
// bytes from then on are dropped, and check() throws its exception after the call that met it.
la_ssize_t ArchiveWriter::on_write(struct archive *, void *self, const void *buf, size_t len)
{
	auto *w = static_cast<ArchiveWriter *>(self);
	if (w->sink_error_ || w->discard_)
		return la_ssize_t(len);
	try {
		w->sink_(ByteView(static_cast<const uint8_t *>(buf), len));
	} catch (...) {
		w->sink_error_ = std::current_exception();
	}
	return la_ssize_t(len);
}

void ArchiveWriter::check(la_ssize_t rc, const std::string &what)
{
	if (sink_error_)
		std::rethrow_exception(sink_error_);
	if (rc >= 0 || rc == ARCHIVE_WARN)
		return;
	const char *msg = archive_error_string(a_);
	fail(Code::Error, what + ": " + (msg ? msg : "archive error"));
}

void ArchiveWriter::item_error(const std::string &at, const std::string &message)
{
	counters_.errors++;
	emit(progress_, EventKind::Error, counters_, &at, &message);
}

void ArchiveWriter::bytes_event(const std::string &at)
{
	auto now = std::chrono::steady_clock::now();
	if (now - last_bytes_event_ > std::chrono::milliseconds(200)) {
		last_bytes_event_ = now;
		emit(progress_, EventKind::Bytes, counters_, &at);
	}
}

ArchiveEntry ArchiveWriter::make_entry(const Entry &e, const std::string &name)
{
	ArchiveEntry ae(archive_entry_new2(a_));
	if (!ae)
		throw std::bad_alloc();
	archive_entry_copy_pathname(ae.get(), name.c_str());
	archive_entry_set_filetype(ae.get(), file_type_bits(e.type));
	archive_entry_set_perm(ae.get(), e.mode & 07777);
	archive_entry_set_uid(ae.get(), e.uid);
	archive_entry_set_gid(ae.get(), e.gid);
	if (!e.uname.empty())
		archive_entry_copy_uname(ae.get(), e.uname.c_str());
	if (!e.gname.empty())
		archive_entry_copy_gname(ae.get(), e.gname.c_str());
	int64_t sec = e.mtime_ns / 1000000000, nsec = e.mtime_ns % 1000000000;
	if (nsec < 0) {
		nsec += 1000000000;
		sec--;
	}
	archive_entry_set_mtime(ae.get(), time_t(sec), long(nsec));
	if (e.type == EntryType::Symlink)
		archive_entry_copy_symlink(ae.get(), e.target.c_str());
	if (e.type == EntryType::CharDev || e.type == EntryType::BlockDev)
		archive_entry_set_rdev(ae.get(), dev_t(e.rdev));
	if (e.type != EntryType::File)
		archive_entry_set_size(ae.get(), 0);
	// zip has nowhere to put them; pax keeps them (GNU tar restores them with --xattrs).
	if (format_ != ArchiveFormat::Zip)
		for (const auto &[k, v] : e.xattrs)
			archive_entry_xattr_add_entry(ae.get(), k.c_str(), v.data(), v.size());
	return ae;
}

bool ArchiveWriter::write_header(archive_entry *ae, const std::string &at)
{
	int rc;
	{
		const char *name = archive_entry_pathname(ae);
		bool utf8 = format_ != ArchiveFormat::Zip || valid_utf8(name ? name : "");
		ThreadLocale loc(utf8 ? utf8_ctype() : c_ctype());
		rc = archive_write_header(a_, ae);
	}
	if (rc == ARCHIVE_FAILED && !sink_error_) {
		// This entry only (a type or a size the format cannot hold); the archive goes on.
		const char *msg = archive_error_string(a_);
		item_error(at, std::string("not archived: ") + (msg ? msg : "refused by the archive format"));
		return false;
	}
	check(rc, at);
	return true;
}

void ArchiveWriter::write_file(const Entry &e, const std::string &at, const std::string &name)
{
	if (!e.error.empty()) {
		item_error(at, "not archived: its content could not be read at backup time (" + e.error + ")");
		return;
	}
	ArchiveEntry ae = make_entry(e, name);
	bool linked = e.nlink > 1 && format_ != ArchiveFormat::Zip;
	if (linked) {
		auto it = links_.find({e.dev, e.ino});
		if (it != links_.end()) {
			// A later name of an inode already archived: a hard link entry, no content.
			archive_entry_copy_hardlink(ae.get(), it->second.c_str());
			archive_entry_set_size(ae.get(), 0);
			if (write_header(ae.get(), at)) {
				counters_.files++;
				emit(progress_, EventKind::File, counters_, &at);
			}
			return;
		}
	}
	// Corruption met while reading names the file; the sink's and the progress callback's
	// own exceptions pass through unchanged.
	auto named = [&](const Error &err) { return Error(err.code(), at + ": " + err.what()); };
	std::unique_ptr<FileReader> r;
	try {
		r = std::make_unique<FileReader>(repo_, e);
	} catch (const Error &err) {
		throw named(err);
	}
	archive_entry_set_size(ae.get(), la_int64_t(r->size()));
	if (!write_header(ae.get(), at))
		return;
	for (;;) {
		size_t n;
		try {
			n = r->read(buf_.data(), buf_.size());
		} catch (const Error &err) {
			throw named(err);
		}
		if (n == 0)
			break;
		check(archive_write_data(a_, buf_.data(), n), at);
		counters_.bytes += n;
		bytes_event(at);
	}
	check(archive_write_finish_entry(a_), at);
	if (linked)
		links_[{e.dev, e.ino}] = name;
	counters_.files++;
	emit(progress_, EventKind::File, counters_, &at);
}

void ArchiveWriter::add(const Entry &e, const std::string &at, const std::string &name)
{
	switch (e.type) {
	case EntryType::File:
		write_file(e, at, name);
		return;
	case EntryType::Directory: {
		if (!name.empty()) {
			ArchiveEntry ae = make_entry(e, name);
			write_header(ae.get(), at);
		}
		if (!e.error.empty())
			item_error(at, "directory archived empty: it could not be read at backup time (" + e.error + ")");
		if (e.has_tree) {
			std::string child_at = at == "/" ? "/" : at + "/";
			std::string prefix = name.empty() ? "" : name + "/";
			for_each_entry(repo_, e.tree, [&](Entry &c) {
				add(c, child_at + c.name, prefix + c.name);
				return true;
			});
		}
		counters_.directories++;
		emit(progress_, EventKind::Directory, counters_, &at);
		return;
	}
	case EntryType::Symlink:
		if (!e.error.empty()) {
			item_error(at, "not archived: its target could not be read at backup time (" + e.error + ")");
			return;
		}
		break;
	case EntryType::Fifo:
	case EntryType::CharDev:
	case EntryType::BlockDev:
		if (format_ == ArchiveFormat::Zip)
			return; // zip has no such entries
		break;
	case EntryType::Socket:
		return; // no archive format holds sockets (tar(1) skips them too)
	}
	ArchiveEntry ae = make_entry(e, name);
	write_header(ae.get(), at);
}

void ArchiveWriter::finish()
{
	{
		ThreadLocale loc(utf8_ctype());
		check(archive_write_close(a_), "archive");
	}
	closed_ = true;
	// Bad copies of data passed over for good ones: the archive is right, the repository is not.
	for (const auto &bad : repo_.take_bad_copies())
		emit(progress_, EventKind::Warning, counters_, nullptr, &bad);
	if (counters_.errors)
		fail(Code::Partial, std::to_string(counters_.errors) + (counters_.errors == 1 ? " item" : " items") +
		                        " could not be archived");
}

// Writes to a file descriptor in large writes (libarchive hands over 10 KiB blocks).
class FdSink {
public:
	FdSink(int fd, std::string name) : fd_(fd), name_(std::move(name)) { buf_.reserve(kSize); }
	void put(ByteView b)
	{
		if (buf_.size() + b.size() > kSize)
			flush();
		if (b.size() >= kSize)
			write_all(b.data(), b.size());
		else
			buf_.insert(buf_.end(), b.begin(), b.end());
	}
	void flush()
	{
		write_all(buf_.data(), buf_.size());
		buf_.clear();
	}

private:
	static constexpr size_t kSize = 1 << 20;
	void write_all(const uint8_t *p, size_t n)
	{
		while (n > 0) {
			ssize_t k = ::write(fd_, p, n);
			if (k < 0) {
				if (errno == EINTR)
					continue;
				fail_errno("cannot write " + name_, errno);
			}
			p += k;
			n -= size_t(k);
		}
	}
	int fd_;
	std::string name_;
	Bytes buf_;
};

} // namespace

bool archive_format_from_name(std::string_view name, ArchiveFormat &out)
{
	static const std::pair<std::string_view, ArchiveFormat> names[] = {
	    {"tar", ArchiveFormat::Tar},          {"tar.gz", ArchiveFormat::TarGz},
	    {"tgz", ArchiveFormat::TarGz},        {"tar.zst", ArchiveFormat::TarZstd},
	    {"tar.zstd", ArchiveFormat::TarZstd}, {"tzst", ArchiveFormat::TarZstd},
	    {"zip", ArchiveFormat::Zip},
	};
	for (const auto &[n, f] : names)
		if (n == name) {
			out = f;
			return true;
		}
	return false;
}

bool archive_format_from_filename(std::string_view filename, ArchiveFormat &out)
{
	static const std::pair<std::string_view, ArchiveFormat> suffixes[] = {
	    {".tar", ArchiveFormat::Tar},          {".tar.gz", ArchiveFormat::TarGz},
	    {".tgz", ArchiveFormat::TarGz},        {".tar.zst", ArchiveFormat::TarZstd},
	    {".tar.zstd", ArchiveFormat::TarZstd}, {".tzst", ArchiveFormat::TarZstd},
	    {".zip", ArchiveFormat::Zip},
	};
	for (const auto &[s, f] : suffixes)
		if (ends_with_nocase(filename, s)) {
			out = f;
			return true;
		}
	return false;
}

void write_archive(Repository &repo, const SnapshotHeader &h, const std::string &path, ArchiveFormat format,
                   const ArchiveSink &sink, const ProgressFn &progress)
{
	std::vector<std::string> parts = split_path(path);
	Entry e = lookup(repo, h, path);
	std::string at;
	for (const auto &p : parts)
		at += "/" + p;
	ArchiveWriter w(repo, format, sink, progress);
	w.add(e, at.empty() ? "/" : at, parts.empty() ? "" : parts.back());
	w.finish();
}

void write_archive_file(Repository &repo, const SnapshotHeader &h, const std::string &path, ArchiveFormat format,
                        const std::string &dest, const ProgressFn &progress)
{
	if (dest.empty())
		fail(Code::Invalid, "no output file");
	// Fail before anything is read when the path is not in the snapshot.
	lookup(repo, h, path);
	size_t slash = dest.rfind('/');
	std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : dest.substr(0, slash);
	std::string base = slash == std::string::npos ? dest : dest.substr(slash + 1);
	struct stat st;
	if (base.empty() || (::stat(dest.c_str(), &st) == 0 && S_ISDIR(st.st_mode)))
		fail(Code::Invalid, "cannot create " + dest + ": is a directory");
	std::string tmp = (dir == "/" ? "" : dir) + "/." + base + ".plakar-" + hex_encode(crypto::random_bytes(6));
	int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0) {
		int err = errno;
		fail(err == ENOENT ? Code::NotFound : Code::Error, "cannot create " + dest + ": " + std::strerror(err));
	}
	auto abandon = [&] {
		if (fd >= 0)
			::close(fd);
		::unlink(tmp.c_str());
	};
	try {
		FdSink out(fd, dest);
		bool partial = false;
		std::string partial_msg;
		try {
			write_archive(repo, h, path, format, [&](ByteView b) { out.put(b); }, progress);
		} catch (const Error &err) {
			if (err.code() != Code::Partial)
				throw;
			partial = true;
			partial_msg = err.what();
		}
		out.flush();
		if (::fsync(fd) != 0)
			fail_errno("cannot write " + dest, errno);
		int rc = ::close(fd);
		fd = -1;
		if (rc != 0)
			fail_errno("cannot write " + dest, errno);
		if (::rename(tmp.c_str(), dest.c_str()) != 0)
			fail(Code::Error, "cannot create " + dest + ": " + std::strerror(errno));
		if (partial)
			fail(Code::Partial, partial_msg);
	} catch (const Error &err) {
		if (err.code() != Code::Partial)
			abandon();
		throw;
	} catch (...) {
		abandon();
		throw;
	}
}

} // namespace plakar
