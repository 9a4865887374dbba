#include <map>
#include <mutex>

#include "base/error.h"
#include "storage/fs/fs_store.h"
#include "storage/sqlite/sqlite_store.h"
#include "storage/store.h"

namespace plakar {

namespace {
struct Registry {
	std::mutex mu;
	std::map<std::string, StoreFactory> factories;
	Registry()
	{
		factories["fs"] = [](const std::string &uri, const StoreOptions &) -> std::unique_ptr<Store> {
			return std::make_unique<FsStore>(uri.substr(5)); // strip "fs://"
		};
		factories["sqlite"] = [](const std::string &uri, const StoreOptions &) -> std::unique_ptr<Store> {
			return std::make_unique<SqliteStore>(uri.substr(9)); // strip "sqlite://"
		};
	}
};
Registry &registry()
{
	static Registry r;
	return r;
}
} // namespace

void register_store(const std::string &scheme, StoreFactory factory)
{
	auto &r = registry();
	std::lock_guard lk(r.mu);
	r.factories[scheme] = std::move(factory);
}

std::unique_ptr<Store> open_store(const std::string &uri, const StoreOptions &opts)
{
	if (uri.empty())
		fail(Code::Invalid, "empty repository location");
	if (uri[0] == '/')
		return std::make_unique<FsStore>(uri);
	auto sep = uri.find("://");
	if (sep == std::string::npos || sep == 0)
		fail(Code::Invalid, "repository location must be an absolute path or a URI: " + uri);
	std::string scheme = uri.substr(0, sep);
	StoreFactory f;
	{
		auto &r = registry();
		std::lock_guard lk(r.mu);
		auto it = r.factories.find(scheme);
		if (it == r.factories.end())
			fail(Code::Invalid, "unknown repository scheme: " + scheme);
		f = it->second;
	}
	// Path-based schemes take an absolute path after "scheme://".
	if ((scheme == "fs" || scheme == "sqlite") && (uri.size() <= sep + 3 || uri[sep + 3] != '/'))
		fail(Code::Invalid, scheme + ":// needs an absolute path: " + uri);
	return f(uri, opts);
}

} // namespace plakar
