/*
 * Events (SPEC §5): every transition of a run is a row of taskslaps.events,
 * sent with the next statement (db_defer_row), and told to cfg.on_event.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "exec/exec_int.h"

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

void
exec_event_step_start(struct step_run *r)
{
	exec_event(r->ex, "step.start", r->p->id, r->wave, r->s->sha, NULL, "%s %s: %s",
		   plan_hazard_name(r->s->hazard), plan_op_name(r->s->op), r->s->stmt);
}

void
exec_event_step_ok(struct step_run *r, int64_t ms, int attempts)
{
	char metrics[256];

	snprintf(metrics, sizeof(metrics),
		 "{\"execution_time_ms\": %lld, \"rows_affected\": %lld, \"attempts\": %d, "
		 "\"outcome\": \"%s\"}",
		 (long long)ms, (long long)r->rows, attempts, exec_ledger_outcome(r));
	if (r->already_present)
		exec_event(r->ex, "step.already_present", r->p->id, r->wave, r->s->sha, metrics,
			   "%s: prechecks fail but postchecks hold: adopted as already present",
			   plan_op_name(r->s->op));
	else
		exec_event(r->ex, "step.ok", r->p->id, r->wave, r->s->sha, metrics,
			   "%s: done in %lld ms, %lld rows", plan_op_name(r->s->op), (long long)ms,
			   (long long)r->rows);
}
