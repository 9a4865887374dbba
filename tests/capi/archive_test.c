/*
 * The archive functions of the C ABI from plain C (C11): format names, archives through a
 * write callback and into a file, progress, cancellation by either callback, and errors.
 * One named case each (check.h), one ctest test each. Usage: archive_test WORKDIR [CASE]
 */
#include <plakar/plakar.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

/* The archive collected in memory by the write callback. */
struct sink {
	unsigned char *data;
	size_t len, cap;
	size_t calls;
	size_t fail_at; /* non-zero: return non-zero at that call */
};

struct progress {
	int files, directories;
	int cancel_at_file; /* non-zero: cancel at that file event */
};

/* The one payload of an archive call's callbacks. */
struct call {
	struct sink *s;
	struct progress *p; /* may be NULL */
};

static int on_write(const void *buf, size_t len, void *payload)
{
	struct sink *s = ((struct call *)payload)->s;
	s->calls++;
	if (s->fail_at && s->calls == s->fail_at)
		return 1;
	if (len == 0)
		return 1; /* the contract: never called with nothing */
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->data = realloc(s->data, s->cap);
		if (!s->data)
			exit(2);
	}
	memcpy(s->data + s->len, buf, len);
	s->len += len;
	return 0;
}

static void sink_reset(struct sink *s)
{
	free(s->data);
	memset(s, 0, sizeof *s);
}

static int contains(const struct sink *s, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= s->len; i++)
		if (memcmp(s->data + i, needle, n) == 0)
			return 1;
	return 0;
}

static int on_progress(const plakar_event *ev, void *payload)
{
	struct progress *p = ((struct call *)payload)->p;
	if (ev->version != PLAKAR_EVENT_VERSION || ev->path == NULL)
		return 1;
	if (ev->kind == PLAKAR_EVENT_FILE)
		p->files++;
	if (ev->kind == PLAKAR_EVENT_DIRECTORY)
		p->directories++;
	return p->cancel_at_file && p->files >= p->cancel_at_file;
}

/* Files in dir whose name contains part. */
static int count_names(const char *dir, const char *part)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, part))
			n++;
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: archive_test WORKDIR [CASE]\n");
		return 2;
	}
	if (argc == 3)
		select_case(argv[2]);
	char src[2048], sub[2100], repo_uri[2048], out[2048], path[4096], dest[4096];
	snprintf(src, sizeof src, "%s/src", argv[1]);
	snprintf(sub, sizeof sub, "%s/sub", src);
	snprintf(repo_uri, sizeof repo_uri, "%s/repo", argv[1]);
	snprintf(out, sizeof out, "%s/out", argv[1]);
	mkdir(argv[1], 0700);
	mkdir(src, 0700);
	mkdir(sub, 0755);
	mkdir(out, 0700);
	snprintf(path, sizeof path, "%s/a.txt", src);
	write_file(path, "alpha alpha alpha\n");
	snprintf(path, sizeof path, "%s/b.txt", sub);
	write_file(path, "bravo bravo bravo\n");

	/* What several cases share. */
	plakar_repository *repo = NULL;
	const char *paths[] = {src};
	plakar_snapshot *snap = NULL;
	struct sink s = {0};
	struct progress p = {0};
	struct call call = {&s, &p};
	plakar_archive_options aopts = PLAKAR_ARCHIVE_OPTIONS_INIT;
	plakar_archive_options wopts = PLAKAR_ARCHIVE_OPTIONS_INIT; /* write only */

	CASE("formats") {
		/* Format names. */
		int format = 0;
		CHECK(plakar_archive_format_from_name(&format, "tar") == PLAKAR_OK && format == PLAKAR_ARCHIVE_TAR);
		CHECK(plakar_archive_format_from_name(&format, "tgz") == PLAKAR_OK && format == PLAKAR_ARCHIVE_TAR_GZ);
		CHECK(plakar_archive_format_from_name(&format, "tar.zst") == PLAKAR_OK && format == PLAKAR_ARCHIVE_TAR_ZSTD);
		CHECK(plakar_archive_format_from_name(&format, "zip") == PLAKAR_OK && format == PLAKAR_ARCHIVE_ZIP);
		CHECK(plakar_archive_format_from_name(&format, "rar") == PLAKAR_EINVALID);
		CHECK(strstr(plakar_error_last(), "rar") != NULL);
		CHECK(plakar_archive_format_from_name(NULL, "tar") == PLAKAR_EINVALID);
		CHECK(plakar_archive_format_from_filename(&format, "/x/y.tar.gz") == PLAKAR_OK && format == PLAKAR_ARCHIVE_TAR_GZ);
		CHECK(plakar_archive_format_from_filename(&format, "y.ZIP") == PLAKAR_OK && format == PLAKAR_ARCHIVE_ZIP);
		format = -1;
		CHECK(plakar_archive_format_from_filename(&format, "y.bin") == PLAKAR_ENOTFOUND);
		CHECK(format == PLAKAR_ARCHIVE_TAR);
	}

	CASE("snapshot") {
		/* A repository with one snapshot of src. */
		plakar_create_options copts = PLAKAR_CREATE_OPTIONS_INIT;
		copts.passphrase = "correct horse";
		copts.kdf_log2_n = 10;
		CHECK(plakar_repository_create(&repo, repo_uri, &copts) == PLAKAR_OK);
		if (!repo)
			return 1;
		CHECK(plakar_snapshot_push(&snap, repo, paths, 1, NULL) == PLAKAR_OK);
		if (!snap)
			return 1;
	}

	CASE("callback") {
		/* Through the callback: a pax tar of the subtree, entries named from "sub/". */
		aopts.write = on_write;
		aopts.progress = on_progress;
		aopts.payload = &call;
		/* Only write and progress: without write, nothing to write to. */
		plakar_archive_options_init(&wopts);
		CHECK(plakar_snapshot_archive(snap, sub, PLAKAR_ARCHIVE_TAR, &wopts) == PLAKAR_EINVALID);
		CHECK(plakar_snapshot_archive(snap, sub, PLAKAR_ARCHIVE_TAR, NULL) == PLAKAR_EINVALID);
		wopts.write = on_write;
		wopts.payload = &call;
		CHECK(plakar_snapshot_archive(snap, sub, PLAKAR_ARCHIVE_TAR, &aopts) == PLAKAR_OK);
		CHECK(strcmp(plakar_error_last(), "") == 0);
		CHECK(s.len > 0 && s.len % 10240 == 0); /* tar records */
		CHECK(s.len >= 512 && memcmp(s.data + 257, "ustar", 5) == 0);
		CHECK(contains(&s, "sub/b.txt"));
		CHECK(contains(&s, "bravo bravo bravo\n"));
		CHECK(!contains(&s, "alpha alpha alpha\n"));
		CHECK(p.files == 1 && p.directories == 1);
		sink_reset(&s);
	}

	CASE("compressed") {
		/* The whole snapshot (NULL path), each compressed format, by its magic number. */
		CHECK(plakar_snapshot_archive(snap, NULL, PLAKAR_ARCHIVE_TAR_GZ, &wopts) == PLAKAR_OK);
		CHECK(s.len > 2 && s.data[0] == 0x1f && s.data[1] == 0x8b);
		sink_reset(&s);
		CHECK(plakar_snapshot_archive(snap, "/", PLAKAR_ARCHIVE_TAR_ZSTD, &wopts) == PLAKAR_OK);
		CHECK(s.len > 4 && memcmp(s.data, "\x28\xb5\x2f\xfd", 4) == 0);
		sink_reset(&s);
		CHECK(plakar_snapshot_archive(snap, src, PLAKAR_ARCHIVE_ZIP, &wopts) == PLAKAR_OK);
		CHECK(s.len > 4 && memcmp(s.data, "PK\x03\x04", 4) == 0);
		CHECK(contains(&s, "src/sub/b.txt"));
		sink_reset(&s);
	}

	CASE("errors") {
		/* Errors: bad arguments, a path not in the snapshot, a callback that stops. */
		CHECK(plakar_snapshot_archive(NULL, "/", PLAKAR_ARCHIVE_TAR, &wopts) == PLAKAR_EINVALID);
		CHECK(plakar_snapshot_archive(snap, "/", 42, &wopts) == PLAKAR_EINVALID);
		plakar_archive_options bad = PLAKAR_ARCHIVE_OPTIONS_INIT;
		bad.version = 99;
		bad.write = on_write;
		bad.payload = &call;
		CHECK(plakar_snapshot_archive(snap, "/", PLAKAR_ARCHIVE_TAR, &bad) == PLAKAR_EINVALID);
		CHECK(plakar_snapshot_archive(snap, "/no/such/path", PLAKAR_ARCHIVE_TAR, &wopts) == PLAKAR_ENOTFOUND);
		CHECK(s.calls == 0); /* nothing written before the lookup */
		sink_reset(&s);
		s.fail_at = 1; /* the archive of src is one 10240-byte record: a single call */
		CHECK(plakar_snapshot_archive(snap, src, PLAKAR_ARCHIVE_TAR, &wopts) == PLAKAR_ECANCELED);
		CHECK(plakar_error_last_code() == PLAKAR_ECANCELED);
		CHECK(s.calls == 1);
		sink_reset(&s);
		struct progress stop = {0, 0, 1};
		call.p = &stop;
		CHECK(plakar_snapshot_archive(snap, src, PLAKAR_ARCHIVE_TAR, &aopts) == PLAKAR_ECANCELED);
		call.p = &p;
		sink_reset(&s);
	}

	CASE("file") {
		/* Into a file: complete, replaced atomically, nothing left behind on failure. */
		snprintf(dest, sizeof dest, "%s/whole.tar.zst", out);
		CHECK(plakar_snapshot_archive_file(snap, NULL, PLAKAR_ARCHIVE_TAR_ZSTD, dest, NULL) == PLAKAR_OK);
		struct stat st;
		CHECK(stat(dest, &st) == 0 && st.st_size > 0);
		off_t size = st.st_size;
		CHECK(plakar_snapshot_archive_file(snap, src, PLAKAR_ARCHIVE_TAR_ZSTD, dest, &aopts) == PLAKAR_EINVALID); /* write set */
		struct progress stop2 = {0, 0, 1};
		call.p = &stop2;
		aopts.write = NULL;
		CHECK(plakar_snapshot_archive_file(snap, src, PLAKAR_ARCHIVE_TAR_ZSTD, dest, &aopts) == PLAKAR_ECANCELED);
		CHECK(stat(dest, &st) == 0 && st.st_size == size); /* the previous archive is untouched */
		CHECK(count_names(out, ".plakar-") == 0);
		CHECK(plakar_snapshot_archive_file(snap, "/nope", PLAKAR_ARCHIVE_ZIP, dest, NULL) == PLAKAR_ENOTFOUND);
		snprintf(path, sizeof path, "%s/missing/dir/x.tar", out);
		CHECK(plakar_snapshot_archive_file(snap, src, PLAKAR_ARCHIVE_TAR, path, NULL) == PLAKAR_ENOTFOUND);
		CHECK(access(path, F_OK) != 0);
		CHECK(plakar_snapshot_archive_file(snap, src, PLAKAR_ARCHIVE_TAR, out, NULL) == PLAKAR_EINVALID);
		CHECK(plakar_snapshot_archive_file(snap, src, PLAKAR_ARCHIVE_TAR, NULL, NULL) == PLAKAR_EINVALID);
		CHECK(count_names(out, ".plakar-") == 0);
		CHECK(count_names(out, "") == 3); /* ".", ".." and whole.tar.zst */

	}

	/* Whatever case the run stopped after. */
	plakar_snapshot_free(snap);
	plakar_repository_free(repo);
	return finish_cases("capi_archive");
}
