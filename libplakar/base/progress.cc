#include "base/progress.h"

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

void EventRelay::error(const std::string &path, const std::string &message)
{
	std::lock_guard lk(mu_);
	queued_.emplace_back(path, message);
}

void EventRelay::report(const ProgressFn &fn, const std::function<Counters()> &counters, bool force)
{
	std::vector<std::pair<std::string, std::string>> errs;
	{
		std::lock_guard lk(mu_);
		errs.swap(queued_);
	}
	for (const auto &[path, msg] : errs)
		emit(fn, EventKind::Error, counters(), &path, &msg);
	auto now = std::chrono::steady_clock::now();
	if (fn && (force || now - last_ > std::chrono::milliseconds(200))) {
		last_ = now;
		emit(fn, EventKind::Bytes, counters());
	}
}

} // namespace plakar
