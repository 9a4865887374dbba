// Removing snapshots and collecting garbage (docs/format.md, "Locks and garbage collection").
//
// rm deletes snapshot headers only: what they referenced stays until gc.
//
// gc works in two phases so that it never blocks a push and never deletes what a running push
// may still reference:
//  1. condemn: with the exclusive lock, compute the blobs every snapshot references; packs with
//     no live blob, and packs the index does not name, are condemned; packs mostly dead are
//     repacked (their live blobs copied to new packs) and condemned. The index is rewritten
//     without the condemned packs, so a push that loads it from then on cannot reuse them.
//  2. sweep: a condemned pack is deleted only once every push that was running when it was
//     condemned has ended, and after the snapshots committed since were walked too (a pack
//     one of them references is kept and indexed again). With no push running, gc sweeps at
//     once; otherwise the condemnation is recorded (a sealed gc plan, kind Lock) and a later gc
//     sweeps it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace plakar {

class Repository;

// Packs under a quarter of the repository's pack size are small; gc merges them once there are
// this many (docs/format.md).
constexpr size_t kSmallPacksToMerge = 8;

struct GcOptions {
	// Packs whose live blobs fill less than this fraction are repacked (0 disables repacking,
	// small packs' merging too).
	double repack_below = 0.5;
	// Report what would be done, change nothing.
	bool dry_run = false;
	std::function<bool(const std::string &stage, uint64_t done, uint64_t total)> progress;
};

struct GcReport {
	uint64_t snapshots = 0;        // snapshots walked
	uint64_t live_blobs = 0;       // blobs they reference
	uint64_t packs_before = 0, packs_after = 0;
	uint64_t bytes_before = 0, bytes_after = 0; // pack bytes in the store
	uint64_t packs_deleted = 0, bytes_freed = 0;
	uint64_t packs_repacked = 0, blobs_repacked = 0, bytes_repacked = 0; // live bytes copied
	uint64_t packs_merged = 0; // of the repacked: small packs merged into full ones
	uint64_t packs_pending = 0;    // condemned, to be deleted by a later gc (pushes or readers were running)
	uint64_t pushes_running = 0, readers_running = 0; // the live locks that kept this run's packs
	uint64_t packs_resurrected = 0; // condemned earlier, referenced again, kept
	uint64_t segments_before = 0, segments_after = 0; // index segments in the store
	uint64_t segments_deleted = 0; // superseded by a merged segment, deleted
	uint64_t segments_pending = 0; // superseded, to be deleted by a later gc (readers or pushes were running)
	uint64_t stale_locks_removed = 0;
	uint64_t temp_files_removed = 0; // left by killed writers, older than kTempFileAge
	bool dry_run = false;
};

GcReport collect_garbage(Repository &repo, const GcOptions &opts);

struct GcPlan;
// The gc plans in the repository (condemned packs waiting for their witnesses). Throws
// Code::Corrupt when one does not open.
std::vector<GcPlan> read_gc_plans(Repository &repo);

// Deletes snapshot headers (ids or unique prefixes, resolved first: an unknown one fails
// before anything is deleted), several at a time. Returns the ids removed.
std::vector<std::string> remove_snapshots(Repository &repo, const std::vector<std::string> &ids);
// Deletes these snapshot headers (store names), as many at once as the repository's CPU
// budget; the first error is rethrown after every removal was tried. Returns how many went.
size_t remove_concurrently(Repository &repo, const std::vector<std::string> &names);

} // namespace plakar
