// Known answers for the repository format, version 1: tests/data/kat holds two tiny
// repositories (encrypted and plaintext) written once by tests/tools/make_kat.cc. They must
// open and decode to exactly the values below, and every object must encode back to the bytes
// stored: a change of the encoding, of a decoder or of a key derivation fails here.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>

#include "helpers.h"
#include "kat_tree.h"
#include "repository/index.h"
#include "repository/keys.h"
#include "repository/repository.h"
#include "repository/sealed.h"
#include "snapshot/file_reader.h"
#include "snapshot/check.h"
#include "snapshot/codec.h"
#include "snapshot/restore.h"
#include "snapshot/snapshot.h"

using namespace plakar;
namespace fs = std::filesystem;

namespace {
struct Known {
	const char *dir;
	bool encrypted;
	const char *repo_id;
	const char *snapshot;
	int64_t time_ns;
	const char *a_chunk; // the id of a.txt's one chunk: HMAC(blob-id key, "hello, plakar\n")
	size_t b_chunks;     // dir/b.bin's chunks (in a chunk list)
};
const Known kKnown[] = {
    {"encrypted", true, "aee1039f-de11-4045-9798-2d5e22d3900b", "17fc0c06-9019-4586-a81c-11d09fcfef70",
     1796234739676228005, "871e45de3ec63779ee837c9cd0406320cd0bd066eb461285c2e5a4a59382fc2c", 34},
    {"plaintext", false, "9b561ce8-c47f-420d-bb70-5d2612199394", "f36108e7-bfa9-4db4-be91-4637ccfbdce1",
     1796234739690377990, "c12cecb59f40ede1f61c96c8fc7b0b488db666bf32450eafac71e672a8a30747", 34},
};

// A copy of the checked-in repository (reading must not depend on writing next to it).
std::string copy_of(const test::TempDir &d, const char *name)
{
	std::string to = d / name;
	fs::copy(std::string(PLAKAR_KAT_DIR) + "/" + name, to, fs::copy_options::recursive);
	return to;
}

std::string content(Repository &r, const Entry &e)
{
	FileReader f(r, e);
	std::string out(f.size(), '\0');
	out.resize(f.read(reinterpret_cast<uint8_t *>(out.data()), out.size()));
	return out;
}
} // namespace

TEST_CASE("kat: the checked-in v1 repositories decode to their known values", "[kat][format]")
{
	for (const auto &k : kKnown) {
		INFO(k.dir);
		test::TempDir d;
		std::string uri = copy_of(d, k.dir);
		OpenOptions oo;
		oo.use_cache = false;
		auto r = Repository::open(uri, k.encrypted ? std::optional<std::string>(kat::kPassphrase) : std::nullopt, oo);
		const Config &c = r->config();
		CHECK(c.id_string() == k.repo_id);
		CHECK(c.encrypted == k.encrypted);
		CHECK((c.chunks.min == 256 && c.chunks.avg == 1024 && c.chunks.max == 4096));
		CHECK(c.pack_size == 64 * 1024);
		CHECK(c.compression_level == 3);

		auto snaps = list_snapshots(*r);
		REQUIRE(snaps.size() == 1);
		const SnapshotHeader &h = snaps[0];
		CHECK(h.id_string() == k.snapshot);
		CHECK(h.time_ns == k.time_ns);
		CHECK(h.hostname == "vm");
		CHECK(h.username == "root");
		CHECK(h.command_line == "make_kat");
		CHECK(h.paths == std::vector<std::string>{kat::kSource});
		CHECK(h.tags == std::vector<std::string>{"kat"});
		CHECK((h.files == 2 && h.size == 40014 && h.errors.empty()));

		std::string src = kat::kSource;
		Entry a = lookup(*r, h, src + "/a.txt");
		CHECK((a.type == EntryType::File && a.mode == (S_IFREG | 0640) && a.size == 14 && a.mtime_ns == kat::kMtime));
		REQUIRE(a.chunks.size() == 1);
		CHECK(a.chunks[0].id.hex() == k.a_chunk);
		CHECK(r->blob_id(as_bytes(kat::a_txt())) == a.chunks[0].id);
		CHECK(content(*r, a) == kat::a_txt());
		Entry b = lookup(*r, h, src + "/dir/b.bin");
		CHECK((b.mode == (S_IFREG | 0600) && b.size == 40000 && b.has_list));
		CHECK(file_chunks(*r, b).size() == k.b_chunks);
		CHECK(content(*r, b) == kat::b_bin());
		Entry l = lookup(*r, h, src + "/link");
		CHECK((l.type == EntryType::Symlink && l.target == "a.txt" && l.mtime_ns == kat::kMtime));
		Entry dir = lookup(*r, h, src + "/dir");
		CHECK((dir.type == EntryType::Directory && dir.mode == (S_IFDIR | 0750)));

		// Every object encodes back to the bytes stored.
		Bytes raw_config = r->store().open();
		Config parsed = parse_config(raw_config);
		crypto::SecureBytes master = parsed.plain_master;
		if (k.encrypted) {
			auto key_names = r->store().list(Kind::Key);
			REQUIRE(key_names.size() == 1);
			auto m = unwrap_master_key(r->store().get(Kind::Key, key_names[0]), as_bytes(kat::kPassphrase), parsed);
			REQUIRE(m);
			master = *m;
		}
		CHECK(encode_config(parsed, KeyRing::derive(master, parsed)) == raw_config);
		Bytes body = r->get_sealed(Kind::Snapshot, ObjectKind::SnapshotHeader, k.snapshot);
		CHECK(SnapshotHeader::decode(body, k.snapshot).encode() == body);
		for (const Id &node : {h.root.tree, dir.tree}) {
			Bytes n = r->get_blob(node, BlobType::Tree);
			TreeNode t = decode_tree_node(n, node);
			REQUIRE(t.leaf);
			CHECK(encode_leaf(t.entries.data(), t.entries.size()) == n);
		}
		Bytes list = r->get_blob(b.list, BlobType::ChunkList);
		CHECK(encode_chunk_list(decode_chunk_list(list)) == list);
		auto segments = r->store().list(Kind::Index);
		REQUIRE(segments.size() == 1);
		Bytes seg = r->get_sealed(Kind::Index, ObjectKind::IndexSegment, segments[0]);
		Index idx;
		idx.load_segment(seg);
		idx.finish_load();
		CHECK(idx.encode_all() == seg);

		CheckOptions co;
		co.read_data = true;
		CHECK(check(*r, co).ok());
		// and a restore gives the tree back
		PullOptions po;
		po.to = d / "out";
		po.rebase = true;
		pull(*r, h, src, po);
		std::string want = kat::b_bin();
		CHECK(test::read_file(d / "out/src/dir/b.bin") == Bytes(want.begin(), want.end()));
	}
}
