/*
 * The guard the executor sends in a step's own round trip (one CASE over
 * the computed prechecks, raising when one is not true) is read back by
 * PostgreSQL's parser before it is sent (sql_is_checks_guard): the guard it
 * builds reads back as one CASE over exactly its checks, and a check that
 * escaped its parentheses does not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec/exec_int.h"
#include "sql/sql.h"

static bool
guard_reads_back(const char *const *checks, size_t n, size_t claimed)
{
	struct plan_strv v = { .v = (char **)checks, .n = n };
	char *sql = exec_checks_guard_sql(&v, n);
	struct sql_msg m;
	bool ok = sql_is_checks_guard(sql, claimed, &m);

	free(sql);
	return ok;
}

static void
test_exec_checks_guard__the_guard_reads_back(void **state)
{
	static const char *const one[] = { "NOT taskslaps.column_exists('acct', 'note')" };
	static const char *const three[] = {
		"taskslaps.table_exists('acct')",
		"NOT taskslaps.constraint_exists('acct', 'acct_bal_ck') -- a comment",
		"(SELECT count(*) FROM pg_class) > 0",
	};

	(void)state;
	assert_true(guard_reads_back(one, 1, 1));
	assert_true(guard_reads_back(three, 3, 3));
	/* the count is the executor's: a guard over fewer or more checks is refused */
	assert_false(guard_reads_back(three, 3, 2));
	assert_false(guard_reads_back(three, 2, 3));
}

static void
test_exec_checks_guard__an_escaped_check_is_refused(void **state)
{
	/* closes the cast, ends the CASE and adds a FROM: not the guard any more */
	static const char *const escaped[] = {
		"true\n)::boolean THEN true ELSE false END FROM pg_class WHERE (true",
	};
	/* an OR at the top joins the checks otherwise */
	static const char *const ored[] = { "true\n)::boolean OR (false", "true" };

	(void)state;
	assert_false(guard_reads_back(escaped, 1, 1));
	assert_false(guard_reads_back(ored, 2, 2));
	assert_false(sql_is_checks_guard("SELECT true", 1, NULL));
	assert_false(sql_is_checks_guard("SELECT CASE WHEN (true)::boolean THEN true ELSE false "
					 "END; SELECT 1",
					 1, NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec_checks_guard__the_guard_reads_back),
		cmocka_unit_test(test_exec_checks_guard__an_escaped_check_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
