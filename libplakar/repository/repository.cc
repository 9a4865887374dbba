// The Repository facade: creating and opening (keys, CONFIG, the agent, the cache), blob ids,
// snapshot headers, the write lock of a push. The rest of the class is in parts named after
// their concept:
// repository_index.cc (the index lifecycle), repository_write.cc (sealing blobs into packs,
// uploads) and repository_read.cc (locating and reading blobs: cache, index table, fallbacks).
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
