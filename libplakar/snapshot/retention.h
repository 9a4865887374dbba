// Retention policies: which snapshots `keep` keeps (docs/cli.md, "keep").
//
// Snapshots are grouped by host and paths; each group is judged on its own, newest first. A
// rule "-daily N" keeps the newest snapshot of each of the N most recent days (UTC) that have
// one; hourly, weekly (ISO 8601 weeks), monthly and yearly alike; "-last N" keeps the N newest.
// A snapshot is kept when any rule keeps it, and removed when none does. With no rule at all,
// nothing is removed.
#pragma once

#include <functional>

#include <cstdint>
#include <string>
#include <vector>

#include "snapshot/snapshot.h"

namespace plakar {

class Repository;

struct RetentionPolicy {
	int last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;
	bool empty() const { return !(last || hourly || daily || weekly || monthly || yearly); }
};

struct RetentionDecision {
	std::string id;
	std::string group;                // "host:/path,/path"
	int64_t time_ns = 0;
	bool keep = false;
	std::vector<std::string> reasons; // "last", "daily 2026-11-25", ...
};

// The decision for every snapshot, groups in name order, newest first within a group.
std::vector<RetentionDecision> plan_retention(const std::vector<SnapshotHeader> &snapshots, const RetentionPolicy &p);

// Removes the snapshots the plan does not keep, several at a time. Returns how many went.
size_t apply_retention(Repository &repo, const std::vector<RetentionDecision> &plan);

// The whole of `keep`: plans over every snapshot, lets decide (may be empty) hear each
// decision (returning false cancels: Code::Canceled, nothing removed), then, unless dry_run,
// applies the plan. Returns how many snapshots went. Code::Invalid for an empty policy.
size_t keep_snapshots(Repository &repo, const RetentionPolicy &p, bool dry_run,
                      const std::function<bool(const RetentionDecision &)> &decide);

} // namespace plakar
