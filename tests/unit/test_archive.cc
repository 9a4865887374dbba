// Archives of a snapshot (snapshot/archive.h), read back with libarchive's reader: entries,
// modes, mtimes, owners, symlinks, hard links, contents and odd names, in every format.
#include <catch2/catch.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "base/error.h"
#include "helpers.h"
#include "repository/repository.h"
#include "snapshot/archive.h"
#include "snapshot/builder.h"
#include "snapshot/snapshot.h"

using namespace plakar;
using plakar::test::small_repo;
namespace fs = std::filesystem;

namespace {
struct ReadEntry {
	mode_t type = 0;
	mode_t perm = 0;
	int64_t mtime = 0;
	long mtime_nsec = 0;
	int64_t uid = 0, gid = 0;
	std::string uname, symlink, hardlink;
	std::string data;
};

// Reads every entry of an archive; names lose their trailing '/'.
std::map<std::string, ReadEntry> read_back(const Bytes &bytes)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_all(a);
	archive_read_support_filter_all(a);
	REQUIRE(archive_read_open_memory(a, bytes.data(), bytes.size()) == ARCHIVE_OK);
	std::map<std::string, ReadEntry> out;
	struct archive_entry *ae;
	int rc;
	while ((rc = archive_read_next_header(a, &ae)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
		std::string name = archive_entry_pathname(ae);
		if (name.size() > 1 && name.back() == '/')
			name.pop_back();
		ReadEntry e;
		e.type = archive_entry_filetype(ae);
		e.perm = archive_entry_perm(ae);
		e.mtime = archive_entry_mtime(ae);
		e.mtime_nsec = archive_entry_mtime_nsec(ae);
		e.uid = archive_entry_uid(ae);
		e.gid = archive_entry_gid(ae);
		e.uname = archive_entry_uname(ae) ? archive_entry_uname(ae) : "";
		e.symlink = archive_entry_symlink(ae) ? archive_entry_symlink(ae) : "";
		e.hardlink = archive_entry_hardlink(ae) ? archive_entry_hardlink(ae) : "";
		char buf[65536];
		la_ssize_t n;
		while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
			e.data.append(buf, size_t(n));
		REQUIRE(n == 0);
		CHECK(out.count(name) == 0);
		out[name] = std::move(e);
	}
	CHECK(rc == ARCHIVE_EOF);
	archive_read_free(a);
	return out;
}


void set_mtime(const std::string &path, int64_t sec, long nsec)
{
	struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
	REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
}

const std::string kOddName = "bad\xff\xfe name";
const std::string kLongDir(150, 'd');
const std::string kLongFile(200, 'f');

// A pushed tree with every kind of entry the formats must carry.
struct Fixture {
	test::TempDir d;
	std::unique_ptr<Repository> repo;
	SnapshotHeader h;
	Bytes big;

	Fixture()
	{
		std::string src = d / "src";
		fs::create_directories(src + "/sub/" + kLongDir);
		big = test::random_data(3 << 20, 7); // many chunks, more than one read buffer
		test::write_file(src + "/big", big);
		test::write_file(src + "/sub/small", as_bytes("hello"));
		test::write_file(src + "/empty", {});
		test::write_file(src + "/" + kOddName, as_bytes("odd"));
		test::write_file(src + "/sub/" + kLongDir + "/" + kLongFile, as_bytes("long"));
		test::write_file(src + "/hard1", as_bytes("linked"));
		REQUIRE(::link((src + "/hard1").c_str(), (src + "/sub/hard2").c_str()) == 0);
		REQUIRE(::symlink("sub/small", (src + "/link").c_str()) == 0);
		REQUIRE(::chmod((src + "/sub/small").c_str(), 0640) == 0);
		REQUIRE(::chmod((src + "/big").c_str(), 0600) == 0);
		REQUIRE(::chmod((src + "/sub").c_str(), 0750) == 0);
		set_mtime(src + "/big", 1600000000, 123456789);
		set_mtime(src + "/sub/small", 1600000001, 5);
		set_mtime(src + "/link", 1600000002, 999999999);
		set_mtime(src + "/sub", 1600000003, 42);
		repo = small_repo(d / "repo");
		h = push(*repo, {src}, {});
		REQUIRE(h.errors.empty());
	}

	Bytes archive(const std::string &path, ArchiveFormat f, size_t *largest_piece = nullptr)
	{
		Bytes out;
		write_archive(*repo, h, path, f, [&](ByteView b) {
			if (largest_piece)
				*largest_piece = std::max(*largest_piece, b.size());
			out.insert(out.end(), b.begin(), b.end());
		}, {});
		return out;
	}
};

std::string as_str(const Bytes &b) { return std::string(b.begin(), b.end()); }

} // namespace

TEST_CASE("archive formats carry the tree", "[archive]")
{
	Fixture fx;
	auto format = GENERATE(ArchiveFormat::Tar, ArchiveFormat::TarGz, ArchiveFormat::TarZstd, ArchiveFormat::Zip);
	bool zip = format == ArchiveFormat::Zip;
	CAPTURE(int(format));

	size_t largest = 0;
	auto entries = read_back(fx.archive(fx.d / "src", format, &largest));
	// Streamed: the sink sees small pieces, never the whole archive.
	CHECK(largest <= 1 << 20);

	std::vector<std::string> names;
	for (const auto &[n, e] : entries)
		names.push_back(n);
	std::vector<std::string> want = {"src",
	                                 "src/big",
	                                 "src/empty",
	                                 "src/hard1",
	                                 "src/link",
	                                 "src/sub",
	                                 "src/sub/" + kLongDir,
	                                 "src/sub/" + kLongDir + "/" + kLongFile,
	                                 "src/sub/hard2",
	                                 "src/sub/small",
	                                 "src/" + kOddName};
	std::sort(want.begin(), want.end());
	CHECK(names == want);
	CHECK(("src/sub/" + kLongDir + "/" + kLongFile).size() > 300);

	const ReadEntry &big = entries["src/big"];
	CHECK(big.type == AE_IFREG);
	CHECK(big.perm == 0600);
	CHECK(big.data == as_str(fx.big));
	CHECK(big.mtime == 1600000000);
	CHECK(big.mtime_nsec == (zip ? 0 : 123456789));
	CHECK(big.uid == ::geteuid());

	const ReadEntry &small = entries["src/sub/small"];
	CHECK(small.perm == 0640);
	CHECK(small.data == "hello");
	CHECK(small.mtime == 1600000001);
	CHECK(small.mtime_nsec == (zip ? 0 : 5));

	const ReadEntry &sub = entries["src/sub"];
	CHECK(sub.type == AE_IFDIR);
	CHECK(sub.perm == 0750);
	CHECK(sub.mtime == 1600000003);

	const ReadEntry &link = entries["src/link"];
	CHECK(link.type == AE_IFLNK);
	CHECK(link.symlink == "sub/small");
	CHECK(link.mtime == 1600000002);

	CHECK(entries["src/empty"].data.empty());
	CHECK(entries["src/" + kOddName].data == "odd");
	CHECK(entries["src/sub/" + kLongDir + "/" + kLongFile].data == "long");

	// Hard links: tar names the first path; zip stores the content twice.
	CHECK(entries["src/hard1"].data == "linked");
	const ReadEntry &hard2 = entries["src/sub/hard2"];
	if (zip) {
		CHECK(hard2.hardlink.empty());
		CHECK(hard2.data == "linked");
	} else {
		CHECK(hard2.hardlink == "src/hard1");
		CHECK(hard2.data.empty());
		CHECK(!entries["src"].uname.empty());
	}
}

TEST_CASE("archive names are relative to the selected path's parent", "[archive]")
{
	Fixture fx;
	// A subtree: entries start with its own name.
	auto sub = read_back(fx.archive(fx.d / "src/sub", ArchiveFormat::Tar));
	CHECK(sub.count("sub"));
	CHECK(sub.count("sub/small"));
	CHECK(sub.count("src") == 0);
	// hard2's first name in this archive is itself: it carries the content.
	CHECK(sub["sub/hard2"].data == "linked");
	CHECK(sub["sub/hard2"].hardlink.empty());

	// A single file.
	auto one = read_back(fx.archive(fx.d / "src/sub/small", ArchiveFormat::Zip));
	REQUIRE(one.size() == 1);
	CHECK(one.begin()->first == "small");
	CHECK(one.begin()->second.data == "hello");

	// The whole snapshot: the absolute path without its leading '/'.
	auto all = read_back(fx.archive("/", ArchiveFormat::TarZstd));
	std::string rel = (fx.d / "src/big").substr(1);
	REQUIRE(all.count(rel));
	CHECK(all[rel].data == as_str(fx.big));
	for (const auto &[n, e] : all)
		CHECK(n[0] != '/');

	CHECK_THROWS_AS(fx.archive(fx.d / "src/nope", ArchiveFormat::Tar), Error);
	try {
		fx.archive(fx.d / "src/nope", ArchiveFormat::Tar);
	} catch (const Error &e) {
		CHECK(e.code() == Code::NotFound);
	}
}

TEST_CASE("archive format names and extensions", "[archive]")
{
	ArchiveFormat f;
	CHECK((archive_format_from_name("tar.gz", f) && f == ArchiveFormat::TarGz));
	CHECK((archive_format_from_name("tgz", f) && f == ArchiveFormat::TarGz));
	CHECK((archive_format_from_name("tar.zst", f) && f == ArchiveFormat::TarZstd));
	CHECK((archive_format_from_name("zip", f) && f == ArchiveFormat::Zip));
	CHECK(!archive_format_from_name("rar", f));
	CHECK(!archive_format_from_name("", f));
	CHECK((archive_format_from_filename("/x/out.TAR.GZ", f) && f == ArchiveFormat::TarGz));
	CHECK((archive_format_from_filename("out.tgz", f) && f == ArchiveFormat::TarGz));
	CHECK((archive_format_from_filename("out.tar.zst", f) && f == ArchiveFormat::TarZstd));
	CHECK((archive_format_from_filename("out.zip", f) && f == ArchiveFormat::Zip));
	CHECK((archive_format_from_filename("out.tar", f) && f == ArchiveFormat::Tar));
	CHECK(!archive_format_from_filename("out.gz", f));
	CHECK(!archive_format_from_filename("tar", f));
}

TEST_CASE("archive failures stop the archive", "[archive]")
{
	Fixture fx;
	SECTION("a sink failure propagates unchanged")
	{
		int calls = 0;
		CHECK_THROWS_AS(write_archive(*fx.repo, fx.h, fx.d / "src", ArchiveFormat::Tar,
		                              [&](ByteView) {
			                              if (++calls == 2)
				                              throw std::runtime_error("disk full");
		                              },
		                              {}),
		                std::runtime_error);
		CHECK(calls == 2);
	}
	SECTION("progress cancels")
	{
		Bytes out;
		try {
			write_archive(*fx.repo, fx.h, fx.d / "src", ArchiveFormat::Tar,
			              [&](ByteView b) { out.insert(out.end(), b.begin(), b.end()); },
			              [](const Event &ev) { return ev.kind != EventKind::File; });
			FAIL("not canceled");
		} catch (const Error &e) {
			CHECK(e.code() == Code::Canceled);
		}
	}
	SECTION("into a file: complete, or nothing left behind")
	{
		std::string dest = fx.d / "out.tar.gz";
		write_archive_file(*fx.repo, fx.h, fx.d / "src/sub", ArchiveFormat::TarGz, dest, {});
		auto entries = read_back(test::read_file(dest));
		CHECK(entries["sub/small"].data == "hello");

		std::string missing_dir = fx.d / "no/such/dir/out.tar";
		try {
			write_archive_file(*fx.repo, fx.h, fx.d / "src", ArchiveFormat::Tar, missing_dir, {});
			FAIL("written into a missing directory");
		} catch (const Error &e) {
			CHECK(e.code() == Code::NotFound);
		}
		CHECK_THROWS_AS(write_archive_file(*fx.repo, fx.h, fx.d / "src", ArchiveFormat::Tar, fx.d.path(), {}),
		                Error);
		// Canceled half way: the previous file is untouched, no temporary is left.
		Bytes before = test::read_file(dest);
		CHECK_THROWS_AS(write_archive_file(*fx.repo, fx.h, fx.d / "src", ArchiveFormat::Tar, dest,
		                                   [](const Event &ev) { return ev.kind != EventKind::File; }),
		                Error);
		CHECK(test::read_file(dest) == before);
		for (const auto &entry : fs::directory_iterator(fx.d.path()))
			CHECK(entry.path().filename().string().find(".plakar-") == std::string::npos);
	}
}

TEST_CASE("a corrupted chunk fails the archive, naming the file", "[archive]")
{
	Fixture fx;
	std::string uri = fx.d / "repo";
	// Damage every data pack in its middle: the big file's chunks fill most of them.
	for (auto &p : test::files_under(uri + "/packs")) {
		Bytes b = test::read_file(p);
		if (b.size() > 5 && b[5] == 1) {
			b[b.size() / 2] ^= 0xff;
			test::write_file(p, b);
		}
	}
	OpenOptions o;
	o.use_cache = false;
	auto r = Repository::open(uri, std::string("pw"), o);
	auto h = load_snapshot(*r, fx.h.id_string());
	bool ended = false;
	try {
		write_archive(*r, h, fx.d / "src", ArchiveFormat::Tar, [&](ByteView) {}, {});
	} catch (const Error &e) {
		ended = true;
		CHECK(e.code() == Code::Corrupt);
		CHECK(std::string(e.what()).find(fx.d / "src/") != std::string::npos);
	}
	CHECK(ended);
	std::string dest = fx.d / "out.zip";
	CHECK_THROWS_AS(write_archive_file(*r, h, fx.d / "src", ArchiveFormat::Zip, dest, {}), Error);
	CHECK(!fs::exists(dest));
}
