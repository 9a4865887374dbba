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

namespace plakar {

namespace {
// Blobs located through the index table before the index is loaded instead.
constexpr uint64_t kTableLookupsMax = 4096;
constexpr size_t kSegmentEntries = 262144; // about 13 MB encoded
// A pack is also closed at this many blobs: what a writer tracks per blob of its open and
// uploading packs stays bounded when blobs are tiny (a tree of small files).
constexpr size_t kPackMaxBlobs = 32768;
constexpr size_t kKeyCacheMax = 4096;

} // namespace

Repository::Repository(std::unique_ptr<Store> store, Config cfg, KeyRing keys)
    : store_(std::move(store)), cfg_(std::move(cfg)), keys_(std::move(keys)), id_mac_(keys_.blob_id.view())
{
	static std::atomic<uint64_t> serials{0};
	serial_ = ++serials;
	cpu_ = default_cpu_budget();
	chunker_ = std::make_unique<Chunker>(cfg_.chunks, keys_.gear.view());
}

Repository::~Repository()
{
	// Packs still queued are stored (a later writer adopts them); their errors are dropped.
	uploader_.reset();
}

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
		keyfile = wrap_master_key(master, as_bytes(*opts.passphrase), opts.kdf, cfg);
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
				m = unwrap_master_key(store->get(Kind::Key, n), as_bytes(*passphrase), cfg);
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
	return repo;
}

namespace {
// A superseded segment's place in the cache: a marker naming the segment that supersedes it, so
// that later loads skip it without reading it while that one is listed. Real bodies start with
// their version (1 or 2), never 0.
Bytes tombstone(const std::string &superseder)
{
	Bytes b(1 + superseder.size(), 0);
	std::copy(superseder.begin(), superseder.end(), b.begin() + 1);
	return b;
}
std::optional<std::string> tombstone_of(ByteView body)
{
	if (body.empty() || body[0] != 0)
		return std::nullopt;
	return std::string(body.begin() + 1, body.end());
}
} // namespace

void Repository::load_index()
{
	// Never retried: a segment is deleted only by gc, once it is superseded and every process
	// that may have listed it before its successor existed has ended (docs/format.md).
	std::vector<std::string> names = store_->list(Kind::Index);
	std::unordered_set<std::string> listed(names.begin(), names.end());
	Index fresh;
	Staged st = stage_segments_locked(fresh, names, listed, {});
	fresh.finish_load();
	index_ = std::move(fresh);
	stats_.index_loads++;
	if (cache_) {
		// Segments gone from the store (deleted by gc) leave the cache too.
		for (const auto &k : cache_->keys(CacheTable::Segment))
			if (!listed.count(k))
				cache_->remove(CacheTable::Segment, k);
		cache_->flush();
	}
	segments_ = std::move(st.live);
	seg_state_ = std::move(st.state);
	superseded_ = std::set<std::string>(st.superseded.begin(), st.superseded.end());
}

Repository::Staged Repository::stage_segments_locked(Index &into, const std::vector<std::string> &names,
                                                     const std::unordered_set<std::string> &listed,
                                                     const std::unordered_set<std::string> &named)
{
	Staged out;
	std::unordered_map<std::string, std::string> named_by; // superseded -> a segment naming it
	std::vector<std::pair<std::string, size_t>> runs;
	std::vector<std::pair<std::string, std::exception_ptr>> failed;
	std::unordered_set<std::string> marked; // skipped on their cache marker
	for (const auto &n : names) {
		std::optional<Bytes> cached;
		if (cache_)
			if (auto hit = cache_->get(CacheTable::Segment, n)) {
				if (auto by = tombstone_of(*hit); !by)
					cached = std::move(hit); // read once: loaded from here
				else if (listed.count(*by)) {
					named_by.emplace(n, *by);
					marked.insert(n);
					continue;
				}
			}
		size_t run = 0;
		SegmentHead head;
		try {
			head = into.load_segment(cached ? *cached : fetch_segment(n), &run);
		} catch (const Error &e) {
			if (!e.is_not_found() && e.code() != Code::Corrupt && e.code() != Code::Version)
				throw;
			failed.emplace_back(n, std::current_exception());
			continue;
		}
		for (const auto &s : head.supersedes)
			if (s != n) // a segment never hides itself
				named_by.emplace(s, n);
		runs.emplace_back(n, run);
		out.state[n] = SegmentState{head.entries, std::move(head.supersedes)};
	}
	auto superseded = [&](const std::string &n) { return named_by.count(n) || named.count(n); };
	for (const auto &[n, run] : runs) {
		if (!superseded(n)) {
			out.live.push_back(n);
			continue;
		}
		into.unload(run);
		out.state.erase(n);
		out.superseded.push_back(n);
		auto by = named_by.find(n);
		if (cache_ && by != named_by.end())
			cache_->put(CacheTable::Segment, n, tombstone(by->second));
	}
	for (const auto &n : marked)
		out.superseded.push_back(n);
	for (const auto &[n, err] : failed) {
		if (superseded(n))
			continue; // deleted by gc, or damaged: another segment holds its entries
		try {
			std::rethrow_exception(err);
		} catch (const Error &e) {
			if (e.is_not_found())
				fail(Code::Corrupt, "index segment " + n +
				                        " was deleted while the index was being read, and no other segment replaces it");
			throw;
		}
	}
	return out;
}

// The decoded body of an index segment: from the cache, else from the store (then cached).
Bytes Repository::fetch_segment(const std::string &name)
{
	bool marked = false;
	if (cache_)
		if (auto hit = cache_->get(CacheTable::Segment, name)) {
			if (!tombstone_of(*hit))
				return std::move(*hit);
			marked = true; // superseded: read from the store, the marker stays
		}
	Bytes raw = store_->get(Kind::Index, name);
	// A merged segment is sealed as such, and its body says so: the kind is authenticated, so
	// a plain segment (which any writer may add) never supersedes anything.
	bool merged = sealed_kind(raw) == uint8_t(ObjectKind::IndexMerge);
	Bytes body = open_object(keys_, cfg_.encrypted, merged ? ObjectKind::IndexMerge : ObjectKind::IndexSegment, name,
	                         raw);
	if (Index::read_head(body).supersedes.empty() == merged)
		fail(Code::Corrupt, "index segment " + name + ": malformed (" +
		                        (merged ? "a merged segment supersedes nothing" : "a plain segment supersedes others") +
		                        ")");
	stats_.segments_fetched++;
	if (cache_ && !marked)
		cache_->put(CacheTable::Segment, name, body);
	return body;
}

// Loads the index segments that appeared since the index was loaded (other processes'
// pushes, merges, gc). Returns true when there were any.
bool Repository::refresh_index_locked(bool *replaced)
{
	if (replaced)
		*replaced = false;
	std::vector<std::string> names = store_->list(Kind::Index);
	std::unordered_set<std::string> listed(names.begin(), names.end());
	std::vector<std::string> fresh;
	for (const auto &n : names)
		if (!seg_state_.count(n) && !superseded_.count(n))
			fresh.push_back(n);
	if (fresh.empty())
		return false;
	std::unordered_set<std::string> named;
	for (const auto &[n, st] : seg_state_)
		named.insert(st.supersedes.begin(), st.supersedes.end());
	Staged st = stage_segments_locked(index_, fresh, listed, named);
	index_.finish_load();
	// A live segment superseded by a new one: its entries stay in memory (harmless for a
	// merge, which holds them all; a gc's rewrite drops some: a writer reloads, begin_write).
	std::unordered_set<std::string> gone;
	for (const auto &[n, s] : st.state)
		for (const auto &o : s.supersedes)
			if (seg_state_.count(o))
				gone.insert(o);
	if (!gone.empty()) {
		if (replaced)
			*replaced = true;
		std::erase_if(segments_, [&](const std::string &n) { return gone.count(n) != 0; });
		for (const auto &n : gone) {
			seg_state_.erase(n);
			superseded_.insert(n);
		}
	}
	for (auto &n : st.live) {
		seg_state_[n] = std::move(st.state[n]);
		segments_.push_back(std::move(n));
	}
	superseded_.insert(st.superseded.begin(), st.superseded.end());
	return !st.live.empty();
}

std::vector<std::pair<std::string, uint64_t>> Repository::live_segments() const
{
	std::lock_guard lk(mu_);
	std::vector<std::pair<std::string, uint64_t>> out;
	for (const auto &n : segments_) {
		auto it = seg_state_.find(n);
		out.emplace_back(n, it == seg_state_.end() ? 0 : it->second.entries);
	}
	return out;
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

void Repository::read_segment(const std::string &name,
                              const std::function<void(const Id &pack, const BlobRecord &rec)> &fn)
{
	Bytes body;
	{
		std::lock_guard lk(mu_);
		body = fetch_segment(name);
	}
	Index one;
	one.load_segment(body);
	one.finish_load();
	one.for_each_saved([&](const Id &id, const BlobLoc &loc) { fn(one.pack_name(loc.pack), one.record(id, loc)); });
}

void Repository::replace_index(const std::map<Id, std::vector<BlobRecord>> &by_pack,
                               const std::vector<std::string> &old_segments)
{
	std::unique_lock lk(mu_);
	settle_uploads_locked(lk);
	if (index_.has_fresh() || data_pack_ || meta_pack_ || !retired_.empty())
		fail(Code::Error, "replace_index with unsaved blobs");
	Index next;
	for (const auto &[pack, recs] : by_pack)
		for (const auto &r : recs)
			next.add(pack, r);
	replace_segments_locked(next, old_segments);
}

// Writes next's fresh entries as one segment superseding old_segments (they stay until gc
// deletes them: a crash leaves both, never a gap), and reloads what the store holds now: the
// new segment and any other process wrote meanwhile.
void Repository::replace_segments_locked(const Index &next, const std::vector<std::string> &old_segments)
{
	std::vector<std::string> sup = old_segments;
	for (const auto &o : old_segments)
		if (auto it = seg_state_.find(o); it != seg_state_.end())
			for (const auto &t : it->second.supersedes)
				if (superseded_.count(t))
					sup.push_back(t); // still listed: named again, in case o goes first
	write_merged_locked(next.encode_fresh(sup), next.fresh_count(), sup);
	load_index();
	unindexed_.clear();
	scanned_packs_.clear();
	sync_table_locked();
	if (cache_)
		cache_->flush();
}

std::string Repository::write_merged_locked(Bytes body, uint64_t entries, std::vector<std::string> supersedes)
{
	std::sort(supersedes.begin(), supersedes.end());
	supersedes.erase(std::unique(supersedes.begin(), supersedes.end()), supersedes.end());
	std::string name = hex_encode(crypto::random_bytes(32));
	bool merged = !supersedes.empty();
	store_->put(Kind::Index, name,
	            seal_object(keys_, cfg_.encrypted, merged ? ObjectKind::IndexMerge : ObjectKind::IndexSegment, name,
	                        body, cfg_.compression_level));
	stats_.segments_merged += merged;
	if (cache_) {
		cache_->put(CacheTable::Segment, name, body);
		for (const auto &o : supersedes)
			cache_->put(CacheTable::Segment, o, tombstone(name));
	}
	std::unordered_set<std::string> gone(supersedes.begin(), supersedes.end());
	std::erase_if(segments_, [&](const std::string &n) { return gone.count(n) != 0; });
	for (const auto &o : supersedes) {
		seg_state_.erase(o);
		superseded_.insert(o);
	}
	segments_.push_back(name);
	seg_state_[name] = SegmentState{entries, std::move(supersedes)};
	return name;
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

void Repository::index_pack(const Id &pack, const std::vector<BlobRecord> &records)
{
	std::lock_guard lk(mu_);
	ensure_index_locked();
	for (const auto &r : records)
		index_.add(pack, r);
}

std::vector<std::string> Repository::reload_index()
{
	std::unique_lock lk(mu_);
	settle_uploads_locked(lk);
	if (index_.has_fresh() || data_pack_ || meta_pack_ || !retired_.empty())
		fail(Code::Error, "reload_index with unsaved blobs");
	load_index();
	index_loaded_ = true;
	unindexed_.clear();
	scanned_packs_.clear();
	return segments_;
}

void Repository::rewrite_index(const std::function<bool(const Id &pack)> &keep,
                               const std::vector<std::string> &old_segments)
{
	std::unique_lock lk(mu_);
	settle_uploads_locked(lk);
	if (index_.has_fresh())
		fail(Code::Error, "rewrite_index with unsaved blobs");
	// Only the segments naming a pack that goes are rewritten (the cost follows what gc
	// frees, not the size of the index). Segment by segment: a blob indexed twice (a
	// repacked copy) keeps a location in a kept pack, whichever segment names it first.
	Index next;
	std::vector<std::string> affected;
	for (const auto &seg : old_segments) {
		Index one;
		one.load_segment(fetch_segment(seg));
		one.finish_load();
		bool drops = false;
		one.for_each_saved([&](const Id &, const BlobLoc &loc) { drops = drops || !keep(one.pack_name(loc.pack)); });
		if (!drops)
			continue;
		affected.push_back(seg);
		one.for_each_saved([&](const Id &id, const BlobLoc &loc) {
			const Id &pack = one.pack_name(loc.pack);
			if (keep(pack))
				next.add(pack, one.record(id, loc));
		});
	}
	if (affected.empty())
		return;
	replace_segments_locked(next, affected);
}

void Repository::compact_index()
{
	std::lock_guard lk(mu_);
	ensure_index_locked();
	maybe_compact();
	sync_table_locked();
	if (cache_)
		cache_->flush();
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
			if (e.is_not_found() && !index_.has_fresh() && !data_pack_ && !meta_pack_ && retired_.empty()) {
				load_index();
				unindexed_.clear();
				scanned_packs_.clear();
			}
			for (const auto &loc : index_.find_all(id))
				others.push_back(BlobPlace{index_.pack_name(loc.pack), index_.record(id, loc), true});
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
	for (const auto &loc : index_.find_all(id))
		out.push_back(BlobPlace{index_.pack_name(loc.pack), index_.record(id, loc), true});
	return out;
}

std::optional<Repository::BlobPlace> Repository::locate_locked(std::unique_lock<std::mutex> &lk, const Id &id)
{
	ensure_index_locked();
	// A blob still in an open pack: finish that pack first so it can be read like any other
	// (once its blobs are sealed; a full pack is finished by its last sealer).
	if (auto open = open_blobs_.find(id); open != open_blobs_.end()) {
		Id p = open->second;
		sealed_cv_.wait(lk, [&] {
			return std::none_of(sealing_.begin(), sealing_.end(),
			                    [&](const auto &s) { return s.first->name() == p; });
		});
		for (auto *w : {&data_pack_, &meta_pack_})
			if (*w && (*w)->name() == p)
				finish_pack_locked(*w);
		// Its upload is waited for without the lock: the handle's other readers and writers
		// go on meanwhile.
		if (PackUploader *u = uploader_.get()) {
			lk.unlock();
			u->wait_for(p);
			lk.lock();
		}
		apply_uploads_locked();
	}
	auto loc = index_.find(id);
	if (!loc && refresh_index_locked()) {
		loc = index_.find(id); // written by another process since this one loaded the index
		sync_table_locked();
	}
	if (loc)
		return BlobPlace{index_.pack_name(loc->pack), index_.record(id, *loc), true};
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
		if (index_.knows_pack(pack) || !scanned_packs_.insert(pack).second)
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

void Repository::for_each_indexed(const std::function<void(const Id &pack, const BlobRecord &rec)> &fn)
{
	std::lock_guard lk(mu_);
	ensure_index_locked();
	index_.for_each_saved([&](const Id &id, const BlobLoc &loc) { fn(index_.pack_name(loc.pack), index_.record(id, loc)); });
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
	if (cache_it)
		cache_->put(CacheTable::Blob, id.hex(), plain);
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

void Repository::sync_table_locked()
{
	if (!cache_ || !index_loaded_ || index_.has_fresh())
		return;
	if (!table_opened_) {
		table_ = IndexTable::open(cache_->dir(), cache_->subkey("index-table"));
		table_opened_ = true;
	}
	if (!table_ && segments_.empty())
		return; // nothing to locate yet
	if (table_ && !table_->broken()) {
		std::vector<std::string> a = table_->segments(), b = segments_;
		std::sort(a.begin(), a.end());
		std::sort(b.begin(), b.end());
		if (a == b)
			return;
	}
	auto key = cache_->subkey("index-table");
	if (IndexTable::write(cache_->dir(), key, segments_, index_)) {
		stats_.tables_written++;
		table_ = IndexTable::open(cache_->dir(), key);
	}
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

// One index segment for the blobs indexed since the last one (all in stored packs).
void Repository::write_segment_locked()
{
	std::string name = hex_encode(crypto::random_bytes(32));
	Bytes body = index_.encode_fresh();
	store_->put(Kind::Index, name,
	            seal_object(keys_, cfg_.encrypted, ObjectKind::IndexSegment, name, body, cfg_.compression_level));
	if (cache_)
		cache_->put(CacheTable::Segment, name, body);
	seg_state_[name] = SegmentState{index_.fresh_count(), {}};
	index_.commit_fresh();
	segments_.push_back(name);
	wrote_segments_ = true;
}

namespace {
int tier_of(uint64_t entries)
{
	int t = 0;
	for (uint64_t top = kTierBase; entries >= top && t < 30; top *= kSegmentsPerTier)
		t++;
	return t;
}
} // namespace

// Keeps the number of live index segments bounded at a cost that follows what is new: once a
// tier holds kSegmentsPerTier segments, they and the smaller ones are merged into one segment
// superseding them (which may fill the next tier: merged again then). A blob's entry is
// rewritten once per tier it climbs, about log8(blobs / 8192) times in all. Superseded
// segments stay until gc deletes them; segments written meanwhile by other processes are
// merged by whoever finds their tier full next.
void Repository::maybe_compact()
{
	if (store_->append_only())
		return; // a merged segment is refused from a token that may not delete
	for (;;) {
		std::map<int, std::vector<std::string>> tiers;
		for (const auto &n : segments_)
			tiers[tier_of(seg_state_[n].entries)].push_back(n);
		int full = -1;
		for (const auto &[t, v] : tiers)
			if (v.size() >= kSegmentsPerTier) {
				full = t;
				break;
			}
		if (full < 0)
			return;
		std::vector<std::string> chosen, sup;
		for (const auto &[t, v] : tiers)
			if (t <= full)
				chosen.insert(chosen.end(), v.begin(), v.end());
		Index merged;
		for (const auto &c : chosen) {
			merged.load_segment(fetch_segment(c));
			sup.push_back(c);
			for (const auto &o : seg_state_[c].supersedes)
				if (superseded_.count(o))
					sup.push_back(o); // still listed: named again, in case c goes first
		}
		merged.finish_load();
		write_merged_locked(merged.encode_all(sup), merged.size(), sup);
	}
}

RepoStats Repository::stats() const
{
	std::lock_guard lk(mu_);
	return stats_;
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
		refresh_index_locked(&replaced);
		if (replaced && !index_.has_fresh() && !data_pack_ && !meta_pack_ && retired_.empty()) {
			load_index();
			unindexed_.clear();
			scanned_packs_.clear();
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
		if (!index_.contains(id))
			index_.add(place.pack, place.rec);
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

} // namespace plakar
