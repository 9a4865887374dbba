// plakar_index_bench: what keeping the blob index costs at scale, on a synthetic index.
//
//   plakar_index_bench DIR BLOBS [PUSHES] [PER_PUSH]
//
// In a fresh encrypted repository under DIR (filesystem store, local cache), BLOBS synthetic
// entries are indexed the way one long push indexes them (a segment every 262,144 blobs, the
// tiers merging as they fill); then PUSHES small pushes (default 200) of PER_PUSH new entries
// each (default 1,000), each its own handle, as separate `plakar push` runs are: open, load
// the index from the cache, add, flush (the segment, then whatever merge it triggers). For
// each phase: wall time, bytes written to the index directory, merges; per small push the
// mean and the worst flush, and the load. Then the cost of writing the whole index as one
// segment, which is what every compaction cost before tiers (whenever more than 8 segments
// existed). Entries point into packs that do not exist: nothing here reads a blob.
#include <sys/resource.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "base/error.h"
#include "crypto/crypto.h"
#include "repository/repository.h"

using namespace plakar;
namespace fs = std::filesystem;

namespace {

double now_s()
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint64_t dir_bytes(const fs::path &d)
{
	uint64_t n = 0;
	for (const auto &e : fs::recursive_directory_iterator(d))
		if (e.is_regular_file())
			n += e.file_size();
	return n;
}

size_t dir_files(const fs::path &d)
{
	size_t n = 0;
	for (const auto &e : fs::recursive_directory_iterator(d))
		n += e.is_regular_file();
	return n;
}

long peak_rss_mb()
{
	rusage u{};
	getrusage(RUSAGE_SELF, &u);
	return u.ru_maxrss / 1024;
}

// n entries with random ids, in one made-up pack per 20,000 (a 16 MiB pack of 800-byte blobs).
void add_entries(Repository &r, uint64_t n, uint64_t &serial)
{
	std::vector<BlobRecord> recs;
	for (uint64_t i = 0; i < n; i++) {
		Bytes id = crypto::random_bytes(32);
		recs.push_back(BlobRecord{Id::from(id), BlobType::Chunk, 1, uint32_t(recs.size() * 800), 800, 1600});
		if (recs.size() == 20000 || i + 1 == n) {
			r.index_pack(Id::from(crypto::random_bytes(32)), recs);
			recs.clear();
		}
		if (++serial % 262144 == 0)
			r.flush(); // a long push writes a segment every 262,144 blobs
	}
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 3) {
		std::fprintf(stderr, "usage: plakar_index_bench DIR BLOBS [PUSHES] [PER_PUSH]\n");
		return 2;
	}
	std::setvbuf(stdout, nullptr, _IOLBF, 0);
	try {
		fs::path dir = argv[1];
		uint64_t blobs = std::stoull(argv[2]);
		int pushes = argc > 3 ? std::stoi(argv[3]) : 200;
		uint64_t per_push = argc > 4 ? std::stoull(argv[4]) : 1000;
		fs::remove_all(dir);
		fs::create_directories(dir);
		std::string uri = dir / "repo";
		CreateOptions co;
		co.passphrase = "bench";
		Repository::create(uri, co);
		OpenOptions oo;
		oo.cache_dir = dir / "cache";
		uint64_t serial = 0;

		double t0 = now_s();
		uint64_t merges = 0;
		{
			auto r = Repository::open(uri, std::string("bench"), oo);
			r->begin_write();
			add_entries(*r, blobs, serial);
			r->flush();
			merges = r->stats().segments_merged;
		}
		double fill = now_s() - t0;
		uint64_t fill_bytes = dir_bytes(dir / "repo/index");
		std::printf("fill\tblobs=%" PRIu64 "\twall_s=%.2f\tindex_bytes=%" PRIu64 "\tmerges=%" PRIu64
		            "\tfiles=%zu\tpeak_rss_mb=%ld\n",
		            blobs, fill, fill_bytes, merges, dir_files(dir / "repo/index"), peak_rss_mb());

		double load_sum = 0, flush_sum = 0, flush_max = 0;
		uint64_t before = dir_bytes(dir / "repo/index"), push_merges = 0, worst_bytes = 0;
		size_t live_max = 0;
		for (int p = 0; p < pushes; p++) {
			uint64_t b0 = dir_bytes(dir / "repo/index");
			double a = now_s();
			auto r = Repository::open(uri, std::string("bench"), oo);
			r->begin_write(); // loads the index (from the cache)
			double b = now_s();
			add_entries(*r, per_push, serial);
			double c = now_s();
			r->flush();
			double d = now_s();
			load_sum += b - a;
			flush_sum += d - c;
			flush_max = std::max(flush_max, d - c);
			push_merges += r->stats().segments_merged;
			live_max = std::max(live_max, r->live_segments().size());
			worst_bytes = std::max(worst_bytes, dir_bytes(dir / "repo/index") - b0);
		}
		uint64_t written = dir_bytes(dir / "repo/index") - before;
		std::printf("pushes\tn=%d\tper_push=%" PRIu64 "\tload_mean_s=%.3f\tflush_mean_s=%.4f\tflush_max_s=%.3f"
		            "\tindex_bytes_written=%" PRIu64 "\tper_push_bytes=%" PRIu64 "\tworst_push_bytes=%" PRIu64
		            "\tmerges=%" PRIu64 "\tlive_segments_max=%zu\tfiles=%zu\tpeak_rss_mb=%ld\n",
		            pushes, per_push, load_sum / pushes, flush_sum / pushes, flush_max, written,
		            pushes ? written / uint64_t(pushes) : 0, worst_bytes, push_merges, live_max,
		            dir_files(dir / "repo/index"), peak_rss_mb());

		// What one compaction cost before tiers: the whole index, encoded, sealed and stored.
		{
			auto r = Repository::open(uri, std::string("bench"), oo);
			Index all;
			r->for_each_indexed([&](const Id &pack, const BlobRecord &rec) { all.add(pack, rec); });
			double a = now_s();
			Bytes body = all.encode_fresh();
			std::string name(64, 'f');
			r->put_sealed(Kind::Index, ObjectKind::IndexSegment, name, body);
			double b = now_s();
			uint64_t size = fs::file_size(dir / "repo/index" / name);
			std::printf("whole\tentries=%zu\twall_s=%.2f\tbytes=%" PRIu64 "\tpeak_rss_mb=%ld\n", all.size(), b - a,
			            size, peak_rss_mb());
		}
		fs::remove_all(dir);
	} catch (const Error &e) {
		std::fprintf(stderr, "plakar_index_bench: %s\n", e.what());
		return 1;
	}
	return 0;
}
