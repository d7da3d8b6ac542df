/*
 * Bad plans, by what is wrong with their fields: each gives exactly one error,
 * at the line and column of the value (or key) at fault, saying what was
 * expected and what was found. Steps are written in block style, where a
 * value under a step's "    key: " starts at column 5 + strlen(key) + 2.
 */
#include "plan_test.h"

#define Y "x.yaml"

/* --- ops and fields ---------------------------------------------------- */

static void
test_plan_errors__unknown_op(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - op: add_colum\n    table: t\n", 4, 9,
			"op: unknown op 'add_colum' (expected one of: create_view, create_table,");
}

static void
test_plan_errors__op_missing(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - table: t\n", 4, 5,
			"step: missing field 'op' (one of: create_view,");
}

static void
test_plan_errors__op_not_a_string(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - op: [drop_table]\n    table: t\n", 4, 9,
			"op: expected one of: create_view");
	pt_expect_error(Y, PT_HEAD "  - op: [drop_table]\n    table: t\n", 4, 9, "; found a list");
}

static void
test_plan_errors__step_not_a_map(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - drop_table\n", 4, 5,
			"step: expected a map with an 'op' field, found the string 'drop_table'");
}

static void
test_plan_errors__missing_field(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - op: add_column\n    table: t\n    name: c\n", 4, 5,
			"add_column: missing field 'type'");
	/* in flow style the step starts at its brace */
	pt_expect_error(Y, PT_HEAD "  - {op: rename_column, table: t, to: b}\n", 4, 5,
			"rename_column: missing field 'from'");
}

static void
test_plan_errors__missing_fields_are_each_reported(void **state)
{
	static const struct pt_err e[] = {
		{ 4, 5, "add_foreign_key_not_valid: missing field 'columns'" },
		{ 4, 5, "add_foreign_key_not_valid: missing field 'ref_table'" },
		{ 4, 5, "add_foreign_key_not_valid: missing field 'ref_columns'" },
	};
	const char *text = PT_HEAD "  - {op: add_foreign_key_not_valid, table: t, name: fk}\n";

	(void)state;
	pt_expect_errors_n(Y, text, strlen(text), 3, e);
}

static void
test_plan_errors__string_where_bool(void **state)
{
	(void)state;
	pt_expect_error(Y,
			PT_HEAD "  - op: add_column\n    table: t\n    name: c\n    type: int\n"
				"    nullable: 'false'\n",
			8, 15,
			"nullable: expected a boolean (true or false), found the string 'false'");
	/* YAML 1.1's yes is a string in YAML 1.2's core schema */
	pt_expect_error(Y,
			PT_HEAD "  - op: add_index_concurrently\n    table: t\n    name: i\n"
				"    columns: [a]\n    unique: yes\n",
			8, 13,
			"unique: expected a boolean (true or false), found the string 'yes'");
}

static void
test_plan_errors__list_where_string(void **state)
{
	(void)state;
	pt_expect_error(
	    Y, PT_HEAD "  - op: drop_table\n    table: [employee]\n", 5, 12,
	    "table: expected a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 "
	    "bytes, optionally schema.name), found a list");
}

static void
test_plan_errors__map_where_list(void **state)
{
	(void)state;
	pt_expect_error(Y,
			PT_HEAD "  - op: add_index_concurrently\n    table: t\n    name: i\n"
				"    columns: {email: asc}\n",
			7, 14, "columns: expected a list of column names, found a map");
}

static void
test_plan_errors__string_where_list(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - op: drop_table\n    table: t\n    prechecks: 'x > 0'\n", 6,
			16,
			"prechecks: expected a list of SQL boolean expressions, found the string "
			"'x > 0'");
}

static void
test_plan_errors__number_where_string(void **state)
{
	(void)state;
	pt_expect_error(Y, "title: 5\nreason: r\nsteps: [{op: drop_table, table: t}]\n", 1, 8,
			"title: expected a non-empty string, found an integer (5)");
	pt_expect_error(Y, "title: t\nreason: ''\nsteps: [{op: drop_table, table: t}]\n", 2, 9,
			"reason: expected a non-empty string, found an empty string");
	pt_expect_error(Y, PT_HEAD "  - op: drop_column\n    table: t\n    name: 12\n", 6, 11,
			"name: expected a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 "
			"bytes), found an integer (12)");
	pt_expect_error(Y, PT_HEAD "  - op: sql\n    sql: 42\n", 5, 10,
			"sql: expected an SQL statement, found an integer (42)");
}

static void
test_plan_errors__default_not_a_constant(void **state)
{
	(void)state;
	pt_expect_error(
	    Y,
	    PT_HEAD "  - op: add_column\n    table: t\n    name: c\n    type: int\n"
		    "    default: [1]\n",
	    8, 14,
	    "default: expected a constant (a string, number, boolean or null), found a list");
}

static void
test_plan_errors__unknown_step_field(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - op: drop_table\n    table: t\n    cascade: true\n", 6, 5,
			"drop_table: unknown field 'cascade' (expected table, prechecks, "
			"postchecks, limits)");
	/* a field of another op is unknown too */
	pt_expect_error(Y,
			PT_HEAD "  - op: add_column\n    table: t\n    name: c\n    type: int\n"
				"    unique: true\n",
			8, 5, "add_column: unknown field 'unique'");
	/* rename_table names its source with from:, not table: */
	pt_expect_error(Y, PT_HEAD "  - {op: rename_table, from: a, to: b, table: a}\n", 4, 40,
			"rename_table: unknown field 'table' (expected from, to,");
}

static void
test_plan_errors__unknown_plan_field(void **state)
{
	(void)state;
	pt_expect_error(
	    Y, "title: t\nreason: r\nauthor: me\nsteps: [{op: drop_table, table: t}]\n", 3, 1,
	    "plan: unknown field 'author' (expected id, title, reason, on_failure, waves, steps, or revert and to_wave)");
}

static void
test_plan_errors__on_failure_unknown(void **state)
{
	(void)state;
	pt_expect_error(
	    Y, "title: t\nreason: r\non_failure: undo\nsteps: [{op: drop_table, table: t}]\n", 3,
	    13,
	    "on_failure: expected stop, rollback_wave or rollback_plan, found the string "
	    "'undo'");
}

/* Every irreversible step that a rollback may have to undo is named, at the step. */
static void
test_plan_errors__on_failure_irreversible_range(void **state)
{
	static const char plan[] = "title: t\n"
				   "reason: r\n"
				   "on_failure: rollback_plan\n"
				   "waves:\n"
				   "  - name: expand\n"
				   "    steps:\n"
				   "      - { op: add_column, table: t, name: c, type: int }\n"
				   "      - { op: sql, sql: 'ALTER TABLE t ADD COLUMN d int' }\n"
				   "  - name: contract\n"
				   "    steps:\n"
				   "      - { op: drop_column, table: t, name: a }\n"
				   "      - { op: drop_column, table: t, name: b }\n";
	static const struct pt_err errs[] = {
		{ 8, 9,
		  "sql: on_failure: rollback_plan (line 3) may have to undo this step, which "
		  "cannot be undone" },
		{ 11, 9,
		  "drop_column: on_failure: rollback_plan (line 3) may have to undo this step" },
	};
	char wave[sizeof(plan)];

	(void)state;
	pt_expect_errors_n(Y, plan, sizeof(plan) - 1, 2, errs);
	/* rollback_wave never undoes the last step of a wave: only the first drop_column */
	memcpy(wave, plan, sizeof(plan));
	memcpy(strstr(wave, "rollback_plan"), "rollback_wave", 13);
	pt_expect_error_n(Y, wave, sizeof(plan) - 1, 11, 9,
			  "drop_column: on_failure: rollback_wave (line 3)");
	/* stop undoes nothing: the same plan is valid */
	memcpy(strstr(wave, "rollback_wave"), "stop\n        ", 13);
	{
		struct plan *p = pt_parse_ok("stop.yaml", wave);
		plan_free(p);
	}
}

static void
test_plan_errors__unknown_wave_field(void **state)
{
	(void)state;
	pt_expect_error(
	    Y,
	    "title: t\nreason: r\nwaves:\n  - name: expand\n    limit: {max_lock_ms: 5}\n"
	    "    steps: [{op: add_column, table: t, name: c, type: int}]\n",
	    5, 5, "wave: unknown field 'limit' (expected name, steps, limits)");
}

static void
test_plan_errors__unknown_limits_field(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - op: drop_table\n    table: t\n    limits: {max_lock: 5}\n",
			6, 14,
			"limits: unknown field 'max_lock' (expected max_lock_ms, max_stmt_ms, "
			"rows_per_second or batch_size)");
}

static void
test_plan_errors__unknown_column_field(void **state)
{
	(void)state;
	pt_expect_error(
	    Y,
	    PT_HEAD "  - op: create_table\n    table: t\n    columns:\n      - name: a\n"
		    "        type: int\n        nullabel: false\n",
	    9, 9,
	    "columns: unknown field 'nullabel' (expected name, type, nullable, default, default_sql)");
}

/* --- the plan and its waves -------------------------------------------- */

static void
test_plan_errors__missing_title(void **state)
{
	(void)state;
	pt_expect_error(Y, "reason: r\nsteps: [{op: drop_table, table: t}]\n", 1, 1,
			"plan: missing field 'title'");
}

static void
test_plan_errors__missing_reason(void **state)
{
	(void)state;
	pt_expect_error(Y, "\n# why?\ntitle: t\nsteps: [{op: drop_table, table: t}]\n", 3, 1,
			"plan: missing field 'reason' (why the change exists, for the audit)");
}

static void
test_plan_errors__missing_waves_and_steps(void **state)
{
	(void)state;
	pt_expect_error(Y, "title: t\nreason: r\n", 1, 1, "plan: missing field 'waves' or 'steps'");
}

static void
test_plan_errors__both_waves_and_steps(void **state)
{
	(void)state;
	pt_expect_error(
	    Y,
	    "title: t\nreason: r\nwaves:\n  - name: contract\n"
	    "    steps: [{op: drop_table, table: t}]\nsteps: [{op: drop_table, table: u}]\n",
	    6, 8, "plan: expected either waves or steps, found both");
}

static void
test_plan_errors__waves_not_a_list(void **state)
{
	(void)state;
	pt_expect_error(Y, "title: t\nreason: r\nwaves: {expand: []}\n", 3, 8,
			"waves: expected a list of {name, steps, limits}, found a map");
	pt_expect_error(Y, "title: t\nreason: r\nsteps: {op: drop_table}\n", 3, 8,
			"steps: expected a list of steps, found a map");
	pt_expect_error(Y, "title: t\nreason: r\nwaves:\n  - expand\n", 4, 5,
			"waves: expected a map {name, steps, limits}, found the string 'expand'");
}

static void
test_plan_errors__wave_without_name(void **state)
{
	(void)state;
	pt_expect_error(Y, "title: t\nreason: r\nwaves:\n  - steps: [{op: drop_table, table: t}]\n",
			4, 5, "wave: missing field 'name'");
}

static void
test_plan_errors__wave_unknown_name(void **state)
{
	(void)state;
	pt_expect_error(Y,
			"title: t\nreason: r\nwaves:\n  - name: cleanup\n"
			"    steps: [{op: drop_table, table: t}]\n",
			4, 11,
			"name: expected expand, backfill, validate or contract, found the string "
			"'cleanup'");
}

static void
test_plan_errors__wave_without_steps(void **state)
{
	(void)state;
	pt_expect_error(Y, "title: t\nreason: r\nwaves:\n  - name: expand\n", 4, 5,
			"wave 'expand': missing field 'steps'");
}

static void
test_plan_errors__wave_out_of_order(void **state)
{
	(void)state;
	pt_expect_error(
	    Y,
	    "title: t\nreason: r\nwaves:\n"
	    "  - name: validate\n    steps: [{op: validate_constraint, table: t, name: c}]\n"
	    "  - name: expand\n    steps: [{op: add_column, table: t, name: x, type: int}]\n",
	    6, 11,
	    "wave 'expand' comes after 'validate': waves run in the order expand, "
	    "backfill, validate, contract");
}

static void
test_plan_errors__wave_named_twice(void **state)
{
	(void)state;
	pt_expect_error(
	    Y,
	    "title: t\nreason: r\nwaves:\n"
	    "  - name: expand\n    steps: [{op: add_column, table: t, name: x, type: int}]\n"
	    "  - name: expand\n    steps: [{op: add_column, table: t, name: y, type: int}]\n",
	    6, 11, "wave 'expand' is named twice (first at line 4)");
}

static void
test_plan_errors__step_in_the_wrong_wave(void **state)
{
	(void)state;
	pt_expect_error(Y,
			"title: t\nreason: r\nwaves:\n"
			"  - name: expand\n    steps: [{op: drop_column, table: t, name: x}]\n",
			5, 18,
			"drop_column belongs to the contract wave, found in the expand wave");
	pt_expect_error(Y,
			"title: t\nreason: r\nwaves:\n  - name: validate\n    steps:\n"
			"      - op: backfill_sql\n        sql: UPDATE t SET a = 1\n",
			6, 13,
			"backfill_sql belongs to the backfill wave, found in the validate wave");
}

static void
test_plan_errors__sql_wave_field_contradicts_its_wave(void **state)
{
	(void)state;
	pt_expect_error(
	    Y,
	    "title: t\nreason: r\nwaves:\n  - name: expand\n    steps:\n"
	    "      - op: sql\n        sql: ANALYZE t\n        wave: contract\n",
	    8, 15, "sql: its wave: field says 'contract' but the step is in the 'expand' wave");
}

static void
test_plan_errors__sql_wave_field_unknown(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - op: sql\n    sql: ANALYZE t\n    wave: later\n", 6, 11,
			"wave: expected expand, backfill, validate or contract, found the string "
			"'later'");
	/* only sql takes a wave: field */
	pt_expect_error(Y, PT_HEAD "  - op: drop_table\n    table: t\n    wave: contract\n", 6, 5,
			"drop_table: unknown field 'wave'");
}

/* --- empty plans ------------------------------------------------------- */

static void
test_plan_errors__empty_file(void **state)
{
	(void)state;
	/* nothing to point at: the whole file is the problem */
	pt_expect_error(Y, "", 0, 0,
			"empty plan: expected a map with title, reason and waves or steps");
	pt_expect_error(Y, "# nothing yet\n\n", 0, 0, "empty plan");
	pt_expect_error(Y, "---\n...\n", 0, 0, "empty plan");
	pt_expect_error("x.json", " \n\t\n", 1, 1, "expected a JSON object, found an empty file");
}

static void
test_plan_errors__empty_steps(void **state)
{
	(void)state;
	pt_expect_error(Y, "title: t\nreason: r\nsteps: []\n", 3, 8,
			"empty plan: expected at least one step");
	pt_expect_error(Y, "title: t\nreason: r\nwaves: []\n", 3, 8,
			"empty plan: expected at least one step");
	/* "steps:" with nothing after it is null, where the value would be */
	pt_expect_error(Y, "title: t\nreason: r\nsteps:\n", 3, 7,
			"steps: expected a list of steps, found null");
}

static void
test_plan_errors__empty_wave(void **state)
{
	(void)state;
	pt_expect_error(Y,
			"title: t\nreason: r\nwaves:\n  - name: expand\n    steps: []\n"
			"  - name: contract\n    steps: [{op: drop_table, table: t}]\n",
			5, 12, "steps: expected a non-empty list of steps, found an empty list");
}

static void
test_plan_errors__root_not_a_map(void **state)
{
	(void)state;
	pt_expect_error(Y, "- title: t\n", 1, 1,
			"plan: expected a map with title, reason and waves or steps, found a list");
	/* a file that is no plan at all is not quoted back: it could be someone's ~/.pgpass */
	pt_expect_error(
	    Y, "db.example:5432:*:app:s3cret\n", 1, 1,
	    "plan: expected a map with title, reason and waves or steps, found a string");
	pt_expect_error("x.json", "\n  [1, 2]", 2, 3, "found a list");
}

/* --- identifiers and types --------------------------------------------- */

#define DROP_TABLE(v) PT_HEAD "  - op: drop_table\n    table: " v "\n"
#define QIDENT_MSG                                                                                 \
	"table: expected a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes, "       \
	"optionally schema.name), found the string "

static void
test_plan_errors__ident_with_quote(void **state)
{
	(void)state;
	pt_expect_error(Y, DROP_TABLE("'emp\"loyee'"), 5, 12, QIDENT_MSG "'emp\"loyee'");
	pt_expect_error(Y, DROP_TABLE("'\"Employee\"'"), 5, 12, QIDENT_MSG "'\"Employee\"'");
}

static void
test_plan_errors__ident_with_semicolon(void **state)
{
	(void)state;
	pt_expect_error(Y, DROP_TABLE("'t; DROP TABLE audit'"), 5, 12,
			QIDENT_MSG "'t; DROP TABLE audit'");
}

static void
test_plan_errors__ident_with_space(void **state)
{
	(void)state;
	pt_expect_error(Y, DROP_TABLE("coffee beans"), 5, 12, QIDENT_MSG "'coffee beans'");
	pt_expect_error(Y, DROP_TABLE("' t'"), 5, 12, QIDENT_MSG "' t'");
}

static void
test_plan_errors__ident_with_unicode(void **state)
{
	(void)state;
	pt_expect_error(Y, DROP_TABLE("caf\xc3\xa9"), 5, 12, QIDENT_MSG "'caf\xc3\xa9'");
	pt_expect_error(Y, PT_HEAD "  - {op: drop_table, table: \xc3\xa9}\n", 4, 29,
			QIDENT_MSG "'\xc3\xa9'");
	pt_expect_error(Y, PT_HEAD "  - {op: drop_table, table: '\xc3\xa9\xe2\x98\x95'}\n", 4, 29,
			QIDENT_MSG "'\xc3\xa9\xe2\x98\x95'");
}

static void
test_plan_errors__ident_too_long(void **state)
{
	char text[512];
	char name[65];

	(void)state;
	memset(name, 'a', 64);
	name[64] = '\0';
	snprintf(text, sizeof(text), DROP_TABLE("%s"), name);
	/* long values are shortened in the message */
	pt_expect_error(Y, text, 5, 12,
			"at most 63 bytes, optionally schema.name), found the string "
			"'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'");
	/* 63 bytes is fine */
	name[63] = '\0';
	snprintf(text, sizeof(text), DROP_TABLE("%s"), name);
	plan_free(pt_parse_ok(Y, text));
	/* each part of schema.name has its own limit */
	snprintf(text, sizeof(text), DROP_TABLE("%s.%s"), name, name);
	plan_free(pt_parse_ok(Y, text));
}

static void
test_plan_errors__ident_leading_digit(void **state)
{
	(void)state;
	pt_expect_error(Y, DROP_TABLE("7up"), 5, 12, QIDENT_MSG "'7up'");
	pt_expect_error(Y, DROP_TABLE("app.2fa"), 5, 12, QIDENT_MSG "'app.2fa'");
}

static void
test_plan_errors__ident_schema_where_not_allowed(void **state)
{
	(void)state;
	pt_expect_error(
	    Y, PT_HEAD "  - op: add_column\n    table: t\n    name: app.cups\n    type: int\n", 6,
	    11,
	    "name: expected a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 "
	    "bytes), found the string 'app.cups'");
	pt_expect_error(Y, PT_HEAD "  - op: rename_table\n    from: app.a\n    to: app.b\n", 6, 9,
			"to: expected a plain SQL identifier");
	pt_expect_error(Y, DROP_TABLE("db.app.t"), 5, 12, QIDENT_MSG "'db.app.t'");
}

static void
test_plan_errors__ident_in_a_list(void **state)
{
	(void)state;
	pt_expect_error(
	    Y,
	    PT_HEAD "  - op: add_index_concurrently\n    table: t\n    name: i\n"
		    "    columns: [email, 'e mail']\n",
	    7, 22,
	    "columns: expected a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 "
	    "bytes), found the string 'e mail'");
	pt_expect_error(Y,
			PT_HEAD "  - op: add_index_concurrently\n    table: t\n    name: i\n"
				"    columns: [a, b, a]\n",
			7, 21, "columns: column 'a' is listed twice");
	pt_expect_error(Y,
			PT_HEAD "  - op: add_index_concurrently\n    table: t\n    name: i\n"
				"    columns: []\n",
			7, 14, "columns: expected at least one column name, found an empty list");
}

#define ADD_COLUMN_TYPE(v)                                                                         \
	PT_HEAD "  - op: add_column\n    table: t\n    name: c\n    type: " v "\n"
#define TYPE_MSG                                                                                   \
	"type: expected a plain type name (words, optional (n[,m]), optional []; no quotes, "      \
	"semicolons or comments), found "

static void
test_plan_errors__type_with_quotes(void **state)
{
	(void)state;
	pt_expect_error(Y, ADD_COLUMN_TYPE("'\"char\"'"), 7, 11, TYPE_MSG "the string '\"char\"'");
	pt_expect_error(Y, ADD_COLUMN_TYPE("\"text collate 'C'\""), 7, 11,
			"type: syntax error at or near \"'C'\" (at character 14 of the type)");
}

static void
test_plan_errors__type_with_semicolon(void **state)
{
	(void)state;
	pt_expect_error(Y, ADD_COLUMN_TYPE("'text; DROP TABLE employee'"), 7, 11,
			"type: expected a type name alone, found ';' (at character 5 of the type)");
}

static void
test_plan_errors__type_with_comment(void **state)
{
	(void)state;
	pt_expect_error(Y, ADD_COLUMN_TYPE("int -- counts cups"), 7, 11,
			TYPE_MSG "the string 'int -- counts cups'");
	pt_expect_error(Y, ADD_COLUMN_TYPE("'int /* x */'"), 7, 11,
			TYPE_MSG "the string 'int /* x */'");
	pt_expect_error(Y, ADD_COLUMN_TYPE("int/**/"), 7, 11, TYPE_MSG "the string 'int/**/'");
}

static void
test_plan_errors__type_not_a_string(void **state)
{
	(void)state;
	pt_expect_error(Y, ADD_COLUMN_TYPE("5"), 7, 11,
			"type: expected a type name, found an integer (5)");
}

static void
test_plan_errors__column_type_in_create_table(void **state)
{
	(void)state;
	pt_expect_error(Y,
			PT_HEAD "  - op: create_table\n    table: t\n    columns:\n"
				"      - {name: a, type: 'int; --'}\n",
			7, 25,
			"columns.type: expected a type name alone, found ';' (at character 4 of "
			"the type)");
}

/* --- create_table and foreign keys ------------------------------------- */

static void
test_plan_errors__columns_empty_or_not_maps(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - op: create_table\n    table: t\n    columns: []\n", 6, 14,
			"columns: expected a non-empty list of {name, type, nullable, default}, "
			"found an empty list");
	pt_expect_error(
	    Y, PT_HEAD "  - op: create_table\n    table: t\n    columns: [id]\n", 6, 15,
	    "columns: expected a map {name, type, nullable, default}, found the string 'id'");
}

static void
test_plan_errors__column_missing_type(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - op: create_table\n    table: t\n    columns: [{name: a}]\n",
			6, 15, "columns: missing field 'type'");
}

static void
test_plan_errors__column_defined_twice(void **state)
{
	(void)state;
	pt_expect_error(Y,
			PT_HEAD "  - op: create_table\n    table: t\n"
				"    columns: [{name: a, type: int}, {name: a, type: text}]\n",
			6, 37, "columns: column 'a' is defined twice");
}

static void
test_plan_errors__primary_key_names_missing_column(void **state)
{
	(void)state;
	pt_expect_error(Y,
			PT_HEAD "  - op: create_table\n    table: t\n"
				"    columns: [{name: id, type: int}]\n    primary_key: [uid]\n",
			7, 18, "primary_key: expected a column of the table, found 'uid'");
}

static void
test_plan_errors__ref_columns_count_mismatch(void **state)
{
	(void)state;
	pt_expect_error(Y,
			PT_HEAD
			"  - op: add_foreign_key_not_valid\n    table: orders\n    name: fk\n"
			"    columns: [a, b]\n    ref_table: c\n    ref_columns: [id]\n",
			9, 18, "ref_columns: expected 2 column(s) to match columns, found 1");
}

static void
test_plan_errors__bad_on_delete(void **state)
{
	(void)state;
	pt_expect_error(
	    Y,
	    PT_HEAD "  - op: add_foreign_key_not_valid\n    table: orders\n    name: fk\n"
		    "    columns: [a]\n    ref_table: c\n    ref_columns: [id]\n"
		    "    on_delete: explode\n",
	    10, 16,
	    "on_delete: expected NO ACTION, RESTRICT, CASCADE, SET NULL or SET DEFAULT, "
	    "found the string 'explode'");
	pt_expect_error(Y,
			PT_HEAD
			"  - op: add_foreign_key_not_valid\n    table: orders\n    name: fk\n"
			"    columns: [a]\n    ref_table: c\n    ref_columns: [id]\n"
			"    on_delete: set  null\n",
			10, 16, "found the string 'set  null'");
}

static void
test_plan_errors__bad_lock_class_max(void **state)
{
	(void)state;
	pt_expect_error(
	    Y, PT_HEAD "  - op: sql\n    sql: ANALYZE t\n    lock_class_max: BigLock\n", 6, 21,
	    "lock_class_max: expected a lock mode (AccessShareLock ... "
	    "AccessExclusiveLock, or ACCESS SHARE ... ACCESS EXCLUSIVE), found the string "
	    "'BigLock'");
	pt_expect_error(Y, PT_HEAD "  - op: sql\n    sql: ANALYZE t\n    lock_class_max: none\n", 6,
			21, "found the string 'none'");
	pt_expect_error(Y, PT_HEAD "  - op: sql\n    sql: ANALYZE t\n    lock_class_max: 8\n", 6,
			21, "lock_class_max: expected a lock mode, found an integer (8)");
}

/* --- limits ------------------------------------------------------------- */

#define LIMITS(v) PT_HEAD "  - op: drop_table\n    table: t\n    limits: {" v "}\n"

static void
test_plan_errors__limits_negative(void **state)
{
	(void)state;
	pt_expect_error(Y, LIMITS("max_lock_ms: -5"), 6, 27,
			"limits.max_lock_ms: expected a whole number from 1 to 86400000, found an "
			"integer (-5)");
	/* 0 would mean no lock timeout at all, which the rails never allow */
	pt_expect_error(Y, LIMITS("max_lock_ms: 0"), 6, 27,
			"limits.max_lock_ms: expected a whole number from 1 to 86400000, found an "
			"integer (0)");
}

static void
test_plan_errors__limits_zero_batch_size(void **state)
{
	(void)state;
	pt_expect_error(Y, LIMITS("batch_size: 0"), 6, 26,
			"limits.batch_size: expected a whole number from 1 to 1000000, found an "
			"integer (0)");
}

static void
test_plan_errors__limits_not_integers(void **state)
{
	(void)state;
	pt_expect_error(
	    Y, LIMITS("rows_per_second: 1.5"), 6, 31,
	    "limits.rows_per_second: expected a whole number from 0 to 1000000000, found "
	    "a number (1.5)");
	pt_expect_error(Y, LIMITS("max_stmt_ms: 10s"), 6, 27,
			"limits.max_stmt_ms: expected a whole number from 0 to 86400000, found the "
			"string '10s'");
	pt_expect_error(Y, LIMITS("max_stmt_ms: '100'"), 6, 27, "found the string '100'");
	pt_expect_error(Y, LIMITS("max_stmt_ms: 99999999999999999999999"), 6, 27,
			"found an integer (99999999999999999999999)");
}

static void
test_plan_errors__limits_not_a_map(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - op: drop_table\n    table: t\n    limits: 50\n", 6, 13,
			"limits: expected a map of max_lock_ms, max_stmt_ms, rows_per_second, "
			"batch_size, found an integer (50)");
}

static void
test_plan_errors__wave_limits(void **state)
{
	(void)state;
	pt_expect_error(Y,
			"title: t\nreason: r\nwaves:\n  - name: backfill\n"
			"    limits: {batch_size: -1}\n"
			"    steps: [{op: backfill_sql, sql: 'UPDATE t SET a = 1'}]\n",
			5, 26, "limits.batch_size: expected a whole number from 1 to 1000000");
}

/* --- ids --------------------------------------------------------------- */

static void
test_plan_errors__bad_plan_id(void **state)
{
	(void)state;
	pt_expect_error(Y, "id: '-x'\ntitle: t\nreason: r\nsteps: [{op: drop_table, table: t}]\n",
			1, 5,
			"id: expected a plan id (letters, digits, '.', '_' or '-', starting with a "
			"letter or digit, at most 128), found the string '-x'");
	pt_expect_error(Y, "id: 7\ntitle: t\nreason: r\nsteps: [{op: drop_table, table: t}]\n", 1,
			5,
			"id: expected a plan id (letters, digits, '.', '_' or '-', starting with a "
			"letter or digit, at most 128), found an integer (7)");
	pt_expect_error(
	    Y, "id: coffee/tea\ntitle: t\nreason: r\nsteps: [{op: drop_table, table: t}]\n", 1, 5,
	    "found the string 'coffee/tea'");
	pt_expect_error(Y, "id: ''\ntitle: t\nreason: r\nsteps: [{op: drop_table, table: t}]\n", 1,
			5, "found an empty string");
}

static void
test_plan_errors__plan_id_too_long(void **state)
{
	char text[512], id[130];

	(void)state;
	memset(id, '7', 129);
	id[129] = '\0';
	snprintf(text, sizeof(text),
		 "id: x%s\ntitle: t\nreason: r\nsteps: [{op: drop_table, table: t}]\n", id + 1);
	pt_expect_error(Y, text, 1, 5, "id: expected a plan id");
	id[128] = '\0';
	snprintf(text, sizeof(text),
		 "id: x%s\ntitle: t\nreason: r\nsteps: [{op: drop_table, table: t}]\n", id + 1);
	plan_free(pt_parse_ok(Y, text));
}

static void
test_plan_errors__file_name_gives_bad_id(void **state)
{
	const char *text = "title: t\nreason: r\nsteps: [{op: drop_table, table: t}]\n";

	(void)state;
	pt_expect_error("migrations/-draft.yaml", text, 0, 0,
			"the file name gives the plan id '-draft', which is not a plan id");
	pt_expect_error(
	    "migrations/my plan.yml", text, 0, 0,
	    "the file name gives the plan id 'my plan', which is not a plan id (letters, "
	    "digits, '.', '_' or '-', starting with a letter or digit, at most 128); "
	    "rename the file or add an id: field");
	/* an id: field fixes it */
	{
		struct plan *p =
		    pt_parse_ok("migrations/my plan.yml", "id: my-plan\ntitle: t\nreason: r\n"
							  "steps: [{op: drop_table, table: t}]\n");
		assert_string_equal(p->id, "my-plan");
		assert_int_equal(p->id_line, 1);
		assert_int_equal(p->id_col, 5);
		plan_free(p);
	}
}

static void
test_plan_errors__file_name_gives_id(void **state)
{
	const char *text = "title: t\nreason: r\nsteps: [{op: drop_table, table: t}]\n";
	struct plan *p = pt_parse_ok("repo/migrations/0007-coffee.v2.yaml", text);

	(void)state;
	assert_string_equal(p->id, "0007-coffee.v2");
	assert_int_equal(p->id_line, 0);
	assert_string_equal(p->path, "repo/migrations/0007-coffee.v2.yaml");
	plan_free(p);
}

/* --- duplicates -------------------------------------------------------- */

static void
test_plan_errors__duplicate_step(void **state)
{
	(void)state;
	pt_expect_error(Y,
			PT_HEAD "  - {op: drop_table, table: t}\n"
				"  - {op: add_column, table: t, name: c, type: int}\n"
				"  - op: drop_table\n    table: t\n",
			6, 5, "duplicate step: the same drop_table as the step at line 4");
	/* defaults filled in: nullable: true is what an add_column says without it */
	pt_expect_error(Y,
			PT_HEAD
			"  - {op: add_column, table: t, name: c, type: int}\n"
			"  - {op: add_column, table: t, name: c, type: int, nullable: true}\n",
			5, 5, "duplicate step: the same add_column as the step at line 4");
}

static void
test_plan_errors__same_op_different_fields_is_no_duplicate(void **state)
{
	(void)state;
	plan_free(pt_parse_ok(Y,
			      PT_HEAD "  - {op: drop_table, table: t}\n"
				      "  - {op: drop_table, table: t, limits: {max_lock_ms: 10}}\n"
				      "  - {op: drop_table, table: t, prechecks: ['true']}\n"));
}

static void
test_plan_errors__duplicate_key_yaml(void **state)
{
	(void)state;
	pt_expect_error(Y, "title: t\nreason: r\ntitle: u\nsteps: [{op: drop_table, table: t}]\n",
			3, 1, "duplicate key 'title' (first at line 1)");
	pt_expect_error(Y, PT_HEAD "  - {op: drop_table, table: t, table: u}\n", 4, 32,
			"duplicate key 'table' (first at line 4)");
}

static void
test_plan_errors__duplicate_key_json(void **state)
{
	(void)state;
	pt_expect_error("x.json",
			"{\n  \"title\": \"t\",\n  \"reason\": \"r\",\n  \"title\": \"u\",\n"
			"  \"steps\": [{\"op\": \"drop_table\", \"table\": \"t\"}]\n}\n",
			4, 3, "duplicate key 'title' (first at line 2)");
}

/* --- all of a file's errors come out together --------------------------- */

static void
test_plan_errors__all_errors_are_reported(void **state)
{
	static const struct pt_err e[] = {
		{ 5, 12, "table: expected a plain SQL identifier" },
		{ 8, 9, "unknown op 'add_colunm'" },
		{ 11, 5, "drop_table: unknown field 'extra'" },
	};
	const char *text = PT_HEAD "  - op: add_column\n" /* 4 */
				   "    table: 'a b'\n"	  /* 5 */
				   "    name: x\n"	  /* 6 */
				   "    type: text\n"	  /* 7 */
				   "  - op: add_colunm\n" /* 8 */
				   "    table: t\n"	  /* 9 */
				   "  - op: drop_table\n" /* 10 */
				   "    extra: 1\n"	  /* 11 */
				   "    table: t\n";	  /* 12 */

	(void)state;
	pt_expect_errors_n(Y, text, strlen(text), 3, e);
}

static void
test_plan_errors__all_errors_across_levels(void **state)
{
	/* the plan's fields first, then what it misses, then its waves in order */
	static const struct pt_err e[] = {
		{ 1, 5, "id: expected a plan id" },
		{ 3, 1, "plan: unknown field 'owner'" },
		{ 1, 1, "plan: missing field 'reason'" },
		{ 6, 14, "limits: unknown field 'rate'" },
		{ 7, 18,
		  "validate_constraint belongs to the validate wave, found in the backfill wave" },
	};
	const char *text = "id: _x\n"							  /* 1 */
			   "title: t\n"							  /* 2 */
			   "owner: me\n"						  /* 3 */
			   "waves:\n"							  /* 4 */
			   "  - name: backfill\n"					  /* 5 */
			   "    limits: {rate: 5}\n"					  /* 6 */
			   "    steps: [{op: validate_constraint, table: t, name: c}]\n"; /* 7 */

	(void)state;
	pt_expect_errors_n(Y, text, strlen(text), 5, e);
}

static void
test_plan_errors__json_positions(void **state)
{
	static const struct pt_err e[] = {
		{ 5, 12, "op: unknown op 'drop_tabel'" },
		{ 6, 35, "table: expected a plain SQL identifier" },
		{ 7, 69, "add_column: unknown field 'bogus'" },
	};
	const char *text =
	    "{\n"
	    "  \"title\": \"Caf\xc3\xa9 \xe2\x98\x95\",\n"
	    "  \"reason\": \"r\",\n"
	    "  \"steps\": [\n"
	    "    {\"op\": \"drop_tabel\", \"table\": \"t\"},\n"
	    "    {\"op\": \"drop_table\", \"table\": \"\xc3\xa9t\xc3\xa9\"},\n"
	    "    {\"op\": \"add_column\", \"table\": \"t\", \"name\": \"c\", \"default\": "
	    "\"\xc3\xa9\", \"bogus\": 1, \"type\": \"int\"}\n"
	    "  ]\n"
	    "}\n";

	(void)state;
	pt_expect_errors_n("x.json", text, strlen(text), 3, e);
}

static void
test_plan_errors__yaml_columns_count_characters(void **state)
{
	(void)state;
	/* "  - {op: add_column, table: t, name: c, type: int, default: 'é☕', " is 66 characters */
	pt_expect_error(Y,
			PT_HEAD "  - {op: add_column, table: t, name: c, type: int, default: "
				"'\xc3\xa9\xe2\x98\x95', bogus: 1}\n",
			4, 67, "add_column: unknown field 'bogus'");
}

/* A key that is itself a map or list is refused, and does not crash duplicate checks. */
static void
test_plan_errors__complex_key(void **state)
{
	static const struct pt_err e[] = {
		{ 1, 3, "expected a plain key, found a list" },
	};
	const char *text = "? [a]\n: 1\ntitle: t\nreason: r\nsteps: [{op: drop_table, table: t}]\n";

	(void)state;
	pt_expect_errors_n(Y, text, strlen(text), 1, e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_errors__unknown_op),
		cmocka_unit_test(test_plan_errors__op_missing),
		cmocka_unit_test(test_plan_errors__op_not_a_string),
		cmocka_unit_test(test_plan_errors__step_not_a_map),
		cmocka_unit_test(test_plan_errors__missing_field),
		cmocka_unit_test(test_plan_errors__missing_fields_are_each_reported),
		cmocka_unit_test(test_plan_errors__string_where_bool),
		cmocka_unit_test(test_plan_errors__list_where_string),
		cmocka_unit_test(test_plan_errors__map_where_list),
		cmocka_unit_test(test_plan_errors__string_where_list),
		cmocka_unit_test(test_plan_errors__number_where_string),
		cmocka_unit_test(test_plan_errors__default_not_a_constant),
		cmocka_unit_test(test_plan_errors__unknown_step_field),
		cmocka_unit_test(test_plan_errors__unknown_plan_field),
		cmocka_unit_test(test_plan_errors__on_failure_unknown),
		cmocka_unit_test(test_plan_errors__on_failure_irreversible_range),
		cmocka_unit_test(test_plan_errors__unknown_wave_field),
		cmocka_unit_test(test_plan_errors__unknown_limits_field),
		cmocka_unit_test(test_plan_errors__unknown_column_field),
		cmocka_unit_test(test_plan_errors__missing_title),
		cmocka_unit_test(test_plan_errors__missing_reason),
		cmocka_unit_test(test_plan_errors__missing_waves_and_steps),
		cmocka_unit_test(test_plan_errors__both_waves_and_steps),
		cmocka_unit_test(test_plan_errors__waves_not_a_list),
		cmocka_unit_test(test_plan_errors__wave_without_name),
		cmocka_unit_test(test_plan_errors__wave_unknown_name),
		cmocka_unit_test(test_plan_errors__wave_without_steps),
		cmocka_unit_test(test_plan_errors__wave_out_of_order),
		cmocka_unit_test(test_plan_errors__wave_named_twice),
		cmocka_unit_test(test_plan_errors__step_in_the_wrong_wave),
		cmocka_unit_test(test_plan_errors__sql_wave_field_contradicts_its_wave),
		cmocka_unit_test(test_plan_errors__sql_wave_field_unknown),
		cmocka_unit_test(test_plan_errors__empty_file),
		cmocka_unit_test(test_plan_errors__empty_steps),
		cmocka_unit_test(test_plan_errors__empty_wave),
		cmocka_unit_test(test_plan_errors__root_not_a_map),
		cmocka_unit_test(test_plan_errors__ident_with_quote),
		cmocka_unit_test(test_plan_errors__ident_with_semicolon),
		cmocka_unit_test(test_plan_errors__ident_with_space),
		cmocka_unit_test(test_plan_errors__ident_with_unicode),
		cmocka_unit_test(test_plan_errors__ident_too_long),
		cmocka_unit_test(test_plan_errors__ident_leading_digit),
		cmocka_unit_test(test_plan_errors__ident_schema_where_not_allowed),
		cmocka_unit_test(test_plan_errors__ident_in_a_list),
		cmocka_unit_test(test_plan_errors__type_with_quotes),
		cmocka_unit_test(test_plan_errors__type_with_semicolon),
		cmocka_unit_test(test_plan_errors__type_with_comment),
		cmocka_unit_test(test_plan_errors__type_not_a_string),
		cmocka_unit_test(test_plan_errors__column_type_in_create_table),
		cmocka_unit_test(test_plan_errors__columns_empty_or_not_maps),
		cmocka_unit_test(test_plan_errors__column_missing_type),
		cmocka_unit_test(test_plan_errors__column_defined_twice),
		cmocka_unit_test(test_plan_errors__primary_key_names_missing_column),
		cmocka_unit_test(test_plan_errors__ref_columns_count_mismatch),
		cmocka_unit_test(test_plan_errors__bad_on_delete),
		cmocka_unit_test(test_plan_errors__bad_lock_class_max),
		cmocka_unit_test(test_plan_errors__limits_negative),
		cmocka_unit_test(test_plan_errors__limits_zero_batch_size),
		cmocka_unit_test(test_plan_errors__limits_not_integers),
		cmocka_unit_test(test_plan_errors__limits_not_a_map),
		cmocka_unit_test(test_plan_errors__wave_limits),
		cmocka_unit_test(test_plan_errors__bad_plan_id),
		cmocka_unit_test(test_plan_errors__plan_id_too_long),
		cmocka_unit_test(test_plan_errors__file_name_gives_bad_id),
		cmocka_unit_test(test_plan_errors__file_name_gives_id),
		cmocka_unit_test(test_plan_errors__duplicate_step),
		cmocka_unit_test(test_plan_errors__same_op_different_fields_is_no_duplicate),
		cmocka_unit_test(test_plan_errors__duplicate_key_yaml),
		cmocka_unit_test(test_plan_errors__duplicate_key_json),
		cmocka_unit_test(test_plan_errors__all_errors_are_reported),
		cmocka_unit_test(test_plan_errors__all_errors_across_levels),
		cmocka_unit_test(test_plan_errors__json_positions),
		cmocka_unit_test(test_plan_errors__yaml_columns_count_characters),
		cmocka_unit_test(test_plan_errors__complex_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
