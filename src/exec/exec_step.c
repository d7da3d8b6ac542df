/*
 * One step: a transaction that checks, runs, proves and records — or, for
 * CREATE/DROP INDEX CONCURRENTLY, the same outside a transaction.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec_int.h"
#include "sql/sql.h"
#include "util/alloc.h"
#include "util/strbuf.h"

/*
 * The locks this backend holds on user relations (not the system catalogs,
 * TOAST or temporary tables): oid, name, mode.
 */
#define SQL_MY_LOCKS                                                                               \
	"SELECT l.relation::text, l.relation::regclass::text, l.mode FROM pg_catalog.pg_locks l "  \
	"JOIN pg_catalog.pg_class c ON c.oid = l.relation JOIN pg_catalog.pg_namespace n ON "      \
	"n.oid = c.relnamespace WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = "       \
	"'relation' AND l.granted AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d "   \
	"WHERE d.datname = pg_catalog.current_database()) AND c.relkind IN "                       \
	"('r','p','m','v','f','i','I','S') AND n.nspname NOT IN ('pg_catalog', "                   \
	"'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE "       \
	"'pg\\_temp%'"

/*
 * Of the given relations, those that other sessions see: asked on the runner
 * lock's connection, outside the step's transaction, so a relation the step
 * itself created (uncommitted) is not there, and one that existed before is,
 * even when the step altered or dropped it.
 */
#define SQL_COMMITTED_RELATIONS                                                                    \
	"SELECT c.oid::text FROM pg_catalog.pg_class c WHERE c.oid = ANY($1::oid[])"

/*
 * The touched tables' name, oid and relfilenode (missing ones are left out):
 * the names are resolved once, then pg_class is read by oid.
 */
#define SQL_RELFILENODES                                                                           \
	"SELECT c.oid::pg_catalog.regclass::text, c.oid::text, c.relfilenode::text FROM "          \
	"pg_catalog.pg_class c WHERE c.oid = ANY (ARRAY(SELECT "                                   \
	"taskslaps.lookup_relation(t.name)::oid FROM pg_catalog.unnest($1::text[]) AS t(name)))"

/* The same tables' relfilenode now, by the names (oid, relfilenode; a missing one is left out). */
#define SQL_RELFILENODES_BY_NAME                                                                   \
	"SELECT c.oid::text, c.relfilenode::text FROM pg_catalog.pg_class c WHERE c.oid = ANY "    \
	"(ARRAY(SELECT taskslaps.lookup_relation(t.name)::oid FROM pg_catalog.unnest($1::text[]) " \
	"AS t(name)))"

/* The same tables' relfilenode now, by oid (a dropped one is left out). */
#define SQL_RELFILENODES_AFTER                                                                     \
	"SELECT c.oid::text, c.relfilenode::text FROM pg_catalog.pg_class c WHERE c.oid = "        \
	"ANY($1::oid[])"

#define SQL_SET_TIMEOUTS                                                                           \
	"SELECT pg_catalog.set_config('lock_timeout', $1, $3::bool), "                             \
	"pg_catalog.set_config('statement_timeout', $2, $3::bool)"

static char *
strv_array(const struct plan_strv *v)
{
	struct strbuf sb = STRBUF_INIT;

	sb_putc(&sb, '{');
	for (size_t i = 0; i < v->n; i++)
		sb_printf(&sb, "%s\"%s\"", i ? "," : "",
			  v->v[i]); /* plain identifiers: no quoting needed */
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
	*st = (struct db_stmt){ .sql = SQL_RELFILENODES,
				.nparams = 1,
				.params = (const char *const *)names,
				.fixed = true };
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

size_t
exec_proof_after_stmts(struct exec_proof *pf, bool with_locks, struct db_stmt *st)
{
	size_t n = 0;

	static const char *const none[1];

	(void)pf;
	if (with_locks)
		st[n++] = (struct db_stmt){ .sql = SQL_MY_LOCKS, .params = none, .fixed = true };
	st[n++] = (struct db_stmt){ .sql = SQL_RELFILENODES_AFTER,
				    .nparams = 1,
				    .params = (const char *const *)&pf->oids,
				    .fixed = true };
	return n;
}

enum exec_attempt
exec_proof_judge(struct step_run *r, const struct exec_proof *pf, const PGresult *locks,
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
			return exec_attempt_db(r, err, "proving the step's obligations");
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
			return ATTEMPT_PROMISE_VIOLATED;
		}
	}
	PQclear(seen);
	if (r->s->ob.may_rewrite)
		return ATTEMPT_OK;
	for (int i = 0; i < PQntuples(pf->nodes); i++) {
		const char *name = PQgetvalue(pf->nodes, i, 0), *oid = PQgetvalue(pf->nodes, i, 1);
		const char *before = PQgetvalue(pf->nodes, i, 2);

		/* a dropped table has no relfilenode, and is not a rewrite */
		for (int j = 0; j < PQntuples(after); j++) {
			const char *now = PQgetvalue(after, j, 1);

			if (strcmp(PQgetvalue(after, j, 0), oid) != 0 || strcmp(now, before) == 0)
				continue;
			exec_fail(
			    r, NULL,
			    "obligation violated: the step rewrote table %s (relfilenode %s -> "
			    "%s), which %s must not do; rolled back",
			    name, before, now, plan_op_name(r->s->op));
			return ATTEMPT_PROMISE_VIOLATED;
		}
	}
	return ATTEMPT_OK;
}

/*
 * Proves the obligations after the statement, before COMMIT. with_locks is
 * false outside a transaction, where the locks are already gone.
 */
enum exec_attempt
exec_proof_after(struct step_run *r, struct exec_proof *pf, bool with_locks, struct db_error *err)
{
	struct db_stmt st[2];
	size_t n = exec_proof_after_stmts(pf, with_locks, st);
	enum exec_attempt a;

	if (db_batch(r->ex->db, st, n, err, NULL) < 0) {
		for (size_t i = 0; i < n; i++)
			PQclear(st[i].res);
		return exec_attempt_db(r, err, "proving the step's obligations");
	}
	a = exec_proof_judge(r, pf, with_locks ? st[0].res : NULL, st[n - 1].res, err);
	for (size_t i = 0; i < n; i++)
		PQclear(st[i].res);
	return a;
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
 * change), and it is adopted (ATTEMPT_OK); otherwise the step fails
 * (ATTEMPT_FAILED, res filled), or what exec_attempt_db makes of a failed
 * query. The caller rolls back unless the step is adopted.
 */
static enum exec_attempt
adopt_or_fail(struct step_run *r, const char *failed, struct db_error *err)
{
	const char *failed_post = NULL;
	char *why = NULL;

	if (exec_checks(r, &r->s->ob.postchecks, &failed_post, err) < 0)
		return exec_attempt_db(r, err, "statement failed, rolled back");
	if (failed_post || r->s->ob.postchecks.n == 0)
		return exec_fail(r, NULL, "precheck failed: %s", failed);
	if (exec_present_compare(r, &why, err) < 0) /* type, nullability, default */
		return exec_attempt_db(r, err, "statement failed, rolled back");
	if (why) {
		exec_fail(r, NULL, "precheck failed: %s; not adopted as already present: %s",
			  failed, why);
		free(why);
		return ATTEMPT_FAILED;
	}
	r->already_present = true;
	return ATTEMPT_OK;
}

/* A transactional step's attempt: exec_attempt_fn, arg the step's start (int64_t *). */
static enum exec_attempt tx_attempt(struct step_run *r, struct db_error *err, void *arg);

/*
 * One attempt, as exec_attempt_fn. Two round trips when nothing fails, each
 * a pipelined batch (tx_fast, then tx_record):
 *   1. BEGIN, the timeouts, the computed prechecks (as one statement that
 *      raises when one is not true, so that nothing after it runs), the
 *      proof's "before", the statement, the computed postchecks, the proof's
 *      "after";
 *   2. the ledger row, the events and COMMIT.
 * A step with prechecks of its author, or whose prechecks are not all true,
 * goes the careful way instead (tx_checked): its prechecks are read in a
 * round trip of their own and told one by one, the author's one at a time
 * after the computed ones, each in a savepoint rolled back at once
 * (exec_checks_user); the statement follows in a second round trip. The
 * author's postchecks run the same way after the computed ones.
 * A statement after a failing one in a batch does not run, so a failed
 * statement is never followed by its checks or its ledger row. Anything but
 * ATTEMPT_OK leaves the transaction rolled back.
 */
static enum exec_attempt tx_attempt_run(struct step_run *r, struct db_error *err, int64_t t0,
					bool *user_ran);

/*
 * After an author's `sql` statement was sent, whatever the outcome, the
 * transaction is over (committed or rolled back) when tx_attempt_run returns:
 * the prepared statements, which that SQL may have deallocated, are dropped
 * and prepared again from then on, so that the failure's own events and
 * status are recorded too.
 */
static enum exec_attempt
tx_attempt(struct step_run *r, struct db_error *err, void *arg)
{
	bool user_ran = false;
	enum exec_attempt a;

	r->attempts++;
	a = tx_attempt_run(r, err, *(const int64_t *)arg, &user_ran);
	/* what was carried into the transaction is sent again unless it committed */
	db_carry_end(r->ex->db, a == ATTEMPT_OK);
	if (a != ATTEMPT_OK && r->running_later) {
		/* not committed with `applied`: the plan shows as running from now on */
		exec_plan_status_defer(r->ex, r->p, r->meta, "running");
		r->running_later = false;
	}
	if (user_ran)
		db_prepared_reset(r->ex->db);
	return a;
}

/* Whether every table of the proof's "before" is in rows of (oid, relfilenode). */
static bool
proof_all_found(const struct exec_proof *pf, const PGresult *after)
{
	for (int i = 0; i < PQntuples(pf->nodes); i++) {
		bool found = false;

		for (int j = 0; j < PQntuples(after) && !found; j++)
			found = strcmp(PQgetvalue(after, j, 0), PQgetvalue(pf->nodes, i, 1)) == 0;
		if (!found)
			return false;
	}
	return true;
}

/*
 * After the statement, in its transaction: the postchecks (the computed
 * ones' result in post, NULL when there are none; the author's run here)
 * and the proof (locks and relfilenodes, after). ATTEMPT_OK, or the
 * transaction rolled back and another result.
 */
static enum exec_attempt
tx_judge(struct step_run *r, struct exec_proof *pf, const PGresult *post, const PGresult *locks,
	 const PGresult *after, struct db_error *err)
{
	const struct plan_strv *checks = &r->s->ob.postchecks;
	size_t npost = exec_checks_computed(r, checks);
	const char *failed_post = post ? exec_checks_first_false(post, checks) : NULL;
	enum exec_attempt a = failed_post ? ATTEMPT_OK : exec_proof_judge(r, pf, locks, after, err);

	if (!failed_post && a == ATTEMPT_OK &&
	    exec_checks_user(r, checks, npost, &failed_post, err) < 0) {
		exec_db_rollback(r->ex);
		return exec_attempt_db(r, err, "statement failed, rolled back");
	}
	if (failed_post) {
		exec_db_rollback(r->ex);
		exec_fail(r, NULL, "postcheck failed after the statement: %s; rolled back",
			  failed_post);
		return ATTEMPT_PROMISE_VIOLATED;
	}
	if (a != ATTEMPT_OK)
		exec_db_rollback(r->ex);
	return a;
}

/*
 * The statement and everything around it up to the ledger row in one round
 * trip (the first of tx_attempt_run). ATTEMPT_UNSET when the step goes the
 * careful way instead (tx_checked): it has prechecks of its author, or one
 * of its prechecks is not true (nothing ran, the transaction is rolled back).
 * Otherwise as tx_checked: ATTEMPT_OK with the transaction open, or the
 * transaction rolled back and another result.
 */
static enum exec_attempt
tx_fast(struct step_run *r, struct db_error *err, struct exec_proof *pf, bool *user_ran)
{
	const struct plan_strv *pre = &r->s->ob.prechecks, *post = &r->s->ob.postchecks;
	size_t npre = exec_checks_computed(r, pre), npost = exec_checks_computed(r, post);
	char lock[24], stmt[24], *pre_sql, *post_sql, *names = NULL;
	const char *tparams[3] = { lock, stmt, "true" };
	static const char *const none[1];
	/* after an author's SQL, not the prepared ones: it may have run DEALLOCATE ALL */
	bool user_sql = r->s->op == OP_SQL;
	struct db_stmt st[8];
	size_t n = 0, ipre = 0, ibefore, istmt, ipost = 0, ilocks = SIZE_MAX, iafter, failed = 0;
	char **pre_vals = NULL, **post_vals = NULL;
	int npv = 0, npostv = 0;
	enum exec_attempt a;
	int rc;

	if (npre < pre->n)
		return ATTEMPT_UNSET;
	snprintf(lock, sizeof(lock), "%lldms", (long long)r->s->ob.max_lock_ms);
	snprintf(stmt, sizeof(stmt), "%lldms", (long long)r->s->ob.max_stmt_ms);
	pre_sql = exec_checks_guard_sql(pre, npre);
	/* their names as parameters: one text for every step of an op, prepared once */
	if (pre_sql && !user_sql)
		npv = exec_checks_lift(&pre_sql, &pre_vals);
	if (pre_sql && !sql_is_checks_guard(pre_sql, npre, NULL)) {
		/* read back by PostgreSQL's parser, as everything sent: else the careful way */
		free(pre_sql);
		sql_lift_free(pre_vals, npv);
		return ATTEMPT_UNSET;
	}
	post_sql = exec_checks_sql(post, npost);
	if (post_sql && !user_sql)
		npostv = exec_checks_lift(&post_sql, &post_vals);
	st[n++] = (struct db_stmt){ .sql = "BEGIN", .fixed = true };
	st[n++] = (struct db_stmt){
		.sql = SQL_SET_TIMEOUTS, .nparams = 3, .params = tparams, .fixed = true
	};
	if (pre_sql) {
		ipre = n;
		st[n++] = (struct db_stmt){ .sql = pre_sql,
					    .nparams = npv,
					    .params = (const char *const *)pre_vals,
					    .fixed = npv > 0 };
	}
	ibefore = n;
	proof_before_stmt(r, st + n, &names);
	n++;
	istmt = n;
	st[n++] = (struct db_stmt){ .sql = r->s->stmt };
	if (post_sql) {
		ipost = n;
		st[n++] = (struct db_stmt){ .sql = post_sql,
					    .nparams = npostv,
					    .params = (const char *const *)post_vals,
					    .fixed = npostv > 0 };
	}
	/* no lock is stronger than AccessExclusiveLock: that promise needs no reading */
	if (r->s->ob.lock_class_max < LOCK_ACCESS_EXCLUSIVE) {
		ilocks = n;
		st[n++] =
		    (struct db_stmt){ .sql = SQL_MY_LOCKS, .params = none, .fixed = !user_sql };
	}
	/* by name: the oids are the "before"'s answer, which this round trip does not have */
	iafter = n;
	st[n++] = (struct db_stmt){ .sql = SQL_RELFILENODES_BY_NAME,
				    .nparams = 1,
				    .params = (const char *const *)&names,
				    .fixed = !user_sql };
	*user_ran = user_sql;
	rc = db_batch(r->ex->db, st, n, err, &failed);
	free(pre_sql);
	sql_lift_free(pre_vals, npv);
	free(names);
	if (rc < 0) {
		free(post_sql);
		sql_lift_free(post_vals, npostv);
		clear_stmts(st, n);
		exec_db_rollback(r->ex);
		if (npre && failed == ipre && !err->conn_lost) {
			/* a precheck is not true (or failed): which, the careful way */
			*user_ran = false;
			return ATTEMPT_UNSET;
		}
		return exec_attempt_db(r, err, "statement failed, rolled back");
	}
	r->rows =
	    strtoll(PQcmdTuples(st[istmt].res)[0] ? PQcmdTuples(st[istmt].res) : "0", NULL, 10);
	proof_before_take(pf, st + ibefore);
	if (!r->s->ob.may_rewrite && !proof_all_found(pf, st[iafter].res)) {
		/* a table the statement renamed or dropped: its relfilenode by oid */
		struct db_stmt by_oid = { .sql = SQL_RELFILENODES_AFTER,
					  .nparams = 1,
					  .params = (const char *const *)&pf->oids,
					  .fixed = !user_sql };

		if (db_batch(r->ex->db, &by_oid, 1, err, NULL) < 0) {
			free(post_sql);
			sql_lift_free(post_vals, npostv);
			clear_stmts(st, n);
			exec_db_rollback(r->ex);
			return exec_attempt_db(r, err, "statement failed, rolled back");
		}
		PQclear(st[iafter].res);
		st[iafter].res = by_oid.res;
	}
	a = tx_judge(r, pf, post_sql ? st[ipost].res : NULL,
		     ilocks == SIZE_MAX ? NULL : st[ilocks].res, st[iafter].res, err);
	free(post_sql);
	sql_lift_free(post_vals, npostv);
	clear_stmts(st, n);
	return a;
}

/*
 * The careful way, in two round trips: BEGIN, the timeouts, the computed
 * prechecks (each told), the proof's "before"; then the author's prechecks;
 * then, when all hold, the timeouts again, the statement, the postchecks and
 * the proof's "after" — or, when one does not, the adoption of a step whose
 * postchecks hold (adopt_or_fail). ATTEMPT_OK with the transaction open, or
 * the transaction rolled back and another result.
 */
static enum exec_attempt
tx_checked(struct step_run *r, struct db_error *err, struct exec_proof *pf, bool *user_ran)
{
	const struct plan_strv *pre = &r->s->ob.prechecks, *post = &r->s->ob.postchecks;
	size_t npre = exec_checks_computed(r, pre), npost = exec_checks_computed(r, post);
	char *pre_sql = exec_checks_sql(pre, npre), *post_sql = NULL, *names = NULL;
	const char *failed = NULL;
	char lock[24], stmt[24];
	const char *tparams[3] = { lock, stmt, "true" };
	struct db_stmt st[5];
	size_t n = 0, ipre = 0, iproof, ipost = 0;
	bool user_sql = r->s->op == OP_SQL;
	enum exec_attempt a = ATTEMPT_UNSET;
	int rc;

	snprintf(lock, sizeof(lock), "%lldms", (long long)r->s->ob.max_lock_ms);
	snprintf(stmt, sizeof(stmt), "%lldms", (long long)r->s->ob.max_stmt_ms);

	/* 1: open, timeouts, prechecks, proof before */
	st[n++] = (struct db_stmt){ .sql = "BEGIN", .fixed = true };
	st[n++] = (struct db_stmt){
		.sql = SQL_SET_TIMEOUTS, .nparams = 3, .params = tparams, .fixed = true
	};
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
	proof_before_take(pf, st + iproof);
	clear_stmts(st, n);
	if (!failed && exec_checks_user(r, pre, npre, &failed, err) < 0)
		goto dberr;
	if (failed) {
		exec_proof_free(pf);
		a = adopt_or_fail(r, failed, err);
		if (a != ATTEMPT_OK)
			exec_db_rollback(r->ex);
		return a;
	}
	/*
	 * 2: the timeouts again (nothing that ran before, an author's check
	 * included, can have lifted them), the statement, postchecks, proof
	 * after. In one pipeline, the statement runs only if the timeouts were
	 * set just before it.
	 */
	n = 0;
	st[n++] = (struct db_stmt){
		.sql = SQL_SET_TIMEOUTS, .nparams = 3, .params = tparams, .fixed = true
	};
	st[n++] = (struct db_stmt){ .sql = r->s->stmt };
	post_sql = exec_checks_sql(post, npost);
	if (post_sql) {
		ipost = n;
		st[n++] = (struct db_stmt){ .sql = post_sql };
	}
	iproof = n;
	n += exec_proof_after_stmts(pf, true, st + n);
	for (size_t i = iproof; i < n; i++)
		st[i].fixed = !user_sql;
	*user_ran = user_sql;
	rc = db_batch(r->ex->db, st, n, err, NULL);
	if (rc < 0) {
		free(post_sql);
		clear_stmts(st, n);
		goto dberr;
	}
	r->rows = strtoll(PQcmdTuples(st[1].res)[0] ? PQcmdTuples(st[1].res) : "0", NULL, 10);
	a = tx_judge(r, pf, post_sql ? st[ipost].res : NULL, st[iproof].res, st[iproof + 1].res,
		     err);
	free(post_sql);
	clear_stmts(st, n);
	return a;
dberr:
	exec_db_rollback(r->ex);
	return exec_attempt_db(r, err, "statement failed, rolled back");
}

/*
 * The last round trip: record and commit — the events queued before the
 * step (carried: its plan's `running` status, plan.start, wave.start,
 * step.start), the ledger row, step.ok, and when the plan ends with this
 * step wave.ok, plan.ok and its `applied` status, in the step's
 * transaction. ATTEMPT_OK committed, or rolled back and another result.
 */
static enum exec_attempt
tx_record(struct step_run *r, struct db_error *err, int64_t t0)
{
	char idx[16], msbuf[24], rows[24], hv[16];
	const char *lparams[13], *lsql, *sparams[9];
	int lnparams;
	int64_t ms;
	struct exec_tail tail = { 0 };
	struct db_stmt st[4];
	size_t n = 0;
	bool user_sql = r->s->op == OP_SQL;
	int rc;

	ms = exec_now_ms() - t0;
	lsql = exec_ledger_params(r, ms, lparams, &lnparams, idx, msbuf, rows);
	exec_tail_step_ok(&tail, r, ms, r->attempts);
	if (r->last) {
		struct exec_result *res = r->res;

		exec_tail_add(&tail, "wave.ok", r->wave, NULL, NULL, "%s wave done in %lld ms",
			      r->wave, (long long)(exec_now_ms() - r->wave_t0));
		exec_tail_add(&tail, "plan.ok", NULL, NULL, NULL,
			      "%s applied: %zu/%zu steps (%zu skipped) in %lld ms", r->p->id,
			      res->steps_done + 1, res->steps_total, res->steps_skipped,
			      (long long)(exec_now_ms() - r->plan_t0));
	}
	st[n++] = (struct db_stmt){
		.sql = lsql, .nparams = lnparams, .params = lparams, .fixed = !user_sql
	};
	st[n++] = exec_tail_stmt(&tail, r, !user_sql);
	if (r->last)
		st[n++] =
		    exec_plan_status_stmt(r->ex, r->p, r->meta, "applied", hv, sparams, !user_sql);
	st[n++] = (struct db_stmt){ .sql = "COMMIT", .fixed = !user_sql };
	rc = db_batch_carry(r->ex->db, st, n, !user_sql, err, NULL);
	clear_stmts(st, n);
	if (rc < 0) {
		exec_tail_free(&tail);
		exec_db_rollback(r->ex);
		return exec_attempt_db(r, err, "statement failed, rolled back");
	}
	/* committed: now it is told */
	exec_tail_tell(&tail, r);
	if (r->last) {
		snprintf(r->res->message, sizeof(r->res->message), "%s",
			 tail.ev[tail.n - 1].message);
		r->ended = true;
	}
	exec_tail_free(&tail);
	return ATTEMPT_OK;
}

static enum exec_attempt
tx_attempt_run(struct step_run *r, struct db_error *err, int64_t t0, bool *user_ran)
{
	struct exec_proof pf = { 0 };
	enum exec_attempt a;

	r->already_present = false;
	r->rows = 0;
	a = tx_fast(r, err, &pf, user_ran);
	if (a == ATTEMPT_UNSET) {
		exec_proof_free(&pf);
		a = tx_checked(r, err, &pf, user_ran);
	}
	exec_proof_free(&pf);
	return a == ATTEMPT_OK ? tx_record(r, err, t0) : a;
}

enum exec_attempt
exec_step_tx(struct step_run *r)
{
	struct db_error err;
	int64_t t0 = exec_now_ms();
	int retries = 0;
	enum exec_attempt a;

	exec_event_step_start(r);
	a = exec_retry(r, tx_attempt, &t0, &err, &retries);
	/* step.ok was committed with the step (tx_attempt_run) */
	return exec_attempt_end(r, a, &err, retries, "statement failed, rolled back",
				"nothing was applied");
}

/*
 * Drops an INVALID index that an earlier failed or killed build left
 * behind. ATTEMPT_OK when there is none (any more); ATTEMPT_BUSY when
 * another session is still building it (err says which, and has no
 * SQLSTATE: nothing failed in PostgreSQL) or the drop's lock was not granted
 * within lock_timeout (55P03); otherwise what exec_attempt_db makes of the
 * error.
 */
static enum exec_attempt
drop_invalid_index(struct step_run *r, const char *idx, struct db_error *err)
{
	const char *params[1] = { idx };
	bool exists, valid;
	PGresult *res;
	char *sql;
	int rc;

	if (db_bool(r->ex->db, err, &exists, "SELECT taskslaps.index_exists($1)", 1, params) < 0 ||
	    db_bool(r->ex->db, err, &valid, "SELECT taskslaps.index_valid($1)", 1, params) < 0)
		return exec_attempt_db(r, err, "statement failed");
	if (!exists || valid)
		return ATTEMPT_OK;
	/*
	 * INVALID also while another backend is still building it (the backend of
	 * a killed run finishes its statement alone). Dropping it then deadlocks
	 * with that build or collides with its catalog update: the index is busy,
	 * and the retry loop waits for it as for a lock.
	 */
	if (db_exec(r->ex->db, &res, err,
		    "SELECT pid FROM pg_catalog.pg_stat_progress_create_index WHERE index_relid = "
		    "taskslaps.lookup_relation($1)::oid AND pid <> pg_catalog.pg_backend_pid()",
		    1, params) < 0)
		return exec_attempt_db(r, err, "statement failed");
	if (PQntuples(res) > 0) {
		memset(err, 0, sizeof(*err));
		snprintf(
		    err->message, sizeof(err->message),
		    "index %s is INVALID because another session (pid %s) is still building it",
		    idx, PQgetvalue(res, 0, 0));
		PQclear(res);
		return ATTEMPT_BUSY;
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
	if (rc == 0)
		return ATTEMPT_OK;
	if (!err->conn_lost) {
		/* say what waited: the step's own statement has not run yet */
		char cause[sizeof(err->message)];

		snprintf(cause, sizeof(cause), "%s", err->message);
		/* cut, not refused: the cause is PostgreSQL's one line */
		if (snprintf(err->message, sizeof(err->message),
			     "dropping the INVALID index %s: %.900s", idx, cause) < 0)
			err->message[0] = '\0';
	}
	return exec_attempt_db(r, err, "statement failed");
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

/*
 * A CONCURRENTLY step's attempt, as exec_attempt_fn (arg: the step's start,
 * int64_t *): the session's timeouts, an INVALID index of an earlier build
 * dropped, the checks, the statement, the rewrite proof, the ledger row.
 * The timeouts are reset whatever the result.
 */
static enum exec_attempt
nontx_attempt(struct step_run *r, struct db_error *err, void *arg)
{
	struct exec_proof pf = { 0 };
	const char *failed = NULL, *failed_post = NULL;
	char *idx = NULL;
	enum exec_attempt a = ATTEMPT_UNSET;

	r->already_present = false;
	if (set_timeouts(r, false, err) < 0)
		goto dberr;
	idx = step_index_name(r->s);
	if (idx && (a = drop_invalid_index(r, idx, err)) != ATTEMPT_OK)
		goto out;
	if (exec_checks(r, &r->s->ob.prechecks, &failed, err) < 0)
		goto dberr;
	if (failed) {
		if (exec_checks(r, &r->s->ob.postchecks, &failed_post, err) < 0)
			goto dberr;
		if (failed_post || r->s->ob.postchecks.n == 0) {
			a = exec_fail(r, NULL, "precheck failed: %s", failed);
			goto out;
		}
		r->already_present = true;
	} else {
		/* again after the checks: the statement runs under the step's own timeouts */
		if (set_timeouts(r, false, err) < 0)
			goto dberr;
		if (exec_proof_before(r, &pf, err) < 0 ||
		    db_exec(r->ex->db, NULL, err, r->s->stmt, 0, NULL) < 0)
			goto dberr;
		if (exec_checks(r, &r->s->ob.postchecks, &failed_post, err) < 0)
			goto dberr;
		if (failed_post) {
			exec_fail(r, NULL, "postcheck failed after the statement: %s", failed_post);
			a = ATTEMPT_PROMISE_VIOLATED;
			goto out;
		}
		a = exec_proof_after(r, &pf, false, err);
		if (a != ATTEMPT_OK)
			goto out;
	}
	exec_proof_free(&pf);
	free(idx);
	(void)reset_timeouts(r->ex);
	if (exec_ledger_insert(r, exec_now_ms() - *(const int64_t *)arg, err) < 0)
		return exec_attempt_db(r, err, "statement failed");
	return ATTEMPT_OK;
dberr:
	a = exec_attempt_db(r, err, "statement failed");
out:
	exec_proof_free(&pf);
	free(idx);
	if (db_ok(r->ex->db))
		(void)reset_timeouts(r->ex);
	return a;
}

enum exec_attempt
exec_step_nontx(struct step_run *r)
{
	struct db_error err;
	int64_t t0 = exec_now_ms();
	int retries = 0;
	enum exec_attempt a;

	exec_event_step_start(r);
	/* a CIC that timed out leaves an INVALID index; the next attempt drops it */
	a = exec_retry(r, nontx_attempt, &t0, &err, &retries);
	if (a == ATTEMPT_OK) {
		exec_event_step_ok(r, exec_now_ms() - t0, retries + 1);
		return a;
	}
	/*
	 * Leave no INVALID index behind a failed build; under the step's
	 * timeouts, as any statement of the step. Not when busy: what held
	 * the step up (a lock, another session's build) would hold the drop up
	 * too, and the next attempt drops the index first anyway.
	 */
	if (a != ATTEMPT_BUSY && db_ok(r->ex->db)) {
		/* its own result, so that the step's failure stays what res says */
		struct exec_result ignore_res = { 0 };
		struct step_run quiet = *r;
		struct db_error ignore;
		char *idx = step_index_name(r->s);

		quiet.res = &ignore_res;
		if (idx && set_timeouts(r, false, &ignore) == 0) {
			(void)drop_invalid_index(&quiet, idx, &ignore);
			(void)reset_timeouts(r->ex);
		}
		free(idx);
	}
	return exec_attempt_end(r, a, &err, retries, "statement failed", NULL);
}
