// Filesystem store: one file per object under a root directory.
//
//   ROOT/CONFIG              the repository configuration (written last by create)
//   ROOT/packs/XX/NAME       packfiles, fanned out by the first two hex digits of NAME
//   ROOT/index/NAME          index segments
//   ROOT/snapshots/NAME      snapshot headers
//   ROOT/keys/NAME           wrapped master keys
//   ROOT/locks/NAME          locks
//   ROOT/tmp/                staging for atomic writes (temp file, fsync, rename, fsync dir)
#pragma once

#include <list>
#include <memory>
#include <mutex>

#include "base/fd.h"

#include "storage/store.h"

namespace plakar {

class FsStore : public Store {
public:
	explicit FsStore(std::string root);

	void create(ByteView config, const std::string &key_name, ByteView key) override;
	Bytes open() override;
	void put(Kind kind, const std::string &name, ByteView data) override;
	Bytes get(Kind kind, const std::string &name) override;
	Bytes get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length) override;
	void read_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length, uint8_t *dst) override;
	uint64_t size(Kind kind, const std::string &name) override;
	std::vector<std::string> list(Kind kind) override;
	void remove(Kind kind, const std::string &name) override;
	uint64_t remove_stale_temporaries(std::chrono::seconds min_age) override;
	std::string location() const override { return root_; }
	std::vector<std::string> local_paths() const override { return {root_}; }

private:
	std::string dir_of(Kind kind, const std::string &name) const;
	std::string path_of(Kind kind, const std::string &name) const;
	void write_atomic(const std::string &dir, const std::string &path, ByteView data);
	std::shared_ptr<Fd> open_pack(const std::string &name, const std::string &path);
	std::string root_;
	// Packs opened for ranged reads, most recent first: a restore reads thousands of blobs from
	// each pack, and an open per blob costs a path lookup. A pack is never rewritten in place
	// (new content gets a new name), so a kept descriptor reads what the name held; remove()
	// drops it.
	std::mutex fds_mu_;
	std::list<std::pair<std::string, std::shared_ptr<Fd>>> fds_;
};

} // namespace plakar
