// plakar._plakar: repositories, snapshots and files (capi/plakar.cc): create, open, push, listing, stat, ls, cat, pull, file reads.
#include "common.h"

namespace plakar_py {

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

	Progress pr(progress);
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
	Progress pr(progress);
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

} // namespace plakar_py
