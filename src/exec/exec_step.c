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

/*
 * The locks this backend holds on user relations (not the system catalogs,
 * TOAST or temporary tables): oid, name, mode.
 */
#define SQL_MY_LOCKS                                                                          \
	"SELECT l.relation::text, l.relation::regclass::text, l.mode FROM pg_catalog.pg_locks l " \
	"JOIN pg_catalog.pg_class c ON c.oid = l.relation JOIN pg_catalog.pg_namespace n ON "     \
	"n.oid = c.relnamespace WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = "      \
	"'relation' AND l.granted AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d "  \
	"WHERE d.datname = pg_catalog.current_database()) AND c.relkind IN "                      \
	"('r','p','m','v','f','i','I','S') AND n.nspname NOT IN ('pg_catalog', "                  \
	"'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE "      \
	"'pg\\_temp%'"

/*
 * Of the given relations, those that other sessions see: asked on the runner
 * lock's connection, outside the step's transaction, so a relation the step
 * itself created (uncommitted) is not there, and one that existed before is,
 * even when the step altered or dropped it.
 */
#define SQL_COMMITTED_RELATIONS \
	"SELECT c.oid::text FROM pg_catalog.pg_class c WHERE c.oid = ANY($1::oid[])"

/*
 * The touched tables' name, oid and relfilenode (missing ones are left out):
 * the names are resolved once, then pg_class is read by oid.
 */
#define SQL_RELFILENODES                                                                      \
	"SELECT c.oid::pg_catalog.regclass::text, c.oid::text, c.relfilenode::text FROM "        \
	"pg_catalog.pg_class c WHERE c.oid = ANY (ARRAY(SELECT "                                 \
	"taskslaps.lookup_relation(t.name)::oid FROM pg_catalog.unnest($1::text[]) AS t(name)))"

/* The same tables' relfilenode now, by oid (a dropped one is left out). */
#define SQL_RELFILENODES_AFTER                                                          \
	"SELECT c.oid::text, c.relfilenode::text FROM pg_catalog.pg_class c WHERE c.oid = " \
	"ANY($1::oid[])"

#define SQL_SET_TIMEOUTS                                                                      \
	"SELECT pg_catalog.set_config('lock_timeout', $1, $3::bool), "                       \
	"pg_catalog.set_config('statement_timeout', $2, $3::bool)"

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

/* The oids of the touched tables found before, as an oid[] literal. */
static char *
node_oids(const PGresult *nodes)
{
	struct strbuf sb = STRBUF_INIT;

	sb_putc(&sb, '{');
	for (int i = 0; i < PQntuples(nodes); i++)
		sb_printf(&sb, "%s%s", i ? "," : "", PQgetvalue(nodes, i, 1));
	sb_putc(&sb, '}');
	return sb_detach(&sb);
}

/* The statement of the proof's "before", for a batch; *names to free. */
static void
proof_before_stmt(struct step_run *r, struct db_stmt *st, char **names)
{
	*names = strv_array(&r->s->touched);
	*st = (struct db_stmt){ .sql = SQL_RELFILENODES, .nparams = 1,
				.params = (const char *const *)names, .fixed = true };
}

/* Takes the result of proof_before_stmt (moved out of st). */
static void
proof_before_take(struct exec_proof *pf, struct db_stmt *st)
{
	pf->nodes = st->res;
	st->res = NULL;
	pf->oids = node_oids(pf->nodes);
}

int
exec_proof_before(struct step_run *r, struct exec_proof *pf, struct db_error *err)
{
	struct db_stmt st;
	char *names;
	int rc;

	memset(pf, 0, sizeof(*pf));
	proof_before_stmt(r, &st, &names);
	rc = db_batch(r->ex->db, &st, 1, err, NULL);
	free(names);
	if (rc < 0)
		return -1;
	proof_before_take(pf, &st);
	return 0;
}

void
exec_proof_free(struct exec_proof *pf)
{
	free(pf->oids);
	PQclear(pf->nodes);
	memset(pf, 0, sizeof(*pf));
}

static int
lock_rank(const char *mode)
{
	int l = pg_lock_from_name(mode);
	return l < 0 ? LOCK_ACCESS_EXCLUSIVE : l;
}

/* The statements of the proof's "after": locks (when in a transaction), relfilenodes. */
static size_t
proof_after_stmts(struct exec_proof *pf, bool with_locks, struct db_stmt *st)
{
	size_t n = 0;

	static const char *const none[1];

	(void)pf;
	if (with_locks)
		st[n++] = (struct db_stmt){ .sql = SQL_MY_LOCKS, .params = none, .fixed = true };
	st[n++] = (struct db_stmt){ .sql = SQL_RELFILENODES_AFTER, .nparams = 1,
				    .params = (const char *const *)&pf->oids, .fixed = true };
	return n;
}

/*
 * Judges the obligations from the proof's results: no lock on a relation that
 * existed before stronger than lock_class_max, and no table rewritten (new
 * relfilenode) unless the op may rewrite. 0 proved; 1 violated (res filled);
 * -1 database error (err filled).
 */
static int
proof_judge(struct step_run *r, const struct exec_proof *pf, const PGresult *locks,
	    const PGresult *after, struct db_error *err)
{
	struct strbuf over = STRBUF_INIT;
	PGresult *seen = NULL;

	/* locks stronger than lock_class_max: they count on relations that existed before */
	for (int i = 0; locks && i < PQntuples(locks); i++)
		if (lock_rank(PQgetvalue(locks, i, 2)) > (int)r->s->ob.lock_class_max)
			sb_printf(&over, "%s%s", over.len ? "," : "{", PQgetvalue(locks, i, 0));
	if (over.len) {
		const char *params[1];

		sb_putc(&over, '}');
		params[0] = sb_str(&over);
		if (db_execf(r->ex->lockdb, &seen, err, SQL_COMMITTED_RELATIONS, 1, params) < 0) {
			sb_free(&over);
			return -1;
		}
	}
	sb_free(&over);
	for (int i = 0; seen && i < PQntuples(locks); i++) {
		const char *oid = PQgetvalue(locks, i, 0), *rel = PQgetvalue(locks, i, 1);
		const char *mode = PQgetvalue(locks, i, 2);
		bool existed = false;

		if (lock_rank(mode) <= (int)r->s->ob.lock_class_max)
			continue;
		for (int j = 0; j < PQntuples(seen) && !existed; j++)
			existed = strcmp(PQgetvalue(seen, j, 0), oid) == 0;
		if (existed) {
			exec_fail(r, NULL,
				  "obligation violated: the step took %s on %s, but its "
				  "lock_class_max is %s; rolled back",
				  mode, rel, pg_lock_name(r->s->ob.lock_class_max));
			PQclear(seen);
			return 1;
		}
	}
	PQclear(seen);
	if (r->s->ob.may_rewrite)
		return 0;
	for (int i = 0; i < PQntuples(pf->nodes); i++) {
		const char *name = PQgetvalue(pf->nodes, i, 0), *oid = PQgetvalue(pf->nodes, i, 1);
		const char *before = PQgetvalue(pf->nodes, i, 2);

		/* a dropped table has no relfilenode, and is not a rewrite */
		for (int j = 0; j < PQntuples(after); j++) {
			const char *now = PQgetvalue(after, j, 1);

			if (strcmp(PQgetvalue(after, j, 0), oid) != 0 || strcmp(now, before) == 0)
				continue;
			exec_fail(r, NULL,
				  "obligation violated: the step rewrote table %s (relfilenode %s -> "
				  "%s), which %s must not do; rolled back",
				  name, before, now, plan_op_name(r->s->op));
			return 1;
		}
	}
	return 0;
}

/*
 * Proves the obligations after the statement, before COMMIT. with_locks is
 * false outside a transaction, where the locks are already gone.
 */
int
exec_proof_after(struct step_run *r, struct exec_proof *pf, bool with_locks, struct db_error *err)
{
	struct db_stmt st[2];
	size_t n = proof_after_stmts(pf, with_locks, st);
	int rc;

	if (db_batch(r->ex->db, st, n, err, NULL) < 0) {
		for (size_t i = 0; i < n; i++)
			PQclear(st[i].res);
		return -1;
	}
	rc = proof_judge(r, pf, with_locks ? st[0].res : NULL, st[n - 1].res, err);
	for (size_t i = 0; i < n; i++)
		PQclear(st[i].res);
	return rc;
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
	return db_execf(r->ex->db, NULL, err, SQL_SET_TIMEOUTS, 3, params);
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
		 exec_ledger_outcome(r));
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

static void
clear_stmts(struct db_stmt *st, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		PQclear(st[i].res);
		st[i].res = NULL;
	}
}

/*
 * The prechecks failed: when the postchecks already hold the step's effect
 * is there (a run killed after COMMIT but before it was recorded, or a hand
 * change), and it is adopted; otherwise the step fails. 0 adopt, -1 failed
 * (res filled, transaction rolled back), 1 database error (err filled).
 */
static int
adopt_or_fail(struct step_run *r, const char *failed, struct db_error *err)
{
	const char *failed_post = NULL;
	char *why = NULL;

	if (exec_checks(r, &r->s->ob.postchecks, &failed_post, err) < 0)
		return 1;
	if (failed_post || r->s->ob.postchecks.n == 0) {
		rollback(r->ex);
		return exec_fail(r, NULL, "precheck failed: %s", failed);
	}
	if (exec_present_compare(r, &why, err) < 0) /* type, nullability, default */
		return 1;
	if (why) {
		rollback(r->ex);
		exec_fail(r, NULL, "precheck failed: %s; not adopted as already present: %s",
			  failed, why);
		free(why);
		return -1;
	}
	r->already_present = true;
	return 0;
}

/*
 * One attempt; 0 done, -1 failed (res filled), 1 lock timeout to retry (err
 * filled). Three round trips when nothing fails, each a pipelined batch:
 *   1. BEGIN, the timeouts, the computed prechecks, the proof's "before";
 *   2. the timeouts again, the statement, the computed postchecks, the proof's "after";
 *   3. the ledger row and COMMIT.
 * The author's own checks, if any, run one at a time after the computed ones,
 * each in a savepoint rolled back at once (exec_checks_user).
 * A statement after a failing one in a batch does not run, so a failed
 * statement is never followed by its checks or its ledger row.
 */
static int
tx_attempt_run(struct step_run *r, struct db_error *err, int64_t t0, bool *user_ran);

/*
 * After an author's `sql` statement was sent, whatever the outcome, the
 * transaction is over (committed or rolled back) when tx_attempt_run returns:
 * the prepared statements, which that SQL may have deallocated, are dropped
 * and prepared again from then on, so that the failure's own events and
 * status are recorded too.
 */
static int
tx_attempt(struct step_run *r, struct db_error *err, int64_t t0)
{
	bool user_ran = false;
	int rc = tx_attempt_run(r, err, t0, &user_ran);

	if (user_ran)
		db_prepared_reset(r->ex->db);
	return rc;
}

static int
tx_attempt_run(struct step_run *r, struct db_error *err, int64_t t0, bool *user_ran)
{
	struct exec_proof pf = { 0 };
	const struct plan_strv *pre = &r->s->ob.prechecks, *post = &r->s->ob.postchecks;
	size_t npre = exec_checks_computed(r, pre), npost = exec_checks_computed(r, post);
	char *pre_sql = exec_checks_sql(pre, npre), *post_sql = NULL, *names = NULL;
	const char *failed = NULL, *failed_post = NULL;
	char lock[24], stmt[24], idx[16], msbuf[24], rows[24];
	const char *tparams[3] = { lock, stmt, "true" };
	const char *lparams[13], *lsql;
	int lnparams;
	struct db_stmt st[5];
	size_t n = 0, ipre = 0, iproof, ipost = 0;
	/*
	 * After an author's SQL, in the same transaction, this program's statements
	 * are not the prepared ones: that SQL may have run DEALLOCATE ALL.
	 */
	bool user_sql = r->s->op == OP_SQL;
	int rc;

	r->already_present = false;
	r->rows = 0;
	snprintf(lock, sizeof(lock), "%lldms", (long long)r->s->ob.max_lock_ms);
	snprintf(stmt, sizeof(stmt), "%lldms", (long long)r->s->ob.max_stmt_ms);

	/* 1: open, timeouts, prechecks, proof before */
	st[n++] = (struct db_stmt){ .sql = "BEGIN", .fixed = true };
	st[n++] = (struct db_stmt){ .sql = SQL_SET_TIMEOUTS, .nparams = 3, .params = tparams,
				    .fixed = true };
	if (pre_sql) {
		ipre = n;
		st[n++] = (struct db_stmt){ .sql = pre_sql };
	}
	iproof = n;
	proof_before_stmt(r, st + n, &names);
	n++;
	rc = db_batch(r->ex->db, st, n, err, NULL);
	free(pre_sql);
	free(names);
	if (rc < 0) {
		clear_stmts(st, n);
		goto dberr;
	}
	if (npre)
		failed = exec_checks_first_false(st[ipre].res, pre);
	proof_before_take(&pf, st + iproof);
	clear_stmts(st, n);
	if (!failed && exec_checks_user(r, pre, npre, &failed, err) < 0)
		goto dberr;
	if (failed) {
		exec_proof_free(&pf);
		rc = adopt_or_fail(r, failed, err);
		if (rc < 0)
			return -1;
		if (rc > 0)
			goto dberr;
	} else {
		/*
		 * 2: the timeouts again (nothing that ran before, an author's check
		 * included, can have lifted them), the statement, postchecks, proof
		 * after. In one pipeline, the statement runs only if the timeouts
		 * were set just before it.
		 */
		n = 0;
		st[n++] = (struct db_stmt){ .sql = SQL_SET_TIMEOUTS, .nparams = 3, .params = tparams,
					    .fixed = true };
		st[n++] = (struct db_stmt){ .sql = r->s->stmt };
		post_sql = exec_checks_sql(post, npost);
		if (post_sql) {
			ipost = n;
			st[n++] = (struct db_stmt){ .sql = post_sql };
		}
		iproof = n;
		n += proof_after_stmts(&pf, true, st + n);
		for (size_t i = iproof; i < n; i++)
			st[i].fixed = !user_sql;
		*user_ran = user_sql;
		rc = db_batch(r->ex->db, st, n, err, NULL);
		free(post_sql);
		if (rc < 0) {
			clear_stmts(st, n);
			goto dberr;
		}
		r->rows = strtoll(PQcmdTuples(st[1].res)[0] ? PQcmdTuples(st[1].res) : "0", NULL, 10);

		if (npost)
			failed_post = exec_checks_first_false(st[ipost].res, post);
		rc = failed_post ? 0 : proof_judge(r, &pf, st[iproof].res, st[iproof + 1].res, err);
		clear_stmts(st, n);
		if (rc < 0)
			goto dberr;
		if (!failed_post && rc == 0 &&
		    exec_checks_user(r, post, npost, &failed_post, err) < 0)
			goto dberr;
		if (failed_post) {
			rollback(r->ex);
			exec_proof_free(&pf);
			return exec_fail(r, NULL, "postcheck failed after the statement: %s; rolled back",
					 failed_post);
		}
		if (rc > 0) {
			rollback(r->ex);
			exec_proof_free(&pf);
			return -1;
		}
	}
	/* 3: record and commit */
	lsql = exec_ledger_params(r, exec_now_ms() - t0, lparams, &lnparams, idx, msbuf, rows);
	n = 0;
	st[n++] = (struct db_stmt){ .sql = lsql, .nparams = lnparams, .params = lparams,
				    .fixed = !user_sql };
	st[n++] = (struct db_stmt){ .sql = "COMMIT", .fixed = !user_sql };
	rc = db_batch(r->ex->db, st, n, err, NULL);
	clear_stmts(st, n);
	if (rc < 0)
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

/*
 * The index an add_index_concurrently step (or an sql step's CREATE INDEX
 * CONCURRENTLY) builds, schema-qualified like its table; NULL for others.
 */
static char *
step_index_name(const struct plan_step *s)
{
	const char *dot;

	if (s->op == OP_SQL)
		return s->cic_index ? xstrdup(s->cic_index) : NULL;
	if (s->op != OP_ADD_INDEX_CONCURRENTLY)
		return NULL;
	dot = strchr(s->table, '.');

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
	idx = step_index_name(r->s);
	if (idx && drop_invalid_index(r, idx, err) < 0)
		goto dberr;
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
		/* again after the checks: the statement runs under the step's own timeouts */
		if (set_timeouts(r, false, err) < 0)
			goto dberr;
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
	if (db_ok(r->ex->db)) {
		/* leave no INVALID index behind a failed build */
		struct db_error ignore;
		char *idx = step_index_name(r->s);
		if (idx)
			(void)drop_invalid_index(r, idx, &ignore);
		free(idx);
	}
	if (!strcmp(err.sqlstate, SQLSTATE_LOCK_NOT_AVAILABLE) && !r->ex->abort_req)
		return exec_fail(r, err.sqlstate, "lock not granted within %lld ms after %d retries: %s",
				 (long long)r->s->ob.max_lock_ms, attempt, err.message);
	return exec_fail_db(r, &err, "statement failed");
}
