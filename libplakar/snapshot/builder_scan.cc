// push: listing directories (list_directory), and the walker's read-ahead (DirScanner).
#include "snapshot/builder_internal.h"

namespace plakar::build {

Listing list_directory(const std::string &path, const ExcludeFn &excluded, bool stat_all, size_t max_names)
{
	Listing out;
	out.path = path;
	DIR *d = ::opendir(path.c_str());
	if (!d) {
		out.error = errno ? errno : EIO;
		return out;
	}
	struct CloseDir {
		DIR *d;
		~CloseDir() { ::closedir(d); }
	} closer{d};
	while (auto *de = ::readdir(d)) {
		if (std::strcmp(de->d_name, ".") == 0 || std::strcmp(de->d_name, "..") == 0)
			continue;
		if (out.names.size() >= max_names) {
			out.names.clear();
			out.walker_lists = true;
			return out;
		}
		out.names.emplace_back(de->d_name);
	}
	std::sort(out.names.begin(), out.names.end());
	const std::string prefix = path == "/" ? "/" : path + "/";
	std::erase_if(out.names, [&](const std::string &n) { return excluded(prefix + n, n); });
	if (!stat_all) {
		out.dir = Fd(::fcntl(::dirfd(d), F_DUPFD_CLOEXEC, 0));
		if (out.dir.fd < 0) {
			out.error = errno ? errno : EIO;
			out.names.clear();
		}
		return out;
	}
	out.st.resize(out.names.size());
	out.st_error.assign(out.names.size(), 0);
	const int dfd = ::dirfd(d);
	for (size_t i = 0; i < out.names.size(); i++)
		if (::fstatat(dfd, out.names[i].c_str(), &out.st[i], AT_SYMLINK_NOFOLLOW) != 0)
			out.st_error[i] = errno ? errno : EIO;
	return out;
}

DirScanner::DirScanner(std::string root, ExcludeFn excluded, size_t list_max)
    : root_(std::move(root)), excluded_(std::move(excluded)), list_max_(list_max), thread_([this] { run(); })
{
}

DirScanner::~DirScanner()
{
	{
		std::lock_guard lk(mu_);
		stop_ = true;
	}
	cv_.notify_all();
	thread_.join();
}

void DirScanner::run()
{
	try {
		visit(root_);
	} catch (...) {
		// Out of memory, most likely: the walker finds the queue ended and lists by itself.
	}
	std::lock_guard lk(mu_);
	done_ = true;
	cv_.notify_all();
}

bool DirScanner::push(Listing l)
{
	std::unique_lock lk(mu_);
	cv_.wait(lk, [&] { return stop_ || queue_.empty() || queued_names_ < kAheadNames; });
	if (stop_)
		return false;
	queued_names_ += l.names.size();
	queue_.push_back(std::move(l));
	cv_.notify_all();
	return true;
}

bool DirScanner::visit(const std::string &path)
{
	Listing l = list_directory(path, excluded_, true, list_max_);
	// The subdirectories are visited after the listing is handed over, in the walker's order:
	// the entries in name order, a directory's subtree before the next entry.
	std::vector<std::string> subdirs;
	if (!l.walker_lists) {
		const std::string prefix = path == "/" ? "/" : path + "/";
		for (size_t i = 0; i < l.names.size(); i++)
			if (l.st_error[i] == 0 && S_ISDIR(l.st[i].st_mode))
				subdirs.push_back(prefix + l.names[i]);
	}
	if (!push(std::move(l)))
		return false;
	for (const auto &s : subdirs)
		if (!visit(s))
			return false;
	return true;
}

std::optional<Listing> DirScanner::next(const std::string &path)
{
	std::unique_lock lk(mu_);
	cv_.wait(lk, [&] { return !queue_.empty() || done_; });
	if (queue_.empty() || queue_.front().path != path)
		return std::nullopt;
	Listing l = std::move(queue_.front());
	queue_.pop_front();
	queued_names_ -= l.names.size();
	cv_.notify_all();
	return l;
}

} // namespace plakar::build
