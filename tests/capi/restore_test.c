/*
 * Restores from the C ABI that a hostile repository cannot turn against the caller: snapshots
 * forged by plakar_forge (a directory "d" and a symlink "d" to a directory outside the target,
 * in both orders, with small and with large files) fail with PLAKAR_ECORRUPT and leave the
 * outside directory as it was; a symlink planted in the target is replaced, not followed. Then
 * plakar_pull_options: the overwrite policy, force, dry_run (events, nothing written) and
 * verify; an unknown version of the struct is refused.
 *
 *   capi_restore_test WORKDIR PLAKAR_FORGE [CASE]
 */
#include <plakar/plakar.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static const char *pass = "correct horse";

/* Entries of a directory (names and sizes), as one string: what "unchanged" is compared on. */
static void listing(const char *dir, char *out, size_t n)
{
	out[0] = 0;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		char p[4096];
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (lstat(p, &st) != 0)
			continue;
		size_t used = strlen(out);
		snprintf(out + used, n - used, "%s:%o:%lld;", de->d_name, (unsigned)st.st_mode, (long long)st.st_size);
	}
	closedir(d);
}

static void read_into(const char *path, char *buf, size_t n)
{
	buf[0] = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	size_t got = fread(buf, 1, n - 1, f);
	buf[got] = 0;
	fclose(f);
}

struct seen {
	int create, replace, remove, skip;
};

static int on_event(const plakar_event *ev, void *payload)
{
	struct seen *s = payload;
	switch (ev->kind) {
	case PLAKAR_EVENT_CREATE: s->create++; break;
	case PLAKAR_EVENT_REPLACE: s->replace++; break;
	case PLAKAR_EVENT_REMOVE: s->remove++; break;
	case PLAKAR_EVENT_SKIP: s->skip++; break;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: capi_restore_test WORKDIR PLAKAR_FORGE [CASE]\n");
		return 2;
	}
	if (argc == 4)
		select_case(argv[3]);
	const char *w = argv[1];
	char repo_uri[2048], outside[2048], target[2048], src[2048], path[4096], cmd[8192];
	char before[8192], after[8192], buf[256];
	snprintf(repo_uri, sizeof repo_uri, "%s/repo", w);
	snprintf(outside, sizeof outside, "%s/outside", w);
	snprintf(src, sizeof src, "%s/src", w);
	mkdir(w, 0700);
	mkdir(outside, 0755);
	mkdir(src, 0700);
	snprintf(path, sizeof path, "%s/existing", outside);
	write_file(path, "outside\n");
	listing(outside, before, sizeof before);
	/* What the cases share: each builds on the ones before it. */
	plakar_repository *repo = NULL;
	plakar_snapshot *snap = NULL;
	plakar_open_options oo = PLAKAR_OPEN_OPTIONS_INIT;
	oo.passphrase = pass;
	oo.no_cache = 1;
	plakar_pull_options pl = PLAKAR_PULL_OPTIONS_INIT;

	CASE("forged")
	{
		plakar_create_options copts = PLAKAR_CREATE_OPTIONS_INIT;
		copts.passphrase = pass;
		copts.kdf_log2_n = 10;
		CHECK(plakar_repository_create(&repo, repo_uri, &copts) == PLAKAR_OK);
		plakar_repository_free(repo);
		repo = NULL;
		const char *scenarios[] = {"dup-dir-first", "dup-link-first", "dup-dir-first-large", "dup-link-first-large",
		                           "split-dup"};
		for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++) {
			char id[64] = {0};
			snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' %s '%s'", argv[2], repo_uri, pass, scenarios[i], outside);
			FILE *p = popen(cmd, "r");
			CHECK(p != NULL);
			if (!p)
				continue;
			CHECK(fgets(id, sizeof id, p) != NULL);
			CHECK(pclose(p) == 0);
			id[strcspn(id, "\n")] = 0;

			CHECK(plakar_repository_open(&repo, repo_uri, &oo) == PLAKAR_OK);
			plakar_snapshot *forged = NULL;
			CHECK(plakar_snapshot_open(&forged, repo, id) == PLAKAR_OK);
			snprintf(target, sizeof target, "%s/target-%zu", w, i);
			plakar_pull_options fp = PLAKAR_PULL_OPTIONS_INIT;
			fp.to = target;
			CHECK(plakar_snapshot_pull(forged, "/", &fp) == PLAKAR_ECORRUPT);
			CHECK(strstr(plakar_error_last(), "unsorted or duplicate names") != NULL);
			CHECK(plakar_snapshot_pull(forged, "/d", &fp) == PLAKAR_ECORRUPT);
			listing(outside, after, sizeof after);
			CHECK(strcmp(before, after) == 0);
			plakar_snapshot_free(forged);
			plakar_repository_free(repo);
			repo = NULL;
		}
	}

	CASE("planted_link")
	{
		/* A real snapshot of src: a/f, and a link planted in the target where a goes. */
		snprintf(path, sizeof path, "%s/a", src);
		mkdir(path, 0755);
		snprintf(path, sizeof path, "%s/a/f", src);
		write_file(path, "from the snapshot\n");
		CHECK(plakar_repository_open(&repo, repo_uri, &oo) == PLAKAR_OK);
		const char *paths[] = {src};
		CHECK(plakar_snapshot_push(&snap, repo, paths, 1, NULL) == PLAKAR_OK);

		snprintf(target, sizeof target, "%s/planted", w);
		mkdir(target, 0755);
		snprintf(path, sizeof path, "%s/a", target);
		CHECK(symlink(outside, path) == 0);
		pl.to = target;
		pl.rebase = 1;
		snprintf(path, sizeof path, "%s/a", src);
		CHECK(plakar_snapshot_pull(snap, path, &pl) == PLAKAR_OK);
		listing(outside, after, sizeof after);
		CHECK(strcmp(before, after) == 0);
		snprintf(path, sizeof path, "%s/a/f", target);
		read_into(path, buf, sizeof buf);
		CHECK(strcmp(buf, "from the snapshot\n") == 0);
	}

	CASE("dry_run")
	{
		/* Events, nothing written. */
		struct seen s = {0};
		snprintf(target, sizeof target, "%s/dry", w);
		pl.to = target;
		pl.dry_run = 1;
		pl.progress = on_event;
		pl.payload = &s;
		CHECK(plakar_snapshot_pull(snap, src, &pl) == PLAKAR_OK);
		CHECK(s.create == 3); /* src, src/a, src/a/f */
		struct stat st;
		CHECK(stat(target, &st) != 0);
		pl.dry_run = 0;
		pl.progress = NULL;
		pl.payload = NULL;
	}

	CASE("overwrite")
	{
		/* Overwrite policies, force, verify. */
		snprintf(target, sizeof target, "%s/dry", w);
		pl.to = target;
		pl.verify = 1;
		CHECK(plakar_snapshot_pull(snap, src, &pl) == PLAKAR_OK);
		snprintf(path, sizeof path, "%s/src/a/f", target);
		write_file(path, "local\n");
		pl.overwrite = PLAKAR_OVERWRITE_NEVER;
		CHECK(plakar_snapshot_pull(snap, src, &pl) == PLAKAR_OK);
		read_into(path, buf, sizeof buf);
		CHECK(strcmp(buf, "local\n") == 0);
		pl.overwrite = PLAKAR_OVERWRITE_IF_CHANGED;
		CHECK(plakar_snapshot_pull(snap, src, &pl) == PLAKAR_OK);
		read_into(path, buf, sizeof buf);
		CHECK(strcmp(buf, "from the snapshot\n") == 0);
		/* a non-empty directory where the file goes: kept without force */
		CHECK(unlink(path) == 0);
		CHECK(mkdir(path, 0755) == 0);
		char inner[8192];
		snprintf(inner, sizeof inner, "%s/precious", path);
		write_file(inner, "keep\n");
		pl.overwrite = PLAKAR_OVERWRITE_ALWAYS;
		CHECK(plakar_snapshot_pull(snap, src, &pl) == PLAKAR_EPARTIAL);
		CHECK(access(inner, F_OK) == 0);
		pl.force = 1;
		CHECK(plakar_snapshot_pull(snap, src, &pl) == PLAKAR_OK);
		read_into(path, buf, sizeof buf);
		CHECK(strcmp(buf, "from the snapshot\n") == 0);
		pl.overwrite = 42;
		CHECK(plakar_snapshot_pull(snap, src, &pl) == PLAKAR_EINVALID);
	}

	CASE("options_version")
	{
		/* An unknown version of the options is refused; the _init function gives the defaults. */
		plakar_pull_options v2;
		plakar_pull_options_init(&v2);
		snprintf(target, sizeof target, "%s/versioned", w);
		v2.to = target;
		CHECK(v2.version == PLAKAR_PULL_OPTIONS_VERSION && v2.overwrite == PLAKAR_OVERWRITE_ALWAYS);
		CHECK(plakar_snapshot_pull(snap, src, &v2) == PLAKAR_OK);
		v2.version = 2;
		CHECK(plakar_snapshot_pull(snap, src, &v2) == PLAKAR_EINVALID);
	}

	CASE("unreadable_header")
	{
		/* A garbage snapshot header: listed as unreadable, the others still listed. */
		snprintf(path, sizeof path, "%s/snapshots/11111111-2222-4333-8444-555555555555", repo_uri);
		write_file(path, "28 bytes of nothing at all..");
		plakar_snapshot_list *list = NULL;
		CHECK(plakar_snapshot_list_new(&list, repo) == PLAKAR_OK);
		CHECK(plakar_snapshot_list_count(list) >= 1);
		CHECK(plakar_snapshot_list_unreadable_count(list) == 1);
		CHECK(plakar_snapshot_list_unreadable(list, 0) != NULL &&
		      strstr(plakar_snapshot_list_unreadable(list, 0), "11111111-2222-4333-8444-555555555555") != NULL);
		CHECK(plakar_snapshot_list_unreadable(list, 1) == NULL);
		plakar_snapshot_list_free(list);
	}

	plakar_snapshot_free(snap);
	plakar_repository_free(repo);
	return finish_cases("capi_restore");
}
