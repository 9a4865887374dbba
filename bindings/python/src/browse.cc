// plakar._plakar: the filesystem view beyond ls and cat (capi/browse.cc): entries, streaming directories, diff, locate, repository information.
#include "common.h"

namespace plakar_py {

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

} // namespace plakar_py
