/*
 * The names in the executor's computed checks lifted out as parameters
 * (sql_lift_helper_args): only plain string literals given to a
 * taskslaps text helper call, each as $k::pg_catalog.text in the text's order; anything
 * the server could read otherwise (a quote, a backslash, a continued
 * string) leaves the text whole. Two steps of one op give one text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec/exec_int.h"
#include "plan/plan.h"
#include "sql/sql.h"
#include "util/alloc.h"

/* Lifts sql from first; the text must be want and the values vals (NULL-terminated). */
static void
lift_ok(const char *sql, int first, const char *want, const char *const *vals)
{
	char *out, **v;
	int n = sql_lift_helper_args(sql, first, &out, &v), k = 0;

	while (vals[k])
		k++;
	if (n != k)
		fail_msg("%s: %d values lifted, expected %d", sql, n, k);
	assert_string_equal(out, want);
	for (int i = 0; i < n; i++)
		assert_string_equal(v[i], vals[i]);
	free(out);
	sql_lift_free(v, n);
}

/* Nothing may be lifted from sql: 0, both outputs NULL. */
static void
lift_none(const char *sql)
{
	char *out = (char *)1, **v = (char **)1;

	if (sql_lift_helper_args(sql, 1, &out, &v) != 0)
		fail_msg("%s: lifted", sql);
	assert_null(out);
	assert_null(v);
}

static void
test_sql_lift__computed_checks(void **state)
{
	(void)state;
	lift_ok(
	    "SELECT CASE WHEN (taskslaps.table_exists('t001')\n)::boolean AND (NOT "
	    "taskslaps.column_exists('t001', 'c')\n)::boolean THEN true ELSE ('x ' || "
	    "pg_catalog.pg_backend_pid())::boolean END",
	    1,
	    "SELECT CASE WHEN (taskslaps.table_exists($1::pg_catalog.text)\n)::boolean AND (NOT "
	    "taskslaps.column_exists($2::pg_catalog.text, $3::pg_catalog.text)\n)::boolean THEN true ELSE ('x ' || "
	    "pg_catalog.pg_backend_pid())::boolean END",
	    (const char *const[]){ "t001", "t001", "c", NULL });
	/* a qualified name, a boolean argument left alone, numbering from first */
	lift_ok(
	    "SELECT (taskslaps.constraint_is('s.orders', 'orders_fk', true)\n)::boolean", 4,
	    "SELECT (taskslaps.constraint_is($4::pg_catalog.text, $5::pg_catalog.text, true)\n)::boolean",
	    (const char *const[]){ "s.orders", "orders_fk", NULL });
}

static void
test_sql_lift__left_whole(void **state)
{
	(void)state;
	/* not a helper's argument */
	lift_none("SELECT ('x' = 'y')::boolean");
	lift_none("SELECT (public.table_exists('t')\n)::boolean");
	/* a taskslaps function that is not a text helper, a named argument */
	lift_none("SELECT (taskslaps.ensure_target_reader('t') IS NOT NULL\n)::boolean");
	lift_none("SELECT (taskslaps.table_exists(name => 't')\n)::boolean");
	lift_none("SELECT (taskslaps.table_exists(lower('T'))\n)::boolean");
	/* what another standard_conforming_strings could read otherwise */
	lift_none("SELECT (taskslaps.table_exists('it''s')\n)::boolean");
	lift_none("SELECT (taskslaps.table_exists(E'a\\\\b')\n)::boolean");
	lift_none("SELECT (taskslaps.table_exists('a'\n'b')\n)::boolean");
	lift_none("SELECT (taskslaps.table_exists($$t$$)\n)::boolean");
	/* not one statement that parses */
	{
		char *out, **v;
		assert_int_equal(sql_lift_helper_args("SELECT (", 1, &out, &v), -1);
		assert_int_equal(sql_lift_helper_args("SELECT 1; SELECT 2", 1, &out, &v), -1);
	}
}

/* Two add_column steps' checks, as the executor sends them, are one text. */
static void
test_sql_lift__one_text_per_op(void **state)
{
	const char *a[] = { "taskslaps.table_exists('t001')",
			    "NOT taskslaps.column_exists('t001', 'c')" };
	const char *b[] = { "taskslaps.table_exists('orders')",
			    "NOT taskslaps.column_exists('orders', 'note')" };
	struct plan_strv ca = { .v = (char **)a, .n = 2 }, cb = { .v = (char **)b, .n = 2 };
	char *sa = exec_checks_guard_sql(&ca, 2), *sb = exec_checks_guard_sql(&cb, 2), **va, **vb;
	int na = exec_checks_lift(&sa, &va), nb = exec_checks_lift(&sb, &vb);

	(void)state;
	assert_int_equal(na, 3);
	assert_int_equal(nb, 3);
	assert_string_equal(sa, sb);
	assert_true(sql_is_checks_guard(sa, 2, NULL));
	assert_string_equal(vb[0], "orders");
	assert_string_equal(vb[2], "note");
	free(sa);
	free(sb);
	sql_lift_free(va, na);
	sql_lift_free(vb, nb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sql_lift__computed_checks),
		cmocka_unit_test(test_sql_lift__left_whole),
		cmocka_unit_test(test_sql_lift__one_text_per_op),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
