/*
 * The C ABI exercised from plain C (C11, no C++ runtime in this file): create, open, push with
 * a progress callback and cancellation, list, open by prefix, stat, ls, read, pull, diff,
 * locate, check, the key agent, errors: one named case each (check.h), one ctest test each.
 * Usage: capi_test WORKDIR [CASE]
 */
#include <plakar/plakar.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

struct counts {
	int files;
	int cancel_after;
};

static int on_progress(const plakar_event *ev, void *payload)
{
	struct counts *c = payload;
	if (ev->version != PLAKAR_EVENT_VERSION)
		return 1;
	if (ev->kind == PLAKAR_EVENT_FILE)
		c->files++;
	return c->cancel_after && c->files >= c->cancel_after;
}

struct diffcount {
	int added, removed, modified;
};

static int on_change(const plakar_change *c, void *payload)
{
	struct diffcount *d = payload;
	if (c->version != PLAKAR_CHANGE_VERSION)
		return 1;
	if (c->kind == PLAKAR_CHANGE_ADDED && c->before == NULL && c->after != NULL)
		d->added++;
	else if (c->kind == PLAKAR_CHANGE_REMOVED)
		d->removed++;
	else if (c->kind == PLAKAR_CHANGE_MODIFIED && c->before && c->after)
		d->modified++;
	return 0;
}

static int stop_check(const char *stage, uint64_t done, uint64_t total, void *payload)
{
	(void)stage;
	(void)done;
	(void)total;
	return *(int *)payload;
}

/* The path of the first pack file under repo/packs/XX/, or 0 when there is none. */
static int first_pack(const char *repo, char *out, size_t n)
{
	char dir[4096];
	for (int i = 0; i < 256; i++) {
		snprintf(dir, sizeof dir, "%s/packs/%02x", repo, i);
		DIR *d = opendir(dir);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (strlen(de->d_name) == 64) {
				int w = snprintf(out, n, "%s/%s", dir, de->d_name);
				closedir(d);
				return w > 0 && (size_t)w < n;
			}
		}
		closedir(d);
	}
	return 0;
}

struct keepcount {
	int kept, removed;
};

static int on_decision(const char *id, const char *group, int64_t time_ns, int keep, const char *reasons,
                       void *payload)
{
	struct keepcount *k = payload;
	if (strlen(id) == 36 && group[0] != 0 && time_ns > 0 && (keep ? strlen(reasons) > 0 : reasons[0] == 0))
	{
		if (keep)
			k->kept++;
		else
			k->removed++;
	}
	return 0;
}

static int on_match(const plakar_snapshot *snap, const char *path, void *payload)
{
	(void)snap;
	(void)path;
	(*(int *)payload)++;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: capi_test WORKDIR [CASE]\n");
		return 2;
	}
	if (argc == 3)
		select_case(argv[2]);
	char src[2048], repo_uri[2048], out[2048], path[4096], cache[2048];
	snprintf(cache, sizeof cache, "%s/cache", argv[1]);
	snprintf(src, sizeof src, "%s/src", argv[1]);
	snprintf(repo_uri, sizeof repo_uri, "%s/repo", argv[1]);
	snprintf(out, sizeof out, "%s/out", argv[1]);
	mkdir(argv[1], 0700);
	mkdir(src, 0700);
	snprintf(path, sizeof path, "%s/a.txt", src);
	write_file(path, "alpha\n");
	snprintf(path, sizeof path, "%s/b.txt", src);
	write_file(path, "bravo bravo\n");

	/* What several cases share: the repository, the pushed paths, the first snapshot. */
	plakar_repository *repo = NULL;
	const char *paths[] = {src};
	plakar_snapshot *snap = NULL;
	char id[64] = "";

	CASE("version") {
		int major = -1;
		plakar_version(&major, NULL, NULL);
		CHECK(major == PLAKAR_VERSION_MAJOR);
		CHECK(strcmp(plakar_version_string(), PLAKAR_VERSION_STRING) == 0);
		CHECK(strcmp(plakar_error_string(PLAKAR_ENOTFOUND), "not found") == 0);
	}

	CASE("open") {
		/* Errors: bad arguments and a missing repository. */
		repo = NULL;
		CHECK(plakar_repository_open(&repo, NULL, NULL) == PLAKAR_EINVALID);
		CHECK(repo == NULL);
		CHECK(strlen(plakar_error_last()) > 0);
		CHECK(plakar_repository_open(&repo, repo_uri, NULL) == PLAKAR_ENOTFOUND);
		CHECK(plakar_error_last_code() == PLAKAR_ENOTFOUND);
		CHECK(plakar_repository_create(&repo, repo_uri, NULL) == PLAKAR_EINVALID);

		plakar_create_options copts = PLAKAR_CREATE_OPTIONS_INIT;
		copts.passphrase = "correct horse";
		copts.kdf_log2_n = 10;
		CHECK(plakar_repository_create(&repo, repo_uri, &copts) == PLAKAR_OK);
		CHECK(strcmp(plakar_error_last(), "") == 0); /* cleared on success */
		CHECK(plakar_repository_encrypted(repo) == 1);
		CHECK(strlen(plakar_repository_id(repo)) == 36);
		plakar_repository_free(repo);
		repo = NULL;
		CHECK(plakar_repository_create(&repo, repo_uri, &copts) == PLAKAR_EEXISTS);

		plakar_open_options oopts = PLAKAR_OPEN_OPTIONS_INIT;
		oopts.cache_dir = cache; /* the library reads no environment: the test's own cache */
		oopts.passphrase = "wrong";
		CHECK(plakar_repository_open(&repo, repo_uri, &oopts) == PLAKAR_EAUTH);
		oopts.passphrase = "correct horse";
		oopts.version = 99;
		CHECK(plakar_repository_open(&repo, repo_uri, &oopts) == PLAKAR_EINVALID);
		oopts.version = PLAKAR_OPEN_OPTIONS_VERSION;
		CHECK(plakar_repository_open(&repo, repo_uri, &oopts) == PLAKAR_OK);
	}

	CASE("push") {
		/* Push with progress; then a canceled push commits nothing. */
		struct counts c = {0, 0};
		plakar_push_options popts = PLAKAR_PUSH_OPTIONS_INIT;
		const char *tags[] = {"daily"};
		popts.tags = tags;
		popts.ntags = 1;
		popts.progress = on_progress;
		popts.payload = &c;
		popts.command_line = "capi_test";
		snap = NULL;
		CHECK(plakar_snapshot_push(&snap, repo, paths, 1, &popts) == PLAKAR_OK);
		CHECK(snap != NULL);
		CHECK(c.files == 2);
		CHECK(plakar_snapshot_files(snap) == 2);
		CHECK(plakar_snapshot_size(snap) == 18);
		CHECK(plakar_snapshot_tag_count(snap) == 1 && strcmp(plakar_snapshot_tag(snap, 0), "daily") == 0);
		CHECK(strcmp(plakar_snapshot_path(snap, 0), src) == 0);
		CHECK(plakar_snapshot_path(snap, 1) == NULL);
		CHECK(strcmp(plakar_snapshot_command_line(snap), "capi_test") == 0);
		snprintf(id, sizeof id, "%s", plakar_snapshot_id(snap));
		plakar_snapshot_free(snap);

		struct counts cancel = {0, 1};
		popts.payload = &cancel;
		snap = NULL;
		CHECK(plakar_snapshot_push(&snap, repo, paths, 1, &popts) == PLAKAR_ECANCELED);
		CHECK(snap == NULL);
		const char *missing[] = {"/nonexistent/path/for/plakar"};
		CHECK(plakar_snapshot_push(NULL, repo, missing, 1, NULL) == PLAKAR_ENOTFOUND);


		plakar_snapshot_list *list = NULL;
		CHECK(plakar_snapshot_list_new(&list, repo) == PLAKAR_OK);
		CHECK(plakar_snapshot_list_count(list) == 1);
		CHECK(strcmp(plakar_snapshot_id(plakar_snapshot_list_get(list, 0)), id) == 0);
		CHECK(plakar_snapshot_list_get(list, 1) == NULL);
		{
			/* A listed snapshot can be browsed directly. */
			plakar_entry_list *l0 = NULL;
			CHECK(plakar_snapshot_ls(&l0, plakar_snapshot_list_get(list, 0), src) == PLAKAR_OK);
			CHECK(plakar_entry_list_count(l0) == 2);
			plakar_entry_list_free(l0);
		}
		plakar_snapshot_list_free(list);
	}

	CASE("browse") {
		/* Open by prefix, stat, ls, read. */
		char prefix[9];
		memcpy(prefix, id, 8);
		prefix[8] = 0;
		CHECK(plakar_snapshot_open(&snap, repo, prefix) == PLAKAR_OK);
		plakar_snapshot *none = NULL;
		CHECK(plakar_snapshot_open(&none, repo, "ffffffffffff") == PLAKAR_ENOTFOUND || strncmp(id, "ffffffffffff", 12) == 0);
		CHECK(plakar_snapshot_open(&none, repo, "xyz") == PLAKAR_EINVALID);

		plakar_entry *e = NULL;
		snprintf(path, sizeof path, "%s/a.txt", src);
		CHECK(plakar_snapshot_stat(&e, snap, path) == PLAKAR_OK);
		CHECK(plakar_entry_type(e) == PLAKAR_TYPE_FILE);
		CHECK(plakar_entry_size(e) == 6);
		CHECK(strcmp(plakar_entry_name(e), "a.txt") == 0);
		CHECK(plakar_entry_uid(e) == (uint32_t)getuid());
		{
			/* What lstat said at push time. */
			struct stat lst;
			CHECK(lstat(path, &lst) == 0);
			CHECK(plakar_entry_inode(e) == (uint64_t)lst.st_ino && plakar_entry_device(e) == (uint64_t)lst.st_dev);
			CHECK(plakar_entry_ctime(e) == (int64_t)lst.st_ctim.tv_sec * 1000000000 + lst.st_ctim.tv_nsec);
			CHECK(plakar_entry_rdev(e) == 0);
			const char *xn = NULL;
			CHECK(plakar_entry_xattr(&xn, NULL, NULL, e, plakar_entry_xattr_count(e)) == PLAKAR_EINVALID);
		}
		plakar_entry_free(e);
		snprintf(path, sizeof path, "%s/zzz", src);
		CHECK(plakar_snapshot_stat(&e, snap, path) == PLAKAR_ENOTFOUND);

		plakar_entry_list *ents = NULL;
		CHECK(plakar_snapshot_ls(&ents, snap, src) == PLAKAR_OK);
		CHECK(plakar_entry_list_count(ents) == 2);
		CHECK(strcmp(plakar_entry_name(plakar_entry_list_get(ents, 1)), "b.txt") == 0);
		plakar_entry_list_free(ents);

		plakar_file *f = NULL;
		snprintf(path, sizeof path, "%s/b.txt", src);
		CHECK(plakar_file_open(&f, snap, path) == PLAKAR_OK);
		CHECK(plakar_file_size(f) == 12);
		char buf[64];
		size_t n = 0, total = 0;
		while (plakar_file_read(&n, f, buf + total, 5) == PLAKAR_OK && n > 0)
			total += n;
		CHECK(total == 12 && memcmp(buf, "bravo bravo\n", 12) == 0);
		CHECK(plakar_file_seek(f, 6) == PLAKAR_OK);
		CHECK(plakar_file_read(&n, f, buf, sizeof buf) == PLAKAR_OK && n == 6 && memcmp(buf, "bravo\n", 6) == 0);
		CHECK(plakar_file_seek(f, 13) == PLAKAR_EINVALID);
		CHECK(plakar_file_seek(f, 12) == PLAKAR_OK);
		CHECK(plakar_file_read(&n, f, buf, sizeof buf) == PLAKAR_OK && n == 0);
		plakar_file_free(f);
		CHECK(plakar_file_open(&f, snap, src) == PLAKAR_EINVALID);
	}

	CASE("dir") {
		/* Streaming directory iteration. */
		{
			plakar_dir *dir = NULL;
			const plakar_entry *de = NULL;
			int count = 0;
			CHECK(plakar_dir_open(&dir, snap, src) == PLAKAR_OK);
			while (plakar_dir_next(&de, dir) == PLAKAR_OK && de != NULL)
				count++;
			CHECK(count == 2);
			plakar_dir_free(dir);
			snprintf(path, sizeof path, "%s/a.txt", src);
			CHECK(plakar_dir_open(&dir, snap, path) == PLAKAR_EINVALID);
			CHECK(dir == NULL);
		}
	}

	CASE("info") {
		/* Information. */
		{
			plakar_repository_info info;
			memset(&info, 0, sizeof info);
			CHECK(plakar_repository_describe(&info, repo) == PLAKAR_EINVALID); /* version unset */
			info.version = PLAKAR_REPOSITORY_INFO_VERSION;
			CHECK(plakar_repository_describe(&info, repo) == PLAKAR_OK);
			CHECK(info.format_version == PLAKAR_FORMAT_VERSION);
			CHECK(info.encrypted == 1);
			CHECK(info.snapshots == 1);
			CHECK(info.logical_bytes == 18);
			CHECK(info.data_bytes == 18);
			CHECK(info.data_blobs == 2);
		}
	}

	CASE("pull") {
		/* Pull, rebased. */
		plakar_pull_options pl = PLAKAR_PULL_OPTIONS_INIT;
		pl.to = out;
		pl.rebase = 1;
		CHECK(plakar_snapshot_pull(snap, src, &pl) == PLAKAR_OK);
		snprintf(path, sizeof path, "%s/src/a.txt", out);
		FILE *rf = fopen(path, "rb");
		CHECK(rf != NULL);
		if (rf) {
			char got[16] = {0};
			CHECK(fread(got, 1, sizeof got, rf) == 6);
			CHECK(strcmp(got, "alpha\n") == 0);
			fclose(rf);
		}
		plakar_snapshot_free(snap);
		snap = NULL;
	}

	CASE("diff_locate") {
		/* Diff and locate across two snapshots. */
		{
			snprintf(path, sizeof path, "%s/c.txt", src);
			write_file(path, "charlie\n");
			plakar_snapshot *s1 = NULL, *s2 = NULL;
			CHECK(plakar_snapshot_open(&s1, repo, id) == PLAKAR_OK);
			CHECK(plakar_snapshot_push(&s2, repo, paths, 1, NULL) == PLAKAR_OK);
			struct diffcount dc = {0, 0, 0};
			/* Only src: its ancestors' mtimes change with whatever else runs in the build tree. */
			plakar_diff_options dopts = PLAKAR_DIFF_OPTIONS_INIT;
			CHECK(plakar_snapshot_diff(s1, src, s2, NULL, &dopts) == PLAKAR_EINVALID); /* no callback */
			dopts.change = on_change;
			dopts.payload = &dc;
			CHECK(plakar_snapshot_diff(s1, src, s2, NULL, &dopts) == PLAKAR_OK);
			CHECK(dc.added == 1 && dc.removed == 0);
			CHECK(dc.modified == 1); /* src itself: c.txt changed its mtime */
			int matches = 0;
			plakar_locate_options lo;
			plakar_locate_options_init(&lo);
			CHECK(plakar_repository_locate(repo, "*.txt", &lo) == PLAKAR_EINVALID); /* no callback */
			lo.match = on_match;
			lo.payload = &matches;
			CHECK(plakar_repository_locate(repo, "*.txt", &lo) == PLAKAR_OK);
			CHECK(matches == 2 + 3);
			matches = 0;
			lo.full_path = 1;
			CHECK(plakar_repository_locate(repo, "*/c.txt", &lo) == PLAKAR_OK);
			CHECK(matches == 1);
			CHECK(plakar_repository_locate(repo, "", &lo) == PLAKAR_EINVALID);
			CHECK(plakar_repository_locate(repo, "*.txt", NULL) == PLAKAR_EINVALID);
			plakar_snapshot_free(s1);
			plakar_snapshot_free(s2);
		}
	}

	CASE("maintenance") {
		/* rm and gc: argument errors, nothing removed on an unknown id; gc with nothing to free. */
		{
			const char *bad[] = {id, "ffffffffff"};
			size_t removed = 99;
			CHECK(plakar_snapshot_remove(&removed, repo, bad, 2) == PLAKAR_ENOTFOUND && removed == 0);
			CHECK(plakar_snapshot_remove(&removed, repo, NULL, 0) == PLAKAR_EINVALID);
			plakar_snapshot_list *sl = NULL;
			CHECK(plakar_snapshot_list_new(&sl, repo) == PLAKAR_OK && plakar_snapshot_list_count(sl) == 2);
			plakar_snapshot_list_free(sl);
			plakar_gc_report gr;
			memset(&gr, 0, sizeof gr);
			CHECK(plakar_repository_gc(&gr, repo, NULL) == PLAKAR_EINVALID); /* report version unset */
			gr.version = PLAKAR_GC_REPORT_VERSION;
			plakar_gc_options go = PLAKAR_GC_OPTIONS_INIT;
			go.dry_run = 1;
			CHECK(plakar_repository_gc(&gr, repo, &go) == PLAKAR_OK);
			CHECK(gr.dry_run == 1 && gr.snapshots == 2 && gr.packs_deleted == 0);
			go.dry_run = 0;
			go.repack_percent = 101;
			CHECK(plakar_repository_gc(&gr, repo, &go) == PLAKAR_EINVALID);
			go.repack_percent = -1;
			CHECK(plakar_repository_gc(&gr, repo, &go) == PLAKAR_OK);
			/* Nothing freed: no segment rewritten (two pushes, two segments, none superseded). */
			CHECK(gr.dry_run == 0 && gr.packs_deleted == 0 && gr.segments_after == 2 && gr.live_blobs >= 3);
			CHECK(gr.segments_before == 2 && gr.segments_deleted == 0 && gr.segments_pending == 0);
			CHECK(plakar_repository_gc(NULL, repo, NULL) == PLAKAR_OK);
			/* An open snapshot holds the handle's reader lock: gc counts it, and no longer once it is
			 * freed; nor once a dup of it is. */
			plakar_snapshot *open_snap = NULL;
			CHECK(plakar_snapshot_open(&open_snap, repo, id) == PLAKAR_OK);
			CHECK(plakar_repository_gc(&gr, repo, &go) == PLAKAR_OK);
			CHECK(gr.readers_running == 1 && gr.pushes_running == 0);
			CHECK(gr.packs_merged == 0 && gr.temp_files_removed == 0); /* two pushes: fewer than 8 small packs */
			plakar_snapshot *dup = NULL;
			CHECK(plakar_snapshot_dup(&dup, open_snap) == PLAKAR_OK && dup != NULL);
			plakar_snapshot_free(open_snap);
			CHECK(strcmp(plakar_snapshot_id(dup), id) == 0);
			CHECK(plakar_repository_gc(&gr, repo, &go) == PLAKAR_OK);
			CHECK(gr.readers_running == 1);
			plakar_snapshot_free(dup);
			CHECK(plakar_repository_gc(&gr, repo, &go) == PLAKAR_OK);
			CHECK(gr.readers_running == 0);
			gr.version = 2; /* no other version exists */
			CHECK(plakar_repository_gc(&gr, repo, &go) == PLAKAR_EINVALID);
			plakar_gc_report_init(&gr);
			CHECK(gr.version == PLAKAR_GC_REPORT_VERSION && gr.snapshots == 0);

			/* Retention: judged, reported, and (dry run) nothing removed; last 2 keeps both. */
			plakar_keep_options ko = PLAKAR_KEEP_OPTIONS_INIT;
			struct keepcount kc = {0, 0};
			ko.decision = on_decision;
			ko.payload = &kc;
			CHECK(plakar_repository_keep(&removed, repo, &ko) == PLAKAR_EINVALID); /* no rule */
			CHECK(plakar_repository_keep(NULL, repo, NULL) == PLAKAR_EINVALID);
			ko.last = 1;
			ko.dry_run = 1;
			CHECK(plakar_repository_keep(&removed, repo, &ko) == PLAKAR_OK);
			CHECK(kc.kept == 1 && kc.removed == 1 && removed == 0);
			ko.last = 2;
			ko.dry_run = 0;
			ko.decision = NULL;
			CHECK(plakar_repository_keep(&removed, repo, &ko) == PLAKAR_OK && removed == 0);

			/* Repair, as a dry run: the index already agrees with the packs. */
			plakar_repair_report rr;
			memset(&rr, 0, sizeof rr);
			CHECK(plakar_repository_repair(&rr, repo, NULL) == PLAKAR_EINVALID); /* version unset */
			plakar_repair_report_init(&rr);
			CHECK(plakar_repository_repair(&rr, repo, NULL) == PLAKAR_OK);
			CHECK(rr.applied == 0 && rr.added == 0 && rr.dropped == 0 && rr.damaged == 0 && rr.blobs >= 3);
			plakar_repair_options ro = PLAKAR_REPAIR_OPTIONS_INIT;
			ro.flags = PLAKAR_REPAIR_APPLY | PLAKAR_REPAIR_READ_DATA;
			CHECK(plakar_repository_repair(&rr, repo, &ro) == PLAKAR_OK);
			CHECK(rr.applied == 1 && rr.damaged_blobs == 0);
			ro.flags = 8;
			CHECK(plakar_repository_repair(&rr, repo, &ro) == PLAKAR_EINVALID);
		}
	}

	CASE("check") {
		/* Check: clean at every depth, then a truncated pack, named in the report. */
		{
			plakar_check_report *rep = NULL;
			plakar_check_options co = PLAKAR_CHECK_OPTIONS_INIT;
			co.flags = PLAKAR_CHECK_REFCOUNTS | PLAKAR_CHECK_READ_DATA;
			CHECK(plakar_repository_check(&rep, repo, &co) == PLAKAR_OK);
			CHECK(rep != NULL);
			plakar_check_stats st;
			memset(&st, 0, sizeof st);
			CHECK(plakar_check_report_stats(&st, rep) == PLAKAR_EINVALID); /* version unset */
			st.version = PLAKAR_CHECK_STATS_VERSION;
			CHECK(plakar_check_report_stats(&st, rep) == PLAKAR_OK);
			CHECK(st.snapshots == 2 && st.problems == 0 && st.packs >= 2 && st.bytes >= 18);
			CHECK(plakar_check_report_problem_count(rep) == 0);
			CHECK(plakar_check_report_problem(NULL, NULL, NULL, rep, 0) == PLAKAR_EINVALID);
			size_t nref = plakar_check_report_refcount_count(rep);
			CHECK(nref >= 3);
			char hex[65];
			uint32_t cnt = 0;
			CHECK(plakar_check_report_refcount(hex, &cnt, rep, 0) == PLAKAR_OK);
			CHECK(strlen(hex) == 64 && cnt >= 1 && cnt <= 2);
			CHECK(plakar_check_report_refcount(hex, &cnt, rep, nref) == PLAKAR_EINVALID);
			plakar_check_report_free(rep);

			const char *snaps[] = {id};
			co.flags = 0;
			co.snapshots = snaps;
			co.nsnapshots = 1;
			rep = NULL;
			CHECK(plakar_repository_check(&rep, repo, &co) == PLAKAR_OK);
			plakar_check_report_free(rep);
			co.flags = PLAKAR_CHECK_FAST;
			CHECK(plakar_repository_check(&rep, repo, &co) == PLAKAR_OK);
			plakar_check_report_free(rep);
			co.flags = PLAKAR_CHECK_REFCOUNTS; /* only for the whole repository */
			CHECK(plakar_repository_check(&rep, repo, &co) == PLAKAR_EINVALID && rep == NULL);
			co.flags = 0;
			snaps[0] = "ffffffffff";
			CHECK(plakar_repository_check(&rep, repo, &co) == PLAKAR_ENOTFOUND && rep == NULL);
			int stop = 1;
			plakar_check_options cancel = PLAKAR_CHECK_OPTIONS_INIT;
			cancel.progress = stop_check;
			cancel.payload = &stop;
			CHECK(plakar_repository_check(&rep, repo, &cancel) == PLAKAR_ECANCELED && rep == NULL);
			CHECK(plakar_repository_check(NULL, repo, NULL) == PLAKAR_EINVALID);

			char pack[4096];
			CHECK(first_pack(repo_uri, pack, sizeof pack));
			CHECK(truncate(pack, 100) == 0);
			CHECK(plakar_repository_check(&rep, repo, NULL) == PLAKAR_ECORRUPT);
			CHECK(rep != NULL);
			CHECK(plakar_check_report_problem_count(rep) >= 1);
			int code = 0;
			const char *object = NULL, *message = NULL;
			CHECK(plakar_check_report_problem(&code, &object, &message, rep, 0) == PLAKAR_OK);
			CHECK(code == PLAKAR_ECORRUPT || code == PLAKAR_ENOTFOUND);
			CHECK(object != NULL && message != NULL && strlen(message) > 0);
			int named = 0;
			for (size_t i = 0; i < plakar_check_report_problem_count(rep); i++)
				if (plakar_check_report_problem(NULL, &object, NULL, rep, i) == PLAKAR_OK && strncmp(object, "pack ", 5) == 0 &&
				    strstr(pack, object + 5) != NULL)
					named = 1;
			CHECK(named);
			plakar_check_report_free(rep);
			plakar_check_report_free(NULL);
		}
	}

	CASE("agent") {
		/* The key agent: served by a child process; an open through it needs no passphrase. */
		{
			char sock[2048];
			snprintf(sock, sizeof sock, "%s/agent.sock", argv[1]);
			plakar_agent *agent = NULL;
			mode_t mask = umask(022);
			CHECK(plakar_agent_listen(&agent, sock) == PLAKAR_OK);
			CHECK(umask(mask) == 022); /* the process's umask is left alone */
			struct stat ss;
			CHECK(lstat(sock, &ss) == 0 && S_ISSOCK(ss.st_mode) && (ss.st_mode & 0777) == 0600);
			{
				/* Nothing left of the private directory it was bound in. */
				DIR *dd = opendir(argv[1]);
				struct dirent *de;
				int leftovers = 0;
				while (dd && (de = readdir(dd)) != NULL)
					leftovers += strncmp(de->d_name, ".plakar-agent-", 14) == 0;
				if (dd)
					closedir(dd);
				CHECK(leftovers == 0);
			}
			plakar_agent *again = NULL;
			CHECK(plakar_agent_listen(&again, sock) == PLAKAR_EEXISTS && again == NULL);
			pid_t pid = fork();
			if (pid == 0) {
				int rc = plakar_agent_serve(agent, 60);
				_exit(rc == PLAKAR_OK ? 0 : 1);
			}
			plakar_agent_free(agent);
			plakar_open_options ao = PLAKAR_OPEN_OPTIONS_INIT;
			ao.agent = sock;
			ao.cache_dir = cache;
			plakar_repository *r2 = NULL;
			CHECK(plakar_repository_open(&r2, repo_uri, &ao) == PLAKAR_EAUTH); /* the agent has no key yet */
			ao.passphrase = "correct horse";
			CHECK(plakar_repository_open(&r2, repo_uri, &ao) == PLAKAR_OK); /* hands the key over */
			plakar_repository_free(r2);
			r2 = NULL;
			ao.passphrase = NULL;
			CHECK(plakar_repository_open(&r2, repo_uri, &ao) == PLAKAR_OK);
			CHECK(r2 != NULL && strcmp(plakar_repository_id(r2), plakar_repository_id(repo)) == 0);
			plakar_repository_free(r2);
			/* The _init function gives what the macro gives. */
			plakar_open_options m = PLAKAR_OPEN_OPTIONS_INIT, f;
			memset(&f, 0xab, sizeof f);
			plakar_open_options_init(&f);
			CHECK(f.version == m.version && f.passphrase == NULL && f.cpu == 0 && f.agent == NULL && f.token == NULL &&
			      f.token_file == NULL && f.tls_ca_file == NULL && f.cache_dir == NULL && f.no_cache == 0);
			CHECK(plakar_agent_stop(sock) == PLAKAR_OK);
			int status = -1;
			CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
			CHECK(access(sock, F_OK) != 0);
			CHECK(plakar_agent_stop(sock) == PLAKAR_ENOTFOUND);
			plakar_agent_free(NULL);
		}
	}

	CASE("cpu") {
		{
			/* The CPU budget: a negative one is refused; any budget pushes the same content. */
			plakar_open_options co = PLAKAR_OPEN_OPTIONS_INIT;
			co.passphrase = "correct horse";
			co.cache_dir = cache;
			CHECK(plakar_cpu_count() >= 1);
			co.cpu = -1;
			plakar_repository *r3 = NULL;
			CHECK(plakar_repository_open(&r3, repo_uri, &co) == PLAKAR_EINVALID && r3 == NULL);
			int budgets[] = {1, 2, 4096};
			uint64_t files0 = 0, size0 = 0;
			for (int i = 0; i < 3; i++) {
				co.cpu = budgets[i];
				CHECK(plakar_repository_open(&r3, repo_uri, &co) == PLAKAR_OK);
				plakar_snapshot *s3 = NULL;
				CHECK(plakar_snapshot_push(&s3, r3, paths, 1, NULL) == PLAKAR_OK);
				if (i == 0) {
					files0 = plakar_snapshot_files(s3);
					size0 = plakar_snapshot_size(s3);
					CHECK(files0 > 0);
				}
				CHECK(plakar_snapshot_files(s3) == files0 && plakar_snapshot_size(s3) == size0);
				plakar_snapshot_free(s3);
				plakar_repository_free(r3);
				r3 = NULL;
			}
		}
	}

	CASE("push_options") {
		/* Excludes (by name, by path) and the parent choice: an unknown parent fails before
		 * anything is written; "" reads everything. Nothing of these pushes is kept. */
		{
			plakar_push_options xo;
			plakar_push_options_init(&xo);
			char bpath[2100];
			snprintf(bpath, sizeof bpath, "%s/b.txt", src);
			const char *ex[] = {"a.*", bpath};
			xo.excludes = ex;
			xo.nexcludes = 2;
			xo.parent = "";
			plakar_snapshot *xs = NULL;
			CHECK(plakar_snapshot_push(&xs, repo, paths, 1, &xo) == PLAKAR_OK);
			CHECK(plakar_snapshot_files(xs) == 1); /* c.txt alone */
			const char *xid[] = {plakar_snapshot_id(xs)};
			size_t gone = 0;
			CHECK(plakar_snapshot_remove(&gone, repo, xid, 1) == PLAKAR_OK && gone == 1);
			plakar_snapshot_free(xs);
			const char *empty[] = {""};
			xo.excludes = empty;
			xo.nexcludes = 1;
			CHECK(plakar_snapshot_push(NULL, repo, paths, 1, &xo) == PLAKAR_EINVALID);
			xo.excludes = NULL;
			xo.nexcludes = 0;
			xo.parent = "ffffffffffffffff";
			CHECK(plakar_snapshot_push(NULL, repo, paths, 1, &xo) == PLAKAR_ENOTFOUND || strncmp(id, "ffff", 4) == 0);
			xo.parent = id;
			CHECK(plakar_snapshot_push(&xs, repo, paths, 1, &xo) == PLAKAR_OK && plakar_snapshot_files(xs) == 3);
			xid[0] = plakar_snapshot_id(xs);
			CHECK(plakar_snapshot_remove(&gone, repo, xid, 1) == PLAKAR_OK && gone == 1);
			plakar_snapshot_free(xs);
		}
	}

	CASE("free") {
		/* NULL is accepted by every _free. */
		plakar_snapshot_free(NULL);
		plakar_snapshot_list_free(NULL);
		plakar_entry_free(NULL);
		plakar_entry_list_free(NULL);
		plakar_file_free(NULL);
		plakar_repository_free(NULL);
		plakar_string_free(NULL);
	}

	/* Whatever case the run stopped after. */
	plakar_snapshot_free(snap);
	plakar_repository_free(repo);
	return finish_cases("capi");
}
