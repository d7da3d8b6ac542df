/*
 * A backfill batch as two statements (exec_backfill_batch_sql), its keys
 * and its UPDATE: their exact texts for a one-column key from the start of
 * the range, the parameters of a composite key after a checkpoint, the
 * author's fragments kept in their places, and the statements the
 * read-back refuses.
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

/* Both statements, or NULL for both (freeing neither is left) with m said. */
static char *
build(const struct exec_batch_shape *bs, bool from_start, char **upd, struct sql_msg *m)
{
	char *keys = NULL;

	*upd = NULL;
	m->text[0] = '\0';
	if (exec_backfill_batch_sql(bs, from_start, &keys, upd, m) < 0) {
		assert_null(keys);
		assert_null(*upd);
		assert_true(m->text[0] != '\0');
		return NULL;
	}
	assert_non_null(keys);
	assert_non_null(*upd);
	return keys;
}

static bool
refused(const struct exec_batch_shape *bs, bool from_start, struct sql_msg *m)
{
	char *upd, *keys = build(bs, from_start, &upd, m);
	bool no = keys == NULL;

	free(keys);
	free(upd);
	return no;
}

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
	char *upd, *keys;

	(void)state;
	keys = build(&bs, true, &upd, &m);
	assert_non_null(keys);
	/* today's key SELECTs, the last key made JSON and kept once */
	assert_string_equal(
	    keys, "WITH taskslaps_batch_hi AS (SELECT \"id\" FROM \"t\" WHERE (\"id\") <= "
		  "($1::bigint) ORDER BY \"id\" LIMIT 1 OFFSET $2::bigint - 1), "
		  "taskslaps_batch_keys AS (SELECT \"id\" FROM \"t\" WHERE (\"id\") <= "
		  "($1::bigint) ORDER BY \"id\" LIMIT $2::bigint), taskslaps_batch_set AS "
		  "MATERIALIZED (SELECT pg_catalog.set_config('taskslaps.batch_hi', "
		  "COALESCE((SELECT pg_catalog.json_build_array(\"id\"::text)::text FROM "
		  "taskslaps_batch_hi), ''), true) AS hi) SELECT NULLIF(hi, ''), CASE WHEN hi = "
		  "'' THEN (SELECT pg_catalog.count(*) FROM taskslaps_batch_keys) ELSE "
		  "$2::bigint END FROM taskslaps_batch_set");
	/* no RETURNING: the rows updated are the command tag's */
	assert_string_equal(
	    upd, "UPDATE \"t\" SET c = id % 97 WHERE (\"id\") <= (SELECT COALESCE((j ->> "
		 "0)::bigint, $1::bigint) FROM (SELECT NULLIF(pg_catalog.current_setting("
		 "'taskslaps.batch_hi'), '')::json) AS taskslaps_batch (j))");
	free(keys);
	free(upd);
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
	char *upd, *keys;

	(void)state;
	keys = build(&bs, false, &upd, &m);
	assert_non_null(keys);
	/* the batch's last key: after the checkpoint ($1, $2), up to the upper key ($3, $4) */
	assert_non_null(strstr(keys,
			       "taskslaps_batch_hi AS (SELECT \"a\", \"b\" FROM \"app\".\"t\" "
			       "WHERE (\"a\", \"b\") > ($1::integer, $2::text) AND (\"a\", "
			       "\"b\") <= ($3::integer, $4::text) ORDER BY \"a\", \"b\" LIMIT 1 "
			       "OFFSET $5::bigint - 1)"));
	assert_non_null(strstr(keys, "COALESCE((SELECT pg_catalog.json_build_array(\"a\"::text, "
				     "\"b\"::text)::text FROM taskslaps_batch_hi), '')"));
	/* the keys left, $5 of them at most, and $5 walked when there is a last key */
	assert_non_null(strstr(keys, "(SELECT \"a\", \"b\" FROM \"app\".\"t\" WHERE (\"a\", "
				     "\"b\") > ($1::integer, $2::text) AND (\"a\", \"b\") <= "
				     "($3::integer, $4::text) ORDER BY \"a\", \"b\" LIMIT "
				     "$5::bigint)"));
	assert_non_null(strstr(keys, "ELSE $5::bigint END"));
	/*
	 * the author's condition in parentheses, then the batch's range, to the
	 * last key, each column cast to its type, or the upper key without one
	 */
	assert_string_equal(
	    upd, "UPDATE \"app\".\"t\" SET v = a * 10 WHERE (a < 200 OR a > 900) AND (\"a\", "
		 "\"b\") > ($1::integer, $2::text) AND (\"a\", \"b\") <= (SELECT COALESCE((j ->> "
		 "0)::integer, $3::integer), COALESCE((j ->> 1)::text, $4::text) FROM (SELECT "
		 "NULLIF(pg_catalog.current_setting('taskslaps.batch_hi'), '')::json) AS "
		 "taskslaps_batch (j))");
	free(keys);
	free(upd);
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
	char *upd, *keys;

	(void)state;
	keys = build(&bs, false, &upd, &m);
	assert_non_null(keys);
	/* the comment does not swallow the range that follows it */
	assert_non_null(strstr(upd, "(c IS NULL -- not yet\n) AND (\"id\") > ($1::bigint)"));
	assert_non_null(strstr(upd, "(SELECT COALESCE((j ->> 0)::bigint, $2::bigint) FROM"));
	free(keys);
	free(upd);
}

static void
test_backfill_sql__the_statements_own_setting_is_refused(void **state)
{
	static const char *const wheres[] = {
		"pg_catalog.current_setting('taskslaps.batch_hi') <> ''",
		/* a setting's name is read without regard to case */
		"current_setting('TASKSLAPS.Batch_Hi', true) IS NOT NULL",
		/* one that would move the batch's bound */
		"set_config('taskslaps.batch_hi', '[\"999999\"]', true) IS NOT NULL",
		/* set_config of any name: the setting's may be built */
		"pg_catalog.set_config('taskslaps.' || 'batch_hi', '[\"9\"]', true) <> ''",
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
		assert_true(refused(&bs, i % 2 == 0, &m));
		assert_non_null(strstr(m.text, "taskslaps.batch_hi"));
	}
	/* in the SET list as well */
	{
		struct exec_batch_shape bs = {
			.table = "t",
			.qtable = "\"t\"",
			.qcols = one_col,
			.types = one_type,
			.nk = 1,
			.set = "c = length(current_setting('taskslaps.batch_hi'))"
		};
		assert_true(refused(&bs, false, &m));
		assert_non_null(strstr(m.text, "taskslaps.batch_hi"));
	}
	/* another setting, and tables named like the keys' WITH queries, are the author's */
	{
		struct exec_batch_shape bs = {
			.table = "t",
			.qtable = "\"t\"",
			.qcols = one_col,
			.types = one_type,
			.nk = 1,
			.set = "c = 1",
			.where =
			    "current_setting('app.mode') = 'x' AND id NOT IN (SELECT id FROM "
			    "taskslaps_batch_keys) AND id NOT IN (SELECT id FROM "
			    "taskslaps_batch_hi) AND set_config('audit.actor', 'm', true) <> ''"
		};
		assert_false(refused(&bs, false, &m));
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
		/* the batch's bound moved into a RETURNING list */
		"c = 1 WHERE true RETURNING (1 --",
	};
	static const char *const wheres[] = {
		"true) RETURNING 1), x AS (DELETE FROM t RETURNING 1) SELECT (1",
		"true; DELETE FROM t",
		/* parses: the bound would be RETURNING's, and the range the author's own */
		"true) AND (id) <= (9) RETURNING (1",
		/* parses: every row, whatever the batch's range */
		"true) OR (true",
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
		assert_true(refused(&bs, false, &m));
	}
	for (size_t i = 0; i < sizeof(wheres) / sizeof(wheres[0]); i++) {
		struct exec_batch_shape bs = { .table = "t",
					       .qtable = "\"t\"",
					       .qcols = one_col,
					       .types = one_type,
					       .nk = 1,
					       .set = "c = 1",
					       .where = wheres[i] };
		assert_true(refused(&bs, true, &m));
	}
	/* the table the statements name must be the step's */
	{
		struct exec_batch_shape bs = { .table = "u",
					       .qtable = "\"t\"",
					       .qcols = one_col,
					       .types = one_type,
					       .nk = 1,
					       .set = "c = 1" };
		assert_true(refused(&bs, true, &m));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backfill_sql__one_key_from_the_start),
		cmocka_unit_test(test_backfill_sql__composite_key_after_a_checkpoint),
		cmocka_unit_test(test_backfill_sql__a_comment_in_a_fragment_ends_its_line),
		cmocka_unit_test(test_backfill_sql__the_statements_own_setting_is_refused),
		cmocka_unit_test(test_backfill_sql__fragments_that_leave_their_place_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
