// Repair: the index rebuilt from the packs' own tables of contents (docs/cli.md, "repair").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace plakar {

class Repository;

struct RepairReport {
	uint64_t packs = 0;            // packs whose table of contents was read
	uint64_t blobs = 0;            // entries in the rebuilt index
	uint64_t added = 0;            // blobs present in a pack that the index lacked
	uint64_t dropped = 0;          // index entries naming packs that are gone
	uint64_t segments_before = 0;  // index segments replaced
	uint64_t unindexed_damaged = 0; // read_data: blobs that failed authentication, left out
	std::vector<std::string> damaged; // "pack <id>: ..." / "index segment <name>: ...", kept as they were
	bool applied = false;
};

// Rebuilds the index (under the exclusive lock): every blob of every readable pack's table of
// contents, plus the old entries of packs whose table of contents does not open; entries
// naming packs that are gone are dropped. With read_data, every pack is read whole and a
// blob that fails authentication is left out of the index, so the next push that meets its
// content stores it again (and every snapshot referencing it is whole again). With apply
// false, only reports. damaged (may be empty) hears each damaged object before anything is
// written; returning false cancels (Code::Canceled, nothing written).
RepairReport repair_index(Repository &repo, bool apply, bool read_data = false,
                          const std::function<bool(const std::string &)> &damaged = {});

} // namespace plakar
