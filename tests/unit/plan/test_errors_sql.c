/*
 * SQL the author writes: backfills that are not one plain UPDATE, statements
 * that are several or control the transaction, checks that do not close. The
 * error points at the value, and says at which character of the SQL.
 */
#include "plan_test.h"

#define Y "x.yaml"
/* the SQL value starts at 5:10 */
#define BACKFILL(v) PT_HEAD "  - op: backfill_sql\n    sql: " v "\n"
#define SQL(v) PT_HEAD "  - op: sql\n    sql: " v "\n"
/* the check value starts at 7:12 */
#define CHECK(v)                                                                                   \
	PT_HEAD "  - op: add_check_not_valid\n    table: t\n    name: c\n    check: " v "\n"

/* --- backfill_sql: one UPDATE <table> SET ... [WHERE ...] -------------- */

static void
test_plan_errors_sql__backfill_delete(void **state)
{
	(void)state;
	pt_expect_error(Y, BACKFILL("DELETE FROM t WHERE a IS NULL"), 5, 10,
			"sql: expected a single UPDATE statement (at character 1 of the SQL)");
	/* a YAML "\n" escape: the statement starts on the SQL's second line */
	pt_expect_error(Y, BACKFILL("\"  -- fill\\n  INSERT INTO t VALUES (1)\""), 5, 10,
			"sql: expected a single UPDATE statement (at character 13 of the SQL)");
}

static void
test_plan_errors_sql__backfill_two_statements(void **state)
{
	(void)state;
	pt_expect_error(
	    Y, BACKFILL("'UPDATE t SET a = 1; UPDATE t SET b = 2'"), 5, 10,
	    "sql: expected one statement, found ';' followed by more SQL (at character 19 "
	    "of the SQL)");
}

static void
test_plan_errors_sql__backfill_update_from(void **state)
{
	(void)state;
	pt_expect_error(Y, BACKFILL("UPDATE t SET a = u.a FROM u WHERE u.id = t.id"), 5, 10,
			"sql: expected UPDATE table SET ... [WHERE ...]; found a clause a batched "
			"backfill cannot keep (FROM, RETURNING) (at character 22 of the SQL)");
}

static void
test_plan_errors_sql__backfill_returning(void **state)
{
	(void)state;
	pt_expect_error(Y, BACKFILL("UPDATE t SET a = 1 WHERE b returning id"), 5, 10,
			"found a clause a batched backfill cannot keep (FROM, RETURNING) (at "
			"character 28 of the SQL)");
}

static void
test_plan_errors_sql__backfill_missing_set(void **state)
{
	(void)state;
	pt_expect_error(Y, BACKFILL("UPDATE t WHERE a = 1"), 5, 10,
			"sql: syntax error at or near \"WHERE\" (at character 10 of the SQL)");
	pt_expect_error(
	    Y, BACKFILL("UPDATE t AS x SET a = 1"), 5, 10,
	    "expected SET after the table name (a backfill updates its table without an "
	    "alias or ONLY) (at character 8 of the SQL)");
	pt_expect_error(
	    Y, BACKFILL("UPDATE ONLY t SET a = 1"), 5, 10,
	    "expected SET after the table name (a backfill updates its table without an "
	    "alias or ONLY) (at character 13 of the SQL)");
}

static void
test_plan_errors_sql__backfill_empty_set_or_where(void **state)
{
	(void)state;
	pt_expect_error(Y, BACKFILL("UPDATE t SET WHERE a = 1"), 5, 10,
			"sql: syntax error at or near \"WHERE\" (at character 14 of the SQL)");
	pt_expect_error(Y, BACKFILL("UPDATE t SET a = 1 WHERE"), 5, 10,
			"sql: syntax error at end of input (at character 25 of the SQL)");
}

static void
test_plan_errors_sql__backfill_table_not_plain(void **state)
{
	(void)state;
	struct plan *p;

	/* a quoted name is read as PostgreSQL reads it; it must still be a plain identifier */
	pt_expect_error(Y, BACKFILL("'UPDATE \"odd name\" SET a = 1'"), 5, 10,
			"sql: expected a plain table name after UPDATE (letters, digits, _, "
			"optionally schema.name), found 'odd name'");
	p = pt_parse_ok(Y, BACKFILL("'UPDATE \"T\" SET a = 1'"));
	assert_string_equal(pt_step(p, WAVE_BACKFILL, 0)->bf_table, "T");
	plan_free(p);
	p = pt_parse_ok(Y, BACKFILL("'UPDATE App.T SET a = 1'"));
	assert_string_equal(pt_step(p, WAVE_BACKFILL, 0)->bf_table, "app.t");
	plan_free(p);
	pt_expect_error(Y, BACKFILL("WITH x AS (SELECT 1) UPDATE t SET a = 1"), 5, 10,
			"sql: expected a single UPDATE statement (without WITH) (at character 1 "
			"of the SQL)");
}

static void
test_plan_errors_sql__backfill_position_counts_characters(void **state)
{
	(void)state;
	/* 'é' is two bytes but one character: RETURNING is the 22nd character */
	pt_expect_error(Y, BACKFILL("UPDATE t SET a = '\xc3\xa9' RETURNING 1"), 5, 10,
			"(at character 22 of the SQL)");
}

/* What a batch keeps for itself: refused when the plan is read, not at every batch. */
static void
test_plan_errors_sql__backfill_batch_setting(void **state)
{
	(void)state;
	pt_expect_error(
	    Y, BACKFILL("\"UPDATE t SET a = current_setting('Taskslaps.Batch_Hi')::int\""), 5, 10,
	    "sql: the UPDATE names the setting taskslaps.batch_hi, which its batches "
	    "use to pass each batch's last key from the keys to the UPDATE; a "
	    "backfill may not");
	/* a name that is not written out may be that one */
	pt_expect_error(Y,
			BACKFILL("\"UPDATE t SET a = 1 WHERE pg_catalog.set_config('taskslaps.' "
				 "|| 'batch_hi', '1', true) IS NOT NULL\""),
			5, 10,
			"sql: the UPDATE calls set_config with a name that may be "
			"taskslaps.batch_hi, which its batches use");
	/* another setting, written out, is the author's */
	plan_free(pt_parse_ok(Y, BACKFILL("\"UPDATE t SET a = 1 WHERE set_config('audit.actor', "
					  "'m', true) IS NOT NULL\"")));
	/* a table named like the batch's parts */
	pt_expect_error(Y, BACKFILL("UPDATE taskslaps_batch_hi SET a = 1"), 5, 10,
			"is named like the parts of its batches");
}

static void
test_plan_errors_sql__backfill_accepts_what_it_can_batch(void **state)
{
	struct plan *p =
	    pt_parse_ok(Y, PT_HEAD "  - {op: backfill_sql, sql: 'update app.t set a = (select b "
				   "from u where u.id = t.id) where a is null'}\n"
				   "  - {op: backfill_sql, sql: 'UPDATE t SET note = ''FROM here'' "
				   "/* RETURNING */'}\n");

	(void)state;
	assert_string_equal(pt_step(p, WAVE_BACKFILL, 0)->bf_table, "app.t");
	assert_string_equal(pt_step(p, WAVE_BACKFILL, 0)->bf_where, "a is null");
	/* a comment after the last token is not part of the SET list */
	assert_string_equal(pt_step(p, WAVE_BACKFILL, 1)->bf_set, "note = 'FROM here'");
	plan_free(p);
}

/* --- sql: one statement that can run in the step's transaction ------------ */

static void
test_plan_errors_sql__multi_statement(void **state)
{
	(void)state;
	pt_expect_error(
	    Y, SQL("'ANALYZE a; ANALYZE b'"), 5, 10,
	    "sql: expected one statement, found ';' followed by more SQL (at character 10 "
	    "of the SQL)");
	pt_expect_error(Y, SQL("'ANALYZE a;; '"), 5, 10,
			"sql: expected one statement, found ';' followed by more SQL");
}

static void
test_plan_errors_sql__transaction_control(void **state)
{
	static const struct {
		const char *sql, *word;
	} cases[] = {
		{ "BEGIN", "'BEGIN'" },
		{ "'  commit;'", "'COMMIT'" },
		{ "'/* go */ START TRANSACTION'", "'START TRANSACTION'" },
		{ "ROLLBACK", "'ROLLBACK'" },
		{ "SAVEPOINT a", "'SAVEPOINT'" },
		{ "RELEASE SAVEPOINT a", "'RELEASE'" },
		/* PostgreSQL reads END as COMMIT and ABORT as ROLLBACK */
		{ "end", "'COMMIT'" },
		{ "ABORT", "'ROLLBACK'" },
		{ "\"PREPARE TRANSACTION 'x'\"", "'PREPARE TRANSACTION'" },
		{ "\"prepare -- two phase\\n    transaction 'x'\"", "'PREPARE TRANSACTION'" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char text[256], want[128];

		snprintf(text, sizeof(text), SQL("%s"), cases[i].sql);
		snprintf(want, sizeof(want),
			 "sql: expected a statement, found transaction control (%s): the executor "
			 "runs each step in its own transaction",
			 cases[i].word);
		pt_expect_error(Y, text, 5, 10, want);
	}
	/* a prepared statement is not a prepared transaction */
	plan_free(pt_parse_ok(Y, SQL("PREPARE q AS SELECT 1")));
}

static void
test_plan_errors_sql__not_in_a_transaction_block(void **state)
{
	(void)state;
	struct plan *p;

	/* VACUUM runs outside a transaction block, as PostgreSQL requires */
	p = pt_parse_ok(Y, SQL("VACUUM (ANALYZE) employee"));
	assert_int_equal(pt_step(p, WAVE_CONTRACT, 0)->exec, EXEC_NONTX);
	plan_free(p);
	/* what changes the server or another database is not a migration of this one */
	pt_expect_error(Y, SQL("ALTER SYSTEM SET work_mem = '64MB'"), 5, 10,
			"sql: expected a statement on this database's objects, found 'ALTER "
			"SYSTEM'");
	pt_expect_error(Y, SQL("create database scratch"), 5, 10, "found 'CREATE DATABASE'");
	pt_expect_error(Y, SQL("DROP TABLESPACE fast"), 5, 10, "found 'DROP TABLESPACE'");
	plan_free(pt_parse_ok(Y, SQL("ALTER TABLE system_log SET (fillfactor = 90)")));
}

static void
test_plan_errors_sql__concurrently(void **state)
{
	(void)state;
	static const char *const nontx[] = { "CREATE INDEX CONCURRENTLY i ON t (a)",
					     "reindex index concurrently i",
					     "DROP INDEX CONCURRENTLY i" };
	struct plan *p;

	/* run outside a transaction block, under ShareUpdateExclusiveLock, not H3 */
	for (size_t i = 0; i < sizeof(nontx) / sizeof(*nontx); i++) {
		char text[256];
		struct plan_step *s;

		snprintf(text, sizeof(text), SQL("'%s'"), nontx[i]);
		p = pt_parse_ok(Y, text);
		s = pt_step(p, WAVE_CONTRACT, 0);
		assert_int_equal(s->exec, EXEC_NONTX);
		assert_int_equal(s->ob.lock_class_max, LOCK_SHARE_UPDATE_EXCLUSIVE);
		plan_free(p);
	}
	/* a retry after a crash must find the index a killed build left: named, and checked */
	p = pt_parse_ok(Y, SQL("CREATE INDEX CONCURRENTLY i ON app.t (a)"));
	{
		const struct plan_step *s = pt_step(p, WAVE_CONTRACT, 0);
		assert_string_equal(s->cic_index, "app.i");
		assert_int_equal(s->ob.prechecks.n, 1);
		assert_string_equal(s->ob.prechecks.v[0], "NOT taskslaps.index_exists('app.i')");
		assert_string_equal(s->ob.postchecks.v[0], "taskslaps.index_valid('app.i')");
	}
	plan_free(p);
	pt_expect_error(Y, SQL("CREATE INDEX CONCURRENTLY ON t (a)"), 5, 10,
			"sql: expected CREATE INDEX CONCURRENTLY to name its index");
	p = pt_parse_ok(Y, SQL("DROP INDEX CONCURRENTLY app.i"));
	assert_string_equal(pt_step(p, WAVE_CONTRACT, 0)->ob.postchecks.v[0],
			    "NOT taskslaps.index_exists('app.i')");
	plan_free(p);
	/* a word that merely contains it is no such statement */
	p = pt_parse_ok(Y, SQL("ALTER TABLE t RENAME COLUMN concurrently_x TO y"));
	assert_int_equal(pt_step(p, WAVE_CONTRACT, 0)->exec, EXEC_TX);
	plan_free(p);
	/* the session is left as it was */
	pt_expect_error(Y, SQL("SET lock_timeout = 0"), 5, 10, "found SET, RESET or DISCARD");
	pt_expect_error(Y, SQL("RESET ALL"), 5, 10, "found SET, RESET or DISCARD");
	pt_expect_error(Y, SQL("\"SELECT set_config('search_path', 'x', false)\""), 5, 10,
			"found a call of set_config()");
}

static void
test_plan_errors_sql__nothing_but_comments(void **state)
{
	(void)state;
	pt_expect_error(
	    Y, SQL("'-- nothing to do'"), 5, 10,
	    "sql: expected SQL, found nothing but blanks and comments (at character 1 of "
	    "the SQL)");
	pt_expect_error(Y, SQL("' ; '"), 5, 10,
			"expected SQL, found nothing but blanks and comments");
	pt_expect_error(Y, SQL("''"), 5, 10, "expected SQL, found nothing but blanks and comments");
}

static void
test_plan_errors_sql__unclosed_quotes_and_comments(void **state)
{
	(void)state;
	pt_expect_error(Y, SQL("'DO $$ BEGIN PERFORM 1; END'"), 5, 10,
			"sql: unterminated dollar-quoted string at or near \"$$ BEGIN PERFORM 1; "
			"END\" (at character 4 of the SQL)");
	pt_expect_error(Y, SQL("'DO $body$ SELECT 1 $$'"), 5, 10,
			"sql: unterminated dollar-quoted string at or near \"$body$ SELECT 1 $$\"");
	pt_expect_error(Y, SQL("'ANALYZE t /* stats'"), 5, 10,
			"sql: unterminated /* comment at or near \"/* stats\" (at character 11 of "
			"the SQL)");
	pt_expect_error(Y, SQL("'ANALYZE \"t'"), 5, 10,
			"unterminated quoted identifier at or near \"\"t\" (at character 9");
}

static void
test_plan_errors_sql__create_view_needs_a_query(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - op: create_view\n    name: v\n    sql: DELETE FROM t\n", 6,
			10,
			"sql: expected a query (SELECT, WITH, VALUES or TABLE), found 'DELETE'");
	pt_expect_error(Y,
			PT_HEAD "  - op: create_view\n    name: v\n    sql: 'SELECT 1; SELECT 2'\n",
			6, 10, "sql: expected one statement, found ';' followed by more SQL");
}

/* --- checks and predicates: one expression ----------------------------- */

static void
test_plan_errors_sql__unbalanced_open_paren(void **state)
{
	(void)state;
	pt_expect_error(Y, CHECK("'(a > 0 AND (b < 1)'"), 7, 12,
			"check: syntax error at end of input (at character 19 of the SQL)");
}

static void
test_plan_errors_sql__unbalanced_close_paren(void **state)
{
	(void)state;
	pt_expect_error(Y, CHECK("'a > 0)'"), 7, 12,
			"check: syntax error at or near \")\" (at character 6 of the SQL)");
}

static void
test_plan_errors_sql__unclosed_quote_in_check(void **state)
{
	(void)state;
	pt_expect_error(Y, CHECK("\"kind = 'a\""), 7, 12,
			"check: unterminated quoted string at or near \"'a\" (at character 8 of "
			"the SQL)");
	pt_expect_error(Y, CHECK("\"kind = E'a\\\\'\""), 7, 12,
			"check: unterminated quoted string at or near \"E'a\\'\"");
}

static void
test_plan_errors_sql__unclosed_comment_in_check(void **state)
{
	(void)state;
	pt_expect_error(Y, CHECK("'a > 0 /* nested /* */'"), 7, 12,
			"check: unterminated /* comment at or near \"/* nested /* */\" (at "
			"character 7 of the SQL)");
}

static void
test_plan_errors_sql__semicolon_in_expression(void **state)
{
	(void)state;
	pt_expect_error(Y, CHECK("'a > 0; DROP TABLE t'"), 7, 12,
			"check: expected one SQL expression, found ';' followed by more SQL (at "
			"character 6 of the SQL)");
	pt_expect_error(
	    Y,
	    PT_HEAD "  - op: add_index_concurrently\n    table: t\n    name: i\n"
		    "    columns: [a]\n    where: 'a > 0;'\n",
	    8, 12, "where: expected one SQL expression, found ';' (at character 6 of the SQL)");
}

/*
 * "SELECT ALL x" is "SELECT x" (ALL is the default quantifier and leaves
 * no trace in the tree), but "ALL x" is no expression in a CHECK, a
 * DEFAULT or a predicate: refused where it was read, not when the statement
 * built from it reaches the database.
 */
static void
test_plan_errors_sql__all_before_an_expression(void **state)
{
	(void)state;
	pt_expect_error(Y, CHECK("'ALL a > 0'"), 7, 12,
			"check: expected one SQL expression, found a word before it that only a "
			"SELECT list takes (ALL)");
	pt_expect_error(Y, CHECK("'/* c */ all (a > 0)'"), 7, 12,
			"check: expected one SQL expression, found a word before it");
	pt_expect_error(Y,
			PT_HEAD "  - op: add_column\n    table: t\n    name: c\n    type: int\n"
				"    default_sql: ALL 1\n",
			8, 18, "default_sql: expected one SQL expression, found a word before it");
	/* a name that starts with "all", a comment, parentheses: expressions */
	plan_free(pt_parse_ok(Y, CHECK("'all_rows > 0'")));
	plan_free(pt_parse_ok(Y, CHECK("'/* all */ (a > 0)'")));
	plan_free(pt_parse_ok(Y, CHECK("\"-- ALL\\n a > 0\"")));
}

static void
test_plan_errors_sql__bad_user_check_item(void **state)
{
	(void)state;
	/* the item at fault, not the list */
	pt_expect_error(
	    Y, PT_HEAD "  - op: drop_table\n    table: t\n    postchecks: ['true', '(x']\n", 6, 26,
	    "postchecks: syntax error at end of input (at character 3 of the SQL)");
	pt_expect_error(Y, PT_HEAD "  - op: drop_table\n    table: t\n    prechecks: [[true]]\n", 6,
			17, "prechecks: expected an SQL expression, found a list");
}

static void
test_plan_errors_sql__check_position_counts_characters(void **state)
{
	(void)state;
	pt_expect_error(Y, CHECK("\"name = '\xc3\xa9' AND (x\""), 7, 12,
			"check: syntax error at end of input (at character 18 of the SQL)");
}

static void
test_plan_errors_sql__quoted_text_is_not_sql(void **state)
{
	struct plan *p =
	    pt_parse_ok(Y, PT_HEAD "  - op: add_check_not_valid\n    table: t\n    name: c\n"
				   "    check: |-\n"
				   "      kind <> ';' AND \"odd)name\" > 0 -- closing ( later\n"
				   "      AND $x$)$x$ <> E'it\\'s' AND note <> 'it''s'\n");
	struct plan_step *s = pt_step(p, WAVE_EXPAND, 0);

	(void)state;
	assert_string_equal(s->check, "kind <> ';' AND \"odd)name\" > 0 -- closing ( later\n"
				      "AND $x$)$x$ <> E'it\\'s' AND note <> 'it''s'");
	plan_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_errors_sql__backfill_delete),
		cmocka_unit_test(test_plan_errors_sql__backfill_two_statements),
		cmocka_unit_test(test_plan_errors_sql__backfill_update_from),
		cmocka_unit_test(test_plan_errors_sql__backfill_returning),
		cmocka_unit_test(test_plan_errors_sql__backfill_missing_set),
		cmocka_unit_test(test_plan_errors_sql__backfill_empty_set_or_where),
		cmocka_unit_test(test_plan_errors_sql__backfill_table_not_plain),
		cmocka_unit_test(test_plan_errors_sql__backfill_position_counts_characters),
		cmocka_unit_test(test_plan_errors_sql__backfill_batch_setting),
		cmocka_unit_test(test_plan_errors_sql__backfill_accepts_what_it_can_batch),
		cmocka_unit_test(test_plan_errors_sql__multi_statement),
		cmocka_unit_test(test_plan_errors_sql__transaction_control),
		cmocka_unit_test(test_plan_errors_sql__not_in_a_transaction_block),
		cmocka_unit_test(test_plan_errors_sql__concurrently),
		cmocka_unit_test(test_plan_errors_sql__nothing_but_comments),
		cmocka_unit_test(test_plan_errors_sql__unclosed_quotes_and_comments),
		cmocka_unit_test(test_plan_errors_sql__create_view_needs_a_query),
		cmocka_unit_test(test_plan_errors_sql__unbalanced_open_paren),
		cmocka_unit_test(test_plan_errors_sql__unbalanced_close_paren),
		cmocka_unit_test(test_plan_errors_sql__unclosed_quote_in_check),
		cmocka_unit_test(test_plan_errors_sql__unclosed_comment_in_check),
		cmocka_unit_test(test_plan_errors_sql__semicolon_in_expression),
		cmocka_unit_test(test_plan_errors_sql__all_before_an_expression),
		cmocka_unit_test(test_plan_errors_sql__bad_user_check_item),
		cmocka_unit_test(test_plan_errors_sql__check_position_counts_characters),
		cmocka_unit_test(test_plan_errors_sql__quoted_text_is_not_sql),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
