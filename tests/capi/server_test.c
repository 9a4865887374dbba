/* The server part of the C ABI from a plain C program: tokens, a server run by a thread of
 * this program on 127.0.0.1, a repository created, pushed to and listed through plakar:// and
 * through plakar+tls:// (a certificate made here, pinned), and the errors a caller meets. */
#include <plakar/plakar.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"

static void *serve(void *arg)
{
	int *rc = malloc(sizeof *rc);
	*rc = plakar_server_run((plakar_server *)arg);
	return rc;
}

static void on_log(const char *line, void *payload)
{
	(void)line;
	(*(int *)payload)++;
}

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: server_test WORKDIR [CASE]\n");
		return 2;
	}
	if (argc == 3)
		select_case(argv[2]);
	char tokens[2048], store[2048], src[2048], path[4096];
	snprintf(tokens, sizeof tokens, "%s/tokens", argv[1]);
	snprintf(store, sizeof store, "%s/store", argv[1]);
	snprintf(src, sizeof src, "%s/src", argv[1]);
	mkdir(argv[1], 0700);
	mkdir(src, 0700);
	snprintf(path, sizeof path, "%s/a.txt", src);
	write_file(path, "served\n");
	/* What the cases share: each builds on the ones before it. */
	char *client = NULL, *reader = NULL, *pin = NULL, *addr = NULL;
	plakar_server *srv = NULL;
	plakar_server_options o = PLAKAR_SERVER_OPTIONS_INIT;
	plakar_create_options copts = PLAKAR_CREATE_OPTIONS_INIT;
	copts.passphrase = "pw";
	copts.kdf_log2_n = 10;
	plakar_open_options oo = PLAKAR_OPEN_OPTIONS_INIT;
	oo.passphrase = "pw";
	oo.no_cache = 1;
	const char *paths[] = {src};
	char uri[256];
	char store2[2048];
	snprintf(store2, sizeof store2, "%s/store2", argv[1]);
	plakar_repository *repo = NULL;
	plakar_snapshot_list *list = NULL;
	pthread_t t;
	void *ret = NULL;

	CASE("tokens")
	{
		char *line = NULL;
		CHECK(plakar_token_new(&line, &client, "c-test", "admin") == PLAKAR_EINVALID);
		CHECK(plakar_token_new(&line, &client, "bad name", "rw") == PLAKAR_EINVALID);
		CHECK(line == NULL && client == NULL);
		CHECK(plakar_token_new(&line, &client, "c-test", "rw") == PLAKAR_OK);
		CHECK(strncmp(line, "c-test rw ", 10) == 0);
		CHECK(strncmp(client, "c-test:", 7) == 0 && strlen(client) == 7 + 64);
		plakar_string_free(line);
		plakar_string_free(client);
		/* The tokens file, written by the library: created 0600, a name only once. */
		client = NULL;
		CHECK(plakar_token_add(&client, tokens, "c-test", "rw") == PLAKAR_OK);
		CHECK(client != NULL && strncmp(client, "c-test:", 7) == 0 && strlen(client) == 7 + 64);
		char *again = NULL;
		CHECK(plakar_token_add(&again, tokens, "c-test", "ro") == PLAKAR_EEXISTS && again == NULL);
		CHECK(plakar_token_add(&reader, tokens, "c-reader", "ro") == PLAKAR_OK);
		CHECK(plakar_token_add(&again, tokens, "x", "admin") == PLAKAR_EINVALID);
		struct stat ts;
		CHECK(stat(tokens, &ts) == 0 && (ts.st_mode & 0777) == 0600);
		chmod(tokens, 0640);
		CHECK(plakar_token_add(&again, tokens, "x", "rw") == PLAKAR_EINVALID); /* open to its group */
		chmod(tokens, 0600);
	}

	CASE("bad_options")
	{
		CHECK(plakar_server_new(&srv, store, NULL) == PLAKAR_EINVALID);
		CHECK(plakar_server_new(&srv, store, &o) == PLAKAR_EINVALID); /* no tokens file */
		o.tokens_file = tokens;
		chmod(tokens, 0644);
		CHECK(plakar_server_new(&srv, store, &o) == PLAKAR_EINVALID);
		CHECK(strstr(plakar_error_last(), "chmod 600") != NULL);
		chmod(tokens, 0600);
		o.listen = "no-port";
		CHECK(plakar_server_new(&srv, store, &o) == PLAKAR_EINVALID);
		CHECK(plakar_server_new(&srv, "plakar://127.0.0.1:1", &o) == PLAKAR_EINVALID);
		CHECK(srv == NULL);
		plakar_server_free(NULL);
		/* An unknown options version is refused. */
		plakar_server_options v2;
		plakar_server_options_init(&v2);
		v2.version = 2;
		v2.tokens_file = tokens;
		CHECK(plakar_server_new(&srv, store, &v2) == PLAKAR_EINVALID && srv == NULL);
	}

	CASE("serve")
	{
		/* A server on a free port, run by a thread. */
		int logged = 0;
		o.tokens_file = tokens;
		o.listen = "127.0.0.1:0";
		o.log = on_log;
		o.payload = &logged;
		CHECK(plakar_server_new(&srv, store, &o) == PLAKAR_OK);
		CHECK(plakar_server_address(&addr, srv) == PLAKAR_OK);
		CHECK(strncmp(addr, "127.0.0.1:", 10) == 0 && strcmp(addr, "127.0.0.1:0") != 0);
		char *nopin = NULL;
		CHECK(plakar_server_tls_pin(&nopin, srv) == PLAKAR_ENOTFOUND && nopin == NULL); /* no TLS */
		pthread_create(&t, NULL, serve, srv);

		snprintf(uri, sizeof uri, "plakar://%s", addr);
		/* The library reads no environment: a token there is not used. */
		setenv("PLAKAR_TOKEN", client, 1);
		CHECK(plakar_repository_create(&repo, uri, &copts) == PLAKAR_EAUTH && repo == NULL);
		unsetenv("PLAKAR_TOKEN");
		copts.token = client;
		CHECK(plakar_repository_create(&repo, uri, &copts) == PLAKAR_OK);
		CHECK(plakar_snapshot_push(NULL, repo, paths, 1, NULL) == PLAKAR_OK);
		CHECK(plakar_snapshot_list_new(&list, repo) == PLAKAR_OK);
		CHECK(plakar_snapshot_list_count(list) == 1);
		plakar_snapshot_list_free(list);

		/* Two handles with two tokens in one process: the read-only one reads, cannot write. */
		char tokfile[2048];
		snprintf(tokfile, sizeof tokfile, "%s/reader-token", argv[1]);
		FILE *tf = fopen(tokfile, "w");
		fprintf(tf, "%s\n", reader);
		fclose(tf);
		plakar_open_options ro = PLAKAR_OPEN_OPTIONS_INIT;
		ro.passphrase = "pw";
		ro.no_cache = 1;
		ro.token_file = tokfile;
		plakar_repository *rrepo = NULL;
		CHECK(plakar_repository_open(&rrepo, uri, &ro) == PLAKAR_OK);
		CHECK(plakar_snapshot_list_new(&list, rrepo) == PLAKAR_OK && plakar_snapshot_list_count(list) == 1);
		plakar_snapshot_list_free(list);
		CHECK(plakar_snapshot_push(NULL, rrepo, paths, 1, NULL) != PLAKAR_OK);
		CHECK(plakar_snapshot_push(NULL, repo, paths, 1, NULL) == PLAKAR_OK);
		plakar_repository_free(rrepo);
		ro.token_file = NULL;
		rrepo = NULL;
		CHECK(plakar_repository_open(&rrepo, uri, &ro) == PLAKAR_EAUTH && rrepo == NULL); /* none given */
		plakar_repository_free(repo);

		/* A wrong token: PLAKAR_EAUTH, and the server logged it. */
		char wrong[128];
		snprintf(wrong, sizeof wrong, "c-test:%064d", 0);
		oo.token = wrong;
		repo = NULL;
		CHECK(plakar_repository_open(&repo, uri, &oo) == PLAKAR_EAUTH);
		CHECK(strstr(plakar_error_last(), "authentication failed") != NULL);
		CHECK(repo == NULL);
		oo.token = NULL;

		CHECK(plakar_server_stop(srv) == PLAKAR_OK);
		pthread_join(t, &ret);
		CHECK(*(int *)ret == PLAKAR_OK);
		free(ret);
		CHECK(plakar_server_run(srv) == PLAKAR_EINVALID); /* once only */
		CHECK(logged >= 1);
		plakar_server_free(srv);
		srv = NULL;
		plakar_string_free(addr);
		addr = NULL;
	}

	CASE("tls")
	{
		/* A certificate, a server with it, a client pinning it. */
		char cert[2048], key[2048];
		snprintf(cert, sizeof cert, "%s/cert.pem", argv[1]);
		snprintf(key, sizeof key, "%s/key.pem", argv[1]);
		CHECK(plakar_tls_cert_new(&pin, cert, key, "bad name", 1) == PLAKAR_EINVALID);
		CHECK(plakar_tls_cert_new(&pin, cert, key, "127.0.0.1", 0) == PLAKAR_EINVALID);
		CHECK(pin == NULL);
		CHECK(plakar_tls_cert_new(&pin, cert, key, "127.0.0.1", 2) == PLAKAR_OK);
		CHECK(pin != NULL && strncmp(pin, "sha256:", 7) == 0 && strlen(pin) == 7 + 64);
		CHECK(plakar_tls_cert_new(NULL, cert, key, "127.0.0.1", 2) == PLAKAR_EEXISTS); /* never replaced */
		struct stat st;
		CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
		plakar_server_options to = PLAKAR_SERVER_OPTIONS_INIT;
		to.tokens_file = tokens;
		to.listen = "127.0.0.1:0";
		to.tls_cert_file = cert;
		CHECK(plakar_server_new(&srv, store2, &to) == PLAKAR_EINVALID); /* a certificate without its key */
		to.tls_key_file = key;
		CHECK(plakar_server_new(&srv, store2, &to) == PLAKAR_OK);
		char *spin = NULL;
		CHECK(plakar_server_tls_pin(&spin, srv) == PLAKAR_OK);
		CHECK(spin != NULL && pin != NULL && strcmp(spin, pin) == 0);
		plakar_string_free(spin);
		CHECK(plakar_server_address(&addr, srv) == PLAKAR_OK);
		pthread_create(&t, NULL, serve, srv);
		snprintf(uri, sizeof uri, "plakar+tls://%s?pin=%s", addr, pin);
		copts.token = client;
		repo = NULL;
		CHECK(plakar_repository_create(&repo, uri, &copts) == PLAKAR_OK);
		CHECK(plakar_snapshot_push(NULL, repo, paths, 1, NULL) == PLAKAR_OK);
		CHECK(plakar_snapshot_list_new(&list, repo) == PLAKAR_OK);
		CHECK(plakar_snapshot_list_count(list) == 1);
		plakar_snapshot_list_free(list);
		plakar_repository_free(repo);
		/* Another pin: PLAKAR_EAUTH before any token is proven. */
		snprintf(uri, sizeof uri, "plakar+tls://%s?pin=sha256:%064d", addr, 0);
		repo = NULL;
		oo.token = client;
		CHECK(plakar_repository_open(&repo, uri, &oo) == PLAKAR_EAUTH);
		CHECK(strstr(plakar_error_last(), "not the pinned") != NULL);
		oo.token = NULL;
		CHECK(plakar_server_stop(srv) == PLAKAR_OK);
		pthread_join(t, &ret);
		CHECK(*(int *)ret == PLAKAR_OK);
		free(ret);
		plakar_server_free(srv);
		srv = NULL;
	}

	CASE("served_store")
	{
		/* The store the server held is a repository like any other. */
		repo = NULL;
		CHECK(plakar_repository_open(&repo, store, &oo) == PLAKAR_OK);
		CHECK(plakar_snapshot_list_new(&list, repo) == PLAKAR_OK);
		CHECK(plakar_snapshot_list_count(list) == 2);
		plakar_snapshot_list_free(list);
		plakar_repository_free(repo);
	}

	plakar_string_free(client);
	plakar_string_free(reader);
	plakar_string_free(pin);
	plakar_string_free(addr);
	return finish_cases("server_test");
}
