#include "snapshot/progress.h"

#include "base/error.h"

namespace plakar {

void emit(const ProgressFn &fn, EventKind kind, const Counters &c, const std::string *path, const std::string *message)
{
	if (!fn)
		return;
	Event ev{kind, path, message, c};
	if (!fn(ev))
		fail(Code::Canceled, "canceled");
}

} // namespace plakar
