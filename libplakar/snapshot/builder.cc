// push: the walker (a directory at a time, in name order, compared with the parent snapshot),
// dispatching files to workers, and push() itself: roots, locks, the parent, commit.
#include "snapshot/builder_internal.h"

namespace plakar::build {

Counters Builder::counters()
{
	Counters c = count_.load();
	c.stored_bytes = repo_.stats().bytes_written;
	return c;
}

const std::string &Builder::user_name(uid_t uid)
{
	auto it = users_.find(uid);
	if (it != users_.end())
		return it->second;
	std::string name;
	struct passwd pw, *res = nullptr;
	char buf[4096];
	if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res)
		name = res->pw_name;
	return users_[uid] = name;
}

const std::string &Builder::group_name(gid_t gid)
{
	auto it = groups_.find(gid);
	if (it != groups_.end())
		return it->second;
	std::string name;
	struct group gr, *res = nullptr;
	char buf[4096];
	if (getgrgid_r(gid, &gr, buf, sizeof buf, &res) == 0 && res)
		name = res->gr_name;
	return groups_[gid] = name;
}

// Any thread: the event itself is emitted by the walker (callbacks run on the calling thread).
void Builder::record_error(const std::string &path, const std::string &msg)
{
	count_.errors++;
	{
		std::lock_guard lk(mu_);
		header.errors.emplace_back(path, msg);
	}
	relay_.error(path, msg);
}

void Builder::report(bool force)
{
	relay_.report(opts_.progress, [this] { return counters(); }, force);
}

// Walker: fills entry i of node (stat'ed already) with its content, now or through workers.
void Builder::store_one(DirNode *node, size_t l, size_t i, const std::string &path)
{
	Entry &fe = node->entry(l, i);
	store_file(path, fe);
	size_ += fe.size;
	entry_done(node, l);
}

void Builder::flush_batch()
{
	if (batch_.empty())
		return;
	auto jobs = std::make_shared<std::vector<FileJob>>(std::move(batch_));
	batch_.clear();
	pool_.submit(
	    [this, jobs] {
		    for (const auto &j : *jobs)
			    store_one(j.node, j.leaf, j.slot, j.path);
	    },
	    batch_bytes_);
	batch_bytes_ = 0;
}

void Builder::dispatch(DirNode *node, size_t l, size_t i, const std::string &path, const VNode *v, const Entry *prev)
{
	Entry &e = node->entry(l, i);
	if (v && !v->pushed) {
		virtual_dir(node, l, i, path, *v, prev);
		return;
	}
	switch (e.type) {
	case EntryType::Directory:
		if (!prev || !same_entry(e, *prev))
			node->changed = true;
		walk_dir(node, l, i, path, prev);
		count_.directories++;
		emit(opts_.progress, EventKind::Directory, counters(), &path);
		break;
	case EntryType::File:
		count_.files++;
		if (reuse(e, prev)) {
			size_ += e.size;
			if (!same_entry(e, *prev))
				node->changed = true;
		} else {
			node->changed = true;
			node->leaves[l].pending++;
			if (e.size <= kSmallFile) {
				// Small files go to the workers in batches: one task, one wake-up for many.
				batch_.push_back({node, l, i, path});
				batch_bytes_ += e.size;
				if (batch_.size() >= kBatchFiles || batch_bytes_ >= kBatchBytes)
					flush_batch();
			} else {
				pool_.submit([this, node, l, i, path] { store_one(node, l, i, path); });
			}
		}
		emit(opts_.progress, EventKind::File, counters(), &path);
		break;
	default:
		if (!prev || !same_entry(e, *prev))
			node->changed = true;
		break;
	}
	report();
}

void Builder::walk_dir(DirNode *node, size_t l, size_t i, const std::string &path, const Entry *prev)
{
	Entry &e = node->entry(l, i);
	// The first directory of a walk starts the read-ahead of its tree (two cores or more).
	struct Depth {
		Builder &b;
		bool root;
		explicit Depth(Builder &b) : b(b), root(b.walk_depth_++ == 0) {}
		~Depth()
		{
			if (--b.walk_depth_ == 0)
				b.scanner_.reset();
		}
	} depth(*this);
	ExcludeFn excluded_fn = [this](const std::string &p, const std::string &n) { return excluded(p, n); };
	if (depth.root && repo_.cpu() >= 2)
		scanner_ = std::make_unique<DirScanner>(
		    path, excluded_fn, opts_.read_ahead_max_names ? opts_.read_ahead_max_names : DirScanner::kListMax);
	Listing ls;
	if (scanner_ && self_listed_depth_ == 0) {
		if (auto got = scanner_->next(path))
			ls = std::move(*got);
		else {
			scanner_.reset(); // out of step: the rest of the walk lists by itself
			ls = list_directory(path, excluded_fn, false);
		}
	} else {
		ls = list_directory(path, excluded_fn, false);
	}
	// Too large for the read-ahead: listed here, and its subtree too.
	struct SelfListed {
		Builder &b;
		bool on;
		~SelfListed()
		{
			if (on)
				b.self_listed_depth_--;
		}
	} self_listed{*this, ls.walker_lists};
	if (ls.walker_lists) {
		self_listed_depth_++;
		ls = list_directory(path, excluded_fn, false);
	}
	if (ls.error) {
		e.error = std::string("opendir: ") + std::strerror(ls.error);
		record_error(path, e.error);
	}
	const std::vector<std::string> &names = ls.names;
	DirNode *dir = new_node(node, l, i, prev, names.size());
	std::string prefix = path == "/" ? "/" : path + "/";
	// The parent snapshot's entries are read alongside, in the same (name) order: one leaf at
	// a time in memory, whatever the size of the directory.
	std::optional<DirIterator> before;
	Entry pe;
	bool have_pe = false;
	auto next_prev = [&] {
		try {
			have_pe = before->next(pe);
		} catch (const Error &err) {
			// The parent is only a shortcut: if it cannot be read, read everything.
			if (err.code() == Code::Canceled)
				throw;
			have_pe = false;
		}
		if (!have_pe)
			before.reset();
	};
	if (dir->has_prev) {
		try {
			before.emplace(repo_, dir->prev_tree);
		} catch (const Error &err) {
			if (err.code() == Code::Canceled)
				throw;
		}
		if (before)
			next_prev();
	}
	size_t matched = 0;
	bool gone = false;
	for (size_t k = 0; k < names.size(); k++) {
		const std::string &n = names[k];
		std::string child = prefix + n;
		while (have_pe && pe.name < n) {
			gone = true; // in the parent snapshot, not here any more
			next_prev();
		}
		const Entry *match = have_pe && pe.name == n ? &pe : nullptr;
		struct stat st;
		if (int err = ls.stat(k, st)) {
			record_error(child, err == ENOENT ? "vanished during backup" : std::string("lstat: ") + std::strerror(err));
			continue;
		}
		auto [cl, ci] = append(dir, stat_entry(child, n, st, match));
		if (match)
			matched++;
		dispatch(dir, cl, ci, child, nullptr, match);
		if (match)
			next_prev();
	}
	// Entries gone, added, or not read: the directory's tree is encoded anew.
	if (!dir->has_prev || gone || have_pe || matched != dir->appended)
		dir->changed = true;
	// The walker is done with it: its last leaf, then the directory.
	entry_done(dir, dir->leaves.size() - 1);
	dir_done(dir);
}

void Builder::virtual_dir(DirNode *node, size_t l, size_t i, const std::string &path, const VNode &v, const Entry *prev)
{
	DirNode *dir = new_node(node, l, i, prev, v.children.size());
	dir->changed = true; // never compared: a few nodes at most
	std::string prefix = path == "/" ? "/" : path + "/";
	struct Kid {
		std::string name;
		const VNode *v;
		std::pair<size_t, size_t> at;
	};
	std::vector<Kid> kids;
	for (const auto &[n, c] : v.children) {
		struct stat st;
		// Only reachable for a vanished path on the way to a pushed one.
		if (::lstat((prefix + n).c_str(), &st) != 0)
			fail_errno(prefix + n, errno);
		auto at = append(dir, stat_entry(prefix + n, n, st));
		kids.push_back({n, c.get(), at});
	}
	for (size_t k = 0; k < kids.size(); k++) {
		Entry pc;
		bool have = false;
		try {
			have = dir->has_prev && find_in_directory(repo_, dir->prev_tree, kids[k].name, pc);
		} catch (const Error &err) {
			if (err.code() == Code::Canceled)
				throw;
			// The parent is only a shortcut: without it, everything is read.
		}
		dispatch(dir, kids[k].at.first, kids[k].at.second, prefix + kids[k].name, kids[k].v, have ? &pc : nullptr);
	}
	entry_done(dir, dir->leaves.size() - 1);
	dir_done(dir);
}

Entry Builder::build_root(const VNode &top, const Entry *prev)
{
	struct stat st;
	if (::lstat("/", &st) != 0)
		fail_errno("/", errno);
	top_.expected = 1;
	top_.leaves.emplace_back();
	top_.leaves[0].entries.reserve(1);
	append(&top_, stat_entry("/", "/", st));
	dispatch(&top_, 0, 0, "/", &top, prev);
	flush_batch();
	// Every file and directory is handed out: wait for the workers, reporting meanwhile.
	while (!pool_.wait_for(std::chrono::milliseconds(200)))
		report(true);
	report(true);
	entry_done(&top_, 0); // the walker's hold
	Entry &root = top_.entry(0, 0);
	if (top_.leaves[0].pending != 0 || !root.has_tree)
		fail(Code::Error, "push: the tree was not completed");
	header.files = count_.files;
	header.directories = count_.directories;
	header.size = size_;
	std::lock_guard lk(mu_);
	std::sort(header.errors.begin(), header.errors.end());
	return root;
}

} // namespace plakar::build

namespace plakar::build {

// The pushed paths made absolute and normal, each checked to exist (Code::NotFound before
// anything is written), sorted bytewise, without duplicates or paths inside another.
std::vector<std::string> push_roots(const std::vector<std::string> &paths)
{
	std::vector<std::string> abs;
	for (const auto &p : paths) {
		if (p.empty())
			fail(Code::Invalid, "empty path");
		std::error_code ec;
		std::filesystem::path a = std::filesystem::absolute(p, ec);
		if (ec)
			fail(Code::Invalid, p + ": " + ec.message());
		std::string s = a.lexically_normal().string();
		while (s.size() > 1 && s.back() == '/')
			s.pop_back();
		struct stat st;
		if (::lstat(s.c_str(), &st) != 0)
			fail_errno(p, errno);
		abs.push_back(s);
	}
	std::sort(abs.begin(), abs.end());
	abs.erase(std::unique(abs.begin(), abs.end()), abs.end());
	std::vector<std::string> roots;
	for (const auto &p : abs) {
		bool inside = false;
		for (const auto &r : roots)
			if (r == "/" || (p.size() > r.size() && p.compare(0, r.size(), r) == 0 && p[r.size()] == '/'))
				inside = true;
		if (!inside)
			roots.push_back(p);
	}
	return roots;
}

// The directories on the way to the roots, from "/": the walk starts there.
VNode virtual_tree(const std::vector<std::string> &roots)
{
	VNode top;
	for (const auto &r : roots) {
		VNode *at = &top;
		for (const auto &c : split_path(r)) {
			auto &slot = at->children[c];
			if (!slot)
				slot = std::make_unique<VNode>();
			at = slot.get();
		}
		at->pushed = true;
	}
	return top;
}

} // namespace plakar::build

namespace plakar {

using namespace build;

SnapshotHeader push(Repository &repo, const std::vector<std::string> &paths, const PushOptions &opts_in, PushStats *stats)
{
	if (paths.empty())
		fail(Code::Invalid, "nothing to push: no path given");
	for (const auto &p : opts_in.exclude_patterns)
		if (p.empty())
			fail(Code::Invalid, "empty exclude pattern");
	PushOptions opts = opts_in;
	for (auto &p : repo.store().local_paths())
		opts.exclude.push_back(std::move(p));
	// A parent named by the caller is resolved before anything is written: an unknown or
	// ambiguous one fails the push.
	std::optional<SnapshotHeader> named_parent;
	if (opts.use_parent && !opts.parent.empty())
		named_parent = load_snapshot(repo, resolve_snapshot(repo, opts.parent));
	std::vector<std::string> roots = push_roots(paths);
	VNode top = virtual_tree(roots);

	// A shared lock, taken before the index is looked at: it tells a concurrent gc that this
	// push may reuse what the index names now (docs/format.md, "Locks and garbage collection").
	auto lock = RepoLock::acquire(repo, LockType::Shared);
	repo.begin_write();

	Builder b(repo, opts);
	b.header.id = new_snapshot_id();
	b.header.paths = roots;
	b.header.tags = opts.tags;
	b.header.command_line = opts.command_line;
	b.header.hostname = host_name();
	b.header.username = b.user_name(::geteuid());
	b.header.time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
	                       std::chrono::system_clock::now().time_since_epoch())
	                       .count();
	try {
		std::optional<SnapshotHeader> parent = std::move(named_parent);
		if (opts.use_parent && !parent) {
			try {
				parent = find_parent(repo, roots, b.header.hostname);
			} catch (const Error &) {
				// Only a shortcut: a damaged snapshot elsewhere must not stop a backup.
			}
		}
		b.header.root = b.build_root(top, parent ? &parent->root : nullptr);
	} catch (...) {
		// Keep what was stored: index it so the next push reuses it. The workers stop first.
		b.stop();
		try {
			repo.flush();
		} catch (...) {
		}
		throw;
	}
	if (stats)
		*stats = b.stats;
	repo.flush();
	// Suspended longer than a lock lives (a laptop asleep), this push may have been taken for
	// dead by a gc that then deleted packs it reuses: do not commit a snapshot that could
	// reference them. What it stored is indexed and reused by the next push.
	if (!lock->held_throughout())
		fail(Code::Locked, "the push's lock lapsed (no refresh for " + std::to_string(kLockStale.count() / 60) +
		                       " minutes): snapshot not committed, run the push again");
	store_snapshot(repo, b.header);
	return b.header;
}

} // namespace plakar
