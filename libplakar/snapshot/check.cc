#include "snapshot/check.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "base/pool.h"
#include "crypto/crypto.h"
#include "repository/repository.h"
#include "snapshot/codec.h"
#include "snapshot/gc.h"

namespace plakar {

namespace {

struct SkipDirectory {};

// Chunks are handed to the workers in batches of this many, or this many sealed bytes.
constexpr size_t kBatchChunks = 16384;
constexpr uint64_t kBatchBytes = 64 << 20;
// Runs of chunks closer than this in a pack are read in one request (the gap read through),
// up to this much per request.
constexpr uint64_t kReadGap = 256 * 1024;
constexpr uint64_t kReadRunMax = 16 << 20;

std::string short_id(const Id &id) { return id.hex().substr(0, 16); }

const char *type_name(BlobType t)
{
	switch (t) {
	case BlobType::Chunk: return "chunk";
	case BlobType::Tree: return "directory node";
	case BlobType::ChunkList: return "chunk list";
	}
	return "blob";
}

class Checker {
public:
	Checker(Repository &repo, const CheckOptions &o, CheckReport &rep) : repo_(repo), o_(o), rep_(rep) {}

	void snapshots();
	void repository();

	// What a worker found in one pack (Checker::repository, step 2).
	struct PackResult {
		std::vector<CheckProblem> problems;
		std::vector<std::pair<Id, uint32_t>> blobs; // id and stored length, from the pack itself
		bool read = false, unindexed = false;
	};
	using IndexedByPack = std::unordered_map<Id, std::vector<BlobRecord>, IdHash>;
	using RefCounts = std::unordered_map<Id, uint32_t, IdHash>;
	void check_pack(const std::string &name, const Id &pack, const IndexedByPack &indexed, PackResult &out);
	RefCounts walk_snapshots();
	void check_references(const RefCounts &refs);
	void report_packs(std::vector<PackResult> &results, const IndexedByPack &indexed,
	                  const std::unordered_set<Id, IdHash> &present, const RefCounts &refs);

private:
	// How the walk treats each blob it meets. Read: directory nodes and chunk lists are read
	// and verified as the walk meets them; chunks are located then, and read after the walk
	// (read_chunks). Report: a second walk, only when chunks turned out damaged, naming every
	// file that references one (everything else was said by the first walk).
	enum class Mode { Read, Exists, Collect, Report };

	void problem(Code code, std::string object, std::string message)
	{
		std::lock_guard lk(mu_);
		rep_.problems.push_back({code, std::move(object), std::move(message)});
	}
	void progress(const std::string &stage, uint64_t done, uint64_t total)
	{
		if (o_.progress && !o_.progress(stage, done, total))
			fail(Code::Canceled, "check canceled");
	}
	static std::string where(const SnapshotHeader &h, const std::string &path)
	{
		return h.id_string() + ":" + (path.empty() ? "/" : path);
	}
	// The object a problem names, spelled out only when there is a problem (a check meets
	// every blob of every snapshot).
	struct Where {
		const SnapshotHeader &h;
		const std::string &path;
		operator std::string() const { return Checker::where(h, path); }
	};
	// Checks one referenced blob; false when it is missing or damaged (a problem was recorded
	// naming object). Each blob is verified once per check.
	bool blob(const Id &id, BlobType type, const Where &object);
	bool exists(const Id &id, BlobType type, const Where &object);
	void walk(const SnapshotHeader &h);
	void walk_dir(const SnapshotHeader &h, const std::string &path, const Id &tree);
	void file(const SnapshotHeader &h, const std::string &path, const Entry &e);
	std::optional<SnapshotHeader> header(const std::string &name);
	// Says a problem found by the walk, unless it is the second walk (said already).
	void walk_problem(Code code, std::string object, std::string message)
	{
		if (mode_ != Mode::Report)
			problem(code, std::move(object), std::move(message));
	}
	// Read mode, after the walk: every chunk met, read once however many snapshots and files
	// share it, pack by pack on the workers, runs of neighbouring chunks in one read.
	struct PackChunks {
		Id pack;
		std::vector<BlobRecord> recs; // sorted by offset
		std::vector<std::tuple<Id, Code, std::string>> bad;
		uint64_t bytes = 0, blobs = 0;
	};
	// Hands the chunks located since the last batch to the workers, pack by pack: reading goes
	// on beside the walk.
	void submit_chunks();
	// After the walk: the last batch, then waits for every batch and collects what they found.
	void read_chunks();
	void read_pack_chunks(PackChunks &job);
	std::optional<uint64_t> pack_size(const Id &pack);
	std::optional<Repository::BlobPlace> locate(const Id &id);

	Repository &repo_;
	const CheckOptions &o_;
	CheckReport &rep_;
	Mode mode_ = Mode::Read;
	std::unordered_map<Id, bool, IdHash> seen_;          // blob -> it was fine
	// Read mode: the chunks located since the last batch, by the pack holding them, and their
	// count and sealed bytes; the batches handed to the workers (kept for their results); the
	// chunks found damaged.
	std::unordered_map<Id, std::vector<BlobRecord>, IdHash> chunks_by_pack_;
	size_t batch_chunks_ = 0;
	uint64_t batch_bytes_ = 0, read_total_ = 0;
	std::atomic<uint64_t> read_done_{0};
	std::deque<PackChunks> jobs_;
	std::unordered_map<Id, std::pair<Code, std::string>, IdHash> bad_chunks_;
	std::unordered_map<Id, std::optional<uint64_t>, IdHash> pack_sizes_;
	std::unordered_set<Id, IdHash> *snap_blobs_ = nullptr; // Collect: the blobs of one snapshot
	// Directories fully checked: not walked again (when collecting references, only unless
	// exact per-snapshot counts were asked for with refcounts).
	std::unordered_set<Id, IdHash> clean_trees_;
	bool skip_clean() const { return mode_ != Mode::Collect || !o_.refcounts; }
	std::string referenced(uint32_t n) const
	{
		return o_.refcounts ? "referenced by " + std::to_string(n) + " snapshot(s)" : "referenced";
	}
	// A referenced blob found only in a pack a gc plan condemned is no damage: a push that was
	// running when gc condemned the pack reused the blob, and the next gc, seeing the push's
	// snapshot, keeps the pack and indexes it again (docs/format.md, two-phase deletion).
	bool awaiting_gc(const Id &pack)
	{
		std::lock_guard lk(plans_mu_);
		if (!plans_read_) {
			plans_read_ = true;
			try {
				for (const auto &p : read_gc_plans(repo_))
					condemned_.insert(p.packs.begin(), p.packs.end());
			} catch (const Error &e) {
				if (e.code() == Code::Canceled)
					throw;
				problem(e.code(), "gc plans", e.what());
			}
		}
		return condemned_.count(pack) != 0;
	}
	std::mutex plans_mu_;
	bool plans_read_ = false;
	std::unordered_set<Id, IdHash> condemned_;
	bool dir_clean_ = true;
	bool index_broken_ = false;
	std::mutex mu_; // rep_ while workers verify packs
	// Read mode: the workers reading chunks (declared last: joined before what they use goes).
	std::unique_ptr<WorkPool> readers_;
};

std::optional<uint64_t> Checker::pack_size(const Id &pack)
{
	auto it = pack_sizes_.find(pack);
	if (it != pack_sizes_.end())
		return it->second;
	std::optional<uint64_t> size;
	try {
		size = repo_.store().size(Kind::Pack, pack.hex());
	} catch (const Error &e) {
		if (!e.is_not_found())
			throw;
	}
	pack_sizes_[pack] = size;
	return size;
}

std::optional<Repository::BlobPlace> Checker::locate(const Id &id)
{
	if (index_broken_)
		return std::nullopt;
	try {
		return repo_.locate_blob(id);
	} catch (const Error &e) {
		if (e.code() == Code::Canceled)
			throw;
		// The index cannot be loaded: said once; blob-level checks stop there.
		problem(e.code(), "index", e.what());
		index_broken_ = true;
		return std::nullopt;
	}
}

bool Checker::exists(const Id &id, BlobType type, const Where &object)
{
	auto first = locate(id);
	if (index_broken_)
		return false;
	if (!first) {
		problem(Code::NotFound, object, std::string(type_name(type)) + " " + short_id(id) + " is missing");
		return false;
	}
	if (!first->indexed && !awaiting_gc(first->pack))
		problem(Code::Corrupt, "blob " + short_id(id),
		        std::string(type_name(type)) + " in pack " + first->pack.hex() + " has no index entry (referenced by " +
		            std::string(object) + "; `plakar repair` restores it)");
	// Any usable copy will do (a blob stored again after its pack was lost has two).
	std::string why;
	Code code = Code::NotFound;
	for (const auto &place : first->indexed ? repo_.locate_all(id) : std::vector<Repository::BlobPlace>{*first}) {
		if (place.rec.type != type) {
			why = "blob " + short_id(id) + " is a " + type_name(place.rec.type) + ", not a " + type_name(type);
			code = Code::Corrupt;
			continue;
		}
		auto size = pack_size(place.pack);
		if (!size) {
			if (why.empty())
				why = std::string(type_name(type)) + " " + short_id(id) + ": pack " + place.pack.hex() + " is missing";
			continue;
		}
		if (uint64_t(place.rec.offset) + place.rec.length > *size) {
			why = std::string(type_name(type)) + " " + short_id(id) + ": pack " + place.pack.hex() + " is truncated";
			code = Code::Corrupt;
			continue;
		}
		return true; // present, and restorable even when unindexed
	}
	problem(code, object, why);
	return false;
}

bool Checker::blob(const Id &id, BlobType type, const Where &object)
{
	if (snap_blobs_)
		snap_blobs_->insert(id);
	if (mode_ == Mode::Report) {
		if (type != BlobType::Chunk) {
			auto it = seen_.find(id);
			return it != seen_.end() && it->second;
		}
		auto bad = bad_chunks_.find(id);
		if (bad == bad_chunks_.end())
			return true;
		problem(bad->second.first, object, "chunk " + short_id(id) + ": " + bad->second.second);
		return false;
	}
	auto it = seen_.find(id);
	if (it != seen_.end()) {
		if (!it->second)
			problem(Code::Corrupt, object, std::string(type_name(type)) + " " + short_id(id) + " is damaged or missing");
		return it->second;
	}
	if (mode_ == Mode::Read && type == BlobType::Chunk) {
		// Read after the walk, with the other chunks of its pack (read_chunks).
		auto place = locate(id);
		if (place) {
			chunks_by_pack_[place->pack].push_back(place->rec);
			batch_bytes_ += place->rec.length;
			if (++batch_chunks_ >= kBatchChunks || batch_bytes_ >= kBatchBytes)
				submit_chunks();
		} else if (!index_broken_)
			problem(Code::NotFound, object, "chunk " + short_id(id) + " is missing");
		seen_[id] = place.has_value();
		return place.has_value();
	}
	// Exists: the index and the pack's size. Read: everything is read from the store and
	// verified. Collect: existence for chunks, and directory nodes and chunk lists read.
	bool ok = mode_ == Mode::Read ? (locate(id), !index_broken_) : exists(id, type, object);
	if (ok && (mode_ == Mode::Read || (mode_ == Mode::Collect && type != BlobType::Chunk))) {
		try {
			Bytes b = repo_.get_blob(id, type, true);
			rep_.bytes += b.size();
		} catch (const Error &e) {
			if (e.code() == Code::Canceled)
				throw;
			problem(e.code(), object, std::string(type_name(type)) + " " + short_id(id) + ": " + e.what());
			ok = false;
		}
	}
	seen_[id] = ok;
	if (ok)
		rep_.blobs++;
	return ok;
}

void Checker::file(const SnapshotHeader &h, const std::string &path, const Entry &e)
{
	if (!e.error.empty())
		return; // the push could not read it and said so; nothing was stored
	std::vector<ChunkRef> chunks;
	if (e.has_list) {
		if (!blob(e.list, BlobType::ChunkList, Where{h, path})) {
			dir_clean_ = false;
			return;
		}
		try {
			chunks = file_chunks(repo_, e); // verified just above; now from the cache if any
		} catch (const Error &err) {
			if (err.code() == Code::Canceled)
				throw;
			walk_problem(err.code(), where(h, path), std::string("chunk list ") + short_id(e.list) + ": " + err.what());
			seen_[e.list] = false;
			dir_clean_ = false;
			return;
		}
	} else {
		chunks = e.chunks;
	}
	uint64_t total = 0;
	for (const auto &c : chunks) {
		total += c.len;
		if (!blob(c.id, BlobType::Chunk, Where{h, path}))
			dir_clean_ = false;
	}
	if (total != e.size && e.type == EntryType::File) {
		walk_problem(Code::Corrupt, where(h, path),
		             "chunks add up to " + std::to_string(total) + " bytes, the entry says " + std::to_string(e.size));
		dir_clean_ = false;
	}
}

void Checker::walk_dir(const SnapshotHeader &h, const std::string &path, const Id &tree)
{
	// A directory already found clean (in this snapshot or another) is not walked again,
	// except when collecting references (each snapshot counts its own).
	if (skip_clean() && clean_trees_.count(tree))
		return;
	bool outer_clean = dir_clean_;
	dir_clean_ = true;
	std::vector<std::pair<std::string, Id>> subdirs;
	try {
		// Each node is verified (read from the store, or found) before the iterator reads it,
		// from the cache when there is one.
		DirIterator it(repo_, tree);
		it.on_node = [&](const Id &node) {
			if (!blob(node, BlobType::Tree, Where{h, path}))
				throw SkipDirectory{}; // already reported
		};
		Entry e;
		while (it.next(e)) {
			rep_.entries++;
			std::string p = (path.empty() ? "" : path) + "/" + e.name;
			if (e.type == EntryType::Directory) {
				if (e.has_tree)
					subdirs.emplace_back(std::move(p), e.tree);
			} else if (e.type == EntryType::File) {
				file(h, p, e);
			}
			if ((rep_.entries & 0xfff) == 0)
				progress("snapshot " + h.id_string(), rep_.entries, h.files + h.directories);
		}
	} catch (const SkipDirectory &) {
		dir_clean_ = false;
	} catch (const Error &e) {
		if (e.code() == Code::Canceled)
			throw;
		walk_problem(e.code(), where(h, path), std::string("directory: ") + e.what());
		dir_clean_ = false;
	}
	for (const auto &[p, t] : subdirs)
		walk_dir(h, p, t);
	if (dir_clean_ && skip_clean())
		clean_trees_.insert(tree);
	dir_clean_ = outer_clean && dir_clean_;
}

void Checker::walk(const SnapshotHeader &h)
{
	if (!h.root.has_tree)
		return;
	dir_clean_ = true;
	walk_dir(h, "", h.root.tree);
}

std::optional<SnapshotHeader> Checker::header(const std::string &name)
{
	try {
		auto h = load_snapshot(repo_, name);
		rep_.snapshots++;
		return h;
	} catch (const Error &e) {
		if (e.code() == Code::Canceled)
			throw;
		problem(e.code(), "snapshot " + name, e.what());
		return std::nullopt;
	}
}

void Checker::snapshots()
{
	mode_ = o_.fast ? Mode::Exists : Mode::Read;
	std::vector<std::string> names;
	for (const auto &s : o_.snapshots)
		names.push_back(resolve_snapshot(repo_, s)); // unknown or ambiguous: a usage error
	std::sort(names.begin(), names.end());
	names.erase(std::unique(names.begin(), names.end()), names.end());
	std::vector<SnapshotHeader> walked;
	if (mode_ == Mode::Read)
		readers_ = std::make_unique<WorkPool>(repo_.cpu(), size_t(1) << 30);
	for (const auto &n : names)
		if (auto h = header(n)) {
			walk(*h);
			walked.push_back(std::move(*h));
		}
	if (mode_ != Mode::Read)
		return;
	read_chunks();
	if (bad_chunks_.empty())
		return;
	// Damaged chunks: every file referencing one is named (the walk could not know yet).
	mode_ = Mode::Report;
	clean_trees_.clear();
	for (const auto &h : walked)
		walk(h);
}


void Checker::submit_chunks()
{
	std::vector<Id> packs;
	for (const auto &[pack, recs] : chunks_by_pack_)
		packs.push_back(pack);
	std::sort(packs.begin(), packs.end());
	for (const auto &pack : packs) {
		auto &recs = chunks_by_pack_[pack];
		std::sort(recs.begin(), recs.end(), [](const BlobRecord &a, const BlobRecord &b) { return a.offset < b.offset; });
		jobs_.push_back(PackChunks{pack, std::move(recs), {}, 0, 0});
		PackChunks *job = &jobs_.back();
		readers_->submit([this, job] {
			read_pack_chunks(*job);
			uint64_t n = 0;
			for (const auto &r : job->recs)
				n += r.length;
			job->recs = {}; // its results stay, not its list
			read_done_ += n;
		});
	}
	chunks_by_pack_.clear();
	read_total_ += batch_bytes_;
	batch_chunks_ = 0;
	batch_bytes_ = 0;
}

void Checker::read_chunks()
{
	submit_chunks();
	while (!readers_->wait_for(std::chrono::milliseconds(200)))
		progress("reading chunks", read_done_.load(), read_total_);
	readers_->wait();
	readers_.reset();
	for (auto &j : jobs_) {
		rep_.bytes += j.bytes;
		rep_.blobs += j.blobs;
		for (auto &[id, code, why] : j.bad) {
			seen_[id] = false;
			bad_chunks_[id] = {code, std::move(why)};
		}
	}
	jobs_.clear();
}

// One pack's chunks (on a worker). A chunk whose copy here does not verify, or cannot be read,
// is read again through the repository, which tries its other copies: only a chunk with no good
// copy is damaged (a restore would fail on it).
void Checker::read_pack_chunks(PackChunks &job)
{
	const std::string name = job.pack.hex();
	// One buffer per worker, reused run after run, never cleared (each run is read over it).
	thread_local Scratch plain, runs;
	auto &recs = job.recs;
	for (size_t i = 0; i < recs.size();) {
		uint64_t start = recs[i].offset, end = start + recs[i].length;
		size_t j = i + 1;
		while (j < recs.size() && recs[j].offset <= end + kReadGap &&
		       uint64_t(recs[j].offset) + recs[j].length - start <= kReadRunMax) {
			end = std::max<uint64_t>(end, uint64_t(recs[j].offset) + recs[j].length);
			j++;
		}
		uint8_t *run = nullptr;
		try {
			run = runs.get(end - start);
			repo_.store().read_range(Kind::Pack, name, start, end - start, run);
		} catch (const Error &e) {
			if (e.code() == Code::Canceled)
				throw;
			run = nullptr; // each chunk of the run is tried through the repository
		}
		for (size_t k = i; k < j; k++) {
			const BlobRecord &r = recs[k];
			if (run)
				try {
					std::span<uint8_t> sealed(run + (r.offset - start), r.length);
					ByteView p = repo_.open_blob(r.id, BlobType::Chunk, job.pack, r, sealed, plain);
					job.bytes += p.size();
					job.blobs++;
					continue;
				} catch (const Error &e) {
					if (e.code() == Code::Canceled)
						throw;
				}
			try {
				Bytes b = repo_.get_blob(r.id, BlobType::Chunk, true);
				job.bytes += b.size();
				job.blobs++;
			} catch (const Error &e) {
				if (e.code() == Code::Canceled)
					throw;
				job.bad.emplace_back(r.id, e.code(), e.what());
			}
		}
		i = j;
	}
}

// 2, one pack: read (its table of contents, or all of it with -read-data), compared with the
// index, its blobs verified. Runs on the workers.
void Checker::check_pack(const std::string &name, const Id &pack, const IndexedByPack &indexed, PackResult &out)
{
	auto it = indexed.find(pack);
	std::vector<BlobRecord> toc;
	// One buffer per worker, reused pack after pack, never cleared (each pack is read over it).
	thread_local Scratch packs;
	std::span<uint8_t> whole;
	try {
		if (o_.read_data) {
			uint64_t size = repo_.store().size(Kind::Pack, name);
			whole = std::span<uint8_t>(packs.get(size), size);
			repo_.store().read_range(Kind::Pack, name, 0, size, whole.data());
			toc = repo_.pack_key(pack)->read_toc(ByteView(whole.data(), whole.size()));
		} else {
			toc = repo_.pack_toc(pack, repo_.store().size(Kind::Pack, name));
		}
	} catch (const Error &e) {
		if (e.code() == Code::Canceled)
			throw;
		if (!e.is_not_found()) // else removed meanwhile (a concurrent gc)
			out.problems.push_back({e.code(), "pack " + name, e.what()});
		return;
	}
	out.read = true;
	out.unindexed = it == indexed.end();
	out.blobs.reserve(toc.size());
	for (const auto &r : toc)
		out.blobs.emplace_back(r.id, r.length);
	if (it != indexed.end()) {
		std::unordered_map<Id, const BlobRecord *, IdHash> by_id;
		for (const auto &r : toc)
			by_id[r.id] = &r;
		for (const auto &rec : it->second) {
			auto t = by_id.find(rec.id);
			if (t == by_id.end())
				out.problems.push_back({Code::Corrupt, "index",
				                        "blob " + short_id(rec.id) + " is indexed in pack " + name +
				                            ", whose table of contents lacks it"});
			else if (t->second->offset != rec.offset || t->second->length != rec.length ||
			         t->second->type != rec.type || t->second->raw_len != rec.raw_len ||
			         t->second->flags != rec.flags)
				out.problems.push_back({Code::Corrupt, "index",
				                        "blob " + short_id(rec.id) + " in pack " + name +
				                            ": the index and the pack disagree"});
		}
	}
	if (!o_.read_data)
		return;
	uint64_t bytes = 0, blobs = 0;
	auto key = repo_.pack_key(pack);
	thread_local Scratch plain_buf;
	for (const auto &r : toc) {
		try {
			// Decrypted in place: the pack's bytes are not needed after.
			ByteView plain = key->blob_plaintext(r, whole.subspan(r.offset, r.length), plain_buf);
			if (!crypto::equal(repo_.blob_id(plain).view(), r.id.view()))
				fail(Code::Corrupt, "does not match its id");
			bytes += plain.size();
			blobs++;
		} catch (const Error &e) {
			out.problems.push_back({Code::Corrupt, "pack " + name, "blob " + short_id(r.id) + ": " + e.what()});
		}
	}
	std::lock_guard lk(mu_);
	rep_.bytes += bytes;
	rep_.blobs += blobs;
}

// 1. Every snapshot header, every directory node (from the store), and the blobs each snapshot
// references, counted per snapshot.
Checker::RefCounts Checker::walk_snapshots()
{
	RefCounts refs;
	std::vector<std::string> names = repo_.list_snapshots();
	std::sort(names.begin(), names.end());
	size_t done = 0;
	for (const auto &n : names) {
		progress("snapshots", done++, names.size());
		auto h = header(n);
		if (!h)
			continue;
		std::unordered_set<Id, IdHash> mine;
		snap_blobs_ = &mine;
		walk(*h);
		snap_blobs_ = nullptr;
		for (const auto &id : mine)
			refs[id]++;
	}
	return refs;
}

// Referenced blobs that are nowhere, or only in a pack the index does not name.
void Checker::check_references(const RefCounts &refs)
{
	progress("references", 0, refs.size());
	for (const auto &[id, n] : refs) {
		if (seen_.count(id))
			continue;
		auto place = locate(id);
		if (index_broken_)
			break;
		if (!place) {
			problem(Code::NotFound, "blob " + short_id(id), referenced(n) + ", is missing");
		} else if (!place->indexed && !awaiting_gc(place->pack)) {
			problem(Code::Corrupt, "blob " + short_id(id),
			        "in pack " + place->pack.hex() + " has no index entry (" + referenced(n) +
			            "; `plakar repair` restores it)");
		}
	}
}

// 2 (the rest): the packs' results in pack order, unreferenced blobs, and index entries naming
// packs that are gone.
void Checker::report_packs(std::vector<PackResult> &results, const IndexedByPack &indexed,
                           const std::unordered_set<Id, IdHash> &present, const RefCounts &refs)
{
	for (auto &r : results) {
		if (!r.read)
			continue;
		// Not indexed at all: what an interrupted push leaves; garbage unless referenced
		// (reported by check_references).
		if (r.unindexed)
			rep_.unindexed_packs++;
		for (const auto &[id, length] : r.blobs)
			if (!refs.count(id)) {
				rep_.unreferenced_blobs++;
				rep_.unreferenced_bytes += length;
			}
	}
	for (auto &r : results)
		for (auto &f : r.problems)
			rep_.problems.push_back(std::move(f));
	std::vector<Id> gone;
	for (const auto &[pack, recs] : indexed)
		if (!present.count(pack))
			gone.push_back(pack);
	std::sort(gone.begin(), gone.end());
	for (const auto &pack : gone) {
		const auto &recs = indexed.at(pack);
		size_t referenced = 0;
		for (const auto &r : recs)
			referenced += refs.count(r.id);
		problem(Code::NotFound, "pack " + pack.hex(),
		        "is missing: the index names it for " + std::to_string(recs.size()) + " blob(s), " +
		            std::to_string(referenced) + " of them referenced by snapshots");
	}
}

void Checker::repository()
{
	mode_ = Mode::Collect;
	// The index, as the packs are checked against it. A broken one is reported after the
	// snapshots, which are checked all the same.
	IndexedByPack indexed; // pack -> its indexed blobs
	std::optional<Error> index_error;
	try {
		repo_.for_each_indexed([&](const Id &pack, const BlobRecord &rec) { indexed[pack].push_back(rec); });
	} catch (const Error &e) {
		if (e.code() == Code::Canceled)
			throw;
		index_error = e;
	}
	std::vector<std::string> pack_names;
	if (!index_error) {
		pack_names = repo_.store().list(Kind::Pack);
		std::sort(pack_names.begin(), pack_names.end());
	}

	// 2 (started first). Each pack is a task for the workers while this thread walks the
	// snapshots (1). Memory: one pack per running task; the queue holds names. What needs the
	// snapshots' references (unreferenced blobs) is counted after.
	std::vector<PackResult> results(pack_names.size());
	std::unordered_set<Id, IdHash> present;
	std::atomic<size_t> checked{0};
	// Declared after everything its tasks use: destroyed (its running tasks joined) first, also
	// when the walk below throws.
	WorkPool pool(repo_.cpu(), pack_names.size() + 1);
	for (size_t i = 0; i < pack_names.size(); i++) {
		Id pack;
		try {
			pack = Id::from_hex(pack_names[i]);
		} catch (const Error &) {
			continue;
		}
		present.insert(pack);
		rep_.packs++;
		pool.submit([this, &pack_names, &results, &indexed, &checked, i, pack] {
			struct Done {
				std::atomic<size_t> &n;
				~Done() { n++; }
			} done{checked};
			check_pack(pack_names[i], pack, indexed, results[i]);
		});
	}

	RefCounts refs = walk_snapshots();
	check_references(refs);
	if (index_error) {
		if (!index_broken_)
			problem(index_error->code(), "index", index_error->what());
		return;
	}
	while (!pool.wait_for(std::chrono::milliseconds(200)))
		progress(o_.read_data ? "reading packs" : "packs", checked.load(), pack_names.size());
	pool.wait();
	report_packs(results, indexed, present, refs);
	if (o_.refcounts) {
		rep_.refcounts.assign(refs.begin(), refs.end());
		std::sort(rep_.refcounts.begin(), rep_.refcounts.end());
	}
}

} // namespace

CheckReport check(Repository &repo, const CheckOptions &opts)
{
	CheckReport rep;
	Checker c(repo, opts, rep);
	if (opts.snapshots.empty())
		c.repository();
	else
		c.snapshots();
	return rep;
}

} // namespace plakar
