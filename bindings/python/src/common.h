// plakar._plakar: what every part of the extension module shares: C call outcomes and the
// Python exceptions they raise, the GIL, the owned C handles and the Python-facing handles,
// conversions. See module.cc for what this layer is responsible for.
#pragma once

#include <plakar/plakar.h>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace plakar_py {

// ------------------------------------------------------------------ errors

// The outcome of one C call: the code and, on failure, the message captured right after the
// call on the same thread (plakar_error_last() is cleared by the next plakar_* call).
struct Status {
	int code = PLAKAR_OK;
	std::string message;

	bool ok() const { return code == PLAKAR_OK; }
	static Status capture(int code)
	{
		Status s;
		s.code = code;
		if (code != PLAKAR_OK) {
			const char *m = plakar_error_last();
			s.message = (m != nullptr && *m != '\0') ? m : plakar_error_string(code);
		}
		return s;
	}
};

// Raises the Python exception for a failed status. `snapshot` is attached to the exception
// (PartialError.snapshot after a push that committed with errors).
[[noreturn]] inline void raise_status(const Status &s, py::object snapshot = py::none())
{
	py::object make = py::module_::import("plakar._errors").attr("_from_code");
	py::object exc = make(s.code, py::bytes(s.message), std::move(snapshot));
	PyErr_SetObject(reinterpret_cast<PyObject *>(Py_TYPE(exc.ptr())), exc.ptr());
	throw py::error_already_set();
}

[[noreturn]] inline void raise_invalid(const std::string &message)
{
	Status s;
	s.code = PLAKAR_EINVALID;
	s.message = message;
	raise_status(s);
}

// Runs f with the GIL released. f makes the C calls and returns their Status, captured
// right after the failing call (see Status::capture).
template <class F>
Status blocking(F &&f)
{
	py::gil_scoped_release nogil;
	return f();
}

// Runs a _free function, releasing the GIL if this thread holds it (closing a repository may
// flush and unlock). At interpreter shutdown the GIL is kept: other threads may be gone.
template <class F>
void free_blocking(F &&f)
{
#if PY_VERSION_HEX >= 0x030D0000
	const bool finalizing = Py_IsFinalizing();
#else
	const bool finalizing = _Py_IsFinalizing();
#endif
	if (Py_IsInitialized() && !finalizing && PyGILState_Check()) {
		PyThreadState *ts = PyEval_SaveThread();
		f();
		PyEval_RestoreThread(ts);
	} else {
		f();
	}
}

// A C string argument: bytes without NUL (a NUL would silently cut the string short).
inline std::string c_string(const py::bytes &b, const char *what)
{
	std::string s = b;
	if (std::memchr(s.data(), '\0', s.size()) != nullptr)
		raise_invalid(std::string(what) + " contains a NUL byte");
	return s;
}

inline py::bytes to_bytes(const char *s) { return py::bytes(s != nullptr ? s : ""); }

// ------------------------------------------------------------------ progress

// What the callbacks of one C call raised: the first exception, raised again once the call has
// returned (the call itself was canceled by the callback's non-zero return).
struct CallbackErrors {
	std::optional<py::error_already_set> err; // what a Python callback raised
	std::exception_ptr other;                 // a C++ exception escaping a callback

	bool failed() const { return err.has_value() || other != nullptr; }

	// Inside a catch block: keeps the exception being handled.
	void fail_with_current()
	{
		try {
			throw;
		} catch (py::error_already_set &e) {
			err = std::move(e);
		} catch (...) {
			other = std::current_exception();
		}
	}

	// After the C call returned (GIL held): re-raises what a callback raised, if anything.
	void rethrow()
	{
		if (err.has_value()) {
			py::error_already_set e = std::move(*err);
			err.reset();
			throw e;
		}
		if (other != nullptr)
			std::rethrow_exception(std::exchange(other, nullptr));
	}
};

// Calls a Python progress callback with an event's fields (GIL held).
inline void call_progress(const py::object &callback, const plakar_event *ev)
{
	py::object path = ev->path != nullptr ? py::object(py::bytes(ev->path)) : py::object(py::none());
	py::object message = ev->message != nullptr ? py::object(py::bytes(ev->message)) : py::object(py::none());
	callback(ev->kind, path, message, ev->files, ev->directories, ev->bytes, ev->errors, ev->stored_bytes);
}

// The payload of a progress callback for one call. Lives on the caller's stack.
struct Progress : CallbackErrors {
	py::object callback; // called with the event's fields

	explicit Progress(py::object cb) : callback(std::move(cb)) {}

	static int trampoline(const plakar_event *ev, void *payload)
	{
		auto *p = static_cast<Progress *>(payload);
		py::gil_scoped_acquire gil;
		if (p->failed())
			return 1; // already canceling
		try {
			call_progress(p->callback, ev);
			return 0;
		} catch (...) {
			p->fail_with_current();
		}
		return 1;
	}

	plakar_progress_cb cb() const { return callback.is_none() ? nullptr : &Progress::trampoline; }
	void *payload() { return callback.is_none() ? nullptr : this; }
};

// ------------------------------------------------------------------ owned C handles

struct Repo {
	plakar_repository *h;
	std::string id;
	bool encrypted;

	explicit Repo(plakar_repository *r)
	    : h(r), id(plakar_repository_id(r) != nullptr ? plakar_repository_id(r) : ""),
	      encrypted(plakar_repository_encrypted(r) > 0)
	{
	}
	Repo(const Repo &) = delete;
	Repo &operator=(const Repo &) = delete;
	~Repo()
	{
		free_blocking([this] { plakar_repository_free(h); });
	}
};

// A snapshot's header, copied out of the C handle so that it stays readable without it.
struct SnapInfo {
	std::string id;
	int64_t time = 0;
	std::string hostname, username, command_line;
	std::vector<std::string> paths, tags;
	uint64_t files = 0, directories = 0, size = 0;
	std::vector<std::pair<std::string, std::string>> errors;

	static SnapInfo read(const plakar_snapshot *s)
	{
		auto str = [](const char *p) { return std::string(p != nullptr ? p : ""); };
		SnapInfo i;
		i.id = str(plakar_snapshot_id(s));
		i.time = plakar_snapshot_time(s);
		i.hostname = str(plakar_snapshot_hostname(s));
		i.username = str(plakar_snapshot_username(s));
		i.command_line = str(plakar_snapshot_command_line(s));
		for (size_t k = 0, n = plakar_snapshot_path_count(s); k < n; k++)
			i.paths.push_back(str(plakar_snapshot_path(s, k)));
		for (size_t k = 0, n = plakar_snapshot_tag_count(s); k < n; k++)
			i.tags.push_back(str(plakar_snapshot_tag(s, k)));
		i.files = plakar_snapshot_files(s);
		i.directories = plakar_snapshot_directories(s);
		i.size = plakar_snapshot_size(s);
		for (size_t k = 0, n = plakar_snapshot_error_count(s); k < n; k++) {
			const char *path = nullptr, *message = nullptr;
			if (plakar_snapshot_error(&path, &message, s, k) == PLAKAR_OK)
				i.errors.emplace_back(str(path), str(message));
		}
		return i;
	}
};

// A snapshot of a repository, with a C handle of its own (from push, open, or a listing through
// plakar_snapshot_dup). A Snap made without one opens it by id on first use.
struct Snap {
	std::shared_ptr<Repo> repo;
	SnapInfo info;
	std::mutex mu; // guards h
	plakar_snapshot *h = nullptr;

	Snap(std::shared_ptr<Repo> r, SnapInfo i, plakar_snapshot *handle)
	    : repo(std::move(r)), info(std::move(i)), h(handle)
	{
	}
	Snap(const Snap &) = delete;
	Snap &operator=(const Snap &) = delete;
	~Snap()
	{
		// The body runs before `repo` is released: the snapshot goes before its repository.
		if (h != nullptr)
			free_blocking([this] { plakar_snapshot_free(h); });
	}

	// The C handle, opened by id if needed. Call without the GIL. mu is never held across a
	// library call: a progress callback of a call holding the repository's internal lock may
	// use this snapshot, and must not wait for a thread that waits for that lock.
	Status handle(plakar_snapshot **out)
	{
		{
			std::lock_guard<std::mutex> lock(mu);
			if (h != nullptr) {
				*out = h;
				return Status{};
			}
		}
		plakar_snapshot *fresh = nullptr;
		Status s = Status::capture(plakar_snapshot_open(&fresh, repo->h, info.id.c_str()));
		if (!s.ok())
			return s;
		{
			std::lock_guard<std::mutex> lock(mu);
			if (h == nullptr)
				h = std::exchange(fresh, nullptr);
			*out = h;
		}
		plakar_snapshot_free(fresh); // another thread opened it first; NULL is fine
		return Status{};
	}
};

struct File {
	std::shared_ptr<Snap> snap;
	plakar_file *h;
	uint64_t size;

	File(std::shared_ptr<Snap> s, plakar_file *f) : snap(std::move(s)), h(f), size(plakar_file_size(f)) {}
	File(const File &) = delete;
	File &operator=(const File &) = delete;
	~File()
	{
		free_blocking([this] { plakar_file_free(h); });
	}
};

// ------------------------------------------------------------------ Python-facing handles

// Drops a reference with the GIL released: it may be the last one, and freeing may block.
template <class T>
void release(std::shared_ptr<T> &p)
{
	std::shared_ptr<T> last = std::move(p);
	p.reset();
	py::gil_scoped_release nogil;
	last.reset();
}

struct FileHandle {
	std::shared_ptr<File> p;

	std::shared_ptr<File> get() const
	{
		if (!p)
			throw py::value_error("I/O operation on closed file");
		return p;
	}
};

struct SnapshotHandle {
	std::shared_ptr<Snap> p;

	std::shared_ptr<Snap> get() const
	{
		if (!p)
			throw py::value_error("snapshot is closed");
		return p;
	}
};

struct RepositoryHandle {
	std::shared_ptr<Repo> p;

	std::shared_ptr<Repo> get() const
	{
		if (!p)
			throw py::value_error("repository is closed");
		return p;
	}
};

// ------------------------------------------------------------------ conversions

inline py::tuple info_tuple(const SnapInfo &i)
{
	py::list paths, tags, errors;
	for (const auto &p : i.paths)
		paths.append(py::bytes(p));
	for (const auto &t : i.tags)
		tags.append(py::bytes(t));
	for (const auto &e : i.errors)
		errors.append(py::make_tuple(py::bytes(e.first), py::bytes(e.second)));
	return py::make_tuple(i.id, i.time, py::bytes(i.hostname), py::bytes(i.username), py::bytes(i.command_line),
	                      paths, tags, i.files, i.directories, i.size, errors);
}

py::tuple entry_tuple(const plakar_entry *e);

// The passphrase as the C ABI takes it: copied once, straight from the bytes object (no
// temporary string), and wiped when the call is over. The Python object itself is immutable
// and stays the caller's to drop.
struct Passphrase {
	std::optional<std::string> value;

	explicit Passphrase(const std::optional<py::bytes> &b)
	{
		if (!b.has_value())
			return;
		char *p = nullptr;
		Py_ssize_t n = 0;
		if (PyBytes_AsStringAndSize(b->ptr(), &p, &n) != 0)
			throw py::error_already_set();
		value.emplace(p, size_t(n));
	}
	~Passphrase()
	{
		if (value)
			explicit_bzero(value->data(), value->size());
	}
	Passphrase(const Passphrase &) = delete;
	Passphrase &operator=(const Passphrase &) = delete;
	const char *data() const { return value ? value->data() : nullptr; }
	// The ABI reads a length of 0 as "strlen": an empty passphrase stays empty either way.
	size_t size() const { return value ? value->size() : 0; }
};

inline std::vector<std::string> c_strings(const std::vector<py::bytes> &v, const char *what)
{
	std::vector<std::string> out;
	out.reserve(v.size());
	for (const auto &b : v)
		out.push_back(c_string(b, what));
	return out;
}

inline std::vector<const char *> c_pointers(const std::vector<std::string> &v)
{
	std::vector<const char *> out;
	out.reserve(v.size());
	for (const auto &s : v)
		out.push_back(s.c_str());
	return out;
}

// ------------------------------------------------------------------ handles defined by the parts

// A plakar_server: run() blocks (GIL released) until stop() from another thread.
struct ServerHandle {
	std::shared_ptr<plakar_server> p;

	std::string address() const
	{
		char *a = nullptr;
		Status s = Status::capture(plakar_server_address(&a, p.get()));
		if (!s.ok())
			raise_status(s);
		std::string out(a);
		plakar_string_free(a);
		return out;
	}
	// "" without TLS.
	std::string tls_pin() const
	{
		char *a = nullptr;
		int rc = plakar_server_tls_pin(&a, p.get());
		if (rc == PLAKAR_ENOTFOUND)
			return "";
		Status s = Status::capture(rc);
		if (!s.ok())
			raise_status(s);
		std::string out(a);
		plakar_string_free(a);
		return out;
	}
	void run()
	{
		auto keep = p;
		Status s = blocking([&] { return Status::capture(plakar_server_run(keep.get())); });
		if (!s.ok())
			raise_status(s);
	}
	void stop()
	{
		Status s = Status::capture(plakar_server_stop(p.get()));
		if (!s.ok())
			raise_status(s);
	}
};

struct Dir; // browse.cc
struct DirHandle {
	std::shared_ptr<Dir> p;
};

// ------------------------------------------------------------------ the parts' functions, bound by module.cc

// repository.cc
RepositoryHandle repository_create(const py::bytes &uri_b, const std::optional<py::bytes> &passphrase, bool encryption,
                                   int kdf_log2_n, int compression_level, uint32_t chunk_min, uint32_t chunk_avg,
                                   uint32_t chunk_max, uint32_t pack_size, const std::optional<py::bytes> &token,
                                   const std::optional<py::bytes> &token_file, const std::optional<py::bytes> &tls_ca);
RepositoryHandle repository_open(const py::bytes &uri_b, const std::optional<py::bytes> &passphrase, int cpu,
                                 bool cache, const std::optional<py::bytes> &cache_dir_b,
                                 const std::optional<py::bytes> &agent_b, const std::optional<py::bytes> &token,
                                 const std::optional<py::bytes> &token_file, const std::optional<py::bytes> &tls_ca);
SnapshotHandle repository_push(const RepositoryHandle &self, const std::vector<py::bytes> &paths_b,
                               const std::vector<py::bytes> &tags_b, const py::object &progress,
                               const std::optional<py::bytes> &command_line_b,
                               const std::vector<py::bytes> &excludes_b, const std::optional<py::bytes> &parent_b);
py::list repository_unreadable_snapshots(const RepositoryHandle &self);
py::list repository_snapshots(const RepositoryHandle &self);
SnapshotHandle repository_snapshot(const RepositoryHandle &self, const py::bytes &prefix_b);
py::tuple snapshot_stat(const SnapshotHandle &self, const py::bytes &path_b);
py::list snapshot_ls(const SnapshotHandle &self, const py::bytes &path_b);
FileHandle snapshot_open(const SnapshotHandle &self, const py::bytes &path_b);
py::bytes snapshot_cat(const SnapshotHandle &self, const py::bytes &path_b);
void snapshot_pull(const SnapshotHandle &self, const py::bytes &path_b, const std::optional<py::bytes> &to_b,
                   bool rebase, const py::object &progress, int overwrite, bool force, bool dry_run, bool verify);
void file_seek(const FileHandle &self, uint64_t offset);
size_t file_readinto(const FileHandle &self, const py::object &buffer);
// browse.cc
py::tuple entry_tuple(const plakar_entry *e);
DirHandle snapshot_iterdir(const SnapshotHandle &self, const py::bytes &path_b);
py::object dir_next(const DirHandle &self);
py::list snapshot_diff(const SnapshotHandle &self, const py::bytes &path_b, const SnapshotHandle &other,
                       const std::optional<py::bytes> &other_path_b);
py::list repository_locate(const RepositoryHandle &self, const py::bytes &pattern_b, bool full_path,
                           const std::vector<py::bytes> &snapshots_b);
py::dict repository_info(const RepositoryHandle &self);
// maintenance.cc
void run_agent(const py::bytes &socket_b, unsigned idle_timeout);
void stop_agent(const py::bytes &socket_b);
py::tuple repository_check(const RepositoryHandle &self, const std::vector<py::bytes> &snapshots_b, bool fast,
                           bool read_data, bool refcounts);
size_t repository_rm(const RepositoryHandle &self, const std::vector<py::bytes> &snapshots_b);
py::tuple repository_keep(const RepositoryHandle &self, int last, int hourly, int daily, int weekly, int monthly,
                          int yearly, bool dry_run);
py::dict repository_repair(const RepositoryHandle &self, bool apply, bool read_data);
py::dict repository_gc(const RepositoryHandle &self, bool dry_run, int repack_percent);
// server.cc
ServerHandle server_new(const py::bytes &uri_b, const py::bytes &tokens_b, const std::optional<std::string> &listen,
                        unsigned workers, unsigned max_connections, const std::optional<py::bytes> &cert_b,
                        const std::optional<py::bytes> &key_b);
std::string tls_cert_new(const py::bytes &cert_b, const py::bytes &key_b, const std::string &name, unsigned days);
py::tuple token_new(const std::string &name, const std::string &rights);
std::string token_add(const py::bytes &tokens_file_b, const std::string &name, const std::string &rights);

} // namespace plakar_py
