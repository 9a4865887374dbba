// Test helpers: temporary directories and small file utilities.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "repository/repository.h"

namespace plakar::test {

// A fresh directory under $TMPDIR, removed with its content when the object goes.
class TempDir {
public:
	TempDir();
	~TempDir();
	const std::string &path() const { return path_; }
	std::string operator/(const std::string &name) const { return path_ + "/" + name; }

private:
	std::string path_;
};

void write_file(const std::string &path, ByteView data);
Bytes read_file(const std::string &path);
Bytes random_data(size_t n, uint64_t seed);
Bytes hex(const char *s);
// Files of a kind in a filesystem repository (full paths).
std::vector<std::string> files_under(const std::string &dir);
// A new encrypted repository with a cheap scrypt cost (tests only) and small chunks
// (4 / 16 / 64 KiB), so that small files span several chunks. Passphrase "pw".
std::unique_ptr<Repository> small_repo(const std::string &uri);
// The code of the plakar::Error that f throws, or Code(0) when it throws none.
Code code_of(const std::function<void()> &f);

} // namespace plakar::test
