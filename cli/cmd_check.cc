// `plakar check [-fast] [-read-data] [-refcounts] [-json] [SNAPSHOT...]`: verifies snapshots
// (reading everything they reference, or with -fast only that it exists) or, with no
// snapshot, the whole repository (headers, trees, the index against the packs). Each problem
// is one line on stderr naming the object; the summary goes to stdout. Exit 1 on any problem.
#include <plakar/plakar.h>

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "format.h"
#include "json.h"
#include "report.h"

namespace plakar::cli {

namespace {

extern "C" int check_progress(const char *, uint64_t, uint64_t, void *)
{
	return InterruptGuard::interrupted() ? 1 : 0;
}

struct ReportHolder {
	plakar_check_report *r = nullptr;
	~ReportHolder() { plakar_check_report_free(r); }
};

const char *problem_kind(int code)
{
	switch (code) {
	case PLAKAR_ENOTFOUND: return "missing";
	case PLAKAR_ECORRUPT: return "corrupt";
	case PLAKAR_EVERSION: return "version";
	default: return "error";
	}
}

} // namespace

int cmd_check(Session &session)
{
	FlagSet flags("check");
	bool fast = false, read_data = false, refcounts = false, json = false;
	flags.add_bool("fast", &fast);
	flags.add_bool("read-data", &read_data);
	flags.add_bool("refcounts", &refcounts);
	flags.add_bool("json", &json);
	const auto &args = session.options().args;
	std::size_t pos = flags.parse(args, 0);
	std::vector<const char *> snaps;
	for (std::size_t i = pos; i < args.size(); ++i) {
		if (args[i].empty())
			throw UsageError("empty SNAPSHOT");
		snaps.push_back(args[i].c_str());
	}
	if (fast && snaps.empty())
		throw UsageError("-fast checks the snapshots named");
	if ((read_data || refcounts) && !snaps.empty())
		throw UsageError("-read-data and -refcounts apply to the whole-repository check (no SNAPSHOT)");

	plakar_check_options o = PLAKAR_CHECK_OPTIONS_INIT;
	o.flags = (fast ? PLAKAR_CHECK_FAST : 0) | (read_data ? PLAKAR_CHECK_READ_DATA : 0) |
	          (refcounts ? PLAKAR_CHECK_REFCOUNTS : 0);
	o.snapshots = snaps.empty() ? nullptr : snaps.data();
	o.nsnapshots = snaps.size();
	o.progress = check_progress;
	InterruptGuard guard;
	ReportHolder report;
	int rc = plakar_repository_check(&report.r, session.repository(), &o);
	if (rc != PLAKAR_OK && report.r == nullptr)
		throw_library_error(rc);

	plakar_check_stats st{};
	st.version = PLAKAR_CHECK_STATS_VERSION;
	if (int src = plakar_check_report_stats(&st, report.r); src != PLAKAR_OK)
		throw_library_error(src);
	size_t n = plakar_check_report_problem_count(report.r);
	for (size_t i = 0; i < n; i++) {
		int code = 0;
		const char *object = nullptr, *message = nullptr;
		if (plakar_check_report_problem(&code, &object, &message, report.r, i) != PLAKAR_OK)
			continue;
		if (json)
			std::printf("%s\n", JsonObject()
			                        .str("problem", problem_kind(code))
			                        .str("object", object)
			                        .str("message", message)
			                        .done()
			                        .c_str());
		else
			report_item("check", object, message);
	}
	size_t nref = plakar_check_report_refcount_count(report.r);
	for (size_t i = 0; i < nref; i++) {
		char id[65];
		uint32_t count = 0;
		if (plakar_check_report_refcount(id, &count, report.r, i) != PLAKAR_OK)
			continue;
		if (json)
			std::printf("%s\n", JsonObject().str("blob", id).unum("snapshots", count).done().c_str());
		else
			std::printf("%s %" PRIu32 "\n", id, count);
	}
	if (json) {
		JsonObject s;
		s.boolean("ok", n == 0).unum("problems", n).unum("snapshots", st.snapshots).unum("entries", st.entries);
		s.unum("blobs", st.blobs).unum("bytes", st.bytes).unum("packs", st.packs);
		s.unum("unreferenced_blobs", st.unreferenced_blobs).unum("unreferenced_bytes", st.unreferenced_bytes);
		s.unum("unindexed_packs", st.unindexed_packs);
		std::printf("%s\n", s.done().c_str());
	} else {
		std::string what = snaps.empty() ? "repository" : (fast ? "snapshots (fast)" : "snapshots");
		std::printf("check %s: %" PRIu64 " snapshot(s), %" PRIu64 " entries, %" PRIu64 " blobs, %s verified",
		            what.c_str(), st.snapshots, st.entries, st.blobs, humanize_bytes(st.bytes).c_str());
		if (snaps.empty())
			std::printf(", %" PRIu64 " packs", st.packs);
		std::printf("\n");
		if (st.unreferenced_blobs || st.unindexed_packs)
			std::printf("reclaimable: %" PRIu64 " unreferenced blob(s), %s, %" PRIu64
			            " unindexed pack(s) (plakar gc)\n",
			            st.unreferenced_blobs, humanize_bytes(st.unreferenced_bytes).c_str(), st.unindexed_packs);
		std::printf("%s\n", n ? (std::to_string(n) + " problem(s) found").c_str() : "no problem found");
	}
	session.finish_output();
	if (n)
		return kExitFailure;
	return kExitOk;
}

} // namespace plakar::cli
