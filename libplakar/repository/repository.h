// A repository: a Store plus the keys, the chunker, the blob index and the open packs.
//
// Blobs are deduplicated by id (a keyed MAC of their plaintext). Write order, which makes a
// crash at any point safe: packs, then the index segment naming them, then snapshot headers
// (see flush()). put_blob() may be called from several threads; everything else serializes.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "chunking/fastcdc.h"
#include "repository/cache.h"
#include "repository/index.h"
#include "repository/index_table.h"
#include "repository/keys.h"
#include "repository/pack.h"
#include "repository/pack_sink.h"
#include "repository/sealed.h"
#include "repository/segments.h"
#include "storage/store.h"

namespace plakar {

class RepoLock;

struct CreateOptions {
	bool encryption = true;
	std::optional<std::string> passphrase;
	KdfParams kdf;
	int compression_level = 3;
	ChunkParams chunks;
	uint32_t pack_size = 16 * 1024 * 1024;
	StoreOptions store; // credentials of the store (plakar://)
};

struct OpenOptions {
	bool use_cache = true;
	std::string cache_dir;  // this repository's cache; "" = Cache::default_dir(config, cache_root)
	std::string cache_root; // where the caches of all repositories live; "" = ~/.cache/plakar
	StoreOptions store;     // credentials of the store (plakar://)
	// A key agent's socket (agent/agent.h): the master key is asked there first, and
	// handed to it after a passphrase opened the repository. "" = no agent.
	std::string agent;
	// The CPU budget of this handle's pipelines (push): threads working at once. 0 = the
	// default, max(1, cores - 1); more than the cores usable is clamped.
	unsigned cpu = 0;
};

struct RepoStats {
	uint64_t blobs_written = 0;
	uint64_t bytes_written = 0; // sealed bytes appended to packs
	uint64_t segments_fetched = 0; // index segments read from the store (not from the cache)
	uint64_t segments_merged = 0;  // merged index segments written (tiers, gc, repair)
	uint64_t meta_fetched = 0;     // metadata blobs read from the store (not from the cache)
	uint64_t index_loads = 0;      // times the whole index was loaded (at most once per handle)
	uint64_t table_hits = 0;       // blobs located through the cached index table, index not loaded
	uint64_t tables_written = 0;   // times this handle rewrote the cached index table
	uint64_t reads_unprotected = 0; // reader locks that could not be written (repository/lock.h)
};

class Repository {
public:
	static std::unique_ptr<Repository> create(const std::string &uri, const CreateOptions &opts);
	static std::unique_ptr<Repository> create(std::unique_ptr<Store> store, const CreateOptions &opts);
	// passphrase: nullopt when none was given (fine for plaintext repositories).
	static std::unique_ptr<Repository> open(const std::string &uri, const std::optional<std::string> &passphrase,
	                                        const OpenOptions &opts = {});
	static std::unique_ptr<Repository> open(std::unique_ptr<Store> store, const std::optional<std::string> &passphrase,
	                                        const OpenOptions &opts = {});
	~Repository();

	const Config &config() const { return cfg_; }
	bool encrypted() const { return cfg_.encrypted; }
	const Chunker &chunker() const { return *chunker_; }
	Store &store() { return *store_; }
	// The cache in use, or nullptr.
	Cache *cache() { return cache_.get(); }

	// One call of an embedder (each C ABI entry point) on this handle, held for its duration:
	// calls on one handle are serialized (recursively: a callback of a call may make another),
	// and when the outermost call ends what it wrote to the local cache is committed, so no
	// cache transaction outlives a call (another handle or process waiting on the cache would
	// otherwise wait for this one's next call).
	class Call {
	public:
		explicit Call(Repository &r) : r_(r), lk_(r.call_mu_) {}
		~Call();
		Call(const Call &) = delete;
		Call &operator=(const Call &) = delete;

	private:
		Repository &r_;
		std::lock_guard<std::recursive_mutex> lk_;
	};
	// The CPU budget (OpenOptions::cpu, resolved): at least 1, at most the cores usable.
	unsigned cpu() const { return cpu_; }

	// The id of a blob with this content (thread-safe; uses a per-thread MAC context).
	Id blob_id(ByteView plaintext) const;
	bool has_blob(const Id &id);
	// Stores a blob unless one with this id exists. Returns true when it was new. Thread-safe.
	bool put_blob(BlobType type, const Id &id, ByteView plaintext);
	// Reads, authenticates and decompresses a blob. Throws Code::NotFound when the index does not
	// know it, Code::Corrupt when it does not verify or is not of the expected type.
	// from_store: bypass the local cache (and the index table) and read what the store holds;
	// what check uses to prove a restore would succeed.
	Bytes get_blob(const Id &id, BlobType expected, bool from_store = false);
	// get_blob into bufs, without the cache: a view into bufs, valid until their next use. What
	// bulk readers (pull, check -read-data) use with one BlobBuffers per thread.
	ByteView get_blob(const Id &id, BlobType expected, BlobBuffers &bufs);
	// Every read checks the plaintext against its id (a keyed MAC): a writer holding the key
	// (an append-only token holder) can store other bytes under an existing id, and a reader
	// must never return them. When a copy fails (damaged, forged, or its pack gone), the other
	// indexed copies of the id are tried; a bad copy passed over is recorded here. Taken (and
	// cleared) by whoever reports them: "blob ID in pack P: why". Thread-safe.
	std::vector<std::string> take_bad_copies();

	// Where a blob is stored: from the index (refreshed on a miss), else from the tables of
	// contents of packs the index does not name (a blob that lost its index entry is still
	// found). nullopt when it is nowhere.
	struct BlobPlace {
		Id pack;
		BlobRecord rec;
		bool indexed = true;
	};
	std::optional<BlobPlace> locate_blob(const Id &id);
	// Every place holding the blob: all its index entries, else what locate_blob finds.
	std::vector<BlobPlace> locate_all(const Id &id);
	// Batched reading (pull reads the blobs of many small files in a few ranges): where a blob
	// most likely is. Like get_blob, the cached index table answers before the index is loaded;
	// its answer is a hint, and a wrong one fails in open_blob. nullopt when it is nowhere.
	std::optional<BlobPlace> place_blob(const Id &id);
	// Opens a blob the caller read itself: sealed holds the rec.length bytes at rec.offset of
	// the pack, and is decrypted in place (its bytes are lost). The view is into sealed or
	// plain. Throws Code::Corrupt (then get_blob decides: it also tries other copies).
	ByteView open_blob(const Id &id, BlobType expected, const Id &pack, const BlobRecord &rec,
	                   std::span<uint8_t> sealed, Scratch &plain);
	// Calls fn for every indexed blob (loads the index). fn must not call back into the
	// repository.
	void for_each_indexed(const std::function<void(const Id &pack, const BlobRecord &rec)> &fn);
	// The table of contents of a pack of pack_size bytes, read alone (trailer, then the table):
	// authenticated, no blob read. Throws Code::NotFound, Code::Corrupt.
	std::vector<BlobRecord> pack_toc(const Id &pack, uint64_t pack_size);
	// Garbage collection support (snapshot/gc.cc). reload_index() loads the index afresh from
	// the store and returns the names of the live segments it loaded (superseded ones are
	// left out: superseded_segments() names those the store still lists). rewrite_index()
	// replaces the given live segments that name a pack keep() refuses by one merged segment
	// superseding them, holding their entries whose pack keep() accepts (the old ones stay
	// until gc deletes them: docs/format.md, "Index segments"); segments other processes wrote
	// meanwhile are left alone. compact_index() merges small segments (tiers) until each tier
	// is within bounds. copy_blob() stores a blob again, in a new pack, even though the index
	// has it (repacking); index_pack() indexes blobs found in a pack's table of contents. Both
	// take effect at the next flush().
	std::vector<std::string> reload_index();
	// Whether the loaded index names this blob (no refresh, no scan of unindexed packs).
	bool is_indexed(const Id &id)
	{
		std::lock_guard lk(mu_);
		ensure_index_locked();
		return segs_.index().contains(id);
	}
	void rewrite_index(const std::function<bool(const Id &pack)> &keep, const std::vector<std::string> &old_segments);
	void compact_index();
	std::vector<std::string> superseded_segments() const
	{
		std::lock_guard lk(mu_);
		return {segs_.superseded().begin(), segs_.superseded().end()};
	}
	// Live index segments (loaded or written by this handle) and their entry counts.
	std::vector<std::pair<std::string, uint64_t>> live_segments() const;
	// Calls fn for every entry of one index segment. Throws Code::Corrupt when it is damaged.
	void read_segment(const std::string &name, const std::function<void(const Id &pack, const BlobRecord &rec)> &fn);
	// One segment holding exactly these entries, superseding old_segments (repair).
	void replace_index(const std::map<Id, std::vector<BlobRecord>> &by_pack, const std::vector<std::string> &old_segments);
	void copy_blob(BlobType type, const Id &id, ByteView plaintext);
	void index_pack(const Id &pack, const std::vector<BlobRecord> &records);

	// The reading key of a pack (its header is read once and kept).
	std::shared_ptr<PackKey> pack_key(const Id &pack);

	// Writes the open packs and an index segment for everything stored since the last flush.
	void flush();
	RepoStats stats() const;
	Index::Summary index_summary()
	{
		std::lock_guard lk(mu_);
		ensure_index_locked();
		return segs_.index().summary();
	}

	// Sealed objects of other kinds (locks): stored and read under this repository's keys.
	void put_sealed(Kind kind, ObjectKind what, const std::string &name, ByteView body)
	{
		store_->put(kind, name, seal_object(keys_, cfg_.encrypted, what, name, body, cfg_.compression_level));
	}
	Bytes get_sealed(Kind kind, ObjectKind what, const std::string &name)
	{
		return open_object(keys_, cfg_.encrypted, what, name, store_->get(kind, name));
	}
	Bytes open_sealed(ObjectKind what, const std::string &name, ByteView raw)
	{
		return open_object(keys_, cfg_.encrypted, what, name, raw);
	}

	// Called by a writer (push) once it holds its lock: the index is loaded, or brought up to
	// date (reloaded whole when a gc rewrote it since), and the blobs of packs no segment
	// names are adopted (indexed by this writer's next segment).
	void begin_write();
	void remove_snapshot(const std::string &name);

	// The reader lock shared by this handle's readers (protect_reads, repository/lock.h).
	struct ReaderSlot {
		std::mutex mu;
		std::weak_ptr<RepoLock> lock;
	};
	ReaderSlot &reader_slot() { return reader_slot_; }
	void count_unprotected_read()
	{
		std::lock_guard lk(mu_);
		stats_.reads_unprotected++;
	}

	void put_snapshot(const std::string &name, ByteView body);
	Bytes get_snapshot(const std::string &name);
	std::vector<std::string> list_snapshots();

private:
	Repository(std::unique_ptr<Store> store, Config cfg, KeyRing keys);
	static std::unique_ptr<Repository> finish_open(std::unique_ptr<Store> store, Config cfg, KeyRing keys,
	                                               const OpenOptions &opts);
	// The index is loaded on first use: reading a snapshot whose directory nodes are all in the
	// local cache needs no index at all (ls, stat, diff, locate).
	void ensure_index_locked()
	{
		if (!index_loaded_) {
			segs_.load();
			index_loaded_ = true;
			sync_table_locked();
		}
	}
	// The index was loaded afresh (gc, repair, a fallback read): what was learnt of packs it
	// did not name is forgotten.
	void index_reloaded_locked();
	// Rewrites the cached index table when it does not cover exactly the segments loaded.
	void sync_table_locked();
	// Reads the blob at a known location and checks it against its id and type.
	Bytes read_blob(const Id &id, BlobType expected, const Id &pack, const BlobRecord &rec, bool cache_it);
	ByteView read_blob(const Id &id, BlobType expected, const Id &pack, const BlobRecord &rec, BlobBuffers &bufs);
	// Finds where a blob lies (cached table, index, packs the index does not name) and calls
	// read(pack, rec) there; when its pack is gone, tries the other copies the index knows.
	template <class Read> auto read_located(const Id &id, bool from_store, Read read) -> decltype(read(Id(), BlobRecord()));
	// The cached index table, while point lookups may still use it (nullptr otherwise).
	std::shared_ptr<IndexTable> lookup_table();
	// Looks a blob up in the index, refreshing it on a miss, then in the packs it does not name.
	std::optional<BlobPlace> locate_locked(std::unique_lock<std::mutex> &lk, const Id &id);
	// Reads the tables of contents of the packs the index does not name (once per pack).
	void scan_unindexed_locked();
	// Whether a writer may reuse the stored copy of a blob instead of storing it.
	bool stored_locked(const Id &id);
	std::vector<BlobRecord> toc_of(const PackKey &key, const Id &pack, uint64_t pack_size);
	// Indexes the packs the sink stored; rethrows the first upload failure.
	void apply_uploads_locked();
	// Waits (with lk released: the handle's readers and writers go on) until the sink stored or
	// failed every pack, then applies what it did; fails when blobs are still unsaved (what
	// replaces or reloads the index must not lose them).
	void settle_uploads_locked(std::unique_lock<std::mutex> &lk, const char *what);

	std::unique_ptr<Store> store_;
	std::unique_ptr<Cache> cache_;
	Config cfg_;
	KeyRing keys_;
	std::unique_ptr<Chunker> chunker_;
	crypto::Mac id_mac_;
	unsigned cpu_ = 1;
	uint64_t serial_; // distinguishes repositories in per-thread caches

	mutable std::mutex mu_; // over everything below, the index segments and the sink included
	std::recursive_mutex call_mu_; // Call
	IndexSegments segs_;   // the index and its segments
	bool index_loaded_ = false;
	// The cached index table, opened on the first lookup made before the index is loaded.
	std::shared_ptr<IndexTable> table_;
	bool table_opened_ = false;
	std::map<Id, std::shared_ptr<PackKey>> key_cache_;
	// Blobs found in packs the index does not name, and the packs already scanned.
	std::unordered_map<Id, BlobPlace, IdHash> unindexed_;
	std::unordered_set<Id, IdHash> scanned_packs_;
	// The packs that exist, as a writer listed them (begin_write) plus those it wrote since.
	bool packs_known_ = false;
	std::unordered_set<Id, IdHash> present_packs_;
	RepoStats stats_;
	std::vector<std::string> bad_copies_;
	ReaderSlot reader_slot_;
	PackSink sink_; // last: its uploader stops before the rest goes
};

} // namespace plakar
