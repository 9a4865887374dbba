#include "snapshot/gc.h"

#include "snapshot/codec.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <map>
#include <set>
#include <unordered_set>

#include "base/error.h"
#include "base/system.h"
#include "base/pool.h"
#include "crypto/crypto.h"
#include "repository/lock.h"
#include "repository/repository.h"
#include "snapshot/snapshot.h"

namespace plakar {

namespace {

int64_t now_ns() { return wall_clock_ns(); }

using Plan = GcPlan;

} // namespace

std::vector<GcPlan> read_gc_plans(Repository &repo)
{
	std::vector<Plan> out;
	for (const auto &name : repo.store().list(Kind::Lock)) {
		Bytes raw;
		try {
			raw = repo.store().get(Kind::Lock, name);
		} catch (const Error &e) {
			if (e.is_not_found())
				continue;
			throw;
		}
		if (sealed_kind(raw) != uint8_t(ObjectKind::GcPlan))
			continue;
		// A plan that does not open is refused loudly: deleting on a forged one would lose data.
		out.push_back(decode_gc_plan(name, repo.open_sealed(ObjectKind::GcPlan, name, raw)));
	}
	return out;
}

namespace {

// The blobs the snapshots reference: directory nodes, chunk lists and chunks. A directory
// shared by several snapshots is walked once.
class LiveSet {
public:
	explicit LiveSet(Repository &repo) : repo_(repo) {}
	void add(const SnapshotHeader &h)
	{
		if (!h.root.has_tree)
			return;
		std::vector<Id> todo{h.root.tree};
		while (!todo.empty()) {
			Id tree = todo.back();
			todo.pop_back();
			if (!dirs_.insert(tree).second)
				continue;
			DirIterator it(repo_, tree);
			it.on_node = [&](const Id &node) { blobs_.insert(node); };
			Entry e;
			while (it.next(e)) {
				if (e.type == EntryType::Directory && e.has_tree) {
					todo.push_back(e.tree);
				} else if (e.type == EntryType::File && e.error.empty()) {
					if (e.has_list)
						blobs_.insert(e.list);
					for (const auto &c : file_chunks(repo_, e))
						blobs_.insert(c.id);
				}
			}
		}
	}
	bool has(const Id &id) const { return blobs_.count(id) != 0; }
	size_t size() const { return blobs_.size(); }

private:
	Repository &repo_;
	std::unordered_set<Id, IdHash> blobs_;
	std::unordered_set<Id, IdHash> dirs_;
};

struct PackUse {
	std::vector<BlobRecord> recs; // as indexed
	std::vector<char> claimed;    // per rec: this copy is the one that counts as live
	uint64_t live = 0, live_bytes = 0;
};

// Which copy of each live blob counts as live. Concurrent pushes of the same data each store
// it (they cannot see each other's packs until they index them), and the index keeps every
// copy: counting them all would keep every duplicate pack forever. The packs holding the most
// live bytes claim their live blobs first; a copy claimed already elsewhere is dead in this
// pack. Only packs that exist and are not condemned already claim. Fills live/live_bytes.
void count_live_copies(std::map<Id, PackUse> &indexed, const std::map<Id, uint64_t> &stored,
                       const std::set<Id> &pending, const LiveSet &live)
{
	std::vector<std::pair<uint64_t, Id>> order; // live bytes counting every copy, pack
	for (auto &[pack, u] : indexed) {
		if (!stored.count(pack) || pending.count(pack))
			continue;
		uint64_t bytes = 0;
		for (const auto &r : u.recs)
			if (live.has(r.id))
				bytes += r.length;
		order.emplace_back(bytes, pack);
	}
	std::sort(order.begin(), order.end(), [](const auto &a, const auto &b) {
		return a.first != b.first ? a.first > b.first : a.second < b.second;
	});
	std::unordered_set<Id, IdHash> claimed;
	for (const auto &[bytes, pack] : order) {
		auto &u = indexed[pack];
		u.claimed.assign(u.recs.size(), 0);
		for (size_t i = 0; i < u.recs.size(); i++)
			if (live.has(u.recs[i].id) && claimed.insert(u.recs[i].id).second) {
				u.claimed[i] = 1;
				u.live++;
				u.live_bytes += u.recs[i].length;
			}
	}
}

} // namespace

std::vector<std::string> remove_snapshots(Repository &repo, const std::vector<std::string> &ids)
{
	std::vector<std::string> names;
	for (const auto &s : ids)
		names.push_back(resolve_snapshot(repo, s)); // all resolved before any is removed
	std::sort(names.begin(), names.end());
	names.erase(std::unique(names.begin(), names.end()), names.end());
	remove_concurrently(repo, names);
	return names;
}

size_t remove_concurrently(Repository &repo, const std::vector<std::string> &names)
{
	// Each removal is one delete in the store; remote stores answer several requests in
	// flight faster than one after the other. As many at once as the CPU budget allows.
	std::atomic<size_t> removed{0};
	std::mutex mu;
	std::exception_ptr first_error;
	{
		WorkPool pool(repo.cpu(), names.size() + 1);
		for (const auto &name : names)
			pool.submit([&repo, &removed, &mu, &first_error, &name] {
				try {
					repo.remove_snapshot(name);
					removed++;
				} catch (...) {
					std::lock_guard lk(mu);
					if (!first_error)
						first_error = std::current_exception();
				}
			});
		pool.wait();
	}
	if (first_error)
		std::rethrow_exception(first_error);
	return removed;
}

// Whether the store still lists a snapshot (a fresh listing, not a cached one).
static bool listed(Repository &repo, const std::string &name)
{
	auto names = repo.list_snapshots();
	return std::find(names.begin(), names.end(), name) != names.end();
}

GcReport collect_garbage(Repository &repo, const GcOptions &o)
{
	GcReport rep;
	rep.dry_run = o.dry_run;
	auto progress = [&](const std::string &stage, uint64_t done, uint64_t total) {
		if (o.progress && !o.progress(stage, done, total))
			fail(Code::Canceled, "gc canceled");
	};
	std::unique_ptr<RepoLock> lock;
	if (!o.dry_run)
		lock = RepoLock::acquire(repo, LockType::Exclusive);
	const std::string mine = lock ? lock->name() : "";

	// 1. Everything any snapshot references. A snapshot that cannot be read stops gc: with an
	//    incomplete live set it would delete what that snapshot needs.
	std::vector<Plan> plans = read_gc_plans(repo);
	std::vector<std::string> snaps0 = repo.list_snapshots();
	std::sort(snaps0.begin(), snaps0.end());
	LiveSet live(repo);
	size_t gone = 0;
	for (size_t i = 0; i < snaps0.size(); i++) {
		progress("walking snapshots", i, snaps0.size());
		try {
			live.add(load_snapshot(repo, snaps0[i]));
		} catch (const Error &e) {
			if (e.code() == Code::Canceled)
				throw;
			// Removed by `rm -no-gc` since the listing: what it referenced is garbage now.
			if (e.is_not_found() && !listed(repo, snaps0[i])) {
				gone++;
				continue;
			}
			fail(e.code(), "gc stopped, nothing deleted: snapshot " + snaps0[i] + " cannot be read (" + e.what() +
			                   "); run plakar check");
		}
	}
	rep.snapshots = snaps0.size() - gone;

	// 2. The index afresh, and the packs in the store.
	repo.reload_index();
	rep.segments_before = repo.store().list(Kind::Index).size();
	std::map<Id, PackUse> indexed;
	repo.for_each_indexed([&](const Id &pack, const BlobRecord &rec) { indexed[pack].recs.push_back(rec); });
	std::map<Id, uint64_t> stored;
	for (const auto &name : repo.store().list(Kind::Pack)) {
		Id id;
		try {
			id = Id::from_hex(name);
			stored[id] = repo.store().size(Kind::Pack, name);
		} catch (const Error &e) {
			if (!e.is_not_found() && e.code() != Code::Invalid)
				throw;
		}
	}
	rep.packs_before = stored.size();
	for (const auto &[id, size] : stored)
		rep.bytes_before += size;
	std::set<Id> pending; // condemned by earlier runs
	for (const auto &p : plans)
		pending.insert(p.packs.begin(), p.packs.end());
	count_live_copies(indexed, stored, pending, live);

	// 3. Condemn: unreferenced and unindexed packs; repack mostly dead ones.
	std::set<Id> condemned, repack;
	for (const auto &[pack, size] : stored) {
		if (pending.count(pack))
			continue;
		auto it = indexed.find(pack);
		if (it == indexed.end() || it->second.live == 0)
			condemned.insert(pack);
		else if (o.repack_below > 0 && double(it->second.live_bytes) < o.repack_below * double(size) &&
		         it->second.live < it->second.recs.size())
			repack.insert(pack);
	}
	// Small packs (each push ends with its last, partial packs) are merged once there are
	// kSmallPacksToMerge of them: their live blobs are copied into full packs. The pack count
	// stays proportional to the data, not to the number of pushes.
	if (o.repack_below > 0) {
		const uint64_t small_below = repo.config().pack_size / 4;
		std::vector<Id> small;
		for (const auto &[pack, size] : stored)
			if (size < small_below && !pending.count(pack) && !condemned.count(pack) && !repack.count(pack))
				small.push_back(pack);
		if (small.size() >= kSmallPacksToMerge) {
			repack.insert(small.begin(), small.end());
			rep.packs_merged = small.size();
		}
	}
	std::set<Id> missing; // indexed, but not in the store: their entries are dropped
	for (const auto &[pack, u] : indexed)
		if (!stored.count(pack))
			missing.insert(pack);
	if (o.dry_run) {
		for (const auto &p : condemned) {
			rep.packs_deleted++;
			rep.bytes_freed += stored[p];
		}
		for (const auto &p : repack) {
			rep.packs_repacked++;
			const auto &u = indexed[p];
			for (size_t i = 0; i < u.recs.size(); i++)
				if (u.claimed[i]) {
					rep.blobs_repacked++;
					rep.bytes_repacked += u.recs[i].length;
				}
		}
		rep.live_blobs = live.size();
		rep.packs_after = rep.packs_before - rep.packs_deleted;
		rep.bytes_after = rep.bytes_before - rep.bytes_freed;
		rep.segments_after = rep.segments_before;
		return rep;
	}
	size_t done = 0;
	for (const auto &pack : repack) {
		progress("repacking", done++, repack.size());
		const auto &u = indexed[pack];
		for (size_t i = 0; i < u.recs.size(); i++) {
			if (!u.claimed[i])
				continue; // dead, or live in the pack that claimed it
			const auto &r = u.recs[i];
			repo.copy_blob(r.type, r.id, repo.get_blob(r.id, r.type, true));
			rep.blobs_repacked++;
			rep.bytes_repacked += r.length;
		}
		rep.packs_repacked++;
		condemned.insert(pack);
	}
	repo.flush(); // the copies, and a segment naming them, before anything leaves the index

	// 4. The index without the condemned packs: from now on no push that loads it can reuse
	//    their blobs. Segments written by pushes meanwhile are kept as they are.
	//    Only the segments naming such a pack are rewritten; then small segments are merged
	//    (the tiers a push keeps, also for the pushes of append-only clients, which merge
	//    nothing). What this supersedes is deleted like a pack: once no process that may have
	//    listed it before its successor existed is left.
	std::vector<std::string> segs1 = repo.reload_index();
	repo.rewrite_index([&](const Id &p) { return !condemned.count(p) && !pending.count(p) && !missing.count(p); },
	                   segs1);
	repo.compact_index();
	std::set<std::string> superseded;
	{
		std::set<std::string> planned;
		for (const auto &p : plans)
			planned.insert(p.segments.begin(), p.segments.end());
		for (const auto &n : repo.superseded_segments())
			if (!planned.count(n))
				superseded.insert(n);
	}

	// 5. The witnesses: pushes and readers running now. A push that ran earlier and has ended
	//    committed its snapshot, which the walk below sees; a reader that starts later finds
	//    only snapshots walked below, or committed by pushes that loaded the rewritten index.
	std::vector<std::string> witnesses;
	LockWatch watch;
	std::vector<LockInfo> locks = list_locks(repo, &watch);
	std::set<std::string> live_locks;
	for (const auto &l : locks) {
		if (l.name == mine || l.stale)
			continue;
		live_locks.insert(l.name);
		if (l.type == LockType::Shared || l.type == LockType::Reader) {
			witnesses.push_back(l.name);
			(l.type == LockType::Shared ? rep.pushes_running : rep.readers_running)++;
		}
	}
	std::vector<std::string> snaps1 = repo.list_snapshots();
	for (const auto &n : snaps1)
		if (!std::binary_search(snaps0.begin(), snaps0.end(), n)) {
			try {
				live.add(load_snapshot(repo, n));
			} catch (const Error &e) {
				if (e.is_not_found())
					continue; // removed meanwhile
				throw;
			}
		}
	rep.live_blobs = live.size();

	// 6. What may go now: this run's condemned packs when no push is running, and the packs of
	//    earlier plans whose witnesses have all ended.
	std::set<Id> candidates;
	std::set<std::string> segment_candidates;
	std::vector<Plan> settled, kept_plans;
	for (const auto &p : plans) {
		bool waiting = std::any_of(p.witnesses.begin(), p.witnesses.end(),
		                           [&](const std::string &w) { return live_locks.count(w) != 0; });
		(waiting ? kept_plans : settled).push_back(p);
		if (!waiting) {
			candidates.insert(p.packs.begin(), p.packs.end());
			segment_candidates.insert(p.segments.begin(), p.segments.end());
		}
	}
	if (witnesses.empty()) {
		candidates.insert(condemned.begin(), condemned.end());
		segment_candidates.insert(superseded.begin(), superseded.end());
	}
	// A candidate some snapshot references after all, or that a segment written since names,
	// is kept (and indexed again when it is not).
	repo.reload_index();
	std::set<Id> named;
	repo.for_each_indexed([&](const Id &pack, const BlobRecord &) { named.insert(pack); });
	std::set<Id> keep;
	for (const auto &pack : candidates) {
		if (named.count(pack)) {
			keep.insert(pack);
			continue;
		}
		std::vector<BlobRecord> recs;
		auto it = indexed.find(pack);
		if (it != indexed.end()) {
			recs = it->second.recs;
		} else {
			try {
				recs = repo.pack_toc(pack, repo.store().size(Kind::Pack, pack.hex()));
			} catch (const Error &e) {
				if (!e.is_not_found() && e.code() != Code::Corrupt)
					throw;
				// Gone already, or unreadable (then it cannot serve anything either).
			}
		}
		// Needed when it holds a live blob the index has nowhere else (a repacked pack's
		// blobs have their copies).
		if (std::any_of(recs.begin(), recs.end(),
		                [&](const BlobRecord &r) { return live.has(r.id) && !repo.is_indexed(r.id); })) {
			repo.index_pack(pack, recs);
			keep.insert(pack);
		}
	}
	rep.packs_resurrected = keep.size();
	repo.flush();

	// 7. Sweep, or record what waits. A segment goes only while a live one supersedes it (as
	//    loaded just now): a plan never makes gc delete a segment the index still needs.
	{
		auto now = repo.superseded_segments();
		std::set<std::string> still(now.begin(), now.end());
		for (const auto &n : segment_candidates)
			if (still.count(n)) {
				repo.store().remove(Kind::Index, n);
				rep.segments_deleted++;
			}
	}
	for (const auto &pack : candidates) {
		if (keep.count(pack))
			continue;
		auto s = stored.find(pack);
		repo.store().remove(Kind::Pack, pack.hex());
		rep.packs_deleted++;
		if (s != stored.end())
			rep.bytes_freed += s->second;
	}
	if (!witnesses.empty() && (!condemned.empty() || !superseded.empty())) {
		Plan p;
		p.name = hex_encode(crypto::random_bytes(16));
		p.time_ns = now_ns();
		p.witnesses = witnesses;
		p.packs.assign(condemned.begin(), condemned.end());
		p.segments.assign(superseded.begin(), superseded.end());
		rep.segments_pending += p.segments.size();
		repo.put_sealed(Kind::Lock, ObjectKind::GcPlan, p.name, encode_gc_plan(p));
		rep.packs_pending += p.packs.size();
	}
	for (const auto &p : settled)
		repo.store().remove(Kind::Lock, p.name);
	for (const auto &p : kept_plans) {
		rep.packs_pending += p.packs.size();
		rep.segments_pending += p.segments.size();
	}
	// What this host saw of the locks, for the next gc here to judge them by (observed
	// refreshes, not another host's clock).
	LockWatch watching; // the live locks of others: stale ones go below, this gc's own at its end
	for (const auto &l : locks)
		if (l.name != mine && !l.stale && watch.seen.count(l.name))
			watching.seen[l.name] = watch.seen[l.name];
	save_lock_watch(repo, watching);
	// What killed writers left in the store's staging area.
	rep.temp_files_removed = repo.store().remove_stale_temporaries(kTempFileAge);
	// Stale locks are removed: their holders are gone.
	for (const auto &l : locks)
		if (l.name != mine && l.stale) {
			repo.store().remove(Kind::Lock, l.name);
			rep.stale_locks_removed++;
		}

	rep.segments_after = repo.store().list(Kind::Index).size();
	for (const auto &name : repo.store().list(Kind::Pack)) {
		rep.packs_after++;
		try {
			rep.bytes_after += repo.store().size(Kind::Pack, name);
		} catch (const Error &e) {
			if (!e.is_not_found())
				throw;
		}
	}
	return rep;
}

} // namespace plakar
