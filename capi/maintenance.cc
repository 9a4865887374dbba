// The C ABI of repository maintenance (check, rm, keep, gc, repair) and of the key agent.
#include <cstring>
#include <functional>
#include <optional>

#include "internal.h"
#include "agent/agent.h"
#include "snapshot/check.h"
#include "repository/repair.h"
#include "snapshot/gc.h"
#include "snapshot/retention.h"

using namespace plakar;
using namespace plakar::capi;

namespace {
// A plakar_stage_cb as the engine's progress function (empty when cb is NULL).
std::function<bool(const std::string &, uint64_t, uint64_t)> stage_progress(plakar_stage_cb cb, void *payload)
{
	if (!cb)
		return {};
	return [cb, payload](const std::string &stage, uint64_t done, uint64_t total) {
		return cb(stage.c_str(), done, total, payload) == 0;
	};
}
} // namespace

struct plakar_check_report {
	CheckReport r;
};

extern "C" {

int plakar_repository_check(plakar_check_report **out, plakar_repository *repo, const plakar_check_options *opts)
{
	std::string problems; // the message when problems were found, built inside guard
	int rc = guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(repo, "repository is NULL");
		require(!opts || opts->version == PLAKAR_CHECK_OPTIONS_VERSION, "unknown plakar_check_options version");
		CheckOptions o;
		if (opts) {
			require(!(opts->flags & ~unsigned(PLAKAR_CHECK_FAST | PLAKAR_CHECK_READ_DATA | PLAKAR_CHECK_REFCOUNTS)),
			        "unknown check flags");
			o.fast = opts->flags & PLAKAR_CHECK_FAST;
			o.read_data = opts->flags & PLAKAR_CHECK_READ_DATA;
			o.refcounts = opts->flags & PLAKAR_CHECK_REFCOUNTS;
			require(!opts->nsnapshots || opts->snapshots, "snapshots is NULL");
			for (size_t i = 0; i < opts->nsnapshots; i++) {
				require(opts->snapshots[i] && *opts->snapshots[i], "empty snapshot id");
				o.snapshots.emplace_back(opts->snapshots[i]);
			}
			require(o.snapshots.empty() || !(o.read_data || o.refcounts),
			        "PLAKAR_CHECK_READ_DATA and PLAKAR_CHECK_REFCOUNTS apply to the whole-repository check");
			require(!o.snapshots.empty() || !o.fast, "PLAKAR_CHECK_FAST applies to snapshots");
			o.progress = stage_progress(opts->progress, opts->payload);
		}
		CallScope lk(repo);
		auto report = std::make_unique<plakar_check_report>();
		auto reading = protect_reads(*repo->repo); // gc deletes nothing check may still read
		report->r = check(*repo->repo, o);
		if (!report->r.problems.empty())
			problems = std::to_string(report->r.problems.size()) + " problem(s) found; see the report";
		*out = report.release();
	});
	if (rc == PLAKAR_OK && !problems.empty())
		return set_error(PLAKAR_ECORRUPT, problems.c_str());
	return rc;
}

int plakar_check_report_stats(plakar_check_stats *stats, const plakar_check_report *report)
{
	return guard([&] {
		require(report, "report is NULL");
		require(stats, "stats is NULL");
		require(stats->version == PLAKAR_CHECK_STATS_VERSION, "unknown plakar_check_stats version");
		const CheckReport &r = report->r;
		stats->snapshots = r.snapshots;
		stats->entries = r.entries;
		stats->blobs = r.blobs;
		stats->bytes = r.bytes;
		stats->packs = r.packs;
		stats->unreferenced_blobs = r.unreferenced_blobs;
		stats->unreferenced_bytes = r.unreferenced_bytes;
		stats->unindexed_packs = r.unindexed_packs;
		stats->problems = r.problems.size();
	});
}

size_t plakar_check_report_problem_count(const plakar_check_report *report)
{
	return report ? report->r.problems.size() : 0;
}

int plakar_check_report_problem(int *code, const char **object, const char **message,
                                const plakar_check_report *report, size_t i)
{
	return guard([&] {
		require(report, "report is NULL");
		require(i < report->r.problems.size(), "problem index out of range");
		const CheckProblem &p = report->r.problems[i];
		if (code)
			*code = int(p.code);
		if (object)
			*object = p.object.c_str();
		if (message)
			*message = p.message.c_str();
	});
}

size_t plakar_check_report_refcount_count(const plakar_check_report *report)
{
	return report ? report->r.refcounts.size() : 0;
}

int plakar_check_report_refcount(char id_hex[65], uint32_t *count, const plakar_check_report *report, size_t i)
{
	return guard([&] {
		require(report, "report is NULL");
		require(id_hex, "id_hex is NULL");
		require(i < report->r.refcounts.size(), "refcount index out of range");
		std::string h = report->r.refcounts[i].first.hex();
		std::memcpy(id_hex, h.c_str(), 65);
		if (count)
			*count = report->r.refcounts[i].second;
	});
}

void plakar_check_report_free(plakar_check_report *report) { delete report; }

int plakar_snapshot_remove(size_t *removed, plakar_repository *repo, const char *const *ids, size_t nids)
{
	return guard([&] {
		if (removed)
			*removed = 0;
		require(repo, "repository is NULL");
		require(nids > 0 && ids, "no snapshot given");
		std::vector<std::string> v;
		for (size_t i = 0; i < nids; i++) {
			require(ids[i] && *ids[i], "empty snapshot id");
			v.emplace_back(ids[i]);
		}
		CallScope lk(repo);
		auto done = remove_snapshots(*repo->repo, v);
		if (removed)
			*removed = done.size();
	});
}

int plakar_repository_keep(size_t *removed, plakar_repository *repo, const plakar_keep_options *opts)
{
	return guard([&] {
		if (removed)
			*removed = 0;
		require(repo, "repository is NULL");
		require(opts && opts->version == PLAKAR_KEEP_OPTIONS_VERSION, "missing or unknown plakar_keep_options version");
		RetentionPolicy p;
		p.last = opts->last;
		p.hourly = opts->hourly;
		p.daily = opts->daily;
		p.weekly = opts->weekly;
		p.monthly = opts->monthly;
		p.yearly = opts->yearly;
		require(!p.empty(), "no retention rule: give at least one count");
		std::function<bool(const RetentionDecision &)> decide;
		if (plakar_keep_cb cb = opts->decision)
			decide = [cb, payload = opts->payload](const RetentionDecision &d) {
				std::string reasons;
				for (size_t i = 0; i < d.reasons.size(); i++)
					reasons += (i ? ", " : "") + d.reasons[i];
				return cb(d.id.c_str(), d.group.c_str(), d.time_ns, d.keep ? 1 : 0, reasons.c_str(), payload) == 0;
			};
		CallScope lk(repo);
		size_t n = keep_snapshots(*repo->repo, p, opts->dry_run != 0, decide);
		if (removed)
			*removed = n;
	});
}

int plakar_repository_repair(plakar_repair_report *report, plakar_repository *repo, const plakar_repair_options *opts)
{
	return guard([&] {
		require(repo, "repository is NULL");
		require(!opts || opts->version == PLAKAR_REPAIR_OPTIONS_VERSION, "unknown plakar_repair_options version");
		unsigned flags = opts ? opts->flags : 0;
		require(!(flags & ~unsigned(PLAKAR_REPAIR_APPLY | PLAKAR_REPAIR_READ_DATA)), "unknown repair flags");
		require(!report || report->version == PLAKAR_REPAIR_REPORT_VERSION, "unknown plakar_repair_report version");
		std::function<bool(const std::string &)> damaged;
		if (opts && opts->damaged)
			damaged = [cb = opts->damaged, payload = opts->payload](const std::string &m) {
				return cb(m.c_str(), payload) == 0;
			};
		CallScope lk(repo);
		RepairReport r = repair_index(*repo->repo, flags & PLAKAR_REPAIR_APPLY, flags & PLAKAR_REPAIR_READ_DATA, damaged);
		if (report) {
			report->applied = r.applied ? 1 : 0;
			report->packs = r.packs;
			report->blobs = r.blobs;
			report->added = r.added;
			report->dropped = r.dropped;
			report->segments_before = r.segments_before;
			report->damaged = r.damaged.size();
			report->damaged_blobs = r.unindexed_damaged;
		}
	});
}

int plakar_repository_gc(plakar_gc_report *report, plakar_repository *repo, const plakar_gc_options *opts)
{
	return guard([&] {
		require(repo, "repository is NULL");
		require(!opts || opts->version == PLAKAR_GC_OPTIONS_VERSION, "unknown plakar_gc_options version");
		require(!report || report->version == PLAKAR_GC_REPORT_VERSION, "unknown plakar_gc_report version");
		GcOptions o;
		if (opts) {
			require(opts->repack_percent >= -1 && opts->repack_percent <= 100, "repack_percent must be -1 or 0..100");
			o.dry_run = opts->dry_run != 0;
			if (opts->repack_percent >= 0)
				o.repack_below = opts->repack_percent / 100.0;
			o.progress = stage_progress(opts->progress, opts->payload);
		}
		CallScope lk(repo);
		GcReport r = collect_garbage(*repo->repo, o);
		if (report) {
			report->dry_run = r.dry_run ? 1 : 0;
			report->snapshots = r.snapshots;
			report->live_blobs = r.live_blobs;
			report->packs_before = r.packs_before;
			report->packs_after = r.packs_after;
			report->bytes_before = r.bytes_before;
			report->bytes_after = r.bytes_after;
			report->packs_deleted = r.packs_deleted;
			report->bytes_freed = r.bytes_freed;
			report->packs_repacked = r.packs_repacked;
			report->blobs_repacked = r.blobs_repacked;
			report->bytes_repacked = r.bytes_repacked;
			report->packs_pending = r.packs_pending;
			report->packs_resurrected = r.packs_resurrected;
			report->segments_before = r.segments_before;
			report->segments_after = r.segments_after;
			report->stale_locks_removed = r.stale_locks_removed;
			report->pushes_running = r.pushes_running;
			report->readers_running = r.readers_running;
			report->temp_files_removed = r.temp_files_removed;
			report->packs_merged = r.packs_merged;
			report->segments_deleted = r.segments_deleted;
			report->segments_pending = r.segments_pending;
		}
	});
}

} // extern "C"

// ------------------------------------------------------------------ key agent

struct plakar_agent {
	std::optional<agent::Listener> listener;
};

extern "C" {

int plakar_agent_listen(plakar_agent **out, const char *socket_path)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(socket_path && *socket_path, "socket path is empty");
		auto a = std::make_unique<plakar_agent>();
		a->listener.emplace(agent::Listener::listen(socket_path));
		*out = a.release();
	});
}

int plakar_agent_serve(plakar_agent *a, unsigned int idle_timeout_s)
{
	return guard([&] {
		require(a && a->listener, "agent is NULL");
		a->listener->serve(idle_timeout_s);
	});
}

void plakar_agent_free(plakar_agent *a) { delete a; }

int plakar_agent_stop(const char *socket_path)
{
	return guard([&] {
		require(socket_path && *socket_path, "socket path is empty");
		agent::stop(socket_path);
	});
}

} // extern "C"
