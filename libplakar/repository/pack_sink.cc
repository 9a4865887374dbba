// The write path of a repository (pack_sink.h).
#include "repository/pack_sink.h"

#include <algorithm>
#include <utility>

#include "crypto/crypto.h"

namespace plakar {

PackSink::PackSink(Store &store, const KeyRing &keys, Params params) : store_(store), keys_(keys), params_(params) {}

PackSink::~PackSink()
{
	uploader_seen_.store(nullptr, std::memory_order_release);
	uploader_.reset();
}

// Room for the blob is reserved in the open pack under the lock; the blob is sealed (AES-GCM)
// with the lock released, so the workers seal side by side. A pack is finished only once
// every blob reserved in it is sealed: the last sealer finishes a pack that filled up
// meanwhile, and whoever finishes a pack early (finish_holding, finish_all) waits.
void PackSink::add(std::unique_lock<std::mutex> &lk, BlobType type, const Id &id, uint8_t flags, ByteView payload,
                   uint32_t raw_len)
{
	in_flight_.erase(id);
	auto &w = type == BlobType::Chunk ? data_pack_ : meta_pack_;
	if (w && !w->empty() && !w->fits(payload.size()))
		retire(w); // the buffer must not move under pending seals
	if (!w)
		w = new_writer(type);
	if (!w->fits(payload.size()))
		w->reserve(w->size() + payload.size() + crypto::kGcmTag); // empty: nothing pending
	PackWriter *pw = w.get();
	PackWriter::Slot slot = pw->reserve_payload(id, type, flags, payload.size(), raw_len);
	// Handed back to be indexed only once its pack is stored (take_stored): an index segment
	// never names a blob whose pack failed to be written.
	open_blobs_.emplace(id, pw->name());
	blobs_added_++;
	bytes_added_ += slot.rec.length;
	sealing_[pw]++;
	if (w->size() >= params_.pack_size || w->records().size() >= params_.blobs_max)
		retire(w);
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
			finish(done);
		}
		sealed_cv_.notify_all();
	}
	if (failed)
		std::rethrow_exception(failed);
}

// A full pack leaves its slot for a new one; it is finished now, or by its last sealer.
void PackSink::retire(std::unique_ptr<PackWriter> &w)
{
	if (sealing_.count(w.get()))
		retired_.push_back(std::move(w));
	else
		finish(w);
}

void PackSink::wait_sealed(std::unique_lock<std::mutex> &lk)
{
	sealed_cv_.wait(lk, [&] { return sealing_.empty(); });
}

std::unique_ptr<PackWriter> PackSink::new_writer(BlobType type)
{
	auto w = std::make_unique<PackWriter>(keys_, params_.encrypted,
	                                      type == BlobType::Chunk ? PackType::Data : PackType::Meta,
	                                      params_.compression_level);
	// A pack is closed once it reaches pack_size, so it holds at most one blob more.
	if (type == BlobType::Chunk && !spare_buffers_.empty()) {
		w->reuse_buffer(std::move(spare_buffers_.back()));
		spare_buffers_.pop_back();
	}
	w->reserve(size_t(params_.pack_size) + params_.blob_max + 64 * 1024);
	return w;
}

// Seals the pack and hands it to the uploader. Its blobs stay in open_blobs_ (a writer reuses
// them) until the pack is stored.
void PackSink::finish(std::unique_ptr<PackWriter> &w)
{
	if (broken_packs_.erase(w.get())) {
		// A blob of it could not be sealed (add threw): none of its blobs is stored.
		for (const auto &r : w->records())
			open_blobs_.erase(r.id);
		w.reset();
		return;
	}
	PackUploader::Job job{w->name(), {}, w->records()};
	job.pack = w->finish();
	w.reset();
	if (!uploader_) {
		uploader_ = std::make_unique<PackUploader>(store_, 1);
		uploader_seen_.store(uploader_.get(), std::memory_order_release);
	}
	uploader_->enqueue(std::move(job)); // never waits: writers waited for room before locking
}

bool PackSink::finish_holding(std::unique_lock<std::mutex> &lk, const Id &id)
{
	auto open = open_blobs_.find(id);
	if (open == open_blobs_.end())
		return false;
	Id p = open->second;
	sealed_cv_.wait(lk, [&] {
		return std::none_of(sealing_.begin(), sealing_.end(), [&](const auto &s) { return s.first->name() == p; });
	});
	for (auto *w : {&data_pack_, &meta_pack_})
		if (*w && (*w)->name() == p)
			finish(*w);
	// Its upload is waited for without the lock: the owner's other readers and writers go on
	// meanwhile.
	if (PackUploader *u = uploader_.get()) {
		lk.unlock();
		u->wait_for(p);
		lk.lock();
	}
	return true;
}

void PackSink::finish_all(std::unique_lock<std::mutex> &lk)
{
	wait_sealed(lk);
	for (auto *w : {&data_pack_, &meta_pack_})
		if (*w && !(*w)->empty())
			finish(*w);
	settle(lk);
}

void PackSink::settle(std::unique_lock<std::mutex> &lk)
{
	while (uploader_ && uploader_->busy()) {
		PackUploader *u = uploader_.get();
		lk.unlock();
		u->drain();
		lk.lock();
	}
}

void PackSink::wait_room()
{
	if (PackUploader *u = uploader_seen_.load(std::memory_order_acquire))
		u->wait_room();
}

PackSink::Stored PackSink::take_stored()
{
	Stored out;
	if (!uploader_)
		return out;
	auto done = uploader_->take_done();
	for (auto &job : done.stored) {
		if (spare_buffers_.empty())
			spare_buffers_.push_back(std::move(job.pack));
		for (const auto &r : job.records)
			open_blobs_.erase(r.id);
		out.packs.push_back(Pack{job.name, std::move(job.records)});
	}
	// The blobs of a pack that failed to be stored are forgotten: a later writer stores them
	// again.
	for (const auto &job : done.failed)
		for (const auto &r : job.records)
			open_blobs_.erase(r.id);
	out.error = done.error;
	return out;
}

} // namespace plakar
