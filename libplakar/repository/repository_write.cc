// Repository, the write path: reservations of blob ids, sealing blobs into open packs, retiring
// full packs to the uploader, applying finished uploads to the index, flush.
#include "repository/repository.h"

#include "base/pool.h"
#include "base/system.h"

#include <algorithm>
#include <utility>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "base/error.h"
#include "compression/zstd.h"
#include "agent/agent.h"
#include "repository/repository_parts.h"

namespace plakar {

// Whether a writer may reuse the stored copy of a blob instead of storing it: it is indexed in
// a pack that exists (a writer lists the packs once, in begin_write: a pack lost to damage is
// then not reused, the blob is stored again), or it is being stored now.
bool Repository::stored_locked(const Id &id)
{
	if (open_blobs_.count(id) || in_flight_.count(id))
		return true;
	auto loc = index_.find(id);
	if (!loc)
		return false;
	return !packs_known_ || present_packs_.count(index_.pack_name(loc->pack));
}

bool Repository::has_blob(const Id &id)
{
	std::lock_guard lk(mu_);
	ensure_index_locked();
	return stored_locked(id);
}

bool Repository::put_blob(BlobType type, const Id &id, ByteView plaintext)
{
	wait_upload_room(); // back-pressure from a slow store, before the lock is taken
	{
		std::lock_guard lk(mu_);
		ensure_index_locked();
		apply_uploads_locked();
		if (stored_locked(id) || !in_flight_.insert(id).second)
			return false;
	}
	// One compression buffer per thread, reused blob after blob.
	thread_local Scratch scratch;
	uint8_t *packed = plaintext.size() > 1 ? scratch.get(plaintext.size() - 1) : nullptr;
	size_t n = 0;
	try {
		if (packed)
			n = compression::compress_into(plaintext, cfg_.compression_level, packed);
	} catch (...) {
		std::lock_guard lk(mu_);
		in_flight_.erase(id);
		throw;
	}
	std::unique_lock lk(mu_);
	in_flight_.erase(id);
	add_payload_locked(lk, type, id, n ? kBlobCompressed : 0, n ? ByteView(packed, n) : plaintext,
	                   uint32_t(plaintext.size()));
	// New directory nodes are what the next push compares against: keep them at hand.
	if (cache_ && type != BlobType::Chunk)
		cache_->put(CacheTable::Blob, id.hex(), plaintext);
	return true;
}

// Room for the blob is reserved in the open pack under the lock; the blob is sealed (AES-GCM)
// with the lock released, so the workers seal side by side. A pack is finished only once
// every blob reserved in it is sealed: the last sealer finishes a pack that filled up
// meanwhile, and whoever finishes a pack early (flush, a read of one of its blobs) waits.
void Repository::add_payload_locked(std::unique_lock<std::mutex> &lk, BlobType type, const Id &id, uint8_t flags,
                                    ByteView payload, uint32_t raw_len)
{
	auto &w = type == BlobType::Chunk ? data_pack_ : meta_pack_;
	if (w && !w->empty() && !w->fits(payload.size()))
		retire_pack_locked(w); // the buffer must not move under pending seals
	if (!w)
		w = new_pack_writer(type);
	if (!w->fits(payload.size()))
		w->reserve(w->size() + payload.size() + crypto::kGcmTag); // empty: nothing pending
	PackWriter *pw = w.get();
	PackWriter::Slot slot = pw->reserve_payload(id, type, flags, payload.size(), raw_len);
	// Indexed only once its pack is stored (finish_pack_locked): an index segment never names a
	// blob whose pack failed to be written.
	open_blobs_.emplace(id, pw->name());
	stats_.blobs_written++;
	stats_.bytes_written += slot.rec.length;
	sealing_[pw]++;
	if (w->size() >= cfg_.pack_size || w->records().size() >= kPackMaxBlobs)
		retire_pack_locked(w);
	lk.unlock();
	std::exception_ptr failed;
	try {
		pw->seal_payload(slot, payload);
	} catch (...) {
		failed = std::current_exception();
	}
	lk.lock();
	if (failed) {
		broken_packs_.insert(pw); // dropped when finished; no other blob goes into it
		for (auto *open : {&data_pack_, &meta_pack_})
			if (open->get() == pw)
				retired_.push_back(std::move(*open));
	}
	if (--sealing_[pw] == 0) {
		sealing_.erase(pw);
		auto it = std::find_if(retired_.begin(), retired_.end(), [&](const auto &r) { return r.get() == pw; });
		if (it != retired_.end()) {
			std::unique_ptr<PackWriter> done = std::move(*it);
			retired_.erase(it);
			finish_pack_locked(done);
		}
		sealed_cv_.notify_all();
	}
	if (failed)
		std::rethrow_exception(failed);
}

// A full pack leaves its slot for a new one; it is finished now, or by its last sealer.
void Repository::retire_pack_locked(std::unique_ptr<PackWriter> &w)
{
	if (sealing_.count(w.get()))
		retired_.push_back(std::move(w));
	else
		finish_pack_locked(w);
}

// Waits until every reserved blob is sealed; the retired packs are then finished.
void Repository::wait_sealed_locked(std::unique_lock<std::mutex> &lk)
{
	sealed_cv_.wait(lk, [&] { return sealing_.empty(); });
}

std::unique_ptr<PackWriter> Repository::new_pack_writer(BlobType type)
{
	auto w = std::make_unique<PackWriter>(keys_, cfg_.encrypted, type == BlobType::Chunk ? PackType::Data : PackType::Meta,
	                                      cfg_.compression_level);
	// A pack is closed once it reaches pack_size, so it holds at most one blob more.
	if (type == BlobType::Chunk && !spare_buffers_.empty()) {
		w->reuse_buffer(std::move(spare_buffers_.back()));
		spare_buffers_.pop_back();
	}
	w->reserve(size_t(cfg_.pack_size) + chunker_->params().max + 64 * 1024);
	return w;
}

void Repository::copy_blob(BlobType type, const Id &id, ByteView plaintext)
{
	Bytes packed;
	bool compressed = compression::compress(plaintext, cfg_.compression_level, packed);
	wait_upload_room();
	std::unique_lock lk(mu_);
	ensure_index_locked();
	add_payload_locked(lk, type, id, compressed ? kBlobCompressed : 0, compressed ? ByteView(packed) : plaintext,
	                   uint32_t(plaintext.size()));
}

// Seals the pack and hands it to the uploader. Its blobs stay in open_blobs_ (a writer reuses
// them) until the pack is stored; they are indexed then (apply_uploads_locked), so an index
// segment never names a blob whose pack failed to be written.
void Repository::finish_pack_locked(std::unique_ptr<PackWriter> &w)
{
	if (broken_packs_.erase(w.get())) {
		// A blob of it could not be sealed (put_blob threw): none of its blobs is stored.
		for (const auto &r : w->records())
			open_blobs_.erase(r.id);
		w.reset();
		return;
	}
	PackUploader::Job job{w->name(), {}, w->records()};
	job.pack = w->finish();
	w.reset();
	if (!uploader_) {
		uploader_ = std::make_unique<PackUploader>(*store_, 1);
		uploader_seen_.store(uploader_.get(), std::memory_order_release);
	}
	uploader_->enqueue(std::move(job)); // never waits: writers waited for room before locking
	apply_uploads_locked();
}

void Repository::wait_upload_room()
{
	if (PackUploader *u = uploader_seen_.load(std::memory_order_acquire))
		u->wait_room();
}

void Repository::settle_uploads_locked(std::unique_lock<std::mutex> &lk)
{
	while (uploader_ && uploader_->busy()) {
		PackUploader *u = uploader_.get();
		lk.unlock();
		u->drain();
		lk.lock();
	}
	apply_uploads_locked();
}

void Repository::apply_uploads_locked()
{
	if (!uploader_)
		return;
	auto done = uploader_->take_done();
	for (auto &job : done.stored) {
		if (spare_buffers_.empty())
			spare_buffers_.push_back(std::move(job.pack));
		for (const auto &r : job.records)
			open_blobs_.erase(r.id);
		if (packs_known_)
			present_packs_.insert(job.name);
		for (const auto &r : job.records)
			index_.add(job.name, r);
	}
	// A long push writes its index in segments of bounded size as it goes: memory stays bounded
	// (one segment's encoding at a time), and an interrupted push leaves most of its blobs
	// indexed already.
	if (index_.fresh_count() >= kSegmentEntries)
		write_segment_locked();
	// The blobs of a pack that failed to be stored are forgotten: a later put_blob stores them
	// again.
	for (const auto &job : done.failed)
		for (const auto &r : job.records)
			open_blobs_.erase(r.id);
	if (done.error)
		std::rethrow_exception(done.error);
}

void Repository::flush()
{
	std::unique_lock lk(mu_);
	if (!index_loaded_)
		return; // nothing was stored: put_blob loads the index first
	wait_sealed_locked(lk);
	for (auto *w : {&data_pack_, &meta_pack_})
		if (*w && !(*w)->empty())
			finish_pack_locked(*w);
	settle_uploads_locked(lk);
	if (index_.has_fresh())
		write_segment_locked();
	if (!wrote_segments_)
		return;
	wrote_segments_ = false;
	maybe_compact();
	sync_table_locked();
	if (cache_)
		cache_->flush();
}

} // namespace plakar
