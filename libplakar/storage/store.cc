// What every store shares: the names of kinds and the rule for object names.
#include "storage/store.h"

namespace plakar {

const char *kind_name(Kind k)
{
	switch (k) {
	case Kind::Pack: return "pack";
	case Kind::Index: return "index";
	case Kind::Snapshot: return "snapshot";
	case Kind::Key: return "key";
	case Kind::Lock: return "lock";
	}
	return "object";
}

uint64_t max_object_size(Kind k)
{
	switch (k) {
	case Kind::Pack: return uint64_t(2) << 30;     // packs are at most 1 GiB and one blob
	case Kind::Index: return uint64_t(1) << 30;    // 20 million index entries
	case Kind::Snapshot: return uint64_t(256) << 20;
	case Kind::Key: return 64 << 10;
	case Kind::Lock: return 64 << 20;              // locks and gc plans (a plan lists packs)
	}
	return 0;
}

bool valid_object_name(const std::string &name)
{
	if (name.empty() || name.size() > 128)
		return false;
	for (char c : name)
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-'))
			return false;
	return true;
}

} // namespace plakar
