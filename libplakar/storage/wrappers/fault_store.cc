#include "storage/wrappers/fault_store.h"

#include <thread>

#include "base/error.h"

namespace plakar {

void FaultStore::delay() const
{
	if (plan_.latency.count() > 0)
		std::this_thread::sleep_for(plan_.latency);
}

Bytes FaultStore::maybe_short(Bytes b)
{
	int n = ++gets_;
	if (plan_.short_read_at && n == plan_.short_read_at && !b.empty()) {
		b.pop_back();
		shorts_++;
	}
	return b;
}

void FaultStore::create(ByteView config, const std::string &key_name, ByteView key)
{
	delay();
	inner().create(config, key_name, key);
}

Bytes FaultStore::open()
{
	delay();
	return inner().open();
}

void FaultStore::put(Kind kind, const std::string &name, ByteView data)
{
	delay();
	if (kind == Kind::Pack && plan_.pack_put_latency.count() > 0)
		std::this_thread::sleep_for(plan_.pack_put_latency);
	int n = ++puts_;
	if (plan_.fail_put_at && n == plan_.fail_put_at)
		fail(Code::Error, std::string(kind_name(kind)) + " " + name + ": injected I/O error");
	if (plan_.space_bytes && (written_ += data.size()) > plan_.space_bytes)
		fail(Code::Error, std::string(kind_name(kind)) + " " + name + ": No space left on device");
	inner().put(kind, name, data);
}

Bytes FaultStore::get(Kind kind, const std::string &name)
{
	delay();
	return maybe_short(inner().get(kind, name));
}

Bytes FaultStore::get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length)
{
	delay();
	ranges_++;
	if (plan_.fail_range_over && length > plan_.fail_range_over)
		fail(Code::Error, std::string(kind_name(kind)) + " " + name + ": injected I/O error");
	return maybe_short(inner().get_range(kind, name, offset, length));
}

uint64_t FaultStore::size(Kind kind, const std::string &name)
{
	delay();
	return inner().size(kind, name);
}

std::vector<std::string> FaultStore::list(Kind kind)
{
	delay();
	return inner().list(kind);
}

void FaultStore::remove(Kind kind, const std::string &name)
{
	delay();
	inner().remove(kind, name);
}

} // namespace plakar
