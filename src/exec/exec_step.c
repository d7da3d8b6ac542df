/*
 * One step: a transaction that checks, runs, proves and records — or, for
 * CREATE/DROP INDEX CONCURRENTLY, the same outside a transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec_int.h"
#include "util/alloc.h"
#include "util/strbuf.h"

#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"

/* Relations that existed before the statement: the only ones whose locks count. */
#define SQL_USER_RELATIONS                                                                   \
	"SELECT coalesce(pg_catalog.array_agg(c.oid), '{}')::text FROM pg_catalog.pg_class c " \
	"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN "        \
	"('r','p','m','v','f','i','I','S') AND n.nspname NOT IN ('pg_catalog', "               \
	"'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE "   \
	"'pg\\_temp%'"

/* Strongest lock this backend holds on each of those relations. */
#define SQL_MY_LOCKS                                                                   \
	"SELECT l.relation::regclass::text, l.mode FROM pg_catalog.pg_locks l WHERE l.pid = " \
	"pg_catalog.pg_backend_pid() AND l.locktype = 'relation' AND l.granted AND "         \
	"l.relation = ANY($1::oid[])"

/* The touched tables' oid and relfilenode, by name (missing ones are left out). */
#define SQL_RELFILENODES                                                                   \
	"SELECT t.name, c.oid::text, c.relfilenode::text FROM pg_catalog.unnest($1::text[]) " \
	"AS t(name) JOIN pg_catalog.pg_class c ON c.oid = taskslaps.lookup_relation(t.name)"

static char *
strv_array(const struct plan_strv *v)
{
	struct strbuf sb = STRBUF_INIT;

	sb_putc(&sb, '{');
	for (size_t i = 0; i < v->n; i++)
		sb_printf(&sb, "%s\"%s\"", i ? "," : "", v->v[i]); /* plain identifiers: no quoting needed */
	sb_putc(&sb, '}');
	return sb_detach(&sb);
}

int
exec_proof_before(struct step_run *r, struct exec_proof *pf, struct db_error *err)
{
	PGresult *res;
	char *names = strv_array(&r->s->touched);
	const char *params[1] = { names };
	int rc;

	memset(pf, 0, sizeof(*pf));
	if (db_exec(r->ex->db, &res, err, SQL_USER_RELATIONS, 0, NULL) < 0) {
		free(names);
		return -1;
	}
	pf->rels = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	rc = db_exec(r->ex->db, &pf->nodes, err, SQL_RELFILENODES, 1, params);
	free(names);
	return rc;
}

void
exec_proof_free(struct exec_proof *pf)
{
	free(pf->rels);
	PQclear(pf->nodes);
	memset(pf, 0, sizeof(*pf));
}

static int
lock_rank(const char *mode)
{
	int l = pg_lock_from_name(mode);
	return l < 0 ? LOCK_ACCESS_EXCLUSIVE : l;
}

/*
 * Proves the obligations after the statement, before COMMIT: no lock on a
 * relation that existed before stronger than lock_class_max, and no table
 * rewritten (new relfilenode) unless the op may rewrite. with_locks is false
 * outside a transaction, where the locks are already gone.
 */
int
exec_proof_after(struct step_run *r, struct exec_proof *pf, bool with_locks, struct db_error *err)
{
	PGresult *res;
	const char *params[1];

	if (with_locks) {
		params[0] = pf->rels;
		if (db_exec(r->ex->db, &res, err, SQL_MY_LOCKS, 1, params) < 0)
			return -1;
		for (int i = 0; i < PQntuples(res); i++) {
			const char *rel = PQgetvalue(res, i, 0), *mode = PQgetvalue(res, i, 1);

			if (lock_rank(mode) > (int)r->s->ob.lock_class_max) {
				exec_fail(r, NULL,
					  "obligation violated: the step took %s on %s, but its "
					  "lock_class_max is %s; rolled back",
					  mode, rel, pg_lock_name(r->s->ob.lock_class_max));
				PQclear(res);
				return 1;
			}
		}
		PQclear(res);
	}
	for (int i = 0; i < PQntuples(pf->nodes); i++) {
		const char *name = PQgetvalue(pf->nodes, i, 0), *oid = PQgetvalue(pf->nodes, i, 1);
		const char *before = PQgetvalue(pf->nodes, i, 2);
		const char *p1[1] = { oid };

		if (db_exec(r->ex->db, &res, err,
			    "SELECT relfilenode::text FROM pg_catalog.pg_class WHERE oid = $1::oid", 1,
			    p1) < 0)
			return -1;
		/* a dropped table has no relfilenode, and is not a rewrite */
		if (PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), before) != 0 &&
		    !r->s->ob.may_rewrite) {
			exec_fail(r, NULL,
				  "obligation violated: the step rewrote table %s (relfilenode %s -> "
				  "%s), which %s must not do; rolled back",
				  name, before, PQgetvalue(res, 0, 0), plan_op_name(r->s->op));
			PQclear(res);
			return 1;
		}
		PQclear(res);
	}
	return 0;
}

static int
set_timeouts(struct step_run *r, bool local, struct db_error *err)
{
	char lock[24], stmt[24];
	const char *params[3];

	snprintf(lock, sizeof(lock), "%lldms", (long long)r->s->ob.max_lock_ms);
	snprintf(stmt, sizeof(stmt), "%lldms", (long long)r->s->ob.max_stmt_ms);
	params[0] = lock;
	params[1] = stmt;
	params[2] = local ? "true" : "false";
	return db_exec(r->ex->db, NULL, err,
		       "SELECT pg_catalog.set_config('lock_timeout', $1, $3::bool), "
		       "pg_catalog.set_config('statement_timeout', $2, $3::bool)",
		       3, params);
}

static void
rollback(struct exec *ex)
{
	struct db_error ignore;

	if (db_ok(ex->db))
		(void)db_cmd(ex->db, &ignore, "ROLLBACK");
}

static void
step_ok_event(struct step_run *r, int64_t ms, int attempts)
{
	char metrics[256];

	snprintf(metrics, sizeof(metrics),
		 "{\"execution_time_ms\": %lld, \"rows_affected\": %lld, \"attempts\": %d, "
		 "\"outcome\": \"%s\"}",
		 (long long)ms, (long long)r->rows, attempts,
		 r->already_present ? "already_present" : "applied");
	if (r->already_present)
		exec_event(r->ex, "step.already_present", r->p->id, r->wave, r->s->sha, metrics,
			   "%s: prechecks fail but postchecks hold: adopted as already present",
			   plan_op_name(r->s->op));
	else
		exec_event(r->ex, "step.ok", r->p->id, r->wave, r->s->sha, metrics,
			   "%s: done in %lld ms, %lld rows", plan_op_name(r->s->op), (long long)ms,
			   (long long)r->rows);
}

static bool
retry_lock(struct step_run *r, const struct db_error *err, int *attempt)
{
	char metrics[160];
	int64_t wait;

	if (strcmp(err->sqlstate, SQLSTATE_LOCK_NOT_AVAILABLE) != 0 || r->ex->abort_req)
		return false;
	if (*attempt >= r->ex->cfg.lock_retries)
		return false;
	wait = exec_backoff_ms(*attempt);
	(*attempt)++;
	snprintf(metrics, sizeof(metrics),
		 "{\"attempt\": %d, \"of\": %d, \"backoff_ms\": %lld, \"lock_timeout_ms\": %lld}",
		 *attempt, r->ex->cfg.lock_retries, (long long)wait,
		 (long long)r->s->ob.max_lock_ms);
	exec_event(r->ex, "step.retry", r->p->id, r->wave, r->s->sha, metrics,
		   "%s: lock not granted within %lld ms (%s); retry %d of %d in %lld ms",
		   plan_op_name(r->s->op), (long long)r->s->ob.max_lock_ms, err->message,
		   *attempt, r->ex->cfg.lock_retries, (long long)wait);
	return exec_sleep(r->ex, wait);
}

static void
start_event(struct step_run *r)
{
	exec_event(r->ex, "step.start", r->p->id, r->wave, r->s->sha, NULL, "%s %s: %s",
		   plan_hazard_name(r->s->hazard), plan_op_name(r->s->op), r->s->stmt);
}

/* One attempt; 0 done, -1 failed (res filled), 1 lock timeout to retry (err filled). */
static int
tx_attempt(struct step_run *r, struct db_error *err, int64_t t0)
{
	struct exec_proof pf = { 0 };
	const char *failed = NULL, *failed_post = NULL;
	PGresult *res;
	int rc;

	r->already_present = false;
	r->rows = 0;
	if (db_cmd(r->ex->db, err, "BEGIN") < 0 || set_timeouts(r, true, err) < 0)
		goto dberr;
	if (exec_checks(r, &r->s->ob.prechecks, &failed, err) < 0)
		goto dberr;
	if (failed) {
		if (exec_checks(r, &r->s->ob.postchecks, &failed_post, err) < 0)
			goto dberr;
		if (failed_post || r->s->ob.postchecks.n == 0) {
			rollback(r->ex);
			return exec_fail(r, NULL, "precheck failed: %s", failed);
		}
		r->already_present = true;
	} else {
		if (exec_proof_before(r, &pf, err) < 0)
			goto dberr;
		if (db_exec(r->ex->db, &res, err, r->s->stmt, 0, NULL) < 0)
			goto dberr;
		r->rows = strtoll(PQcmdTuples(res)[0] ? PQcmdTuples(res) : "0", NULL, 10);
		PQclear(res);
		if (exec_checks(r, &r->s->ob.postchecks, &failed_post, err) < 0)
			goto dberr;
		if (failed_post) {
			rollback(r->ex);
			exec_proof_free(&pf);
			return exec_fail(r, NULL, "postcheck failed after the statement: %s; rolled back",
					 failed_post);
		}
		rc = exec_proof_after(r, &pf, true, err);
		if (rc < 0)
			goto dberr;
		if (rc > 0) {
			rollback(r->ex);
			exec_proof_free(&pf);
			return -1;
		}
	}
	if (exec_ledger_insert(r, exec_now_ms() - t0, err) < 0 || db_cmd(r->ex->db, err, "COMMIT") < 0)
		goto dberr;
	exec_proof_free(&pf);
	return 0;
dberr:
	exec_proof_free(&pf);
	rollback(r->ex);
	return 1;
}

int
exec_step_tx(struct step_run *r)
{
	struct db_error err;
	int attempt = 0, rc;
	int64_t t0 = exec_now_ms();

	start_event(r);
	for (;;) {
		rc = tx_attempt(r, &err, t0);
		if (rc == 0) {
			step_ok_event(r, exec_now_ms() - t0, attempt + 1);
			return 0;
		}
		if (rc < 0)
			return -1;
		if (!retry_lock(r, &err, &attempt))
			break;
	}
	if (!strcmp(err.sqlstate, SQLSTATE_LOCK_NOT_AVAILABLE) && !r->ex->abort_req)
		return exec_fail(r, err.sqlstate,
				 "lock not granted within %lld ms after %d retries: %s; nothing "
				 "was applied",
				 (long long)r->s->ob.max_lock_ms, attempt, err.message);
	return exec_fail_db(r, &err, "statement failed, rolled back");
}

/* Drops an INVALID index that an earlier failed or killed build left behind. */
static int
drop_invalid_index(struct step_run *r, const char *idx, struct db_error *err)
{
	const char *params[1] = { idx };
	bool exists, valid;
	PGresult *res;
	char *sql;
	int rc;

	if (db_bool(r->ex->db, err, &exists, "SELECT taskslaps.index_exists($1)", 1, params) < 0 ||
	    db_bool(r->ex->db, err, &valid, "SELECT taskslaps.index_valid($1)", 1, params) < 0)
		return -1;
	if (!exists || valid)
		return 0;
	/*
	 * INVALID also while another backend is still building it (the backend of
	 * a killed run finishes its statement alone). Dropping it then deadlocks
	 * with that build or collides with its catalog update; wait like for a
	 * lock instead: the caller retries with backoff.
	 */
	if (db_exec(r->ex->db, &res, err,
		    "SELECT pid FROM pg_catalog.pg_stat_progress_create_index WHERE index_relid = "
		    "taskslaps.lookup_relation($1)::oid AND pid <> pg_catalog.pg_backend_pid()",
		    1, params) < 0)
		return -1;
	if (PQntuples(res) > 0) {
		memset(err, 0, sizeof(*err));
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", SQLSTATE_LOCK_NOT_AVAILABLE);
		snprintf(err->message, sizeof(err->message),
			 "index %s is INVALID because another session (pid %s) is still building it",
			 idx, PQgetvalue(res, 0, 0));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	exec_event(r->ex, "step.retry", r->p->id, r->wave, r->s->sha, NULL,
		   "index %s is INVALID (left by an earlier build): dropping it concurrently to "
		   "rebuild",
		   idx);
	/* idx is a validated identifier (schema.name at most): quoting is safe */
	{
		const char *dot = strchr(idx, '.');
		if (dot)
			sql = xasprintf("DROP INDEX CONCURRENTLY IF EXISTS \"%.*s\".\"%s\"",
					(int)(dot - idx), idx, dot + 1);
		else
			sql = xasprintf("DROP INDEX CONCURRENTLY IF EXISTS \"%s\"", idx);
	}
	rc = db_cmd(r->ex->db, err, sql);
	free(sql);
	return rc;
}

/* The index an add_index_concurrently step builds, schema-qualified like its table. */
static char *
step_index_name(const struct plan_step *s)
{
	const char *dot = strchr(s->table, '.');

	if (!dot)
		return xstrdup(s->name);
	return xasprintf("%.*s.%s", (int)(dot - s->table), s->table, s->name);
}

/* Back to no timeouts on the session, for what runs next on it. */
static int
reset_timeouts(struct exec *ex)
{
	struct db_error ignore;

	return db_cmd(ex->db, &ignore,
		      "SELECT pg_catalog.set_config('lock_timeout', '0', false), "
		      "pg_catalog.set_config('statement_timeout', '0', false)");
}

static int
nontx_attempt(struct step_run *r, struct db_error *err, int64_t t0)
{
	struct exec_proof pf = { 0 };
	const char *failed = NULL, *failed_post = NULL;
	char *idx = NULL;
	int rc;

	r->already_present = false;
	if (set_timeouts(r, false, err) < 0)
		goto dberr;
	if (r->s->op == OP_ADD_INDEX_CONCURRENTLY) {
		idx = step_index_name(r->s);
		if (drop_invalid_index(r, idx, err) < 0)
			goto dberr;
	}
	if (exec_checks(r, &r->s->ob.prechecks, &failed, err) < 0)
		goto dberr;
	if (failed) {
		if (exec_checks(r, &r->s->ob.postchecks, &failed_post, err) < 0)
			goto dberr;
		if (failed_post || r->s->ob.postchecks.n == 0) {
			free(idx);
			(void)reset_timeouts(r->ex);
			return exec_fail(r, NULL, "precheck failed: %s", failed);
		}
		r->already_present = true;
	} else {
		if (exec_proof_before(r, &pf, err) < 0 || db_exec(r->ex->db, NULL, err, r->s->stmt, 0, NULL) < 0)
			goto dberr;
		if (exec_checks(r, &r->s->ob.postchecks, &failed_post, err) < 0)
			goto dberr;
		if (failed_post) {
			exec_proof_free(&pf);
			free(idx);
			(void)reset_timeouts(r->ex);
			return exec_fail(r, NULL, "postcheck failed after the statement: %s",
					 failed_post);
		}
		rc = exec_proof_after(r, &pf, false, err);
		if (rc != 0) {
			exec_proof_free(&pf);
			free(idx);
			(void)reset_timeouts(r->ex);
			return rc < 0 ? 1 : -1;
		}
	}
	exec_proof_free(&pf);
	free(idx);
	(void)reset_timeouts(r->ex);
	if (exec_ledger_insert(r, exec_now_ms() - t0, err) < 0)
		return 1;
	return 0;
dberr:
	exec_proof_free(&pf);
	free(idx);
	if (db_ok(r->ex->db))
		(void)reset_timeouts(r->ex);
	return 1;
}

int
exec_step_nontx(struct step_run *r)
{
	struct db_error err;
	int attempt = 0, rc;
	int64_t t0 = exec_now_ms();

	start_event(r);
	for (;;) {
		rc = nontx_attempt(r, &err, t0);
		if (rc == 0) {
			step_ok_event(r, exec_now_ms() - t0, attempt + 1);
			return 0;
		}
		if (rc < 0)
			return -1;
		/* a CIC that timed out leaves an INVALID index; the next attempt drops it */
		if (!retry_lock(r, &err, &attempt))
			break;
	}
	if (r->s->op == OP_ADD_INDEX_CONCURRENTLY && db_ok(r->ex->db)) {
		/* leave no INVALID index behind a failed build */
		struct db_error ignore;
		char *idx = step_index_name(r->s);
		(void)drop_invalid_index(r, idx, &ignore);
		free(idx);
	}
	if (!strcmp(err.sqlstate, SQLSTATE_LOCK_NOT_AVAILABLE) && !r->ex->abort_req)
		return exec_fail(r, err.sqlstate, "lock not granted within %lld ms after %d retries: %s",
				 (long long)r->s->ob.max_lock_ms, attempt, err.message);
	return exec_fail_db(r, &err, "statement failed");
}
