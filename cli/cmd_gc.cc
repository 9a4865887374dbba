// `plakar rm [-no-gc] SNAPSHOT...` removes snapshots, then collects garbage; `plakar keep`
// applies a retention policy (then collects garbage); `plakar gc
// [-dry-run] [-repack PERCENT]` collects garbage: packs no snapshot uses are deleted, packs
// mostly unused are repacked. Neither ever blocks a running push (docs/cli.md).
#include <plakar/plakar.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "json.h"
#include "report.h"

namespace plakar::cli {

namespace {

extern "C" int gc_progress(const char *, uint64_t, uint64_t, void *)
{
	return InterruptGuard::interrupted() ? 1 : 0;
}

void print_gc(const plakar_gc_report &r, bool json)
{
	if (json) {
		JsonObject o;
		o.boolean("dry_run", r.dry_run).unum("snapshots", r.snapshots).unum("live_blobs", r.live_blobs);
		o.unum("packs_before", r.packs_before).unum("packs_after", r.packs_after);
		o.unum("bytes_before", r.bytes_before).unum("bytes_after", r.bytes_after);
		o.unum("packs_deleted", r.packs_deleted).unum("bytes_freed", r.bytes_freed);
		o.unum("packs_repacked", r.packs_repacked).unum("blobs_repacked", r.blobs_repacked);
		o.unum("bytes_repacked", r.bytes_repacked).unum("packs_pending", r.packs_pending);
		o.unum("packs_resurrected", r.packs_resurrected).unum("segments_before", r.segments_before);
		o.unum("segments_after", r.segments_after).unum("stale_locks_removed", r.stale_locks_removed);
		o.unum("pushes_running", r.pushes_running).unum("readers_running", r.readers_running);
		o.unum("temp_files_removed", r.temp_files_removed).unum("packs_merged", r.packs_merged);
		o.unum("segments_deleted", r.segments_deleted).unum("segments_pending", r.segments_pending);
		std::printf("%s\n", o.done().c_str());
		return;
	}
	const char *would = r.dry_run ? "would " : "";
	std::printf("gc: %" PRIu64 " snapshot(s), %" PRIu64 " live blobs\n", r.snapshots, r.live_blobs);
	std::printf("gc: %sdelete %" PRIu64 " pack(s), freeing %s; %srepack %" PRIu64 " pack(s) (%" PRIu64
	            " blobs, %s copied)\n",
	            would, r.packs_deleted, humanize_bytes(r.bytes_freed).c_str(), would, r.packs_repacked,
	            r.blobs_repacked, humanize_bytes(r.bytes_repacked).c_str());
	if (!r.dry_run)
		std::printf("gc: packs %" PRIu64 " -> %" PRIu64 ", %s -> %s, index segments %" PRIu64 " -> %" PRIu64 "\n",
		            r.packs_before, r.packs_after, humanize_bytes(r.bytes_before).c_str(),
		            humanize_bytes(r.bytes_after).c_str(), r.segments_before, r.segments_after);
	if (r.packs_pending)
		std::printf("gc: %" PRIu64 " pack(s) wait for %" PRIu64 " running push(es) and %" PRIu64
		            " reader(s) to end; the next gc after that deletes them\n",
		            r.packs_pending, r.pushes_running, r.readers_running);
	if (r.segments_pending)
		std::printf("gc: %" PRIu64 " superseded index segment(s) wait for the same; the next gc after that deletes them\n",
		            r.segments_pending);
	if (r.stale_locks_removed)
		std::printf("gc: removed %" PRIu64 " stale lock(s)\n", r.stale_locks_removed);
	if (r.packs_merged)
		std::printf(r.dry_run ? "gc: would merge %" PRIu64 " small pack(s) into full ones\n"
		                      : "gc: merged %" PRIu64 " small pack(s) into full ones\n",
		            r.packs_merged);
	if (r.temp_files_removed)
		std::printf("gc: removed %" PRIu64 " temporary file(s) of interrupted writes\n", r.temp_files_removed);
}

int run_gc(Session &session, bool dry_run, int repack, bool json)
{
	plakar_gc_options o = PLAKAR_GC_OPTIONS_INIT;
	o.dry_run = dry_run ? 1 : 0;
	o.repack_percent = repack;
	o.progress = gc_progress;
	plakar_gc_report r;
	plakar_gc_report_init(&r);
	InterruptGuard guard;
	int rc = plakar_repository_gc(&r, session.repository(), &o);
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	print_gc(r, json);
	return kExitOk;
}

struct KeepState {
	bool json = false;
};

extern "C" int on_decision(const char *id, const char *group, int64_t time_ns, int keep, const char *reasons,
                           void *payload)
{
	auto *st = static_cast<KeepState *>(payload);
	if (st->json)
		std::printf("%s\n", JsonObject()
		                        .str("snapshot", id)
		                        .str("group", group)
		                        .str("time", format_time(time_ns))
		                        .boolean("keep", keep != 0)
		                        .str("reasons", reasons)
		                        .done()
		                        .c_str());
	else if (keep)
		std::printf("keep    %s  %s  %s  (%s)\n", format_time(time_ns).c_str(), id, group, reasons);
	else
		std::printf("remove  %s  %s  %s\n", format_time(time_ns).c_str(), id, group);
	return InterruptGuard::interrupted() ? 1 : 0;
}

} // namespace

int cmd_keep(Session &session)
{
	FlagSet flags("keep");
	bool no_gc = false, dry_run = false;
	KeepState st;
	plakar_keep_options o = PLAKAR_KEEP_OPTIONS_INIT;
	constexpr int kMax = 1000000;
	flags.add_int("last", &o.last, 0, kMax);
	flags.add_int("hourly", &o.hourly, 0, kMax);
	flags.add_int("daily", &o.daily, 0, kMax);
	flags.add_int("weekly", &o.weekly, 0, kMax);
	flags.add_int("monthly", &o.monthly, 0, kMax);
	flags.add_int("yearly", &o.yearly, 0, kMax);
	flags.add_bool("dry-run", &dry_run);
	flags.add_bool("no-gc", &no_gc);
	flags.add_bool("json", &st.json);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos < args.size()) {
		// `keep N`: the N most recent of each group.
		const std::string &n = args[pos];
		if (pos + 1 != args.size())
			throw UsageError("unexpected argument: " + args[pos + 1]);
		char *end = nullptr;
		long v = std::strtol(n.c_str(), &end, 10);
		if (n.empty() || *end != '\0' || v < 1 || v > kMax || o.last)
			throw UsageError("N must be a count of snapshots (1 or more), given once");
		o.last = int(v);
	}
	if (!o.last && !o.hourly && !o.daily && !o.weekly && !o.monthly && !o.yearly)
		throw UsageError("give N, or at least one of -last -hourly -daily -weekly -monthly -yearly");
	o.dry_run = dry_run ? 1 : 0;
	o.decision = on_decision;
	o.payload = &st;
	InterruptGuard guard;
	size_t removed = 0;
	int rc = plakar_repository_keep(&removed, session.repository(), &o);
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	if (st.json)
		std::printf("%s\n", JsonObject().boolean("dry_run", dry_run).unum("removed", removed).done().c_str());
	else if (dry_run)
		std::printf("keep: dry run, nothing removed\n");
	else
		std::printf("keep: removed %zu snapshot(s)\n", removed);
	int out = (no_gc || dry_run || removed == 0) ? kExitOk : run_gc(session, false, 50, st.json);
	session.finish_output();
	return out;
}

int cmd_gc(Session &session)
{
	FlagSet flags("gc");
	bool dry_run = false, json = false;
	int repack = 50;
	flags.add_bool("dry-run", &dry_run);
	flags.add_bool("json", &json);
	flags.add_int("repack", &repack, 0, 100);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos != args.size())
		throw UsageError("unexpected argument: " + args[pos]);
	int rc = run_gc(session, dry_run, repack, json);
	session.finish_output();
	return rc;
}

int cmd_rm(Session &session)
{
	FlagSet flags("rm");
	bool no_gc = false, json = false;
	flags.add_bool("no-gc", &no_gc);
	flags.add_bool("json", &json);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos == args.size())
		throw UsageError("missing SNAPSHOT");
	std::vector<const char *> ids;
	for (std::size_t i = pos; i < args.size(); ++i) {
		if (args[i].empty())
			throw UsageError("empty SNAPSHOT");
		ids.push_back(args[i].c_str());
	}
	size_t removed = 0;
	int rc = plakar_snapshot_remove(&removed, session.repository(), ids.data(), ids.size());
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	if (json)
		std::printf("%s\n", JsonObject().unum("removed", removed).done().c_str());
	else
		std::printf("rm: removed %zu snapshot(s)\n", removed);
	int out = no_gc ? kExitOk : run_gc(session, false, 50, json);
	session.finish_output();
	return out;
}

} // namespace plakar::cli

namespace plakar::cli {

namespace {
extern "C" int on_damaged(const char *message, void *)
{
	report_item("repair", "", message);
	return InterruptGuard::interrupted() ? 1 : 0;
}
} // namespace

// `plakar repair [-read-data] [-yes]`: the index rebuilt from the packs' tables of contents.
int cmd_repair(Session &session)
{
	FlagSet flags("repair");
	bool yes = false, json = false, read_data = false;
	flags.add_bool("yes", &yes);
	flags.add_bool("read-data", &read_data);
	flags.add_bool("json", &json);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	if (pos != args.size())
		throw UsageError("unexpected argument: " + args[pos]);
	plakar_repair_report r;
	plakar_repair_report_init(&r);
	plakar_repair_options o = PLAKAR_REPAIR_OPTIONS_INIT;
	o.flags = (yes ? PLAKAR_REPAIR_APPLY : 0) | (read_data ? PLAKAR_REPAIR_READ_DATA : 0);
	o.damaged = on_damaged;
	int rc = plakar_repository_repair(&r, session.repository(), &o);
	if (rc != PLAKAR_OK)
		throw_library_error(rc);
	if (json) {
		JsonObject o;
		o.boolean("applied", r.applied).unum("packs", r.packs).unum("blobs", r.blobs).unum("added", r.added);
		o.unum("dropped", r.dropped).unum("segments_before", r.segments_before).unum("damaged", r.damaged);
		o.unum("damaged_blobs", r.damaged_blobs);
		std::printf("%s\n", o.done().c_str());
	} else {
		std::printf("repair: %s the index from %" PRIu64 " pack(s): %" PRIu64 " blobs, %" PRIu64
		            " added (present in packs, missing from the index), %" PRIu64
		            " dropped (naming packs that are gone), %" PRIu64 " segment(s) replaced\n",
		            r.applied ? "rebuilt" : "would rebuild", r.packs, r.blobs, r.added, r.dropped, r.segments_before);
		if (r.damaged_blobs)
			std::printf("repair: %" PRIu64 " damaged blob(s) %s out of the index: the next push of their "
			            "content stores them again\n",
			            r.damaged_blobs, r.applied ? "left" : "would be left");
		if (!r.applied)
			std::printf("repair: nothing changed; run again with -yes to apply\n");
		else
			std::printf("repair: done; run plakar check to see what, if anything, is still missing\n");
	}
	session.finish_output();
	return r.damaged ? kExitPartial : kExitOk;
}

} // namespace plakar::cli
