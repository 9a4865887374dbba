// plakar._plakar: maintenance and the key agent (capi/maintenance.cc): check, rm, keep, repair, gc, run_agent, stop_agent.
#include "common.h"

namespace plakar_py {

// Binds the socket, then serves until stopped or idle (GIL released): call it from a thread.
void run_agent(const py::bytes &socket_b, unsigned idle_timeout)
{
	std::string socket = c_string(socket_b, "agent socket");
	plakar_agent *a = nullptr;
	Status s = Status::capture(plakar_agent_listen(&a, socket.c_str()));
	if (s.ok()) {
		s = blocking([&] { return Status::capture(plakar_agent_serve(a, idle_timeout)); });
		plakar_agent_free(a);
	}
	if (!s.ok())
		raise_status(s);
}

void stop_agent(const py::bytes &socket_b)
{
	std::string socket = c_string(socket_b, "agent socket");
	Status s = blocking([&] { return Status::capture(plakar_agent_stop(socket.c_str())); });
	if (!s.ok())
		raise_status(s);
}

// (stats dict, [(code, object, message)], [(blob hex, count)]): the check ran, clean or not.
py::tuple repository_check(const RepositoryHandle &self, const std::vector<py::bytes> &snapshots_b, bool fast,
                           bool read_data, bool refcounts)
{
	auto repo = self.get();
	std::vector<std::string> ids = c_strings(snapshots_b, "snapshot id");
	std::vector<const char *> ptrs = c_pointers(ids);
	plakar_check_report *report = nullptr;
	Status s = blocking([&] {
		plakar_check_options o = PLAKAR_CHECK_OPTIONS_INIT;
		o.flags = (fast ? PLAKAR_CHECK_FAST : 0) | (read_data ? PLAKAR_CHECK_READ_DATA : 0) |
		          (refcounts ? PLAKAR_CHECK_REFCOUNTS : 0);
		o.snapshots = ptrs.empty() ? nullptr : ptrs.data();
		o.nsnapshots = ptrs.size();
		Status st = Status::capture(plakar_repository_check(&report, repo->h, &o));
		return report ? Status{} : st; // problems found are in the report, not an exception
	});
	if (!s.ok())
		raise_status(s);
	std::unique_ptr<plakar_check_report, void (*)(plakar_check_report *)> holder(report, plakar_check_report_free);
	plakar_check_stats st{};
	plakar_check_stats_init(&st);
	if (int rc = plakar_check_report_stats(&st, report); rc != PLAKAR_OK)
		raise_status(Status::capture(rc));
	py::dict d;
	d["snapshots"] = st.snapshots;
	d["entries"] = st.entries;
	d["blobs"] = st.blobs;
	d["bytes"] = st.bytes;
	d["packs"] = st.packs;
	d["unreferenced_blobs"] = st.unreferenced_blobs;
	d["unreferenced_bytes"] = st.unreferenced_bytes;
	d["unindexed_packs"] = st.unindexed_packs;
	py::list problems;
	for (size_t i = 0; i < plakar_check_report_problem_count(report); i++) {
		int code = 0;
		const char *object = nullptr, *message = nullptr;
		if (plakar_check_report_problem(&code, &object, &message, report, i) == PLAKAR_OK)
			problems.append(py::make_tuple(code, py::str(object), py::str(message)));
	}
	py::list refs;
	for (size_t i = 0; i < plakar_check_report_refcount_count(report); i++) {
		char id[65];
		uint32_t count = 0;
		if (plakar_check_report_refcount(id, &count, report, i) == PLAKAR_OK)
			refs.append(py::make_tuple(py::str(id), count));
	}
	return py::make_tuple(d, problems, refs);
}

size_t repository_rm(const RepositoryHandle &self, const std::vector<py::bytes> &snapshots_b)
{
	auto repo = self.get();
	std::vector<std::string> ids = c_strings(snapshots_b, "snapshot id");
	std::vector<const char *> ptrs = c_pointers(ids);
	size_t removed = 0;
	Status s = blocking(
	    [&] { return Status::capture(plakar_snapshot_remove(&removed, repo->h, ptrs.data(), ptrs.size())); });
	if (!s.ok())
		raise_status(s);
	return removed;
}

extern "C" int collect_decision(const char *id, const char *group, int64_t time_ns, int keep, const char *reasons,
                                void *payload)
{
	auto *out = static_cast<std::vector<std::tuple<std::string, std::string, int64_t, bool, std::string>> *>(payload);
	out->emplace_back(id, group, time_ns, keep != 0, reasons);
	return 0;
}

// [(snapshot id, group, time_ns, kept, reasons)], and how many were removed.
py::tuple repository_keep(const RepositoryHandle &self, int last, int hourly, int daily, int weekly, int monthly,
                          int yearly, bool dry_run)
{
	auto repo = self.get();
	std::vector<std::tuple<std::string, std::string, int64_t, bool, std::string>> decisions;
	size_t removed = 0;
	Status s = blocking([&] {
		plakar_keep_options o = PLAKAR_KEEP_OPTIONS_INIT;
		o.last = last;
		o.hourly = hourly;
		o.daily = daily;
		o.weekly = weekly;
		o.monthly = monthly;
		o.yearly = yearly;
		o.dry_run = dry_run ? 1 : 0;
		o.decision = collect_decision;
		o.payload = &decisions;
		return Status::capture(plakar_repository_keep(&removed, repo->h, &o));
	});
	if (!s.ok())
		raise_status(s);
	py::list out;
	for (const auto &[id, group, t, keep, reasons] : decisions)
		out.append(py::make_tuple(id, py::str(group), t, keep, py::str(reasons)));
	return py::make_tuple(out, removed);
}

extern "C" int collect_damaged(const char *message, void *payload)
{
	static_cast<std::vector<std::string> *>(payload)->emplace_back(message);
	return 0;
}

py::dict repository_repair(const RepositoryHandle &self, bool apply, bool read_data)
{
	auto repo = self.get();
	plakar_repair_report r;
	plakar_repair_report_init(&r);
	std::vector<std::string> damaged;
	Status s = blocking([&] {
		plakar_repair_options o = PLAKAR_REPAIR_OPTIONS_INIT;
		o.flags = (apply ? PLAKAR_REPAIR_APPLY : 0) | (read_data ? PLAKAR_REPAIR_READ_DATA : 0);
		o.damaged = collect_damaged;
		o.payload = &damaged;
		return Status::capture(plakar_repository_repair(&r, repo->h, &o));
	});
	if (!s.ok())
		raise_status(s);
	py::dict d;
	d["applied"] = bool(r.applied);
	d["packs"] = r.packs;
	d["blobs"] = r.blobs;
	d["added"] = r.added;
	d["dropped"] = r.dropped;
	d["segments_before"] = r.segments_before;
	d["damaged_blobs"] = r.damaged_blobs;
	py::list dl;
	for (const auto &m : damaged)
		dl.append(py::str(m));
	d["damaged"] = dl;
	return d;
}

py::dict repository_gc(const RepositoryHandle &self, bool dry_run, int repack_percent)
{
	auto repo = self.get();
	plakar_gc_report r;
	plakar_gc_report_init(&r);
	Status s = blocking([&] {
		plakar_gc_options o = PLAKAR_GC_OPTIONS_INIT;
		o.dry_run = dry_run ? 1 : 0;
		o.repack_percent = repack_percent;
		return Status::capture(plakar_repository_gc(&r, repo->h, &o));
	});
	if (!s.ok())
		raise_status(s);
	py::dict d;
	d["dry_run"] = bool(r.dry_run);
	d["snapshots"] = r.snapshots;
	d["live_blobs"] = r.live_blobs;
	d["packs_before"] = r.packs_before;
	d["packs_after"] = r.packs_after;
	d["bytes_before"] = r.bytes_before;
	d["bytes_after"] = r.bytes_after;
	d["packs_deleted"] = r.packs_deleted;
	d["bytes_freed"] = r.bytes_freed;
	d["packs_repacked"] = r.packs_repacked;
	d["blobs_repacked"] = r.blobs_repacked;
	d["bytes_repacked"] = r.bytes_repacked;
	d["packs_pending"] = r.packs_pending;
	d["packs_resurrected"] = r.packs_resurrected;
	d["segments_before"] = r.segments_before;
	d["segments_after"] = r.segments_after;
	d["stale_locks_removed"] = r.stale_locks_removed;
	d["pushes_running"] = r.pushes_running;
	d["readers_running"] = r.readers_running;
	d["temp_files_removed"] = r.temp_files_removed;
	d["packs_merged"] = r.packs_merged;
	d["segments_deleted"] = r.segments_deleted;
	d["segments_pending"] = r.segments_pending;
	return d;
}

} // namespace plakar_py
