/*
 * Plain .sql plans: one sql step per statement at its own line and column,
 * in the wave of what it does without reordering the file, a title and
 * reason from header comments, and a checksum of the token stream (a
 * reformatting is no drift, an edited value is).
 */
#include "plan_test.h"

#define F "0007-accounts.sql"

static const char *const accounts =
    "-- title: Accounts\n"
    "-- reason: sign-up needs them\n"
    "\n"
    "CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"
    "/* the lookup index */ CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);\n"
    "UPDATE accounts SET email = lower(email);\n"
    "ALTER TABLE accounts ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n"
    "ALTER TABLE accounts VALIDATE CONSTRAINT email_nn;\n"
    "ALTER TABLE accounts DROP COLUMN legacy\n";

static struct plan *
parse(const char *file, const char *text)
{
	return pt_parse_ok(file, text);
}

static void
test_plan_sqlfile__steps_waves_and_positions(void **state)
{
	struct plan *p = parse(F, accounts);
	static const struct {
		enum plan_wave w;
		size_t i;
		unsigned line, col;
		enum plan_exec_kind exec;
		const char *start;
	} want[] = {
		{ WAVE_EXPAND, 0, 4, 1, EXEC_TX, "CREATE TABLE accounts" },
		{ WAVE_EXPAND, 1, 5, 24, EXEC_NONTX, "CREATE INDEX CONCURRENTLY" },
		{ WAVE_BACKFILL, 0, 6, 1, EXEC_TX, "UPDATE accounts" },
		/* an addition after a row change stays after it: the file's order is kept */
		{ WAVE_BACKFILL, 1, 7, 1, EXEC_TX, "ALTER TABLE accounts ADD CONSTRAINT" },
		{ WAVE_VALIDATE, 0, 8, 1, EXEC_TX, "ALTER TABLE accounts VALIDATE" },
		{ WAVE_CONTRACT, 0, 9, 1, EXEC_TX, "ALTER TABLE accounts DROP COLUMN legacy" },
	};

	(void)state;
	assert_string_equal(p->id, "0007-accounts");
	assert_string_equal(p->title, "Accounts");
	assert_string_equal(p->reason, "sign-up needs them");
	assert_int_equal(p->nsteps, 6);
	for (size_t k = 0; k < sizeof(want) / sizeof(*want); k++) {
		const struct plan_step *s = pt_step(p, want[k].w, want[k].i);
		assert_int_equal(s->op, OP_SQL);
		assert_int_equal(s->line, want[k].line);
		assert_int_equal(s->col, want[k].col);
		assert_int_equal(s->exec, want[k].exec);
		assert_memory_equal(s->sql, want[k].start, strlen(want[k].start));
	}
	assert_int_equal(p->max_hazard, H3);
	plan_free(p);
}

static void
test_plan_sqlfile__defaults(void **state)
{
	struct plan *p = parse("dir/0008-add-flag.sql", "ALTER TABLE t ADD COLUMN flag boolean;");

	(void)state;
	assert_string_equal(p->id, "0008-add-flag");
	assert_string_equal(p->title, "0008-add-flag");
	assert_string_equal(p->reason, "plain SQL migration");
	assert_int_equal(pt_step(p, WAVE_EXPAND, 0)->hazard, H1);
	plan_free(p);
}

static char *
checksum_of(const char *text)
{
	struct plan *p = parse(F, text);
	char *c = strdup(p->checksum);

	plan_free(p);
	return c;
}

static void
test_plan_sqlfile__checksum_is_of_tokens(void **state)
{
	char *a = checksum_of(accounts);
	char *reformatted = checksum_of(
	    "-- title: Accounts\n-- reason: sign-up needs them\n"
	    "create table ACCOUNTS (\n  id BIGINT primary key, -- the key\n  email TEXT\n);\n"
	    "CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);\n"
	    "update accounts set email = LOWER(email);\n"
	    "ALTER TABLE accounts ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n"
	    "ALTER TABLE accounts VALIDATE CONSTRAINT email_nn;\n"
	    "ALTER TABLE accounts DROP COLUMN legacy;\n");
	char *edited = checksum_of(
	    "-- title: Accounts\n-- reason: sign-up needs them\n"
	    "CREATE TABLE accounts (id bigint PRIMARY KEY, email text);\n"
	    "CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);\n"
	    "UPDATE accounts SET email = upper(email);\n"
	    "ALTER TABLE accounts ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n"
	    "ALTER TABLE accounts VALIDATE CONSTRAINT email_nn;\n"
	    "ALTER TABLE accounts DROP COLUMN legacy\n");
	char *quoted = checksum_of(
	    "-- title: Accounts\n-- reason: sign-up needs them\n"
	    "CREATE TABLE \"Accounts\" (id bigint PRIMARY KEY, email text);\n"
	    "CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);\n"
	    "UPDATE accounts SET email = lower(email);\n"
	    "ALTER TABLE accounts ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n"
	    "ALTER TABLE accounts VALIDATE CONSTRAINT email_nn;\n"
	    "ALTER TABLE accounts DROP COLUMN legacy\n");

	(void)state;
	assert_string_equal(a, reformatted);
	assert_string_not_equal(a, edited);
	/* a quoted identifier keeps its case: it names another table */
	assert_string_not_equal(a, quoted);
	free(a);
	free(reformatted);
	free(edited);
	free(quoted);
}

static void
test_plan_sqlfile__errors(void **state)
{
	(void)state;
	/* PostgreSQL's own message, at the line and column in the file */
	pt_expect_error(F, "CREATE TABLE a (id int);\n\nALTER TABLE a ADD COLUMN b int,;\n", 3, 32,
			"sql: syntax error at or near \";\"");
	pt_expect_error(F, "-- nothing here yet\n", 1, 1, "empty plan: expected at least one step");
	{
		/* a file's own BEGIN/COMMIT: each statement is a step in its own transaction */
		static const struct pt_err e[] = {
			{ 1, 1, "found transaction control ('BEGIN')" },
			{ 3, 1, "found transaction control ('COMMIT')" },
		};
		const char *t = "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n";
		pt_expect_errors_n(F, t, strlen(t), 2, e);
	}
	pt_expect_error(F, "SET lock_timeout = 0;\nCREATE TABLE a (id int);\n", 1, 1,
			"found SET, RESET or DISCARD");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_sqlfile__steps_waves_and_positions),
		cmocka_unit_test(test_plan_sqlfile__defaults),
		cmocka_unit_test(test_plan_sqlfile__checksum_is_of_tokens),
		cmocka_unit_test(test_plan_sqlfile__errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
