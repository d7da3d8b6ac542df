/*
 * A backfill's UPDATE taken apart (sql_split_update): the SET list and the
 * WHERE condition are cut at the scanner's SET and WHERE tokens, which must
 * be the clauses and not names that happen to be keywords (after a '.', as
 * in s.set or x.where, a keyword is a name). The executor rebuilds its
 * batches from the parts: each must read back as one UPDATE with a WHERE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sql/sql.h"
#include "util/alloc.h"

/* Splits sql, checks its parts, and that a batch rebuilt from them reads back. */
static void
split_ok(const char *sql, const char *table, const char *set, const char *where)
{
	struct arena *a = arena_new();
	struct sql_msg m;
	char *t, *s, *w, *batch;

	if (!sql_split_update(a, sql, &t, &s, &w, &m))
		fail_msg("%s: refused: %s", sql, m.text);
	assert_string_equal(t, table);
	assert_string_equal(s, set);
	if (where)
		assert_string_equal(w, where);
	else
		assert_null(w);
	batch =
	    arena_printf(a, "UPDATE %s SET %s WHERE (%s) AND id <= 1", table, s, w ? w : "true");
	if (!sql_is_batch_update(batch, table, &m))
		fail_msg("%s: %s", batch, m.text);
	arena_free(a);
}

static void
test_sql_split__keyword_after_a_dot_is_a_name(void **state)
{
	(void)state;
	/* a fuzz finding: "x.WHERE" was cut as a WHERE clause, the batch had none */
	split_ok("UPDATE t SET a = x.where - b", "t", "a = x.where - b", NULL);
	split_ok("UPDATE t SET a = r.where WHERE a IS NULL", "t", "a = r.where", "a IS NULL");
	split_ok("UPDATE t SET a = r. /* c */ where WHERE a IS NULL", "t", "a = r. /* c */ where",
		 "a IS NULL");
	/* a table named set, a column named set, set as a value */
	split_ok("UPDATE s.set SET a = 1 WHERE b", "s.set", "a = 1", "b");
	split_ok("UPDATE set SET set = set WHERE b", "set", "set = set", "b");
	split_ok("UPDATE SEt SET\r\r\f\rd=t WHERE  V2", "set", "d=t", "V2");
}

static void
test_sql_split__fuzz_regression(void **state)
{
	/* tests/fuzz/regressions/sql/split-*, without their first byte */
	static const char in[] = "UPDATE \x8e  SET a =\xf2\xd2.WHERE\t \t\t  \t-au";

	(void)state;
	split_ok(in, "\x8e", "a =\xf2\xd2.WHERE\t \t\t  \t-au", NULL);
}

static void
test_sql_split__clauses_still_found(void **state)
{
	(void)state;
	split_ok("UPDATE t SET a = (SELECT 1 WHERE true) WHERE b > 0;", "t",
		 "a = (SELECT 1 WHERE true)", "b > 0");
	split_ok("UPDATE public.t SET a = 1, b = 2", "public.t", "a = 1, b = 2", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sql_split__keyword_after_a_dot_is_a_name),
		cmocka_unit_test(test_sql_split__fuzz_regression),
		cmocka_unit_test(test_sql_split__clauses_still_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
