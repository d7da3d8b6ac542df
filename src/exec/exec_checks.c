/*
 * A step's prechecks and postchecks: the computed ones (the helpers of
 * sql/002, which never raise) in one statement, the author's one at a time,
 * each in a savepoint or a transaction of its own that is rolled back.
 */
#include <stdio.h>
#include <stdlib.h>

#include "exec/exec_int.h"
#include "sql/sql.h"
#include "util/alloc.h"
#include "util/strbuf.h"

size_t
exec_checks_computed(const struct step_run *r, const struct plan_strv *checks)
{
	size_t user =
	    checks == &r->s->ob.prechecks ? r->s->user_prechecks.n : r->s->user_postchecks.n;

	return checks->n > user ? checks->n - user : 0;
}

char *
exec_checks_sql(const struct plan_strv *checks, size_t n)
{
	struct strbuf sb = STRBUF_INIT;

	if (n == 0)
		return NULL;
	sb_puts(&sb, "SELECT ");
	/* the newline lets a trailing -- comment end before the parenthesis */
	for (size_t i = 0; i < n; i++)
		sb_printf(&sb, "%s(%s\n)::boolean", i ? ", " : "", checks->v[i]);
	return sb_detach(&sb);
}

char *
exec_checks_guard_sql(const struct plan_strv *checks, size_t n)
{
	struct strbuf sb = STRBUF_INIT;

	if (n == 0)
		return NULL;
	sb_puts(&sb, "SELECT CASE WHEN ");
	for (size_t i = 0; i < n; i++)
		sb_printf(&sb, "%s(%s\n)::boolean", i ? " AND " : "", checks->v[i]);
	/*
	 * Not a constant, so that the planner does not fold (and raise) it
	 * whatever the checks say: it is evaluated only when one is not true.
	 */
	sb_puts(&sb, " THEN true ELSE ('" EXEC_CHECK_FALSE
		     " ' || pg_catalog.pg_backend_pid())::boolean END");
	return sb_detach(&sb);
}

int
exec_checks_lift(char **sql, char ***values)
{
	char *lifted;
	int n = sql_lift_helper_args(*sql, 1, &lifted, values);

	if (n <= 0)
		return 0;
	free(*sql);
	*sql = lifted;
	return n;
}

const char *
exec_checks_first_false(const PGresult *res, const struct plan_strv *checks)
{
	int n = PQnfields(res);

	for (int i = 0; i < n && (size_t)i < checks->n; i++)
		if (PQntuples(res) < 1 || PQgetisnull(res, 0, i) || PQgetvalue(res, 0, i)[0] != 't')
			return checks->v[i];
	return NULL;
}

int
exec_checks_user(struct step_run *r, const struct plan_strv *checks, size_t from,
		 const char **failed, struct db_error *err)
{
	/*
	 * An author's check runs inside a savepoint (in a transaction) or a
	 * transaction of its own (outside one) that is rolled back at once:
	 * whatever it changes, a setting such as lock_timeout or search_path
	 * included, is undone before the step's statement runs.
	 */
	bool in_tx = db_in_transaction(r->ex->db);

	*failed = NULL;
	for (size_t i = from; i < checks->n; i++) {
		char *sql = xasprintf("SELECT (%s\n)::boolean", checks->v[i]);
		struct db_stmt st[4];
		size_t n = 0, ich;
		bool ok;
		int rc;

		st[n++] = (struct db_stmt){ .sql = in_tx ? "SAVEPOINT taskslaps_check" : "BEGIN" };
		ich = n;
		st[n++] = (struct db_stmt){ .sql = sql };
		st[n++] = (struct db_stmt){ .sql = in_tx ? "ROLLBACK TO SAVEPOINT taskslaps_check"
							 : "ROLLBACK" };
		if (in_tx)
			st[n++] = (struct db_stmt){ .sql = "RELEASE SAVEPOINT taskslaps_check" };
		rc = db_batch(r->ex->db, st, n, err, NULL);
		free(sql);
		ok = rc == 0 && PQntuples(st[ich].res) == 1 && !PQgetisnull(st[ich].res, 0, 0) &&
		     PQgetvalue(st[ich].res, 0, 0)[0] == 't';
		for (size_t k = 0; k < n; k++)
			PQclear(st[k].res);
		if (rc < 0) {
			struct db_error ignore;
			/* outside a transaction, leave none open behind a failed check */
			if (!in_tx && db_ok(r->ex->db) && db_in_transaction(r->ex->db))
				(void)db_cmd(r->ex->db, &ignore, "ROLLBACK");
			return -1;
		}
		if (!ok) {
			*failed = checks->v[i];
			return 0;
		}
	}
	return 0;
}

int
exec_checks(struct step_run *r, const struct plan_strv *checks, const char **failed,
	    struct db_error *err)
{
	size_t n = exec_checks_computed(r, checks);
	char *sql = exec_checks_sql(checks, n);
	PGresult *res;

	*failed = NULL;
	if (sql) {
		/*
		 * The computed checks (the helpers of sql/002, which never raise) in one
		 * statement; the author's own, which may name relations that do not
		 * exist yet, one at a time after them, in order, up to the first false.
		 */
		int rc = db_exec(r->ex->db, &res, err, sql, 0, NULL);

		free(sql);
		if (rc < 0)
			return -1;
		*failed = exec_checks_first_false(res, checks);
		PQclear(res);
		if (*failed)
			return 0;
	}
	return exec_checks_user(r, checks, n, failed, err);
}
