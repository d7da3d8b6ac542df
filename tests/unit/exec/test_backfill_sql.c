/*
 * A backfill batch as one statement (exec_backfill_batch_sql): its exact
 * text for a one-column key from the start of the range, the parameters
 * of a composite key after a checkpoint, the author's fragments kept in
 * their places, and the statements the read-back refuses.
 */
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

#include "exec/exec_int.h"
#include "sql/sql.h"

static const char *const one_col[] = { "\"id\"" };
static const char *const one_type[] = { "bigint" };
static const char *const two_cols[] = { "\"a\"", "\"b\"" };
static const char *const two_types[] = { "integer", "text" };

static void
test_backfill_sql__one_key_from_the_start(void **state)
{
	struct exec_batch_shape bs = { .table = "t",
				       .qtable = "\"t\"",
				       .qcols = one_col,
				       .types = one_type,
				       .nk = 1,
				       .set = "c = id % 97" };
	struct sql_msg m;
	char *sql;

	(void)state;
	sql = exec_backfill_batch_sql(&bs, true, &m);
	assert_non_null(sql);
	assert_string_equal(
	    sql, "WITH taskslaps_batch_hi AS (SELECT \"id\" FROM \"t\" WHERE (\"id\") <= "
		 "($1::bigint) ORDER BY \"id\" LIMIT 1 OFFSET $2::bigint - 1), "
		 "taskslaps_batch_keys AS (SELECT \"id\" FROM \"t\" WHERE (\"id\") <= "
		 "($1::bigint) ORDER BY \"id\" LIMIT $2::bigint), taskslaps_batch_update AS "
		 "(UPDATE \"t\" SET c = id % 97 WHERE (\"id\") <= (SELECT COALESCE((SELECT "
		 "\"id\" FROM taskslaps_batch_hi), $1::bigint)) RETURNING 1) SELECT (SELECT "
		 "pg_catalog.json_build_array(\"id\"::text)::text FROM taskslaps_batch_hi), "
		 "CASE WHEN EXISTS (SELECT 1 FROM taskslaps_batch_hi) THEN $2::bigint ELSE "
		 "(SELECT pg_catalog.count(*) FROM taskslaps_batch_keys) END, (SELECT "
		 "pg_catalog.count(*) FROM taskslaps_batch_update)");
	free(sql);
}

static void
test_backfill_sql__composite_key_after_a_checkpoint(void **state)
{
	struct exec_batch_shape bs = { .table = "app.t",
				       .qtable = "\"app\".\"t\"",
				       .qcols = two_cols,
				       .types = two_types,
				       .nk = 2,
				       .set = "v = a * 10",
				       .where = "a < 200 OR a > 900" };
	struct sql_msg m;
	char *sql;

	(void)state;
	sql = exec_backfill_batch_sql(&bs, false, &m);
	assert_non_null(sql);
	/* the batch's last key: after the checkpoint ($1, $2), up to the upper key ($3, $4) */
	assert_non_null(strstr(sql, "(SELECT \"a\", \"b\" FROM \"app\".\"t\" WHERE (\"a\", "
				    "\"b\") > ($1::integer, $2::text) AND (\"a\", \"b\") <= "
				    "($3::integer, $4::text) ORDER BY \"a\", \"b\" LIMIT 1 OFFSET "
				    "$5::bigint - 1)"));
	/* the keys left, $5 of them at most */
	assert_non_null(strstr(sql, "ORDER BY \"a\", \"b\" LIMIT $5::bigint)"));
	/* the author's condition in parentheses, then the batch's range, to the upper key without
	 * hi */
	assert_non_null(strstr(
	    sql, "UPDATE \"app\".\"t\" SET v = a * 10 WHERE (a < 200 OR a > 900) AND (\"a\", "
		 "\"b\") > ($1::integer, $2::text) AND (\"a\", \"b\") <= (SELECT COALESCE((SELECT "
		 "\"a\" FROM taskslaps_batch_hi), $3::integer), COALESCE((SELECT \"b\" FROM "
		 "taskslaps_batch_hi), $4::text)) RETURNING 1"));
	assert_non_null(strstr(sql, "THEN $5::bigint ELSE"));
	assert_non_null(strstr(sql, "pg_catalog.json_build_array(\"a\"::text, \"b\"::text)"));
	free(sql);
}

static void
test_backfill_sql__a_comment_in_a_fragment_ends_its_line(void **state)
{
	struct exec_batch_shape bs = { .table = "t",
				       .qtable = "\"t\"",
				       .qcols = one_col,
				       .types = one_type,
				       .nk = 1,
				       .set = "c = 1 -- one\n, d = 2",
				       .where = "c IS NULL -- not yet" };
	struct sql_msg m;
	char *sql;

	(void)state;
	sql = exec_backfill_batch_sql(&bs, false, &m);
	assert_non_null(sql);
	/* the comment does not swallow the range that follows it */
	assert_non_null(strstr(sql, "(c IS NULL -- not yet\n) AND (\"id\") > ($1::bigint)"));
	assert_non_null(strstr(sql, "RETURNING 1)"));
	free(sql);
}

static void
test_backfill_sql__the_statements_own_names_are_refused(void **state)
{
	static const char *const wheres[] = {
		"id IN (SELECT id FROM taskslaps_batch_keys)",
		"EXISTS (SELECT 1 FROM taskslaps_batch_update)",
	};
	struct sql_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(wheres) / sizeof(wheres[0]); i++) {
		struct exec_batch_shape bs = { .table = "t",
					       .qtable = "\"t\"",
					       .qcols = one_col,
					       .types = one_type,
					       .nk = 1,
					       .set = "c = 1",
					       .where = wheres[i] };
		assert_null(exec_backfill_batch_sql(&bs, true, &m));
		assert_non_null(strstr(m.text, "taskslaps_batch_"));
	}
	/* in the SET list as well */
	{
		struct exec_batch_shape bs = { .table = "t",
					       .qtable = "\"t\"",
					       .qcols = one_col,
					       .types = one_type,
					       .nk = 1,
					       .set =
						   "c = (SELECT max(id) FROM taskslaps_batch_hi)" };
		assert_null(exec_backfill_batch_sql(&bs, false, &m));
	}
	/* a table of that name in another schema is the author's */
	{
		struct exec_batch_shape bs = {
			.table = "t",
			.qtable = "\"t\"",
			.qcols = one_col,
			.types = one_type,
			.nk = 1,
			.set = "c = 1",
			.where = "id IN (SELECT id FROM app.taskslaps_batch_keys)"
		};
		char *sql = exec_backfill_batch_sql(&bs, false, &m);
		assert_non_null(sql);
		free(sql);
	}
}

static void
test_backfill_sql__fragments_that_leave_their_place_are_refused(void **state)
{
	static const char *const sets[] = {
		/* ends the UPDATE and adds a WITH query of its own */
		"c = 1 WHERE true RETURNING 1), x AS (DELETE FROM t RETURNING 1) SELECT 1 --",
		"c = 1; DELETE FROM t",
		"c = 1 FROM u",
	};
	static const char *const wheres[] = {
		"true) RETURNING 1), x AS (DELETE FROM t RETURNING 1) SELECT (1",
		"true; DELETE FROM t",
	};
	struct sql_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		struct exec_batch_shape bs = { .table = "t",
					       .qtable = "\"t\"",
					       .qcols = one_col,
					       .types = one_type,
					       .nk = 1,
					       .set = sets[i] };
		assert_null(exec_backfill_batch_sql(&bs, false, &m));
		assert_true(m.text[0] != '\0');
	}
	for (size_t i = 0; i < sizeof(wheres) / sizeof(wheres[0]); i++) {
		struct exec_batch_shape bs = { .table = "t",
					       .qtable = "\"t\"",
					       .qcols = one_col,
					       .types = one_type,
					       .nk = 1,
					       .set = "c = 1",
					       .where = wheres[i] };
		assert_null(exec_backfill_batch_sql(&bs, true, &m));
		assert_true(m.text[0] != '\0');
	}
	/* the table the statement names must be the step's */
	{
		struct exec_batch_shape bs = { .table = "u",
					       .qtable = "\"t\"",
					       .qcols = one_col,
					       .types = one_type,
					       .nk = 1,
					       .set = "c = 1" };
		assert_null(exec_backfill_batch_sql(&bs, true, &m));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backfill_sql__one_key_from_the_start),
		cmocka_unit_test(test_backfill_sql__composite_key_after_a_checkpoint),
		cmocka_unit_test(test_backfill_sql__a_comment_in_a_fragment_ends_its_line),
		cmocka_unit_test(test_backfill_sql__the_statements_own_names_are_refused),
		cmocka_unit_test(test_backfill_sql__fragments_that_leave_their_place_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
