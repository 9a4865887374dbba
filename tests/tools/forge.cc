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
//
//   plakar_forge REPOSITORY - plaintext-config -
//
// replaces CONFIG (of a filesystem repository) with a valid plaintext one of the same
// repository id, as anyone who can write the store could: the encryption downgrade.
//
//   plakar_forge REPOSITORY PASSPHRASE substitute -
//
// content substitution by a writer holding the key (an append-only token holder): every data
// chunk is stored again, under its own id, with other bytes of the same length ("FORGED..."),
// in a new pack; one index segment then lists, for each chunk, the forged copy first and the
// genuine one second, and replaces the other segments (the order a lucky listing would give).
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "base/error.h"
#include "crypto/crypto.h"
#include "repository/keys.h"
#include "repository/pack.h"
#include "repository/repository.h"
#include "repository/sealed.h"
#include "net/remote_store.h"
#include "storage/store.h"
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
	net::register_remote_stores(); // plakar:// too, as the C ABI does
	// The library reads no environment: a tool, like the command line, passes the token.
	StoreOptions so;
	if (const char *t = std::getenv("PLAKAR_TOKEN"); t && *t)
		so.token = t;
	if (argc != 5) {
		std::cerr << "usage: plakar_forge REPOSITORY PASSPHRASE SCENARIO OUTSIDE\n";
		return 2;
	}
	try {
		std::string pass = argv[2], scenario = argv[3], outside = argv[4];
		if (scenario == "substitute") {
			auto store = open_store(argv[1], so);
			Config cfg = parse_config(store->open());
			std::optional<crypto::SecureBytes> master;
			if (cfg.encrypted) {
				for (const auto &k : store->list(Kind::Key))
					if ((master = unwrap_master_key(store->get(Kind::Key, k), as_bytes(pass), cfg)))
						break;
			} else {
				master = cfg.plain_master;
			}
			if (!master)
				throw Error(Code::Auth, "no key");
			KeyRing keys = KeyRing::derive(*master, cfg);
			OpenOptions oo;
			oo.use_cache = false;
			oo.store = so;
			auto repo = Repository::open(argv[1], cfg.encrypted ? std::optional<std::string>(pass) : std::nullopt, oo);
			struct Genuine {
				Id pack;
				BlobRecord rec;
			};
			std::vector<Genuine> chunks; // every indexed blob; the chunks are forged
			repo->for_each_indexed([&](const Id &pack, const BlobRecord &rec) { chunks.push_back({pack, rec}); });
			std::sort(chunks.begin(), chunks.end(), [](const Genuine &a, const Genuine &b) { return a.rec.id < b.rec.id; });
			PackWriter w(keys, cfg.encrypted, PackType::Data, 3);
			std::vector<BlobRecord> forged;
			for (const auto &c : chunks) {
				if (c.rec.type != BlobType::Chunk)
					continue;
				Bytes bytes(c.rec.raw_len, 'F');
				std::memcpy(bytes.data(), "FORGED", std::min<size_t>(6, bytes.size()));
				forged.push_back(w.add(c.rec.id, BlobType::Chunk, bytes));
			}
			Id pack = w.name();
			store->put(Kind::Pack, pack.hex(), w.finish());
			// The segment body (docs/format.md): packs, then entries sorted by id.
			std::vector<Id> packs{pack};
			auto pack_no = [&](const Id &p) {
				for (size_t i = 0; i < packs.size(); i++)
					if (packs[i] == p)
						return uint32_t(i);
				packs.push_back(p);
				return uint32_t(packs.size() - 1);
			};
			Writer entries;
			auto entry = [&](const BlobRecord &r, uint32_t p) {
				entries.raw(r.id.view());
				entries.u32(p);
				entries.u32(r.offset);
				entries.u32(r.length);
				entries.u32(r.raw_len);
				entries.u8(uint8_t(r.type));
				entries.u8(r.flags);
			};
			size_t n = 0, f = 0;
			for (const auto &c : chunks) {
				if (c.rec.type == BlobType::Chunk) {
					entry(forged[f++], 0);
					n++;
				}
				entry(c.rec, pack_no(c.pack));
				n++;
			}
			Writer body;
			body.u8(1);
			body.varint(packs.size());
			for (const auto &p : packs)
				body.raw(p.view());
			body.varint(n);
			body.raw(entries.buf());
			std::vector<std::string> old = store->list(Kind::Index);
			std::string name = hex_encode(crypto::random_bytes(32));
			store->put(Kind::Index, name,
			           seal_object(keys, cfg.encrypted, ObjectKind::IndexSegment, name, body.buf(), 3));
			for (const auto &o : old) {
				try {
					store->remove(Kind::Index, o);
				} catch (const Error &) {
					// an append-only token may not remove: both listings then stay, in any order
				}
			}
			std::cout << forged.size() << "\n";
			return 0;
		}
		if (scenario == "plaintext-config") {
			auto store = open_store(argv[1], so);
			Config cfg = parse_config(store->open());
			cfg.encrypted = false;
			cfg.plain_master = crypto::SecureBytes(crypto::random_bytes(32));
			KeyRing keys = KeyRing::derive(cfg.plain_master, cfg);
			Bytes config = encode_config(cfg, keys);
			std::string path = std::string(argv[1]) + "/CONFIG";
			FILE *f = std::fopen(path.c_str(), "wb");
			if (!f || std::fwrite(config.data(), 1, config.size(), f) != config.size() || std::fclose(f) != 0) {
				std::cerr << "plakar_forge: cannot write " << path << "\n";
				return 1;
			}
			std::cout << cfg.id_string() << "\n";
			return 0;
		}
		OpenOptions oo;
		oo.use_cache = false;
		oo.store = so;
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
