// The tree in the known-answer repositories (tests/data/kat, made by tests/tools/make_kat.cc):
// its contents and metadata, written by make_kat and checked by test_kat.cc.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace plakar::kat {

constexpr const char *kSource = "/tmp/plakar-kat/src";
constexpr const char *kPassphrase = "plakar known answers";
constexpr int64_t kMtime = 1700000000123456789; // every item's mtime (ns)

// a.txt: a short text; dir/b.bin: 40,000 bytes of a fixed pattern (several chunks at the
// repositories' 256 / 1024 / 4096 chunk sizes); link -> a.txt.
inline std::string a_txt() { return "hello, plakar\n"; }
inline std::string b_bin()
{
	std::string s(40000, '\0');
	uint32_t x = 12345;
	for (auto &c : s) {
		x = x * 1103515245 + 12345;
		c = char(x >> 24);
	}
	return s;
}

inline void set_mtime(const std::string &p)
{
	struct timespec ts[2];
	ts[0].tv_sec = ts[1].tv_sec = kMtime / 1000000000;
	ts[0].tv_nsec = ts[1].tv_nsec = kMtime % 1000000000;
	::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

inline void write_tree(const std::string &root)
{
	std::filesystem::create_directories(root + "/dir");
	std::ofstream(root + "/a.txt", std::ios::binary) << a_txt();
	std::ofstream(root + "/dir/b.bin", std::ios::binary) << b_bin();
	::symlink("a.txt", (root + "/link").c_str());
	::chmod((root + "/a.txt").c_str(), 0640);
	::chmod((root + "/dir/b.bin").c_str(), 0600);
	::chmod((root + "/dir").c_str(), 0750);
	::chmod(root.c_str(), 0755);
	for (const char *p : {"/link", "/a.txt", "/dir/b.bin", "/dir", ""})
		set_mtime(root + p);
}

} // namespace plakar::kat
