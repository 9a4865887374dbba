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

namespace {

// One gc run, one method per step of docs/format.md's algorithm ("Two-phase deletion").
class Collector {
public:
	Collector(Repository &repo, const GcOptions &o) : repo_(repo), o_(o), live_(repo) { rep_.dry_run = o.dry_run; }

	GcReport run()
	{
		if (!o_.dry_run) {
			lock_ = RepoLock::acquire(repo_, LockType::Exclusive);
			mine_ = lock_->name();
		}
		walk_snapshots();
		take_inventory();
		condemn();
		if (o_.dry_run)
			return dry_run_report();
		repack();
		rewrite_index();
		list_witnesses();
		decide();
		sweep();
		tidy_locks();
		count_after();
		return rep_;
	}

private:
	void progress(const std::string &stage, uint64_t done, uint64_t total)
	{
		if (o_.progress && !o_.progress(stage, done, total))
			fail(Code::Canceled, "gc canceled");
	}

	// 1. Everything any snapshot references. A snapshot that cannot be read stops gc: with an
	//    incomplete live set it would delete what that snapshot needs.
	void walk_snapshots()
	{
		plans_ = read_gc_plans(repo_);
		snaps0_ = repo_.list_snapshots();
		std::sort(snaps0_.begin(), snaps0_.end());
		size_t gone = 0;
		for (size_t i = 0; i < snaps0_.size(); i++) {
			progress("walking snapshots", i, snaps0_.size());
			try {
				live_.add(load_snapshot(repo_, snaps0_[i]));
			} catch (const Error &e) {
				if (e.code() == Code::Canceled)
					throw;
				// Removed by `rm -no-gc` since the listing: what it referenced is garbage now.
				if (e.is_not_found() && !listed(repo_, snaps0_[i])) {
					gone++;
					continue;
				}
				fail(e.code(), "gc stopped, nothing deleted: snapshot " + snaps0_[i] + " cannot be read (" +
				                   e.what() + "); run plakar check");
			}
		}
		rep_.snapshots = snaps0_.size() - gone;
	}

	// 2. The index afresh, and the packs in the store.
	void take_inventory()
	{
		repo_.reload_index();
		rep_.segments_before = repo_.store().list(Kind::Index).size();
		repo_.for_each_indexed([&](const Id &pack, const BlobRecord &rec) { indexed_[pack].recs.push_back(rec); });
		for (const auto &name : repo_.store().list(Kind::Pack)) {
			try {
				Id id = Id::from_hex(name);
				stored_[id] = repo_.store().size(Kind::Pack, name);
			} catch (const Error &e) {
				if (!e.is_not_found() && e.code() != Code::Invalid)
					throw;
			}
		}
		rep_.packs_before = stored_.size();
		for (const auto &[id, size] : stored_)
			rep_.bytes_before += size;
		for (const auto &p : plans_)
			pending_.insert(p.packs.begin(), p.packs.end());
		count_live_copies(indexed_, stored_, pending_, live_);
	}

	// 3. Condemn: unreferenced and unindexed packs; repack mostly dead ones.
	void condemn()
	{
		for (const auto &[pack, size] : stored_) {
			if (pending_.count(pack))
				continue;
			auto it = indexed_.find(pack);
			if (it == indexed_.end() || it->second.live == 0)
				condemned_.insert(pack);
			else if (o_.repack_below > 0 && double(it->second.live_bytes) < o_.repack_below * double(size) &&
			         it->second.live < it->second.recs.size())
				repack_.insert(pack);
		}
		// Small packs (each push ends with its last, partial packs) are merged once there are
		// kSmallPacksToMerge of them: their live blobs are copied into full packs. The pack
		// count stays proportional to the data, not to the number of pushes.
		if (o_.repack_below > 0) {
			const uint64_t small_below = repo_.config().pack_size / 4;
			std::vector<Id> small;
			for (const auto &[pack, size] : stored_)
				if (size < small_below && !pending_.count(pack) && !condemned_.count(pack) && !repack_.count(pack))
					small.push_back(pack);
			if (small.size() >= kSmallPacksToMerge) {
				repack_.insert(small.begin(), small.end());
				rep_.packs_merged = small.size();
			}
		}
		for (const auto &[pack, u] : indexed_)
			if (!stored_.count(pack))
				missing_.insert(pack); // indexed, but not in the store: their entries are dropped
	}

	GcReport dry_run_report()
	{
		for (const auto &p : condemned_) {
			rep_.packs_deleted++;
			rep_.bytes_freed += stored_[p];
		}
		for (const auto &p : repack_) {
			rep_.packs_repacked++;
			const auto &u = indexed_[p];
			for (size_t i = 0; i < u.recs.size(); i++)
				if (u.claimed[i]) {
					rep_.blobs_repacked++;
					rep_.bytes_repacked += u.recs[i].length;
				}
		}
		rep_.live_blobs = live_.size();
		rep_.packs_after = rep_.packs_before - rep_.packs_deleted;
		rep_.bytes_after = rep_.bytes_before - rep_.bytes_freed;
		rep_.segments_after = rep_.segments_before;
		return rep_;
	}

	// 3, continued: the live blobs of the packs to repack are copied, then those packs condemned.
	void repack()
	{
		size_t done = 0;
		for (const auto &pack : repack_) {
			progress("repacking", done++, repack_.size());
			const auto &u = indexed_[pack];
			for (size_t i = 0; i < u.recs.size(); i++) {
				if (!u.claimed[i])
					continue; // dead, or live in the pack that claimed it
				const auto &r = u.recs[i];
				repo_.copy_blob(r.type, r.id, repo_.get_blob(r.id, r.type, true));
				rep_.blobs_repacked++;
				rep_.bytes_repacked += r.length;
			}
			rep_.packs_repacked++;
			condemned_.insert(pack);
		}
		repo_.flush(); // the copies, and a segment naming them, before anything leaves the index
	}

	// 4. The index without the condemned packs: from now on no push that loads it can reuse
	//    their blobs. Segments written by pushes meanwhile are kept as they are. Only the
	//    segments naming such a pack are rewritten; then small segments are merged (the tiers a
	//    push keeps, also for the pushes of append-only clients, which merge nothing). What
	//    this supersedes is deleted like a pack: once no process that may have listed it
	//    before its successor existed is left.
	void rewrite_index()
	{
		std::vector<std::string> segs = repo_.reload_index();
		repo_.rewrite_index(
		    [&](const Id &p) { return !condemned_.count(p) && !pending_.count(p) && !missing_.count(p); }, segs);
		repo_.compact_index();
		std::set<std::string> planned;
		for (const auto &p : plans_)
			planned.insert(p.segments.begin(), p.segments.end());
		for (const auto &n : repo_.superseded_segments())
			if (!planned.count(n))
				superseded_.insert(n);
	}

	// 5. The witnesses: pushes and readers running now. A push that ran earlier and has ended
	//    committed its snapshot, which the walk below sees; a reader that starts later finds
	//    only snapshots walked below, or committed by pushes that loaded the rewritten index.
	void list_witnesses()
	{
		locks_ = list_locks(repo_, &watch_);
		for (const auto &l : locks_) {
			if (l.name == mine_ || l.stale)
				continue;
			live_locks_.insert(l.name);
			if (l.type == LockType::Shared || l.type == LockType::Reader) {
				witnesses_.push_back(l.name);
				(l.type == LockType::Shared ? rep_.pushes_running : rep_.readers_running)++;
			}
		}
		for (const auto &n : repo_.list_snapshots())
			if (!std::binary_search(snaps0_.begin(), snaps0_.end(), n)) {
				try {
					live_.add(load_snapshot(repo_, n));
				} catch (const Error &e) {
					if (e.is_not_found())
						continue; // removed meanwhile
					throw;
				}
			}
		rep_.live_blobs = live_.size();
	}

	// 6. What may go now: this run's condemned packs and superseded segments when no push or
	//    reader is running, and those of earlier plans whose witnesses have all ended. A
	//    candidate some snapshot references after all, or that a segment written since names,
	//    is kept (and indexed again when it is not).
	void decide()
	{
		for (const auto &p : plans_) {
			bool waiting = std::any_of(p.witnesses.begin(), p.witnesses.end(),
			                           [&](const std::string &w) { return live_locks_.count(w) != 0; });
			(waiting ? kept_plans_ : settled_).push_back(p);
			if (!waiting) {
				candidates_.insert(p.packs.begin(), p.packs.end());
				segment_candidates_.insert(p.segments.begin(), p.segments.end());
			}
		}
		if (witnesses_.empty()) {
			candidates_.insert(condemned_.begin(), condemned_.end());
			segment_candidates_.insert(superseded_.begin(), superseded_.end());
		}
		repo_.reload_index();
		std::set<Id> named;
		repo_.for_each_indexed([&](const Id &pack, const BlobRecord &) { named.insert(pack); });
		for (const auto &pack : candidates_) {
			if (named.count(pack)) {
				keep_.insert(pack);
				continue;
			}
			std::vector<BlobRecord> recs;
			auto it = indexed_.find(pack);
			if (it != indexed_.end()) {
				recs = it->second.recs;
			} else {
				try {
					recs = repo_.pack_toc(pack, repo_.store().size(Kind::Pack, pack.hex()));
				} catch (const Error &e) {
					if (!e.is_not_found() && e.code() != Code::Corrupt)
						throw;
					// Gone already, or unreadable (then it cannot serve anything either).
				}
			}
			// Needed when it holds a live blob the index has nowhere else (a repacked pack's
			// blobs have their copies).
			if (std::any_of(recs.begin(), recs.end(),
			                [&](const BlobRecord &r) { return live_.has(r.id) && !repo_.is_indexed(r.id); })) {
				repo_.index_pack(pack, recs);
				keep_.insert(pack);
			}
		}
		rep_.packs_resurrected = keep_.size();
		repo_.flush();
	}

	// 7. Sweep, or record what waits. A segment goes only while a live one supersedes it (as
	//    loaded just now): a plan never makes gc delete a segment the index still needs.
	void sweep()
	{
		auto now = repo_.superseded_segments();
		std::set<std::string> still(now.begin(), now.end());
		for (const auto &n : segment_candidates_)
			if (still.count(n)) {
				repo_.store().remove(Kind::Index, n);
				rep_.segments_deleted++;
			}
		for (const auto &pack : candidates_) {
			if (keep_.count(pack))
				continue;
			auto s = stored_.find(pack);
			repo_.store().remove(Kind::Pack, pack.hex());
			rep_.packs_deleted++;
			if (s != stored_.end())
				rep_.bytes_freed += s->second;
		}
		if (!witnesses_.empty() && (!condemned_.empty() || !superseded_.empty())) {
			Plan p;
			p.name = hex_encode(crypto::random_bytes(16));
			p.time_ns = wall_clock_ns();
			p.witnesses = witnesses_;
			p.packs.assign(condemned_.begin(), condemned_.end());
			p.segments.assign(superseded_.begin(), superseded_.end());
			repo_.put_sealed(Kind::Lock, ObjectKind::GcPlan, p.name, encode_gc_plan(p));
			rep_.packs_pending += p.packs.size();
			rep_.segments_pending += p.segments.size();
		}
		for (const auto &p : settled_)
			repo_.store().remove(Kind::Lock, p.name);
		for (const auto &p : kept_plans_) {
			rep_.packs_pending += p.packs.size();
			rep_.segments_pending += p.segments.size();
		}
	}

	// 8. The lock watch, temporary files of killed writers, stale locks.
	void tidy_locks()
	{
		// What this host saw of the locks, for the next gc here to judge them by (observed
		// refreshes, not another host's clock): the live locks of others (stale ones go below,
		// this gc's own at its end).
		LockWatch watching;
		for (const auto &l : locks_)
			if (l.name != mine_ && !l.stale && watch_.seen.count(l.name))
				watching.seen[l.name] = watch_.seen[l.name];
		save_lock_watch(repo_, watching);
		rep_.temp_files_removed = repo_.store().remove_stale_temporaries(kTempFileAge);
		for (const auto &l : locks_)
			if (l.name != mine_ && l.stale) {
				repo_.store().remove(Kind::Lock, l.name);
				rep_.stale_locks_removed++;
			}
	}

	void count_after()
	{
		rep_.segments_after = repo_.store().list(Kind::Index).size();
		for (const auto &name : repo_.store().list(Kind::Pack)) {
			rep_.packs_after++;
			try {
				rep_.bytes_after += repo_.store().size(Kind::Pack, name);
			} catch (const Error &e) {
				if (!e.is_not_found())
					throw;
			}
		}
	}

	Repository &repo_;
	const GcOptions &o_;
	GcReport rep_;
	std::unique_ptr<RepoLock> lock_;
	std::string mine_;
	std::vector<Plan> plans_, settled_, kept_plans_;
	std::vector<std::string> snaps0_;
	LiveSet live_;
	std::map<Id, PackUse> indexed_;
	std::map<Id, uint64_t> stored_;
	std::set<Id> pending_, condemned_, repack_, missing_, candidates_, keep_;
	std::set<std::string> superseded_, segment_candidates_, live_locks_;
	std::vector<std::string> witnesses_;
	std::vector<LockInfo> locks_;
	LockWatch watch_;
};

} // namespace

GcReport collect_garbage(Repository &repo, const GcOptions &o) { return Collector(repo, o).run(); }

} // namespace plakar
