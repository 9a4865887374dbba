/*
 * The C ABI exercised from plain C (C11, no C++ runtime in this file): create, open, push with
 * a progress callback and cancellation, list, open by prefix, stat, ls, read, pull, diff,
 * locate, check, the key agent, errors.
 * Usage: capi_test WORKDIR
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
	if (argc != 2) {
		fprintf(stderr, "usage: capi_test WORKDIR\n");
		return 2;
	}
	char src[2048], repo_uri[2048], out[2048], path[4096];
	snprintf(src, sizeof src, "%s/src", argv[1]);
	snprintf(repo_uri, sizeof repo_uri, "%s/repo", argv[1]);
	snprintf(out, sizeof out, "%s/out", argv[1]);
	mkdir(argv[1], 0700);
	mkdir(src, 0700);
	snprintf(path, sizeof path, "%s/a.txt", src);
	write_file(path, "alpha\n");
	snprintf(path, sizeof path, "%s/b.txt", src);
	write_file(path, "bravo bravo\n");

	int major = -1;
	plakar_version(&major, NULL, NULL);
	CHECK(major == PLAKAR_VERSION_MAJOR);
	CHECK(strcmp(plakar_version_string(), PLAKAR_VERSION_STRING) == 0);
	CHECK(strcmp(plakar_error_string(PLAKAR_ENOTFOUND), "not found") == 0);

	/* Errors: bad arguments and a missing repository. */
	plakar_repository *repo = NULL;
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
	oopts.passphrase = "wrong";
	CHECK(plakar_repository_open(&repo, repo_uri, &oopts) == PLAKAR_EAUTH);
	oopts.passphrase = "correct horse";
	oopts.version = 99;
	CHECK(plakar_repository_open(&repo, repo_uri, &oopts) == PLAKAR_EINVALID);
	oopts.version = PLAKAR_OPEN_OPTIONS_VERSION;
	CHECK(plakar_repository_open(&repo, repo_uri, &oopts) == PLAKAR_OK);

	/* Push with progress; then a canceled push commits nothing. */
	const char *paths[] = {src};
	struct counts c = {0, 0};
	plakar_push_options popts = PLAKAR_PUSH_OPTIONS_INIT;
	const char *tags[] = {"daily"};
	popts.tags = tags;
	popts.ntags = 1;
	popts.progress = on_progress;
	popts.payload = &c;
	popts.command_line = "capi_test";
	plakar_snapshot *snap = NULL;
	CHECK(plakar_push(&snap, repo, paths, 1, &popts) == PLAKAR_OK);
	CHECK(snap != NULL);
	CHECK(c.files == 2);
	CHECK(plakar_snapshot_files(snap) == 2);
	CHECK(plakar_snapshot_size(snap) == 18);
	CHECK(plakar_snapshot_tag_count(snap) == 1 && strcmp(plakar_snapshot_tag(snap, 0), "daily") == 0);
	CHECK(strcmp(plakar_snapshot_path(snap, 0), src) == 0);
	CHECK(plakar_snapshot_path(snap, 1) == NULL);
	CHECK(strcmp(plakar_snapshot_command_line(snap), "capi_test") == 0);
	char id[64];
	snprintf(id, sizeof id, "%s", plakar_snapshot_id(snap));
	plakar_snapshot_free(snap);

	struct counts cancel = {0, 1};
	popts.payload = &cancel;
	snap = NULL;
	CHECK(plakar_push(&snap, repo, paths, 1, &popts) == PLAKAR_ECANCELED);
	CHECK(snap == NULL);
	const char *missing[] = {"/nonexistent/path/for/plakar"};
	CHECK(plakar_push(NULL, repo, missing, 1, NULL) == PLAKAR_ENOTFOUND);

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
	while (plakar_file_read(f, buf + total, 5, &n) == PLAKAR_OK && n > 0)
		total += n;
	CHECK(total == 12 && memcmp(buf, "bravo bravo\n", 12) == 0);
	CHECK(plakar_file_seek(f, 6) == PLAKAR_OK);
	CHECK(plakar_file_read(f, buf, sizeof buf, &n) == PLAKAR_OK && n == 6 && memcmp(buf, "bravo\n", 6) == 0);
	CHECK(plakar_file_seek(f, 13) == PLAKAR_EINVALID);
	CHECK(plakar_file_seek(f, 12) == PLAKAR_OK);
	CHECK(plakar_file_read(f, buf, sizeof buf, &n) == PLAKAR_OK && n == 0);
	plakar_file_free(f);
	CHECK(plakar_file_open(&f, snap, src) == PLAKAR_EINVALID);

	/* Streaming directory iteration. */
	{
		plakar_dir *dir = NULL;
		const plakar_entry *de = NULL;
		int count = 0;
		CHECK(plakar_dir_open(&dir, snap, src) == PLAKAR_OK);
		while (plakar_dir_next(dir, &de) == PLAKAR_OK && de != NULL)
			count++;
		CHECK(count == 2);
		plakar_dir_free(dir);
		snprintf(path, sizeof path, "%s/a.txt", src);
		CHECK(plakar_dir_open(&dir, snap, path) == PLAKAR_EINVALID);
		CHECK(dir == NULL);
	}

	/* Information. */
	{
		plakar_repository_info info;
		memset(&info, 0, sizeof info);
		CHECK(plakar_repository_info_get(repo, &info) == PLAKAR_EINVALID); /* version unset */
		info.version = PLAKAR_REPOSITORY_INFO_VERSION;
		CHECK(plakar_repository_info_get(repo, &info) == PLAKAR_OK);
		CHECK(info.format_version == PLAKAR_FORMAT_VERSION);
		CHECK(info.encrypted == 1);
		CHECK(info.snapshots == 1);
		CHECK(info.logical_bytes == 18);
		CHECK(info.data_bytes == 18);
		CHECK(info.data_blobs == 2);
	}

	/* Pull, rebased. */
	plakar_pull_options pl = PLAKAR_PULL_OPTIONS_INIT;
	pl.to = out;
	pl.rebase = 1;
	CHECK(plakar_pull(snap, src, &pl) == PLAKAR_OK);
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

	/* Diff and locate across two snapshots. */
	{
		snprintf(path, sizeof path, "%s/c.txt", src);
		write_file(path, "charlie\n");
		plakar_snapshot *s1 = NULL, *s2 = NULL;
		CHECK(plakar_snapshot_open(&s1, repo, id) == PLAKAR_OK);
		CHECK(plakar_push(&s2, repo, paths, 1, NULL) == PLAKAR_OK);
		struct diffcount dc = {0, 0, 0};
		/* Only src: its ancestors' mtimes change with whatever else runs in the build tree. */
		CHECK(plakar_snapshot_diff(s1, src, s2, NULL, on_change, &dc) == PLAKAR_OK);
		CHECK(dc.added == 1 && dc.removed == 0);
		CHECK(dc.modified == 1); /* src itself: c.txt changed its mtime */
		int matches = 0;
		plakar_locate_options lo = PLAKAR_LOCATE_OPTIONS_INIT;
		CHECK(plakar_locate(repo, "*.txt", &lo, on_match, &matches) == PLAKAR_OK);
		CHECK(matches == 2 + 3);
		matches = 0;
		lo.full_path = 1;
		CHECK(plakar_locate(repo, "*/c.txt", &lo, on_match, &matches) == PLAKAR_OK);
		CHECK(matches == 1);
		CHECK(plakar_locate(repo, "", NULL, on_match, &matches) == PLAKAR_EINVALID);
		plakar_snapshot_free(s1);
		plakar_snapshot_free(s2);
	}

	/* rm and gc: argument errors, nothing removed on an unknown id; gc with nothing to free. */
	{
		const char *bad[] = {id, "ffffffffff"};
		size_t removed = 99;
		CHECK(plakar_snapshots_remove(repo, bad, 2, &removed) == PLAKAR_ENOTFOUND && removed == 0);
		CHECK(plakar_snapshots_remove(repo, NULL, 0, &removed) == PLAKAR_EINVALID);
		plakar_snapshot_list *sl = NULL;
		CHECK(plakar_snapshot_list_new(&sl, repo) == PLAKAR_OK && plakar_snapshot_list_count(sl) == 2);
		plakar_snapshot_list_free(sl);
		plakar_gc_report gr;
		memset(&gr, 0, sizeof gr);
		CHECK(plakar_gc(repo, NULL, &gr) == PLAKAR_EINVALID); /* report version unset */
		gr.version = PLAKAR_GC_REPORT_VERSION;
		plakar_gc_options go = PLAKAR_GC_OPTIONS_INIT;
		go.dry_run = 1;
		CHECK(plakar_gc(repo, &go, &gr) == PLAKAR_OK);
		CHECK(gr.dry_run == 1 && gr.snapshots == 2 && gr.packs_deleted == 0);
		go.dry_run = 0;
		go.repack_percent = 101;
		CHECK(plakar_gc(repo, &go, &gr) == PLAKAR_EINVALID);
		go.repack_percent = -1;
		CHECK(plakar_gc(repo, &go, &gr) == PLAKAR_OK);
		/* Nothing freed: no segment rewritten (two pushes, two segments, none superseded). */
		CHECK(gr.dry_run == 0 && gr.packs_deleted == 0 && gr.segments_after == 2 && gr.live_blobs >= 3);
		CHECK(gr.segments_before == 2 && gr.segments_deleted == 0 && gr.segments_pending == 0);
		CHECK(plakar_gc(repo, NULL, NULL) == PLAKAR_OK);
		/* An open snapshot holds the handle's reader lock: gc counts it, and no longer once it is
		 * freed. A version 1 report is filled up to its own end, nothing after. */
		plakar_snapshot *open_snap = NULL;
		CHECK(plakar_snapshot_open(&open_snap, repo, id) == PLAKAR_OK);
		CHECK(plakar_gc(repo, &go, &gr) == PLAKAR_OK);
		CHECK(gr.readers_running == 1 && gr.pushes_running == 0);
		CHECK(gr.packs_merged == 0 && gr.temp_files_removed == 0); /* two pushes: fewer than 8 small packs */
		plakar_snapshot_free(open_snap);
		CHECK(plakar_gc(repo, &go, &gr) == PLAKAR_OK);
		CHECK(gr.readers_running == 0);
		memset(&gr, 0xab, sizeof gr);
		gr.version = 1;
		CHECK(plakar_gc(repo, &go, &gr) == PLAKAR_OK);
		CHECK(gr.snapshots == 2 && gr.pushes_running == 0xababababababababull);
		memset(&gr, 0xab, sizeof gr);
		gr.version = 2;
		CHECK(plakar_gc(repo, &go, &gr) == PLAKAR_OK);
		CHECK(gr.packs_merged == 0 && gr.segments_deleted == 0xababababababababull);

		/* Retention: judged, reported, and (dry run) nothing removed; last 2 keeps both. */
		plakar_keep_options ko = PLAKAR_KEEP_OPTIONS_INIT;
		struct keepcount kc = {0, 0};
		CHECK(plakar_keep(repo, &ko, on_decision, &kc, &removed) == PLAKAR_EINVALID); /* no rule */
		CHECK(plakar_keep(repo, NULL, NULL, NULL, NULL) == PLAKAR_EINVALID);
		ko.last = 1;
		ko.dry_run = 1;
		CHECK(plakar_keep(repo, &ko, on_decision, &kc, &removed) == PLAKAR_OK);
		CHECK(kc.kept == 1 && kc.removed == 1 && removed == 0);
		ko.last = 2;
		ko.dry_run = 0;
		CHECK(plakar_keep(repo, &ko, NULL, NULL, &removed) == PLAKAR_OK && removed == 0);

		/* Repair, as a dry run: the index already agrees with the packs. */
		plakar_repair_report rr;
		memset(&rr, 0, sizeof rr);
		CHECK(plakar_repair(repo, 0, &rr, NULL, NULL) == PLAKAR_EINVALID); /* version unset */
		rr.version = PLAKAR_REPAIR_REPORT_VERSION;
		CHECK(plakar_repair(repo, 0, &rr, NULL, NULL) == PLAKAR_OK);
		CHECK(rr.applied == 0 && rr.added == 0 && rr.dropped == 0 && rr.damaged == 0 && rr.blobs >= 3);
		CHECK(plakar_repair(repo, PLAKAR_REPAIR_APPLY | PLAKAR_REPAIR_READ_DATA, &rr, NULL, NULL) == PLAKAR_OK);
		CHECK(rr.applied == 1 && rr.damaged_blobs == 0);
		CHECK(plakar_repair(repo, 8, &rr, NULL, NULL) == PLAKAR_EINVALID);
	}

	/* Check: clean at every depth, then a truncated pack, named in the report. */
	{
		plakar_check_report *rep = NULL;
		plakar_check_options co = PLAKAR_CHECK_OPTIONS_INIT;
		co.flags = PLAKAR_CHECK_REFCOUNTS | PLAKAR_CHECK_READ_DATA;
		CHECK(plakar_check(&rep, repo, &co) == PLAKAR_OK);
		CHECK(rep != NULL);
		plakar_check_stats st;
		memset(&st, 0, sizeof st);
		CHECK(plakar_check_report_stats(rep, &st) == PLAKAR_EINVALID); /* version unset */
		st.version = PLAKAR_CHECK_STATS_VERSION;
		CHECK(plakar_check_report_stats(rep, &st) == PLAKAR_OK);
		CHECK(st.snapshots == 2 && st.problems == 0 && st.packs >= 2 && st.bytes >= 18);
		CHECK(plakar_check_report_problem_count(rep) == 0);
		CHECK(plakar_check_report_problem(rep, 0, NULL, NULL, NULL) == PLAKAR_EINVALID);
		size_t nref = plakar_check_report_refcount_count(rep);
		CHECK(nref >= 3);
		char hex[65];
		uint32_t cnt = 0;
		CHECK(plakar_check_report_refcount(rep, 0, hex, &cnt) == PLAKAR_OK);
		CHECK(strlen(hex) == 64 && cnt >= 1 && cnt <= 2);
		CHECK(plakar_check_report_refcount(rep, nref, hex, &cnt) == PLAKAR_EINVALID);
		plakar_check_report_free(rep);

		const char *snaps[] = {id};
		co.flags = 0;
		co.snapshots = snaps;
		co.nsnapshots = 1;
		rep = NULL;
		CHECK(plakar_check(&rep, repo, &co) == PLAKAR_OK);
		plakar_check_report_free(rep);
		co.flags = PLAKAR_CHECK_FAST;
		CHECK(plakar_check(&rep, repo, &co) == PLAKAR_OK);
		plakar_check_report_free(rep);
		co.flags = PLAKAR_CHECK_REFCOUNTS; /* only for the whole repository */
		CHECK(plakar_check(&rep, repo, &co) == PLAKAR_EINVALID && rep == NULL);
		co.flags = 0;
		snaps[0] = "ffffffffff";
		CHECK(plakar_check(&rep, repo, &co) == PLAKAR_ENOTFOUND && rep == NULL);
		int stop = 1;
		plakar_check_options cancel = PLAKAR_CHECK_OPTIONS_INIT;
		cancel.progress = stop_check;
		cancel.payload = &stop;
		CHECK(plakar_check(&rep, repo, &cancel) == PLAKAR_ECANCELED && rep == NULL);
		CHECK(plakar_check(NULL, repo, NULL) == PLAKAR_EINVALID);

		char pack[4096];
		CHECK(first_pack(repo_uri, pack, sizeof pack));
		CHECK(truncate(pack, 100) == 0);
		CHECK(plakar_check(&rep, repo, NULL) == PLAKAR_ECORRUPT);
		CHECK(rep != NULL);
		CHECK(plakar_check_report_problem_count(rep) >= 1);
		int code = 0;
		const char *object = NULL, *message = NULL;
		CHECK(plakar_check_report_problem(rep, 0, &code, &object, &message) == PLAKAR_OK);
		CHECK(code == PLAKAR_ECORRUPT || code == PLAKAR_ENOTFOUND);
		CHECK(object != NULL && message != NULL && strlen(message) > 0);
		int named = 0;
		for (size_t i = 0; i < plakar_check_report_problem_count(rep); i++)
			if (plakar_check_report_problem(rep, i, NULL, &object, NULL) == PLAKAR_OK && strncmp(object, "pack ", 5) == 0 &&
			    strstr(pack, object + 5) != NULL)
				named = 1;
		CHECK(named);
		plakar_check_report_free(rep);
		plakar_check_report_free(NULL);
	}

	/* The key agent: served by a child process; an open through it needs no passphrase. */
	{
		char sock[2048];
		snprintf(sock, sizeof sock, "%s/agent.sock", argv[1]);
		plakar_agent *agent = NULL;
		CHECK(plakar_agent_listen(&agent, sock) == PLAKAR_OK);
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
		/* Version 1 options (no agent field) are still accepted. */
		plakar_open_options v1 = PLAKAR_OPEN_OPTIONS_INIT;
		v1.version = 1;
		v1.passphrase = "correct horse";
		r2 = NULL;
		CHECK(plakar_repository_open(&r2, repo_uri, &v1) == PLAKAR_OK);
		plakar_repository_free(r2);
		CHECK(plakar_agent_stop(sock) == PLAKAR_OK);
		int status = -1;
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
		CHECK(access(sock, F_OK) != 0);
		CHECK(plakar_agent_stop(sock) == PLAKAR_ENOTFOUND);
		plakar_agent_free(NULL);
	}

	{
		/* The CPU budget: a negative one is refused; any budget pushes the same content. */
		plakar_open_options co = PLAKAR_OPEN_OPTIONS_INIT;
		co.passphrase = "correct horse";
		co.cpu = -1;
		plakar_repository *r3 = NULL;
		CHECK(plakar_repository_open(&r3, repo_uri, &co) == PLAKAR_EINVALID && r3 == NULL);
		int budgets[] = {1, 2, 4096};
		uint64_t files0 = 0, size0 = 0;
		for (int i = 0; i < 3; i++) {
			co.cpu = budgets[i];
			CHECK(plakar_repository_open(&r3, repo_uri, &co) == PLAKAR_OK);
			plakar_snapshot *s3 = NULL;
			CHECK(plakar_push(&s3, r3, paths, 1, NULL) == PLAKAR_OK);
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

	/* NULL is accepted by every _free. */
	plakar_snapshot_free(NULL);
	plakar_snapshot_list_free(NULL);
	plakar_entry_free(NULL);
	plakar_entry_list_free(NULL);
	plakar_file_free(NULL);
	plakar_repository_free(NULL);
	plakar_string_free(NULL);
	plakar_repository_free(repo);

	char *def = NULL;
	setenv("PLAKAR_REPOSITORY", "/some/where", 1);
	CHECK(plakar_default_repository(&def) == PLAKAR_OK && strcmp(def, "/some/where") == 0);
	plakar_string_free(def);

	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("capi: all checks passed\n");
	return 0;
}
