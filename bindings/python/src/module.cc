// plakar._plakar — the low-level extension module: a thin pybind11 layer over the C ABI of
// include/plakar/plakar.h and nothing else. The public, pythonic API lives in the pure-Python
// package (plakar/*.py), which is the only caller of this module.
//
// What this layer is responsible for:
//  - Ownership. Each C handle lives in a C++ object held by std::shared_ptr; a child holds a
//    shared_ptr to its parent (file -> snapshot -> repository), so whatever order Python frees
//    objects in, the C ABI's rule "free children before the repository" holds. The Python-side
//    objects (RepositoryHandle, SnapshotHandle, FileHandle) hold one reference each and drop it
//    in close(); a C handle is freed when its last holder goes.
//  - The GIL. Every call that may block (I/O, crypto, locks) runs with the GIL released; the
//    progress trampoline re-acquires it to call into Python. Calls in flight hold their own
//    shared_ptr copy, so close() from another thread never frees a handle under a running call.
//  - Errors. A failed call is turned into an exception by plakar._errors._from_code (the one
//    code -> exception table). An exception raised by a progress callback cancels the call and
//    is re-raised unchanged once the call has returned.
//  - Bytes. Paths, names and strings cross this module as bytes; decoding (os.fsdecode,
//    surrogateescape) is the Python layer's job.

#include <plakar/plakar.h>

#include "archive.h"

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

namespace {

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
[[noreturn]] void raise_status(const Status &s, py::object snapshot = py::none())
{
	py::object make = py::module_::import("plakar._errors").attr("_from_code");
	py::object exc = make(s.code, py::bytes(s.message), std::move(snapshot));
	PyErr_SetObject(reinterpret_cast<PyObject *>(Py_TYPE(exc.ptr())), exc.ptr());
	throw py::error_already_set();
}

[[noreturn]] void raise_invalid(const std::string &message)
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
std::string c_string(const py::bytes &b, const char *what)
{
	std::string s = b;
	if (std::memchr(s.data(), '\0', s.size()) != nullptr)
		raise_invalid(std::string(what) + " contains a NUL byte");
	return s;
}

py::bytes to_bytes(const char *s) { return py::bytes(s != nullptr ? s : ""); }

// ------------------------------------------------------------------ progress

// The payload of a progress callback for one call. Lives on the caller's stack.
struct Progress {
	py::object callback;                      // called with the event's fields
	std::optional<py::error_already_set> err; // what the callback raised
	std::exception_ptr other;                 // a C++ exception escaping the callback

	bool failed() const { return err.has_value() || other != nullptr; }

	// After the C call returned (GIL held): re-raises what the callback raised, if anything.
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

	static int trampoline(const plakar_event *ev, void *payload)
	{
		auto *p = static_cast<Progress *>(payload);
		py::gil_scoped_acquire gil;
		if (p->failed())
			return 1; // already canceling
		try {
			py::object path = ev->path != nullptr ? py::object(py::bytes(ev->path)) : py::object(py::none());
			py::object message =
			    ev->message != nullptr ? py::object(py::bytes(ev->message)) : py::object(py::none());
			p->callback(ev->kind, path, message, ev->files, ev->directories, ev->bytes, ev->errors,
			            ev->stored_bytes);
			return 0;
		} catch (py::error_already_set &e) {
			p->err = std::move(e);
		} catch (...) {
			p->other = std::current_exception();
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

py::tuple info_tuple(const SnapInfo &i)
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

std::vector<std::string> c_strings(const std::vector<py::bytes> &v, const char *what)
{
	std::vector<std::string> out;
	out.reserve(v.size());
	for (const auto &b : v)
		out.push_back(c_string(b, what));
	return out;
}

std::vector<const char *> c_pointers(const std::vector<std::string> &v)
{
	std::vector<const char *> out;
	out.reserve(v.size());
	for (const auto &s : v)
		out.push_back(s.c_str());
	return out;
}

// ------------------------------------------------------------------ repository

// The credentials of a plakar:// store, as C strings that outlive the options pointing at them.
struct Credentials {
	std::optional<std::string> token, token_file, tls_ca;
	Credentials(const std::optional<py::bytes> &t, const std::optional<py::bytes> &tf, const std::optional<py::bytes> &ca)
	{
		if (t)
			token = c_string(*t, "token");
		if (tf)
			token_file = c_string(*tf, "token file");
		if (ca)
			tls_ca = c_string(*ca, "TLS authorities file");
	}
	template <class O> void apply(O &o) const
	{
		o.token = token ? token->c_str() : nullptr;
		o.token_file = token_file ? token_file->c_str() : nullptr;
		o.tls_ca_file = tls_ca ? tls_ca->c_str() : nullptr;
	}
};

RepositoryHandle repository_create(const py::bytes &uri_b, const std::optional<py::bytes> &passphrase, bool encryption,
                                   int kdf_log2_n, int compression_level, uint32_t chunk_min, uint32_t chunk_avg,
                                   uint32_t chunk_max, uint32_t pack_size, const std::optional<py::bytes> &token,
                                   const std::optional<py::bytes> &token_file, const std::optional<py::bytes> &tls_ca)
{
	std::string uri = c_string(uri_b, "repository URI");
	Credentials creds(token, token_file, tls_ca);
	Passphrase pass(passphrase);
	plakar_create_options opts = PLAKAR_CREATE_OPTIONS_INIT;
	opts.encryption = encryption ? 1 : 0;
	opts.passphrase = pass.data();
	opts.passphrase_len = pass.size();
	opts.kdf_log2_n = kdf_log2_n;
	opts.compression_level = compression_level;
	opts.chunk_min = chunk_min;
	opts.chunk_avg = chunk_avg;
	opts.chunk_max = chunk_max;
	opts.pack_size = pack_size;
	creds.apply(opts);
	plakar_repository *r = nullptr;
	Status s = blocking([&] { return Status::capture(plakar_repository_create(&r, uri.c_str(), &opts)); });
	if (!s.ok())
		raise_status(s);
	return RepositoryHandle{std::make_shared<Repo>(r)};
}

// Binds the socket, then serves until stopped or idle (GIL released): call it from a thread.
void run_agent(const py::bytes &socket_b, unsigned idle_timeout)
{
	std::string socket = c_string(socket_b, "agent socket");
	plakar_agent *a = nullptr;
	Status s = Status::capture(plakar_agent_listen(&a, socket.c_str()));
	if (s.ok()) {
		s = blocking([&] { return Status::capture(plakar_agent_serve(a, idle_timeout)); });
		plakar_agent_free(a);
	}
	if (!s.ok())
		raise_status(s);
}

void stop_agent(const py::bytes &socket_b)
{
	std::string socket = c_string(socket_b, "agent socket");
	Status s = blocking([&] { return Status::capture(plakar_agent_stop(socket.c_str())); });
	if (!s.ok())
		raise_status(s);
}

// ------------------------------------------------------------------ server

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

ServerHandle server_new(const py::bytes &uri_b, const py::bytes &tokens_b, const std::optional<std::string> &listen,
                        unsigned workers, unsigned max_connections, const std::optional<py::bytes> &cert_b,
                        const std::optional<py::bytes> &key_b)
{
	std::string uri = c_string(uri_b, "repository URI");
	std::string tokens = c_string(tokens_b, "tokens file");
	std::optional<std::string> cert, key;
	if (cert_b)
		cert = c_string(*cert_b, "TLS certificate file");
	if (key_b)
		key = c_string(*key_b, "TLS key file");
	plakar_server_options o = PLAKAR_SERVER_OPTIONS_INIT;
	o.tls_cert_file = cert ? cert->c_str() : nullptr;
	o.tls_key_file = key ? key->c_str() : nullptr;
	o.listen = listen ? listen->c_str() : nullptr;
	o.tokens_file = tokens.c_str();
	o.workers = workers;
	o.max_connections = max_connections;
	plakar_server *srv = nullptr;
	Status s = blocking([&] { return Status::capture(plakar_server_new(&srv, uri.c_str(), &o)); });
	if (!s.ok())
		raise_status(s);
	return ServerHandle{std::shared_ptr<plakar_server>(srv, plakar_server_free)};
}

std::string tls_cert_new(const py::bytes &cert_b, const py::bytes &key_b, const std::string &name, unsigned days)
{
	std::string cert = c_string(cert_b, "TLS certificate file"), key = c_string(key_b, "TLS key file");
	char *pin = nullptr;
	Status s = Status::capture(plakar_tls_cert_new(&pin, cert.c_str(), key.c_str(), name.c_str(), days));
	if (!s.ok())
		raise_status(s);
	std::string out(pin);
	plakar_string_free(pin);
	return out;
}

py::tuple token_new(const std::string &name, const std::string &rights)
{
	char *line = nullptr, *client = nullptr;
	Status s = Status::capture(plakar_token_new(&line, &client, name.c_str(), rights.c_str()));
	if (!s.ok())
		raise_status(s);
	py::tuple t = py::make_tuple(std::string(line), std::string(client));
	plakar_string_free(line);
	plakar_string_free(client);
	return t;
}

std::string token_add(const py::bytes &tokens_file_b, const std::string &name, const std::string &rights)
{
	std::string file = c_string(tokens_file_b, "tokens file");
	char *client = nullptr;
	Status s = Status::capture(plakar_token_add(&client, file.c_str(), name.c_str(), rights.c_str()));
	if (!s.ok())
		raise_status(s);
	std::string out(client);
	plakar_string_free(client);
	return out;
}

RepositoryHandle repository_open(const py::bytes &uri_b, const std::optional<py::bytes> &passphrase, int cpu,
                                 bool cache, const std::optional<py::bytes> &cache_dir_b,
                                 const std::optional<py::bytes> &agent_b, const std::optional<py::bytes> &token,
                                 const std::optional<py::bytes> &token_file, const std::optional<py::bytes> &tls_ca)
{
	std::optional<std::string> agent, cache_dir;
	if (agent_b)
		agent = c_string(*agent_b, "agent socket");
	if (cache_dir_b)
		cache_dir = c_string(*cache_dir_b, "cache directory");
	std::string uri = c_string(uri_b, "repository URI");
	Credentials creds(token, token_file, tls_ca);
	Passphrase pass(passphrase);
	plakar_open_options opts = PLAKAR_OPEN_OPTIONS_INIT;
	opts.passphrase = pass.data();
	opts.passphrase_len = pass.size();
	opts.cpu = cpu;
	opts.no_cache = cache ? 0 : 1;
	opts.agent = agent ? agent->c_str() : nullptr;
	opts.cache_dir = cache_dir ? cache_dir->c_str() : nullptr;
	creds.apply(opts);
	plakar_repository *r = nullptr;
	Status s = blocking([&] { return Status::capture(plakar_repository_open(&r, uri.c_str(), &opts)); });
	if (!s.ok())
		raise_status(s);
	return RepositoryHandle{std::make_shared<Repo>(r)};
}

SnapshotHandle repository_push(const RepositoryHandle &self, const std::vector<py::bytes> &paths_b,
                               const std::vector<py::bytes> &tags_b, const py::object &progress,
                               const std::optional<py::bytes> &command_line_b,
                               const std::vector<py::bytes> &excludes_b, const std::optional<py::bytes> &parent_b)
{
	auto repo = self.get();
	std::vector<std::string> paths = c_strings(paths_b, "path");
	std::vector<std::string> tags = c_strings(tags_b, "tag");
	std::vector<std::string> excludes = c_strings(excludes_b, "exclude pattern");
	std::vector<const char *> exclude_ptrs = c_pointers(excludes);
	std::optional<std::string> parent;
	if (parent_b.has_value())
		parent = c_string(*parent_b, "parent snapshot");
	std::optional<std::string> command_line;
	if (command_line_b.has_value())
		command_line = c_string(*command_line_b, "command line");
	std::vector<const char *> path_ptrs = c_pointers(paths), tag_ptrs = c_pointers(tags);

	Progress pr{progress, std::nullopt, nullptr};
	plakar_push_options opts = PLAKAR_PUSH_OPTIONS_INIT;
	opts.tags = tag_ptrs.empty() ? nullptr : tag_ptrs.data();
	opts.ntags = tag_ptrs.size();
	opts.progress = pr.cb();
	opts.payload = pr.payload();
	opts.command_line = command_line ? command_line->c_str() : nullptr;
	opts.excludes = exclude_ptrs.empty() ? nullptr : exclude_ptrs.data();
	opts.nexcludes = exclude_ptrs.size();
	opts.parent = parent ? parent->c_str() : nullptr;

	plakar_snapshot *snap = nullptr;
	Status s = blocking([&] {
		return Status::capture(plakar_snapshot_push(&snap, repo->h, path_ptrs.data(), path_ptrs.size(), &opts));
	});
	std::shared_ptr<Snap> result;
	if (snap != nullptr)
		result = std::make_shared<Snap>(repo, SnapInfo::read(snap), snap);
	if (pr.failed()) {
		release(result);
		pr.rethrow();
	}
	if (s.code == PLAKAR_EPARTIAL && result)
		raise_status(s, py::cast(SnapshotHandle{result}));
	if (!s.ok())
		raise_status(s);
	if (!result)
		raise_invalid("push succeeded but returned no snapshot");
	return SnapshotHandle{result};
}

// One listing (GIL released): the snapshots read, and the headers that could not be.
struct Listing {
	std::vector<SnapInfo> infos;
	std::vector<plakar_snapshot *> handles; // owned, one per info (plakar_snapshot_dup)
	std::vector<std::string> unreadable;
	Listing() = default;
	Listing(Listing &&o) noexcept
	    : infos(std::move(o.infos)), handles(std::exchange(o.handles, {})), unreadable(std::move(o.unreadable))
	{
	}
	Listing(const Listing &) = delete;
	~Listing()
	{
		for (auto *h : handles)
			plakar_snapshot_free(h);
	}
};

Listing list_repository(const std::shared_ptr<Repo> &repo)
{
	Listing out;
	Status s = blocking([&] {
		plakar_snapshot_list *list = nullptr;
		Status ls = Status::capture(plakar_snapshot_list_new(&list, repo->h));
		if (!ls.ok())
			return ls;
		for (size_t i = 0, n = plakar_snapshot_list_count(list); i < n && ls.ok(); i++)
			if (const plakar_snapshot *sn = plakar_snapshot_list_get(list, i)) {
				plakar_snapshot *own = nullptr;
				ls = Status::capture(plakar_snapshot_dup(&own, sn));
				if (!ls.ok())
					break;
				out.infos.push_back(SnapInfo::read(sn));
				out.handles.push_back(own);
			}
		for (size_t i = 0, n = plakar_snapshot_list_unreadable_count(list); i < n; i++)
			out.unreadable.emplace_back(plakar_snapshot_list_unreadable(list, i));
		plakar_snapshot_list_free(list);
		return ls;
	});
	if (!s.ok())
		raise_status(s);
	return out;
}

py::list repository_unreadable_snapshots(const RepositoryHandle &self)
{
	py::list out;
	for (auto &b : list_repository(self.get()).unreadable)
		out.append(py::str(b));
	return out;
}

py::list repository_snapshots(const RepositoryHandle &self)
{
	auto repo = self.get();
	py::list out;
	Listing l = list_repository(repo);
	for (size_t i = 0; i < l.infos.size(); i++) {
		out.append(SnapshotHandle{std::make_shared<Snap>(repo, std::move(l.infos[i]), l.handles[i])});
		l.handles[i] = nullptr; // the Snap owns it now
	}
	return out;
}

SnapshotHandle repository_snapshot(const RepositoryHandle &self, const py::bytes &prefix_b)
{
	auto repo = self.get();
	std::string prefix = c_string(prefix_b, "snapshot id");
	plakar_snapshot *snap = nullptr;
	Status s = blocking([&] { return Status::capture(plakar_snapshot_open(&snap, repo->h, prefix.c_str())); });
	if (!s.ok())
		raise_status(s);
	return SnapshotHandle{std::make_shared<Snap>(repo, SnapInfo::read(snap), snap)};
}

// ------------------------------------------------------------------ snapshot

py::tuple snapshot_stat(const SnapshotHandle &self, const py::bytes &path_b)
{
	auto snap = self.get();
	std::string path = c_string(path_b, "path");
	plakar_entry *entry = nullptr;
	Status s = blocking([&] {
		plakar_snapshot *h = nullptr;
		Status hs = snap->handle(&h);
		if (!hs.ok())
			return hs;
		return Status::capture(plakar_snapshot_stat(&entry, h, path.c_str()));
	});
	if (!s.ok())
		raise_status(s);
	py::tuple t = entry_tuple(entry);
	plakar_entry_free(entry);
	return t;
}

py::list snapshot_ls(const SnapshotHandle &self, const py::bytes &path_b)
{
	auto snap = self.get();
	std::string path = c_string(path_b, "path");
	plakar_entry_list *list = nullptr;
	Status s = blocking([&] {
		plakar_snapshot *h = nullptr;
		Status hs = snap->handle(&h);
		if (!hs.ok())
			return hs;
		return Status::capture(plakar_snapshot_ls(&list, h, path.c_str()));
	});
	if (!s.ok())
		raise_status(s);
	py::list out;
	for (size_t i = 0, n = plakar_entry_list_count(list); i < n; i++) {
		if (const plakar_entry *e = plakar_entry_list_get(list, i))
			out.append(entry_tuple(e));
	}
	plakar_entry_list_free(list);
	return out;
}

// Opens a file of the snapshot. Call without the GIL.
Status open_file(const std::shared_ptr<Snap> &snap, const std::string &path, std::shared_ptr<File> *out)
{
	plakar_snapshot *h = nullptr;
	Status s = snap->handle(&h);
	if (!s.ok())
		return s;
	plakar_file *f = nullptr;
	s = Status::capture(plakar_file_open(&f, h, path.c_str()));
	if (s.ok())
		*out = std::make_shared<File>(snap, f);
	return s;
}

FileHandle snapshot_open(const SnapshotHandle &self, const py::bytes &path_b)
{
	auto snap = self.get();
	std::string path = c_string(path_b, "path");
	std::shared_ptr<File> f;
	Status s;
	{
		py::gil_scoped_release nogil;
		s = open_file(snap, path, &f);
	}
	if (!s.ok())
		raise_status(s);
	return FileHandle{f};
}

py::bytes snapshot_cat(const SnapshotHandle &self, const py::bytes &path_b)
{
	auto snap = self.get();
	std::string path = c_string(path_b, "path");
	std::string data;
	Status s;
	{
		py::gil_scoped_release nogil;
		std::shared_ptr<File> f;
		s = open_file(snap, path, &f);
		if (s.ok()) {
			// The recorded size is a hint; read until the end whatever it says.
			data.resize(static_cast<size_t>(f->size) + 1);
			size_t have = 0;
			for (;;) {
				if (have == data.size())
					data.resize(data.size() * 2);
				size_t n = 0;
				s = Status::capture(plakar_file_read(&n, f->h, data.data() + have, data.size() - have));
				if (!s.ok() || n == 0)
					break;
				have += n;
			}
			data.resize(have);
			f.reset();
		}
	}
	if (!s.ok())
		raise_status(s);
	return py::bytes(data);
}

void snapshot_pull(const SnapshotHandle &self, const py::bytes &path_b, const std::optional<py::bytes> &to_b,
                   bool rebase, const py::object &progress, int overwrite, bool force, bool dry_run, bool verify)
{
	auto snap = self.get();
	std::string path = c_string(path_b, "path");
	std::optional<std::string> to;
	if (to_b.has_value())
		to = c_string(*to_b, "target directory");
	Progress pr{progress, std::nullopt, nullptr};
	plakar_pull_options opts = PLAKAR_PULL_OPTIONS_INIT;
	opts.to = to ? to->c_str() : nullptr;
	opts.rebase = rebase ? 1 : 0;
	opts.progress = pr.cb();
	opts.payload = pr.payload();
	opts.overwrite = overwrite;
	opts.force = force ? 1 : 0;
	opts.dry_run = dry_run ? 1 : 0;
	opts.verify = verify ? 1 : 0;
	Status s = blocking([&] {
		plakar_snapshot *h = nullptr;
		Status hs = snap->handle(&h);
		if (!hs.ok())
			return hs;
		return Status::capture(plakar_snapshot_pull(h, path.c_str(), &opts));
	});
	if (pr.failed())
		pr.rethrow();
	if (!s.ok())
		raise_status(s);
}

// ------------------------------------------------------------------ browsing

// An entry copied out of the library, so it can be turned into Python objects once the GIL
// is back (callbacks run without it).
struct EntryCopy {
	std::string name, user, group, target, error;
	int type = 0;
	uint32_t mode = 0, uid = 0, gid = 0;
	uint64_t size = 0, nlink = 0, inode = 0, device = 0, rdev = 0;
	int64_t mtime = 0, ctime = 0;
	std::vector<std::pair<std::string, std::string>> xattrs;

	static EntryCopy of(const plakar_entry *e)
	{
		auto str = [](const char *p) { return std::string(p != nullptr ? p : ""); };
		EntryCopy c;
		c.name = str(plakar_entry_name(e));
		c.user = str(plakar_entry_username(e));
		c.group = str(plakar_entry_groupname(e));
		c.target = str(plakar_entry_symlink(e));
		c.error = str(plakar_entry_error(e));
		c.type = plakar_entry_type(e);
		c.mode = plakar_entry_mode(e);
		c.uid = plakar_entry_uid(e);
		c.gid = plakar_entry_gid(e);
		c.size = plakar_entry_size(e);
		c.nlink = plakar_entry_nlink(e);
		c.mtime = plakar_entry_mtime(e);
		c.ctime = plakar_entry_ctime(e);
		c.inode = plakar_entry_inode(e);
		c.device = plakar_entry_device(e);
		c.rdev = plakar_entry_rdev(e);
		for (size_t i = 0, n = plakar_entry_xattr_count(e); i < n; i++) {
			const char *xn = nullptr;
			const void *xv = nullptr;
			size_t xl = 0;
			if (plakar_entry_xattr(&xn, &xv, &xl, e, i) == PLAKAR_OK)
				c.xattrs.emplace_back(xn, std::string(static_cast<const char *>(xv), xl));
		}
		return c;
	}
	py::tuple tuple() const
	{
		py::list xs;
		for (const auto &[n, v] : xattrs)
			xs.append(py::make_tuple(py::bytes(n), py::bytes(v)));
		return py::make_tuple(py::bytes(name), type, mode, uid, gid, py::bytes(user), py::bytes(group), size, mtime,
		                      nlink, py::bytes(target), py::bytes(error), ctime, inode, device, rdev, xs);
	}
};

py::tuple entry_tuple(const plakar_entry *e) { return EntryCopy::of(e).tuple(); }

// A directory being iterated: one tree node in memory at a time.
struct Dir {
	std::shared_ptr<Snap> snap;
	plakar_dir *h = nullptr;
	~Dir()
	{
		if (h != nullptr)
			free_blocking([this] { plakar_dir_free(h); });
	}
};

struct DirHandle {
	std::shared_ptr<Dir> p;
};

DirHandle snapshot_iterdir(const SnapshotHandle &self, const py::bytes &path_b)
{
	auto snap = self.get();
	std::string path = c_string(path_b, "path");
	auto d = std::make_shared<Dir>();
	d->snap = snap;
	Status s = blocking([&] {
		plakar_snapshot *h = nullptr;
		Status hs = snap->handle(&h);
		if (!hs.ok())
			return hs;
		return Status::capture(plakar_dir_open(&d->h, h, path.c_str()));
	});
	if (!s.ok())
		raise_status(s);
	return DirHandle{d};
}

// The next entry as a tuple, or None at the end.
py::object dir_next(const DirHandle &self)
{
	if (!self.p || self.p->h == nullptr)
		return py::none();
	std::optional<EntryCopy> copy;
	Status s = blocking([&] {
		const plakar_entry *e = nullptr;
		Status st = Status::capture(plakar_dir_next(&e, self.p->h));
		if (st.ok() && e != nullptr)
			copy = EntryCopy::of(e);
		return st;
	});
	if (!s.ok())
		raise_status(s);
	if (!copy)
		return py::none();
	return copy->tuple();
}

struct ChangeCopy {
	int kind;
	std::string path;
	std::optional<EntryCopy> before, after;
	unsigned what;
};

extern "C" int collect_change(const plakar_change *c, void *payload)
{
	auto *out = static_cast<std::vector<ChangeCopy> *>(payload);
	ChangeCopy cc{c->kind, c->path, std::nullopt, std::nullopt, c->what};
	if (c->before != nullptr)
		cc.before = EntryCopy::of(c->before);
	if (c->after != nullptr)
		cc.after = EntryCopy::of(c->after);
	out->push_back(std::move(cc));
	return 0;
}

py::list snapshot_diff(const SnapshotHandle &self, const py::bytes &path_b, const SnapshotHandle &other,
                       const std::optional<py::bytes> &other_path_b)
{
	auto a = self.get(), b = other.get();
	if (a->repo != b->repo)
		raise_invalid("both snapshots must come from the same Repository");
	std::string pa = c_string(path_b, "path");
	std::optional<std::string> pb;
	if (other_path_b)
		pb = c_string(*other_path_b, "path");
	std::vector<ChangeCopy> changes;
	Status s = blocking([&] {
		plakar_snapshot *ha = nullptr, *hb = nullptr;
		Status hs = a->handle(&ha);
		if (hs.ok())
			hs = b->handle(&hb);
		if (!hs.ok())
			return hs;
		plakar_diff_options o = PLAKAR_DIFF_OPTIONS_INIT;
		o.change = collect_change;
		o.payload = &changes;
		return Status::capture(plakar_snapshot_diff(ha, pa.c_str(), hb, pb ? pb->c_str() : nullptr, &o));
	});
	if (!s.ok())
		raise_status(s);
	py::list out;
	for (const auto &c : changes)
		out.append(py::make_tuple(c.kind, py::bytes(c.path), c.before ? c.before->tuple() : py::object(py::none()),
		                          c.after ? c.after->tuple() : py::object(py::none()), c.what));
	return out;
}

extern "C" int collect_match(const plakar_snapshot *snap, const char *path, void *payload)
{
	auto *out = static_cast<std::vector<std::pair<std::string, std::string>> *>(payload);
	out->emplace_back(plakar_snapshot_id(snap), path);
	return 0;
}

py::list repository_locate(const RepositoryHandle &self, const py::bytes &pattern_b, bool full_path,
                           const std::vector<py::bytes> &snapshots_b)
{
	auto repo = self.get();
	std::string pattern = c_string(pattern_b, "pattern");
	std::vector<std::string> ids = c_strings(snapshots_b, "snapshot id");
	std::vector<const char *> ptrs = c_pointers(ids);
	std::vector<std::pair<std::string, std::string>> found;
	Status s = blocking([&] {
		plakar_locate_options o = PLAKAR_LOCATE_OPTIONS_INIT;
		o.full_path = full_path ? 1 : 0;
		o.snapshots = ptrs.empty() ? nullptr : ptrs.data();
		o.nsnapshots = ptrs.size();
		o.match = collect_match;
		o.payload = &found;
		return Status::capture(plakar_repository_locate(repo->h, pattern.c_str(), &o));
	});
	if (!s.ok())
		raise_status(s);
	py::list out;
	for (const auto &[id, path] : found)
		out.append(py::make_tuple(id, py::bytes(path)));
	return out;
}

// (stats dict, [(code, object, message)], [(blob hex, count)]): the check ran, clean or not.
py::tuple repository_check(const RepositoryHandle &self, const std::vector<py::bytes> &snapshots_b, bool fast,
                           bool read_data, bool refcounts)
{
	auto repo = self.get();
	std::vector<std::string> ids = c_strings(snapshots_b, "snapshot id");
	std::vector<const char *> ptrs = c_pointers(ids);
	plakar_check_report *report = nullptr;
	Status s = blocking([&] {
		plakar_check_options o = PLAKAR_CHECK_OPTIONS_INIT;
		o.flags = (fast ? PLAKAR_CHECK_FAST : 0) | (read_data ? PLAKAR_CHECK_READ_DATA : 0) |
		          (refcounts ? PLAKAR_CHECK_REFCOUNTS : 0);
		o.snapshots = ptrs.empty() ? nullptr : ptrs.data();
		o.nsnapshots = ptrs.size();
		Status st = Status::capture(plakar_repository_check(&report, repo->h, &o));
		return report ? Status{} : st; // problems found are in the report, not an exception
	});
	if (!s.ok())
		raise_status(s);
	std::unique_ptr<plakar_check_report, void (*)(plakar_check_report *)> holder(report, plakar_check_report_free);
	plakar_check_stats st{};
	plakar_check_stats_init(&st);
	if (int rc = plakar_check_report_stats(&st, report); rc != PLAKAR_OK)
		raise_status(Status::capture(rc));
	py::dict d;
	d["snapshots"] = st.snapshots;
	d["entries"] = st.entries;
	d["blobs"] = st.blobs;
	d["bytes"] = st.bytes;
	d["packs"] = st.packs;
	d["unreferenced_blobs"] = st.unreferenced_blobs;
	d["unreferenced_bytes"] = st.unreferenced_bytes;
	d["unindexed_packs"] = st.unindexed_packs;
	py::list problems;
	for (size_t i = 0; i < plakar_check_report_problem_count(report); i++) {
		int code = 0;
		const char *object = nullptr, *message = nullptr;
		if (plakar_check_report_problem(&code, &object, &message, report, i) == PLAKAR_OK)
			problems.append(py::make_tuple(code, py::str(object), py::str(message)));
	}
	py::list refs;
	for (size_t i = 0; i < plakar_check_report_refcount_count(report); i++) {
		char id[65];
		uint32_t count = 0;
		if (plakar_check_report_refcount(id, &count, report, i) == PLAKAR_OK)
			refs.append(py::make_tuple(py::str(id), count));
	}
	return py::make_tuple(d, problems, refs);
}

size_t repository_rm(const RepositoryHandle &self, const std::vector<py::bytes> &snapshots_b)
{
	auto repo = self.get();
	std::vector<std::string> ids = c_strings(snapshots_b, "snapshot id");
	std::vector<const char *> ptrs = c_pointers(ids);
	size_t removed = 0;
	Status s = blocking(
	    [&] { return Status::capture(plakar_snapshot_remove(&removed, repo->h, ptrs.data(), ptrs.size())); });
	if (!s.ok())
		raise_status(s);
	return removed;
}

extern "C" int collect_decision(const char *id, const char *group, int64_t time_ns, int keep, const char *reasons,
                                void *payload)
{
	auto *out = static_cast<std::vector<std::tuple<std::string, std::string, int64_t, bool, std::string>> *>(payload);
	out->emplace_back(id, group, time_ns, keep != 0, reasons);
	return 0;
}

// [(snapshot id, group, time_ns, kept, reasons)], and how many were removed.
py::tuple repository_keep(const RepositoryHandle &self, int last, int hourly, int daily, int weekly, int monthly,
                          int yearly, bool dry_run)
{
	auto repo = self.get();
	std::vector<std::tuple<std::string, std::string, int64_t, bool, std::string>> decisions;
	size_t removed = 0;
	Status s = blocking([&] {
		plakar_keep_options o = PLAKAR_KEEP_OPTIONS_INIT;
		o.last = last;
		o.hourly = hourly;
		o.daily = daily;
		o.weekly = weekly;
		o.monthly = monthly;
		o.yearly = yearly;
		o.dry_run = dry_run ? 1 : 0;
		o.decision = collect_decision;
		o.payload = &decisions;
		return Status::capture(plakar_repository_keep(&removed, repo->h, &o));
	});
	if (!s.ok())
		raise_status(s);
	py::list out;
	for (const auto &[id, group, t, keep, reasons] : decisions)
		out.append(py::make_tuple(id, py::str(group), t, keep, py::str(reasons)));
	return py::make_tuple(out, removed);
}

extern "C" int collect_damaged(const char *message, void *payload)
{
	static_cast<std::vector<std::string> *>(payload)->emplace_back(message);
	return 0;
}

py::dict repository_repair(const RepositoryHandle &self, bool apply, bool read_data)
{
	auto repo = self.get();
	plakar_repair_report r;
	plakar_repair_report_init(&r);
	std::vector<std::string> damaged;
	Status s = blocking([&] {
		plakar_repair_options o = PLAKAR_REPAIR_OPTIONS_INIT;
		o.flags = (apply ? PLAKAR_REPAIR_APPLY : 0) | (read_data ? PLAKAR_REPAIR_READ_DATA : 0);
		o.damaged = collect_damaged;
		o.payload = &damaged;
		return Status::capture(plakar_repository_repair(&r, repo->h, &o));
	});
	if (!s.ok())
		raise_status(s);
	py::dict d;
	d["applied"] = bool(r.applied);
	d["packs"] = r.packs;
	d["blobs"] = r.blobs;
	d["added"] = r.added;
	d["dropped"] = r.dropped;
	d["segments_before"] = r.segments_before;
	d["damaged_blobs"] = r.damaged_blobs;
	py::list dl;
	for (const auto &m : damaged)
		dl.append(py::str(m));
	d["damaged"] = dl;
	return d;
}

py::dict repository_gc(const RepositoryHandle &self, bool dry_run, int repack_percent)
{
	auto repo = self.get();
	plakar_gc_report r;
	plakar_gc_report_init(&r);
	Status s = blocking([&] {
		plakar_gc_options o = PLAKAR_GC_OPTIONS_INIT;
		o.dry_run = dry_run ? 1 : 0;
		o.repack_percent = repack_percent;
		return Status::capture(plakar_repository_gc(&r, repo->h, &o));
	});
	if (!s.ok())
		raise_status(s);
	py::dict d;
	d["dry_run"] = bool(r.dry_run);
	d["snapshots"] = r.snapshots;
	d["live_blobs"] = r.live_blobs;
	d["packs_before"] = r.packs_before;
	d["packs_after"] = r.packs_after;
	d["bytes_before"] = r.bytes_before;
	d["bytes_after"] = r.bytes_after;
	d["packs_deleted"] = r.packs_deleted;
	d["bytes_freed"] = r.bytes_freed;
	d["packs_repacked"] = r.packs_repacked;
	d["blobs_repacked"] = r.blobs_repacked;
	d["bytes_repacked"] = r.bytes_repacked;
	d["packs_pending"] = r.packs_pending;
	d["packs_resurrected"] = r.packs_resurrected;
	d["segments_before"] = r.segments_before;
	d["segments_after"] = r.segments_after;
	d["stale_locks_removed"] = r.stale_locks_removed;
	d["pushes_running"] = r.pushes_running;
	d["readers_running"] = r.readers_running;
	d["temp_files_removed"] = r.temp_files_removed;
	d["packs_merged"] = r.packs_merged;
	d["segments_deleted"] = r.segments_deleted;
	d["segments_pending"] = r.segments_pending;
	return d;
}

py::dict repository_info(const RepositoryHandle &self)
{
	auto repo = self.get();
	plakar_repository_info info{};
	plakar_repository_info_init(&info);
	Status s = blocking([&] { return Status::capture(plakar_repository_describe(&info, repo->h)); });
	if (!s.ok())
		raise_status(s);
	py::dict d;
	d["id"] = repo->id;
	d["format_version"] = info.format_version;
	d["encrypted"] = bool(info.encrypted);
	d["created_ns"] = info.created;
	d["chunk_min"] = info.chunk_min;
	d["chunk_avg"] = info.chunk_avg;
	d["chunk_max"] = info.chunk_max;
	d["compression_level"] = info.compression_level;
	d["pack_size"] = info.pack_size;
	d["snapshots"] = info.snapshots;
	d["packs"] = info.packs;
	d["data_blobs"] = info.data_blobs;
	d["meta_blobs"] = info.meta_blobs;
	d["stored_bytes"] = info.stored_bytes;
	d["data_bytes"] = info.data_bytes;
	d["logical_bytes"] = info.logical_bytes;
	return d;
}

// ------------------------------------------------------------------ file

void file_seek(const FileHandle &self, uint64_t offset)
{
	auto f = self.get();
	Status s = blocking([&] { return Status::capture(plakar_file_seek(f->h, offset)); });
	if (!s.ok())
		raise_status(s);
}

size_t file_readinto(const FileHandle &self, const py::object &buffer)
{
	auto f = self.get();
	Py_buffer view;
	if (PyObject_GetBuffer(buffer.ptr(), &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) != 0)
		throw py::error_already_set();
	std::unique_ptr<Py_buffer, void (*)(Py_buffer *)> guard(&view, PyBuffer_Release);
	size_t n = 0;
	Status s = blocking(
	    [&] { return Status::capture(plakar_file_read(&n, f->h, view.buf, static_cast<size_t>(view.len))); });
	if (!s.ok())
		raise_status(s);
	return n;
}

} // namespace

PYBIND11_MODULE(_plakar, m)
{
	m.doc() = "Low-level bindings of the libplakar C ABI; use the `plakar` package instead.";
	m.attr("__version__") = PLAKAR_VERSION_STRING;
	m.attr("FORMAT_VERSION") = PLAKAR_FORMAT_VERSION;

	m.def("version", [] {
		int major = 0, minor = 0, patch = 0;
		plakar_version(&major, &minor, &patch);
		return py::make_tuple(major, minor, patch);
	});
	m.def("version_string", [] { return std::string(plakar_version_string()); });
	m.def("error_string", [](int code) { return std::string(plakar_error_string(code)); });

	// The codes of the C ABI, by name: plakar._errors maps them to exceptions.
	py::dict codes;
	codes["OK"] = int(PLAKAR_OK);
	codes["ERROR"] = int(PLAKAR_ERROR);
	codes["ENOTFOUND"] = int(PLAKAR_ENOTFOUND);
	codes["EAUTH"] = int(PLAKAR_EAUTH);
	codes["ECORRUPT"] = int(PLAKAR_ECORRUPT);
	codes["ELOCKED"] = int(PLAKAR_ELOCKED);
	codes["EEXISTS"] = int(PLAKAR_EEXISTS);
	codes["EINVALID"] = int(PLAKAR_EINVALID);
	codes["EAMBIGUOUS"] = int(PLAKAR_EAMBIGUOUS);
	codes["ECANCELED"] = int(PLAKAR_ECANCELED);
	codes["EPARTIAL"] = int(PLAKAR_EPARTIAL);
	codes["EVERSION"] = int(PLAKAR_EVERSION);
	codes["EUNSUPPORTED"] = int(PLAKAR_EUNSUPPORTED);
	m.attr("CODES") = codes;

	py::dict types;
	types["file"] = int(PLAKAR_TYPE_FILE);
	types["directory"] = int(PLAKAR_TYPE_DIRECTORY);
	types["symlink"] = int(PLAKAR_TYPE_SYMLINK);
	types["fifo"] = int(PLAKAR_TYPE_FIFO);
	types["chardev"] = int(PLAKAR_TYPE_CHARDEV);
	types["blockdev"] = int(PLAKAR_TYPE_BLOCKDEV);
	types["socket"] = int(PLAKAR_TYPE_SOCKET);
	m.attr("ENTRY_TYPES") = types;

	py::dict kinds;
	kinds["file"] = int(PLAKAR_EVENT_FILE);
	kinds["directory"] = int(PLAKAR_EVENT_DIRECTORY);
	kinds["error"] = int(PLAKAR_EVENT_ERROR);
	kinds["bytes"] = int(PLAKAR_EVENT_BYTES);
	kinds["create"] = int(PLAKAR_EVENT_CREATE);
	kinds["replace"] = int(PLAKAR_EVENT_REPLACE);
	kinds["remove"] = int(PLAKAR_EVENT_REMOVE);
	kinds["skip"] = int(PLAKAR_EVENT_SKIP);
	kinds["warning"] = int(PLAKAR_EVENT_WARNING);
	m.attr("EVENT_KINDS") = kinds;

	py::dict overwrite;
	overwrite["always"] = int(PLAKAR_OVERWRITE_ALWAYS);
	overwrite["if-changed"] = int(PLAKAR_OVERWRITE_IF_CHANGED);
	overwrite["if-newer"] = int(PLAKAR_OVERWRITE_IF_NEWER);
	overwrite["never"] = int(PLAKAR_OVERWRITE_NEVER);
	m.attr("OVERWRITE_POLICIES") = overwrite;

	m.def("create", &repository_create, py::arg("uri"), py::arg("passphrase"), py::arg("encryption"),
	      py::arg("kdf_log2_n"), py::arg("compression_level"), py::arg("chunk_min"), py::arg("chunk_avg"),
	      py::arg("chunk_max"), py::arg("pack_size"), py::arg("token"), py::arg("token_file"), py::arg("tls_ca"));
	m.def("open", &repository_open, py::arg("uri"), py::arg("passphrase"), py::arg("cpu"), py::arg("cache"),
	      py::arg("cache_dir"), py::arg("agent"), py::arg("token"), py::arg("token_file"), py::arg("tls_ca"));
	m.def("run_agent", &run_agent, py::arg("socket"), py::arg("idle_timeout"));
	m.def("stop_agent", &stop_agent, py::arg("socket"));
	m.def("server_new", &server_new, py::arg("uri"), py::arg("tokens_file"), py::arg("listen"), py::arg("workers"),
	      py::arg("max_connections"), py::arg("tls_cert"), py::arg("tls_key"));
	m.def("token_new", &token_new, py::arg("name"), py::arg("rights"));
	m.def("token_add", &token_add, py::arg("tokens_file"), py::arg("name"), py::arg("rights"));
	m.def("tls_cert_new", &tls_cert_new, py::arg("cert_file"), py::arg("key_file"), py::arg("name"), py::arg("days"));
	py::class_<ServerHandle>(m, "ServerHandle")
	    .def_property_readonly("address", &ServerHandle::address)
	    .def_property_readonly("tls_pin", &ServerHandle::tls_pin)
	    .def("run", &ServerHandle::run)
	    .def("stop", &ServerHandle::stop);

	py::class_<RepositoryHandle>(m, "RepositoryHandle")
	    .def_property_readonly("id", [](const RepositoryHandle &self) { return self.get()->id; })
	    .def_property_readonly("encrypted", [](const RepositoryHandle &self) { return self.get()->encrypted; })
	    .def_property_readonly("closed", [](const RepositoryHandle &self) { return !self.p; })
	    .def("close", [](RepositoryHandle &self) { release(self.p); })
	    .def("push", &repository_push, py::arg("paths"), py::arg("tags"), py::arg("progress"),
	         py::arg("command_line"), py::arg("excludes"), py::arg("parent"))
	    .def("snapshots", &repository_snapshots)
	    .def("unreadable_snapshots", &repository_unreadable_snapshots)
	    .def("snapshot", &repository_snapshot, py::arg("prefix"))
	    .def("locate", &repository_locate, py::arg("pattern"), py::arg("full_path"), py::arg("snapshots"))
	    .def("info", &repository_info)
	    .def("rm", &repository_rm, py::arg("snapshots"))
	    .def("repair", &repository_repair, py::arg("apply"), py::arg("read_data"))
	    .def("keep", &repository_keep, py::arg("last"), py::arg("hourly"), py::arg("daily"), py::arg("weekly"),
	         py::arg("monthly"), py::arg("yearly"), py::arg("dry_run"))
	    .def("gc", &repository_gc, py::arg("dry_run"), py::arg("repack_percent"))
	    .def("check", &repository_check, py::arg("snapshots"), py::arg("fast"), py::arg("read_data"),
	         py::arg("refcounts"));

	py::class_<DirHandle>(m, "DirHandle").def("next", &dir_next);

	py::class_<SnapshotHandle>(m, "SnapshotHandle")
	    .def("info", [](const SnapshotHandle &self) { return info_tuple(self.get()->info); })
	    .def_property_readonly("closed", [](const SnapshotHandle &self) { return !self.p; })
	    .def("close", [](SnapshotHandle &self) { release(self.p); })
	    .def("stat", &snapshot_stat, py::arg("path"))
	    .def("ls", &snapshot_ls, py::arg("path"))
	    .def("iterdir", &snapshot_iterdir, py::arg("path"))
	    .def("diff", &snapshot_diff, py::arg("path"), py::arg("other"), py::arg("other_path"))
	    .def("open", &snapshot_open, py::arg("path"))
	    .def("cat", &snapshot_cat, py::arg("path"))
	    .def("pull", &snapshot_pull, py::arg("path"), py::arg("to"), py::arg("rebase"), py::arg("progress"),
	         py::arg("overwrite"), py::arg("force"), py::arg("dry_run"), py::arg("verify"));

	py::class_<FileHandle>(m, "FileHandle")
	    .def_property_readonly("size", [](const FileHandle &self) { return self.get()->size; })
	    .def_property_readonly("closed", [](const FileHandle &self) { return !self.p; })
	    .def("close", [](FileHandle &self) { release(self.p); })
	    .def("readinto", &file_readinto, py::arg("buffer"))
	    .def("seek", &file_seek, py::arg("offset"));

	// Archives (archive.cc), which reach a snapshot's C handle through this function.
	bind_archive(m, [](py::handle o, std::shared_ptr<void> *keep) {
		auto snap = o.cast<const SnapshotHandle &>().get();
		*keep = snap;
		plakar_snapshot *h = nullptr;
		Status s = blocking([&] { return snap->handle(&h); });
		if (!s.ok())
			raise_status(s);
		return h;
	});
}
