/*
 * Hostile plans: SQL fragments that try to leave their place in the
 * statement the planner builds, column clauses passed off as types, defaults
 * that would be frozen, checks that lift the rails. PostgreSQL's own parser
 * reads each of them, and each is refused before a statement is built.
 */
#include "plan_test.h"
#include "sql/sql.h"

#define Y "x.yaml"
/* the check value starts at 7:12 */
#define CHECK(v)                                                                                   \
	PT_HEAD "  - op: add_check_not_valid\n    table: employee\n    name: c\n    check: " v "\n"
/* the type value starts at 7:11 */
#define ADD_COLUMN_TYPE(t)                                                                         \
	PT_HEAD "  - op: add_column\n    table: employee\n    name: c\n    type: " t "\n"
#define BACKFILL(v) PT_HEAD "  - op: backfill_sql\n    sql: " v "\n"

static void
test_plan_hostile__carriage_return_ends_a_comment(void **state)
{
	(void)state;
	/* for PostgreSQL \r ends the -- comment: the rest is SQL, and does not parse */
	pt_expect_error(Y,
			CHECK("\"score >= 0 --\\r) NOT VALID, DROP COLUMN c3, ADD CONSTRAINT "
			      "employee_ok CHECK (true\""),
			7, 12, "check: syntax error at or near \")\" (at character 15 of the SQL)");
	pt_expect_error(Y, BACKFILL("\"UPDATE bf SET v = v + 1 WHERE v >= 0 --\\r) OR (true\""), 5,
			10, "sql: syntax error at or near \")\" (at character 41 of the SQL)");
	/* the same with \n was always a comment, and is still fine */
	plan_free(pt_parse_ok(Y, CHECK("\"score >= 0 -- not negative\\n\"")));
}

static void
test_plan_hostile__comment_then_paren_keeps_shape(void **state)
{
	struct plan *p = pt_parse_ok(Y, CHECK("\"score >= 0 -- ends here\""));
	const struct plan_step *s = pt_step(p, WAVE_EXPAND, 0);

	(void)state;
	/* the closing parenthesis is on a line of its own, after the comment */
	assert_string_equal(s->stmt,
			    "ALTER TABLE \"employee\" ADD CONSTRAINT \"c\" CHECK (score >= "
			    "0 -- ends here\n) NOT VALID");
	plan_free(p);
}

static void
test_plan_hostile__type_with_column_clauses(void **state)
{
	static const char *const types[] = {
		"int UNIQUE",
		"serial4 primary key",
		"timestamptz DEFAULT current_timestamp",
		"bigint GENERATED ALWAYS AS IDENTITY",
		"int NOT NULL",
		"int REFERENCES other(id)",
		"int CHECK (c > 0)",
		"text COLLATE \\\"C\\\"",
		"int) , ADD COLUMN d int -- ",
	};
	char text[512];

	(void)state;
	for (size_t i = 0; i < sizeof(types) / sizeof(*types); i++) {
		snprintf(text, sizeof(text), ADD_COLUMN_TYPE("\"%s\""), types[i]);
		pt_expect_error(Y, text, 7, 11, "type: ");
	}
	/* what a type may be */
	plan_free(pt_parse_ok(Y, ADD_COLUMN_TYPE("double precision")));
	plan_free(pt_parse_ok(Y, ADD_COLUMN_TYPE("numeric(12,2)")));
	plan_free(pt_parse_ok(Y, ADD_COLUMN_TYPE("character varying(20)[]")));
	plan_free(pt_parse_ok(Y, ADD_COLUMN_TYPE("timestamp with time zone")));
	plan_free(pt_parse_ok(Y, ADD_COLUMN_TYPE("app.money_t")));
}

static void
test_plan_hostile__serial_is_h3_however_written(void **state)
{
	struct plan *p = pt_parse_ok(Y, ADD_COLUMN_TYPE("SERIAL4"));

	(void)state;
	assert_int_equal(pt_step(p, WAVE_EXPAND, 0)->hazard, H3);
	plan_free(p);
}

static void
test_plan_hostile__default_now_is_not_a_constant(void **state)
{
	static const char *const evaluated[] = {
		"now()",       "NOW()", " now ", "today", "current_timestamp", "gen_random_uuid()",
		"nextval('s')"
	};
	char text[512];

	(void)state;
	for (size_t i = 0; i < sizeof(evaluated) / sizeof(*evaluated); i++) {
		snprintf(text, sizeof(text), ADD_COLUMN_TYPE("timestamptz") "    default: \"%s\"\n",
			 evaluated[i]);
		pt_expect_error(Y, text, 8, 14, "write an expression to evaluate as default_sql");
	}
	/* plain words stay strings */
	plan_free(pt_parse_ok(Y, ADD_COLUMN_TYPE("text") "    default: nowhere\n"));
	plan_free(pt_parse_ok(Y, ADD_COLUMN_TYPE("text") "    default: \"(none)\"\n"));
}

static void
test_plan_hostile__default_sql_classified(void **state)
{
	struct plan *p;
	const struct plan_step *s;

	(void)state;
	/* now() is stable: evaluated once, no rewrite */
	p = pt_parse_ok(Y, ADD_COLUMN_TYPE("timestamptz") "    default_sql: now()\n");
	s = pt_step(p, WAVE_EXPAND, 0);
	assert_int_equal(s->hazard, H1);
	assert_false(s->ob.may_rewrite);
	assert_string_equal(s->stmt,
			    "ALTER TABLE \"employee\" ADD COLUMN \"c\" timestamptz DEFAULT "
			    "(now())");
	plan_free(p);
	/* random() is volatile: every row gets its own value, the table is rewritten */
	p = pt_parse_ok(Y, ADD_COLUMN_TYPE("float8") "    default_sql: random()\n");
	s = pt_step(p, WAVE_EXPAND, 0);
	assert_int_equal(s->hazard, H3);
	assert_true(s->ob.may_rewrite);
	assert_non_null(strstr(s->hazard_reason, "random()"));
	plan_free(p);
	/* a function that is not built in: its volatility is not known offline */
	p = pt_parse_ok(Y, ADD_COLUMN_TYPE("int") "    default_sql: app.next_code()\n");
	assert_int_equal(pt_step(p, WAVE_EXPAND, 0)->hazard, H3);
	plan_free(p);
	pt_expect_error(Y, ADD_COLUMN_TYPE("int") "    default: 1\n    default_sql: '2'\n", 9, 18,
			"default_sql: expected either default or default_sql, found both");
	pt_expect_error(Y, ADD_COLUMN_TYPE("int") "    default_sql: '1) NOT NULL, ADD c2 int --'\n",
			8, 18, "default_sql: syntax error");
}

static void
test_plan_hostile__check_cannot_lift_the_rails(void **state)
{
	(void)state;
	pt_expect_error(Y,
			PT_HEAD
			"  - op: drop_table\n    table: t\n    prechecks:\n      - \"(SELECT "
			"pg_catalog.set_config('lock_timeout','0',false)) IS NOT NULL\"\n",
			7, 9,
			"prechecks: expected a check without side effects, found a call of the "
			"volatile function set_config() (at character 9 of the SQL)");
	pt_expect_error(Y,
			PT_HEAD "  - op: drop_table\n    table: t\n    postchecks: "
				"[\"pg_advisory_lock(1) IS NULL\"]\n",
			6, 18, "found a call of the volatile function pg_advisory_lock()");
	pt_expect_error(Y, CHECK("\"nextval('s') > 0\""), 7, 12,
			"check: expected a check without side effects, found a call of the "
			"volatile function nextval()");
	/* stable functions and our own helpers are fine */
	plan_free(pt_parse_ok(Y, PT_HEAD "  - op: drop_table\n    table: t\n    prechecks: "
					 "[\"taskslaps.table_exists('t') AND now() > "
					 "'2020-01-01'\"]\n"));
}

static void
test_plan_hostile__expression_alone(void **state)
{
	(void)state;
	pt_expect_error(Y, CHECK("\"a > 0 FROM employee\""), 7, 12,
			"check: expected one SQL expression alone");
	pt_expect_error(Y, CHECK("\"a > 0, b > 0\""), 7, 12, "expected one SQL expression alone");
	pt_expect_error(Y, CHECK("\"a > 0 UNION SELECT true\""), 7, 12,
			"expected one SQL expression alone");
	pt_expect_error(Y, CHECK("\"a > 0 AS ok\""), 7, 12, "expected one SQL expression alone");
	/* found by fuzz_sql (tests/fuzz/regressions/sql): a star is a target list */
	pt_expect_error(Y, CHECK("\"* \""), 7, 12, "expected one SQL expression alone");
	pt_expect_error(Y, CHECK("\"employee.*\""), 7, 12, "expected one SQL expression alone");
}

static void
test_plan_hostile__type_is_one_cast(void **state)
{
	(void)state;
	/* found by fuzz_sql: NULL::a::b reads as two casts, and a::b is no type */
	pt_expect_error(Y, ADD_COLUMN_TYPE("\"int::text\""), 7, 11,
			"type: expected a type name alone");
}

static void
test_plan_hostile__executor_statements_read_back(void **state)
{
	struct sql_msg m;

	(void)state;
	/* a backfill's key query and batch, as the executor writes them */
	assert_true(
	    sql_is_key_query("SELECT json_build_array(\"id\"::text) FROM \"app\".\"t\" WHERE "
			     "(\"id\") > ($1) ORDER BY \"id\" LIMIT 1 OFFSET $2::bigint",
			     "app.t", &m));
	assert_true(sql_is_batch_update(
	    "UPDATE \"t\" SET v = 1 WHERE (v IS NULL) AND (\"id\") <= ($1)", "t", &m));
	/* anything else is not sent */
	assert_false(sql_is_key_query("SELECT 1 FROM t, u", "t", &m));
	assert_false(sql_is_key_query("SELECT 1 FROM t FOR UPDATE", "t", &m));
	assert_false(sql_is_key_query("SELECT 1 FROM t UNION SELECT 1 FROM u", "t", &m));
	assert_false(sql_is_key_query("SELECT 1 FROM u", "t", &m));
	assert_false(sql_is_batch_update("UPDATE t SET v = 1", "t", &m));
	assert_false(sql_is_batch_update("UPDATE t SET v = 1 WHERE true; DELETE FROM t", "t", &m));
	assert_false(sql_is_batch_update("UPDATE u SET v = 1 WHERE true", "t", &m));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_hostile__carriage_return_ends_a_comment),
		cmocka_unit_test(test_plan_hostile__comment_then_paren_keeps_shape),
		cmocka_unit_test(test_plan_hostile__type_with_column_clauses),
		cmocka_unit_test(test_plan_hostile__serial_is_h3_however_written),
		cmocka_unit_test(test_plan_hostile__default_now_is_not_a_constant),
		cmocka_unit_test(test_plan_hostile__default_sql_classified),
		cmocka_unit_test(test_plan_hostile__check_cannot_lift_the_rails),
		cmocka_unit_test(test_plan_hostile__expression_alone),
		cmocka_unit_test(test_plan_hostile__type_is_one_cast),
		cmocka_unit_test(test_plan_hostile__executor_statements_read_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
