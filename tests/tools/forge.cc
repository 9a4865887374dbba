// plakar_forge: writes hostile snapshots into a real repository, as an attacker who holds the
// key (an append-only token holder, or anyone who knows the passphrase) could. The CLI, C and
// Python tests restore them and check that nothing lands outside the target.
//
//   plakar_forge REPOSITORY PASSPHRASE SCENARIO OUTSIDE
//
// prints the new snapshot's id. PASSPHRASE "" opens a plaintext repository. Scenarios:
//   dup-dir-first[-large]   root: "d" (a directory holding "existing" and a setuid "newfile"),
//                           then "d" (a symlink to OUTSIDE): a duplicate name in one node
//   dup-link-first[-large]  the same two entries, the symlink first
//   unsorted                root: "b", then "a" (plain files)
//   split-dup               "d" twice across two leaves under an inner node
// -large: the files under d hold 2 MiB in a chunk list (restored alone, not in a batch).
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "base/error.h"
#include "repository/repository.h"
#include "snapshot/snapshot.h"
#include "snapshot/tree.h"

using namespace plakar;

namespace {

Entry file_entry(Repository &repo, const std::string &name, const std::string &content, uint32_t mode, bool large)
{
	Entry e;
	e.name = name;
	e.type = EntryType::File;
	e.mode = S_IFREG | mode;
	e.mtime_ns = int64_t(std::time(nullptr)) * 1000000000;
	std::vector<ChunkRef> chunks;
	if (large) {
		// 32 chunks of 64 KiB: more than fit inline, so the entry holds a chunk list.
		for (int i = 0; i < 32; i++) {
			std::string part(64 << 10, char('a' + i % 26));
			part.replace(0, std::min(content.size(), part.size()), content);
			Id id = repo.blob_id(as_bytes(part));
			repo.put_blob(BlobType::Chunk, id, as_bytes(part));
			chunks.push_back({id, uint32_t(part.size())});
			e.size += part.size();
		}
	} else {
		Id id = repo.blob_id(as_bytes(content));
		repo.put_blob(BlobType::Chunk, id, as_bytes(content));
		chunks.push_back({id, uint32_t(content.size())});
		e.size = content.size();
	}
	set_chunks(repo, e, std::move(chunks));
	return e;
}

Entry dir_entry(const std::string &name, const Id &tree)
{
	Entry e;
	e.name = name;
	e.type = EntryType::Directory;
	e.mode = S_IFDIR | 0777;
	e.has_tree = true;
	e.tree = tree;
	return e;
}

Entry link_entry(const std::string &name, const std::string &target)
{
	Entry e;
	e.name = name;
	e.type = EntryType::Symlink;
	e.mode = S_IFLNK | 0777;
	e.target = target;
	return e;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc != 5) {
		std::cerr << "usage: plakar_forge REPOSITORY PASSPHRASE SCENARIO OUTSIDE\n";
		return 2;
	}
	try {
		std::string pass = argv[2], scenario = argv[3], outside = argv[4];
		OpenOptions oo;
		oo.use_cache = false;
		auto repo = Repository::open(argv[1], pass.empty() ? std::nullopt : std::optional<std::string>(pass), oo);
		bool large = scenario.size() > 6 && scenario.ends_with("-large");
		if (large)
			scenario.resize(scenario.size() - 6);

		std::vector<Entry> inner{file_entry(*repo, "existing", "forged content\n", 0644, large),
		                         file_entry(*repo, "newfile", "#!/bin/sh\necho owned\n", 04755, large)};
		Id inner_tree = store_directory(*repo, inner);
		Id root_tree;
		if (scenario == "dup-dir-first" || scenario == "dup-link-first") {
			std::vector<Entry> top{dir_entry("d", inner_tree), link_entry("d", outside)};
			if (scenario == "dup-link-first")
				std::swap(top[0], top[1]);
			root_tree = store_leaf(*repo, top.data(), top.size());
		} else if (scenario == "unsorted") {
			std::vector<Entry> top{file_entry(*repo, "b", "b\n", 0644, false), file_entry(*repo, "a", "a\n", 0644, false)};
			root_tree = store_leaf(*repo, top.data(), top.size());
		} else if (scenario == "split-dup") {
			Entry a = dir_entry("d", inner_tree), b = link_entry("d", outside);
			Id l1 = store_leaf(*repo, &a, 1), l2 = store_leaf(*repo, &b, 1);
			root_tree = store_levels(*repo, {{"d", l1}, {"d", l2}});
		} else {
			std::cerr << "plakar_forge: unknown scenario " << scenario << "\n";
			return 2;
		}
		repo->flush();
		SnapshotHeader h;
		h.id = new_snapshot_id();
		h.time_ns = int64_t(std::time(nullptr)) * 1000000000;
		h.hostname = "forge";
		h.username = "attacker";
		h.paths = {"/"};
		h.root = dir_entry("/", root_tree);
		h.root.mode = S_IFDIR | 0755;
		store_snapshot(*repo, h);
		std::cout << h.id_string() << "\n";
		return 0;
	} catch (const std::exception &e) {
		std::cerr << "plakar_forge: " << e.what() << "\n";
		return 1;
	}
}
