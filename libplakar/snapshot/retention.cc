#include "snapshot/retention.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

#include "base/error.h"
#include "repository/repository.h"
#include "snapshot/gc.h"

namespace plakar {

namespace {

std::string bucket(int64_t time_ns, char unit)
{
	time_t t = time_t(time_ns / 1000000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char buf[32];
	switch (unit) {
	case 'h': std::strftime(buf, sizeof buf, "%Y-%m-%dT%H", &tm); break;
	case 'd': std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm); break;
	case 'w': std::strftime(buf, sizeof buf, "%G-W%V", &tm); break;
	case 'm': std::strftime(buf, sizeof buf, "%Y-%m", &tm); break;
	default: std::strftime(buf, sizeof buf, "%Y", &tm); break;
	}
	return buf;
}

std::string group_of(const SnapshotHeader &h)
{
	std::vector<std::string> paths = h.paths;
	std::sort(paths.begin(), paths.end());
	std::string g = h.hostname + ":";
	for (size_t i = 0; i < paths.size(); i++)
		g += (i ? "," : "") + paths[i];
	return g;
}

} // namespace

std::vector<RetentionDecision> plan_retention(const std::vector<SnapshotHeader> &snapshots, const RetentionPolicy &p)
{
	if (p.last < 0 || p.hourly < 0 || p.daily < 0 || p.weekly < 0 || p.monthly < 0 || p.yearly < 0)
		fail(Code::Invalid, "retention counts must not be negative");
	std::map<std::string, std::vector<const SnapshotHeader *>> groups;
	for (const auto &h : snapshots)
		groups[group_of(h)].push_back(&h);
	std::vector<RetentionDecision> out;
	for (auto &[g, list] : groups) {
		// Newest first; ties broken by id so the plan is the same at every run.
		std::sort(list.begin(), list.end(), [](const SnapshotHeader *a, const SnapshotHeader *b) {
			return a->time_ns != b->time_ns ? a->time_ns > b->time_ns : a->id_string() > b->id_string();
		});
		struct Rule {
			const char *name;
			char unit;
			int count;
			std::set<std::string> seen;
		};
		Rule rules[] = {{"hourly", 'h', p.hourly, {}},
		                {"daily", 'd', p.daily, {}},
		                {"weekly", 'w', p.weekly, {}},
		                {"monthly", 'm', p.monthly, {}},
		                {"yearly", 'y', p.yearly, {}}};
		int lasts = 0;
		for (const SnapshotHeader *h : list) {
			RetentionDecision d;
			d.id = h->id_string();
			d.group = g;
			d.time_ns = h->time_ns;
			if (p.empty()) {
				d.keep = true;
				d.reasons.push_back("no policy");
			}
			if (lasts < p.last) {
				lasts++;
				d.keep = true;
				d.reasons.push_back("last");
			}
			for (auto &r : rules) {
				if (r.count == 0)
					continue;
				std::string b = bucket(h->time_ns, r.unit);
				// The newest snapshot of a bucket counts, while fewer than count buckets are.
				if (!r.seen.count(b) && int(r.seen.size()) < r.count) {
					r.seen.insert(b);
					d.keep = true;
					d.reasons.push_back(std::string(r.name) + " " + b);
				}
			}
			out.push_back(std::move(d));
		}
	}
	return out;
}

size_t apply_retention(Repository &repo, const std::vector<RetentionDecision> &plan)
{
	std::vector<std::string> doomed;
	for (const auto &d : plan)
		if (!d.keep)
			doomed.push_back(d.id);
	return remove_concurrently(repo, doomed);
}

size_t keep_snapshots(Repository &repo, const RetentionPolicy &p, bool dry_run,
                      const std::function<bool(const RetentionDecision &)> &decide)
{
	if (p.empty())
		fail(Code::Invalid, "no retention rule: give at least one count");
	auto plan = plan_retention(list_snapshots(repo), p);
	if (decide)
		for (const auto &d : plan)
			if (!decide(d))
				fail(Code::Canceled, "keep canceled, nothing removed");
	return dry_run ? 0 : apply_retention(repo, plan);
}

} // namespace plakar
