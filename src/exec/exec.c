/* The executor's outer loop: runner lock, plan status, drift, waves, events. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db_schema.h"
#include "exec/exec_int.h"
#include "plan/plan_dir.h"
#include "util/alloc.h"
#include "util/canon.h"
#include "util/strbuf.h"

void
exec_config_default(struct exec_config *c)
{
	memset(c, 0, sizeof(*c));
	c->target = "default";
	c->applied_by = "taskslaps";
	c->lock_retries = 10;
	c->runner_lock_wait_ms = 30000;
	governor_config_default(&c->governor);
}

const char *
exec_outcome_name(enum exec_outcome o)
{
	switch (o) {
	case EXEC_APPLIED: return "applied";
	case EXEC_FAILED: return "failed";
	case EXEC_BLOCKED: return "blocked";
	case EXEC_DRIFT: return "drift";
	case EXEC_ABORTED: return "aborted";
	case EXEC_CONN_LOST: return "connection lost";
	}
	return "?";
}

const char *
exec_governor(const struct exec *ex, double *factor)
{
	static const char *const names[] = { "healthy", "degraded", "critical" };

	*factor = ex->gov.factor;
	return names[ex->gov.state];
}

struct db *
exec_db(struct exec *ex)
{
	return ex->db;
}

int64_t
exec_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
exec_sleep(struct exec *ex, int64_t ms)
{
	int64_t end = exec_now_ms() + ms;

	db_flush(ex->db); /* the events so far are seen before the wait */
	while (!ex->abort_req) {
		int64_t left = end - exec_now_ms();
		struct timespec ts;

		if (left <= 0)
			return true;
		if (left > 50)
			left = 50;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000L;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !ex->abort_req)
			;
	}
	return false;
}

int64_t
exec_backoff_ms(int attempt)
{
	int64_t cap = 100LL << (attempt < 7 ? attempt : 7);

	if (cap > 10000)
		cap = 10000;
	/* full jitter: spread retries so two runners do not retry in step */
	return cap / 2 + (int64_t)(random() % (cap / 2 + 1));
}

int
exec_open(struct exec **out, const char *conninfo, const struct exec_config *cfg,
	  struct db_error *err)
{
	struct exec *ex = xcalloc(1, sizeof(*ex));
	char app[64];

	ex->cfg = *cfg;
	ex->target = xstrdup(cfg->target ? cfg->target : "default");
	ex->applied_by = xstrdup(cfg->applied_by ? cfg->applied_by : "taskslaps");
	ex->cfg.target = ex->target;
	ex->cfg.applied_by = ex->applied_by;
	ex->gov.factor = 1.0;
	ex->gov.archive_ok = true;
	snprintf(app, sizeof(app), "taskslaps:%.40s", ex->target);
	if (db_connect(&ex->db, conninfo, app, err) < 0) {
		exec_close(ex);
		return -1;
	}
	snprintf(app, sizeof(app), "taskslaps-lock:%.40s", ex->target);
	if (db_connect(&ex->lockdb, conninfo, app, err) < 0) {
		exec_close(ex);
		return -1;
	}
	srandom((unsigned)exec_now_ms());
	*out = ex;
	return 0;
}

void
exec_close(struct exec *ex)
{
	if (!ex)
		return;
	exec_runner_unlock(ex);
	db_close(ex->db);
	db_close(ex->lockdb);
	plan_idset_free(ex->applied);
	free(ex->target);
	free(ex->applied_by);
	free(ex);
}

void
exec_flush(struct exec *ex)
{
	if (ex)
		db_flush(ex->db);
}

int
exec_prefetch_applied(struct exec *ex, struct db_error *err)
{
	const char *params[1] = { ex->target };
	PGresult *r;

	if (db_execf(ex->db, &r, err,
		     "SELECT plan_id, checksum FROM taskslaps.plans WHERE target = $1 AND status = "
		     "'applied' AND checksum IS NOT NULL",
		     1, params) < 0)
		return -1;
	plan_idset_free(ex->applied);
	ex->applied = plan_idset_new();
	for (int i = 0; i < PQntuples(r); i++) {
		const char *first;
		(void)plan_idset_add(ex->applied, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), &first);
	}
	PQclear(r);
	return 0;
}

int
exec_install_schema(struct exec *ex, bool force, struct db_error *err)
{
	return db_schema_install(ex->db, force, err);
}

int
exec_runner_lock(struct exec *ex, int *holder, struct db_error *err)
{
	int64_t start = exec_now_ms(), wait;
	int attempt = 0;
	bool got;

	if (ex->lock_held) {
		/*
		 * A session-level lock lives as long as its session: make sure the
		 * session does (a terminated backend, idle_session_timeout, a
		 * restart). Without this check a runner whose lock session died
		 * would go on as runner next to the one that took the lock.
		 */
		if (db_cmd(ex->lockdb, err, "SELECT 1") == 0)
			return 1;
		ex->lock_held = false;
		return -1;
	}
	for (;;) {
		if (db_bool(ex->lockdb, err, &got,
			    "SELECT pg_catalog.pg_try_advisory_lock(" EXEC_RUNNER_LOCK_KEY ")", 0,
			    NULL) < 0)
			return -1;
		if (got) {
			ex->lock_held = true;
			return 1;
		}
		if (holder) {
			PGresult *r;
			*holder = 0;
			/* a bigint key shows as classid = high 32 bits, objid = low 32 bits */
			if (db_exec(ex->lockdb, &r, err,
				    "SELECT pid FROM pg_catalog.pg_locks WHERE locktype = 'advisory' "
				    "AND granted AND objsubid = 1 AND ((classid::int8 << 32) | "
				    "objid::int8) = " EXEC_RUNNER_LOCK_KEY " AND database = (SELECT oid "
				    "FROM pg_catalog.pg_database WHERE datname = "
				    "pg_catalog.current_database())",
				    0, NULL) == 0) {
				if (PQntuples(r) > 0)
					*holder = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
				PQclear(r);
			}
		}
		wait = exec_backoff_ms(attempt < 4 ? attempt++ : 4);
		if (ex->cfg.runner_lock_wait_ms >= 0) {
			int64_t left = start + ex->cfg.runner_lock_wait_ms - exec_now_ms();
			if (left <= 0)
				return 0;
			/* the last try at the deadline, not a backoff past it */
			if (wait > left)
				wait = left;
		}
		if (!exec_sleep(ex, wait))
			return 0;
	}
}

void
exec_runner_unlock(struct exec *ex)
{
	struct db_error err;

	if (!ex->lock_held)
		return;
	if (db_ok(ex->lockdb))
		(void)db_cmd(ex->lockdb, &err,
			     "SELECT pg_catalog.pg_advisory_unlock(" EXEC_RUNNER_LOCK_KEY ")");
	ex->lock_held = false;
}

void
exec_abort(struct exec *ex)
{
	ex->abort_req = 1;
	db_cancel(ex->db);
}

void
exec_stop(struct exec *ex)
{
	ex->stop_req = 1;
	ex->abort_req = 1;
}

void
exec_cancel(struct exec *ex)
{
	db_cancel(ex->db);
}

bool
exec_aborting(const struct exec *ex)
{
	return ex->abort_req != 0;
}

/*
 * The events gathered since the last round trip, in one statement (one
 * commit): each parameter an array, unnested in order, so the ids keep the
 * order of the calls. The NOTIFY trigger still fires for each row.
 */
static const char SQL_EVENTS_INSERT[] =
	"INSERT INTO taskslaps.events (target, plan_id, wave, step_sha, type, message, metrics) "
	"SELECT u.t, u.p, u.w, u.s, u.ty, u.m, u.me FROM ROWS FROM (pg_catalog.unnest($1::text[]), "
	"pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[]), "
	"pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::text[]), "
	"pg_catalog.unnest($6::text[]), pg_catalog.unnest($7::jsonb[])) WITH ORDINALITY AS "
	"u(t, p, w, s, ty, m, me, o) ORDER BY u.o";

void
exec_event(struct exec *ex, const char *type, const char *plan_id, const char *wave,
	   const char *step_sha, const char *metrics, const char *fmt, ...)
{
	struct exec_event ev = { 0 };
	va_list ap;
	char *msg;
	const char *params[7];

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	params[0] = ex->target;
	params[1] = plan_id;
	params[2] = wave;
	params[3] = step_sha;
	params[4] = type;
	params[5] = msg;
	params[6] = metrics;
	/*
	 * Sent with the next statement, in the same round trip (db_defer); an
	 * event that cannot be recorded (database down) is still shown.
	 */
	if (db_ok(ex->db))
		db_defer_row(ex->db, SQL_EVENTS_INSERT, 7, params);
	if (ex->cfg.on_event) {
		ev.type = type;
		ev.plan_id = plan_id;
		ev.wave = wave;
		ev.step_sha = step_sha;
		ev.message = msg;
		ev.metrics = metrics;
		ex->cfg.on_event(&ev, ex->cfg.event_arg);
	}
	free(msg);
}

#define SQL_PLAN_STATUS                                                                      \
	"INSERT INTO taskslaps.plans AS p (target, plan_id, checksum, hash_version, file_path, "  \
	"commit_sha, author, status, max_hazard) VALUES ($1, $2, $3, $4::int, $5, $6, $7, $8, "   \
	"$9) ON CONFLICT (target, plan_id) DO UPDATE SET checksum = CASE WHEN $8 = 'drift' THEN " \
	"p.checksum ELSE EXCLUDED.checksum END, hash_version = EXCLUDED.hash_version, "          \
	"file_path = EXCLUDED.file_path, commit_sha = coalesce(EXCLUDED.commit_sha, "            \
	"p.commit_sha), author = coalesce(EXCLUDED.author, p.author), status = EXCLUDED.status, " \
	"max_hazard = EXCLUDED.max_hazard, updated_at = now(), completed_at = CASE WHEN $8 = "    \
	"'applied' THEN now() ELSE p.completed_at END"

/* The checksum is kept while a plan is in drift: it is what was applied. */
static void
plan_status_params(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
		   const char *status, char hv[16], const char *params[9])
{
	snprintf(hv, 16, "%d", PLAN_HASH_VERSION);
	params[0] = ex->target;
	params[1] = p->id;
	params[2] = p->checksum;
	params[3] = hv;
	params[4] = p->path;
	params[5] = meta ? meta->commit_sha : NULL;
	params[6] = meta ? meta->author : NULL;
	params[7] = status;
	params[8] = plan_hazard_name(p->max_hazard);
}

int
exec_plan_status(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
		 const char *status, struct db_error *err)
{
	char hv[16];
	const char *params[9];

	plan_status_params(ex, p, meta, status, hv, params);
	return db_execf(ex->db, NULL, err, SQL_PLAN_STATUS, 9, params);
}

/* The same, when nothing waits for it: a plan's final status. */
static void
plan_status_deferred(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
		     const char *status)
{
	char hv[16];
	const char *params[9];

	plan_status_params(ex, p, meta, status, hv, params);
	db_defer(ex->db, SQL_PLAN_STATUS, 9, params);
}

int
exec_resume(struct exec *ex, const char *plan_id, struct db_error *err)
{
	const char *params[2] = { ex->target, plan_id };
	PGresult *r;
	int n;

	if (db_exec(ex->db, &r, err,
		    "UPDATE taskslaps.plans SET status = 'pending', updated_at = now() WHERE "
		    "target = $1 AND plan_id = $2 AND status IN ('aborted', 'failed') RETURNING 1",
		    2, params) < 0)
		return -1;
	n = PQntuples(r);
	PQclear(r);
	if (n == 0) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message),
			 "plan %s of target %s is not aborted or failed: nothing to resume", plan_id,
			 ex->target);
		return -1;
	}
	exec_event(ex, "plan.start", plan_id, NULL, NULL, NULL, "resumed by an operator");
	db_flush(ex->db);
	return 0;
}

/*
 * The file's steps as five PostgreSQL array literals (sha, wave, index, op,
 * hazard), in wave order. Every element is a hex digest, a number or a fixed
 * name, so none needs quoting.
 */
static void
step_arrays(const struct plan *p, struct strbuf sb[5])
{
	for (int k = 0; k < 5; k++)
		sb_putc(&sb[k], '{');
	for (int w = 0; w < WAVE__COUNT; w++)
		for (size_t i = 0; i < p->waves[w].nsteps; i++) {
			const struct plan_step *s = &p->waves[w].steps[i];
			const char *sep = sb[0].len > 1 ? "," : "";

			sb_printf(&sb[0], "%s%s", sep, s->sha);
			sb_printf(&sb[1], "%s%s", sep, plan_wave_name((enum plan_wave)w));
			sb_printf(&sb[2], "%s%u", sep, s->index);
			sb_printf(&sb[3], "%s%s", sep, plan_op_name(s->op));
			sb_printf(&sb[4], "%s%s", sep, plan_hazard_name(s->hazard));
		}
	for (int k = 0; k < 5; k++)
		sb_putc(&sb[k], '}');
}

/*
 * One statement, so the ledger and the plan's row change together. Each step
 * of the file is one of: in the ledger (it ran); at a position (wave, index)
 * where the ledger holds another step of this plan (it was edited after it
 * ran: the operator accepts the edit, recorded as outcome 'accepted', and it
 * does not run); or at a position nothing ran at (it never ran: it stays
 * pending, and so does the plan, so it runs on the next pass or apply).
 * Plans neither applied nor in drift keep their status.
 */
#define SQL_ACCEPT_DRIFT                                                                           \
	"WITH p AS (SELECT status FROM taskslaps.plans WHERE target = $1 AND plan_id = $2 FOR "    \
	"UPDATE), f AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($4::text[]), "                  \
	"pg_catalog.unnest($5::text[]), pg_catalog.unnest($6::int[]), "                            \
	"pg_catalog.unnest($7::text[]), pg_catalog.unnest($8::text[])) AS f(sha, wave, idx, op, "  \
	"hazard)), c AS (SELECT f.*, CASE WHEN EXISTS (SELECT 1 FROM taskslaps.step_ledger l "     \
	"WHERE l.target = $1 AND l.step_sha = f.sha) THEN 'ran' WHEN EXISTS (SELECT 1 FROM taskslaps.step_ledger l " \
	"WHERE l.target = $1 AND l.plan_id = $2 AND l.wave = f.wave AND l.step_index = f.idx "      \
	"AND l.outcome <> 'undone') "                                                             \
	"THEN 'edited' ELSE 'new' END AS k FROM f), touch AS (SELECT 1 FROM p WHERE p.status IN "  \
	"('drift', 'applied')), ins AS (INSERT INTO taskslaps.step_ledger (step_sha, target, "     \
	"plan_id, wave, step_index, op, hazard, outcome) SELECT c.sha, $1, $2, c.wave, c.idx, "    \
	"c.op, c.hazard, 'accepted' FROM c WHERE c.k = 'edited' AND EXISTS (SELECT 1 FROM touch) " \
	"ON CONFLICT DO NOTHING RETURNING 1), u AS (UPDATE taskslaps.plans SET checksum = $3, "    \
	"status = CASE WHEN EXISTS (SELECT 1 FROM touch) THEN CASE WHEN EXISTS (SELECT 1 FROM c "  \
	"WHERE c.k = 'new') THEN 'pending' ELSE 'applied' END ELSE status END, completed_at = "    \
	"CASE WHEN EXISTS (SELECT 1 FROM touch) AND EXISTS (SELECT 1 FROM c WHERE c.k = 'new') "   \
	"THEN NULL ELSE completed_at END, updated_at = now() WHERE target = $1 AND plan_id = $2 "  \
	"RETURNING status) SELECT u.status, (SELECT count(*) FROM c WHERE c.k = 'new'), (SELECT "  \
	"count(*) FROM ins) FROM u"

int
exec_accept_drift(struct exec *ex, const struct plan *p, struct exec_accepted *out,
		  struct db_error *err)
{
	struct strbuf sb[5] = { STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT };
	const char *params[8] = { ex->target, p->id, p->checksum };
	struct exec_accepted acc = { 0 };
	PGresult *r = NULL;
	int rc = -1;

	if (exec_revert_accept_refused(ex, p->id, err) != 0)
		goto out;
	step_arrays(p, sb);
	for (int k = 0; k < 5; k++)
		params[3 + k] = sb[k].buf;
	if (db_exec(ex->db, &r, err, SQL_ACCEPT_DRIFT, 8, params) < 0)
		goto out;
	if (PQntuples(r) == 0) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message),
			 "plan %s of target %s is not in the database", p->id, ex->target);
		goto out;
	}
	snprintf(acc.status, sizeof(acc.status), "%s", PQgetvalue(r, 0, 0));
	acc.pending = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
	acc.accepted = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
	if (!strcmp(acc.status, "pending"))
		exec_event(ex, "plan.start", p->id, NULL, NULL, NULL,
			   "drift accepted by an operator: checksum %.16s recorded, %zu edited "
			   "step%s accepted without running, %zu step%s that never ran pending",
			   p->checksum, acc.accepted, acc.accepted == 1 ? "" : "s", acc.pending,
			   acc.pending == 1 ? "" : "s");
	else
		exec_event(ex, "plan.ok", p->id, NULL, NULL, NULL,
			   "drift accepted by an operator: checksum %.16s recorded, nothing run",
			   p->checksum);
	db_flush(ex->db);
	*out = acc;
	rc = 0;
out:
	PQclear(r);
	for (int k = 0; k < 5; k++)
		sb_free(&sb[k]);
	return rc;
}

void
exec_accepted_text(const struct plan *p, const struct exec_accepted *acc, char *buf, size_t size)
{
	if (acc->pending)
		snprintf(buf, size,
			 "plan %s: checksum %.16s accepted; %zu step%s that never ran %s pending "
			 "and run%s next; nothing was run now",
			 p->id, p->checksum, acc->pending, acc->pending == 1 ? "" : "s",
			 acc->pending == 1 ? "is" : "are", acc->pending == 1 ? "s" : "");
	else
		snprintf(buf, size, "plan %s: checksum %.16s accepted; nothing was run", p->id,
			 p->checksum);
}

int
exec_fail(struct step_run *r, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	r->res->outcome = EXEC_FAILED;
	snprintf(r->res->sqlstate, sizeof(r->res->sqlstate), "%s", sqlstate ? sqlstate : "");
	va_start(ap, fmt);
	vsnprintf(r->res->message, sizeof(r->res->message), fmt, ap);
	va_end(ap);
	if (r->s)
		snprintf(r->res->step_sha, sizeof(r->res->step_sha), "%s", r->s->sha);
	return -1;
}

int
exec_fail_db(struct step_run *r, const struct db_error *err, const char *what)
{
	/* the SQLSTATE goes in res->sqlstate only: events and printers add it once */
	exec_fail(r, err->sqlstate, "%s: %s", what, err->message);
	if (err->detail[0]) {
		size_t n = strlen(r->res->message);
		snprintf(r->res->message + n, sizeof(r->res->message) - n, "; %s", err->detail);
	}
	if (err->conn_lost)
		r->res->outcome = EXEC_CONN_LOST;
	else if (r->ex->abort_req)
		r->res->outcome = EXEC_ABORTED;
	return -1;
}

size_t
exec_checks_computed(const struct step_run *r, const struct plan_strv *checks)
{
	size_t user = checks == &r->s->ob.prechecks ? r->s->user_prechecks.n
						    : r->s->user_postchecks.n;

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

const char *
exec_ledger_outcome(const struct step_run *r)
{
	if (r->s->inverse_of)
		return "undone";
	return r->already_present ? "already_present" : "applied";
}

const char *
exec_ledger_params(struct step_run *r, int64_t ms, const char *params[13], int *nparams,
		   char idx[16], char msbuf[24], char rows[24])
{
	snprintf(idx, 16, "%u", r->s->index);
	snprintf(msbuf, 24, "%lld", (long long)ms);
	snprintf(rows, 24, "%lld", (long long)r->rows);
	params[0] = r->s->sha;
	params[1] = r->ex->target;
	params[2] = r->p->id;
	params[3] = r->wave;
	params[4] = idx;
	params[5] = plan_op_name(r->s->op);
	params[6] = plan_hazard_name(r->s->hazard);
	params[7] = r->meta ? r->meta->commit_sha : NULL;
	params[8] = r->ex->applied_by;
	params[9] = msbuf;
	params[10] = rows;
	params[11] = exec_ledger_outcome(r);
	params[12] = r->s->inverse_of;
	*nparams = r->s->inverse_of ? 13 : 12;
	return r->s->inverse_of ? SQL_LEDGER_UNDO : SQL_LEDGER_INSERT;
}

int
exec_ledger_insert(struct step_run *r, int64_t ms, struct db_error *err)
{
	char idx[16], msbuf[24], rows[24];
	const char *params[13], *sql;
	int n;

	sql = exec_ledger_params(r, ms, params, &n, idx, msbuf, rows);
	return db_execf(r->ex->db, NULL, err, sql, n, params);
}

/* The plan's step shas as a PostgreSQL text[] literal. */
static char *
sha_array(const struct plan *p)
{
	struct strbuf sb = STRBUF_INIT;

	sb_putc(&sb, '{');
	for (int w = 0; w < WAVE__COUNT; w++)
		for (size_t i = 0; i < p->waves[w].nsteps; i++)
			sb_printf(&sb, "%s%s", sb.len > 1 ? "," : "", p->waves[w].steps[i].sha);
	sb_putc(&sb, '}');
	return sb_detach(&sb);
}

/*
 * What the database already knows of the plan: its recorded checksum and
 * status, and which of its steps are in the ledger. *stale gets a ledger
 * step of this plan that the file no longer has (borrowed until *r is freed).
 */
static int
load_state(struct exec *ex, const struct plan *p, PGresult **plan_row, PGresult **ledger,
	   PGresult **stale, struct db_error *err)
{
	char *shas = sha_array(p);
	const char *params[3] = { ex->target, p->id, shas };
	const char *lparams[2] = { ex->target, shas };
	struct db_stmt st[3] = {
		{ .sql = "SELECT checksum, status FROM taskslaps.plans WHERE target = $1 AND "
			 "plan_id = $2",
		  .nparams = 2, .params = params, .fixed = true },
		{ .sql = "SELECT step_sha, outcome FROM taskslaps.step_ledger WHERE target = $1 "
			 "AND step_sha = ANY($2::text[])",
		  .nparams = 2, .params = lparams, .fixed = true },
		{ .sql = "SELECT step_sha, wave, step_index, op FROM taskslaps.step_ledger WHERE "
			 "target = $1 AND plan_id = $2 AND NOT (step_sha = ANY($3::text[])) AND outcome "
			 "<> 'undone' ORDER BY "
			 "applied_at LIMIT 1",
		  .nparams = 3, .params = params, .fixed = true },
	};
	int rc;

	/* one round trip for the three */
	*plan_row = *ledger = *stale = NULL;
	rc = db_batch(ex->db, st, 3, err, NULL);
	*plan_row = st[0].res;
	*ledger = st[1].res;
	*stale = st[2].res;
	free(shas);
	return rc;
}

static bool
in_ledger(const PGresult *ledger, const char *sha)
{
	for (int i = 0; i < PQntuples(ledger); i++)
		if (strcmp(PQgetvalue(ledger, i, 0), sha) == 0)
			return true;
	return false;
}

int
exec_run_step(struct step_run *r)
{
	const char *table = r->s->touched.n ? r->s->touched.v[0] : NULL;

	/* a healthy reading younger than 250 ms stands, as between backfill batches */
	if ((r->ex->gov.state != GOV_HEALTHY || !r->ex->gov.decided ||
	     exec_now_ms() - r->ex->gov.last_probe_ms >= 250) &&
	    !governor_wait(r->ex, r->p->id, table))
		return exec_fail(r, NULL, "aborted while the governor paused the run");
	switch (r->s->exec) {
	case EXEC_TX: return exec_step_tx(r);
	case EXEC_NONTX: return exec_step_nontx(r);
	case EXEC_BATCHED: return exec_step_backfill(r);
	}
	return -1;
}

static int
finish(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
       struct exec_result *res, const char *status, const char *event)
{
	if (res->outcome == EXEC_CONN_LOST || !db_ok(ex->db))
		return 0;
	plan_status_deferred(ex, p, meta, status);
	if (res->sqlstate[0])
		exec_event(ex, event, p->id, NULL, res->step_sha[0] ? res->step_sha : NULL, NULL,
			   "%s (SQLSTATE %s)", res->message, res->sqlstate);
	else
		exec_event(ex, event, p->id, NULL, res->step_sha[0] ? res->step_sha : NULL, NULL,
			   "%s", res->message);
	return 0;
}

/* The end of a plan that did not complete: failed, aborted, or left pending by a stop. */
static void
end_failed(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
	   struct exec_result *res)
{
	if (res->outcome == EXEC_ABORTED && ex->stop_req)
		finish(ex, p, meta, res, "pending", "plan.interrupted");
	else if (res->outcome == EXEC_ABORTED)
		finish(ex, p, meta, res, "aborted", "plan.aborted");
	else
		finish(ex, p, meta, res, "failed", "plan.failed");
}

int
exec_run_plan(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
	      struct exec_result *res)
{
	PGresult *row = NULL, *ledger = NULL, *stale = NULL, *fwd = NULL;
	struct db_error err;
	const char *status = NULL, *checksum = NULL;
	int rc = 0;
	int64_t t0 = exec_now_ms();

	memset(res, 0, sizeof(*res));
	res->steps_total = p->nsteps;
	/* applied and unchanged when the run began (exec_prefetch_applied): nothing to ask */
	if (ex->applied && (checksum = plan_idset_find(ex->applied, p->id)) &&
	    !strcmp(checksum, p->checksum)) {
		res->outcome = EXEC_APPLIED;
		res->steps_done = res->steps_skipped = p->nsteps;
		goto out;
	}
	checksum = NULL;
	if (load_state(ex, p, &row, &ledger, &stale, &err) < 0) {
		res->outcome = err.conn_lost ? EXEC_CONN_LOST : EXEC_FAILED;
		snprintf(res->message, sizeof(res->message), "reading the ledger: %s", err.message);
		rc = -1;
		goto out;
	}
	if (PQntuples(row) > 0) {
		checksum = PQgetisnull(row, 0, 0) ? NULL : PQgetvalue(row, 0, 0);
		status = PQgetvalue(row, 0, 1);
	}
	/* applied and unchanged: nothing to do, and nothing to say */
	if (status && !strcmp(status, "applied") && checksum && !strcmp(checksum, p->checksum)) {
		res->outcome = EXEC_APPLIED;
		res->steps_done = res->steps_skipped = p->nsteps;
		goto out;
	}
	/* undone by a revert plan: settled, it never runs again (re-applying it is a new plan) */
	if (exec_status_reverted(status) && checksum && !strcmp(checksum, p->checksum)) {
		res->outcome = EXEC_APPLIED;
		snprintf(res->message, sizeof(res->message), "%s is %s: it does not run again",
			 p->id, status);
		goto out;
	}
	if (checksum && strcmp(checksum, p->checksum) != 0 &&
	    (!strcmp(status, "applied") || !strcmp(status, "drift") ||
	     exec_status_reverted(status) || PQntuples(stale) > 0)) {
		res->outcome = EXEC_DRIFT;
		if (PQntuples(stale) > 0)
			snprintf(res->message, sizeof(res->message),
				 "plan %s was edited after step %.16s (%s %s #%s) was applied: "
				 "applied steps are immutable; restore the file, or run "
				 "`taskslapsctl accept-drift %s`",
				 p->id, PQgetvalue(stale, 0, 0), PQgetvalue(stale, 0, 3),
				 PQgetvalue(stale, 0, 1), PQgetvalue(stale, 0, 2), p->id);
		else
			snprintf(res->message, sizeof(res->message),
				 "plan %s was applied with checksum %.16s but the file now has "
				 "%.16s: applied plans are immutable; restore the file, or run "
				 "`taskslapsctl accept-drift %s`",
				 p->id, checksum, p->checksum, p->id);
		if (strcmp(status, "drift") != 0)
			finish(ex, p, meta, res, "drift", "plan.drift");
		goto out;
	}
	if (status && !strcmp(status, "aborted")) {
		res->outcome = EXEC_ABORTED;
		snprintf(res->message, sizeof(res->message),
			 "plan %s is aborted; `taskslapsctl resume %s` lets it run again", p->id,
			 p->id);
		goto out;
	}
	if (p->blocked) {
		res->outcome = EXEC_BLOCKED;
		snprintf(res->message, sizeof(res->message), "%s", p->blocked_reason);
		if (!status || strcmp(status, "blocked") != 0)
			finish(ex, p, meta, res, "blocked", "plan.blocked");
		goto out;
	}

	if (exec_plan_status(ex, p, meta, "running", &err) < 0) {
		res->outcome = err.conn_lost ? EXEC_CONN_LOST : EXEC_FAILED;
		snprintf(res->message, sizeof(res->message), "recording the plan: %s", err.message);
		rc = -1;
		goto out;
	}
	exec_event(ex, "plan.start", p->id, NULL, NULL, NULL, "%s: %s (%s, %zu steps)", p->id,
		   p->title, plan_hazard_name(p->max_hazard), p->nsteps);
	/* a rollback that a crash or a stop interrupted goes on; the plan does not */
	if (p->on_failure != ON_FAILURE_STOP) {
		int rb = exec_rollback_resume(ex, p, meta, res);
		if (rb < 0) {
			/* the plan was just recorded running: say it is not */
			if (res->outcome != EXEC_CONN_LOST)
				end_failed(ex, p, meta, res);
			rc = -1;
			goto out;
		}
		if (rb > 0) {
			end_failed(ex, p, meta, res);
			goto out;
		}
	}
	/* a revert plan: which of the steps it undoes the ledger has */
	if (p->reverted && exec_revert_load(ex, p, &fwd, &err) < 0) {
		res->outcome = err.conn_lost ? EXEC_CONN_LOST : EXEC_FAILED;
		snprintf(res->message, sizeof(res->message), "reading the ledger: %s", err.message);
		if (res->outcome != EXEC_CONN_LOST)
			end_failed(ex, p, meta, res);
		rc = -1;
		goto out;
	}
	for (int w = 0; w < WAVE__COUNT; w++) {
		const struct plan_wave_s *wv = &p->waves[w];
		const char *wname = plan_wave_name((enum plan_wave)w);
		int64_t wt0 = exec_now_ms();

		if (!wv->present)
			continue;
		exec_event(ex, "wave.start", p->id, wname, NULL, NULL, "%s wave: %zu step%s (%s)",
			   wname, wv->nsteps, wv->nsteps == 1 ? "" : "s",
			   plan_hazard_name(wv->max_hazard));
		for (size_t i = 0; i < wv->nsteps; i++) {
			struct step_run r = { .ex = ex, .p = p, .s = &wv->steps[i], .meta = meta,
					      .wave = wname, .res = res };

			if (in_ledger(ledger, r.s->sha)) {
				res->steps_done++;
				res->steps_skipped++;
				exec_event(ex, "step.skipped", p->id, wname, r.s->sha, NULL,
					   "%s: already in the ledger", plan_op_name(r.s->op));
				continue;
			}
			if (p->reverted && exec_revert_skip(ex, p, r.s, wname, fwd)) {
				res->steps_done++;
				res->steps_skipped++;
				continue;
			}
			if (ex->abort_req) {
				exec_fail(&r, NULL, "%s before step %.16s",
					  ex->stop_req ? "interrupted by a stop of the runner"
						       : "aborted by an operator",
					  r.s->sha);
				res->outcome = EXEC_ABORTED;
			} else if (exec_run_step(&r) == 0) {
				res->steps_done++;
				continue;
			}
			if (res->outcome == EXEC_FAILED && ex->abort_req)
				res->outcome = EXEC_ABORTED;
			if (res->outcome != EXEC_ABORTED && res->outcome != EXEC_CONN_LOST) {
				governor_note_error(ex);
				exec_event(ex, "step.error", p->id, wname, r.s->sha, NULL, "%s%s%s%s",
					   res->message, res->sqlstate[0] ? " (SQLSTATE " : "",
					   res->sqlstate, res->sqlstate[0] ? ")" : "");
				if (p->on_failure != ON_FAILURE_STOP)
					exec_rollback(ex, p, meta, (enum plan_wave)w, res);
			}
			end_failed(ex, p, meta, res);
			goto out;
		}
		exec_event(ex, "wave.ok", p->id, wname, NULL, NULL, "%s wave done in %lld ms", wname,
			   (long long)(exec_now_ms() - wt0));
	}
	if (p->reverted && exec_revert_done(ex, p, res, &err) < 0) {
		res->outcome = err.conn_lost ? EXEC_CONN_LOST : EXEC_FAILED;
		snprintf(res->message, sizeof(res->message), "recording the reverted plan: %s",
			 err.message);
		end_failed(ex, p, meta, res);
		goto out;
	}
	res->outcome = EXEC_APPLIED;
	snprintf(res->message, sizeof(res->message), "%s applied: %zu/%zu steps (%zu skipped) in %lld ms",
		 p->id, res->steps_done, res->steps_total, res->steps_skipped,
		 (long long)(exec_now_ms() - t0));
	finish(ex, p, meta, res, "applied", "plan.ok");
out:
	db_flush(ex->db); /* the plan's last events and status, before the caller goes on */
	/* an abort stops the plan that was running, not the ones a later pass runs */
	if (!ex->stop_req)
		ex->abort_req = 0;
	PQclear(row);
	PQclear(ledger);
	PQclear(stale);
	PQclear(fwd);
	return rc;
}
