// Fuzz target for the local cache's index table (repository/index_table.h): a table that does
// not verify opens as nullptr; blocks that do not verify make find() answer nothing and mark
// the table broken. Each input is written as the table file of a scratch directory.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common.h"
#include "repository/index_table.h"

using namespace plakar;

namespace {
// A directory of its own, removed when the program ends.
const std::string &scratch()
{
	struct Dir {
		std::string path;
		Dir()
		{
			char tmpl[] = "/tmp/plakar-fuzz-table-XXXXXX";
			if (!::mkdtemp(tmpl))
				std::abort();
			path = tmpl;
		}
		~Dir()
		{
			std::error_code ec;
			std::filesystem::remove_all(path, ec);
		}
	};
	static const Dir dir;
	return dir.path;
}
const crypto::SecureBytes &key()
{
	static const crypto::SecureBytes k(Bytes(32, 5));
	return k;
}
} // namespace

std::vector<Bytes> fuzz_seeds()
{
	Index idx;
	for (uint8_t i = 1; i < 40; i++)
		idx.add(Id::from(Bytes(32, uint8_t(i % 3 + 40))),
		        BlobRecord{Id::from(Bytes(32, i)), BlobType(1 + i % 3), 0, 40u * i, 100, 90});
	idx.load_segment(idx.encode_fresh());
	idx.finish_load();
	Index saved;
	saved.load_segment(idx.encode_all());
	saved.finish_load();
	std::vector<Bytes> out;
	if (IndexTable::write(scratch(), key(), {std::string(64, 'a')}, saved)) {
		std::ifstream in(scratch() + "/" + IndexTable::kFile, std::ios::binary);
		out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
	}
	return out;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::string path = scratch() + "/" + IndexTable::kFile;
	if (FILE *f = std::fopen(path.c_str(), "wb")) {
		std::fwrite(data, 1, size, f);
		std::fclose(f);
	}
	fuzz::refused_cleanly([&] {
		auto t = IndexTable::open(scratch(), key());
		if (!t)
			return;
		for (uint8_t i = 0; i < 45; i += 3)
			t->find(Id::from(Bytes(32, i)));
	});
	return 0;
}
