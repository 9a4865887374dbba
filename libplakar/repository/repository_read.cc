// Repository, the read path: pack keys, locating a blob (the index, the cached index table,
// packs no segment names), reading and authenticating it, falling back to another copy when one
// is bad; and keeping the cached index table in step with the segments loaded.
#include "repository/repository.h"

#include <algorithm>
#include <utility>

#include "base/error.h"
#include "base/pool.h"

namespace plakar {

namespace {
// Blobs located through the index table before the index is loaded instead.
constexpr uint64_t kTableLookupsMax = 4096;
constexpr size_t kKeyCacheMax = 4096;
} // namespace

std::shared_ptr<PackKey> Repository::pack_key(const Id &pack)
{
	{
		std::lock_guard lk(mu_);
		auto it = key_cache_.find(pack);
		if (it != key_cache_.end())
			return it->second;
	}
	Bytes header = store_->get_range(Kind::Pack, pack.hex(), 0, kPackHeader);
	auto key = std::make_shared<PackKey>(keys_, cfg_.encrypted, pack, header);
	std::lock_guard lk(mu_);
	if (key_cache_.size() >= kKeyCacheMax)
		key_cache_.clear();
	key_cache_[pack] = key;
	return key;
}

std::shared_ptr<IndexTable> Repository::lookup_table()
{
	std::lock_guard lk(mu_);
	// Point lookups (cat, ls, a few files) use the table; a bulk read (pull, tarball of a
	// large tree) soon pays more in table blocks than one index load: switch then.
	if (index_loaded_ || !cache_ || stats_.table_hits >= kTableLookupsMax)
		return nullptr;
	if (!table_opened_) {
		table_ = IndexTable::open(cache_->dir(), cache_->subkey("index-table"));
		table_opened_ = true;
	}
	return table_;
}

template <class Read>
auto Repository::read_located(const Id &id, bool from_store, Read read) -> decltype(read(Id(), BlobRecord()))
{
	// Before the index is loaded, the cached index table locates the blob without loading it.
	// The table is a hint: a blob it places wrongly (repacked since, or a damaged table) fails
	// authentication there, and the index decides.
	std::shared_ptr<IndexTable> table = from_store ? nullptr : lookup_table();
	if (table)
		if (auto hit = table->find(id)) {
			try {
				auto plain = read(hit->pack, hit->rec);
				std::lock_guard lk(mu_);
				stats_.table_hits++;
				return plain;
			} catch (const Error &e) {
				if (!e.is_not_found() && e.code() != Code::Corrupt)
					throw;
				table->mark_broken();
			}
		}
	std::optional<BlobPlace> place;
	{
		std::unique_lock lk(mu_);
		place = locate_locked(lk, id);
	}
	if (!place)
		fail(Code::NotFound, "blob " + id.hex().substr(0, 16) + " is not in the index");
	try {
		return read(place->pack, place->rec);
	} catch (const Error &e) {
		if ((!e.is_not_found() && e.code() != Code::Corrupt) || !place->indexed)
			throw;
		// Another copy may exist: stored again by a push that found the pack missing, repacked
		// by a gc since this handle loaded the index, or the genuine one beside a forged or
		// damaged copy listed first.
		std::vector<BlobPlace> others;
		{
			std::lock_guard lk(mu_);
			const Index &index = segs_.index();
			if (e.is_not_found() && !index.has_fresh() && sink_.idle()) {
				segs_.load();
				index_reloaded_locked();
			}
			for (const auto &loc : index.find_all(id))
				others.push_back(BlobPlace{index.pack_name(loc.pack), index.record(id, loc), true});
		}
		for (const auto &o : others) {
			if (o.pack == place->pack && o.rec.offset == place->rec.offset)
				continue;
			try {
				auto plain = read(o.pack, o.rec);
				if (e.code() == Code::Corrupt) {
					std::lock_guard lk(mu_);
					if (bad_copies_.size() < 1000)
						bad_copies_.push_back("pack " + place->pack.hex().substr(0, 16) + ": " + e.what() +
						                      "; another copy was used");
				}
				return plain;
			} catch (const Error &e2) {
				if (!e2.is_not_found() && e2.code() != Code::Corrupt)
					throw;
			}
		}
		throw;
	}
}

std::vector<std::string> Repository::take_bad_copies()
{
	std::lock_guard lk(mu_);
	return std::exchange(bad_copies_, {});
}

Bytes Repository::get_blob(const Id &id, BlobType expected, bool from_store)
{
	// Directory nodes and chunk lists come from the cache when it has them, checked against
	// their id, before any index lookup: snapshots only reference live blobs, so a cached node
	// of a listed snapshot is what the store holds.
	// Read from the store, a node is still written to the cache: it was just verified.
	bool cacheable = cache_ && expected != BlobType::Chunk;
	if (cacheable && !from_store) {
		auto hit = cache_->get(CacheTable::Blob, id.hex());
		if (hit && crypto::equal(blob_id(*hit).view(), id.view()))
			return std::move(*hit);
		if (hit) // not what the id names: replaced by what the store holds
			cache_->remove(CacheTable::Blob, id.hex());
	}
	return read_located(id, from_store,
	                    [&](const Id &pack, const BlobRecord &rec) { return read_blob(id, expected, pack, rec, cacheable); });
}

ByteView Repository::get_blob(const Id &id, BlobType expected, BlobBuffers &bufs)
{
	return read_located(id, false,
	                    [&](const Id &pack, const BlobRecord &rec) { return read_blob(id, expected, pack, rec, bufs); });
}

std::optional<Repository::BlobPlace> Repository::place_blob(const Id &id)
{
	if (auto table = lookup_table())
		if (auto hit = table->find(id)) {
			std::lock_guard lk(mu_);
			stats_.table_hits++;
			return BlobPlace{hit->pack, hit->rec, true};
		}
	std::unique_lock lk(mu_);
	return locate_locked(lk, id);
}

std::optional<Repository::BlobPlace> Repository::locate_blob(const Id &id)
{
	std::unique_lock lk(mu_);
	return locate_locked(lk, id);
}

std::vector<Repository::BlobPlace> Repository::locate_all(const Id &id)
{
	std::unique_lock lk(mu_);
	std::vector<BlobPlace> out;
	auto first = locate_locked(lk, id);
	if (!first)
		return out;
	if (!first->indexed)
		return {*first};
	const Index &index = segs_.index();
	for (const auto &loc : index.find_all(id))
		out.push_back(BlobPlace{index.pack_name(loc.pack), index.record(id, loc), true});
	return out;
}

std::optional<Repository::BlobPlace> Repository::locate_locked(std::unique_lock<std::mutex> &lk, const Id &id)
{
	ensure_index_locked();
	// A blob still in an open pack: that pack is finished and stored first, so it can be read
	// like any other.
	if (sink_.finish_holding(lk, id))
		apply_uploads_locked();
	const Index &index = segs_.index();
	auto loc = index.find(id);
	if (!loc && segs_.refresh()) {
		loc = index.find(id); // written by another process since this one loaded the index
		sync_table_locked();
	}
	if (loc)
		return BlobPlace{index.pack_name(loc->pack), index.record(id, *loc), true};
	// Not indexed: perhaps in a pack whose index segment was lost.
	auto it = unindexed_.find(id);
	if (it == unindexed_.end()) {
		scan_unindexed_locked();
		it = unindexed_.find(id);
	}
	if (it != unindexed_.end())
		return it->second;
	return std::nullopt;
}

std::vector<BlobRecord> Repository::pack_toc(const Id &pack, uint64_t pack_size)
{
	if (pack_size < kPackHeader + kPackTrailer)
		fail(Code::Corrupt, "pack " + pack.hex() + ": truncated (" + std::to_string(pack_size) + " bytes)");
	return toc_of(*pack_key(pack), pack, pack_size);
}

std::vector<BlobRecord> Repository::toc_of(const PackKey &key, const Id &pack, uint64_t pack_size)
{
	if (pack_size < kPackHeader + kPackTrailer)
		fail(Code::Corrupt, "pack " + pack.hex() + ": truncated (" + std::to_string(pack_size) + " bytes)");
	Bytes trailer = store_->get_range(Kind::Pack, pack.hex(), pack_size - kPackTrailer, kPackTrailer);
	auto [off, len] = key.toc_location(trailer, pack_size);
	return key.open_toc(store_->get_range(Kind::Pack, pack.hex(), off, len), off);
}

Bytes Repository::read_blob(const Id &id, BlobType expected, const Id &pack, const BlobRecord &rec, bool cache_it)
{
	if (rec.type != expected)
		fail(Code::Corrupt, "blob " + id.hex().substr(0, 16) + " has an unexpected type");
	auto key = pack_key(pack);
	Bytes sealed = store_->get_range(Kind::Pack, pack.hex(), rec.offset, rec.length);
	Bytes plain = key->blob_plaintext(rec, sealed);
	// The index and pack are authenticated; this also catches a blob filed under another id.
	if (!crypto::equal(blob_id(plain).view(), id.view()))
		fail(Code::Corrupt, "blob " + id.hex().substr(0, 16) + " does not match its id");
	if (expected != BlobType::Chunk) {
		std::lock_guard lk(mu_);
		stats_.meta_fetched++;
	}
	// Content-addressed: a node cached already is this one (check reads every node from the
	// store; rewriting each would be most of its cost).
	if (cache_it)
		cache_->put_new(CacheTable::Blob, id.hex(), plain);
	return plain;
}

ByteView Repository::read_blob(const Id &id, BlobType expected, const Id &pack, const BlobRecord &rec, BlobBuffers &bufs)
{
	if (rec.type != expected)
		fail(Code::Corrupt, "blob " + id.hex().substr(0, 16) + " has an unexpected type");
	uint8_t *sealed = bufs.sealed.get(rec.length);
	store_->read_range(Kind::Pack, pack.hex(), rec.offset, rec.length, sealed);
	return open_blob(id, expected, pack, rec, std::span<uint8_t>(sealed, rec.length), bufs.plain);
}

ByteView Repository::open_blob(const Id &id, BlobType expected, const Id &pack, const BlobRecord &rec,
                               std::span<uint8_t> sealed, Scratch &plain_buf)
{
	if (rec.type != expected)
		fail(Code::Corrupt, "blob " + id.hex().substr(0, 16) + " has an unexpected type");
	auto key = pack_key(pack);
	if (rec.id != id)
		fail(Code::Corrupt, "blob " + id.hex().substr(0, 16) + " is located at another blob's record");
	ByteView plain = key->blob_plaintext(rec, sealed, plain_buf);
	// The id in the associated data only proves that a key holder stored these bytes under it;
	// the id computed from the plaintext proves they are the bytes the id names (an append-only
	// writer holds the key too: docs/format.md, "Threat model").
	if (!crypto::equal(blob_id(plain).view(), id.view()))
		fail(Code::Corrupt, "blob " + id.hex().substr(0, 16) + " does not match its id");
	if (expected != BlobType::Chunk) {
		std::lock_guard lk(mu_);
		stats_.meta_fetched++;
	}
	return plain;
}

void Repository::scan_unindexed_locked()
{
	for (const auto &name : store_->list(Kind::Pack)) {
		Id pack;
		try {
			pack = Id::from_hex(name);
		} catch (const Error &) {
			continue;
		}
		if (packs_known_)
			present_packs_.insert(pack);
		if (segs_.index().knows_pack(pack) || !scanned_packs_.insert(pack).second)
			continue;
		try {
			// Not pack_key(): mu_ is held here.
			PackKey key(keys_, cfg_.encrypted, pack, store_->get_range(Kind::Pack, name, 0, kPackHeader));
			for (const auto &rec : toc_of(key, pack, store_->size(Kind::Pack, name)))
				unindexed_.try_emplace(rec.id, BlobPlace{pack, rec, false});
		} catch (const Error &e) {
			// A pack being written or removed meanwhile, or a damaged one: check reports those.
			if (!e.is_not_found() && e.code() != Code::Corrupt)
				throw;
		}
	}
}

void Repository::sync_table_locked()
{
	if (!cache_ || !index_loaded_ || segs_.index().has_fresh())
		return;
	if (!table_opened_) {
		table_ = IndexTable::open(cache_->dir(), cache_->subkey("index-table"));
		table_opened_ = true;
	}
	if (!table_ && segs_.live().empty())
		return; // nothing to locate yet
	if (table_ && !table_->broken()) {
		std::vector<std::string> a = table_->segments(), b = segs_.live();
		std::sort(a.begin(), a.end());
		std::sort(b.begin(), b.end());
		if (a == b)
			return;
	}
	auto key = cache_->subkey("index-table");
	if (IndexTable::write(cache_->dir(), key, segs_.live(), segs_.index())) {
		stats_.tables_written++;
		table_ = IndexTable::open(cache_->dir(), key);
	}
}

} // namespace plakar
