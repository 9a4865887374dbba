// Archives of a snapshot (tarball): a tree of the snapshot streamed as tar, tar.gz, tar.zst
// or zip, in constant memory.
//
// The tree is walked depth first, one directory node and one chunk of file content in memory
// at a time; libarchive formats the entries and hands the bytes to a sink as they are made.
// Names inside the archive are relative to the parent of the selected path ("/usr/share/doc"
// gives "doc/...", the whole snapshot gives "usr/share/..."). Every byte of content written
// was authenticated; a corrupted chunk aborts the archive (it is never completed).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/progress.h"
#include "snapshot/snapshot.h"

namespace plakar {

enum class ArchiveFormat {
	Tar = 1,     // POSIX pax: ns mtimes, long and non-UTF-8 names, owners, xattrs, hard links
	TarGz = 2,   // the same, gzip-compressed
	TarZstd = 3, // the same, zstd-compressed
	Zip = 4,     // zip (deflate): mtimes to the second, no hard links (content stored again)
};

// "tar", "tar.gz" (also "tgz"), "tar.zst" (also "tar.zstd", "tzst"), "zip"; false otherwise.
bool archive_format_from_name(std::string_view name, ArchiveFormat &out);
// The format named by a file name's extension (".tar", ".tar.gz", ".tgz", ".tar.zst",
// ".zip", any case); false when none matches.
bool archive_format_from_filename(std::string_view filename, ArchiveFormat &out);

// Receives the archive's bytes in order. Throwing aborts the archive; the exception
// propagates out of write_archive unchanged.
using ArchiveSink = std::function<void(ByteView)>;

// Streams an archive of path (a directory, a file, "/" for everything) to sink. Progress
// reports each file and directory written and, periodically, the content bytes; it cancels
// (Code::Canceled) by returning false. Sockets are never archived; zip also leaves out fifos
// and devices. Entries whose content was not backed up (an error recorded at push time) are
// reported as Error events and left out (directories are kept, empty); the archive is then
// completed and Code::Partial thrown. Any other failure (Code::NotFound for a path not in
// the snapshot, Code::Corrupt naming the file whose content failed authentication, a sink
// failure) throws before the archive is completed.
void write_archive(Repository &repo, const SnapshotHeader &h, const std::string &path, ArchiveFormat format,
                   const ArchiveSink &sink, const ProgressFn &progress);

// The same, into the file dest: written under a temporary name in dest's directory and
// renamed over dest once complete (also after Code::Partial). On any other failure no file
// is left behind and dest, if it existed, is untouched.
void write_archive_file(Repository &repo, const SnapshotHeader &h, const std::string &path, ArchiveFormat format,
                        const std::string &dest, const ProgressFn &progress);

} // namespace plakar
