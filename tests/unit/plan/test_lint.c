/*
 * Findings: what plan_lint warns about in a sound plan, each at its step's
 * line and column, and that a careful plan has none.
 */
#include "plan_test.h"
#include "plan/plan_json.h"

#include "plan/plan_lint.h"

/* Lints text: exactly the warnings of want (line, col, substring), in order. */
static void
expect_findings(const char *text, size_t n, const struct pt_err *want)
{
	struct plan *p = pt_parse_ok("lint.yaml", text);
	struct diags d = DIAGS_INIT;
	size_t got = plan_lint(p, &d);
	bool good = got == n && d.n == n && d.nerrors == 0 && d.nwarnings == n;

	for (size_t i = 0; good && i < n; i++)
		good = d.v[i].level == DIAG_WARNING && d.v[i].file &&
		       strcmp(d.v[i].file, "lint.yaml") == 0 && d.v[i].line == want[i].line &&
		       d.v[i].col == want[i].col && strstr(d.v[i].msg, want[i].want);
	if (!good) {
		print_message("expected %zu finding(s):\n", n);
		for (size_t i = 0; i < n; i++)
			print_message("    %u:%u: ...%s...\n", want[i].line, want[i].col,
				      want[i].want);
		print_message("  got %zu:\n", got);
		pt_dump(&d);
	}
	diags_clear(&d);
	plan_free(p);
	assert_true(good);
}

static void
test_plan_lint__clean_plan_has_none(void **state)
{
	(void)state;
	expect_findings(
	    PT_HEAD
	    "  - {op: add_column, table: app.employee, name: cups, type: int}\n"
	    "  - {op: add_check_not_valid, table: app.employee, name: cups_nn, "
	    "check: 'cups IS NOT NULL'}\n"
	    "  - {op: backfill_sql, sql: 'UPDATE app.employee SET cups = 0 WHERE cups IS NULL'}\n"
	    "  - {op: validate_constraint, table: app.employee, name: cups_nn}\n"
	    "  - {op: set_not_null, table: app.employee, column: cups}\n"
	    "  - {op: add_column, table: t, name: flag, type: boolean, nullable: false, "
	    "default: false}\n"
	    "  - {op: sql, sql: 'ANALYZE app.employee', lock_class_max: "
	    "ShareUpdateExclusiveLock}\n"
	    "  - {op: create_table, table: mug, columns: [{name: id, type: int}], "
	    "primary_key: [id]}\n",
	    0, NULL);
}

static void
test_plan_lint__capitals_in_identifiers(void **state)
{
	static const struct pt_err e[] = {
		{ 4, 5,
		  "add_column: 'Employee' has capitals; identifiers are quoted as written, so "
		  "it is case-sensitive" },
		{ 5, 5, "add_column: 'CoffeeCups' has capitals" },
		{ 6, 5, "create_table: 'userId' has capitals" },
		{ 7, 5, "add_index_concurrently: 'Email' has capitals" },
		{ 8, 5, "add_foreign_key_not_valid: 'Customer' has capitals" },
		{ 9, 5, "rename_column: 'OldName' has capitals" },
		{ 10, 5, "rename_table: 'Staff' has capitals" },
	};

	(void)state;
	expect_findings(
	    PT_HEAD "  - {op: add_column, table: Employee, name: cups, type: int}\n"
		    "  - {op: add_column, table: employee, name: CoffeeCups, type: int}\n"
		    "  - {op: create_table, table: t, columns: [{name: userId, type: int}]}\n"
		    "  - {op: add_index_concurrently, table: t, name: i, columns: [id, Email]}\n"
		    "  - {op: add_foreign_key_not_valid, table: t, name: fk, columns: [a], "
		    "ref_table: Customer, ref_columns: [id]}\n"
		    "  - {op: rename_column, table: t, from: OldName, to: new_name}\n"
		    "  - {op: rename_table, from: Staff, to: employee}\n",
	    sizeof(e) / sizeof(*e), e);
}

static void
test_plan_lint__not_null_add_column_without_default(void **state)
{
	static const struct pt_err e[] = {
		{ 4, 5,
		  "add_column: NOT NULL without a default fails on a table that has rows; add "
		  "it nullable, backfill, then set_not_null" },
	};

	(void)state;
	expect_findings(
	    PT_HEAD
	    "  - {op: add_column, table: t, name: a, type: int, nullable: false}\n"
	    "  - {op: add_column, table: t, name: b, type: int, nullable: false, default: 0}\n",
	    1, e);
}

static void
test_plan_lint__set_not_null_without_validated_check(void **state)
{
	static const struct pt_err e[] = {
		{ 4, 5,
		  "set_not_null: scans t under ACCESS EXCLUSIVE; add_check_not_valid (a IS NOT "
		  "NULL) and validate_constraint first make it instant" },
	};

	(void)state;
	expect_findings(PT_HEAD "  - {op: set_not_null, table: t, column: a}\n", 1, e);
}

static void
test_plan_lint__set_not_null_before_its_validation(void **state)
{
	static const struct pt_err e[] = {
		{ 5, 5, "set_not_null: scans t under ACCESS EXCLUSIVE" },
	};

	(void)state;
	/* the validation comes after the step, so it does not help it */
	expect_findings(
	    PT_HEAD "  - {op: add_check_not_valid, table: t, name: a_nn, check: 'a IS NOT NULL'}\n"
		    "  - {op: set_not_null, table: t, column: a}\n"
		    "  - {op: validate_constraint, table: t, name: a_nn}\n",
	    1, e);
}

static void
test_plan_lint__set_not_null_after_validation_on_other_table(void **state)
{
	static const struct pt_err e[] = {
		{ 5, 5, "set_not_null: scans t under ACCESS EXCLUSIVE" },
	};

	(void)state;
	expect_findings(PT_HEAD "  - {op: validate_constraint, table: u, name: a_nn}\n"
				"  - {op: set_not_null, table: t, column: a}\n",
			1, e);
}

static void
test_plan_lint__validated_foreign_key_does_not_prove_not_null(void **state)
{
	static const struct pt_err e[] = {
		{ 6, 5, "set_not_null: scans t under ACCESS EXCLUSIVE" },
	};

	(void)state;
	expect_findings(PT_HEAD "  - {op: add_foreign_key_not_valid, table: t, name: t_u_fk, "
				"columns: [a], ref_table: u, ref_columns: [id]}\n"
				"  - {op: validate_constraint, table: t, name: t_u_fk}\n"
				"  - {op: set_not_null, table: t, column: a}\n",
			1, e);
}

static void
test_plan_lint__serial_add_column(void **state)
{
	static const struct pt_err e[] = {
		{ 5, 5,
		  "add_column: bigserial rewrites the table under ACCESS EXCLUSIVE; add a "
		  "nullable integer column and fill it by backfill instead" },
	};

	(void)state;
	expect_findings(
	    PT_HEAD "  - {op: add_column, table: t, name: a, type: int}\n"
		    "  - {op: add_column, table: t, name: id2, type: bigserial, nullable: false}\n",
	    1, e);
}

static void
test_plan_lint__sql_rules(void **state)
{
	static const struct {
		const char *sql, *want;
	} cases[] = {
		{ "CREATE INDEX i ON t (a)", "[S001 index-not-concurrent]" },
		{ "REINDEX TABLE t", "[S001 index-not-concurrent]" },
		{ "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)",
		  "[S002 constraint-without-not-valid]" },
		{ "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id)",
		  "[S002 constraint-without-not-valid]" },
		{ "ALTER TABLE t ALTER COLUMN a SET NOT NULL", "[S003 set-not-null-scan]" },
		{ "ALTER TABLE t ADD COLUMN b float8 DEFAULT random()", "[S004 volatile-default]" },
		{ "ALTER TABLE t ALTER COLUMN a TYPE bigint", "[S005 column-type-change]" },
		{ "ALTER TABLE t RENAME COLUMN a TO b", "[S006 rename]" },
		{ "ALTER TABLE t RENAME TO u", "[S006 rename]" },
		{ "ALTER TABLE t DROP COLUMN a", "[S007 drop]" },
		{ "DROP TABLE t", "[S007 drop]" },
		{ "TRUNCATE t", "[S008 truncate]" },
		{ "ALTER TABLE t ADD COLUMN id bigserial", "[S009 serial-or-identity-column]" },
		{ "ALTER TABLE t ADD COLUMN id int GENERATED ALWAYS AS IDENTITY",
		  "[S009 serial-or-identity-column]" },
		{ "ALTER TABLE t ADD CONSTRAINT k UNIQUE (a)", "[S010 unique-without-index]" },
		{ "UPDATE t SET a = 1", "[S011 dml-in-sql-step]" },
		{ "DELETE FROM t WHERE a IS NULL", "[S011 dml-in-sql-step]" },
		{ "VACUUM FULL t", "[S012 table-rewrite]" },
		{ "CLUSTER t USING i", "[S012 table-rewrite]" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char text[512];
		struct pt_err e = { 4, 5, cases[i].want };

		snprintf(text, sizeof(text), PT_HEAD "  - {op: sql, sql: '%s'}\n", cases[i].sql);
		expect_findings(text, 1, &e);
	}
	/* what is done the safe way has no finding */
	expect_findings(PT_HEAD
			"  - {op: sql, sql: 'CREATE INDEX CONCURRENTLY i ON t (a)'}\n"
			"  - {op: sql, sql: 'ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) "
			"NOT VALID'}\n"
			"  - {op: sql, sql: 'ALTER TABLE t ADD CONSTRAINT k UNIQUE USING INDEX "
			"i'}\n"
			"  - {op: sql, sql: 'COMMENT ON TABLE t IS $$x$$'}\n"
			"  - {op: sql, sql: 'ALTER TABLE t ADD COLUMN b timestamptz DEFAULT "
			"now()'}\n",
			0, NULL);
}

static void
test_plan_lint__allow_is_a_note_with_its_reason(void **state)
{
	struct plan *p = pt_parse_ok("lint.yaml", PT_HEAD
				     "  - op: sql\n    sql: TRUNCATE scratch\n    allow:\n"
				     "      - {rule: S008, reason: scratch is refilled nightly}\n"
				     "      - {rule: rename, reason: no rename here}\n");
	struct diags d = DIAGS_INIT;

	(void)state;
	/* the allowed finding is said, as a note; the allow that silences nothing warns */
	assert_int_equal(plan_lint(p, &d), 1);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.v[0].level, DIAG_NOTE);
	assert_non_null(strstr(d.v[0].msg, "[S008 truncate] allowed: scratch is refilled nightly"));
	assert_int_equal(d.v[1].level, DIAG_WARNING);
	assert_non_null(strstr(d.v[1].msg, "allow: rule S006 (rename) has no finding"));
	assert_int_equal(d.v[1].line, 8);
	diags_clear(&d);
	plan_free(p);
	pt_expect_error("lint.yaml",
			PT_HEAD "  - {op: sql, sql: TRUNCATE t, allow: [{rule: S008}]}\n", 4, 40,
			"allow: missing field 'reason'");
	pt_expect_error("lint.yaml",
			PT_HEAD
			"  - {op: sql, sql: TRUNCATE t, allow: [{rule: S999, reason: x}]}\n",
			4, 47, "allow: rule: expected a rule id");
}

static void
test_plan_lint__plan_json_shows_findings(void **state)
{
	struct plan *p =
	    pt_parse_ok("lint.yaml",
			PT_HEAD "  - {op: sql, sql: 'CREATE INDEX i ON t (a)'}\n"
				"  - {op: sql, sql: 'TRUNCATE t', allow: [{rule: truncate, reason: "
				"scratch}]}\n");
	cJSON *j = plan_to_json(p);
	cJSON *steps =
	    cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "waves"), 0), "steps");
	cJSON *f0 =
	    cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(steps, 0), "findings"), 0);
	cJSON *f1 =
	    cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(steps, 1), "findings"), 0);

	(void)state;
	assert_non_null(f0);
	assert_string_equal(cJSON_GetObjectItem(f0, "rule")->valuestring, "S001");
	assert_string_equal(cJSON_GetObjectItem(f0, "name")->valuestring, "index-not-concurrent");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(f0, "allowed")));
	assert_non_null(f1);
	assert_string_equal(cJSON_GetObjectItem(f1, "rule")->valuestring, "S008");
	assert_string_equal(cJSON_GetObjectItem(f1, "allowed")->valuestring, "scratch");
	cJSON_Delete(j);
	plan_free(p);
}

static void
test_plan_lint__unknown_sql_statement(void **state)
{
	static const struct pt_err e[] = {
		{ 4, 5,
		  "sql: the planner does not know what a DO block does; it is held to "
		  "AccessExclusiveLock" },
	};

	(void)state;
	expect_findings(PT_HEAD "  - {op: sql, sql: 'DO $$BEGIN NULL; END$$'}\n", 1, e);
}

static void
test_plan_lint__findings_add_to_existing_diags(void **state)
{
	struct plan *p = pt_parse_ok("lint.yaml", PT_HEAD "  - {op: sql, sql: 'TRUNCATE t'}\n");
	struct diags d = DIAGS_INIT;

	(void)state;
	diags_add(&d, DIAG_WARNING, "other.yaml", 1, 1, "earlier");
	assert_int_equal(plan_lint(p, &d), 1);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.nwarnings, 2);
	assert_int_equal(plan_lint(p, &d), 1);
	assert_int_equal(d.nwarnings, 3);
	diags_clear(&d);
	plan_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_lint__clean_plan_has_none),
		cmocka_unit_test(test_plan_lint__capitals_in_identifiers),
		cmocka_unit_test(test_plan_lint__not_null_add_column_without_default),
		cmocka_unit_test(test_plan_lint__set_not_null_without_validated_check),
		cmocka_unit_test(test_plan_lint__set_not_null_before_its_validation),
		cmocka_unit_test(test_plan_lint__set_not_null_after_validation_on_other_table),
		cmocka_unit_test(test_plan_lint__validated_foreign_key_does_not_prove_not_null),
		cmocka_unit_test(test_plan_lint__serial_add_column),
		cmocka_unit_test(test_plan_lint__sql_rules),
		cmocka_unit_test(test_plan_lint__allow_is_a_note_with_its_reason),
		cmocka_unit_test(test_plan_lint__unknown_sql_statement),
		cmocka_unit_test(test_plan_lint__plan_json_shows_findings),
		cmocka_unit_test(test_plan_lint__findings_add_to_existing_diags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
