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

int plakar_dir_next(const plakar_entry **entry, plakar_dir *dir)
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
                         const plakar_diff_options *opts)
{
	return guard([&] {
		require(a && a->owner && b && b->owner, "snapshot is NULL");
		require(a->owner == b->owner, "both snapshots must come from the same repository handle");
		require(opts && opts->version == PLAKAR_DIFF_OPTIONS_VERSION, "missing or unknown plakar_diff_options version");
		require(opts->change, "the change callback is NULL");
		plakar_change_cb cb = opts->change;
		void *payload = opts->payload;
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

int plakar_repository_locate(plakar_repository *repo, const char *pattern, const plakar_locate_options *opts)
{
	return guard([&] {
		require(repo, "repository is NULL");
		require(pattern && *pattern, "empty pattern");
		require(opts && opts->version == PLAKAR_LOCATE_OPTIONS_VERSION, "missing or unknown plakar_locate_options version");
		require(opts->match, "the match callback is NULL");
		require(!opts->nsnapshots || opts->snapshots, "snapshots is NULL");
		LocateQuery q;
		q.pattern = pattern;
		q.full_path = opts->full_path != 0;
		std::vector<std::string> ids;
		for (size_t i = 0; i < opts->nsnapshots; i++) {
			require(opts->snapshots[i] && *opts->snapshots[i], "empty snapshot id");
			ids.emplace_back(opts->snapshots[i]);
		}
		CallScope lk(repo);
		// One handle per snapshot searched, alive while its matches are told.
		plakar_snapshot snap;
		snap.owner = repo;
		snap.reading = protect_reads(*repo->repo); // a match the callback dups stays readable
		locate_snapshots(*repo->repo, ids, q, [&](const SnapshotHeader &h, const std::string &path) {
			if (snap.id.empty() || snap.h.id != h.id) {
				snap.h = h;
				snap.id = h.id_string();
			}
			if (opts->match(&snap, path.c_str(), opts->payload) != 0)
				fail(Code::Canceled, "canceled");
		});
	});
}

int plakar_repository_describe(plakar_repository_info *info, plakar_repository *repo)
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
		RepositoryInfo ri = describe_repository(*repo->repo);
		out.snapshots = ri.snapshots;
		out.packs = ri.packs;
		out.data_blobs = ri.data_blobs;
		out.meta_blobs = ri.meta_blobs;
		out.stored_bytes = ri.stored_bytes;
		out.data_bytes = ri.data_bytes;
		out.logical_bytes = ri.logical_bytes;
		*info = out;
	});
}

} // extern "C"
