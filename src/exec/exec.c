/* The executor's outer loop: runner lock, plan status, drift, waves, events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	case EXEC_UNSET: return "unset";
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

/*
 * The runner's own statements (events, ledger and plan rows, the proof's
 * reads) run in the step's session, under its login's search_path, which the
 * step's SQL needs as its author meant it; not every type and operator in them
 * is pg_catalog-qualified (`$1::text[]`, `=`). PostgreSQL searches pg_catalog
 * first unless search_path lists it later: then whoever may create objects in
 * a schema listed before it could make a type or an operator of those
 * statements its own, and run code as this role. Such a session is refused
 * (the schemas as current_schemas(true) gives them, a session's temporary
 * schema aside: only the session itself creates objects there).
 */
#define SQL_SEARCH_PATH                                                                            \
	"SELECT s::pg_catalog.text FROM pg_catalog.unnest(pg_catalog.current_schemas(true)) AS s"

static int
check_search_path(struct exec *ex, struct db_error *err)
{
	PGresult *r;
	const char *first = NULL;

	if (db_execf(ex->db, &r, err, SQL_SEARCH_PATH, 0, NULL) < 0)
		return -1;
	for (int i = 0; i < PQntuples(r) && !first; i++)
		if (strncmp(PQgetvalue(r, i, 0), "pg_temp_", 8) != 0)
			first = PQgetvalue(r, i, 0);
	if (first && strcmp(first, "pg_catalog") != 0) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message),
			 "the session's search_path puts schema \"%.200s\" before pg_catalog: "
			 "taskslaps' own statements would look up types and operators there "
			 "first (whoever may create objects in it could run code as this role); "
			 "put pg_catalog first in the login's search_path, or leave it out "
			 "(PostgreSQL then searches it first)",
			 first);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
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
	exec_pin_formats(ex);
	if (check_search_path(ex, err) < 0) {
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

/*
 * The text forms a backfill's keys travel in (its upper key, its batches'
 * last keys, its checkpoint) are read back as the keys' types, so they must
 * not depend on the login's or the database's settings: dates and times in
 * ISO form (numeric offsets, which any TimeZone reads back; the day/month
 * order, which ISO text does not need, is left as it is), intervals in
 * PostgreSQL's form, floats exact. With DateStyle 'Postgres' a summer
 * timestamptz of Europe/Dublin prints as "... IST", which reads back an
 * hour off: a backfill walked the same keys for ever, or stopped short of
 * its range; with extra_float_digits 0, a float key lost its last digits.
 * Session-wide, as PostgreSQL's JDBC driver sets them (so an author's
 * statements run as they would under Flyway); sent with the next statement,
 * at no round trip of its own, when the executor connects and again when a
 * backfill starts (an `sql` step may have set them since).
 */
#define SQL_PIN_FORMATS                                                                            \
	"SELECT pg_catalog.set_config('DateStyle', 'ISO', false), "                                \
	"pg_catalog.set_config('IntervalStyle', 'postgres', false), "                              \
	"pg_catalog.set_config('extra_float_digits', '3', false)"

void
exec_pin_formats(struct exec *ex)
{
	db_defer(ex->db, SQL_PIN_FORMATS, 0, NULL);
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
	plan_idset_free(ex->known);
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

#define SQL_MAY_RECORD                                                                             \
	"SELECT pg_catalog.has_table_privilege('taskslaps.plans', 'INSERT') AND "                  \
	"pg_catalog.has_table_privilege('taskslaps.plans', 'UPDATE') AND "                         \
	"pg_catalog.has_table_privilege('taskslaps.events', 'INSERT') AND "                        \
	"pg_catalog.has_table_privilege('taskslaps.step_ledger', 'INSERT')"

static bool
is_true(const PGresult *r)
{
	return r && PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
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
	/* the rest when a plan first has to run (prefetch_known): a no-op run needs none of it */
	plan_idset_free(ex->known);
	ex->known = NULL;
	ex->prefetch = true;
	return 0;
}

/*
 * Every plan id of the target that has a row or a ledger row, and whether
 * this login may record: once per run, in one round trip, when the first
 * plan that is not applied and unchanged is about to run. A ledger row
 * without its plan's row is not written by this program (a step's ledger row
 * commits with or after its plan's `running` status), but one left by hand
 * is found all the same. Returns 0 or -1 with err.
 */
static int
prefetch_known(struct exec *ex, struct db_error *err)
{
	const char *params[1] = { ex->target };
	static const char *const none[1];
	struct db_stmt st[3] = {
		{ .sql = "SELECT plan_id FROM taskslaps.plans WHERE target = $1",
		  .nparams = 1,
		  .params = params,
		  .fixed = true },
		{ .sql = "SELECT DISTINCT plan_id FROM taskslaps.step_ledger WHERE target = $1",
		  .nparams = 1,
		  .params = params,
		  .fixed = true },
		{ .sql = SQL_MAY_RECORD, .params = none, .fixed = true },
	};
	const char *first;

	if (db_batch(ex->db, st, 3, err, NULL) < 0) {
		for (size_t i = 0; i < 3; i++)
			PQclear(st[i].res);
		return -1;
	}
	ex->known = plan_idset_new();
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < PQntuples(st[k].res); i++)
			(void)plan_idset_add(ex->known, PQgetvalue(st[k].res, i, 0), "", &first);
	ex->may_record = is_true(st[2].res);
	for (size_t i = 0; i < 3; i++)
		PQclear(st[i].res);
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
			if (db_exec(
				ex->lockdb, &r, err,
				"SELECT pid FROM pg_catalog.pg_locks WHERE locktype = 'advisory' "
				"AND granted AND objsubid = 1 AND ((classid::int8 << 32) | "
				"objid::int8) = " EXEC_RUNNER_LOCK_KEY
				" AND database = (SELECT oid "
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

#define SQL_PLAN_STATUS                                                                            \
	"INSERT INTO taskslaps.plans AS p (target, plan_id, checksum, hash_version, file_path, "   \
	"commit_sha, author, status, max_hazard, completed_at) VALUES ($1, $2, $3, $4::int, $5, "  \
	"$6, $7, $8, $9, CASE WHEN $8 = 'applied' THEN now() END) ON CONFLICT (target, plan_id) "  \
	"DO UPDATE SET checksum = CASE WHEN $8 = 'drift' THEN p.checksum ELSE EXCLUDED.checksum "  \
	"END, hash_version = EXCLUDED.hash_version, file_path = EXCLUDED.file_path, commit_sha = " \
	"coalesce(EXCLUDED.commit_sha, p.commit_sha), author = coalesce(EXCLUDED.author, "         \
	"p.author), status = EXCLUDED.status, max_hazard = EXCLUDED.max_hazard, updated_at = "     \
	"now(), completed_at = CASE WHEN $8 = 'applied' THEN now() ELSE p.completed_at END"

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

struct db_stmt
exec_plan_status_stmt(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
		      const char *status, char hv[16], const char *params[9], bool fixed)
{
	plan_status_params(ex, p, meta, status, hv, params);
	return (struct db_stmt){
		.sql = SQL_PLAN_STATUS, .nparams = 9, .params = params, .fixed = fixed
	};
}

/*
 * The same, when nothing waits for it: a plan's final status, or its
 * `running` when that goes with its first step's transaction.
 */
void
exec_plan_status_defer(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
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
	static const char msg[] = "resumed by an operator";
	const char *params[2] = { ex->target, plan_id };
	PGresult *r;
	int n;

	/* the row and its event in one transaction (exec_verb_begin) */
	if (exec_verb_begin(ex, err) < 0)
		return -1;
	if (db_exec(ex->db, &r, err,
		    "UPDATE taskslaps.plans SET status = 'pending', updated_at = now() WHERE "
		    "target = $1 AND plan_id = $2 AND status IN ('aborted', 'failed') RETURNING 1",
		    2, params) < 0) {
		exec_verb_rollback(ex);
		return -1;
	}
	n = PQntuples(r);
	PQclear(r);
	if (n == 0) {
		exec_verb_rollback(ex);
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message),
			 "plan %s of target %s is not aborted or failed: nothing to resume",
			 plan_id, ex->target);
		return -1;
	}
	if (exec_verb_event(ex, "plan.start", plan_id, msg, err) < 0)
		return -1;
	return exec_verb_commit(ex, "plan.start", plan_id, msg, err);
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
#define SQL_ACCEPT_DRIFT                                                                                             \
	"WITH p AS (SELECT status FROM taskslaps.plans WHERE target = $1 AND plan_id = $2 FOR "                      \
	"UPDATE), f AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($4::text[]), "                                    \
	"pg_catalog.unnest($5::text[]), pg_catalog.unnest($6::int[]), "                                              \
	"pg_catalog.unnest($7::text[]), pg_catalog.unnest($8::text[])) AS f(sha, wave, idx, op, "                    \
	"hazard)), c AS (SELECT f.*, CASE WHEN EXISTS (SELECT 1 FROM taskslaps.step_ledger l "                       \
	"WHERE l.target = $1 AND l.step_sha = f.sha) THEN 'ran' WHEN EXISTS (SELECT 1 FROM taskslaps.step_ledger l " \
	"WHERE l.target = $1 AND l.plan_id = $2 AND l.wave = f.wave AND l.step_index = f.idx "                       \
	"AND l.outcome <> 'undone') "                                                                                \
	"THEN 'edited' ELSE 'new' END AS k FROM f), touch AS (SELECT 1 FROM p WHERE p.status IN "                    \
	"('drift', 'applied')), ins AS (INSERT INTO taskslaps.step_ledger (step_sha, target, "                       \
	"plan_id, wave, step_index, op, hazard, outcome) SELECT c.sha, $1, $2, c.wave, c.idx, "                      \
	"c.op, c.hazard, 'accepted' FROM c WHERE c.k = 'edited' AND EXISTS (SELECT 1 FROM touch) "                   \
	"ON CONFLICT DO NOTHING RETURNING 1), u AS (UPDATE taskslaps.plans SET checksum = $3, "                      \
	"status = CASE WHEN EXISTS (SELECT 1 FROM touch) THEN CASE WHEN EXISTS (SELECT 1 FROM c "                    \
	"WHERE c.k = 'new') THEN 'pending' ELSE 'applied' END ELSE status END, completed_at = "                      \
	"CASE WHEN EXISTS (SELECT 1 FROM touch) AND EXISTS (SELECT 1 FROM c WHERE c.k = 'new') "                     \
	"THEN NULL ELSE completed_at END, updated_at = now() WHERE target = $1 AND plan_id = $2 "                    \
	"RETURNING status) SELECT u.status, (SELECT count(*) FROM c WHERE c.k = 'new'), (SELECT "                    \
	"count(*) FROM ins) FROM u"

int
exec_accept_drift(struct exec *ex, const struct plan *p, struct exec_accepted *out,
		  struct db_error *err)
{
	struct strbuf sb[5] = { STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT };
	const char *params[8] = { ex->target, p->id, p->checksum };
	struct exec_accepted acc = { 0 };
	PGresult *r = NULL;
	char *msg = NULL;
	const char *type;
	int rc = -1;

	if (exec_revert_accept_refused(ex, p->id, err) != 0)
		goto out;
	if (p->revert_of) {
		/* its steps are the inverses it ran: an edit would record what never ran */
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message),
			 "plan %s is a revert plan: an edit of it is not accepted (its steps are "
			 "the inverses of what it undid); restore the file, and write a new plan "
			 "for what is needed",
			 p->id);
		goto out;
	}
	step_arrays(p, sb);
	for (int k = 0; k < 5; k++)
		params[3 + k] = sb[k].buf;
	/* the rows and their event in one transaction (exec_verb_begin) */
	if (exec_verb_begin(ex, err) < 0)
		goto out;
	if (db_exec(ex->db, &r, err, SQL_ACCEPT_DRIFT, 8, params) < 0) {
		exec_verb_rollback(ex);
		goto out;
	}
	if (PQntuples(r) == 0) {
		exec_verb_rollback(ex);
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message),
			 "plan %s of target %s is not in the database", p->id, ex->target);
		goto out;
	}
	snprintf(acc.status, sizeof(acc.status), "%s", PQgetvalue(r, 0, 0));
	acc.pending = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
	acc.accepted = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
	if (!strcmp(acc.status, "pending"))
		msg =
		    xasprintf("drift accepted by an operator: checksum %.16s recorded, %zu edited "
			      "step%s accepted without running, %zu step%s that never ran pending",
			      p->checksum, acc.accepted, acc.accepted == 1 ? "" : "s", acc.pending,
			      acc.pending == 1 ? "" : "s");
	else
		msg =
		    xasprintf("drift accepted by an operator: checksum %.16s recorded, nothing run",
			      p->checksum);
	type = !strcmp(acc.status, "pending") ? "plan.start" : "plan.ok";
	if (exec_verb_event(ex, type, p->id, msg, err) < 0 ||
	    exec_verb_commit(ex, type, p->id, msg, err) < 0)
		goto out;
	*out = acc;
	rc = 0;
out:
	free(msg);
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
 * *may_record: whether this login may write the plan's status, its events
 * and ledger rows (a reader may not: its `running` status is then written on
 * its own, and fails the plan before any step runs).
 */
static int
load_state(struct exec *ex, const struct plan *p, PGresult **plan_row, PGresult **ledger,
	   PGresult **stale, bool *may_record, struct db_error *err)
{
	char *shas = sha_array(p);
	const char *params[3] = { ex->target, p->id, shas };
	const char *lparams[2] = { ex->target, shas };
	static const char *const none[1];
	struct db_stmt st[4] = {
		{ .sql = "SELECT checksum, status FROM taskslaps.plans WHERE target = $1 AND "
			 "plan_id = $2",
		  .nparams = 2,
		  .params = params,
		  .fixed = true },
		{ .sql = "SELECT step_sha, outcome FROM taskslaps.step_ledger WHERE target = $1 "
			 "AND step_sha = ANY($2::text[])",
		  .nparams = 2,
		  .params = lparams,
		  .fixed = true },
		{ .sql =
		      "SELECT step_sha, wave, step_index, op FROM taskslaps.step_ledger WHERE "
		      "target = $1 AND plan_id = $2 AND NOT (step_sha = ANY($3::text[])) AND outcome "
		      "<> 'undone' ORDER BY "
		      "applied_at LIMIT 1",
		  .nparams = 3,
		  .params = params,
		  .fixed = true },
		{ .sql = SQL_MAY_RECORD, .params = none, .fixed = true },
	};
	int rc;

	/* one round trip for the four */
	*plan_row = *ledger = *stale = NULL;
	rc = db_batch(ex->db, st, 4, err, NULL);
	*plan_row = st[0].res;
	*ledger = st[1].res;
	*stale = st[2].res;
	*may_record = is_true(st[3].res);
	PQclear(st[3].res);
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

/*
 * Whether the first step of the plan that is not in the ledger is
 * transactional; *last: and it is the plan's last step.
 */
static bool
first_step_tx(const struct plan *p, const PGresult *ledger, bool *last)
{
	const struct plan_step *first = NULL, *end = NULL;

	for (int w = 0; w < WAVE__COUNT; w++)
		for (size_t i = 0; i < p->waves[w].nsteps; i++) {
			end = &p->waves[w].steps[i];
			if (!first && !in_ledger(ledger, end->sha))
				first = end;
		}
	*last = first && first == end;
	return first && first->exec == EXEC_TX;
}

enum exec_attempt
exec_run_step(struct step_run *r)
{
	const char *table = r->s->touched.n ? r->s->touched.v[0] : NULL;
	enum exec_attempt a = ATTEMPT_UNSET;
	/*
	 * A transactional step commits the events queued before it (and its
	 * plan's `running` status, when it is the plan's first) with its ledger
	 * row: they wait for it (db_defer_hold) unless something waits first.
	 */
	bool hold = r->s->exec == EXEC_TX;

	if (hold)
		db_defer_hold(r->ex->db, true);
	/* a healthy reading younger than 250 ms stands, as between backfill batches */
	if ((r->ex->gov.state != GOV_HEALTHY || !r->ex->gov.decided ||
	     exec_now_ms() - r->ex->gov.last_probe_ms >= 250) &&
	    !governor_wait(r->ex, r->p->id, table)) {
		db_defer_hold(r->ex->db, false);
		return exec_fail(r, NULL, "aborted while the governor paused the run");
	}
	switch (r->s->exec) {
	case EXEC_TX: a = exec_step_tx(r); break;
	case EXEC_NONTX: a = exec_step_nontx(r); break;
	case EXEC_BATCHED: a = exec_step_backfill(r); break;
	}
	if (hold)
		db_defer_hold(r->ex->db, false);
	/* a step that did not say what became of it, or said nothing of why, failed */
	if (a == ATTEMPT_OK)
		return a;
	if (a == ATTEMPT_UNSET || r->res->outcome == EXEC_UNSET)
		return exec_fail(r, NULL, "internal error: step %s ended as %s without a result",
				 plan_op_name(r->s->op), exec_attempt_name(a));
	return a;
}

static int
finish(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
       struct exec_result *res, const char *status, const char *event)
{
	if (res->outcome == EXEC_CONN_LOST || !db_ok(ex->db))
		return 0;
	exec_plan_status_defer(ex, p, meta, status);
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
	int rc = 0, wlast = -1;
	bool ended = false, may_record = false, only = false, later = false;
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
	if (ex->prefetch && !ex->known && prefetch_known(ex, &err) < 0) {
		res->outcome = err.conn_lost ? EXEC_CONN_LOST : EXEC_FAILED;
		snprintf(res->message, sizeof(res->message), "reading the ledger: %s", err.message);
		rc = -1;
		goto out;
	}
	if (ex->known && !p->reverted && !plan_idset_find(ex->known, p->id)) {
		/*
		 * Neither a row nor a ledger row when the run began, and nobody but
		 * this runner writes them: no state to read. Known from now on, so
		 * that another run of it in this one reads what this run leaves.
		 */
		const char *first;

		may_record = ex->may_record;
		(void)plan_idset_add(ex->known, p->id, "", &first);
	} else if (load_state(ex, p, &row, &ledger, &stale, &may_record, &err) < 0) {
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

	/*
	 * The plan's `running` status goes with its first step's transaction when
	 * nothing else runs before that step, the step is transactional, and the
	 * login may write it: a status that cannot be written then fails the
	 * step, as it fails the plan here otherwise.
	 */
	if (may_record && p->on_failure == ON_FAILURE_STOP && !p->reverted &&
	    first_step_tx(p, ledger, &only)) {
		/*
		 * When that step is also the plan's last, its transaction writes the
		 * `applied` status: a `running` one in the same commit would never be
		 * seen. An attempt of it that does not commit queues it
		 * (running_later).
		 */
		if (only)
			later = true;
		else
			exec_plan_status_defer(ex, p, meta, "running");
	} else if (exec_plan_status(ex, p, meta, "running", &err) < 0) {
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
	for (int w = 0; w < WAVE__COUNT; w++)
		if (p->waves[w].present)
			wlast = w;
	/* a revert plan: which of the steps it undoes the ledger has */
	if (p->reverted && exec_revert_load(ex, p, &fwd, &err) < 0) {
		res->outcome = err.conn_lost ? EXEC_CONN_LOST : EXEC_FAILED;
		snprintf(res->message, sizeof(res->message), "revert of %s: %s", p->revert_of,
			 err.message);
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
			struct step_run r = { .ex = ex,
					      .p = p,
					      .s = &wv->steps[i],
					      .meta = meta,
					      .wave = wname,
					      .res = res,
					      .last =
						  !p->reverted && w == wlast && i + 1 == wv->nsteps,
					      .plan_t0 = t0,
					      .wave_t0 = wt0,
					      .running_later = later };

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
			} else if (exec_run_step(&r) == ATTEMPT_OK) {
				res->steps_done++;
				ended = r.ended;
				continue;
			}
			if (res->outcome == EXEC_FAILED && ex->abort_req)
				res->outcome = EXEC_ABORTED;
			if (res->outcome != EXEC_ABORTED && res->outcome != EXEC_CONN_LOST) {
				governor_note_error(ex);
				exec_event(ex, "step.error", p->id, wname, r.s->sha, NULL,
					   "%s%s%s%s", res->message,
					   res->sqlstate[0] ? " (SQLSTATE " : "", res->sqlstate,
					   res->sqlstate[0] ? ")" : "");
				if (p->on_failure != ON_FAILURE_STOP)
					exec_rollback(ex, p, meta, (enum plan_wave)w, res);
			}
			end_failed(ex, p, meta, res);
			goto out;
		}
		/* the plan's end, when its last step's transaction recorded it */
		if (ended)
			break;
		exec_event(ex, "wave.ok", p->id, wname, NULL, NULL, "%s wave done in %lld ms",
			   wname, (long long)(exec_now_ms() - wt0));
	}
	if (p->reverted && exec_revert_done(ex, p, res, &err) < 0) {
		res->outcome = err.conn_lost ? EXEC_CONN_LOST : EXEC_FAILED;
		snprintf(res->message, sizeof(res->message), "recording the reverted plan: %s",
			 err.message);
		end_failed(ex, p, meta, res);
		goto out;
	}
	res->outcome = EXEC_APPLIED;
	if (ended) /* status, wave.ok and plan.ok committed with the last step (res->message) */
		goto out;
	snprintf(res->message, sizeof(res->message),
		 "%s applied: %zu/%zu steps (%zu skipped) in %lld ms", p->id, res->steps_done,
		 res->steps_total, res->steps_skipped, (long long)(exec_now_ms() - t0));
	finish(ex, p, meta, res, "applied", "plan.ok");
out:
	if (res->outcome == EXEC_UNSET) {
		/* every path above says how the plan ended; one that did not is a bug, not success
		 */
		res->outcome = EXEC_FAILED;
		snprintf(res->message, sizeof(res->message),
			 "internal error: the run of plan %s ended without an outcome", p->id);
		rc = -1;
	}
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
