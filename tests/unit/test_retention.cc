// Retention policies: which snapshots each rule keeps, per group, and removal on a real repository.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include "base/error.h"
#include "helpers.h"
#include "repository/repository.h"
#include "snapshot/builder.h"
#include "snapshot/retention.h"
#include "snapshot/snapshot.h"

using namespace plakar;

namespace {

constexpr int64_t kHour = 3600LL * 1000000000LL;
constexpr int64_t kDay = 24 * kHour;
// 2026-11-25T12:00:00Z, a Wednesday.
constexpr int64_t kNow = 1795608000LL * 1000000000LL;

SnapshotHeader snap(int64_t t, const std::string &host = "h", const std::string &path = "/data")
{
	SnapshotHeader h;
	h.id = new_snapshot_id();
	h.time_ns = t;
	h.hostname = host;
	h.paths = {path};
	return h;
}

std::set<int64_t> kept_times(const std::vector<RetentionDecision> &plan)
{
	std::set<int64_t> out;
	for (const auto &d : plan)
		if (d.keep)
			out.insert(d.time_ns);
	return out;
}

} // namespace

TEST_CASE("retention: -last keeps the newest of each group", "[retention]")
{
	std::vector<SnapshotHeader> v;
	for (int i = 0; i < 5; i++)
		v.push_back(snap(kNow - i * kHour));
	RetentionPolicy p;
	p.last = 2;
	auto plan = plan_retention(v, p);
	CHECK(plan.size() == 5);
	CHECK(kept_times(plan) == std::set<int64_t>{kNow, kNow - kHour});
	CHECK(plan[0].reasons == std::vector<std::string>{"last"});
	CHECK(plan[0].group == "h:/data");
	// Another host, or other paths, is another group, judged on its own.
	v.push_back(snap(kNow - 10 * kDay, "other"));
	v.push_back(snap(kNow - 11 * kDay, "h", "/elsewhere"));
	CHECK(kept_times(plan_retention(v, p)).size() == 4);
}

TEST_CASE("retention: calendar rules keep the newest of each period", "[retention]")
{
	std::vector<SnapshotHeader> v;
	// Two a day for ten days, at 01:00 and 12:00 UTC.
	for (int d = 0; d < 10; d++) {
		v.push_back(snap(kNow - d * kDay));
		v.push_back(snap(kNow - d * kDay - 11 * kHour));
	}
	RetentionPolicy daily;
	daily.daily = 3;
	CHECK(kept_times(plan_retention(v, daily)) == std::set<int64_t>{kNow, kNow - kDay, kNow - 2 * kDay});
	RetentionPolicy weekly;
	weekly.weekly = 2;
	// This ISO week (Mon 23 .. Wed 25) and the one before: the newest of each.
	CHECK(kept_times(plan_retention(v, weekly)) == std::set<int64_t>{kNow, kNow - 3 * kDay});
	RetentionPolicy monthly;
	monthly.monthly = 5;
	CHECK(kept_times(plan_retention(v, monthly)) == std::set<int64_t>{kNow}); // all in November
	RetentionPolicy mixed;
	mixed.last = 1;
	mixed.daily = 2;
	mixed.yearly = 1;
	auto plan = plan_retention(v, mixed);
	CHECK(kept_times(plan) == std::set<int64_t>{kNow, kNow - kDay});
	CHECK(plan[0].reasons == std::vector<std::string>{"last", "daily 2026-11-25", "yearly 2026"});
	RetentionPolicy hourly;
	hourly.hourly = 100;
	CHECK(kept_times(plan_retention(v, hourly)).size() == 20);
}

TEST_CASE("retention: no rule keeps everything, a negative count is refused", "[retention]")
{
	std::vector<SnapshotHeader> v{snap(kNow), snap(kNow - kDay)};
	CHECK(kept_times(plan_retention(v, RetentionPolicy{})).size() == 2);
	RetentionPolicy bad;
	bad.daily = -1;
	CHECK(test::code_of([&] { plan_retention(v, bad); }) == Code::Invalid);
}

TEST_CASE("retention: applied to a repository, several removals at once", "[retention]")
{
	test::TempDir d;
	std::filesystem::create_directories(d / "src");
	CreateOptions co;
	co.passphrase = "pw";
	co.kdf.log2_n = 10;
	auto r = Repository::create(d / "repo", co);
	std::vector<std::string> ids;
	for (int i = 0; i < 12; i++) {
		test::write_file(d / "src/f", test::random_data(1000, uint64_t(i)));
		ids.push_back(push(*r, {d / "src"}, {}).id_string());
	}
	RetentionPolicy p;
	p.last = 3;
	auto plan = plan_retention(list_snapshots(*r), p);
	CHECK(apply_retention(*r, plan) == 9);
	auto left = list_snapshots(*r);
	REQUIRE(left.size() == 3);
	std::set<std::string> got;
	for (const auto &h : left)
		got.insert(h.id_string());
	CHECK(got == std::set<std::string>{ids[9], ids[10], ids[11]});
}
