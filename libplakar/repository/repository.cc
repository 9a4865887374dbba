// The Repository facade: creating and opening (keys, CONFIG, the agent, the cache), blob ids,
// snapshot headers, what a writer does under its lock, and the glue between the parts the class
// is made of, each a class of its own, readable and tested alone: IndexSegments (segments.h,
// the index lifecycle), PackSink (pack_sink.h, sealing blobs into packs and uploading them),
// Cache and IndexTable (the local cache and the cached index table). repository_read.cc is the
// read path: locating a blob (index, table, packs no segment names), reading and
// authenticating it, falling back to another copy when one is bad.
#include "repository/repository.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "agent/agent.h"
#include "base/error.h"
#include "base/pool.h"
#include "base/system.h"
#include "compression/zstd.h"

namespace plakar {

namespace {
// A long push writes its index in segments of this many entries at most (about 13 MB encoded)
// as it goes: memory stays bounded, and an interrupted push leaves most of its blobs indexed.
constexpr size_t kSegmentEntries = 262144;
// A pack is also closed at this many blobs: what a writer tracks per blob of its open and
// uploading packs stays bounded when blobs are tiny (a tree of small files).
constexpr size_t kPackMaxBlobs = 32768;
} // namespace

Repository::Repository(std::unique_ptr<Store> store, Config cfg, KeyRing keys)
    : store_(std::move(store)), cfg_(std::move(cfg)), keys_(std::move(keys)), id_mac_(keys_.blob_id.view()),
      segs_(*store_, keys_, cfg_.encrypted, cfg_.compression_level),
      sink_(*store_, keys_,
            PackSink::Params{cfg_.encrypted, cfg_.compression_level, cfg_.pack_size, cfg_.chunks.max, kPackMaxBlobs})
{
	static std::atomic<uint64_t> serials{0};
	serial_ = ++serials;
	cpu_ = default_cpu_budget();
	chunker_ = std::make_unique<Chunker>(cfg_.chunks, keys_.gear.view());
}

// Packs still queued are stored (a later writer adopts them); their errors are dropped.
Repository::~Repository() = default;

Repository::Call::~Call()
{
	if (Cache *c = r_.cache())
		c->flush();
}

std::unique_ptr<Repository> Repository::create(const std::string &uri, const CreateOptions &opts)
{
	return create(open_store(uri, opts.store), opts);
}

std::unique_ptr<Repository> Repository::create(std::unique_ptr<Store> store, const CreateOptions &opts)
{
	opts.chunks.validate();
	if (opts.compression_level < 1 || opts.compression_level > 19)
		fail(Code::Invalid, "compression level must be between 1 and 19");
	if (opts.pack_size < 64 * 1024 || opts.pack_size > 1024u * 1024 * 1024)
		fail(Code::Invalid, "pack size must be between 64 KiB and 1 GiB");
	if (opts.kdf.log2_n < 10 || opts.kdf.log2_n > 24)
		fail(Code::Invalid, "scrypt cost log2(N) must be between 10 and 24");
	if (opts.encryption && !opts.passphrase)
		fail(Code::Invalid, "a passphrase is required to create an encrypted repository");
	if (opts.encryption && opts.passphrase->empty())
		fail(Code::Invalid, "the passphrase must not be empty");

	Config cfg;
	crypto::random_bytes(cfg.repo_id.data(), cfg.repo_id.size());
	cfg.repo_id[6] = (cfg.repo_id[6] & 0x0f) | 0x40; // printed as a version-4 UUID
	cfg.repo_id[8] = (cfg.repo_id[8] & 0x3f) | 0x80;
	cfg.created_ns = wall_clock_ns();
	cfg.encrypted = opts.encryption;
	cfg.chunks = opts.chunks;
	cfg.compression_level = opts.compression_level;
	cfg.pack_size = opts.pack_size;
	crypto::SecureBytes master(crypto::random_bytes(32));
	if (!cfg.encrypted)
		cfg.plain_master = master;
	KeyRing keys = KeyRing::derive(master, cfg);
	Bytes config = encode_config(cfg, keys);
	Bytes keyfile;
	std::string key_name;
	if (cfg.encrypted) {
		keyfile = wrap_master_key(master, as_bytes(*opts.passphrase), opts.kdf, cfg, default_cpu_budget());
		key_name = hex_encode(crypto::random_bytes(8));
	}
	store->create(config, key_name, keyfile);
	return std::unique_ptr<Repository>(new Repository(std::move(store), std::move(cfg), std::move(keys)));
}

std::unique_ptr<Repository> Repository::open(const std::string &uri, const std::optional<std::string> &passphrase,
                                             const OpenOptions &opts)
{
	return open(open_store(uri, opts.store), passphrase, opts);
}

std::unique_ptr<Repository> Repository::open(std::unique_ptr<Store> store, const std::optional<std::string> &passphrase,
                                             const OpenOptions &opts)
{
	Bytes raw = store->open();
	Config cfg = parse_config(raw);
	if (!cfg.encrypted) {
		KeyRing keys = KeyRing::derive(cfg.plain_master, cfg);
		verify_config(raw, keys); // a damaged CONFIG is reported as such first
		// Whoever can write the store can replace CONFIG with a plaintext one: a client that
		// was given a passphrase, or that saw this repository encrypted before, must not then
		// store data in the clear (docs/format.md, "Threat model").
		if (passphrase)
			fail(Code::Auth, store->location() +
			                     ": the repository is not encrypted but a passphrase was given; refusing to use it "
			                     "(its CONFIG may have been replaced; open it without a passphrase if it was "
			                     "created with -no-encryption)");
		std::string dir = opts.cache_dir.empty() ? Cache::default_dir(cfg, opts.cache_root) : opts.cache_dir;
		if (Cache::was_encrypted(dir))
			fail(Code::Corrupt, store->location() + ": the repository was encrypted when this client last opened it, "
			                                     "and its CONFIG now says plaintext; refusing to use it");
		return finish_open(std::move(store), std::move(cfg), std::move(keys), opts);
	}
	// A key agent holding this repository's master key spares the key derivation. Its key is
	// checked against CONFIG like any other; a wrong one is ignored.
	if (!opts.agent.empty())
		if (auto m = agent::fetch(opts.agent, cfg.repo_id)) {
			try {
				KeyRing keys = KeyRing::derive(*m, cfg);
				verify_config(raw, keys);
				return finish_open(std::move(store), std::move(cfg), std::move(keys), opts);
			} catch (const Error &) {
			}
		}
	if (!passphrase)
		fail(Code::Auth, "this repository is encrypted: a passphrase is required");
	// The key derivation's lanes run side by side within the handle's CPU budget.
	const unsigned kdf_threads = opts.cpu ? std::min(opts.cpu, usable_cores()) : default_cpu_budget();
	crypto::SecureBytes master;
	{
		auto names = store->list(Kind::Key);
		if (names.empty())
			fail(Code::Corrupt, store->location() + ": repository has no key file");
		// Every key file is tried: one that is malformed, of another version or unreadable
		// (a writer of the store may add any file) is skipped, not fatal.
		bool found = false;
		size_t bad = 0;
		std::string why;
		for (const auto &n : names) {
			std::optional<crypto::SecureBytes> m;
			try {
				m = unwrap_master_key(store->get(Kind::Key, n), as_bytes(*passphrase), cfg, kdf_threads);
			} catch (const Error &e) {
				if (e.code() != Code::Corrupt && e.code() != Code::Version && e.code() != Code::NotFound)
					throw;
				bad++;
				why = "key file " + n + ": " + e.what();
				continue;
			}
			if (m) {
				master = std::move(*m);
				found = true;
				break;
			}
		}
		if (!found && bad == names.size())
			fail(Code::Corrupt, store->location() + ": no usable key file (" + why + ")");
		if (!found)
			fail(Code::Auth, "wrong passphrase (or a damaged CONFIG or key file)");
	}
	KeyRing keys = KeyRing::derive(master, cfg);
	verify_config(raw, keys);
	if (!opts.agent.empty())
		agent::offer(opts.agent, cfg.repo_id, master);
	return finish_open(std::move(store), std::move(cfg), std::move(keys), opts);
}

std::unique_ptr<Repository> Repository::finish_open(std::unique_ptr<Store> store, Config cfg, KeyRing keys,
                                                    const OpenOptions &opts)
{
	std::unique_ptr<Repository> repo(new Repository(std::move(store), std::move(cfg), std::move(keys)));
	if (opts.cpu)
		repo->cpu_ = std::min(opts.cpu, usable_cores());
	std::string dir = opts.cache_dir.empty() ? Cache::default_dir(repo->cfg_, opts.cache_root) : opts.cache_dir;
	if (repo->cfg_.encrypted && opts.use_cache)
		Cache::remember_encrypted(dir);
	if (opts.use_cache)
		repo->cache_ = Cache::open(dir, repo->cfg_, repo->keys_);
	repo->segs_.set_cache(repo->cache_.get());
	return repo;
}

Id Repository::blob_id(ByteView plaintext) const
{
	thread_local uint64_t owner = 0;
	thread_local std::unique_ptr<crypto::Mac> mac;
	if (owner != serial_ || !mac) {
		std::lock_guard lk(mu_); // copying the keyed context reads it
		mac = std::make_unique<crypto::Mac>(id_mac_);
		owner = serial_;
	}
	return mac->mac(plaintext);
}

RepoStats Repository::stats() const
{
	std::lock_guard lk(mu_);
	RepoStats s = stats_;
	s.blobs_written = sink_.blobs_added();
	s.bytes_written = sink_.bytes_added();
	s.segments_fetched = segs_.counters().fetched;
	s.segments_merged = segs_.counters().merged;
	s.index_loads = segs_.counters().loads;
	return s;
}

void Repository::put_snapshot(const std::string &name, ByteView body)
{
	store_->put(Kind::Snapshot, name,
	            seal_object(keys_, cfg_.encrypted, ObjectKind::SnapshotHeader, name, body, cfg_.compression_level));
	if (cache_) {
		cache_->put(CacheTable::Snapshot, name, body);
		cache_->flush();
	}
}

Bytes Repository::get_snapshot(const std::string &name)
{
	if (cache_)
		if (auto hit = cache_->get(CacheTable::Snapshot, name))
			return std::move(*hit);
	Bytes body =
	    open_object(keys_, cfg_.encrypted, ObjectKind::SnapshotHeader, name, store_->get(Kind::Snapshot, name));
	if (cache_)
		cache_->put(CacheTable::Snapshot, name, body);
	return body;
}

void Repository::begin_write()
{
	std::lock_guard lk(mu_);
	if (!index_loaded_) {
		ensure_index_locked();
	} else {
		// A segment superseded since by a gc's rewrite lost entries of packs condemned: the
		// index is loaded afresh then, so that no blob of theirs is reused.
		bool replaced = false;
		segs_.refresh(&replaced);
		if (replaced && !segs_.index().has_fresh() && sink_.idle()) {
			segs_.load();
			index_reloaded_locked();
		}
	}
	// Packs no segment names (a push killed between its packs and its segment): their blobs
	// are adopted, indexed by this writer's segment, so nothing uploaded is uploaded again.
	// The listing also tells which packs exist: a blob indexed in a pack that is gone is not
	// reused (stored_locked).
	present_packs_.clear();
	packs_known_ = true;
	scan_unindexed_locked();
	for (const auto &[id, place] : unindexed_)
		if (!segs_.index().contains(id))
			segs_.index().add(place.pack, place.rec);
	unindexed_.clear();
}

void Repository::remove_snapshot(const std::string &name)
{
	store_->remove(Kind::Snapshot, name);
	if (cache_) {
		cache_->remove(CacheTable::Snapshot, name);
		cache_->flush();
	}
}

std::vector<std::string> Repository::list_snapshots()
{
	std::vector<std::string> names = store_->list(Kind::Snapshot);
	if (cache_) {
		// Snapshots removed from the store leave the cache too.
		std::unordered_set<std::string> live(names.begin(), names.end());
		for (const auto &k : cache_->keys(CacheTable::Snapshot))
			if (!live.count(k))
				cache_->remove(CacheTable::Snapshot, k);
	}
	return names;
}

// The write path (the sink seals and uploads; the index learns what was stored).

// Whether a writer may reuse the stored copy of a blob instead of storing it: it is indexed in
// a pack that exists (a writer lists the packs once, in begin_write: a pack lost to damage is
// then not reused, the blob is stored again), or it is being stored now.
bool Repository::stored_locked(const Id &id)
{
	if (sink_.holds(id))
		return true;
	const Index &index = segs_.index();
	auto loc = index.find(id);
	if (!loc)
		return false;
	return !packs_known_ || present_packs_.count(index.pack_name(loc->pack));
}

bool Repository::has_blob(const Id &id)
{
	std::lock_guard lk(mu_);
	ensure_index_locked();
	return stored_locked(id);
}

bool Repository::put_blob(BlobType type, const Id &id, ByteView plaintext)
{
	sink_.wait_room(); // back-pressure from a slow store, before the lock is taken
	{
		std::lock_guard lk(mu_);
		ensure_index_locked();
		apply_uploads_locked();
		if (stored_locked(id) || !sink_.reserve(id))
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
		sink_.release(id);
		throw;
	}
	std::unique_lock lk(mu_);
	sink_.add(lk, type, id, n ? kBlobCompressed : 0, n ? ByteView(packed, n) : plaintext, uint32_t(plaintext.size()));
	// New directory nodes are what the next push compares against: keep them at hand.
	if (cache_ && type != BlobType::Chunk)
		cache_->put(CacheTable::Blob, id.hex(), plaintext);
	return true;
}

void Repository::copy_blob(BlobType type, const Id &id, ByteView plaintext)
{
	Bytes packed;
	bool compressed = compression::compress(plaintext, cfg_.compression_level, packed);
	sink_.wait_room();
	std::unique_lock lk(mu_);
	ensure_index_locked();
	sink_.add(lk, type, id, compressed ? kBlobCompressed : 0, compressed ? ByteView(packed) : plaintext,
	          uint32_t(plaintext.size()));
}

// The blobs of stored packs are indexed under the same lock that takes them from the sink, so
// a writer always finds a blob in one or the other. An index segment never names a blob whose
// pack failed to be written.
void Repository::apply_uploads_locked()
{
	PackSink::Stored done = sink_.take_stored();
	Index &index = segs_.index();
	for (const auto &p : done.packs) {
		if (packs_known_)
			present_packs_.insert(p.name);
		for (const auto &r : p.records)
			index.add(p.name, r);
	}
	if (index.fresh_count() >= kSegmentEntries)
		segs_.write_fresh();
	if (done.error)
		std::rethrow_exception(done.error);
}

void Repository::settle_uploads_locked(std::unique_lock<std::mutex> &lk, const char *what)
{
	sink_.settle(lk);
	apply_uploads_locked();
	if (segs_.index().has_fresh() || !sink_.idle())
		fail(Code::Error, std::string(what) + " with unsaved blobs");
}

// Write order: the packs, then the index segment naming them (then the caller's snapshot).
void Repository::flush()
{
	std::unique_lock lk(mu_);
	if (!index_loaded_)
		return; // nothing was stored: put_blob loads the index first
	sink_.finish_all(lk);
	apply_uploads_locked();
	if (segs_.index().has_fresh())
		segs_.write_fresh();
	if (!segs_.take_written())
		return;
	segs_.compact();
	sync_table_locked();
	if (cache_)
		cache_->flush();
}

// The index lifecycle (IndexSegments), as gc, repair and check use it.

void Repository::index_reloaded_locked()
{
	unindexed_.clear();
	scanned_packs_.clear();
}

std::vector<std::string> Repository::reload_index()
{
	std::unique_lock lk(mu_);
	settle_uploads_locked(lk, "reload_index");
	segs_.load();
	index_loaded_ = true;
	index_reloaded_locked();
	return segs_.live();
}

void Repository::rewrite_index(const std::function<bool(const Id &pack)> &keep,
                               const std::vector<std::string> &old_segments)
{
	std::unique_lock lk(mu_);
	settle_uploads_locked(lk, "rewrite_index");
	if (!segs_.rewrite(keep, old_segments))
		return;
	index_reloaded_locked();
	sync_table_locked();
	if (cache_)
		cache_->flush();
}

void Repository::replace_index(const std::map<Id, std::vector<BlobRecord>> &by_pack,
                               const std::vector<std::string> &old_segments)
{
	std::unique_lock lk(mu_);
	settle_uploads_locked(lk, "replace_index");
	Index next;
	for (const auto &[pack, recs] : by_pack)
		for (const auto &r : recs)
			next.add(pack, r);
	segs_.replace(next, old_segments);
	index_reloaded_locked();
	sync_table_locked();
	if (cache_)
		cache_->flush();
}

void Repository::compact_index()
{
	std::lock_guard lk(mu_);
	ensure_index_locked();
	segs_.compact();
	sync_table_locked();
	if (cache_)
		cache_->flush();
}

void Repository::index_pack(const Id &pack, const std::vector<BlobRecord> &records)
{
	std::lock_guard lk(mu_);
	ensure_index_locked();
	for (const auto &r : records)
		segs_.index().add(pack, r);
}

std::vector<std::pair<std::string, uint64_t>> Repository::live_segments() const
{
	std::lock_guard lk(mu_);
	return segs_.live_entries();
}

void Repository::read_segment(const std::string &name,
                              const std::function<void(const Id &pack, const BlobRecord &rec)> &fn)
{
	Bytes body;
	{
		std::lock_guard lk(mu_);
		body = segs_.fetch(name);
	}
	Index one;
	one.load_segment(body);
	one.finish_load();
	one.for_each_saved([&](const Id &id, const BlobLoc &loc) { fn(one.pack_name(loc.pack), one.record(id, loc)); });
}

void Repository::for_each_indexed(const std::function<void(const Id &pack, const BlobRecord &rec)> &fn)
{
	std::lock_guard lk(mu_);
	ensure_index_locked();
	const Index &index = segs_.index();
	index.for_each_saved([&](const Id &id, const BlobLoc &loc) { fn(index.pack_name(loc.pack), index.record(id, loc)); });
}

} // namespace plakar
