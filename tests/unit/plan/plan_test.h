/*
 * Helpers shared by the planner's unit tests: parse a plan that must be
 * sound, or one that must fail with given diagnostics at given positions.
 * Header-only (static inline), so every test_<topic>.c stays one executable.
 */
#ifndef TS_TESTS_PLAN_TEST_H
#define TS_TESTS_PLAN_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* after setjmp.h, stdarg.h, stddef.h and stdint.h, which it needs */
#include <cmocka.h>

#include "plan/plan.h"

/* The head of a flat plan: the first step starts on line 4. */
#define PT_HEAD "title: t\nreason: r\nsteps:\n"

static inline void
pt_dump(const struct diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		char *s = diag_format(&d->v[i]);
		print_message("    %s\n", s);
		free(s);
	}
}

/* Parses text as file; it must be a sound plan with no diagnostic. Free with plan_free. */
static inline struct plan *
pt_parse_ok(const char *file, const char *text)
{
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;
	int rc = plan_parse(&p, file, text, strlen(text), &d);

	if (rc != 0 || d.n != 0) {
		print_message("%s: expected a sound plan, got rc %d and:\n", file, rc);
		pt_dump(&d);
	}
	diags_clear(&d);
	assert_int_equal(rc, 0);
	assert_non_null(p);
	return p;
}

/* One expected diagnostic: where, and a distinctive part of its message. */
struct pt_err {
	unsigned line, col;
	const char *want;
};

/*
 * Parses len bytes of buf as file: the parse must fail with exactly n errors
 * (no warnings), the i-th at errs[i].line:col with errs[i].want in its text.
 */
static inline void
pt_expect_errors_n(const char *file, const char *buf, size_t len, size_t n,
		   const struct pt_err *errs)
{
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;
	int rc = plan_parse(&p, file, buf, len, &d);
	bool good = rc == -1 && p == NULL && d.n == n && d.nerrors == n;

	for (size_t i = 0; good && i < n; i++) {
		good = d.v[i].level == DIAG_ERROR && d.v[i].file &&
		       strcmp(d.v[i].file, file) == 0 && d.v[i].line == errs[i].line &&
		       d.v[i].col == errs[i].col && strstr(d.v[i].msg, errs[i].want) != NULL;
	}
	if (!good) {
		print_message("%s: expected %zu error(s):\n", file, n);
		for (size_t i = 0; i < n; i++)
			print_message("    %u:%u: ...%s...\n", errs[i].line, errs[i].col,
				      errs[i].want);
		print_message("  got rc %d and %zu diagnostic(s):\n", rc, d.n);
		pt_dump(&d);
	}
	plan_free(p);
	diags_clear(&d);
	assert_true(good);
}

static inline void
pt_expect_error_n(const char *file, const char *buf, size_t len, unsigned line, unsigned col,
		  const char *want)
{
	struct pt_err e = { line, col, want };

	pt_expect_errors_n(file, buf, len, 1, &e);
}

/* Exactly one error, at line:col, whose message contains want. */
static inline void
pt_expect_error(const char *file, const char *text, unsigned line, unsigned col, const char *want)
{
	pt_expect_error_n(file, text, strlen(text), line, col, want);
}

/* The i-th step of wave w, which must exist. */
static inline struct plan_step *
pt_step(struct plan *p, enum plan_wave w, size_t i)
{
	assert_true(p->waves[w].present);
	assert_true(i < p->waves[w].nsteps);
	return &p->waves[w].steps[i];
}

/* v must hold exactly the strings of want (NULL-terminated), in order. */
static inline void
pt_assert_strv(const struct plan_strv *v, const char *const *want)
{
	size_t n = 0;
	bool good;

	while (want[n])
		n++;
	good = v->n == n;
	for (size_t i = 0; good && i < n; i++)
		good = strcmp(v->v[i], want[i]) == 0;
	if (!good) {
		print_message("expected %zu string(s):\n", n);
		for (size_t i = 0; i < n; i++)
			print_message("    [%s]\n", want[i]);
		print_message("  got %zu:\n", v->n);
		for (size_t i = 0; i < v->n; i++)
			print_message("    [%s]\n", v->v[i]);
	}
	assert_true(good);
}

#define PT_STRV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define PT_NONE ((const char *const[]){ NULL })

#endif
