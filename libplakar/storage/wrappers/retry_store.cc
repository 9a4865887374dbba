#include "storage/wrappers/retry_store.h"

#include <thread>

#include "base/error.h"

namespace plakar {

template <class F> auto RetryStore::run(F &&f) -> decltype(f())
{
	auto delay = policy_.first_delay;
	for (int attempt = 1;; attempt++) {
		try {
			return f();
		} catch (const Error &e) {
			bool transient = e.code() == Code::Error || e.code() == Code::Locked;
			if (!transient || attempt >= policy_.attempts)
				throw;
		}
		retries_++;
		std::this_thread::sleep_for(delay);
		delay = std::min(delay * 2, policy_.max_delay);
	}
}

Bytes RetryStore::open()
{
	return run([&] { return inner().open(); });
}

void RetryStore::put(Kind kind, const std::string &name, ByteView data)
{
	run([&] { inner().put(kind, name, data); });
}

Bytes RetryStore::get(Kind kind, const std::string &name)
{
	return run([&] { return inner().get(kind, name); });
}

Bytes RetryStore::get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length)
{
	return run([&] { return inner().get_range(kind, name, offset, length); });
}

void RetryStore::read_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length, uint8_t *dst)
{
	run([&] { inner().read_range(kind, name, offset, length, dst); });
}

uint64_t RetryStore::size(Kind kind, const std::string &name)
{
	return run([&] { return inner().size(kind, name); });
}

std::vector<std::string> RetryStore::list(Kind kind)
{
	return run([&] { return inner().list(kind); });
}

void RetryStore::remove(Kind kind, const std::string &name)
{
	run([&] { inner().remove(kind, name); });
}

} // namespace plakar
