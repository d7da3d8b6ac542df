/*
 * Findings: what plan_lint warns about in a sound plan, each at its step's
 * line and column, and that a careful plan has none.
 */
#include "plan_test.h"

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
	    {4, 5,
	     "add_column: 'Employee' has capitals; identifiers are quoted as written, so "
	     "it is case-sensitive"},
	    {5, 5, "add_column: 'CoffeeCups' has capitals"},
	    {6, 5, "create_table: 'userId' has capitals"},
	    {7, 5, "add_index_concurrently: 'Email' has capitals"},
	    {8, 5, "add_foreign_key_not_valid: 'Customer' has capitals"},
	    {9, 5, "rename_column: 'OldName' has capitals"},
	    {10, 5, "rename_table: 'Staff' has capitals"},
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
	    {4, 5,
	     "add_column: NOT NULL without a default fails on a table that has rows; add "
	     "it nullable, backfill, then set_not_null"},
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
	    {4, 5,
	     "set_not_null: scans t under ACCESS EXCLUSIVE; add_check_not_valid (a IS NOT "
	     "NULL) and validate_constraint first make it instant"},
	};

	(void)state;
	expect_findings(PT_HEAD "  - {op: set_not_null, table: t, column: a}\n", 1, e);
}

static void
test_plan_lint__set_not_null_before_its_validation(void **state)
{
	static const struct pt_err e[] = {
	    {5, 5, "set_not_null: scans t under ACCESS EXCLUSIVE"},
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
	    {5, 5, "set_not_null: scans t under ACCESS EXCLUSIVE"},
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
	    {6, 5, "set_not_null: scans t under ACCESS EXCLUSIVE"},
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
	    {5, 5,
	     "add_column: bigserial rewrites the table under ACCESS EXCLUSIVE; add a "
	     "nullable integer column and fill it by backfill instead"},
	};

	(void)state;
	expect_findings(
	    PT_HEAD "  - {op: add_column, table: t, name: a, type: int}\n"
		    "  - {op: add_column, table: t, name: id2, type: bigserial, nullable: false}\n",
	    1, e);
}

static void
test_plan_lint__sql_without_lock_class_max(void **state)
{
	static const struct pt_err e[] = {
	    {4, 5, "sql: no lock_class_max; the step is held to AccessExclusiveLock"},
	};

	(void)state;
	expect_findings(PT_HEAD
			"  - {op: sql, sql: 'ANALYZE t'}\n"
			"  - {op: sql, sql: 'ANALYZE u', lock_class_max: ACCESS EXCLUSIVE}\n",
			1, e);
}

static void
test_plan_lint__findings_add_to_existing_diags(void **state)
{
	struct plan *p = pt_parse_ok("lint.yaml", PT_HEAD "  - {op: sql, sql: 'ANALYZE t'}\n");
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
	    cmocka_unit_test(test_plan_lint__sql_without_lock_class_max),
	    cmocka_unit_test(test_plan_lint__findings_add_to_existing_diags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
