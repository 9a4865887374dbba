/* Shared by the plain-C ABI tests: a CHECK that counts failures and shows the library's last
 * error, and a helper that writes a small file. */
#ifndef PLAKAR_TESTS_CAPI_CHECK_H
#define PLAKAR_TESTS_CAPI_CHECK_H

#include <plakar/plakar.h>

#include <stdio.h>
#include <stdlib.h>

static int failures;

#define CHECK(cond)                                                                 \
	do {                                                                            \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, \
			        __LINE__, #cond, plakar_error_last());                          \
			failures++;                                                             \
		}                                                                           \
	} while (0)

static void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(content, f);
	fclose(f);
}

#endif
