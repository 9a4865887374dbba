// The C ABI of archives (tarball): shims over libplakar/snapshot/archive.h, each one call to
// guard() holding the repository's lock.
#include "plakar/plakar.h"

#include "internal.h"

#include <mutex>
#include <string>

#include "base/error.h"
#include "snapshot/archive.h"

using namespace plakar;
using namespace plakar::capi;

namespace {

ArchiveFormat format_of(int format)
{
	switch (format) {
	case PLAKAR_ARCHIVE_TAR: return ArchiveFormat::Tar;
	case PLAKAR_ARCHIVE_TAR_GZ: return ArchiveFormat::TarGz;
	case PLAKAR_ARCHIVE_TAR_ZSTD: return ArchiveFormat::TarZstd;
	case PLAKAR_ARCHIVE_ZIP: return ArchiveFormat::Zip;
	default: fail(Code::Invalid, "unknown archive format " + std::to_string(format));
	}
}

ProgressFn archive_progress(const plakar_archive_options *opts)
{
	require(!opts || opts->version == PLAKAR_ARCHIVE_OPTIONS_VERSION, "unknown plakar_archive_options version");
	return opts ? progress_of(opts->progress, opts->payload) : ProgressFn{};
}

} // namespace

extern "C" {

int plakar_archive_format_from_name(int *out, const char *name)
{
	return guard([&] {
		require(out, "out is NULL");
		require(name, "format name is NULL");
		ArchiveFormat f;
		if (!archive_format_from_name(name, f))
			fail(Code::Invalid, std::string("unknown archive format \"") + name +
			                        "\" (tar, tar.gz, tar.zst or zip)");
		*out = int(f);
	});
}

int plakar_archive_format_from_filename(int *out, const char *filename)
{
	return guard([&] {
		require(out, "out is NULL");
		require(filename, "file name is NULL");
		ArchiveFormat f = ArchiveFormat::Tar;
		bool known = archive_format_from_filename(filename, f);
		*out = int(f);
		if (!known)
			fail(Code::NotFound, std::string(filename) + ": no archive extension; tar is the default");
	});
}

int plakar_snapshot_archive(const plakar_snapshot *snap, const char *path, int format,
                            const plakar_archive_options *opts)
{
	return guard([&] {
		require(snap && snap->owner, "snapshot is NULL");
		require(opts && opts->write, "opts->write (the callback receiving the archive) is NULL");
		plakar_write_cb write = opts->write;
		void *payload = opts->payload;
		ArchiveFormat f = format_of(format);
		ProgressFn progress = archive_progress(opts);
		ArchiveSink sink = [write, payload](ByteView b) {
			if (write(b.data(), b.size(), payload) != 0)
				fail(Code::Canceled, "canceled by the write callback");
		};
		CallScope lk(snap->owner);
		write_archive(*snap->owner->repo, snap->h, path && *path ? path : "/", f, sink, progress);
	});
}

int plakar_snapshot_archive_file(const plakar_snapshot *snap, const char *path, int format, const char *dest,
                                 const plakar_archive_options *opts)
{
	return guard([&] {
		require(snap && snap->owner, "snapshot is NULL");
		require(dest && *dest, "destination file is empty");
		require(!opts || !opts->write, "opts->write must be NULL: the archive goes to the file");
		ArchiveFormat f = format_of(format);
		ProgressFn progress = archive_progress(opts);
		CallScope lk(snap->owner);
		write_archive_file(*snap->owner->repo, snap->h, path && *path ? path : "/", f, dest, progress);
	});
}

} // extern "C"
