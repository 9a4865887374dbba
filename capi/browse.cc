// The C ABI of the filesystem view beyond ls/cat: streaming directory iteration, diff,
// locate, and repository information.
#include "plakar/plakar.h"

#include <cstring>
#include <vector>

#include "internal.h"
#include "snapshot/diff.h"
#include "snapshot/locate.h"

using namespace plakar;
using namespace plakar::capi;

struct plakar_dir {
	plakar_repository *owner = nullptr;
	std::unique_ptr<DirIterator> it;
	plakar_entry current;
};

namespace {
std::string path_or_root(const char *p) { return p && *p ? p : "/"; }
} // namespace

extern "C" {

int plakar_dir_open(plakar_dir **out, const plakar_snapshot *snap, const char *path)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(snap && snap->owner, "snapshot is NULL");
		CallScope lk(snap->owner);
		std::string p = path_or_root(path);
		Entry e = lookup(*snap->owner->repo, snap->h, p);
		if (e.type != EntryType::Directory)
			fail(Code::Invalid, p + ": not a directory");
		auto d = std::make_unique<plakar_dir>();
		d->owner = snap->owner;
		if (e.has_tree)
			d->it = std::make_unique<DirIterator>(*snap->owner->repo, e.tree);
		*out = d.release();
	});
}

int plakar_dir_next(plakar_dir *dir, const plakar_entry **entry)
{
	return guard([&] {
		require(entry, "entry is NULL");
		*entry = nullptr;
		require(dir, "dir is NULL");
		if (!dir->it)
			return;
		CallScope lk(dir->owner);
		if (dir->it->next(dir->current.e))
			*entry = &dir->current;
		else
			dir->it.reset();
	});
}

void plakar_dir_free(plakar_dir *dir) { delete dir; }

int plakar_snapshot_diff(const plakar_snapshot *a, const char *path_a, const plakar_snapshot *b, const char *path_b,
                         plakar_change_cb cb, void *payload)
{
	return guard([&] {
		require(a && a->owner && b && b->owner, "snapshot is NULL");
		require(a->owner == b->owner, "both snapshots must come from the same repository handle");
		require(cb, "callback is NULL");
		CallScope lk(a->owner);
		Repository &repo = *a->owner->repo;
		std::string pa = path_or_root(path_a), pb = path_b && *path_b ? path_b : pa;
		Entry ea = lookup(repo, a->h, pa), eb = lookup(repo, b->h, pb);
		std::string shown = "/";
		for (const auto &c : split_path(pb))
			shown += (shown == "/" ? "" : "/") + c;
		diff(repo, ea, eb, shown, [&](const Change &c) {
			plakar_entry before, after;
			if (c.before)
				before.e = *c.before;
			if (c.after)
				after.e = *c.after;
			plakar_change pc{PLAKAR_CHANGE_VERSION, int(c.kind), c.path.c_str(), c.before ? &before : nullptr,
			                 c.after ? &after : nullptr, c.what};
			if (cb(&pc, payload) != 0)
				fail(Code::Canceled, "canceled");
		});
	});
}

int plakar_locate(plakar_repository *repo, const char *pattern, const plakar_locate_options *opts,
                  plakar_match_cb cb, void *payload)
{
	return guard([&] {
		require(repo, "repository is NULL");
		require(pattern && *pattern, "empty pattern");
		require(cb, "callback is NULL");
		require(!opts || opts->version == PLAKAR_LOCATE_OPTIONS_VERSION, "unknown plakar_locate_options version");
		CallScope lk(repo);
		auto reading = protect_reads(*repo->repo);
		LocateQuery q;
		q.pattern = pattern;
		q.full_path = opts && opts->full_path;
		std::vector<SnapshotHeader> targets;
		if (opts && opts->snapshots && opts->nsnapshots) {
			for (size_t i = 0; i < opts->nsnapshots; i++) {
				require(opts->snapshots[i], "NULL snapshot id");
				targets.push_back(load_snapshot(*repo->repo, resolve_snapshot(*repo->repo, opts->snapshots[i])));
			}
		} else {
			targets = list_snapshots(*repo->repo);
		}
		LocateMemo memo;
		for (auto &h : targets) {
			plakar_snapshot snap;
			snap.owner = repo;
			snap.reading = reading;
			snap.id = h.id_string();
			snap.h = std::move(h);
			locate(*repo->repo, snap.h, q, memo, [&](const std::string &path) {
				if (cb(&snap, path.c_str(), payload) != 0)
					fail(Code::Canceled, "canceled");
			});
		}
	});
}

int plakar_repository_info_get(plakar_repository *repo, plakar_repository_info *info)
{
	return guard([&] {
		require(repo, "repository is NULL");
		require(info, "info is NULL");
		require(info->version == PLAKAR_REPOSITORY_INFO_VERSION, "unknown plakar_repository_info version");
		CallScope lk(repo);
		const Config &cfg = repo->repo->config();
		plakar_repository_info out{};
		out.version = PLAKAR_REPOSITORY_INFO_VERSION;
		out.format_version = PLAKAR_FORMAT_VERSION;
		out.encrypted = cfg.encrypted ? 1 : 0;
		out.created = cfg.created_ns;
		out.chunk_min = cfg.chunks.min;
		out.chunk_avg = cfg.chunks.avg;
		out.chunk_max = cfg.chunks.max;
		out.compression_level = cfg.compression_level;
		out.pack_size = cfg.pack_size;
		auto reading = protect_reads(*repo->repo); // the index is loaded: no segment goes meanwhile
		auto sum = repo->repo->index_summary();
		out.packs = sum.packs;
		out.data_blobs = sum.blobs[int(BlobType::Chunk)];
		out.meta_blobs = sum.blobs[int(BlobType::Tree)] + sum.blobs[int(BlobType::ChunkList)];
		for (int t = 1; t <= 3; t++)
			out.stored_bytes += sum.stored_bytes[t];
		out.data_bytes = sum.raw_bytes[int(BlobType::Chunk)];
		for (const auto &h : list_snapshots(*repo->repo)) {
			out.snapshots++;
			out.logical_bytes += h.size;
		}
		*info = out;
	});
}

} // extern "C"
