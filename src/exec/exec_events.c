/*
 * Events (SPEC §5): every transition of a run is a row of taskslaps.events,
 * sent with the next statement (db_defer_row), and told to cfg.on_event.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec_int.h"
#include "util/alloc.h"

/*
 * The events gathered since the last round trip, in one statement (one
 * commit): more than three, each parameter an array, unnested in order, so
 * the ids keep the order of the calls (up to three, SQL_EVENTS_VALUES). The
 * NOTIFY trigger still fires for each row.
 */
static const char SQL_EVENTS_INSERT[] =
    "INSERT INTO taskslaps.events (target, plan_id, wave, step_sha, type, message, metrics) "
    "SELECT u.t, u.p, u.w, u.s, u.ty, u.m, u.me FROM ROWS FROM (pg_catalog.unnest($1::text[]), "
    "pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[]), "
    "pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::text[]), "
    "pg_catalog.unnest($6::text[]), pg_catalog.unnest($7::jsonb[])) WITH ORDINALITY AS "
    "u(t, p, w, s, ty, m, me, o) ORDER BY u.o";

/*
 * One to three events in one INSERT, in order: the tail's, and the queued
 * ones when there are no more than three (a VALUES list costs the server
 * less than unnesting seven arrays).
 */
static const char *const SQL_EVENTS_VALUES[EXEC_TAIL_MAX] = {
	"INSERT INTO taskslaps.events (target, plan_id, wave, step_sha, type, message, metrics) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
	"INSERT INTO taskslaps.events (target, plan_id, wave, step_sha, type, message, metrics) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb), ($8, $9, $10, $11, $12, $13, $14::jsonb)",
	"INSERT INTO taskslaps.events (target, plan_id, wave, step_sha, type, message, metrics) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb), ($8, $9, $10, $11, $12, $13, $14::jsonb), "
	"($15, $16, $17, $18, $19, $20, $21::jsonb)",
};

static void
tell(struct exec *ex, const char *type, const char *plan_id, const char *wave, const char *step_sha,
     const char *metrics, const char *msg)
{
	struct exec_event ev = { 0 };

	if (!ex->cfg.on_event)
		return;
	ev.type = type;
	ev.plan_id = plan_id;
	ev.wave = wave;
	ev.step_sha = step_sha;
	ev.message = msg;
	ev.metrics = metrics;
	ex->cfg.on_event(&ev, ex->cfg.event_arg);
}

void
exec_event(struct exec *ex, const char *type, const char *plan_id, const char *wave,
	   const char *step_sha, const char *metrics, const char *fmt, ...)
{
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
		db_defer_row(ex->db, SQL_EVENTS_INSERT, SQL_EVENTS_VALUES, EXEC_TAIL_MAX, 7,
			     params);
	tell(ex, type, plan_id, wave, step_sha, metrics, msg);
	free(msg);
}

int
exec_verb_begin(struct exec *ex, struct db_error *err)
{
	/* what was queued goes first, on its own: never inside the verb's transaction */
	db_flush(ex->db);
	return db_cmd(ex->db, err, "BEGIN");
}

int
exec_verb_event(struct exec *ex, const char *type, const char *plan_id, const char *msg,
		struct db_error *err)
{
	const char *params[4] = { ex->target, plan_id, type, msg };

	if (db_execf(
		ex->db, NULL, err,
		"INSERT INTO taskslaps.events (target, plan_id, type, message) VALUES ($1, $2, "
		"$3, $4)",
		4, params) < 0) {
		exec_db_rollback(ex);
		return -1;
	}
	return 0;
}

int
exec_verb_commit(struct exec *ex, const char *type, const char *plan_id, const char *msg,
		 struct db_error *err)
{
	if (db_cmd(ex->db, err, "COMMIT") < 0) {
		exec_db_rollback(ex);
		return -1;
	}
	tell(ex, type, plan_id, NULL, NULL, NULL, msg);
	return 0;
}

void
exec_verb_rollback(struct exec *ex)
{
	exec_db_rollback(ex);
}

void
exec_event_step_start(struct step_run *r)
{
	exec_event(r->ex, "step.start", r->p->id, r->wave, r->s->sha, NULL, "%s %s: %s",
		   plan_hazard_name(r->s->hazard), plan_op_name(r->s->op), r->s->stmt);
}

/* step.ok's metrics (caller frees). */
static char *
step_ok_metrics(struct step_run *r, int64_t ms, int attempts)
{
	return xasprintf("{\"execution_time_ms\": %lld, \"rows_affected\": %lld, \"attempts\": "
			 "%d, \"outcome\": \"%s\"}",
			 (long long)ms, (long long)r->rows, attempts, exec_ledger_outcome(r));
}

void
exec_event_step_ok(struct step_run *r, int64_t ms, int attempts)
{
	struct exec_tail t = { 0 };

	exec_tail_step_ok(&t, r, ms, attempts);
	exec_event(r->ex, t.ev[0].type, r->p->id, r->wave, r->s->sha, t.ev[0].metrics, "%s",
		   t.ev[0].message);
	exec_tail_free(&t);
}

void
exec_tail_add(struct exec_tail *t, const char *type, const char *wave, const char *step_sha,
	      char *metrics, const char *fmt, ...)
{
	va_list ap;

	if (t->n >= EXEC_TAIL_MAX)
		abort(); /* a bug: the tail has room for the plan's end */
	t->ev[t->n].type = type;
	t->ev[t->n].wave = wave;
	t->ev[t->n].step_sha = step_sha;
	t->ev[t->n].metrics = metrics;
	va_start(ap, fmt);
	if (vasprintf(&t->ev[t->n].message, fmt, ap) < 0)
		abort();
	va_end(ap);
	t->n++;
}

void
exec_tail_step_ok(struct exec_tail *t, struct step_run *r, int64_t ms, int attempts)
{
	char *metrics = step_ok_metrics(r, ms, attempts);

	if (r->already_present)
		exec_tail_add(t, "step.already_present", r->wave, r->s->sha, metrics,
			      "%s: prechecks fail but postchecks hold: adopted as already present",
			      plan_op_name(r->s->op));
	else
		exec_tail_add(t, "step.ok", r->wave, r->s->sha, metrics,
			      "%s: done in %lld ms, %lld rows", plan_op_name(r->s->op),
			      (long long)ms, (long long)r->rows);
}

struct db_stmt
exec_tail_stmt(struct exec_tail *t, struct step_run *r, bool fixed)
{
	for (size_t i = 0; i < t->n; i++) {
		const char **p = t->params + 7 * i;

		p[0] = r->ex->target;
		p[1] = r->p->id;
		p[2] = t->ev[i].wave;
		p[3] = t->ev[i].step_sha;
		p[4] = t->ev[i].type;
		p[5] = t->ev[i].message;
		p[6] = t->ev[i].metrics;
	}
	return (struct db_stmt){ .sql = SQL_EVENTS_VALUES[t->n - 1],
				 .nparams = (int)(7 * t->n),
				 .params = t->params,
				 .fixed = fixed };
}

void
exec_tail_tell(struct exec_tail *t, struct step_run *r)
{
	for (size_t i = 0; i < t->n; i++)
		tell(r->ex, t->ev[i].type, r->p->id, t->ev[i].wave, t->ev[i].step_sha,
		     t->ev[i].metrics, t->ev[i].message);
}

void
exec_tail_free(struct exec_tail *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->ev[i].metrics);
		free(t->ev[i].message);
	}
	memset(t, 0, sizeof(*t));
}
