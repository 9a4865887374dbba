/*
 * plakar.h — the C ABI of libplakar, a deduplicating, encrypted, compressed backup engine.
 *
 * This header is the product's contract. Everything the `plakar` command line and the Python
 * bindings do goes through it; nothing else of the library is exported.
 *
 * Conventions (docs/capi.md lists them; `ctest -R capi_conventions` checks this header):
 *  1. Names are plakar_<module>_<verb>, the module being the object acted upon
 *     (plakar_repository_gc, plakar_snapshot_pull, plakar_file_read).
 *  2. Out-parameters come first, then the handle, then the inputs, then the options struct.
 *  3. Every function that can fail returns an int: PLAKAR_OK (0) on success, a negative
 *     PLAKAR_E* code otherwise, and only these functions touch the thread's last error: each
 *     clears it on entry, so plakar_error_last() is never stale. Accessors (functions returning
 *     a value, not a code) and _free functions cannot fail and leave it alone.
 *  4. Results come back in one of four ways: a new handle or string through `T **out` (the
 *     caller frees it with its _free function), a caller-allocated struct whose `version` the
 *     caller sets (plakar_*_init fills it), a count through `size_t *`, or a borrowed pointer
 *     from an accessor, valid while its owner lives. Handles' _free functions accept NULL.
 *  5. An operation that may grow takes an options struct starting with `version`; NULL means
 *     the defaults. Initialize one with its _INIT macro or its plakar_*_options_init()
 *     function (for bindings that cannot use macros); an unknown version is PLAKAR_EINVALID.
 *  6. Callbacks live in the options struct, which has one `payload` passed last to all of them.
 *     A callback that returns int cancels the operation by returning non-zero (it then fails
 *     with PLAKAR_ECANCELED). Callbacks run on the thread that made the call and may call
 *     read-only functions of this library, on the same repository too (its lock is
 *     recursive), but must not free a handle the running operation uses.
 *  7. No function reads the environment: the token, token file, TLS authorities, cache
 *     directory and agent socket are options. (The `plakar` command line reads $PLAKAR_* and
 *     passes them; see docs/cli.md.)
 *  8. Threading: a handle may be used from several threads; calls on one repository handle
 *     (and on the snapshots and files opened from it) are serialized internally, and
 *     different repository handles work fully in parallel. The library's only process-wide
 *     state is a table of store kinds filled once; plakar_agent_serve alone changes process
 *     attributes (see there).
 *  9. No C++ exception leaves this library, out of memory included (PLAKAR_ERROR, "out of
 *     memory").
 */
#ifndef PLAKAR_PLAKAR_H
#define PLAKAR_PLAKAR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PLAKAR_EXTERN __attribute__((visibility("default")))
#define PLAKAR_NODISCARD __attribute__((warn_unused_result))
#else
#define PLAKAR_EXTERN
#define PLAKAR_NODISCARD
#endif

/* ---------------------------------------------------------------- versions */

#define PLAKAR_VERSION_MAJOR 0
#define PLAKAR_VERSION_MINOR 2
#define PLAKAR_VERSION_PATCH 0
#define PLAKAR_VERSION_STRING "0.2.0"

/* The repository format version this library writes (docs/format.md). */
#define PLAKAR_FORMAT_VERSION 1

/* The version of the library actually loaded at run time. Any pointer may be NULL. Until 1.0,
 * every minor version may change the ABI; the shared library's soname carries it
 * (libplakar.so.0.2), so a program is never run against an ABI it was not built for. */
PLAKAR_EXTERN void plakar_version(int *major, int *minor, int *patch);
/* "0.2.0": borrowed, static storage. */
PLAKAR_EXTERN const char *plakar_version_string(void);

/* The number of cores this process may run on (sched_getaffinity), at least 1: what the cpu
 * option of plakar_open_options is clamped to. */
PLAKAR_EXTERN int plakar_cpu_count(void);

/* ---------------------------------------------------------------- errors */

enum {
	PLAKAR_OK = 0,
	PLAKAR_ERROR = -1,      /* anything not covered below (I/O failure, out of memory, ...) */
	PLAKAR_ENOTFOUND = -3,  /* repository, snapshot or path does not exist */
	PLAKAR_EAUTH = -4,      /* wrong passphrase, or a passphrase is required */
	PLAKAR_ECORRUPT = -5,   /* data failed authentication or is malformed; never returned as data */
	PLAKAR_ELOCKED = -6,    /* the repository is locked by another operation */
	PLAKAR_EEXISTS = -7,    /* create over an existing repository */
	PLAKAR_EINVALID = -8,   /* bad argument: NULL handle, unknown option version, malformed URI */
	PLAKAR_EAMBIGUOUS = -9, /* a snapshot prefix matches more than one snapshot */
	PLAKAR_ECANCELED = -10, /* a callback asked to stop */
	PLAKAR_EPARTIAL = -11,  /* the operation finished but some items failed (see the snapshot's errors) */
	PLAKAR_EVERSION = -12,  /* an object or repository of an unknown format version */
	PLAKAR_EUNSUPPORTED = -13 /* the store or platform cannot do this */
};

/*
 * The message describing the last failure on the calling thread, one line, no trailing
 * newline; "" when the last call succeeded. Borrowed: valid until the next plakar_* call on
 * this thread. Never NULL.
 */
PLAKAR_EXTERN const char *plakar_error_last(void);
/* The code that accompanied plakar_error_last() (PLAKAR_OK when the last call succeeded). */
PLAKAR_EXTERN int plakar_error_last_code(void);
/* A static, human-readable name for a code ("not found"). Never NULL. */
PLAKAR_EXTERN const char *plakar_error_string(int code);

/* ---------------------------------------------------------------- handles */

typedef struct plakar_repository plakar_repository;
typedef struct plakar_snapshot plakar_snapshot;
typedef struct plakar_snapshot_list plakar_snapshot_list;
typedef struct plakar_entry plakar_entry;
typedef struct plakar_entry_list plakar_entry_list;
typedef struct plakar_file plakar_file;

/* ---------------------------------------------------------------- progress */

enum plakar_event_kind {
	PLAKAR_EVENT_FILE = 1,      /* a file was fully processed (path, size) */
	PLAKAR_EVENT_DIRECTORY = 2, /* a directory was fully processed */
	PLAKAR_EVENT_ERROR = 3,     /* an item failed; message says why; the operation goes on */
	PLAKAR_EVENT_BYTES = 4,     /* periodic: counters advanced */
	/* pull with dry_run only: what the restore would do at path (nothing is written) */
	PLAKAR_EVENT_CREATE = 5,    /* path would be created */
	PLAKAR_EVENT_REPLACE = 6,   /* the item at path would be replaced */
	PLAKAR_EVENT_REMOVE = 7,    /* the non-empty directory at path would be removed (force) */
	PLAKAR_EVENT_SKIP = 8,      /* the item at path would be kept (overwrite policy) */
	/* pull, archives: the repository holds a bad copy of some data (damaged, or stored under an id it
	 * does not match by a writer holding the key); another copy was used, so the restore is
	 * right. message names the blob and its pack; `check -read-data` reports it too. */
	PLAKAR_EVENT_WARNING = 9
};

/*
 * Passed to progress callbacks. Borrowed: valid only during the callback. Counters are
 * cumulative for the running operation.
 */
typedef struct plakar_event {
	unsigned int version; /* PLAKAR_EVENT_VERSION */
	int kind;             /* enum plakar_event_kind */
	const char *path;     /* the item concerned, or NULL: the source path during push,
	                         the destination path during pull */
	const char *message;  /* the error, for PLAKAR_EVENT_ERROR, else NULL */
	uint64_t files;       /* files processed so far */
	uint64_t directories; /* directories processed so far */
	uint64_t bytes;       /* bytes of file content processed so far */
	uint64_t errors;      /* items that failed so far */
	uint64_t stored_bytes; /* bytes written to the repository so far (push only) */
} plakar_event;
#define PLAKAR_EVENT_VERSION 1

/* Return 0 to continue, non-zero to cancel. */
typedef int (*plakar_progress_cb)(const plakar_event *event, void *payload);

/* ---------------------------------------------------------------- repositories */

/*
 * Repository URIs: "/abs/path" or "fs:///abs/path" (filesystem store), "sqlite:///abs/file",
 * "plakar://HOST[:PORT]" and "plakar+tls://HOST[:PORT][?pin=PIN]" (a server, docs/protocol.md).
 * A relative path is taken relative to the current directory. There is no default repository
 * in the library (it would come from the environment); the command line's is
 * $PLAKAR_REPOSITORY, else ~/.plakar.
 */

/* Frees a string returned by this library. NULL is fine. */
PLAKAR_EXTERN void plakar_string_free(char *s);

typedef struct plakar_create_options {
	unsigned int version;       /* PLAKAR_CREATE_OPTIONS_VERSION */
	int encryption;             /* 1 (default): encrypted; 0: plaintext, still keyed and checked */
	const char *passphrase;     /* required when encryption is on; bytes, not necessarily NUL-free */
	size_t passphrase_len;      /* length of passphrase; 0 with a non-NULL passphrase means strlen */
	int kdf_log2_n;             /* scrypt cost as log2(N); 0 = default (16, with r = 8, p = 2:
	                               64 MiB, about 0.5 s). Below 16 only for tests */
	int compression_level;      /* zstd level 1..19; 0 = default (3) */
	uint32_t chunk_min;         /* FastCDC sizes in bytes; 0 = defaults (512 KiB / 1 MiB / 8 MiB) */
	uint32_t chunk_avg;
	uint32_t chunk_max;
	uint32_t pack_size;         /* target packfile size; 0 = default (16 MiB) */
	/* Credentials of a plakar:// or plakar+tls:// store, as in plakar_open_options. */
	const char *token;
	const char *token_file;
	const char *tls_ca_file;
} plakar_create_options;
#define PLAKAR_CREATE_OPTIONS_VERSION 1
#define PLAKAR_CREATE_OPTIONS_INIT {PLAKAR_CREATE_OPTIONS_VERSION, 1, NULL, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL}
PLAKAR_EXTERN void plakar_create_options_init(plakar_create_options *opts);

typedef struct plakar_open_options {
	unsigned int version;   /* PLAKAR_OPEN_OPTIONS_VERSION */
	const char *passphrase; /* needed for encrypted repositories; must be NULL for plaintext ones
	                           (see plakar_repository_open) */
	size_t passphrase_len;  /* 0 with a non-NULL passphrase means strlen */
	int cpu;                /* CPU budget of push and pull: at most this many threads compute at
	                           once, the calling thread included; 0 = max(1, cores - 1); above
	                           plakar_cpu_count() it is clamped; < 0: EINVAL */
	int no_cache;           /* 1: do not use the local cache (docs/storage.md, "Local cache") */
	const char *cache_dir;  /* where the caches of repositories live, one directory per repository
	                           id; NULL: .cache/plakar in the home directory of the process's user
	                           (the passwd database, not $HOME) */
	/* A key agent's socket (see "key agent" below), or NULL. The master key is asked there first
	 * (then no passphrase is needed and no key derivation runs); after a passphrase opened the
	 * repository, its master key is handed to the agent. */
	const char *agent;
	/* plakar:// and plakar+tls:// only: the client token "NAME:SECRET" (plakar_token_new), or
	 * else the file holding it on its first line; without either, opening fails with
	 * PLAKAR_EAUTH. tls_ca_file: PEM authorities a plakar+tls:// server's certificate must
	 * chain to when the URI gives no pin (NULL: the system's). */
	const char *token;
	const char *token_file;
	const char *tls_ca_file;
} plakar_open_options;
#define PLAKAR_OPEN_OPTIONS_VERSION 1
#define PLAKAR_OPEN_OPTIONS_INIT {PLAKAR_OPEN_OPTIONS_VERSION, NULL, 0, 0, 0, NULL, NULL, NULL, NULL, NULL}
PLAKAR_EXTERN void plakar_open_options_init(plakar_open_options *opts);

/*
 * Creates a new repository at uri and returns it opened. Fails with PLAKAR_EEXISTS when a
 * repository (or any non-empty directory) is already there, PLAKAR_EINVALID when encryption
 * is on and no passphrase is given (opts NULL means the defaults, which encrypt, so it fails
 * with PLAKAR_EINVALID). Caller frees *out with plakar_repository_free.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_repository_create(plakar_repository **out, const char *uri,
                                                            const plakar_create_options *opts);

/*
 * Opens an existing repository. PLAKAR_ENOTFOUND when nothing is there, PLAKAR_ECORRUPT when
 * what is there is not a valid repository, PLAKAR_EAUTH on a wrong or missing passphrase
 * (the error never says which part of the check failed), PLAKAR_EVERSION for a newer format.
 * opts may be NULL (plaintext repositories need nothing). Caller frees *out.
 * A passphrase given for a repository whose CONFIG says plaintext is refused (PLAKAR_EAUTH):
 * whoever can write the store could have replaced CONFIG to make this client store data in
 * the clear. A repository this client opened encrypted before (its cache directory for the
 * repository id remembers it) and whose CONFIG now says plaintext is refused too
 * (PLAKAR_ECORRUPT), with or without a passphrase or a cache (docs/format.md, "Threat model").
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_repository_open(plakar_repository **out, const char *uri,
                                                          const plakar_open_options *opts);

/*
 * Closes the repository. Snapshots, snapshot lists and files opened from it must be freed
 * first; entries and entry lists are plain values and may outlive it. NULL is fine.
 */
PLAKAR_EXTERN void plakar_repository_free(plakar_repository *repo);

/* 1 if the repository encrypts its data, 0 if not, negative on a NULL handle. */
PLAKAR_EXTERN int plakar_repository_encrypted(const plakar_repository *repo);
/* The repository's id ("xxxxxxxx-xxxx-..."). Borrowed: valid while repo lives. */
PLAKAR_EXTERN const char *plakar_repository_id(const plakar_repository *repo);

/* ---------------------------------------------------------------- push */

typedef struct plakar_push_options {
	unsigned int version;         /* PLAKAR_PUSH_OPTIONS_VERSION */
	const char *const *tags;      /* ntags tag strings, or NULL */
	size_t ntags;
	const char *command_line;     /* recorded in the snapshot header; NULL: "" */
	/* nexcludes glob patterns (fnmatch(3)) of items neither backed up nor descended into. A
	 * pattern holding no '/' is matched against each item's name, at any depth ("*.o",
	 * ".cache"); one holding a '/' against its absolute path, where '*' does not cross a '/'.
	 * The paths given to push are never excluded. The files of the repository's own store are
	 * always left out when the tree holds them. */
	const char *const *excludes;
	size_t nexcludes;
	/* The snapshot compared with, whose unchanged files (same size, mtime, ctime, inode and
	 * mode) are not read again: NULL picks the newest snapshot of the same paths from this
	 * host; an id or unique prefix names one (PLAKAR_ENOTFOUND, PLAKAR_EAMBIGUOUS); "" reads
	 * every file. */
	const char *parent;
	plakar_progress_cb progress;  /* may be NULL */
	void *payload;                /* passed to progress */
} plakar_push_options;
#define PLAKAR_PUSH_OPTIONS_VERSION 1
#define PLAKAR_PUSH_OPTIONS_INIT {PLAKAR_PUSH_OPTIONS_VERSION, NULL, 0, NULL, NULL, 0, NULL, NULL, NULL}
PLAKAR_EXTERN void plakar_push_options_init(plakar_push_options *opts);

/*
 * Backs up the given paths (files or directories; made absolute against the current
 * directory) into a new snapshot. On PLAKAR_OK or PLAKAR_EPARTIAL, *out (if out is not NULL)
 * receives the new snapshot, which the caller frees with plakar_snapshot_free.
 * PLAKAR_EPARTIAL: the snapshot was committed, but some items could not be read; they are
 * listed in the snapshot (plakar_snapshot_error_count/_error) and were reported through the
 * callback. PLAKAR_ECANCELED: nothing was committed; the packs already written are kept and
 * reused by the next push. A path that does not exist fails the whole push with
 * PLAKAR_ENOTFOUND before anything is written.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_snapshot_push(plakar_snapshot **out, plakar_repository *repo,
                                                        const char *const *paths, size_t npaths,
                                                        const plakar_push_options *opts);

/* ---------------------------------------------------------------- snapshots */

/*
 * Lists the repository's snapshots, oldest first (by time, then id). Caller frees with
 * plakar_snapshot_list_free.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_snapshot_list_new(plakar_snapshot_list **out, plakar_repository *repo);
PLAKAR_EXTERN size_t plakar_snapshot_list_count(const plakar_snapshot_list *list);
/* Borrowed: valid while the list lives; NULL when i is out of range. */
PLAKAR_EXTERN const plakar_snapshot *plakar_snapshot_list_get(const plakar_snapshot_list *list, size_t i);
PLAKAR_EXTERN void plakar_snapshot_list_free(plakar_snapshot_list *list);
/*
 * The snapshots the list left out because their header could not be read (malformed, failed
 * authentication, unsupported version): any writer of the store can add such an object, and
 * one bad header must not hide the others. Each is "snapshot ID: why" (borrowed, valid while
 * the list lives; NULL when i is out of range). gc refuses to run while one exists (it could
 * reference anything); plakar_snapshot_remove of its id removes it.
 */
PLAKAR_EXTERN size_t plakar_snapshot_list_unreadable_count(const plakar_snapshot_list *list);
PLAKAR_EXTERN const char *plakar_snapshot_list_unreadable(const plakar_snapshot_list *list, size_t i);

/*
 * Snapshots from a list and from plakar_snapshot_open are alike: both can be browsed (stat,
 * ls, file_open, pull) while the repository lives.
 *
 * Opens a snapshot by id or any unique prefix of it (dashes optional). PLAKAR_ENOTFOUND when no
 * snapshot matches, PLAKAR_EAMBIGUOUS when several do. Caller frees with plakar_snapshot_free.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_snapshot_open(plakar_snapshot **out, plakar_repository *repo,
                                                        const char *id_or_prefix);
PLAKAR_EXTERN void plakar_snapshot_free(plakar_snapshot *snap);
/*
 * A snapshot of its own from any snapshot, one borrowed from a list included (the list may
 * then be freed): no store access. Caller frees *out with plakar_snapshot_free.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_snapshot_dup(plakar_snapshot **out, const plakar_snapshot *snap);

/* Accessors. Strings are borrowed: valid while the snapshot (or the list holding it) lives. */
PLAKAR_EXTERN const char *plakar_snapshot_id(const plakar_snapshot *snap);      /* "99e53a9c-e503-..." */
PLAKAR_EXTERN int64_t plakar_snapshot_time(const plakar_snapshot *snap);        /* ns since the epoch, UTC */
PLAKAR_EXTERN const char *plakar_snapshot_hostname(const plakar_snapshot *snap);
PLAKAR_EXTERN const char *plakar_snapshot_username(const plakar_snapshot *snap);
PLAKAR_EXTERN const char *plakar_snapshot_command_line(const plakar_snapshot *snap);
/* The pushed paths, absolute, sorted bytewise; a path inside another pushed path is dropped. */
PLAKAR_EXTERN size_t plakar_snapshot_path_count(const plakar_snapshot *snap);
PLAKAR_EXTERN const char *plakar_snapshot_path(const plakar_snapshot *snap, size_t i); /* NULL if out of range */
PLAKAR_EXTERN size_t plakar_snapshot_tag_count(const plakar_snapshot *snap);
PLAKAR_EXTERN const char *plakar_snapshot_tag(const plakar_snapshot *snap, size_t i);
PLAKAR_EXTERN uint64_t plakar_snapshot_files(const plakar_snapshot *snap);       /* regular files */
PLAKAR_EXTERN uint64_t plakar_snapshot_directories(const plakar_snapshot *snap);
PLAKAR_EXTERN uint64_t plakar_snapshot_size(const plakar_snapshot *snap);        /* bytes of file content */
PLAKAR_EXTERN size_t plakar_snapshot_error_count(const plakar_snapshot *snap);
/* The i-th recorded error: *path and *message are borrowed (either pointer may be NULL).
 * PLAKAR_EINVALID if i is out of range. */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_snapshot_error(const char **path, const char **message,
                                                         const plakar_snapshot *snap, size_t i);

/* ---------------------------------------------------------------- entries (the filesystem view) */

enum plakar_entry_type {
	PLAKAR_TYPE_FILE = 1,
	PLAKAR_TYPE_DIRECTORY = 2,
	PLAKAR_TYPE_SYMLINK = 3,
	PLAKAR_TYPE_FIFO = 4,
	PLAKAR_TYPE_CHARDEV = 5,
	PLAKAR_TYPE_BLOCKDEV = 6,
	PLAKAR_TYPE_SOCKET = 7
};

/*
 * Describes the entry at path inside the snapshot ("/" is the root; the paths that were pushed
 * appear at their absolute location). Touches only the directories on the way.
 * PLAKAR_ENOTFOUND when the path is not in the snapshot. Caller frees with plakar_entry_free.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_snapshot_stat(plakar_entry **out, const plakar_snapshot *snap, const char *path);
/*
 * Lists the entries of a directory, sorted by name (bytewise). When path names a non-directory,
 * the list holds that one entry. Caller frees with plakar_entry_list_free.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_snapshot_ls(plakar_entry_list **out, const plakar_snapshot *snap, const char *path);
PLAKAR_EXTERN size_t plakar_entry_list_count(const plakar_entry_list *list);
/* Borrowed: valid while the list lives; NULL when i is out of range. */
PLAKAR_EXTERN const plakar_entry *plakar_entry_list_get(const plakar_entry_list *list, size_t i);
PLAKAR_EXTERN void plakar_entry_list_free(plakar_entry_list *list);
PLAKAR_EXTERN void plakar_entry_free(plakar_entry *entry);

/* Entry accessors; strings are borrowed from the entry. */
PLAKAR_EXTERN const char *plakar_entry_name(const plakar_entry *e);  /* may hold any byte but NUL and '/' */
PLAKAR_EXTERN int plakar_entry_type(const plakar_entry *e);          /* enum plakar_entry_type */
PLAKAR_EXTERN uint32_t plakar_entry_mode(const plakar_entry *e);     /* st_mode, type bits included */
PLAKAR_EXTERN uint32_t plakar_entry_uid(const plakar_entry *e);
PLAKAR_EXTERN uint32_t plakar_entry_gid(const plakar_entry *e);
PLAKAR_EXTERN const char *plakar_entry_username(const plakar_entry *e);  /* "" when unknown */
PLAKAR_EXTERN const char *plakar_entry_groupname(const plakar_entry *e); /* "" when unknown */
PLAKAR_EXTERN uint64_t plakar_entry_size(const plakar_entry *e);
PLAKAR_EXTERN int64_t plakar_entry_mtime(const plakar_entry *e);     /* ns since the epoch */
PLAKAR_EXTERN uint64_t plakar_entry_nlink(const plakar_entry *e);
PLAKAR_EXTERN int64_t plakar_entry_ctime(const plakar_entry *e);     /* ns since the epoch */
PLAKAR_EXTERN uint64_t plakar_entry_inode(const plakar_entry *e);    /* st_ino at push time */
PLAKAR_EXTERN uint64_t plakar_entry_device(const plakar_entry *e);   /* st_dev at push time */
PLAKAR_EXTERN uint64_t plakar_entry_rdev(const plakar_entry *e);     /* device number of a device node */
/* Extended attributes, in name order. */
PLAKAR_EXTERN size_t plakar_entry_xattr_count(const plakar_entry *e);
/* Attribute i: *name (NUL-terminated) and *value (value_len bytes, any byte) are borrowed from
 * the entry; any out-parameter may be NULL. PLAKAR_EINVALID when i is out of range. */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_entry_xattr(const char **name, const void **value, size_t *value_len,
                                                      const plakar_entry *e, size_t i);
PLAKAR_EXTERN const char *plakar_entry_symlink(const plakar_entry *e); /* target, "" for non-links */
/* The error recorded for this entry at push time ("" when none): its content is missing. */
PLAKAR_EXTERN const char *plakar_entry_error(const plakar_entry *e);

/* ---------------------------------------------------------------- reading files */

/*
 * Opens a regular file of the snapshot for reading. PLAKAR_ENOTFOUND when the path is absent,
 * PLAKAR_EINVALID when it is not a regular file. Caller frees with plakar_file_free.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_file_open(plakar_file **out, const plakar_snapshot *snap, const char *path);
/*
 * Reads up to len bytes at the current position into buf; *nread receives the count, 0 at the
 * end. Every byte returned has been authenticated: a corrupted chunk fails with
 * PLAKAR_ECORRUPT and returns nothing of it.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_file_read(size_t *nread, plakar_file *f, void *buf, size_t len);
PLAKAR_EXTERN uint64_t plakar_file_size(const plakar_file *f);
/*
 * Moves the read position to offset (0 <= offset <= size; past the end is PLAKAR_EINVALID).
 * The next read fetches only the chunk that holds the new position.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_file_seek(plakar_file *f, uint64_t offset);
PLAKAR_EXTERN void plakar_file_free(plakar_file *f);

/* ---------------------------------------------------------------- pull (restore) */

/* What pull does with an item already at a path it restores (plakar_pull_options.overwrite). */
enum plakar_overwrite {
	PLAKAR_OVERWRITE_ALWAYS = 0,     /* the default: replace it, so the restore gives back exactly the
	                                    snapshot (a file is written aside and renamed over it) */
	PLAKAR_OVERWRITE_IF_CHANGED = 1, /* replace it unless it looks the same: same type, and same size
	                                    and mtime (file), target (symlink) or device number */
	PLAKAR_OVERWRITE_IF_NEWER = 2,   /* replace it only when the snapshot's mtime is newer */
	PLAKAR_OVERWRITE_NEVER = 3       /* keep it; directories are still merged into, their metadata
	                                    left alone */
};

typedef struct plakar_pull_options {
	unsigned int version;         /* PLAKAR_PULL_OPTIONS_VERSION */
	const char *to;               /* target directory; NULL or "" = the current directory */
	int rebase;                   /* 0: recreate the full path under `to` (to/usr/share/...);
	                                 1: put the selected item directly in `to` */
	int overwrite;                /* enum plakar_overwrite; 0 = PLAKAR_OVERWRITE_ALWAYS */
	int force;                    /* 1: a non-empty directory where the snapshot has a non-directory
	                                 is removed with what it holds; 0: that item fails instead
	                                 (an empty directory is replaced either way) */
	int dry_run;                  /* 1: write nothing; report through progress what would be
	                                 created, replaced, removed or kept (PLAKAR_EVENT_CREATE...) */
	int verify;                   /* 1: read every restored file back and check each chunk against
	                                 its id (and each symlink's target); a mismatch fails that item */
	plakar_progress_cb progress;  /* may be NULL */
	void *payload;
} plakar_pull_options;
#define PLAKAR_PULL_OPTIONS_VERSION 1
#define PLAKAR_PULL_OPTIONS_INIT {PLAKAR_PULL_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, NULL, NULL}
PLAKAR_EXTERN void plakar_pull_options_init(plakar_pull_options *opts);

/*
 * Restores path (default "/": everything) of the snapshot. Restores content, directories,
 * symlinks, hard links (as links), permissions, mtimes (ns), xattrs, and ownership when run as
 * root. Existing items at the target are handled per opts->overwrite (default: replaced; a
 * non-empty directory is never removed without opts->force). Below the target directory every
 * item is created and changed relative to its open parent directory without following links,
 * so neither a forged snapshot nor a symlink planted in the target makes the restore write
 * elsewhere. Content is authenticated before it is written; a corrupted chunk makes that file
 * fail (reported through the callback, never written with wrong bytes) and the call returns
 * PLAKAR_ECORRUPT after restoring the rest. Other per-item failures give PLAKAR_EPARTIAL after
 * the rest is restored. When the target or the selected item itself cannot be created (the
 * target is not writable), nothing is restored and the call fails with that error.
 * Thread-safety: like every call on one repository (see plakar_repository_open).
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_snapshot_pull(const plakar_snapshot *snap, const char *path,
                                                        const plakar_pull_options *opts);

/* ---------------------------------------------------------------- directory iteration */

typedef struct plakar_dir plakar_dir;

/*
 * Opens a directory of the snapshot for iteration. Entries come in name order, read one tree
 * node at a time: memory stays bounded whatever the directory's size (plakar_snapshot_ls
 * returns them all at once instead). PLAKAR_ENOTFOUND when the path is absent,
 * PLAKAR_EINVALID when it is not a directory. Caller frees with plakar_dir_free, before the
 * repository.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_dir_open(plakar_dir **out, const plakar_snapshot *snap, const char *path);
/*
 * The next entry: *entry is borrowed, valid until the next call on dir or plakar_dir_free;
 * NULL at the end (with PLAKAR_OK). A damaged tree node fails with PLAKAR_ECORRUPT.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_dir_next(const plakar_entry **entry, plakar_dir *dir);
PLAKAR_EXTERN void plakar_dir_free(plakar_dir *dir);

/* ---------------------------------------------------------------- diff */

enum plakar_change_kind {
	PLAKAR_CHANGE_ADDED = 1,
	PLAKAR_CHANGE_REMOVED = 2,
	PLAKAR_CHANGE_MODIFIED = 3
};

/* What differs in a modified entry (bits of plakar_change.what). */
enum plakar_change_what {
	PLAKAR_CHANGED_TYPE = 1,
	PLAKAR_CHANGED_CONTENT = 2, /* file content, symlink target, device number */
	PLAKAR_CHANGED_MODE = 4,
	PLAKAR_CHANGED_OWNER = 8,
	PLAKAR_CHANGED_MTIME = 16,
	PLAKAR_CHANGED_XATTRS = 32,
	PLAKAR_CHANGED_SIZE = 64
};

/* Passed to plakar_diff_options.change; everything in it is borrowed for the duration of the call. */
typedef struct plakar_change {
	unsigned int version;        /* PLAKAR_CHANGE_VERSION */
	int kind;                    /* enum plakar_change_kind */
	const char *path;            /* path of the entry, in the second tree's terms */
	const plakar_entry *before;  /* NULL when added */
	const plakar_entry *after;   /* NULL when removed */
	unsigned int what;           /* enum plakar_change_what bits, for PLAKAR_CHANGE_MODIFIED */
} plakar_change;
#define PLAKAR_CHANGE_VERSION 1

/* Return 0 to continue, non-zero to stop (the diff then fails with PLAKAR_ECANCELED). */
typedef int (*plakar_change_cb)(const plakar_change *change, void *payload);

typedef struct plakar_diff_options {
	unsigned int version;     /* PLAKAR_DIFF_OPTIONS_VERSION */
	plakar_change_cb change;  /* required: hears every difference */
	void *payload;
} plakar_diff_options;
#define PLAKAR_DIFF_OPTIONS_VERSION 1
#define PLAKAR_DIFF_OPTIONS_INIT {PLAKAR_DIFF_OPTIONS_VERSION, NULL, NULL}
PLAKAR_EXTERN void plakar_diff_options_init(plakar_diff_options *opts);

/*
 * Compares path_a of snapshot a with path_b of snapshot b (NULL or "" = "/"), calling
 * opts->change for every difference, in path order. A directory present on one side only is
 * reported once, not its content. Directories whose content is identical are skipped without
 * being read, so the cost follows what changed. Both snapshots must come from the same
 * repository handle. PLAKAR_EINVALID without opts or its change callback.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_snapshot_diff(const plakar_snapshot *a, const char *path_a,
                                                        const plakar_snapshot *b, const char *path_b,
                                                        const plakar_diff_options *opts);

/* ---------------------------------------------------------------- locate */

/* snap and path are borrowed for the call. Return 0 to continue, non-zero to stop. */
typedef int (*plakar_match_cb)(const plakar_snapshot *snap, const char *path, void *payload);

typedef struct plakar_locate_options {
	unsigned int version;          /* PLAKAR_LOCATE_OPTIONS_VERSION */
	int full_path;                 /* 1: match the pattern against full paths, not names */
	const char *const *snapshots;  /* ids or prefixes to search; NULL: every snapshot */
	size_t nsnapshots;
	plakar_match_cb match;         /* required: hears every match */
	void *payload;
} plakar_locate_options;
#define PLAKAR_LOCATE_OPTIONS_VERSION 1
#define PLAKAR_LOCATE_OPTIONS_INIT {PLAKAR_LOCATE_OPTIONS_VERSION, 0, NULL, 0, NULL, NULL}
PLAKAR_EXTERN void plakar_locate_options_init(plakar_locate_options *opts);

/*
 * Finds entries whose name (or full path, see options) matches a glob pattern (fnmatch(3):
 * `*`, `?`, `[...]`; with full paths `*` also matches `/`), in the snapshots named or in all,
 * oldest snapshot first and in path order within each. A directory shared by several
 * snapshots is searched once. PLAKAR_EINVALID without opts or its match callback.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_repository_locate(plakar_repository *repo, const char *pattern,
                                                            const plakar_locate_options *opts);

/* ---------------------------------------------------------------- information */

/* Filled by plakar_repository_describe; set version before the call (plakar_repository_info_init). */
typedef struct plakar_repository_info {
	unsigned int version;      /* set by the caller: PLAKAR_REPOSITORY_INFO_VERSION */
	int format_version;        /* the repository format (docs/format.md) */
	int encrypted;             /* 1 or 0 */
	int64_t created;           /* ns since the epoch */
	uint32_t chunk_min, chunk_avg, chunk_max;
	int compression_level;
	uint32_t pack_size;
	uint64_t snapshots;
	uint64_t packs;            /* packs holding indexed blobs */
	uint64_t data_blobs;       /* file chunks */
	uint64_t meta_blobs;       /* directory nodes and chunk lists */
	uint64_t stored_bytes;     /* bytes of all blobs as stored (compressed, encrypted) */
	uint64_t data_bytes;       /* plaintext bytes of the distinct chunks */
	uint64_t logical_bytes;    /* sum of the snapshots' sizes: what restoring them all writes */
} plakar_repository_info;
#define PLAKAR_REPOSITORY_INFO_VERSION 1
/* Zeroes info and sets its version. */
PLAKAR_EXTERN void plakar_repository_info_init(plakar_repository_info *info);

/* Describes the repository (reads every snapshot header). PLAKAR_EINVALID on an unknown version. */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_repository_describe(plakar_repository_info *info, plakar_repository *repo);

/* Progress of check and gc, called now and then: stage is a short description ("packs",
 * "walking snapshots"), borrowed for the call; done of total items of that stage. Return 0 to
 * continue, non-zero to cancel (the call then fails with PLAKAR_ECANCELED). */
typedef int (*plakar_stage_cb)(const char *stage, uint64_t done, uint64_t total, void *payload);

/* ---------------------------------------------------------------- removal and garbage collection */

/*
 * Removes snapshots (ids or unique prefixes). All are resolved first: an unknown or ambiguous
 * one fails (PLAKAR_ENOTFOUND, PLAKAR_EAMBIGUOUS) before anything is removed. Only the headers
 * go; the data they referenced stays until plakar_repository_gc. *removed (may be NULL) gets
 * the count.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_snapshot_remove(size_t *removed, plakar_repository *repo,
                                                          const char *const *ids, size_t nids);

/* One decision: the snapshot, its group ("host:/path,/path"), its time, whether it is kept
 * and why ("last, daily 2026-11-25"; "" when removed). Strings are borrowed for the call.
 * Return non-zero to cancel: nothing is removed then (PLAKAR_ECANCELED). */
typedef int (*plakar_keep_cb)(const char *snapshot_id, const char *group, int64_t time_ns, int keep,
                              const char *reasons, void *payload);

/* Retention: how many snapshots each rule keeps, per group of host and paths. */
typedef struct plakar_keep_options {
	unsigned int version; /* PLAKAR_KEEP_OPTIONS_VERSION */
	int last;             /* the N newest */
	int hourly, daily, weekly, monthly, yearly; /* the newest of each of the N most recent hours, days (UTC),
	                                               ISO weeks, months, years that have one */
	int dry_run;          /* 1: decide and report, remove nothing */
	plakar_keep_cb decision; /* may be NULL: hears every decision before anything is removed */
	void *payload;
} plakar_keep_options;
#define PLAKAR_KEEP_OPTIONS_VERSION 1
#define PLAKAR_KEEP_OPTIONS_INIT {PLAKAR_KEEP_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, NULL, NULL}
PLAKAR_EXTERN void plakar_keep_options_init(plakar_keep_options *opts);

/*
 * Applies a retention policy: every snapshot is judged (within its group of host and paths,
 * newest first; a snapshot is kept when any rule keeps it), opts->decision hears every
 * decision before anything is removed, then the snapshots no rule keeps are removed, several
 * at a time. Options with no rule at all would keep everything (PLAKAR_EINVALID: refuse to
 * guess; opts is required). Data stays until plakar_repository_gc. *removed (may be NULL) gets
 * the count.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_repository_keep(size_t *removed, plakar_repository *repo,
                                                          const plakar_keep_options *opts);

typedef struct plakar_gc_options {
	unsigned int version;   /* PLAKAR_GC_OPTIONS_VERSION */
	int dry_run;            /* 1: report what would be done, change nothing */
	int repack_percent;     /* packs whose live blobs fill less than this % are repacked; 0 never; -1 default (50) */
	plakar_stage_cb progress; /* may be NULL */
	void *payload;
} plakar_gc_options;
#define PLAKAR_GC_OPTIONS_VERSION 1
#define PLAKAR_GC_OPTIONS_INIT {PLAKAR_GC_OPTIONS_VERSION, 0, -1, NULL, NULL}
PLAKAR_EXTERN void plakar_gc_options_init(plakar_gc_options *opts);

/* Filled by plakar_repository_gc; set version first (plakar_gc_report_init). */
typedef struct plakar_gc_report {
	unsigned int version;        /* set by the caller: PLAKAR_GC_REPORT_VERSION */
	int dry_run;
	uint64_t snapshots;          /* snapshots walked */
	uint64_t live_blobs;         /* blobs they reference */
	uint64_t packs_before, packs_after;
	uint64_t bytes_before, bytes_after; /* pack bytes in the store */
	uint64_t packs_deleted, bytes_freed;
	uint64_t packs_repacked, blobs_repacked, bytes_repacked;
	uint64_t packs_pending;      /* condemned while pushes or readers ran: a later gc deletes them */
	uint64_t packs_resurrected;  /* condemned earlier, referenced again, kept */
	uint64_t segments_before, segments_after; /* index segments */
	uint64_t stale_locks_removed;
	uint64_t pushes_running;     /* live push locks that kept this run's condemned packs (pending) */
	uint64_t readers_running;    /* live reader locks (open snapshots, checks) that kept them */
	uint64_t temp_files_removed; /* files of interrupted writes, older than an hour */
	uint64_t packs_merged;       /* of packs_repacked: small packs merged into full ones */
	uint64_t segments_deleted;   /* index segments superseded by a merged one, deleted */
	uint64_t segments_pending;   /* superseded while pushes or readers ran: a later gc deletes them */
} plakar_gc_report;
#define PLAKAR_GC_REPORT_VERSION 1
/* Zeroes report and sets its version. */
PLAKAR_EXTERN void plakar_gc_report_init(plakar_gc_report *report);

/*
 * Collects garbage (docs/format.md, "Locks and garbage collection"): packs no snapshot uses
 * are deleted, packs mostly unused are repacked, the index segments naming deleted packs are
 * rewritten and small segments merged (superseded segments are deleted like packs). Of a
 * blob stored several times (concurrent pushes of the same data) one copy counts as live. It
 * never blocks a push or a reader and never deletes what a running push may reference or a
 * running reader may read (an open snapshot or snapshot list, a check, a locate: each holds
 * the handle's reader lock): packs condemned while they run are deleted by a later gc, once
 * they have ended. One gc at a time
 * (PLAKAR_ELOCKED otherwise). A snapshot that cannot be read stops it before anything is
 * deleted (PLAKAR_ECORRUPT). report may be NULL.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_repository_gc(plakar_gc_report *report, plakar_repository *repo,
                                                        const plakar_gc_options *opts);

/* ---------------------------------------------------------------- repair */

/* Filled by plakar_repository_repair; set version first (plakar_repair_report_init). */
typedef struct plakar_repair_report {
	unsigned int version;      /* set by the caller: PLAKAR_REPAIR_REPORT_VERSION */
	int applied;               /* 1 when the index was rewritten */
	uint64_t packs;            /* packs whose table of contents was read */
	uint64_t blobs;            /* entries of the rebuilt index */
	uint64_t added;            /* blobs present in a pack that the index lacked */
	uint64_t dropped;          /* index entries naming packs that are gone */
	uint64_t segments_before;  /* index segments replaced */
	uint64_t damaged;          /* packs, segments or blobs that could not be read (see the callback) */
	uint64_t damaged_blobs;    /* PLAKAR_REPAIR_READ_DATA: blobs that failed authentication, left out */
} plakar_repair_report;
#define PLAKAR_REPAIR_REPORT_VERSION 1
/* Zeroes report and sets its version. */
PLAKAR_EXTERN void plakar_repair_report_init(plakar_repair_report *report);

/* Hears each damaged object ("pack <id>: ...", "index segment <name>: ..."); borrowed for the
 * call. Return non-zero to cancel: nothing is written then (PLAKAR_ECANCELED). */
typedef int (*plakar_damaged_cb)(const char *message, void *payload);

enum plakar_repair_flag {
	PLAKAR_REPAIR_APPLY = 1,    /* write the rebuilt index; without it, only report */
	PLAKAR_REPAIR_READ_DATA = 2 /* read every pack; leave blobs that fail authentication out */
};

typedef struct plakar_repair_options {
	unsigned int version;       /* PLAKAR_REPAIR_OPTIONS_VERSION */
	unsigned int flags;         /* enum plakar_repair_flag bits */
	plakar_damaged_cb damaged;  /* may be NULL */
	void *payload;
} plakar_repair_options;
#define PLAKAR_REPAIR_OPTIONS_VERSION 1
#define PLAKAR_REPAIR_OPTIONS_INIT {PLAKAR_REPAIR_OPTIONS_VERSION, 0, NULL, NULL}
PLAKAR_EXTERN void plakar_repair_options_init(plakar_repair_options *opts);

/*
 * Rebuilds the index from the packs' own tables of contents: every blob of every readable
 * pack is indexed, entries naming packs that are gone are dropped, and a pack whose table of
 * contents does not open keeps its old entries. With PLAKAR_REPAIR_READ_DATA every blob is
 * read and a damaged one left out of the index: the next push that meets its content stores
 * it again, which makes every snapshot referencing it whole again. Without
 * PLAKAR_REPAIR_APPLY it only reports; with it, it takes the exclusive lock (PLAKAR_ELOCKED
 * while a gc runs) and replaces every index segment by one. Snapshots are not touched: run
 * plakar_repository_check afterwards to see what, if anything, is still missing. report and
 * opts may be NULL (NULL opts: report only). The damaged objects are told to opts->damaged
 * before the index is written.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_repository_repair(plakar_repair_report *report, plakar_repository *repo,
                                                            const plakar_repair_options *opts);

/* ---------------------------------------------------------------- key agent */

/*
 * The key agent keeps the master keys of the repositories opened through it, in memory only,
 * so that later opens (plakar_open_options.agent) skip the passphrase's key derivation. It is
 * the user's own process, reached through a UNIX socket: every peer's uid must be the agent's
 * (and the agent's the client's), the socket is created 0600 and belongs in a directory only
 * the user can enter. Keys are held in locked, non-dumpable memory, wiped at exit; the agent
 * exits after idle_timeout_s seconds without a request (0: never) or on plakar_agent_stop.
 * Anyone running as the user can fetch the keys while it runs, as with ssh-agent.
 */
typedef struct plakar_agent plakar_agent;

/* Creates and binds the socket, mode 0600 from the start (bound in a private directory, then
 * linked into place: the process's umask is left alone). PLAKAR_EEXISTS when something is
 * already there. The caller may fork between this and plakar_agent_serve; only the serving
 * process removes the socket. */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_agent_listen(plakar_agent **out, const char *socket_path);
/* Serves requests until stopped or idle; blocks. Removes the socket when it returns. It makes
 * the whole process non-dumpable (prctl PR_SET_DUMPABLE 0: no core dump, no ptrace by the
 * user's other processes), for good: serve from a process that exists to be the agent. */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_agent_serve(plakar_agent *agent, unsigned int idle_timeout_s);
/* Closes the socket (without removing it unless served). NULL is fine. */
PLAKAR_EXTERN void plakar_agent_free(plakar_agent *agent);
/* Asks the agent at socket_path to forget its keys and exit. PLAKAR_ENOTFOUND when none answers. */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_agent_stop(const char *socket_path);

/* ---------------------------------------------------------------- check */

typedef struct plakar_check_report plakar_check_report;

enum plakar_check_flag {
	PLAKAR_CHECK_FAST = 1,      /* snapshots: only ask whether each blob exists (index + pack size) */
	PLAKAR_CHECK_READ_DATA = 2, /* repository: read every pack whole and authenticate every blob */
	PLAKAR_CHECK_REFCOUNTS = 4  /* repository: count, per blob, the snapshots referencing it */
};


typedef struct plakar_check_options {
	unsigned int version;         /* PLAKAR_CHECK_OPTIONS_VERSION */
	unsigned int flags;           /* enum plakar_check_flag bits */
	const char *const *snapshots; /* ids or prefixes; NULL or nsnapshots == 0: the whole repository */
	size_t nsnapshots;
	plakar_stage_cb progress;     /* may be NULL */
	void *payload;
} plakar_check_options;
#define PLAKAR_CHECK_OPTIONS_VERSION 1
#define PLAKAR_CHECK_OPTIONS_INIT {PLAKAR_CHECK_OPTIONS_VERSION, 0, NULL, 0, NULL, NULL}
PLAKAR_EXTERN void plakar_check_options_init(plakar_check_options *opts);

/*
 * Checks snapshots, or the whole repository, at one of three depths (docs/cli.md, "check"):
 *  - snapshots named, no flag: every directory node, chunk list and chunk they reference is
 *    read from the store (never from the local cache), authenticated and its id recomputed; a
 *    clean report proves that restoring them would succeed;
 *  - snapshots named, PLAKAR_CHECK_FAST: each referenced blob must be in the index (or in a
 *    pack's table of contents) and inside a pack that exists and is long enough; no chunk read;
 *  - no snapshot: every snapshot header and directory tree is read, and the index is compared
 *    with each pack's table of contents; blobs no snapshot references are counted (garbage,
 *    not a problem). PLAKAR_CHECK_READ_DATA also reads every blob of every pack.
 * Returns PLAKAR_OK when nothing is wrong, PLAKAR_ECORRUPT when problems were found, and in
 * both cases sets *out to a report the caller frees with plakar_check_report_free(). Any other
 * code means the check could not run (unknown snapshot: PLAKAR_ENOTFOUND, cancellation,
 * unreadable store); *out is then NULL. The check never modifies the repository, but may fill
 * the local cache with the directory nodes it verified.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_repository_check(plakar_check_report **out, plakar_repository *repo,
                                                           const plakar_check_options *opts);

typedef struct plakar_check_stats {
	unsigned int version;         /* set by the caller: PLAKAR_CHECK_STATS_VERSION */
	uint64_t snapshots;           /* snapshot headers checked */
	uint64_t entries;             /* files, directories and other entries walked */
	uint64_t blobs;               /* distinct blobs verified (or found, with PLAKAR_CHECK_FAST) */
	uint64_t bytes;               /* plaintext bytes read and verified */
	uint64_t packs;               /* packs examined (whole-repository check) */
	uint64_t unreferenced_blobs;  /* blobs in packs that no snapshot references */
	uint64_t unreferenced_bytes;  /* their stored size */
	uint64_t unindexed_packs;     /* packs the index does not name (left by an interrupted push) */
	uint64_t problems;            /* plakar_check_report_problem_count() */
} plakar_check_stats;
#define PLAKAR_CHECK_STATS_VERSION 1
/* Zeroes stats and sets its version. */
PLAKAR_EXTERN void plakar_check_stats_init(plakar_check_stats *stats);

/* Fills stats (set stats->version first). PLAKAR_EINVALID on NULL or an unknown version. */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_check_report_stats(plakar_check_stats *stats,
                                                             const plakar_check_report *report);
/* The number of problems found (0 for a clean check, or when report is NULL). */
PLAKAR_EXTERN size_t plakar_check_report_problem_count(const plakar_check_report *report);
/*
 * Problem i: its code (PLAKAR_ENOTFOUND for something missing, PLAKAR_ECORRUPT for damage or
 * inconsistency, PLAKAR_EVERSION, PLAKAR_ERROR), the object concerned ("snapshot <id>",
 * "<id>:/path", "blob <hex>", "pack <hex>", "index") and a one-line message. Strings are
 * borrowed from the report. Any out-parameter may be NULL. PLAKAR_EINVALID when i is out of range.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_check_report_problem(int *code, const char **object, const char **message,
                                                               const plakar_check_report *report, size_t i);
/* With PLAKAR_CHECK_REFCOUNTS: the number of referenced blobs, else 0. */
PLAKAR_EXTERN size_t plakar_check_report_refcount_count(const plakar_check_report *report);
/* Referenced blob i (in id order): its id as 64 hex digits plus NUL, and how many snapshots
 * reference it. PLAKAR_EINVALID when i is out of range. */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_check_report_refcount(char id_hex[65], uint32_t *count,
                                                                const plakar_check_report *report, size_t i);
/* Frees a report; NULL is accepted. */
PLAKAR_EXTERN void plakar_check_report_free(plakar_check_report *report);

/* ---------------------------------------------------------------- archives */

/*
 * Archives (tarballs) of a snapshot or of a subtree, streamed in constant memory: entries are
 * written as the tree is walked, file content one chunk at a time, never the whole archive
 * or a whole file in memory. Names inside the archive are relative to the parent of the
 * selected path: archiving "/usr/share/doc" gives "doc/...", archiving "/" gives "usr/...".
 * Modes, owners (uid/gid and names), symlinks and mtimes are kept; see each format for the
 * rest. Every byte of content written was authenticated.
 */
enum plakar_archive_format {
	PLAKAR_ARCHIVE_TAR = 1,      /* POSIX pax tar: mtimes to the ns, names of any length and
	                                bytes, hard links as link entries, xattrs, fifos, devices */
	PLAKAR_ARCHIVE_TAR_GZ = 2,   /* the same, gzip-compressed */
	PLAKAR_ARCHIVE_TAR_ZSTD = 3, /* the same, zstd-compressed */
	PLAKAR_ARCHIVE_ZIP = 4       /* zip (deflate): mtimes to the second, no xattrs, fifos or
	                                devices; each hard link stores its content again */
};

/*
 * The format a name designates: "tar", "tar.gz" or "tgz", "tar.zst" (also "tar.zstd",
 * "tzst"), "zip". PLAKAR_EINVALID for any other name.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_archive_format_from_name(int *out, const char *name);
/*
 * The format a file name's extension designates (".tar", ".tar.gz", ".tgz", ".tar.zst",
 * ".tar.zstd", ".tzst", ".zip", in any case). When none matches, *out is PLAKAR_ARCHIVE_TAR,
 * the default, and the call returns PLAKAR_ENOTFOUND.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_archive_format_from_filename(int *out, const char *filename);

/*
 * Receives the archive's bytes, in order, len > 0. buf is borrowed: valid only during the
 * call. Return 0 to go on, non-zero to stop: the operation then fails with
 * PLAKAR_ECANCELED. Runs on the calling thread.
 */
typedef int (*plakar_write_cb)(const void *buf, size_t len, void *payload);

typedef struct plakar_archive_options {
	unsigned int version;         /* PLAKAR_ARCHIVE_OPTIONS_VERSION */
	plakar_write_cb write;        /* plakar_snapshot_archive: required, receives the archive;
	                                 plakar_snapshot_archive_file: must be NULL */
	plakar_progress_cb progress;  /* may be NULL; events name the snapshot path of each item */
	void *payload;                /* passed to write and progress */
} plakar_archive_options;
#define PLAKAR_ARCHIVE_OPTIONS_VERSION 1
#define PLAKAR_ARCHIVE_OPTIONS_INIT {PLAKAR_ARCHIVE_OPTIONS_VERSION, NULL, NULL, NULL}
PLAKAR_EXTERN void plakar_archive_options_init(plakar_archive_options *opts);

/*
 * Writes an archive of path (NULL or "/": the whole snapshot; a directory; a single file) in
 * format (enum plakar_archive_format) through opts->write (PLAKAR_EINVALID without it).
 *
 * Errors: PLAKAR_ENOTFOUND when path is not in the snapshot (before anything is written);
 * PLAKAR_EINVALID for an unknown format; PLAKAR_ECORRUPT when some content fails
 * authentication (the message names the file); PLAKAR_ECANCELED when write or progress asked
 * to stop. After any of these the archive is incomplete (no end-of-archive marker was
 * written): the bytes already written must be discarded. PLAKAR_EPARTIAL: the archive is
 * complete, but items whose content was not backed up (an error recorded at push time) were
 * left out, each reported through progress as PLAKAR_EVENT_ERROR. Sockets are never
 * archived.
 *
 * Threading: holds the repository's lock for the whole call; callbacks run on the calling
 * thread and may call read-only functions of this library.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_snapshot_archive(const plakar_snapshot *snap, const char *path, int format,
                                                           const plakar_archive_options *opts);

/*
 * The same, into the file dest (replaced if it exists). The archive is written under a
 * temporary name in dest's directory and renamed to dest once complete (also on
 * PLAKAR_EPARTIAL); on any other failure no file is left behind and an existing dest is
 * untouched. PLAKAR_ENOTFOUND also when dest's directory does not exist; PLAKAR_EINVALID when
 * dest is a directory; PLAKAR_ERROR when it cannot be written. opts may be NULL.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_snapshot_archive_file(const plakar_snapshot *snap, const char *path,
                                                                int format, const char *dest,
                                                                const plakar_archive_options *opts);

/* ---------------------------------------------------------------- server */

/*
 * A plakar server serves one repository's store to plakar:// clients (docs/protocol.md). It
 * carries opaque objects: it never holds a key and never sees plaintext, so no passphrase is
 * needed. Every connection proves a token of the tokens file (challenge-response; the secret
 * never travels); a token's rights (rw, ro, append) are checked on every request.
 * Threads: plakar_server_run blocks its caller and serves with a network thread and a pool of
 * store workers; plakar_server_stop may be called from any other thread (not from a signal
 * handler: use a thread waiting in sigwait).
 */
typedef struct plakar_server plakar_server;

/* One line per event worth logging (a refused connection, a failed authentication). Called
 * from the server's network thread; line is borrowed. It cannot stop the server (returning
 * void): plakar_server_stop does, from any thread. */
typedef void (*plakar_log_cb)(const char *line, void *payload);

typedef struct plakar_server_options {
	unsigned int version;          /* PLAKAR_SERVER_OPTIONS_VERSION */
	const char *listen;            /* "HOST:PORT" ("[v6]:PORT"); NULL: "127.0.0.1:9876"; port 0 picks one */
	const char *tokens_file;       /* required: "NAME RIGHTS SECRET" lines, mode 0600 (see plakar_token_new) */
	unsigned int workers;          /* threads calling the store; 0: 4 */
	unsigned int max_connections;  /* 0: 64; more are closed at once */
	unsigned int max_in_flight;    /* requests per connection; 0: 32 */
	unsigned int idle_timeout_s;   /* a connection with nothing to do is closed; 0: 300 */
	plakar_log_cb log;             /* may be NULL */
	void *payload;
	unsigned int flags;            /* enum plakar_server_flag bits */
	/* Both set: every connection is TLS 1.3 with this certificate (PEM, then any intermediate
	 * ones) and its private key (PEM, unencrypted, mode 0600 or stricter); clients reach it as
	 * plakar+tls://. Both NULL: in the clear. The files are read by plakar_server_new. */
	const char *tls_cert_file;
	const char *tls_key_file;
} plakar_server_options;
#define PLAKAR_SERVER_OPTIONS_VERSION 1
#define PLAKAR_SERVER_OPTIONS_INIT {PLAKAR_SERVER_OPTIONS_VERSION, NULL, NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL, NULL}
PLAKAR_EXTERN void plakar_server_options_init(plakar_server_options *opts);

enum plakar_server_flag {
	/*
	 * Privilege separation (docs/protocol.md): plakar_server_run forks a network process, which
	 * parses every byte from the network, and a store process, which alone touches the
	 * repository; they talk over a socketpair. Started as root, the network process runs as
	 * _plakar (else nobody) chrooted to an empty directory, and the store process chrooted to
	 * the repository as its owner. The calling process only waits: use it in a process that
	 * exists to serve (the CLI's `plakar server`), never in a host with threads of its own
	 * doing other work. The log callback is then called in the network process.
	 */
	PLAKAR_SERVER_PRIVSEP = 1
};

/*
 * Loads the tokens (and the TLS certificate and key) and binds the listening socket for the
 * store at repository (any store URI but plakar:// and plakar+tls://; the repository need not
 * exist yet: a client may create it). PLAKAR_EINVALID for bad options, a malformed or
 * group/other-readable tokens or key file, a key that is not the certificate's;
 * PLAKAR_ENOTFOUND when the tokens, certificate or key file does not exist; PLAKAR_ERROR when
 * the address cannot be bound.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_server_new(plakar_server **out, const char *repository,
                                                     const plakar_server_options *opts);
/* The address listened on, "127.0.0.1:9876" (the real port when 0 was asked). Caller frees
 * with plakar_string_free. */
/* (With PLAKAR_SERVER_PRIVSEP, plakar_server_run returns PLAKAR_ERROR naming the process when
 * the network or store process dies.) */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_server_address(char **out, const plakar_server *server);
/* Serves until plakar_server_stop; blocks. Once only per server. */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_server_run(plakar_server *server);
/* The pin of the server's TLS certificate, "sha256:" and 64 hex digits, what clients put in
 * plakar+tls://HOST:PORT?pin=PIN. Caller frees with plakar_string_free. PLAKAR_ENOTFOUND when
 * the server runs without TLS. Any thread. */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_server_tls_pin(char **out, const plakar_server *server);
/* Makes plakar_server_run return (open connections are closed). Any thread; idempotent. */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_server_stop(plakar_server *server);
/* Frees the server and closes its socket. NULL is fine. Not while plakar_server_run runs:
 * stop it and let plakar_server_run return first. */
PLAKAR_EXTERN void plakar_server_free(plakar_server *server);

/*
 * A new random token named name (letters, digits, - _ . @; at most 64) with rights "rw", "ro"
 * or "append": *server_line is the line for the server's tokens file, *client_token the
 * "NAME:SECRET" a client gives as plakar_open_options.token (the command line takes it from
 * $PLAKAR_TOKEN, or the file $PLAKAR_TOKEN_FILE, else ~/.config/plakar/token). Both are
 * caller-owned (plakar_string_free).
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_token_new(char **server_line, char **client_token, const char *name,
                                                    const char *rights);
/*
 * The same, and its line appended to the server's tokens file: the file is created (mode 0600)
 * when absent, and rewritten whole under a temporary name then renamed, so a running server
 * never reads half a line and a failure leaves it as it was. PLAKAR_EEXISTS when the file
 * already names a token name; PLAKAR_EINVALID when it is malformed or readable by group or
 * others. *client_token as above (caller-owned).
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_token_add(char **client_token, const char *tokens_file, const char *name,
                                                    const char *rights);

/*
 * Writes a new self-signed TLS certificate for a server (ECDSA P-256) to cert_file (mode 0644)
 * and its private key to key_file (mode 0600). name is the host name or IP address clients use
 * (the certificate's subject alternative name), days its validity (1 to 36500). Neither file
 * may exist (PLAKAR_EEXISTS: a key is never replaced). *pin (caller-owned, plakar_string_free;
 * pin may be NULL) receives the certificate's pin. PLAKAR_EINVALID for a malformed name or
 * days.
 */
PLAKAR_EXTERN PLAKAR_NODISCARD int plakar_tls_cert_new(char **pin, const char *cert_file, const char *key_file,
                                                       const char *name, unsigned int days);

#ifdef __cplusplus
}
#endif
#endif /* PLAKAR_PLAKAR_H */
