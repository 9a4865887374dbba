// The write path of a repository: new blobs reserved in the open pack of their type, sealed
// side by side outside the lock, full packs handed to the uploader, and what was stored handed
// back to be indexed (take_stored). It knows nothing of the index: its owner asks holds() and
// the index before storing a blob, and indexes what take_stored() returns.
//
// Externally synchronized: every call but wait_room() is made holding the owner's mutex (the
// Repository's), the one given to the calls that release it while they wait or seal. What a
// blob goes through: reserve() (no other writer stores it meanwhile), add() (in an open pack:
// holds() is true from here until its pack is stored or failed), then take_stored() once the
// uploader stored its pack (or failed to: it is forgotten, and a later writer stores it again).
#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/bytes.h"
#include "base/id.h"
#include "repository/keys.h"
#include "repository/pack.h"
#include "repository/uploader.h"
#include "storage/store.h"

namespace plakar {

class PackSink {
public:
	struct Params {
		bool encrypted = true;
		int compression_level = 3; // of the packs' tables of contents
		uint32_t pack_size = 16 * 1024 * 1024; // a pack is closed once it reaches this size
		size_t blob_max = 0;                   // the largest payload expected (a chunk's maximum)
		size_t blobs_max = 32768;              // a pack is also closed at this many blobs
	};
	PackSink(Store &store, const KeyRing &keys, Params params);
	// Packs still queued are stored (a later writer adopts them); their errors are dropped.
	~PackSink();
	PackSink(const PackSink &) = delete;
	PackSink &operator=(const PackSink &) = delete;

	// Whether the blob is being stored: reserved, or in a pack not yet stored.
	bool holds(const Id &id) const { return open_blobs_.count(id) || in_flight_.count(id); }
	// Reserves a blob about to be added (compressed outside the lock meanwhile); false when
	// another writer holds it already. release() gives it up (add() does too).
	bool reserve(const Id &id) { return in_flight_.insert(id).second; }
	void release(const Id &id) { in_flight_.erase(id); }
	// Appends a blob's payload (compressed: flags kBlobCompressed) to the open pack of its
	// type; lk is released while it is sealed. Throws when sealing fails: the pack is then
	// dropped whole, and its blobs are forgotten.
	void add(std::unique_lock<std::mutex> &lk, BlobType type, const Id &id, uint8_t flags, ByteView payload,
	         uint32_t raw_len);
	// Makes the pack holding this blob readable: its blobs sealed, the pack finished and stored
	// (lk released while waiting for the upload). False when no open pack holds it.
	bool finish_holding(std::unique_lock<std::mutex> &lk, const Id &id);
	// Finishes every open pack (waiting for their seals) and waits until the uploader stored or
	// failed each one (lk released meanwhile).
	void finish_all(std::unique_lock<std::mutex> &lk);
	// Waits (lk released) until the uploader stored or failed every pack handed to it.
	void settle(std::unique_lock<std::mutex> &lk);
	// Whether every blob added is in a pack handed to the uploader (none open or sealing).
	bool idle() const { return !data_pack_ && !meta_pack_ && retired_.empty(); }
	// Waits while the uploader has packs waiting already: back-pressure from a slow store,
	// called before the owner's lock is taken (never with it).
	void wait_room();

	// The packs stored since the last call, to be indexed now; their blobs leave holds() (the
	// owner indexes them under the same lock). A failed upload's blobs are forgotten, and its
	// error is returned after the stored ones are taken (Stored::error).
	struct Pack {
		Id name;
		std::vector<BlobRecord> records;
	};
	struct Stored {
		std::vector<Pack> packs;
		std::exception_ptr error; // the first failure since the last call
	};
	Stored take_stored();

	uint64_t blobs_added() const { return blobs_added_; }
	uint64_t bytes_added() const { return bytes_added_; } // sealed bytes appended to packs

private:
	std::unique_ptr<PackWriter> new_writer(BlobType type);
	void retire(std::unique_ptr<PackWriter> &w);
	void finish(std::unique_ptr<PackWriter> &w);
	void wait_sealed(std::unique_lock<std::mutex> &lk);

	Store &store_;
	const KeyRing &keys_;
	const Params params_;
	std::unordered_set<Id, IdHash> in_flight_;
	std::unordered_map<Id, Id, IdHash> open_blobs_; // blobs in packs not yet stored -> pack name
	std::unique_ptr<PackWriter> data_pack_, meta_pack_;
	// Blobs reserved in a pack and being sealed outside the lock, per pack; full packs waiting
	// for their last seal; packs a seal failed in (dropped when finished).
	std::unordered_map<PackWriter *, int> sealing_;
	std::vector<std::unique_ptr<PackWriter>> retired_;
	std::unordered_set<PackWriter *> broken_packs_;
	std::condition_variable sealed_cv_;
	std::vector<Bytes> spare_buffers_; // of stored packs, for the next ones
	uint64_t blobs_added_ = 0, bytes_added_ = 0;
	std::unique_ptr<PackUploader> uploader_; // last: stops first
	std::atomic<PackUploader *> uploader_seen_{nullptr}; // uploader_, for wait_room() without the lock
};

} // namespace plakar
