/* Shared by the plain-C ABI tests: a CHECK that counts failures and shows the library's last
 * error, and a helper that writes a small file. */
#ifndef PLAKAR_TESTS_CAPI_CHECK_H
#define PLAKAR_TESTS_CAPI_CHECK_H

#include <plakar/plakar.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Named cases. A program's main may be a sequence of CASE("name") { ... } blocks, each building
 * on the ones before it. `PROGRAM WORKDIR CASE` (select_case) runs the cases up to CASE and
 * judges CASE alone: ctest has one test per case, so a failure names itself. The cases before
 * it are its setup; a failure there fails it too, reported as a failure of its setup.
 * Without a selected case every case runs and is judged.
 */
static int failures;       /* in the selected case (or anywhere, when none is selected) */
static int setup_failures; /* in the cases before the selected one */
static const char *selected_case;
static const char *current_case = "";
static int case_reached;

static inline void select_case(const char *name) { selected_case = name; }

/* Enters case name; 0 once the selected case has run (the rest is skipped). */
static inline int begin_case(const char *name)
{
	if (selected_case && case_reached)
		return 0;
	current_case = name;
	if (selected_case && strcmp(name, selected_case) == 0)
		case_reached = 1;
	return 1;
}
#define CASE(name) for (int case_once_ = begin_case(name); case_once_; case_once_ = 0)

#define CHECK(cond)                                                                          \
	do {                                                                                     \
		if (!(cond)) {                                                                       \
			fprintf(stderr, "%s:%d: [%s] CHECK failed: %s (last error: %s)\n", __FILE__,     \
			        __LINE__, current_case, #cond, plakar_error_last());                     \
			if (selected_case && !case_reached)                                              \
				setup_failures++;                                                            \
			else                                                                             \
				failures++;                                                                  \
		}                                                                                    \
	} while (0)

/* main's return value: 0 when every judged check passed. */
static inline int finish_cases(const char *program)
{
	if (selected_case && !case_reached) {
		fprintf(stderr, "%s: no case named %s\n", program, selected_case);
		return 2;
	}
	if (setup_failures)
		fprintf(stderr, "%s: %d check(s) failed in the cases before %s, its setup\n", program, setup_failures,
		        selected_case);
	if (failures || setup_failures) {
		fprintf(stderr, "%s%s%s: %d check(s) failed\n", program, selected_case ? " " : "",
		        selected_case ? selected_case : "", failures);
		return 1;
	}
	printf("%s%s%s: all checks passed\n", program, selected_case ? " " : "", selected_case ? selected_case : "");
	return 0;
}

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
