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
