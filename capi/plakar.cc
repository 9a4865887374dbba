// The C ABI: thin shims over libplakar. Every entry point clears the thread's last error,
// runs inside guard(), which turns any exception into a code plus a one-line message, and
// never lets an exception cross the ABI.
#include "plakar/plakar.h"

#include "internal.h"
#include "crypto/crypto.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/pool.h"
#include "net/remote_store.h"
#include "repository/repository.h"
#include "snapshot/file_reader.h"
#include "snapshot/builder.h"
#include "snapshot/restore.h"
#include "snapshot/snapshot.h"

using namespace plakar;
using namespace plakar::capi;

namespace {
thread_local std::string g_message;
thread_local int g_code = PLAKAR_OK;
// The message could not be stored (out of memory): plakar_error_last says so instead.
thread_local bool g_message_lost = false;
} // namespace

namespace plakar::capi {

void clear_error() noexcept
{
	g_message.clear();
	g_code = PLAKAR_OK;
	g_message_lost = false;
}

int set_error(int code, const char *msg) noexcept
{
	g_code = code;
	g_message.clear();
	g_message_lost = false;
	try {
		append_escaped(g_message, msg);
	} catch (...) {
		g_message.clear();
		g_message_lost = true;
	}
	return code;
}

void append_escaped(std::string &out, const char *msg)
{
	std::string &g_message = out;
	// One line: control characters (a file name may hold a newline) are escaped.
	for (const char *p = msg; *p; p++) {
		unsigned char c = static_cast<unsigned char>(*p);
		if (c == '\n')
			g_message += "\\n";
		else if (c < 0x20 || c == 0x7f) {
			char b[5];
			std::snprintf(b, sizeof b, "\\x%02x", c);
			g_message += b;
		} else
			g_message.push_back(char(c));
	}
}

void register_stores() { net::register_remote_stores(); }

void require(bool ok, const char *what)
{
	if (!ok)
		fail(Code::Invalid, what);
}

ProgressFn progress_of(plakar_progress_cb cb, void *payload)
{
	if (!cb)
		return {};
	return [cb, payload](const Event &ev) {
		plakar_event e{};
		e.version = PLAKAR_EVENT_VERSION;
		e.kind = int(ev.kind);
		e.path = ev.path ? ev.path->c_str() : nullptr;
		e.message = ev.message ? ev.message->c_str() : nullptr;
		e.files = ev.counters.files;
		e.directories = ev.counters.directories;
		e.bytes = ev.counters.bytes;
		e.errors = ev.counters.errors;
		e.stored_bytes = ev.counters.stored_bytes;
		return cb(&e, payload) == 0;
	};
}

} // namespace plakar::capi

namespace {

// Copies the caller's passphrase once, in place, and wipes that copy when the call is over
// (the engine only takes views of it).
struct PassphraseCopy {
	std::optional<std::string> &s;
	PassphraseCopy(std::optional<std::string> &out, const char *p, size_t len) : s(out)
	{
		if (p)
			s.emplace(p, len ? len : std::strlen(p));
	}
	~PassphraseCopy()
	{
		if (s)
			crypto::wipe(s->data(), s->size());
	}
	PassphraseCopy(const PassphraseCopy &) = delete;
	PassphraseCopy &operator=(const PassphraseCopy &) = delete;
};

StoreOptions store_options(const char *token, const char *token_file, const char *ca_file)
{
	StoreOptions so;
	if (token)
		so.token = token;
	if (token_file)
		so.token_file = token_file;
	if (ca_file)
		so.tls_ca_file = ca_file;
	return so;
}

std::string absolute_uri(const char *uri)
{
	require(uri && *uri, "repository location is empty");
	std::string u = uri;
	if (u.find("://") != std::string::npos || u[0] == '/')
		return u;
	char cwd[4096];
	if (!::getcwd(cwd, sizeof cwd))
		fail_errno("getcwd", errno);
	return std::string(cwd) + "/" + u;
}

plakar_repository *wrap(std::unique_ptr<Repository> r)
{
	auto *h = new plakar_repository;
	h->id = r->config().id_string();
	h->repo = std::move(r);
	return h;
}

} // namespace

extern "C" {

void plakar_version(int *major, int *minor, int *patch)
{
	if (major)
		*major = PLAKAR_VERSION_MAJOR;
	if (minor)
		*minor = PLAKAR_VERSION_MINOR;
	if (patch)
		*patch = PLAKAR_VERSION_PATCH;
}

const char *plakar_version_string(void) { return PLAKAR_VERSION_STRING; }

const char *plakar_error_last(void) { return g_message_lost ? "out of memory" : g_message.c_str(); }
int plakar_error_last_code(void) { return g_code; }

const char *plakar_error_string(int code)
{
	switch (code) {
	case PLAKAR_OK: return "ok";
	case PLAKAR_ENOTFOUND: return "not found";
	case PLAKAR_EAUTH: return "authentication failed";
	case PLAKAR_ECORRUPT: return "corrupted data";
	case PLAKAR_ELOCKED: return "locked";
	case PLAKAR_EEXISTS: return "already exists";
	case PLAKAR_EINVALID: return "invalid argument";
	case PLAKAR_EAMBIGUOUS: return "ambiguous";
	case PLAKAR_ECANCELED: return "canceled";
	case PLAKAR_EPARTIAL: return "partially failed";
	case PLAKAR_EVERSION: return "unsupported version";
	case PLAKAR_EUNSUPPORTED: return "unsupported";
	default: return "error";
	}
}

int plakar_cpu_count(void) { return int(usable_cores()); }

void plakar_string_free(char *s) { std::free(s); }

int plakar_repository_create(plakar_repository **out, const char *uri, const plakar_create_options *opts)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(opts, "create options are required (a passphrase, or encryption = 0)");
		require(opts->version == PLAKAR_CREATE_OPTIONS_VERSION, "unknown plakar_create_options version");
		CreateOptions o;
		o.encryption = opts->encryption != 0;
		PassphraseCopy wiped(o.passphrase, opts->passphrase, opts->passphrase_len);
		if (opts->kdf_log2_n)
			o.kdf.log2_n = opts->kdf_log2_n;
		if (opts->compression_level)
			o.compression_level = opts->compression_level;
		if (opts->chunk_min)
			o.chunks.min = opts->chunk_min;
		if (opts->chunk_avg)
			o.chunks.avg = opts->chunk_avg;
		if (opts->chunk_max)
			o.chunks.max = opts->chunk_max;
		if (opts->pack_size)
			o.pack_size = opts->pack_size;
		o.store = store_options(opts->token, opts->token_file, opts->tls_ca_file);
		*out = wrap(Repository::create(absolute_uri(uri), o));
	});
}

int plakar_repository_open(plakar_repository **out, const char *uri, const plakar_open_options *opts)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(!opts || opts->version == PLAKAR_OPEN_OPTIONS_VERSION, "unknown plakar_open_options version");
		require(!opts || opts->cpu >= 0, "cpu must not be negative");
		std::optional<std::string> pass;
		PassphraseCopy wiped(pass, opts ? opts->passphrase : nullptr, opts ? opts->passphrase_len : 0);
		OpenOptions oo;
		if (opts) {
			oo.use_cache = !opts->no_cache;
			oo.cpu = unsigned(opts->cpu);
			if (opts->cache_dir)
				oo.cache_root = opts->cache_dir;
			if (opts->agent)
				oo.agent = opts->agent;
			oo.store = store_options(opts->token, opts->token_file, opts->tls_ca_file);
		}
		*out = wrap(Repository::open(absolute_uri(uri), pass, oo));
	});
}

void plakar_repository_free(plakar_repository *repo) { delete repo; }

int plakar_repository_encrypted(const plakar_repository *repo)
{
	int encrypted = 0;
	int rc = guard([&] {
		require(repo, "repository is NULL");
		encrypted = repo->repo->encrypted() ? 1 : 0;
	});
	return rc != PLAKAR_OK ? rc : encrypted;
}

const char *plakar_repository_id(const plakar_repository *repo) { return repo ? repo->id.c_str() : ""; }

int plakar_snapshot_push(plakar_snapshot **out, plakar_repository *repo, const char *const *paths, size_t npaths,
                         const plakar_push_options *opts)
{
	std::unique_ptr<plakar_snapshot> snap;
	std::string partial; // the message of PLAKAR_EPARTIAL, built inside guard (it allocates)
	int rc = guard([&] {
		if (out)
			*out = nullptr;
		require(repo, "repository is NULL");
		require(paths && npaths, "no path to push");
		require(!opts || opts->version == PLAKAR_PUSH_OPTIONS_VERSION, "unknown plakar_push_options version");
		std::vector<std::string> ps;
		for (size_t i = 0; i < npaths; i++) {
			require(paths[i] && *paths[i], "empty path");
			ps.emplace_back(paths[i]);
		}
		PushOptions po;
		if (opts) {
			for (size_t i = 0; i < opts->ntags; i++) {
				require(opts->tags && opts->tags[i], "NULL tag");
				po.tags.emplace_back(opts->tags[i]);
			}
			if (opts->command_line)
				po.command_line = opts->command_line;
			require(!opts->nexcludes || opts->excludes, "excludes is NULL");
			for (size_t i = 0; i < opts->nexcludes; i++) {
				require(opts->excludes[i] && *opts->excludes[i], "empty exclude pattern");
				po.exclude_patterns.emplace_back(opts->excludes[i]);
			}
			if (opts->parent) {
				po.use_parent = *opts->parent != '\0';
				po.parent = opts->parent;
			}
			po.progress = progress_of(opts->progress, opts->payload);
		}
		CallScope lk(repo);
		snap = std::make_unique<plakar_snapshot>();
		snap->owner = repo;
		snap->h = push(*repo->repo, ps, po);
		snap->id = snap->h.id_string();
		const auto &errs = snap->h.errors;
		if (!errs.empty())
			partial = std::to_string(errs.size()) + " item" + (errs.size() > 1 ? "s" : "") +
			          " could not be backed up (first: " + errs[0].first + ": " + errs[0].second + ")";
	});
	if (rc != PLAKAR_OK)
		return rc;
	if (!partial.empty())
		rc = set_error(PLAKAR_EPARTIAL, partial.c_str());
	if (out)
		*out = snap.release();
	return rc;
}

int plakar_snapshot_list_new(plakar_snapshot_list **out, plakar_repository *repo)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(repo, "repository is NULL");
		auto list = std::make_unique<plakar_snapshot_list>();
		CallScope lk(repo);
		auto reading = protect_reads(*repo->repo); // before any header is read
		for (auto &h : list_snapshots(*repo->repo, &list->unreadable)) {
			plakar_snapshot s;
			s.owner = repo;
			s.reading = reading;
			s.id = h.id_string();
			s.h = std::move(h);
			list->items.push_back(std::move(s));
		}
		*out = list.release();
	});
}

size_t plakar_snapshot_list_count(const plakar_snapshot_list *list) { return list ? list->items.size() : 0; }

const plakar_snapshot *plakar_snapshot_list_get(const plakar_snapshot_list *list, size_t i)
{
	return list && i < list->items.size() ? &list->items[i] : nullptr;
}

void plakar_snapshot_list_free(plakar_snapshot_list *list) { delete list; }

size_t plakar_snapshot_list_unreadable_count(const plakar_snapshot_list *list)
{
	return list ? list->unreadable.size() : 0;
}

const char *plakar_snapshot_list_unreadable(const plakar_snapshot_list *list, size_t i)
{
	return list && i < list->unreadable.size() ? list->unreadable[i].c_str() : nullptr;
}

int plakar_snapshot_open(plakar_snapshot **out, plakar_repository *repo, const char *id_or_prefix)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(repo, "repository is NULL");
		require(id_or_prefix, "snapshot id is NULL");
		CallScope lk(repo);
		auto s = std::make_unique<plakar_snapshot>();
		s->owner = repo;
		s->reading = protect_reads(*repo->repo); // before the header is read
		std::string name = resolve_snapshot(*repo->repo, id_or_prefix);
		s->h = load_snapshot(*repo->repo, name);
		s->id = s->h.id_string();
		*out = s.release();
	});
}

void plakar_snapshot_free(plakar_snapshot *snap) { delete snap; }

int plakar_snapshot_dup(plakar_snapshot **out, const plakar_snapshot *snap)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(snap && snap->owner, "snapshot is NULL");
		*out = new plakar_snapshot(*snap); // shares the reader lock, which lives while any copy does
	});
}

const char *plakar_snapshot_id(const plakar_snapshot *s) { return s ? s->id.c_str() : ""; }
int64_t plakar_snapshot_time(const plakar_snapshot *s) { return s ? s->h.time_ns : 0; }
const char *plakar_snapshot_hostname(const plakar_snapshot *s) { return s ? s->h.hostname.c_str() : ""; }
const char *plakar_snapshot_username(const plakar_snapshot *s) { return s ? s->h.username.c_str() : ""; }
const char *plakar_snapshot_command_line(const plakar_snapshot *s) { return s ? s->h.command_line.c_str() : ""; }
size_t plakar_snapshot_path_count(const plakar_snapshot *s) { return s ? s->h.paths.size() : 0; }
const char *plakar_snapshot_path(const plakar_snapshot *s, size_t i)
{
	return s && i < s->h.paths.size() ? s->h.paths[i].c_str() : nullptr;
}
size_t plakar_snapshot_tag_count(const plakar_snapshot *s) { return s ? s->h.tags.size() : 0; }
const char *plakar_snapshot_tag(const plakar_snapshot *s, size_t i)
{
	return s && i < s->h.tags.size() ? s->h.tags[i].c_str() : nullptr;
}
uint64_t plakar_snapshot_files(const plakar_snapshot *s) { return s ? s->h.files : 0; }
uint64_t plakar_snapshot_directories(const plakar_snapshot *s) { return s ? s->h.directories : 0; }
uint64_t plakar_snapshot_size(const plakar_snapshot *s) { return s ? s->h.size : 0; }
size_t plakar_snapshot_error_count(const plakar_snapshot *s) { return s ? s->h.errors.size() : 0; }

int plakar_snapshot_error(const char **path, const char **message, const plakar_snapshot *s, size_t i)
{
	return guard([&] {
		require(s && i < s->h.errors.size(), "error index out of range");
		if (path)
			*path = s->h.errors[i].first.c_str();
		if (message)
			*message = s->h.errors[i].second.c_str();
	});
}

int plakar_snapshot_stat(plakar_entry **out, const plakar_snapshot *snap, const char *path)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(snap && snap->owner, "snapshot is NULL");
		CallScope lk(snap->owner);
		auto e = std::make_unique<plakar_entry>();
		e->e = lookup(*snap->owner->repo, snap->h, path ? path : "/");
		*out = e.release();
	});
}

int plakar_snapshot_ls(plakar_entry_list **out, const plakar_snapshot *snap, const char *path)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(snap && snap->owner, "snapshot is NULL");
		CallScope lk(snap->owner);
		Repository &repo = *snap->owner->repo;
		Entry e = lookup(repo, snap->h, path ? path : "/");
		auto list = std::make_unique<plakar_entry_list>();
		if (e.type == EntryType::Directory) {
			if (e.has_tree)
				for_each_entry(repo, e.tree, [&](Entry &c) {
					list->items.push_back({std::move(c)});
					return true;
				});
		} else {
			list->items.push_back({std::move(e)});
		}
		*out = list.release();
	});
}

size_t plakar_entry_list_count(const plakar_entry_list *l) { return l ? l->items.size() : 0; }
const plakar_entry *plakar_entry_list_get(const plakar_entry_list *l, size_t i)
{
	return l && i < l->items.size() ? &l->items[i] : nullptr;
}
void plakar_entry_list_free(plakar_entry_list *l) { delete l; }
void plakar_entry_free(plakar_entry *e) { delete e; }

const char *plakar_entry_name(const plakar_entry *e) { return e ? e->e.name.c_str() : ""; }
int plakar_entry_type(const plakar_entry *e) { return e ? int(e->e.type) : 0; }
uint32_t plakar_entry_mode(const plakar_entry *e) { return e ? e->e.mode : 0; }
uint32_t plakar_entry_uid(const plakar_entry *e) { return e ? e->e.uid : 0; }
uint32_t plakar_entry_gid(const plakar_entry *e) { return e ? e->e.gid : 0; }
const char *plakar_entry_username(const plakar_entry *e) { return e ? e->e.uname.c_str() : ""; }
const char *plakar_entry_groupname(const plakar_entry *e) { return e ? e->e.gname.c_str() : ""; }
uint64_t plakar_entry_size(const plakar_entry *e) { return e ? e->e.size : 0; }
int64_t plakar_entry_mtime(const plakar_entry *e) { return e ? e->e.mtime_ns : 0; }
uint64_t plakar_entry_nlink(const plakar_entry *e) { return e ? e->e.nlink : 0; }
const char *plakar_entry_symlink(const plakar_entry *e) { return e ? e->e.target.c_str() : ""; }
const char *plakar_entry_error(const plakar_entry *e) { return e ? e->e.error.c_str() : ""; }
int64_t plakar_entry_ctime(const plakar_entry *e) { return e ? e->e.ctime_ns : 0; }
uint64_t plakar_entry_inode(const plakar_entry *e) { return e ? e->e.ino : 0; }
uint64_t plakar_entry_device(const plakar_entry *e) { return e ? e->e.dev : 0; }
uint64_t plakar_entry_rdev(const plakar_entry *e) { return e ? e->e.rdev : 0; }
size_t plakar_entry_xattr_count(const plakar_entry *e) { return e ? e->e.xattrs.size() : 0; }

int plakar_entry_xattr(const char **name, const void **value, size_t *value_len, const plakar_entry *e, size_t i)
{
	return guard([&] {
		require(e && i < e->e.xattrs.size(), "xattr index out of range");
		const auto &[n, v] = e->e.xattrs[i];
		if (name)
			*name = n.c_str();
		if (value)
			*value = v.data();
		if (value_len)
			*value_len = v.size();
	});
}

int plakar_file_open(plakar_file **out, const plakar_snapshot *snap, const char *path)
{
	return guard([&] {
		require(out, "out is NULL");
		*out = nullptr;
		require(snap && snap->owner, "snapshot is NULL");
		require(path, "path is NULL");
		CallScope lk(snap->owner);
		Entry e = lookup(*snap->owner->repo, snap->h, path);
		if (e.type != EntryType::File)
			fail(Code::Invalid, std::string(path) + ": not a regular file");
		auto f = std::make_unique<plakar_file>();
		f->owner = snap->owner;
		f->reader = std::make_unique<FileReader>(*snap->owner->repo, e);
		*out = f.release();
	});
}

int plakar_file_read(size_t *nread, plakar_file *f, void *buf, size_t len)
{
	return guard([&] {
		if (nread)
			*nread = 0;
		require(f && f->reader, "file is NULL");
		require(buf || !len, "buffer is NULL");
		require(nread, "nread is NULL");
		CallScope lk(f->owner);
		*nread = f->reader->read(static_cast<uint8_t *>(buf), len);
	});
}

uint64_t plakar_file_size(const plakar_file *f) { return f && f->reader ? f->reader->size() : 0; }
void plakar_file_free(plakar_file *f) { delete f; }

int plakar_file_seek(plakar_file *f, uint64_t offset)
{
	return guard([&] {
		require(f && f->reader, "file is NULL");
		CallScope lk(f->owner);
		f->reader->seek(offset);
	});
}

int plakar_snapshot_pull(const plakar_snapshot *snap, const char *path, const plakar_pull_options *opts)
{
	return guard([&] {
		require(snap && snap->owner, "snapshot is NULL");
		require(!opts || opts->version == PLAKAR_PULL_OPTIONS_VERSION, "unknown plakar_pull_options version");
		PullOptions po;
		if (opts) {
			po.to = opts->to ? opts->to : "";
			po.rebase = opts->rebase != 0;
			po.progress = progress_of(opts->progress, opts->payload);
			require(opts->overwrite >= PLAKAR_OVERWRITE_ALWAYS && opts->overwrite <= PLAKAR_OVERWRITE_NEVER,
			        "unknown overwrite policy");
			po.overwrite = Overwrite(opts->overwrite);
			po.force = opts->force != 0;
			po.dry_run = opts->dry_run != 0;
			po.verify = opts->verify != 0;
		}
		CallScope lk(snap->owner);
		pull(*snap->owner->repo, snap->h, path && *path ? path : "/", po);
	});
}

} // extern "C"
