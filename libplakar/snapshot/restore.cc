// pull: the walk of the snapshot (directories in order, a bounded number open), the plan of
// each item against what the target holds, and pull() itself: the target, the ancestors, finishing.
#include "snapshot/restore_internal.h"

namespace plakar::restore_detail {

Counters Restorer::counters()
{
	return count.load();
}

// Any thread; the event is emitted by the walker.
void Restorer::item_error(const std::string &path, const std::string &msg)
{
	count.errors++;
	relay_.error(path, msg);
}

void Restorer::failed(const std::string &dest, const Error &err)
{
	if (err.code() == Code::Corrupt)
		corrupt = true;
	item_error(dest, err.what());
}

void Restorer::report(bool force)
{
	relay_.report(opts_.progress, [this] { return counters(); }, force);
}

DirJob *Restorer::adopt(Fd fd, const Entry &e, const std::string &dest, const std::string &rel, bool apply)
{
	auto j = std::make_unique<DirJob>();
	j->entry = e;
	j->dest = dest;
	j->rel = rel;
	j->fd = std::move(fd);
	j->apply = apply;
	if (j->fd.fd >= 0)
		open_dirs_++;
	std::lock_guard lk(mu_);
	jobs_.push_front(std::move(j));
	jobs_.front()->self = jobs_.begin();
	return jobs_.front().get();
}

// Any thread: one item of the directory is done; the last one sets its metadata and closes it.
void Restorer::dir_done(DirJob *job)
{
	while (job && job->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
		if (job->apply && job->fd.fd >= 0 && !opts_.dry_run) {
			try {
				set_dir_metadata(job->entry, job->fd.fd, job->dest);
			} catch (const Error &err) {
				failed(job->dest, err);
			}
			count.directories++;
		}
		if (job->fd.fd >= 0)
			open_dirs_--;
		DirJob *parent = job->parent;
		{
			std::lock_guard lk(mu_);
			jobs_.erase(job->self);
		}
		job = parent;
	}
}

void Restorer::queue_file(const Entry &e, DirJob *parent, const std::string &dest)
{
	parent->pending++;
	if (!e.has_list && e.size <= kBatchFileMax) {
		batch_.push_back({e, dest, parent});
		batch_bytes_ += e.size;
		if (batch_.size() >= kBatchFiles || batch_bytes_ >= kBatchBytes)
			submit_batch();
		return;
	}
	pool_.submit([this, e, dest, parent] {
		try {
			restore_file(e, parent, e.name, dest);
		} catch (const Error &err) {
			if (err.code() == Code::Canceled)
				throw;
			failed(dest, err);
		}
		dir_done(parent);
	});
}

void Restorer::restore(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest, bool top)
{
	try {
		restore_item(e, parent, name, dest, top);
	} catch (const Error &err) {
		if (err.code() == Code::Canceled || top)
			throw;
		failed(dest, err);
	}
}

// Lists a directory (its job just made, holding one pending count for the walker) and restores
// each entry under it.
void Restorer::walk_dir(const Entry &e, DirJob *job, DirJob *parent, const std::string &dest)
{
	job->parent = parent;
	parent->pending++;
	try {
		if (e.has_tree) {
			std::string prefix = dest == "/" ? "/" : dest + "/";
			for_each_entry(repo_, e.tree, [&](Entry &c) {
				restore(c, job, c.name, prefix + c.name);
				return true;
			});
		}
	} catch (...) {
		dir_done(job);
		throw;
	}
	dir_done(job);
	emit(opts_.progress, EventKind::Directory, counters(), &dest);
}

void Restorer::restore_dir(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest)
{
	if (open_dirs_ >= max_open_dirs_) {
		// Let the queued files finish, which closes their directories.
		submit_batch();
		pool_.wait();
	}
	int pfd = parent->fd.fd;
	Fd fd(-1);
	bool apply = true;
	if (::mkdirat(pfd, name.c_str(), 0700) != 0) {
		if (errno != EEXIST)
			fail_errno(dest, errno);
		fd = Fd(::openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
		if (fd.fd >= 0) {
			apply = opts_.overwrite != Overwrite::Never; // an existing directory is merged into
		} else if (errno == ENOTDIR || errno == ELOOP) {
			// Not a directory (a symlink, say): replaced per the policy, never followed.
			struct stat st;
			if (decide(e, pfd, name, dest, st) == Action::Skip) {
				skipped++;
				return;
			}
			if (::unlinkat(pfd, name.c_str(), 0) != 0 || ::mkdirat(pfd, name.c_str(), 0700) != 0)
				fail_errno(dest, errno);
		} else {
			fail_errno(dest, errno);
		}
	}
	if (fd.fd < 0) {
		fd = Fd(::openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
		if (fd.fd < 0)
			fail_errno(dest, errno);
	}
	walk_dir(e, adopt(std::move(fd), e, dest, child_rel(parent, name), apply), parent, dest);
}

// -dry-run: says what the restore would do at each item through progress events, reading the
// target and writing nothing.
void Restorer::plan(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest)
{
	int pfd = parent->fd.fd;
	struct stat st;
	Action a = decide(e, pfd, name, dest, st);
	bool dir_there = a != Action::Create && S_ISDIR(st.st_mode);
	if (e.type == EntryType::Directory) {
		Fd fd(-1);
		if (dir_there) { // merged into
			fd = Fd(::openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
			if (fd.fd < 0)
				fail_errno(dest, errno);
		} else if (a == Action::Skip) {
			skipped++;
			emit(opts_.progress, EventKind::Skip, counters(), &dest);
			return;
		} else {
			emit(opts_.progress, a == Action::Create ? EventKind::Create : EventKind::Replace, counters(), &dest);
		}
		count.directories++;
		walk_dir(e, adopt(std::move(fd), e, dest, child_rel(parent, name), false), parent, dest);
		return;
	}
	if (e.type == EntryType::Socket)
		return;
	if (e.type == EntryType::File && !e.error.empty()) {
		item_error(dest, "not restored: its content could not be read at backup time (" + e.error + ")");
		return;
	}
	if (a == Action::Skip) {
		skipped++;
		emit(opts_.progress, EventKind::Skip, counters(), &dest);
		return;
	}
	if (dir_there) {
		Fd fd(::openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
		if (fd.fd < 0)
			fail_errno(dest, errno);
		DIR *d = ::fdopendir(fd.fd);
		if (!d)
			fail_errno(dest, errno);
		fd.release();
		bool empty = true;
		while (struct dirent *de = ::readdir(d))
			if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0)
				empty = false;
		::closedir(d);
		if (!empty) {
			if (!opts_.force)
				fail(Code::Exists, dest + ": a non-empty directory is in the way (not removed without -force)");
			emit(opts_.progress, EventKind::Remove, counters(), &dest);
		}
	}
	if (e.type == EntryType::File) {
		count.files++;
		count.bytes += e.size;
	}
	emit(opts_.progress, a == Action::Create ? EventKind::Create : EventKind::Replace, counters(), &dest);
}

void Restorer::restore_item(const Entry &e, DirJob *parent, const std::string &name, const std::string &dest,
                            bool top)
{
	if (opts_.dry_run) {
		plan(e, parent, name, dest);
		report();
		return;
	}
	switch (e.type) {
	case EntryType::Directory: restore_dir(e, parent, name, dest); return;
	case EntryType::File:
		if (top || e.nlink > 1 || !e.error.empty())
			restore_file(e, parent, name, dest); // hard links: the walker knows the first path
		else
			queue_file(e, parent, dest);
		if (e.error.empty())
			emit(opts_.progress, EventKind::File, counters(), &dest);
		report();
		return;
	case EntryType::Socket: return; // a socket is recreated by the program that listens on it
	default: restore_special(e, parent->fd.fd, name, dest); return;
	}
}

void Restorer::finish()
{
	submit_batch();
	while (!pool_.wait_for(std::chrono::milliseconds(200)))
		report(true);
	report(true);
	for (const auto &bad : repo_.take_bad_copies())
		emit(opts_.progress, EventKind::Warning, counters(), nullptr, &bad);
}

// Opens name in dirfd as a directory without following it, creating it (0700) unless dry;
// Fd(-1) in a dry run when it is not there.
Fd open_ancestor(int dirfd, const std::string &name, const std::string &dest, bool dry, bool &created)
{
	created = false;
	if (dirfd < 0)
		return Fd(-1);
	if (!dry && ::mkdirat(dirfd, name.c_str(), 0700) == 0)
		created = true;
	else if (!dry && errno != EEXIST)
		fail_errno("cannot create restore target " + dest, errno);
	Fd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	if (fd.fd < 0) {
		if (dry && errno == ENOENT)
			return fd;
		if (errno == ENOTDIR || errno == ELOOP)
			fail(Code::Error, "cannot restore under " + dest + ": not a directory");
		fail_errno("cannot open restore target " + dest, errno);
	}
	return fd;
}

} // namespace plakar::restore_detail

namespace plakar::restore_detail {

// The target directory: absolute, normal, created unless in a dry run. It is the caller's: its
// path is taken as given (links in it followed); everything below it comes from the snapshot
// and is reached through descriptors only. The descriptor is -1 in a dry run when it does not
// exist.
std::pair<std::string, Fd> open_target(const PullOptions &opts)
{
	std::error_code ec;
	std::filesystem::path to = std::filesystem::absolute(opts.to.empty() ? "." : opts.to, ec);
	if (ec)
		fail(Code::Invalid, opts.to + ": " + ec.message());
	std::string base = to.lexically_normal().string();
	while (base.size() > 1 && base.back() == '/')
		base.pop_back();
	if (!opts.dry_run) {
		std::filesystem::create_directories(base, ec);
		if (ec)
			fail(Code::Error, "cannot create restore target " + base + ": " + ec.message());
	}
	Fd base_fd(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (base_fd.fd < 0 && !(opts.dry_run && errno == ENOENT))
		fail_errno("cannot open restore target " + base, errno);
	return {base, std::move(base_fd)};
}

// An ancestor of the item that the restore created: it gets its metadata from the snapshot
// once the item is restored.
struct Ancestor {
	Entry entry;
	Fd fd;
	std::string dest;
};

// The whole snapshot: its root directory is the target itself.
void restore_root(Restorer &r, const Entry &root, int base_fd, const std::string &base, const PullOptions &opts)
{
	Fd fd(base_fd >= 0 ? ::dup(base_fd) : -1);
	if (base_fd >= 0 && fd.fd < 0)
		fail_errno(base, errno);
	DirJob *holder = r.adopt(Fd(-1), Entry{}, base, "", false);
	bool apply = !opts.dry_run && opts.overwrite != Overwrite::Never;
	DirJob *job = r.adopt(std::move(fd), root, base, "", apply);
	r.walk_dir(root, job, holder, base);
	r.dir_done(holder);
}

// One item of the snapshot (parts: its path), below its ancestors recreated as in the snapshot
// (unless rebase). Returns the ancestors it created.
std::vector<Ancestor> restore_item_at(Restorer &r, Repository &repo, const SnapshotHeader &h, const std::string &path,
                                      const std::vector<std::string> &parts, const Entry &e, int base_fd,
                                      const std::string &prefix, const PullOptions &opts)
{
	std::vector<Ancestor> created;
	int at_fd = base_fd;
	Fd held(-1);
	std::string at = prefix, rel;
	if (!opts.rebase) {
		Entry cur = h.root;
		for (size_t i = 0; i + 1 < parts.size(); i++) {
			Entry next;
			if (!find_in_directory(repo, cur.tree, parts[i], next))
				fail(Code::NotFound, path + ": not found in snapshot");
			at += "/" + parts[i];
			rel += (rel.empty() ? "" : "/") + parts[i];
			bool made = false;
			Fd fd = open_ancestor(at_fd, parts[i], at, opts.dry_run, made);
			at_fd = fd.fd;
			if (made) {
				Fd keep(::dup(fd.fd));
				if (keep.fd < 0)
					fail_errno(at, errno);
				created.push_back({next, std::move(keep), at});
			}
			held = std::move(fd);
			cur = std::move(next);
		}
	}
	Fd parent_fd(at_fd >= 0 ? ::dup(at_fd) : -1);
	if (at_fd >= 0 && parent_fd.fd < 0)
		fail_errno(at, errno);
	DirJob *holder = r.adopt(std::move(parent_fd), Entry{}, at.empty() ? "/" : at, rel, false);
	try {
		r.restore(e, holder, parts.back(), at + "/" + parts.back(), true);
	} catch (...) {
		r.dir_done(holder);
		throw;
	}
	r.dir_done(holder);
	return created;
}

} // namespace plakar::restore_detail

namespace plakar {

using namespace restore_detail;

void pull(Repository &repo, const SnapshotHeader &h, const std::string &path, const PullOptions &opts)
{
	std::vector<std::string> parts = split_path(path);
	Entry e = lookup(repo, h, path);
	auto [base, base_fd] = open_target(opts);
	Restorer r(repo, opts, base_fd.fd);
	std::vector<Ancestor> created;
	if (parts.empty())
		restore_root(r, e, base_fd.fd, base, opts);
	else
		created = restore_item_at(r, repo, h, path, parts, e, base_fd.fd, base == "/" ? "" : base, opts);
	r.finish();
	for (auto it = created.rbegin(); it != created.rend(); ++it) {
		try {
			r.set_dir_metadata(it->entry, it->fd.fd, it->dest);
		} catch (const Error &err) {
			r.corrupt = r.corrupt || err.code() == Code::Corrupt;
			r.count.errors++;
		}
	}
	uint64_t errors = r.count.errors;
	if (r.corrupt)
		fail(Code::Corrupt, "some content failed authentication and was not restored (" + std::to_string(errors) +
		                        " errors)");
	if (errors)
		fail(Code::Partial, std::to_string(errors) + (errors == 1 ? " item" : " items") + " could not be restored");
}

} // namespace plakar
