/*
 * How every step is undone: the inverse the planner builds for each op (its
 * op, statement, hazard, lock, exec kind, checks and step_sha), the ops that
 * need nothing undone and the ones that cannot be, a revert_sql read and
 * analysed like the op's own sql (its errors at file:line:column), and the
 * inverse's statements read back by PostgreSQL's parser.
 */
#include "plan_test.h"

#include <cjson/cJSON.h>

#include "plan/plan_int.h"
#include "plan/plan_json.h"
#include "sql/sql.h"
#include "util/canon.h"

/* A flat plan of the given steps (each written after "  - "), parsed and planned (protected). */
static struct plan *
planned(const char *const *steps)
{
	char text[4096];
	size_t n = (size_t)snprintf(text, sizeof(text), PT_HEAD);
	struct plan_policy pol;
	struct plan *p;

	for (size_t i = 0; steps[i]; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "  - %s\n", steps[i]);
	assert_true(n < sizeof(text));
	p = pt_parse_ok("inv.yaml", text);
	plan_policy_default(&pol, MODE_PROTECTED);
	plan_apply_policy(p, &pol);
	return p;
}

/* The only step of a one-step plan, which must have an inverse; *pp to free. */
static const struct plan_step *
inverse_of_one(const char *step, struct plan **pp, const struct plan_step **fwd)
{
	const char *steps[] = { step, NULL };
	struct plan *p = planned(steps);
	const struct plan_step *s = NULL;

	for (int w = 0; w < WAVE__COUNT; w++)
		if (p->waves[w].nsteps)
			s = &p->waves[w].steps[0];
	assert_non_null(s);
	assert_int_equal(s->undo, UNDO_INVERSE);
	assert_non_null(s->inverse);
	assert_null(s->undo_reason);
	/* an inverse is a step of its own: hashed apart, pointing at its step */
	assert_string_equal(s->inverse->inverse_of, s->sha);
	assert_int_equal(strlen(s->inverse->sha), 64);
	assert_string_not_equal(s->inverse->sha, s->sha);
	assert_int_equal(s->inverse->wave, s->wave);
	assert_int_equal(s->inverse->index, s->index);
	assert_int_equal(s->inverse->undo, UNDO_IRREVERSIBLE);
	assert_null(s->inverse->inverse);
	*pp = p;
	if (fwd)
		*fwd = s;
	return s->inverse;
}

/* The undo of the only step of a one-step plan, which must have no inverse. */
static void
assert_no_inverse(const char *step, enum plan_undo undo, const char *reason)
{
	const char *steps[] = { step, NULL };
	struct plan *p = planned(steps);

	for (int w = 0; w < WAVE__COUNT; w++) {
		if (!p->waves[w].nsteps)
			continue;
		assert_int_equal(p->waves[w].steps[0].undo, undo);
		assert_null(p->waves[w].steps[0].inverse);
		assert_non_null(p->waves[w].steps[0].undo_reason);
		if (!strstr(p->waves[w].steps[0].undo_reason, reason))
			print_message("reason: %s\n", p->waves[w].steps[0].undo_reason);
		assert_non_null(strstr(p->waves[w].steps[0].undo_reason, reason));
	}
	plan_free(p);
}

static void
test_plan_inverse__add_column_is_dropped(void **state)
{
	struct plan *p;
	const struct plan_step *v =
	    inverse_of_one("{op: add_column, table: app.employee, name: mug, type: int, "
			   "nullable: false, default: 0}",
			   &p, NULL);

	(void)state;
	assert_int_equal(v->op, OP_DROP_COLUMN);
	assert_string_equal(v->stmt, "ALTER TABLE \"app\".\"employee\" DROP COLUMN \"mug\"");
	assert_int_equal(v->hazard, H3);
	assert_string_equal(v->hazard_reason, "destroys data; readers of the column break");
	assert_int_equal(v->exec, EXEC_TX);
	assert_int_equal(v->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	assert_false(v->ob.may_rewrite);
	pt_assert_strv(&v->ob.prechecks, PT_STRV("taskslaps.column_exists('app.employee', 'mug')"));
	pt_assert_strv(&v->ob.postchecks,
		       PT_STRV("NOT taskslaps.column_exists('app.employee', 'mug')"));
	pt_assert_strv(&v->touched, PT_STRV("app.employee"));
	assert_int_equal(v->line, 4);
	plan_free(p);
}

static void
test_plan_inverse__create_table_is_dropped(void **state)
{
	struct plan *p;
	const struct plan_step *v =
	    inverse_of_one("{op: create_table, table: app.mug, primary_key: [id], columns: "
			   "[{name: id, type: bigint, nullable: false}, {name: size, type: int}]}",
			   &p, NULL);

	(void)state;
	assert_int_equal(v->op, OP_DROP_TABLE);
	assert_string_equal(v->stmt, "DROP TABLE \"app\".\"mug\"");
	assert_int_equal(v->hazard, H3);
	assert_int_equal(v->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&v->ob.prechecks, PT_STRV("taskslaps.table_exists('app.mug')"));
	pt_assert_strv(&v->ob.postchecks, PT_STRV("NOT taskslaps.table_exists('app.mug')"));
	plan_free(p);
}

static void
test_plan_inverse__create_view_is_dropped(void **state)
{
	struct plan *p;
	const struct plan_step *v = inverse_of_one(
	    "{op: create_view, name: app.active, sql: 'SELECT id FROM employee'}", &p, NULL);

	(void)state;
	assert_int_equal(v->op, OP_DROP_VIEW);
	assert_string_equal(plan_op_name(v->op), "drop_view");
	assert_string_equal(v->stmt, "DROP VIEW \"app\".\"active\"");
	assert_int_equal(v->hazard, H3);
	assert_string_equal(v->hazard_reason, "readers of the view break");
	assert_int_equal(v->exec, EXEC_TX);
	assert_int_equal(v->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&v->ob.prechecks, PT_STRV("taskslaps.view_exists('app.active')"));
	pt_assert_strv(&v->ob.postchecks, PT_STRV("NOT taskslaps.view_exists('app.active')"));
	assert_int_equal(v->touched.n, 0);
	plan_free(p);
}

static void
test_plan_inverse__index_is_dropped_concurrently_in_its_schema(void **state)
{
	struct plan *p;
	const struct plan_step *v = inverse_of_one(
	    "{op: add_index_concurrently, table: app.employee, name: employee_mug_idx, "
	    "columns: [mug], unique: true, where: 'mug > 0'}",
	    &p, NULL);

	(void)state;
	assert_int_equal(v->op, OP_DROP_INDEX_CONCURRENTLY);
	assert_string_equal(v->stmt, "DROP INDEX CONCURRENTLY \"app\".\"employee_mug_idx\"");
	assert_int_equal(v->hazard, H3);
	assert_int_equal(v->exec, EXEC_NONTX);
	assert_int_equal(v->ob.lock_class_max, LOCK_SHARE_UPDATE_EXCLUSIVE);
	pt_assert_strv(&v->ob.prechecks, PT_STRV("taskslaps.index_exists('app.employee_mug_idx')"));
	pt_assert_strv(&v->ob.postchecks,
		       PT_STRV("NOT taskslaps.index_exists('app.employee_mug_idx')"));
	plan_free(p);
}

static void
test_plan_inverse__foreign_key_is_dropped_from_both_tables(void **state)
{
	struct plan *p;
	const struct plan_step *v = inverse_of_one(
	    "{op: add_foreign_key_not_valid, table: employee, name: employee_team_fk, "
	    "columns: [team_id], ref_table: app.team, ref_columns: [id], on_delete: cascade}",
	    &p, NULL);

	(void)state;
	assert_int_equal(v->op, OP_DROP_CONSTRAINT);
	assert_string_equal(plan_op_name(v->op), "drop_constraint");
	assert_string_equal(v->stmt,
			    "ALTER TABLE \"employee\" DROP CONSTRAINT \"employee_team_fk\"");
	assert_int_equal(v->hazard, H1);
	assert_int_equal(v->exec, EXEC_TX);
	/* the triggers go from both tables, each under ACCESS EXCLUSIVE */
	assert_int_equal(v->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&v->touched, PT_STRV("employee", "app.team"));
	pt_assert_strv(&v->ob.prechecks,
		       PT_STRV("taskslaps.constraint_exists('employee', 'employee_team_fk')"));
	pt_assert_strv(&v->ob.postchecks,
		       PT_STRV("NOT taskslaps.constraint_exists('employee', 'employee_team_fk')"));
	plan_free(p);
}

static void
test_plan_inverse__check_is_dropped(void **state)
{
	struct plan *p;
	const struct plan_step *v = inverse_of_one(
	    "{op: add_check_not_valid, table: employee, name: mug_pos, check: 'mug > 0'}", &p,
	    NULL);

	(void)state;
	assert_int_equal(v->op, OP_DROP_CONSTRAINT);
	assert_string_equal(v->stmt, "ALTER TABLE \"employee\" DROP CONSTRAINT \"mug_pos\"");
	assert_int_equal(v->hazard, H1);
	assert_int_equal(v->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&v->touched, PT_STRV("employee"));
	pt_assert_strv(&v->ob.prechecks,
		       PT_STRV("taskslaps.constraint_exists('employee', 'mug_pos')"));
	pt_assert_strv(&v->ob.postchecks,
		       PT_STRV("NOT taskslaps.constraint_exists('employee', 'mug_pos')"));
	plan_free(p);
}

static void
test_plan_inverse__set_not_null_is_dropped(void **state)
{
	struct plan *p;
	const struct plan_step *v =
	    inverse_of_one("{op: set_not_null, table: app.employee, column: email}", &p, NULL);

	(void)state;
	assert_int_equal(v->op, OP_DROP_NOT_NULL);
	assert_string_equal(plan_op_name(v->op), "drop_not_null");
	assert_string_equal(
	    v->stmt, "ALTER TABLE \"app\".\"employee\" ALTER COLUMN \"email\" DROP NOT NULL");
	assert_int_equal(v->hazard, H1);
	assert_int_equal(v->exec, EXEC_TX);
	assert_int_equal(v->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&v->ob.prechecks,
		       PT_STRV("taskslaps.column_not_null('app.employee', 'email')"));
	pt_assert_strv(&v->ob.postchecks,
		       PT_STRV("taskslaps.column_exists('app.employee', 'email')",
			       "NOT taskslaps.column_not_null('app.employee', 'email')"));
	plan_free(p);
}

static void
test_plan_inverse__renames_go_back(void **state)
{
	struct plan *p;
	const struct plan_step *v = inverse_of_one(
	    "{op: rename_column, table: app.employee, from: email, to: email_address}", &p, NULL);

	(void)state;
	assert_int_equal(v->op, OP_RENAME_COLUMN);
	assert_string_equal(v->stmt, "ALTER TABLE \"app\".\"employee\" RENAME COLUMN "
				     "\"email_address\" TO \"email\"");
	assert_int_equal(v->hazard, H3);
	assert_int_equal(v->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&v->ob.prechecks,
		       PT_STRV("taskslaps.column_exists('app.employee', 'email_address')",
			       "NOT taskslaps.column_exists('app.employee', 'email')"));
	pt_assert_strv(&v->ob.postchecks,
		       PT_STRV("NOT taskslaps.column_exists('app.employee', 'email_address')",
			       "taskslaps.column_exists('app.employee', 'email')"));
	plan_free(p);

	/* the table stays in its schema: back from app.squad to team */
	v = inverse_of_one("{op: rename_table, from: app.team, to: squad}", &p, NULL);
	assert_int_equal(v->op, OP_RENAME_TABLE);
	assert_string_equal(v->stmt, "ALTER TABLE \"app\".\"squad\" RENAME TO \"team\"");
	assert_int_equal(v->hazard, H3);
	assert_int_equal(v->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&v->ob.prechecks, PT_STRV("taskslaps.table_exists('app.squad')",
						 "NOT taskslaps.table_exists('app.team')"));
	pt_assert_strv(&v->ob.postchecks, PT_STRV("NOT taskslaps.table_exists('app.squad')",
						  "taskslaps.table_exists('app.team')"));
	pt_assert_strv(&v->touched, PT_STRV("app.squad"));
	plan_free(p);

	v = inverse_of_one("{op: rename_table, from: team, to: squad}", &p, NULL);
	assert_string_equal(v->stmt, "ALTER TABLE \"squad\" RENAME TO \"team\"");
	plan_free(p);
}

static void
test_plan_inverse__validate_has_nothing_to_undo(void **state)
{
	(void)state;
	assert_no_inverse("{op: validate_constraint, table: employee, name: mug_pos}", UNDO_NOTHING,
			  "nothing to undo: validating changed no row");
}

static void
test_plan_inverse__destroying_ops_are_irreversible(void **state)
{
	(void)state;
	assert_no_inverse("{op: drop_column, table: employee, name: legacy}", UNDO_IRREVERSIBLE,
			  "irreversible: the column and its data are gone");
	assert_no_inverse("{op: drop_table, table: app.old}", UNDO_IRREVERSIBLE,
			  "irreversible: the table and its rows are gone");
	assert_no_inverse("{op: drop_index_concurrently, name: app.old_idx}", UNDO_IRREVERSIBLE,
			  "irreversible: the index's definition is gone");
	assert_no_inverse("{op: sql, sql: 'ANALYZE employee'}", UNDO_IRREVERSIBLE,
			  "irreversible: an sql step is undone only by its revert_sql");
}

static void
test_plan_inverse__backfill_without_revert_leaves_the_data(void **state)
{
	/* the column it fills is not the plan's: the data stays, and a revert_sql is suggested */
	(void)state;
	assert_no_inverse("{op: backfill_sql, sql: "
			  "'UPDATE employee SET mug = 0 WHERE mug IS NULL'}",
			  UNDO_NOTHING,
			  "data left as is: the rows keep what the backfill wrote (a revert_sql "
			  "would undo it)");
}

/* The backfill's undo_reason in a plan of the given steps; the backfill is the only one. */
static void
assert_backfill_reason(const char *const *steps, const char *want)
{
	struct plan *p = planned(steps);
	const struct plan_step *b = pt_step(p, WAVE_BACKFILL, 0);

	assert_int_equal(b->undo, UNDO_NOTHING);
	if (strcmp(b->undo_reason, want) != 0)
		print_message("reason: %s\n", b->undo_reason);
	assert_string_equal(b->undo_reason, want);
	plan_free(p);
}

static void
test_plan_inverse__backfill_of_a_column_the_plan_adds_is_harmless(void **state)
{
	const char *by_column[] = {
		"{op: add_column, table: app.employee, name: mug, type: int}",
		"{op: add_column, table: app.employee, name: cup, type: int}",
		"{op: backfill_sql, sql: 'UPDATE app.employee SET mug = 0, cup = 1 WHERE mug IS "
		"NULL'}",
		NULL
	};
	const char *by_table[] = {
		"{op: create_table, table: mug, columns: [{name: id, type: int}, "
		"{name: size, type: int}], primary_key: [id]}",
		"{op: add_column, table: mug, name: hot, type: boolean}",
		"{op: backfill_sql, sql: 'UPDATE mug SET size = 1, hot = true'}", NULL
	};
	/* one of its columns is older than the plan: that data would stay */
	const char *partly[] = {
		"{op: add_column, table: employee, name: mug, type: int}",
		"{op: backfill_sql, sql: 'UPDATE employee SET mug = 0, email = lower(email)'}", NULL
	};
	/* the same column name on another table does not count */
	const char *other_table[] = { "{op: add_column, table: team, name: mug, type: int}",
				      "{op: backfill_sql, sql: 'UPDATE employee SET mug = 0'}",
				      NULL };
	const char *stays = "data left as is: the rows keep what the backfill wrote (a revert_sql "
			    "would undo it)";

	(void)state;
	assert_backfill_reason(by_column, "data left as is: harmless, the inverse of the "
					  "add_column at line 4 drops the column it filled");
	assert_backfill_reason(by_table, "data left as is: harmless, the inverse of the "
					 "create_table at line 4 drops the table it filled");
	assert_backfill_reason(partly, stays);
	assert_backfill_reason(other_table, stays);
}

static void
test_plan_inverse__backfill_revert_sql_runs_in_batches(void **state)
{
	struct plan *p;
	const struct plan_step *s;
	const struct plan_step *v = inverse_of_one(
	    "{op: backfill_sql, sql: 'UPDATE app.employee SET mug = 0 WHERE mug IS NULL', "
	    "revert_sql: 'UPDATE app.employee SET mug = NULL WHERE mug = 0;', "
	    "limits: {batch_size: 50, rows_per_second: 10}}",
	    &p, &s);

	(void)state;
	assert_int_equal(v->op, OP_BACKFILL_SQL);
	/* kept as written, without its ; */
	assert_string_equal(v->sql, "UPDATE app.employee SET mug = NULL WHERE mug = 0");
	assert_string_equal(v->stmt, v->sql);
	assert_string_equal(v->bf_table, "app.employee");
	assert_string_equal(v->bf_set, "mug = NULL");
	assert_string_equal(v->bf_where, "mug = 0");
	assert_int_equal(v->exec, EXEC_BATCHED);
	assert_int_equal(v->hazard, H2);
	assert_int_equal(v->ob.lock_class_max, LOCK_ROW_EXCLUSIVE);
	pt_assert_strv(&v->ob.prechecks, PT_STRV("taskslaps.table_exists('app.employee')"));
	assert_int_equal(v->ob.postchecks.n, 0);
	/* the step's limits are its inverse's */
	assert_int_equal(v->ob.batch_size, 50);
	assert_int_equal(v->ob.rows_per_second, 10);
	assert_int_equal(v->ob.max_stmt_ms, 0);
	/* the revert_sql is where the inverse is */
	assert_int_equal(v->line, 4);
	assert_true(v->col > s->col);
	plan_free(p);
}

static void
test_plan_inverse__sql_revert_sql_is_analysed(void **state)
{
	struct plan *p;
	const struct plan_step *v =
	    inverse_of_one("{op: sql, "
			   "sql: 'CREATE INDEX CONCURRENTLY mug_idx ON app.employee (mug)', "
			   "revert_sql: 'DROP INDEX CONCURRENTLY app.mug_idx'}",
			   &p, NULL);

	(void)state;
	assert_int_equal(v->op, OP_SQL);
	assert_string_equal(v->stmt, "DROP INDEX CONCURRENTLY app.mug_idx");
	assert_true(v->eff.known);
	assert_int_equal(v->hazard, H3);
	assert_string_equal(v->hazard_reason,
			    "queries that use the index slow down or change plans");
	assert_int_equal(v->exec, EXEC_NONTX);
	assert_int_equal(v->ob.lock_class_max, LOCK_SHARE_UPDATE_EXCLUSIVE);
	/* CONCURRENTLY is not rolled back: computed checks let a retry find the index */
	assert_int_equal(v->ob.prechecks.n, 1);
	assert_string_equal(v->ob.prechecks.v[0], "taskslaps.index_exists('app.mug_idx')");
	assert_int_equal(v->ob.postchecks.n, 1);
	assert_string_equal(v->ob.postchecks.v[0], "NOT taskslaps.index_exists('app.mug_idx')");
	plan_free(p);

	v = inverse_of_one("{op: sql, sql: \"COMMENT ON TABLE app.employee IS 'x'\", "
			   "revert_sql: 'COMMENT ON TABLE app.employee IS NULL'}",
			   &p, NULL);
	assert_int_equal(v->hazard, H0);
	assert_int_equal(v->exec, EXEC_TX);
	assert_int_equal(v->ob.lock_class_max, LOCK_SHARE_UPDATE_EXCLUSIVE);
	plan_free(p);

	v = inverse_of_one("{op: sql, "
			   "sql: 'ALTER TABLE app.employee ALTER COLUMN mug SET DEFAULT 1', "
			   "revert_sql: 'ALTER TABLE app.employee ALTER COLUMN mug DROP DEFAULT'}",
			   &p, NULL);
	assert_int_equal(v->hazard, H1);
	assert_int_equal(v->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	assert_false(v->ob.may_rewrite);
	plan_free(p);

	/* the tables it names are the ones whose rewrite is watched */
	v = inverse_of_one("{op: sql, sql: 'ANALYZE app.employee', "
			   "revert_sql: 'LOCK TABLE app.employee IN SHARE MODE'}",
			   &p, NULL);
	assert_int_equal(v->hazard, H3);
	assert_int_equal(v->ob.lock_class_max, LOCK_SHARE);
	pt_assert_strv(&v->touched, PT_STRV("app.employee"));
	plan_free(p);

	/* a statement the planner does not know is H3 under ACCESS EXCLUSIVE, may rewrite */
	v = inverse_of_one("{op: sql, sql: 'CREATE EXTENSION pgcrypto', "
			   "revert_sql: 'DO $$ BEGIN NULL; END $$'}",
			   &p, NULL);
	assert_false(v->eff.known);
	assert_int_equal(v->hazard, H3);
	assert_int_equal(v->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	assert_true(v->ob.may_rewrite);
	plan_free(p);
}

static void
test_plan_inverse__revert_sql_errors_point_into_the_file(void **state)
{
	(void)state;
	/* a syntax error: the value's position, and the character inside the SQL */
	pt_expect_error("r.yaml",
			PT_HEAD "  - op: backfill_sql\n"
				"    sql: UPDATE t SET a = 1\n"
				"    revert_sql: UPDATE t SET a = NULL WHERE (a = 1\n",
			6, 17, "revert_sql: syntax error at end of input (at character 35");
	pt_expect_error("r.yaml",
			PT_HEAD "  - op: sql\n"
				"    sql: ANALYZE t\n"
				"    revert_sql: SELEC 1\n",
			6, 17, "revert_sql: syntax error at or near \"SELEC\" (at character 1");
	/* a backfill's revert is an UPDATE, taken apart the same way */
	pt_expect_error("r.yaml",
			PT_HEAD "  - op: backfill_sql\n"
				"    sql: UPDATE t SET a = 1\n"
				"    revert_sql: DELETE FROM t\n",
			6, 17, "revert_sql: expected a single UPDATE statement");
	pt_expect_error("r.yaml",
			PT_HEAD "  - op: backfill_sql\n"
				"    sql: UPDATE t SET a = 1\n"
				"    revert_sql: UPDATE t SET a = u.a FROM u\n",
			6, 17, "revert_sql: expected UPDATE table SET ... [WHERE ...]");
	/* an sql step's revert is refused what its sql is refused */
	pt_expect_error("r.yaml",
			PT_HEAD "  - op: sql\n"
				"    sql: ANALYZE t\n"
				"    revert_sql: COMMIT\n",
			6, 17,
			"revert_sql: expected a statement, found transaction control ('COMMIT')");
	pt_expect_error("r.yaml",
			PT_HEAD "  - op: sql\n"
				"    sql: ANALYZE t\n"
				"    revert_sql: \"SELECT set_config('x.y', 'x', false)\"\n",
			6, 17,
			"revert_sql: expected a statement that leaves the session as it was");
	pt_expect_error("r.yaml",
			PT_HEAD "  - op: sql\n"
				"    sql: ANALYZE t\n"
				"    revert_sql: ANALYZE t; ANALYZE u\n",
			6, 17, "revert_sql:");
	pt_expect_error("r.yaml",
			PT_HEAD "  - op: sql\n"
				"    sql: ANALYZE t\n"
				"    revert_sql: [ANALYZE t]\n",
			6, 17, "revert_sql: expected an SQL statement, found a list");
	/* only backfill_sql and sql take one: the others have their inverse computed */
	pt_expect_error("r.yaml",
			PT_HEAD "  - {op: add_column, table: t, name: a, type: int, "
				"revert_sql: 'ALTER TABLE t DROP COLUMN a'}\n",
			4, 52, "add_column: unknown field 'revert_sql'");
}

static void
test_plan_inverse__inverse_ops_cannot_be_written(void **state)
{
	(void)state;
	pt_expect_error("r.yaml", PT_HEAD "  - {op: drop_view, name: v}\n", 4, 10,
			"op: unknown op 'drop_view'");
	pt_expect_error("r.yaml", PT_HEAD "  - {op: drop_constraint, table: t, name: c}\n", 4, 10,
			"op: unknown op 'drop_constraint'");
	pt_expect_error("r.yaml", PT_HEAD "  - {op: drop_not_null, table: t, column: c}\n", 4, 10,
			"op: unknown op 'drop_not_null'");
	assert_int_equal(plan_op_from_name("drop_view"), -1);
	assert_string_equal(plan_op_name(OP_DROP_NOT_NULL), "drop_not_null");
	assert_string_equal(plan_op_name(OP__COUNT), "?");
	assert_string_equal(plan_op_name(OP__ALL), "?");
	assert_string_equal(plan_undo_name(UNDO_INVERSE), "inverse");
	assert_string_equal(plan_undo_name(UNDO_NOTHING), "nothing");
	assert_string_equal(plan_undo_name(UNDO_IRREVERSIBLE), "irreversible");
	assert_string_equal(plan_undo_name(UNDO_UNSET), "?");
}

/* The inverse's step_sha is the hash of {"inverse_of": step_sha, "step": its fields}. */
static void
test_plan_inverse__step_sha_is_pinned(void **state)
{
	struct plan *p;
	const struct plan_step *s;
	const struct plan_step *v = inverse_of_one(
	    "{op: add_column, table: app.t, name: a, type: int, limits: {max_lock_ms: 100}}", &p,
	    &s);
	char json[1024], want[65];
	cJSON *j;

	(void)state;
	snprintf(json, sizeof(json),
		 "{\"step\":{\"op\":\"drop_column\",\"table\":\"app.t\",\"name\":\"a\","
		 "\"prechecks\":[],\"postchecks\":[],\"limits\":{\"max_lock_ms\":100}},"
		 "\"inverse_of\":\"%s\"}",
		 s->sha);
	j = cJSON_Parse(json);
	assert_non_null(j);
	assert_int_equal(canon_sha256(j, want), 0);
	cJSON_Delete(j);
	assert_string_equal(v->sha, want);
	/* and it is not the sha the same op would have as a forward step */
	assert_int_equal(v->ob.max_lock_ms, 100);
	plan_free(p);
}

static void
test_plan_inverse__step_sha_follows_its_step(void **state)
{
	const char *a[] = { "{op: add_column, table: t, name: a, type: int}", NULL };
	const char *b[] = { "{op: add_column, table: t, name: a, type: bigint}", NULL };
	struct plan *p1 = planned(a), *p2 = planned(a), *p3 = planned(b);

	(void)state;
	/* the same step, the same inverse; another step (same inverse statement), another sha */
	assert_string_equal(pt_step(p1, WAVE_EXPAND, 0)->inverse->sha,
			    pt_step(p2, WAVE_EXPAND, 0)->inverse->sha);
	assert_string_equal(pt_step(p1, WAVE_EXPAND, 0)->inverse->stmt,
			    pt_step(p3, WAVE_EXPAND, 0)->inverse->stmt);
	assert_string_not_equal(pt_step(p1, WAVE_EXPAND, 0)->inverse->sha,
				pt_step(p3, WAVE_EXPAND, 0)->inverse->sha);
	plan_free(p1);
	plan_free(p2);
	plan_free(p3);
}

/* revert_sql is in the step's canonical form when written, and only then. */
static void
test_plan_inverse__revert_sql_is_hashed_only_when_written(void **state)
{
	const char *plain[] = { "{op: sql, sql: 'ANALYZE t'}", NULL };
	const char *with[] = { "{op: sql, sql: 'ANALYZE t', revert_sql: 'ANALYZE t'}", NULL };
	const char *other[] = { "{op: sql, sql: 'ANALYZE t', revert_sql: 'ANALYZE u'}", NULL };
	struct plan *p1 = planned(plain), *p2 = planned(with), *p3 = planned(other);
	const struct plan_step *s = pt_step(p1, WAVE_CONTRACT, 0);
	cJSON *j = plan_step_fields_json(s);
	char *txt = cJSON_PrintUnformatted(j);

	(void)state;
	assert_null(strstr(txt, "revert_sql"));
	free(txt);
	cJSON_Delete(j);
	j = plan_step_fields_json(pt_step(p2, WAVE_CONTRACT, 0));
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "revert_sql")),
			    "ANALYZE t");
	cJSON_Delete(j);
	/* an inverse's fields never carry one */
	j = plan_step_fields_json(pt_step(p2, WAVE_CONTRACT, 0)->inverse);
	assert_null(cJSON_GetObjectItem(j, "revert_sql"));
	cJSON_Delete(j);
	assert_string_not_equal(pt_step(p1, WAVE_CONTRACT, 0)->sha,
				pt_step(p2, WAVE_CONTRACT, 0)->sha);
	assert_string_not_equal(pt_step(p2, WAVE_CONTRACT, 0)->sha,
				pt_step(p3, WAVE_CONTRACT, 0)->sha);
	assert_string_not_equal(p1->checksum, p2->checksum);
	assert_string_not_equal(p2->checksum, p3->checksum);
	plan_free(p1);
	plan_free(p2);
	plan_free(p3);
}

/* A step of op with stmt must not read back as that op. */
static void
assert_shape_refused(struct plan_step *s, const char *stmt)
{
	struct sql_msg m;

	s->stmt = (char *)stmt;
	if (plan_shape_check(s, &m))
		print_message("read back as %s: %s\n", plan_op_name(s->op), stmt);
	assert_false(plan_shape_check(s, &m));
}

static void
test_plan_inverse__inverse_statements_are_read_back(void **state)
{
	const char *steps[] = {
		"{op: create_view, name: app.v, sql: 'SELECT 1'}",
		"{op: add_check_not_valid, table: app.t, name: c, check: 'a > 0'}",
		"{op: set_not_null, table: app.t, column: a}",
		"{op: create_table, table: app.n, columns: [{name: id, type: int}]}",
		"{op: add_index_concurrently, table: app.t, name: i, columns: [a]}",
		NULL
	};
	struct plan *p = planned(steps);
	struct plan_step v = *pt_step(p, WAVE_EXPAND, 0)->inverse;
	struct plan_step c = *pt_step(p, WAVE_EXPAND, 1)->inverse;
	struct plan_step nn = *pt_step(p, WAVE_VALIDATE, 0)->inverse;
	struct plan_step t = *pt_step(p, WAVE_EXPAND, 2)->inverse;
	struct plan_step x = *pt_step(p, WAVE_EXPAND, 3)->inverse;
	struct sql_msg m;

	(void)state;
	assert_true(plan_shape_check(&v, &m));
	assert_true(plan_shape_check(&c, &m));
	assert_true(plan_shape_check(&nn, &m));
	assert_true(plan_shape_check(&t, &m));
	assert_true(plan_shape_check(&x, &m));
	assert_shape_refused(&v, "DROP VIEW \"app\".\"other\"");
	assert_shape_refused(&v, "DROP VIEW \"v\"");
	assert_shape_refused(&v, "DROP VIEW \"app\".\"v\" CASCADE");
	assert_shape_refused(&v, "DROP VIEW IF EXISTS \"app\".\"v\"");
	assert_shape_refused(&v, "DROP VIEW \"app\".\"v\", \"app\".\"w\"");
	assert_shape_refused(&v, "DROP TABLE \"app\".\"v\"");
	assert_shape_refused(&c, "ALTER TABLE \"app\".\"t\" DROP CONSTRAINT \"c\" CASCADE");
	assert_shape_refused(&c, "ALTER TABLE \"app\".\"t\" DROP CONSTRAINT IF EXISTS \"c\"");
	assert_shape_refused(&c, "ALTER TABLE \"app\".\"t\" DROP CONSTRAINT \"d\"");
	assert_shape_refused(&c, "ALTER TABLE \"app\".\"u\" DROP CONSTRAINT \"c\"");
	assert_shape_refused(&c, "ALTER TABLE ONLY \"app\".\"t\" DROP CONSTRAINT \"c\"");
	assert_shape_refused(&c, "ALTER TABLE \"app\".\"t\" DROP CONSTRAINT \"c\", DROP "
				 "COLUMN \"a\"");
	assert_shape_refused(&nn, "ALTER TABLE \"app\".\"t\" ALTER COLUMN \"b\" DROP NOT NULL");
	assert_shape_refused(&nn, "ALTER TABLE \"app\".\"t\" ALTER COLUMN \"a\" SET NOT NULL");
	/* the forward drops are held to their names too */
	assert_shape_refused(&t, "DROP TABLE \"app\".\"other\"");
	assert_shape_refused(&t, "DROP TABLE \"n\"");
	assert_shape_refused(&x, "DROP INDEX CONCURRENTLY \"app\".\"j\"");
	plan_free(p);
}

/* A step's computed checks must each read back as one (check)::boolean, not only as many targets.
 */
static void
test_plan_inverse__checks_read_back_one_boolean_each(void **state)
{
	const char *steps[] = { "{op: add_column, table: app.t, name: a, type: int}", NULL };
	struct plan *p = planned(steps);
	struct plan_step s = *pt_step(p, WAVE_EXPAND, 0);
	char *good[] = { "taskslaps.table_exists('app.t')" };
	/* one target as a list, but an OR at the top of the guard: not a check */
	char *escaped[] = { "true\n)::boolean OR (false" };
	char *named[] = { "true\n)::boolean AS x, (true" };
	struct sql_msg m;

	(void)state;
	s.user_prechecks.n = 0;
	s.ob.prechecks = (struct plan_strv){ 1, good };
	assert_true(plan_shape_check(&s, &m));
	s.ob.prechecks = (struct plan_strv){ 1, escaped };
	assert_false(plan_shape_check(&s, &m));
	s.ob.prechecks = (struct plan_strv){ 1, named };
	assert_false(plan_shape_check(&s, &m));
	plan_free(p);
}

static void
test_plan_inverse__json_shows_the_undo_of_every_step(void **state)
{
	const char *steps[] = { "{op: add_column, table: t, name: a, type: int}",
				"{op: backfill_sql, sql: 'UPDATE t SET a = 1', "
				"revert_sql: 'UPDATE t SET a = NULL'}",
				"{op: validate_constraint, table: t, name: c}",
				"{op: drop_table, table: old}", NULL };
	struct plan *p = planned(steps);
	cJSON *j = plan_to_json(p), *waves = cJSON_GetObjectItem(j, "waves"), *s, *inv, *ob;

	(void)state;
	/* expand: add_column */
	s = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(waves, 0), "steps"), 0);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(s, "undo")), "inverse");
	assert_null(cJSON_GetObjectItem(s, "undo_reason"));
	inv = cJSON_GetObjectItem(s, "inverse");
	assert_non_null(inv);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(inv, "op")), "drop_column");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(inv, "sql")),
			    "ALTER TABLE \"t\" DROP COLUMN \"a\"");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(inv, "hazard")), "H3");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(inv, "inverse_of")),
			    cJSON_GetStringValue(cJSON_GetObjectItem(s, "step_sha")));
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(inv, "exec")), "transaction");
	assert_null(cJSON_GetObjectItem(inv, "undo"));
	assert_null(cJSON_GetObjectItem(inv, "index"));
	ob = cJSON_GetObjectItem(inv, "obligations");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(ob, "lock_class_max")),
			    "AccessExclusiveLock");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ob, "prechecks")), 1);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ob, "postchecks")), 1);
	/* backfill: its revert, batched */
	s = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(waves, 1), "steps"), 0);
	inv = cJSON_GetObjectItem(s, "inverse");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(inv, "exec")), "batched");
	assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(inv, "obligations"), "batch_size"));
	/* validate: nothing; drop_table: irreversible, and why */
	s = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(waves, 2), "steps"), 0);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(s, "undo")), "nothing");
	assert_null(cJSON_GetObjectItem(s, "inverse"));
	assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(s, "undo_reason")));
	s = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(waves, 3), "steps"), 0);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(s, "undo")), "irreversible");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(s, "undo_reason")),
			    "irreversible: the table and its rows are gone");
	cJSON_Delete(j);
	plan_free(p);
}

static void
test_plan_inverse__chaos_limits_reach_the_inverse(void **state)
{
	struct plan_policy pol;
	struct plan *p = pt_parse_ok("c.yaml", PT_HEAD "  - {op: add_column, table: t, name: a, "
						       "type: int}\n");

	(void)state;
	plan_policy_default(&pol, MODE_CHAOS);
	plan_apply_policy(p, &pol);
	assert_int_equal(pt_step(p, WAVE_EXPAND, 0)->inverse->ob.max_lock_ms, 50);
	assert_int_equal(pt_step(p, WAVE_EXPAND, 0)->inverse->ob.max_stmt_ms, 10000);
	plan_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_inverse__add_column_is_dropped),
		cmocka_unit_test(test_plan_inverse__create_table_is_dropped),
		cmocka_unit_test(test_plan_inverse__create_view_is_dropped),
		cmocka_unit_test(test_plan_inverse__index_is_dropped_concurrently_in_its_schema),
		cmocka_unit_test(test_plan_inverse__foreign_key_is_dropped_from_both_tables),
		cmocka_unit_test(test_plan_inverse__check_is_dropped),
		cmocka_unit_test(test_plan_inverse__set_not_null_is_dropped),
		cmocka_unit_test(test_plan_inverse__renames_go_back),
		cmocka_unit_test(test_plan_inverse__validate_has_nothing_to_undo),
		cmocka_unit_test(test_plan_inverse__destroying_ops_are_irreversible),
		cmocka_unit_test(test_plan_inverse__backfill_without_revert_leaves_the_data),
		cmocka_unit_test(test_plan_inverse__backfill_of_a_column_the_plan_adds_is_harmless),
		cmocka_unit_test(test_plan_inverse__backfill_revert_sql_runs_in_batches),
		cmocka_unit_test(test_plan_inverse__sql_revert_sql_is_analysed),
		cmocka_unit_test(test_plan_inverse__revert_sql_errors_point_into_the_file),
		cmocka_unit_test(test_plan_inverse__inverse_ops_cannot_be_written),
		cmocka_unit_test(test_plan_inverse__step_sha_is_pinned),
		cmocka_unit_test(test_plan_inverse__step_sha_follows_its_step),
		cmocka_unit_test(test_plan_inverse__revert_sql_is_hashed_only_when_written),
		cmocka_unit_test(test_plan_inverse__inverse_statements_are_read_back),
		cmocka_unit_test(test_plan_inverse__checks_read_back_one_boolean_each),
		cmocka_unit_test(test_plan_inverse__json_shows_the_undo_of_every_step),
		cmocka_unit_test(test_plan_inverse__chaos_limits_reach_the_inverse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
