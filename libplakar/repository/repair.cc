#include "repository/repair.h"

#include <map>
#include <set>
#include <unordered_set>

#include "base/error.h"
#include "crypto/crypto.h"
#include "repository/lock.h"
#include "repository/repository.h"

namespace plakar {

RepairReport repair_index(Repository &repo, bool apply, bool read_data,
                          const std::function<bool(const std::string &)> &damaged)
{
	RepairReport rep;
	std::unique_ptr<RepoLock> lock;
	if (apply)
		lock = RepoLock::acquire(repo, LockType::Exclusive);
	// The old index, segment by segment: a damaged segment is skipped (and replaced).
	std::vector<std::string> segments = repo.store().list(Kind::Index);
	rep.segments_before = segments.size();
	std::map<Id, std::vector<BlobRecord>> old;
	std::unordered_set<Id, IdHash> old_ids;
	for (const auto &s : segments) {
		try {
			repo.read_segment(s, [&](const Id &pack, const BlobRecord &r) {
				old[pack].push_back(r);
				old_ids.insert(r.id);
			});
		} catch (const Error &e) {
			if (e.is_not_found())
				continue;
			rep.damaged.push_back("index segment " + s + ": " + e.what());
		}
	}
	// The packs' own tables of contents.
	std::map<Id, std::vector<BlobRecord>> next;
	std::set<Id> present;
	for (const auto &name : repo.store().list(Kind::Pack)) {
		Id pack;
		try {
			pack = Id::from_hex(name);
		} catch (const Error &) {
			continue;
		}
		try {
			std::vector<BlobRecord> toc;
			if (read_data) {
				Bytes whole = repo.store().get(Kind::Pack, name);
				auto key = repo.pack_key(pack);
				std::vector<BlobRecord> good;
				for (const auto &r : key->read_toc(whole)) {
					try {
						Bytes plain = key->blob_plaintext(r, ByteView(whole).subspan(r.offset, r.length));
						if (!crypto::equal(repo.blob_id(plain).view(), r.id.view()))
							fail(Code::Corrupt, "blob " + r.id.hex().substr(0, 16) + " does not match its id");
						good.push_back(r);
					} catch (const Error &e) {
						if (e.code() != Code::Corrupt)
							throw;
						rep.unindexed_damaged++;
						rep.damaged.push_back("pack " + name + ": " + e.what() + " (left out of the index)");
					}
				}
				toc = std::move(good);
			} else {
				toc = repo.pack_toc(pack, repo.store().size(Kind::Pack, name));
			}
			present.insert(pack);
			rep.packs++;
			for (const auto &r : toc)
				if (!old_ids.count(r.id))
					rep.added++;
			next[pack] = std::move(toc);
		} catch (const Error &e) {
			if (e.is_not_found())
				continue; // removed meanwhile
			present.insert(pack);
			rep.damaged.push_back("pack " + name + ": " + e.what());
			// Its blobs may still be readable one by one: keep what the index said.
			auto it = old.find(pack);
			if (it != old.end())
				next[pack] = it->second;
		}
	}
	for (const auto &[pack, recs] : old)
		if (!present.count(pack))
			rep.dropped += recs.size();
	for (const auto &[pack, recs] : next)
		rep.blobs += recs.size();
	if (damaged)
		for (const auto &d : rep.damaged)
			if (!damaged(d))
				fail(Code::Canceled, "repair canceled, nothing written");
	if (apply) {
		repo.replace_index(next, segments);
		rep.applied = true;
	}
	return rep;
}

} // namespace plakar
