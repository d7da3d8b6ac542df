/*
 * Every op: the statement it sends (identifiers quoted), its hazard class,
 * wave, how the executor runs it, the strongest lock it may take and the
 * checks computed before and after it; the author's checks come after those.
 */
#include "plan_test.h"

/* A flat plan of one step (written after "  - "); the step's only instance. */
static struct plan *
one_step(const char *step, enum plan_wave w, struct plan_step **out)
{
	char text[2048];
	struct plan *p;

	snprintf(text, sizeof(text), PT_HEAD "  - %s\n", step);
	p = pt_parse_ok("ops.yaml", text);
	assert_int_equal(p->nsteps, 1);
	assert_int_equal(p->waves[w].nsteps, 1);
	*out = pt_step(p, w, 0);
	assert_int_equal((*out)->wave, w);
	assert_int_equal((*out)->index, 0);
	return p;
}

static void
test_plan_ops__create_view(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: create_view, name: app.active_employee, "
				  "sql: 'SELECT id FROM employee WHERE active;'}",
				  WAVE_EXPAND, &s);

	(void)state;
	assert_int_equal(s->op, OP_CREATE_VIEW);
	assert_string_equal(s->stmt,
			    "CREATE VIEW \"app\".\"active_employee\" AS SELECT id FROM employee "
			    "WHERE active");
	assert_int_equal(s->hazard, H0);
	assert_int_equal(s->exec, EXEC_TX);
	assert_int_equal(s->ob.lock_class_max, LOCK_ACCESS_SHARE);
	assert_false(s->ob.may_rewrite);
	pt_assert_strv(&s->ob.prechecks,
		       PT_STRV("NOT taskslaps.view_exists('app.active_employee')"));
	pt_assert_strv(&s->ob.postchecks, PT_STRV("taskslaps.view_exists('app.active_employee')"));
	assert_int_equal(p->max_hazard, H0);
	plan_free(p);
}

static void
test_plan_ops__create_table(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step(
	    "{op: create_table, table: app.coffee, primary_key: [id, kind], columns: ["
	    "{name: id, type: bigint, nullable: false}, "
	    "{name: kind, type: 'character varying(40)', nullable: false, default: \"it's\"}, "
	    "{name: cups, type: 'numeric(5, 2)', default: 1.50}, "
	    "{name: tags, type: 'text[]', default: null}, "
	    "{name: hot, type: boolean, default: true}]}",
	    WAVE_EXPAND, &s);

	(void)state;
	assert_string_equal(s->stmt,
			    "CREATE TABLE \"app\".\"coffee\" (\"id\" bigint NOT NULL, "
			    "\"kind\" character varying(40) NOT NULL DEFAULT 'it''s', "
			    "\"cups\" numeric(5, 2) DEFAULT 1.50, \"tags\" text[] DEFAULT NULL, "
			    "\"hot\" boolean DEFAULT true, PRIMARY KEY (\"id\", \"kind\"))");
	assert_int_equal(s->hazard, H1);
	assert_int_equal(s->exec, EXEC_TX);
	assert_int_equal(s->ob.lock_class_max, LOCK_ACCESS_SHARE);
	pt_assert_strv(&s->ob.prechecks, PT_STRV("NOT taskslaps.table_exists('app.coffee')"));
	pt_assert_strv(&s->ob.postchecks, PT_STRV("taskslaps.table_exists('app.coffee')",
						  "taskslaps.column_exists('app.coffee', 'id')",
						  "taskslaps.column_exists('app.coffee', 'kind')",
						  "taskslaps.column_exists('app.coffee', 'cups')",
						  "taskslaps.column_exists('app.coffee', 'tags')",
						  "taskslaps.column_exists('app.coffee', 'hot')"));
	assert_int_equal(s->touched.n, 0);
	plan_free(p);
}

static void
test_plan_ops__add_column_nullable_is_h1(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: add_column, table: employee, name: coffee_dependency, "
				  "type: numeric, nullable: true}",
				  WAVE_EXPAND, &s);

	(void)state;
	assert_string_equal(s->stmt,
			    "ALTER TABLE \"employee\" ADD COLUMN \"coffee_dependency\" numeric");
	assert_int_equal(s->hazard, H1);
	assert_int_equal(s->exec, EXEC_TX);
	assert_int_equal(s->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	assert_false(s->ob.may_rewrite);
	pt_assert_strv(&s->ob.prechecks,
		       PT_STRV("taskslaps.table_exists('employee')",
			       "NOT taskslaps.column_exists('employee', 'coffee_dependency')"));
	pt_assert_strv(&s->ob.postchecks,
		       PT_STRV("taskslaps.column_exists('employee', 'coffee_dependency')"));
	pt_assert_strv(&s->touched, PT_STRV("employee"));
	plan_free(p);
}

static void
test_plan_ops__add_column_nullable_defaults_to_true(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: add_column, table: employee, name: note, type: text, "
				  "default: 'a\\b'}",
				  WAVE_EXPAND, &s);

	(void)state;
	assert_true(s->nullable);
	/* a backslash makes an E'' literal, the backslash doubled */
	assert_string_equal(s->stmt,
			    "ALTER TABLE \"employee\" ADD COLUMN \"note\" text DEFAULT E'a\\\\b'");
	assert_int_equal(s->hazard, H1);
	plan_free(p);
}

static void
test_plan_ops__add_column_not_null_is_h2(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: add_column, table: app.employee, name: cups, "
				  "type: integer, nullable: false, default: 0}",
				  WAVE_EXPAND, &s);

	(void)state;
	assert_string_equal(s->stmt, "ALTER TABLE \"app\".\"employee\" ADD COLUMN \"cups\" integer "
				     "NOT NULL DEFAULT 0");
	assert_int_equal(s->hazard, H2);
	assert_int_equal(s->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&s->ob.prechecks,
		       PT_STRV("taskslaps.table_exists('app.employee')",
			       "NOT taskslaps.column_exists('app.employee', 'cups')"));
	pt_assert_strv(&s->ob.postchecks,
		       PT_STRV("taskslaps.column_exists('app.employee', 'cups')",
			       "taskslaps.column_not_null('app.employee', 'cups')"));
	assert_int_equal(p->max_hazard, H2);
	plan_free(p);
}

static void
test_plan_ops__add_column_serial_is_h3(void **state)
{
	static const char *const serials[] = { "serial", "bigserial", "smallserial", "SERIAL",
					       "serial8" };

	(void)state;
	for (size_t i = 0; i < sizeof(serials) / sizeof(*serials); i++) {
		char step[256];
		struct plan_step *s;
		struct plan *p;

		snprintf(step, sizeof(step),
			 "{op: add_column, table: employee, name: seq, type: %s}", serials[i]);
		p = one_step(step, WAVE_EXPAND, &s);
		assert_int_equal(s->hazard, H3);
		assert_non_null(strstr(s->hazard_reason, "rewrites"));
		assert_int_equal(p->max_hazard, H3);
		plan_free(p);
	}
}

static void
test_plan_ops__add_index_concurrently(void **state)
{
	struct plan_step *s;
	struct plan *p =
	    one_step("{op: add_index_concurrently, table: app.employee, "
		     "name: employee_email_idx, columns: [email, org_id], unique: true, "
		     "where: 'deleted_at IS NULL'}",
		     WAVE_EXPAND, &s);

	(void)state;
	assert_string_equal(s->stmt, "CREATE UNIQUE INDEX CONCURRENTLY \"employee_email_idx\" ON "
				     "\"app\".\"employee\" (\"email\", \"org_id\") WHERE "
				     "(deleted_at IS NULL)");
	assert_int_equal(s->hazard, H1);
	assert_int_equal(s->exec, EXEC_NONTX);
	assert_int_equal(s->ob.lock_class_max, LOCK_SHARE_UPDATE_EXCLUSIVE);
	pt_assert_strv(&s->ob.prechecks,
		       PT_STRV("taskslaps.table_exists('app.employee')",
			       "NOT taskslaps.index_exists('app.employee_email_idx')"));
	pt_assert_strv(&s->ob.postchecks,
		       PT_STRV("taskslaps.index_valid('app.employee_email_idx')"));
	pt_assert_strv(&s->touched, PT_STRV("app.employee"));
	plan_free(p);
}

static void
test_plan_ops__add_index_plain_with_comment_in_where(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: add_index_concurrently, table: employee, name: e_idx, "
				  "columns: [email], where: 'active -- only live rows'}",
				  WAVE_EXPAND, &s);

	(void)state;
	assert_false(s->unique);
	/* the closing parenthesis must not end up inside the -- comment */
	assert_string_equal(s->stmt, "CREATE INDEX CONCURRENTLY \"e_idx\" ON \"employee\" "
				     "(\"email\") WHERE (active -- only live rows\n)");
	plan_free(p);
}

static void
test_plan_ops__add_foreign_key_not_valid(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: add_foreign_key_not_valid, table: orders, "
				  "name: orders_customer_fk, columns: [customer_id, region], "
				  "ref_table: crm.customer, ref_columns: [id, region], "
				  "on_delete: set null}",
				  WAVE_EXPAND, &s);

	(void)state;
	assert_string_equal(
	    s->stmt, "ALTER TABLE \"orders\" ADD CONSTRAINT \"orders_customer_fk\" FOREIGN KEY "
		     "(\"customer_id\", \"region\") REFERENCES \"crm\".\"customer\" (\"id\", "
		     "\"region\") ON DELETE SET NULL NOT VALID");
	assert_int_equal(s->hazard, H1);
	assert_int_equal(s->exec, EXEC_TX);
	assert_int_equal(s->ob.lock_class_max, LOCK_SHARE_ROW_EXCLUSIVE);
	pt_assert_strv(&s->ob.prechecks,
		       PT_STRV("taskslaps.table_exists('orders')",
			       "taskslaps.table_exists('crm.customer')",
			       "NOT taskslaps.constraint_exists('orders', 'orders_customer_fk')"));
	pt_assert_strv(&s->ob.postchecks,
		       PT_STRV("taskslaps.constraint_exists('orders', 'orders_customer_fk')"));
	pt_assert_strv(&s->touched, PT_STRV("orders", "crm.customer"));
	plan_free(p);
}

static void
test_plan_ops__add_foreign_key_without_on_delete(void **state)
{
	struct plan_step *s;
	struct plan *p =
	    one_step("{op: add_foreign_key_not_valid, table: node, name: node_parent_fk, "
		     "columns: [parent_id], ref_table: node, ref_columns: [id]}",
		     WAVE_EXPAND, &s);

	(void)state;
	assert_string_equal(s->stmt,
			    "ALTER TABLE \"node\" ADD CONSTRAINT \"node_parent_fk\" FOREIGN "
			    "KEY (\"parent_id\") REFERENCES \"node\" (\"id\") NOT VALID");
	/* a self-reference touches the table once */
	pt_assert_strv(&s->touched, PT_STRV("node"));
	plan_free(p);
}

static void
test_plan_ops__add_check_not_valid(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: add_check_not_valid, table: employee, name: coffee_nonneg, "
				  "check: 'coffee_dependency >= 0'}",
				  WAVE_EXPAND, &s);

	(void)state;
	assert_string_equal(s->stmt, "ALTER TABLE \"employee\" ADD CONSTRAINT \"coffee_nonneg\" "
				     "CHECK (coffee_dependency >= 0) NOT VALID");
	assert_int_equal(s->hazard, H1);
	assert_int_equal(s->exec, EXEC_TX);
	assert_int_equal(s->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&s->ob.prechecks,
		       PT_STRV("taskslaps.table_exists('employee')",
			       "NOT taskslaps.constraint_exists('employee', 'coffee_nonneg')"));
	pt_assert_strv(&s->ob.postchecks,
		       PT_STRV("taskslaps.constraint_exists('employee', 'coffee_nonneg')"));
	plan_free(p);
}

static void
test_plan_ops__backfill_sql(void **state)
{
	struct plan_step *s;
	struct plan *p =
	    one_step("{op: backfill_sql, sql: 'UPDATE app.employee SET "
		     "coffee_dependency = 0, note = ''x;y'' WHERE coffee_dependency IS "
		     "NULL ;  '}",
		     WAVE_BACKFILL, &s);

	(void)state;
	/* the trailing ; and blanks are trimmed, the ; inside the string stays */
	assert_string_equal(s->stmt, "UPDATE app.employee SET coffee_dependency = 0, note = 'x;y' "
				     "WHERE coffee_dependency IS NULL");
	assert_string_equal(s->bf_table, "app.employee");
	assert_string_equal(s->bf_set, "coffee_dependency = 0, note = 'x;y'");
	assert_string_equal(s->bf_where, "coffee_dependency IS NULL");
	assert_int_equal(s->hazard, H2);
	assert_int_equal(s->exec, EXEC_BATCHED);
	assert_int_equal(s->ob.lock_class_max, LOCK_ROW_EXCLUSIVE);
	pt_assert_strv(&s->ob.prechecks, PT_STRV("taskslaps.table_exists('app.employee')"));
	pt_assert_strv(&s->ob.postchecks, PT_NONE);
	pt_assert_strv(&s->touched, PT_STRV("app.employee"));
	plan_free(p);
}

static void
test_plan_ops__backfill_without_where(void **state)
{
	struct plan_step *s;
	struct plan *p =
	    one_step("{op: backfill_sql, sql: 'UPDATE t SET a = (SELECT max(b) FROM u)'}",
		     WAVE_BACKFILL, &s);

	(void)state;
	assert_string_equal(s->bf_table, "t");
	assert_string_equal(s->bf_set, "a = (SELECT max(b) FROM u)");
	assert_null(s->bf_where);
	plan_free(p);
}

static void
test_plan_ops__validate_constraint(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: validate_constraint, table: employee, name: coffee_nonneg}",
				  WAVE_VALIDATE, &s);

	(void)state;
	assert_string_equal(s->stmt,
			    "ALTER TABLE \"employee\" VALIDATE CONSTRAINT \"coffee_nonneg\"");
	assert_int_equal(s->hazard, H3);
	assert_int_equal(s->exec, EXEC_TX);
	assert_int_equal(s->ob.lock_class_max, LOCK_SHARE_UPDATE_EXCLUSIVE);
	pt_assert_strv(&s->ob.prechecks,
		       PT_STRV("taskslaps.constraint_exists('employee', 'coffee_nonneg')",
			       "NOT taskslaps.constraint_valid('employee', 'coffee_nonneg')"));
	pt_assert_strv(&s->ob.postchecks,
		       PT_STRV("taskslaps.constraint_valid('employee', 'coffee_nonneg')"));
	plan_free(p);
}

static void
test_plan_ops__set_not_null(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: set_not_null, table: employee, column: coffee_dependency}",
				  WAVE_VALIDATE, &s);

	(void)state;
	assert_string_equal(s->stmt, "ALTER TABLE \"employee\" ALTER COLUMN \"coffee_dependency\" "
				     "SET NOT NULL");
	assert_int_equal(s->hazard, H3);
	assert_int_equal(s->exec, EXEC_TX);
	assert_int_equal(s->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&s->ob.prechecks,
		       PT_STRV("taskslaps.column_exists('employee', 'coffee_dependency')",
			       "NOT taskslaps.column_not_null('employee', 'coffee_dependency')"));
	pt_assert_strv(&s->ob.postchecks,
		       PT_STRV("taskslaps.column_not_null('employee', 'coffee_dependency')"));
	plan_free(p);
}

static void
test_plan_ops__drop_column(void **state)
{
	struct plan_step *s;
	struct plan *p =
	    one_step("{op: drop_column, table: employee, name: legacy_flag}", WAVE_CONTRACT, &s);

	(void)state;
	assert_string_equal(s->stmt, "ALTER TABLE \"employee\" DROP COLUMN \"legacy_flag\"");
	assert_int_equal(s->hazard, H3);
	assert_int_equal(s->exec, EXEC_TX);
	assert_int_equal(s->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&s->ob.prechecks,
		       PT_STRV("taskslaps.column_exists('employee', 'legacy_flag')"));
	pt_assert_strv(&s->ob.postchecks,
		       PT_STRV("NOT taskslaps.column_exists('employee', 'legacy_flag')"));
	plan_free(p);
}

static void
test_plan_ops__drop_index_concurrently(void **state)
{
	struct plan_step *s;
	struct plan *p =
	    one_step("{op: drop_index_concurrently, name: app.old_idx}", WAVE_CONTRACT, &s);

	(void)state;
	assert_string_equal(s->stmt, "DROP INDEX CONCURRENTLY \"app\".\"old_idx\"");
	assert_int_equal(s->hazard, H3);
	assert_int_equal(s->exec, EXEC_NONTX);
	assert_int_equal(s->ob.lock_class_max, LOCK_SHARE_UPDATE_EXCLUSIVE);
	pt_assert_strv(&s->ob.prechecks, PT_STRV("taskslaps.index_exists('app.old_idx')"));
	pt_assert_strv(&s->ob.postchecks, PT_STRV("NOT taskslaps.index_exists('app.old_idx')"));
	plan_free(p);
}

static void
test_plan_ops__drop_table(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: drop_table, table: legacy}", WAVE_CONTRACT, &s);

	(void)state;
	assert_string_equal(s->stmt, "DROP TABLE \"legacy\"");
	assert_int_equal(s->hazard, H3);
	assert_int_equal(s->exec, EXEC_TX);
	assert_int_equal(s->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&s->ob.prechecks, PT_STRV("taskslaps.table_exists('legacy')"));
	pt_assert_strv(&s->ob.postchecks, PT_STRV("NOT taskslaps.table_exists('legacy')"));
	plan_free(p);
}

static void
test_plan_ops__rename_column(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: rename_column, table: employee, from: coffee, "
				  "to: coffee_dependency}",
				  WAVE_CONTRACT, &s);

	(void)state;
	assert_string_equal(s->stmt, "ALTER TABLE \"employee\" RENAME COLUMN \"coffee\" TO "
				     "\"coffee_dependency\"");
	assert_int_equal(s->hazard, H3);
	assert_int_equal(s->exec, EXEC_TX);
	assert_int_equal(s->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	pt_assert_strv(&s->ob.prechecks,
		       PT_STRV("taskslaps.column_exists('employee', 'coffee')",
			       "NOT taskslaps.column_exists('employee', 'coffee_dependency')"));
	pt_assert_strv(&s->ob.postchecks,
		       PT_STRV("NOT taskslaps.column_exists('employee', 'coffee')",
			       "taskslaps.column_exists('employee', 'coffee_dependency')"));
	plan_free(p);
}

static void
test_plan_ops__rename_table(void **state)
{
	struct plan_step *s;
	struct plan *p =
	    one_step("{op: rename_table, from: app.staff, to: employee}", WAVE_CONTRACT, &s);

	(void)state;
	assert_string_equal(s->stmt, "ALTER TABLE \"app\".\"staff\" RENAME TO \"employee\"");
	assert_int_equal(s->hazard, H3);
	assert_int_equal(s->exec, EXEC_TX);
	assert_int_equal(s->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	/* the new name stays in the old one's schema */
	pt_assert_strv(&s->ob.prechecks, PT_STRV("taskslaps.table_exists('app.staff')",
						 "NOT taskslaps.table_exists('app.employee')"));
	pt_assert_strv(&s->ob.postchecks, PT_STRV("NOT taskslaps.table_exists('app.staff')",
						  "taskslaps.table_exists('app.employee')"));
	pt_assert_strv(&s->touched, PT_STRV("app.staff"));
	plan_free(p);
}

static void
test_plan_ops__sql_with_declared_lock(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: sql, sql: 'ALTER TABLE employee ALTER COLUMN cups SET "
				  "STATISTICS 500;', lock_class_max: share update exclusive}",
				  WAVE_CONTRACT, &s);

	(void)state;
	assert_string_equal(s->stmt, "ALTER TABLE employee ALTER COLUMN cups SET STATISTICS 500");
	/* derived from the parse tree: a planner setting, no rewrite */
	assert_int_equal(s->hazard, H1);
	assert_int_equal(s->exec, EXEC_TX);
	assert_int_equal(s->declared_lock, LOCK_SHARE_UPDATE_EXCLUSIVE);
	assert_int_equal(s->ob.lock_class_max, LOCK_SHARE_UPDATE_EXCLUSIVE);
	assert_false(s->ob.may_rewrite);
	pt_assert_strv(&s->ob.prechecks, PT_NONE);
	pt_assert_strv(&s->ob.postchecks, PT_NONE);
	plan_free(p);
}

static void
test_plan_ops__sql_lock_spellings(void **state)
{
	static const struct {
		const char *written;
		enum pg_lock lock;
	} cases[] = {
		{ "AccessShareLock", LOCK_ACCESS_SHARE },
		{ "ROW EXCLUSIVE", LOCK_ROW_EXCLUSIVE },
		{ "share_row_exclusive", LOCK_SHARE_ROW_EXCLUSIVE },
		{ "AccessExclusiveLock", LOCK_ACCESS_EXCLUSIVE },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char step[256];
		struct plan_step *s;
		struct plan *p;

		snprintf(step, sizeof(step), "{op: sql, sql: 'SELECT 1', lock_class_max: '%s'}",
			 cases[i].written);
		p = one_step(step, WAVE_CONTRACT, &s);
		assert_int_equal(s->ob.lock_class_max, cases[i].lock);
		plan_free(p);
	}
}

static void
test_plan_ops__sql_without_lock_is_held_to_derived_lock(void **state)
{
	struct plan_step *s;
	struct plan *p = one_step("{op: sql, sql: 'ANALYZE employee'}", WAVE_CONTRACT, &s);

	(void)state;
	assert_int_equal(s->declared_lock, LOCK_NONE);
	assert_int_equal(s->ob.lock_class_max, LOCK_SHARE_UPDATE_EXCLUSIVE);
	assert_int_equal(s->hazard, H1);
	plan_free(p);
	/* a statement the planner does not know is held to the strongest lock, H3 */
	p = one_step("{op: sql, sql: 'DO $$BEGIN NULL; END$$'}", WAVE_CONTRACT, &s);
	assert_int_equal(s->ob.lock_class_max, LOCK_ACCESS_EXCLUSIVE);
	assert_true(s->ob.may_rewrite);
	assert_int_equal(s->hazard, H3);
	assert_string_equal(s->hazard_reason, "the planner does not know what a DO block does");
	plan_free(p);
}

static void
test_plan_ops__sql_touched_tables(void **state)
{
	struct plan_step *s;
	struct plan *p;

	(void)state;
	/* the statement's own relation is a field, not a node: it counts too */
	p = one_step("{op: sql, sql: 'ALTER TABLE app.employee ADD COLUMN x int'}", WAVE_CONTRACT,
		     &s);
	pt_assert_strv(&s->touched, PT_STRV("app.employee"));
	assert_false(s->ob.may_rewrite);
	plan_free(p);
	p = one_step("{op: sql, sql: 'UPDATE t SET a = u.a FROM u WHERE u.id = t.id'}",
		     WAVE_CONTRACT, &s);
	pt_assert_strv(&s->touched, PT_STRV("t", "u"));
	plan_free(p);
	/* a rebuilt index gets a new relfilenode: REINDEX promises a rewrite */
	p = one_step("{op: sql, sql: 'REINDEX INDEX CONCURRENTLY i'}", WAVE_CONTRACT, &s);
	assert_true(s->ob.may_rewrite);
	plan_free(p);
}

static void
test_plan_ops__sql_promise_lower_than_derived(void **state)
{
	(void)state;
	pt_expect_error("ops.yaml",
			PT_HEAD "  - {op: sql, sql: 'CREATE INDEX i ON t (a)', lock_class_max: "
				"RowExclusiveLock}\n",
			4, 63,
			"lock_class_max: the statement takes ShareLock (builds an index without "
			"CONCURRENTLY: writes wait for the whole build), stronger than the "
			"RowExclusiveLock promised");
	pt_expect_error("ops.yaml",
			PT_HEAD "  - {op: sql, sql: 'TRUNCATE t', may_rewrite: false}\n", 4, 47,
			"may_rewrite: the statement may rewrite a table");
}

static void
test_plan_ops__user_checks_come_after_computed(void **state)
{
	struct plan_step *s;
	struct plan *p =
	    one_step("{op: add_column, table: employee, name: cups, type: int, "
		     "prechecks: ['(SELECT count(*) FROM employee) < 1000000', 'true'], "
		     "postchecks: ['NOT EXISTS (SELECT 1 FROM employee WHERE cups < 0)']}",
		     WAVE_EXPAND, &s);

	(void)state;
	pt_assert_strv(&s->ob.prechecks,
		       PT_STRV("taskslaps.table_exists('employee')",
			       "NOT taskslaps.column_exists('employee', 'cups')",
			       "(SELECT count(*) FROM employee) < 1000000", "true"));
	pt_assert_strv(&s->ob.postchecks,
		       PT_STRV("taskslaps.column_exists('employee', 'cups')",
			       "NOT EXISTS (SELECT 1 FROM employee WHERE cups < 0)"));
	plan_free(p);
}

static void
test_plan_ops__user_checks_on_backfill_and_sql(void **state)
{
	struct plan *p = pt_parse_ok(
	    "ops.yaml",
	    PT_HEAD "  - op: backfill_sql\n"
		    "    sql: UPDATE employee SET cups = 0 WHERE cups IS NULL\n"
		    "    postchecks: [\"NOT EXISTS (SELECT 1 FROM employee WHERE cups IS NULL)\"]\n"
		    "  - op: sql\n"
		    "    sql: ANALYZE employee\n"
		    "    prechecks: [\"taskslaps.table_exists('employee')\"]\n"
		    "    postchecks: []\n");
	struct plan_step *b = pt_step(p, WAVE_BACKFILL, 0), *q = pt_step(p, WAVE_CONTRACT, 0);

	(void)state;
	pt_assert_strv(&b->ob.prechecks, PT_STRV("taskslaps.table_exists('employee')"));
	pt_assert_strv(&b->ob.postchecks,
		       PT_STRV("NOT EXISTS (SELECT 1 FROM employee WHERE cups IS NULL)"));
	pt_assert_strv(&q->ob.prechecks, PT_STRV("taskslaps.table_exists('employee')"));
	pt_assert_strv(&q->ob.postchecks, PT_NONE);
	plan_free(p);
}

/* Quoting makes any identifier safe to paste; the reader refuses odd ones anyway. */
static void
test_plan_ops__identifiers_are_quoted_in_sql(void **state)
{
	struct plan_step *s;
	struct plan *p =
	    one_step("{op: drop_column, table: _Private.Employee_2, name: x1}", WAVE_CONTRACT, &s);

	(void)state;
	assert_string_equal(s->stmt, "ALTER TABLE \"_Private\".\"Employee_2\" DROP COLUMN \"x1\"");
	pt_assert_strv(&s->ob.prechecks,
		       PT_STRV("taskslaps.column_exists('_Private.Employee_2', 'x1')"));
	plan_free(p);
}

static void
test_plan_ops__flat_steps_sorted_into_waves(void **state)
{
	struct plan *p = pt_parse_ok("flat.yaml", PT_HEAD
				     "  - {op: drop_table, table: a}\n"			    /* 4 */
				     "  - {op: add_column, table: t, name: b, type: int}\n" /* 5 */
				     "  - {op: sql, sql: 'TRUNCATE x'}\n"		    /* 6 */
				     "  - {op: backfill_sql, sql: 'UPDATE t SET b = 1'}\n"  /* 7 */
				     "  - {op: add_column, table: t, name: c, type: int}\n" /* 8 */
				     "  - {op: sql, sql: 'TRUNCATE y', wave: expand}\n"	    /* 9 */
				     "  - {op: validate_constraint, table: t, name: k}\n"   /* 10 */
				     "  - {op: sql, sql: 'TRUNCATE z', wave: backfill}\n"   /* 11 */
				     "  - {op: set_not_null, table: t, column: b}\n");	    /* 12 */
	static const struct {
		enum plan_wave w;
		size_t i;
		enum plan_op op;
		unsigned line;
	} want[] = {
		{ WAVE_EXPAND, 0, OP_ADD_COLUMN, 5 },
		{ WAVE_EXPAND, 1, OP_ADD_COLUMN, 8 },
		{ WAVE_EXPAND, 2, OP_SQL, 9 },
		{ WAVE_BACKFILL, 0, OP_BACKFILL_SQL, 7 },
		{ WAVE_BACKFILL, 1, OP_SQL, 11 },
		{ WAVE_VALIDATE, 0, OP_VALIDATE_CONSTRAINT, 10 },
		{ WAVE_VALIDATE, 1, OP_SET_NOT_NULL, 12 },
		{ WAVE_CONTRACT, 0, OP_DROP_TABLE, 4 },
		{ WAVE_CONTRACT, 1, OP_SQL, 6 },
	};

	(void)state;
	assert_true(p->flat);
	assert_int_equal(p->nsteps, 9);
	assert_int_equal(p->waves[WAVE_EXPAND].nsteps, 3);
	assert_int_equal(p->waves[WAVE_BACKFILL].nsteps, 2);
	assert_int_equal(p->waves[WAVE_VALIDATE].nsteps, 2);
	assert_int_equal(p->waves[WAVE_CONTRACT].nsteps, 2);
	for (size_t k = 0; k < sizeof(want) / sizeof(*want); k++) {
		struct plan_step *s = pt_step(p, want[k].w, want[k].i);
		assert_int_equal(s->op, want[k].op);
		assert_int_equal(s->line, want[k].line);
		assert_int_equal(s->col, 5);
		assert_int_equal(s->wave, want[k].w);
		assert_int_equal(s->index, want[k].i);
	}
	assert_string_equal(pt_step(p, WAVE_EXPAND, 0)->name, "b");
	assert_string_equal(pt_step(p, WAVE_EXPAND, 1)->name, "c");
	/* every wave's hazard is its steps' highest; TRUNCATE is H3 wherever it goes */
	assert_int_equal(p->waves[WAVE_EXPAND].max_hazard, H3);
	assert_int_equal(p->waves[WAVE_BACKFILL].max_hazard, H3);
	assert_int_equal(p->max_hazard, H3);
	plan_free(p);
}

static void
test_plan_ops__flat_list_leaves_absent_waves_empty(void **state)
{
	struct plan *p =
	    pt_parse_ok("flat.yaml", PT_HEAD "  - {op: add_column, table: t, name: b, type: int}\n"
					     "  - {op: backfill_sql, sql: 'UPDATE t SET b = 1'}\n");

	(void)state;
	assert_true(p->waves[WAVE_EXPAND].present);
	assert_true(p->waves[WAVE_BACKFILL].present);
	assert_false(p->waves[WAVE_VALIDATE].present);
	assert_false(p->waves[WAVE_CONTRACT].present);
	assert_int_equal(p->waves[WAVE_EXPAND].max_hazard, H1);
	assert_int_equal(p->waves[WAVE_BACKFILL].max_hazard, H2);
	assert_int_equal(p->max_hazard, H2);
	plan_free(p);
}

static void
test_plan_ops__waves_keep_written_order_and_sql_wave(void **state)
{
	struct plan *p =
	    pt_parse_ok("waves.yaml", "title: t\nreason: r\nwaves:\n"
				      "  - name: expand\n"
				      "    steps:\n"
				      "      - {op: add_column, table: t, name: z, type: int}\n"
				      "      - {op: sql, sql: 'ANALYZE t'}\n"
				      "      - {op: add_column, table: t, name: a, type: int}\n"
				      "  - name: validate\n"
				      "    steps:\n"
				      "      - {op: sql, sql: 'ANALYZE u', wave: validate}\n");

	(void)state;
	assert_false(p->flat);
	assert_int_equal(p->nsteps, 4);
	assert_string_equal(pt_step(p, WAVE_EXPAND, 0)->name, "z");
	assert_int_equal(pt_step(p, WAVE_EXPAND, 1)->op, OP_SQL);
	assert_int_equal(pt_step(p, WAVE_EXPAND, 1)->wave, WAVE_EXPAND);
	assert_string_equal(pt_step(p, WAVE_EXPAND, 2)->name, "a");
	assert_int_equal(pt_step(p, WAVE_EXPAND, 2)->index, 2);
	assert_int_equal(pt_step(p, WAVE_VALIDATE, 0)->wave, WAVE_VALIDATE);
	assert_int_equal(pt_step(p, WAVE_VALIDATE, 0)->line, 11);
	assert_int_equal(pt_step(p, WAVE_VALIDATE, 0)->col, 9);
	assert_false(p->waves[WAVE_BACKFILL].present);
	assert_int_equal(p->waves[WAVE_VALIDATE].line, 9);
	assert_int_equal(p->waves[WAVE_VALIDATE].col, 5);
	plan_free(p);
}

static void
test_plan_ops__every_op_has_its_wave(void **state)
{
	static const enum plan_wave want[OP__COUNT] = {
		[OP_CREATE_VIEW] = WAVE_EXPAND,
		[OP_CREATE_TABLE] = WAVE_EXPAND,
		[OP_ADD_COLUMN] = WAVE_EXPAND,
		[OP_ADD_INDEX_CONCURRENTLY] = WAVE_EXPAND,
		[OP_ADD_FOREIGN_KEY_NOT_VALID] = WAVE_EXPAND,
		[OP_ADD_CHECK_NOT_VALID] = WAVE_EXPAND,
		[OP_BACKFILL_SQL] = WAVE_BACKFILL,
		[OP_VALIDATE_CONSTRAINT] = WAVE_VALIDATE,
		[OP_SET_NOT_NULL] = WAVE_VALIDATE,
		[OP_DROP_COLUMN] = WAVE_CONTRACT,
		[OP_DROP_INDEX_CONCURRENTLY] = WAVE_CONTRACT,
		[OP_DROP_TABLE] = WAVE_CONTRACT,
		[OP_RENAME_COLUMN] = WAVE_CONTRACT,
		[OP_RENAME_TABLE] = WAVE_CONTRACT,
		[OP_SQL] = WAVE_CONTRACT,
	};

	(void)state;
	for (int op = 0; op < OP__COUNT; op++) {
		assert_int_equal(plan_op_wave((enum plan_op)op), want[op]);
		assert_int_equal(plan_op_from_name(plan_op_name((enum plan_op)op)), op);
	}
	assert_int_equal(plan_op_from_name("add_columns"), -1);
	assert_int_equal(plan_wave_from_name("Expand"), -1);
	for (int w = 0; w < WAVE__COUNT; w++)
		assert_int_equal(plan_wave_from_name(plan_wave_name((enum plan_wave)w)), w);
	assert_string_equal(plan_hazard_name(H0), "H0");
	assert_string_equal(plan_hazard_name(H3), "H3");
	assert_string_equal(pg_lock_name(LOCK_SHARE_UPDATE_EXCLUSIVE), "ShareUpdateExclusiveLock");
	assert_int_equal(pg_lock_from_name("none"), -1);
	assert_int_equal(pg_lock_from_name("EXCLUSIVE"), LOCK_EXCLUSIVE);
	assert_int_equal(pg_lock_from_name("share"), LOCK_SHARE);
}

static void
test_plan_ops__ident_and_type_rules(void **state)
{
	char id63[64], id64[65];

	(void)state;
	memset(id63, 'a', 63);
	id63[63] = '\0';
	memset(id64, 'a', 64);
	id64[64] = '\0';
	assert_true(plan_ident_ok(id63, false));
	assert_false(plan_ident_ok(id64, false));
	assert_true(plan_ident_ok("_x9", false));
	assert_false(plan_ident_ok("9x", false));
	assert_false(plan_ident_ok("", false));
	assert_true(plan_ident_ok("s.t", true));
	assert_false(plan_ident_ok("s.t", false));
	assert_false(plan_ident_ok("a.b.c", true));
	assert_false(plan_ident_ok(".t", true));
	assert_false(plan_ident_ok("s.", true));

	assert_true(plan_type_ok("double precision"));
	assert_true(plan_type_ok("timestamp with time zone"));
	assert_true(plan_type_ok("numeric(10,2)"));
	assert_true(plan_type_ok("numeric(10, 2)"));
	assert_true(plan_type_ok("varchar(255)[]"));
	assert_true(plan_type_ok("public.citext"));
	assert_false(plan_type_ok(""));
	assert_false(plan_type_ok("text "));
	assert_false(plan_type_ok("double  precision"));
	assert_false(plan_type_ok("numeric()"));
	assert_false(plan_type_ok("numeric(a)"));
	assert_false(plan_type_ok("int[][]"));
	assert_false(plan_type_ok("int[3]"));
	assert_false(plan_type_ok("text; drop table t"));
	assert_false(plan_type_ok("int -- x"));
	assert_false(plan_type_ok("int/* x */"));
	assert_false(plan_type_ok("\"text\""));
	assert_false(plan_type_ok("text collate \"C\""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_ops__create_view),
		cmocka_unit_test(test_plan_ops__create_table),
		cmocka_unit_test(test_plan_ops__add_column_nullable_is_h1),
		cmocka_unit_test(test_plan_ops__add_column_nullable_defaults_to_true),
		cmocka_unit_test(test_plan_ops__add_column_not_null_is_h2),
		cmocka_unit_test(test_plan_ops__add_column_serial_is_h3),
		cmocka_unit_test(test_plan_ops__add_index_concurrently),
		cmocka_unit_test(test_plan_ops__add_index_plain_with_comment_in_where),
		cmocka_unit_test(test_plan_ops__add_foreign_key_not_valid),
		cmocka_unit_test(test_plan_ops__add_foreign_key_without_on_delete),
		cmocka_unit_test(test_plan_ops__add_check_not_valid),
		cmocka_unit_test(test_plan_ops__backfill_sql),
		cmocka_unit_test(test_plan_ops__backfill_without_where),
		cmocka_unit_test(test_plan_ops__validate_constraint),
		cmocka_unit_test(test_plan_ops__set_not_null),
		cmocka_unit_test(test_plan_ops__drop_column),
		cmocka_unit_test(test_plan_ops__drop_index_concurrently),
		cmocka_unit_test(test_plan_ops__drop_table),
		cmocka_unit_test(test_plan_ops__rename_column),
		cmocka_unit_test(test_plan_ops__rename_table),
		cmocka_unit_test(test_plan_ops__sql_with_declared_lock),
		cmocka_unit_test(test_plan_ops__sql_lock_spellings),
		cmocka_unit_test(test_plan_ops__sql_without_lock_is_held_to_derived_lock),
		cmocka_unit_test(test_plan_ops__sql_touched_tables),
		cmocka_unit_test(test_plan_ops__sql_promise_lower_than_derived),
		cmocka_unit_test(test_plan_ops__user_checks_come_after_computed),
		cmocka_unit_test(test_plan_ops__user_checks_on_backfill_and_sql),
		cmocka_unit_test(test_plan_ops__identifiers_are_quoted_in_sql),
		cmocka_unit_test(test_plan_ops__flat_steps_sorted_into_waves),
		cmocka_unit_test(test_plan_ops__flat_list_leaves_absent_waves_empty),
		cmocka_unit_test(test_plan_ops__waves_keep_written_order_and_sql_wave),
		cmocka_unit_test(test_plan_ops__every_op_has_its_wave),
		cmocka_unit_test(test_plan_ops__ident_and_type_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
