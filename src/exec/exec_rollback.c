/*
 * A plan's on_failure: after a step fails, undo the steps the ledger says
 * this plan completed — those of the failing wave (rollback_wave: the
 * database is left at the wave's start) or all of them (rollback_plan: at
 * the plan's start) — last one first, each by its inverse, run through the
 * executor's normal step code with its own checks, proofs and ledger row.
 *
 * The ledger keeps the state of a rollback: an inverse's row (outcome
 * "undone") and the removal of the row of the step it undid commit together
 * (SQL_LEDGER_UNDO), so "completed" always means "in the ledger as applied"
 * and a step is never undone twice. The events keep its course:
 * rollback.start (the failing wave, and the first error in its metrics),
 * rollback.step for each step, then rollback.ok or rollback.failed. A run
 * that finds a rollback.start or rollback.step as the plan's last rollback
 * event finishes that rollback (exec_rollback_resume) instead of going
 * forward again.
 *
 * A step adopted as already present is kept: it was there before the plan.
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec_int.h"
#include "util/alloc.h"

/* "the start of the validate wave", "the start of the plan" */
static void
boundary(const struct plan *p, enum plan_wave wave, char *buf, size_t len)
{
	if (p->on_failure == ON_FAILURE_ROLLBACK_WAVE)
		snprintf(buf, len, "the start of the %s wave", plan_wave_name(wave));
	else
		snprintf(buf, len, "the start of the plan");
}

/* The outcome of each of the plan's steps in the ledger, as a result (step_sha, outcome). */
static int
ledger_rows(struct exec *ex, const struct plan *p, PGresult **out, struct db_error *err)
{
	const char *params[2] = { ex->target, p->id };

	return db_execf(ex->db, out, err,
			"SELECT step_sha, outcome FROM taskslaps.step_ledger WHERE target = $1 AND "
			"plan_id = $2",
			2, params);
}

static const char *
ledger_outcome(const PGresult *rows, const char *sha)
{
	for (int i = 0; i < PQntuples(rows); i++)
		if (strcmp(PQgetvalue(rows, i, 0), sha) == 0)
			return PQgetvalue(rows, i, 1);
	return NULL;
}

/* The rollback's end: res says the first error, then what became of the rollback. */
static void rewrite(struct exec_result *res, const char *first, const char *first_state,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
rewrite(struct exec_result *res, const char *first, const char *first_state, const char *fmt, ...)
{
	char tail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tail, sizeof(tail), fmt, ap);
	va_end(ap);
	snprintf(res->message, sizeof(res->message), "%s%s%s%s; %s", first,
		 first_state[0] ? " (SQLSTATE " : "", first_state, first_state[0] ? ")" : "", tail);
}

/*
 * Undoes what is to undo, first the last; first (and first_state, its
 * SQLSTATE or "") is the error that started the rollback.
 */
static void
undo(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta, enum plan_wave wave,
     const char *first, const char *first_state, struct exec_result *res)
{
	char where[64];
	PGresult *rows = NULL;
	struct db_error err;
	size_t undone = 0;
	int lo = p->on_failure == ON_FAILURE_ROLLBACK_WAVE ? (int)wave : 0;

	boundary(p, wave, where, sizeof(where));
	if (ledger_rows(ex, p, &rows, &err) < 0) {
		res->outcome = err.conn_lost ? EXEC_CONN_LOST : EXEC_FAILED;
		rewrite(res, first, first_state,
			"rollback to %s not started: reading the ledger: %s", where, err.message);
		goto failed;
	}
	for (int w = (int)wave; w >= lo; w--) {
		const struct plan_wave_s *wv = &p->waves[w];
		const char *wname = plan_wave_name((enum plan_wave)w);

		for (size_t i = wv->nsteps; i-- > 0;) {
			const struct plan_step *s = &wv->steps[i];
			const char *outcome = ledger_outcome(rows, s->sha);
			struct exec_result ires = { 0 };
			struct step_run r = { .ex = ex,
					      .p = p,
					      .s = s->inverse,
					      .meta = meta,
					      .wave = wname,
					      .res = &ires };

			if (!outcome)
				continue; /* not done, or undone already */
			if (!strcmp(outcome, "accepted")) {
				/* an edit accepted by an operator: what ran is not this step */
				exec_event(
				    ex, "rollback.step", p->id, wname, s->sha, NULL,
				    "%s (line %u): kept: it was edited after it ran (accepted "
				    "drift), so its inverse would undo what never ran",
				    plan_op_name(s->op), s->line);
				continue;
			}
			if (!strcmp(outcome, "already_present")) {
				exec_event(
				    ex, "rollback.step", p->id, wname, s->sha, NULL,
				    "%s (line %u): kept: it was adopted as already present, so "
				    "it was there before the plan",
				    plan_op_name(s->op), s->line);
				continue;
			}
			if (ex->abort_req) {
				res->outcome = EXEC_ABORTED;
				rewrite(res, first, first_state,
					"rollback to %s %s before undoing step %.16s (it goes on "
					"when the plan runs again)",
					where,
					ex->stop_req ? "interrupted by a stop of the runner"
						     : "aborted by an operator",
					s->sha);
				goto out;
			}
			if (s->undo == UNDO_NOTHING) {
				const char *params[2] = { ex->target, s->sha };
				/* its row goes: once the plan runs again, so does the step */
				/* a backfill's checkpoint goes too, or it would resume as done */
				if (db_execf(
					ex->db, NULL, &err,
					"WITH c AS (DELETE FROM taskslaps.backfill_progress WHERE "
					"target = $1 AND step_sha = $2) DELETE FROM "
					"taskslaps.step_ledger WHERE target = $1 AND step_sha = $2",
					2, params) < 0) {
					res->outcome = err.conn_lost ? EXEC_CONN_LOST : EXEC_FAILED;
					rewrite(
					    res, first, first_state,
					    "rollback to %s failed: removing the ledger row of %s "
					    "(line %u): %s",
					    where, plan_op_name(s->op), s->line, err.message);
					goto failed;
				}
				exec_event(ex, "rollback.step", p->id, wname, s->sha, NULL,
					   "%s (line %u): nothing to undo (%s)",
					   plan_op_name(s->op), s->line,
					   s->undo_reason ? s->undo_reason : "");
				continue;
			}
			if (s->undo != UNDO_INVERSE || !s->inverse) {
				/* the lint refuses such a plan; a plan read otherwise still stops
				 * here */
				res->outcome = EXEC_FAILED;
				rewrite(res, first, first_state,
					"rollback to %s failed: %s (line %u) cannot be undone: %s",
					where, plan_op_name(s->op), s->line,
					s->undo_reason ? s->undo_reason : "no inverse");
				goto failed;
			}
			if (exec_run_step(&r) != ATTEMPT_OK) {
				if (ires.outcome == EXEC_FAILED && ex->abort_req)
					ires.outcome = EXEC_ABORTED;
				res->outcome = ires.outcome;
				if (ires.outcome == EXEC_FAILED) {
					governor_note_error(ex);
					exec_event(ex, "step.error", p->id, wname, s->inverse->sha,
						   NULL, "%s%s%s%s", ires.message,
						   ires.sqlstate[0] ? " (SQLSTATE " : "",
						   ires.sqlstate, ires.sqlstate[0] ? ")" : "");
				}
				rewrite(
				    res, first, first_state,
				    "rollback to %s %s at %s (line %u), the inverse of %s %.16s: "
				    "%s%s%s%s",
				    where, ires.outcome == EXEC_FAILED ? "failed" : "stopped",
				    plan_op_name(s->inverse->op), s->line, plan_op_name(s->op),
				    s->sha, ires.message, ires.sqlstate[0] ? " (SQLSTATE " : "",
				    ires.sqlstate, ires.sqlstate[0] ? ")" : "");
				if (ires.outcome == EXEC_FAILED)
					goto failed;
				goto out;
			}
			undone++;
			exec_event(ex, "rollback.step", p->id, wname, s->sha, NULL,
				   "%s (line %u): undone by %s (step %.16s)", plan_op_name(s->op),
				   s->line, plan_op_name(s->inverse->op), s->inverse->sha);
		}
	}
	res->outcome = EXEC_FAILED;
	rewrite(res, first, first_state, "rolled back to %s (%zu step%s undone)", where, undone,
		undone == 1 ? "" : "s");
	exec_event(ex, "rollback.ok", p->id, plan_wave_name(wave), NULL, NULL,
		   "rolled back to %s: %zu step%s undone", where, undone, undone == 1 ? "" : "s");
	goto out;
failed:
	if (res->outcome != EXEC_CONN_LOST)
		exec_event(ex, "rollback.failed", p->id, plan_wave_name(wave), NULL, NULL, "%s",
			   res->message);
out:
	/* the SQLSTATE is the first error's, and is in the message already */
	snprintf(res->sqlstate, sizeof(res->sqlstate), "%s", "");
	PQclear(rows);
}

void
exec_rollback(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
	      enum plan_wave wave, struct exec_result *res)
{
	char where[64], *first = xstrdup(res->message), state[6], *metrics;
	cJSON *m = cJSON_CreateObject();

	snprintf(state, sizeof(state), "%s", res->sqlstate);
	boundary(p, wave, where, sizeof(where));
	cJSON_AddStringToObject(m, "on_failure", plan_on_failure_name(p->on_failure));
	cJSON_AddStringToObject(m, "error", first);
	cJSON_AddStringToObject(m, "sqlstate", state);
	cJSON_AddStringToObject(m, "step_sha", res->step_sha);
	metrics = cJSON_PrintUnformatted(m);
	cJSON_Delete(m);
	exec_event(ex, "rollback.start", p->id, plan_wave_name(wave),
		   res->step_sha[0] ? res->step_sha : NULL, metrics,
		   "on_failure: %s: rolling back to %s", plan_on_failure_name(p->on_failure),
		   where);
	free(metrics);
	/* recorded before anything is undone: a crash from here on resumes the rollback */
	db_flush(ex->db);
	undo(ex, p, meta, wave, first, state, res);
	free(first);
}

int
exec_rollback_resume(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
		     struct exec_result *res)
{
	const char *params[2] = { ex->target, p->id };
	PGresult *r;
	struct db_error err;
	int w, rc = 0;

	if (db_execf(ex->db, &r, &err,
		     "SELECT (SELECT e.type FROM taskslaps.events e WHERE e.target = $1 AND "
		     "e.plan_id = $2 AND e.type LIKE 'rollback.%' ORDER BY e.id DESC LIMIT 1), "
		     "s.wave, s.metrics->>'error', s.metrics->>'sqlstate', s.metrics->>'step_sha', "
		     "s.metrics "
		     "FROM taskslaps.events s WHERE s.target = $1 AND s.plan_id = $2 AND s.type = "
		     "'rollback.start' ORDER BY s.id DESC LIMIT 1",
		     2, params) < 0) {
		res->outcome = err.conn_lost ? EXEC_CONN_LOST : EXEC_FAILED;
		snprintf(res->message, sizeof(res->message), "reading the events: %s", err.message);
		return -1;
	}
	if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0) ||
	    (strcmp(PQgetvalue(r, 0, 0), "rollback.start") != 0 &&
	     strcmp(PQgetvalue(r, 0, 0), "rollback.step") != 0))
		goto out;
	w = plan_wave_from_name(PQgetvalue(r, 0, 1));
	if (w < 0)
		w = WAVE__COUNT - 1;
	rc = 1;
	snprintf(res->sqlstate, sizeof(res->sqlstate), "%s", PQgetvalue(r, 0, 3));
	snprintf(res->step_sha, sizeof(res->step_sha), "%s", PQgetvalue(r, 0, 4));
	exec_event(ex, "rollback.start", p->id, plan_wave_name((enum plan_wave)w),
		   res->step_sha[0] ? res->step_sha : NULL,
		   PQgetisnull(r, 0, 5) ? NULL : PQgetvalue(r, 0, 5),
		   "on_failure: %s: the interrupted rollback goes on",
		   plan_on_failure_name(p->on_failure));
	{
		char *first = xstrdup(PQgetvalue(r, 0, 2));
		char state[6];

		snprintf(state, sizeof(state), "%s", res->sqlstate);
		undo(ex, p, meta, (enum plan_wave)w, first, state, res);
		free(first);
	}
out:
	PQclear(r);
	return rc;
}
