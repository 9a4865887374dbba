// Internal to capi/: the handle structs behind the opaque C types, and the shim every entry
// point runs in. Not installed; the public contract is include/plakar/plakar.h.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "plakar/plakar.h"
#include "repository/lock.h"
#include "repository/repository.h"
#include "base/progress.h"
#include "snapshot/file_reader.h"
#include "snapshot/restore.h"
#include "snapshot/snapshot.h"

struct plakar_repository {
	std::unique_ptr<plakar::Repository> repo; // its Repository::Call serializes the calls
	std::string id;
};

struct plakar_snapshot {
	plakar_repository *owner = nullptr;
	// The handle's reader lock while the snapshot may be read (null: the lock could not be
	// written, reads go unprotected): gc deletes nothing it may read until it is freed.
	std::shared_ptr<plakar::RepoLock> reading;
	plakar::SnapshotHeader h;
	std::string id;
};

struct plakar_snapshot_list {
	std::vector<plakar_snapshot> items;
	std::vector<std::string> unreadable;
};

struct plakar_entry {
	plakar::Entry e;
};

struct plakar_entry_list {
	std::vector<plakar_entry> items;
};

struct plakar_file {
	plakar_repository *owner = nullptr;
	std::unique_ptr<plakar::FileReader> reader;
};

namespace plakar::capi {

// Held by every call working on a repository: the engine's Repository::Call (serialized
// calls, the cache committed when the call ends).
class CallScope {
public:
	explicit CallScope(plakar_repository *r) : call_(*r->repo) {}

private:
	Repository::Call call_;
};

void clear_error() noexcept;
// Records code and message as the thread's last error (one line: control bytes escaped).
// Never throws: without memory for the message, the message is "out of memory".
int set_error(int code, const char *msg) noexcept;
// Appends msg to out with control characters escaped (may throw std::bad_alloc).
void append_escaped(std::string &out, const char *msg);
// Throws Code::Invalid with what when !ok.
void require(bool ok, const char *what);
ProgressFn progress_of(plakar_progress_cb cb, void *payload);

// Runs f, turning any exception into a code plus plakar_error_last(). Every entry point of
// the C ABI that can fail is one call to guard().
// Registers the stores the engine leaves to its caller (plakar://, plakar+tls://); once.
void register_stores();

template <class F> int guard(F &&f)
{
	clear_error();
	try {
		register_stores();
		f();
		return PLAKAR_OK;
	} catch (const Error &e) {
		return set_error(int(e.code()), e.what());
	} catch (const std::bad_alloc &) {
		return set_error(PLAKAR_ERROR, "out of memory");
	} catch (const std::exception &e) {
		return set_error(PLAKAR_ERROR, e.what());
	} catch (...) {
		return set_error(PLAKAR_ERROR, "unknown error");
	}
}

} // namespace plakar::capi
