// The Store interface: where a repository's bytes live. A store knows nothing of snapshots,
// chunks or encryption; it keeps named objects of a few kinds. docs/storage.md is the contract.
//
// Contract shared by every backend:
//  - Names are lowercase hex (packs, index segments) or a snapshot id; the store may rely on it.
//  - put() is atomic: a reader sees the whole object or nothing, never a prefix, even after a
//    crash. Putting an existing name replaces it (idempotent for identical content).
//  - get() of a missing object throws Code::NotFound. A byte range past the end of the object
//    throws Code::Corrupt (objects are immutable, so a short read means damage).
//  - list() returns the names of one kind in no particular order.
//  - remove() of a missing object is not an error.
// A Store may be called from several threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"

namespace plakar {

enum class Kind { Pack, Index, Snapshot, Key, Lock };
const char *kind_name(Kind k);
// The largest object of a kind a reader accepts, and CONFIG's: a store checks a whole object's
// size against it before reading (Code::Corrupt past it), so a forged object can make no
// reader allocate more than a real one could need.
uint64_t max_object_size(Kind k);
constexpr uint64_t kMaxConfigSize = 64 << 10;
// Object names are lowercase hex or a snapshot UUID (hex and '-'), at most 128 characters:
// every store refuses anything else, so a name can never escape its place.
bool valid_object_name(const std::string &name);
// Temporary files of interrupted writes older than this are removed (by gc, and by a server
// from time to time): no write in progress leaves its file untouched that long.
constexpr std::chrono::seconds kTempFileAge{3600};

class Store {
public:
	virtual ~Store() = default;

	// Initializes an empty store, stores the first key file (when key is not empty) and writes
	// the repository's CONFIG last, so an interrupted create never looks like a repository.
	// Throws Code::Exists when a repository (or anything else) is already there.
	virtual void create(ByteView config, const std::string &key_name, ByteView key) = 0;
	// Returns the CONFIG. Throws Code::NotFound when there is no repository at this location.
	virtual Bytes open() = 0;

	virtual void put(Kind kind, const std::string &name, ByteView data) = 0;
	virtual Bytes get(Kind kind, const std::string &name) = 0;
	virtual Bytes get_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length) = 0;
	// get_range into dst (length bytes), for stores that can read without a buffer of their own.
	virtual void read_range(Kind kind, const std::string &name, uint64_t offset, uint64_t length, uint8_t *dst)
	{
		Bytes b = get_range(kind, name, offset, length);
		if (b.size() != length)
			fail(Code::Corrupt, std::string(kind_name(kind)) + " " + name + ": short read");
		std::memcpy(dst, b.data(), length);
	}
	// The size of an object in bytes. Throws Code::NotFound when it does not exist.
	virtual uint64_t size(Kind kind, const std::string &name) = 0;
	virtual std::vector<std::string> list(Kind kind) = 0;
	virtual void remove(Kind kind, const std::string &name) = 0;

	// True when the store refuses to remove or replace data (a plakar:// store reached with a
	// read-only or append-only token): the repository then leaves its index segments as they
	// are instead of compacting them.
	virtual bool append_only() { return false; }

	// Removes what interrupted writes left behind (a killed process's temporary files) that is
	// older than min_age: a write in progress keeps its file younger than that (docs/storage.md).
	// Returns how many went. Stores with nothing of the kind return 0.
	virtual uint64_t remove_stale_temporaries(std::chrono::seconds min_age)
	{
		(void)min_age;
		return 0;
	}

	// A short description for messages ("/root/.plakar").
	virtual std::string location() const = 0;

	// The local files and directories that hold this store's data, absolute (none for a
	// remote store): a push of a tree that holds them leaves them out.
	virtual std::vector<std::string> local_paths() const { return {}; }
};

// What opening a store may take besides its URI: the credentials of the stores that ask for
// them. The engine never reads the environment; its callers fill this.
struct StoreOptions {
	std::string token;       // plakar://: the client token "NAME:SECRET"
	std::string token_file;  // or the file holding it on its first line
	std::string tls_ca_file; // plakar+tls:// without a pin: PEM authorities ("": the system's)
};

// Opens a store by URI: "/abs/path", "fs:///abs/path" (filesystem), "sqlite:///abs/path.db",
// "plakar://host[:port]" (a `plakar server`, once net::register_remote_stores() ran: the C ABI
// runs it), "plakar+tls://host[:port][?pin=sha256:HEX]" (the same in TLS; without a pin the
// certificate is checked against opts.tls_ca_file, else the system's authorities). Throws
// Code::Invalid on an unknown scheme or a malformed URI. Opening does not touch the store yet.
std::unique_ptr<Store> open_store(const std::string &uri, const StoreOptions &opts = {});

using StoreFactory = std::function<std::unique_ptr<Store>(const std::string &uri, const StoreOptions &opts)>;
// Registers a backend for "scheme://..." URIs (called once per backend at start-up).
void register_store(const std::string &scheme, StoreFactory factory);

} // namespace plakar
