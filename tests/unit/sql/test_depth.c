/*
 * How deep a tree may nest: the walks recurse once a level, so sql_parse
 * refuses a statement deeper than SQL_MAX_DEPTH levels (SELECT 1+1+...+1
 * nests a level a term) before any walk runs; a wide tree (a long IN list,
 * many columns) is no deeper for being long. The fragment checks, which the
 * planner runs on what an author writes, refuse it too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sql/sql.h"

/* "SELECT 1+1+...+1" of n terms, or with sep between them; free it. */
static char *
chain(const char *head, const char *sep, size_t n)
{
	size_t hl = strlen(head), sl = strlen(sep);
	char *s = malloc(hl + n * (sl + 1) + 1), *p = s;

	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < n; i++) {
		if (i) {
			memcpy(p, sep, sl);
			p += sl;
		}
		*p++ = '1';
	}
	*p = '\0';
	return s;
}

static void
test_sql_depth__a_chain_below_the_limit_parses(void **state)
{
	char *s = chain("SELECT ", "+", SQL_MAX_DEPTH - 100);
	struct sql_tree t;
	struct sql_msg m;

	(void)state;
	assert_true(strlen(s) >= SQL_DEPTH_CHECK_BYTES); /* it is measured */
	if (sql_parse(&t, s, &m) != 0)
		fail_msg("refused: %s", m.text);
	assert_true(sql_depth_within(sql_tree_one(&t, s, &m), SQL_MAX_DEPTH));
	assert_false(sql_depth_within(sql_tree_one(&t, s, &m), 100));
	sql_tree_free(&t);
	free(s);
}

static void
test_sql_depth__a_deeper_chain_is_refused(void **state)
{
	/* 300,000 terms: a walk by recursion overflowed an 8 MB stack at 200,000 */
	size_t sizes[] = { SQL_MAX_DEPTH + 10, 300000 };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		char *s = chain("SELECT ", "+", sizes[i]);
		struct sql_tree t;
		struct sql_msg m;

		assert_int_equal(sql_parse(&t, s, &m), -1);
		assert_non_null(strstr(m.text, "nests deeper than 10000 levels"));
		assert_int_equal(m.off, 0);
		assert_false(sql_check_expr(s + strlen("SELECT "), false, &m));
		assert_non_null(strstr(m.text, "nests deeper"));
		free(s);
	}
}

static void
test_sql_depth__a_wide_tree_is_not_deep(void **state)
{
	/* 20,000 values in an IN list, 20,000 AND-ed terms: long, not deep */
	char *in = chain("SELECT 1 WHERE 1 IN (", ", ", 20000);
	char *and = chain("SELECT 1 WHERE true AND ", " = 1 AND ", 20000);
	struct sql_tree t;
	struct sql_msg m;

	(void)state;
	in = realloc(in, strlen(in) + 2);
	strcat(in, ")");
	if (sql_parse(&t, in, &m) != 0)
		fail_msg("IN list refused: %s", m.text);
	sql_tree_free(&t);
	if (sql_parse(&t, and, &m) != 0)
		fail_msg("AND chain refused: %s", m.text);
	sql_tree_free(&t);
	free(in);
	free(and);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sql_depth__a_chain_below_the_limit_parses),
		cmocka_unit_test(test_sql_depth__a_deeper_chain_is_refused),
		cmocka_unit_test(test_sql_depth__a_wide_tree_is_not_deep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
