/*
 * Diagnostics: every problem found in an input, with where it is.
 * A parser reports all of a file's errors into one list rather than stopping
 * at the first, so an author fixes them in one pass.
 */
#ifndef TS_UTIL_DIAG_H
#define TS_UTIL_DIAG_H

#include <stddef.h>
#include <stdio.h>

/* A note is said and counted as neither (a finding silenced with a reason). */
enum diag_level { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE };

struct diag {
	enum diag_level level;
	char *file;    /* owned; may be NULL */
	unsigned line; /* 1-based; 0 when the problem is the whole file */
	unsigned col;  /* 1-based */
	char *msg;     /* owned */
};

struct diags {
	struct diag *v;
	size_t n, cap;
	size_t nerrors, nwarnings;
};

#define DIAGS_INIT                                                                                 \
	{                                                                                          \
		NULL, 0, 0, 0, 0                                                                   \
	}

void diags_add(struct diags *d, enum diag_level level, const char *file, unsigned line,
	       unsigned col, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Prints each as "file:line:col: error: msg" (GCC's format, which editors parse). */
void diags_print(const struct diags *d, FILE *out);
/* One diagnostic formatted like diags_print; caller frees. */
char *diag_format(const struct diag *dg);
void diags_clear(struct diags *d);

#endif
