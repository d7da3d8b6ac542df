/*
 * Revert plans (a file with revert: <plan_id>, planned by plan_revert.c):
 * the executor runs their steps, the reverted plan's inverses, through its
 * normal loop and step code, with three additions made here.
 *
 * Each inverse runs only when the ledger (of this target) says the step it
 * undoes is applied: one that never ran, or that an on_failure rollback
 * undid already, is skipped, and one adopted as already present or edited
 * after it ran (accepted drift) is kept, as a rollback keeps them; each
 * skip is an event. An inverse's ledger row (its own step_sha, outcome
 * "undone") and the removal of the forward step's row commit together
 * (SQL_LEDGER_UNDO), so a crash in the middle resumes where it stopped and
 * nothing is undone twice. When the revert plan is applied, the reverted
 * plan's status becomes "reverted" (or "reverted to <wave>"): settled like
 * applied, it never runs again (exec_status_reverted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec_int.h"
#include "line/line.h"
#include "util/strbuf.h"

bool
exec_status_reverted(const char *status)
{
	enum line_status s;

	/* the names are the line's (src/line/line.h), the database's CHECK constraint's */
	return line_status_parse(status, &s) == 0 && line_status_reverted(s);
}

int
exec_revert_load(struct exec *ex, const struct plan *p, PGresult **fwd, struct db_error *err)
{
	struct strbuf sb = STRBUF_INIT;
	const struct plan_wave_s *wv = &p->waves[WAVE_CONTRACT];
	const char *params[2] = { ex->target, p->reverted->id };
	PGresult *row;
	int rc;

	/*
	 * A revert undoes what ran: the reverted plan's file must be the one
	 * whose checksum the database recorded (an edit after it ran would be
	 * drift; planned from the edited file, the inverses would miss the
	 * steps that ran, and the plan would read reverted with them in place).
	 */
	if (db_execf(ex->db, &row, err,
		     "SELECT coalesce(checksum, '') FROM taskslaps.plans WHERE target = $1 AND "
		     "plan_id = $2",
		     2, params) < 0)
		return -1;
	if (PQntuples(row) > 0 && *PQgetvalue(row, 0, 0) &&
	    strcmp(PQgetvalue(row, 0, 0), p->reverted->checksum) != 0) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message),
			 "plan %s was recorded with checksum %.16s but its file now has %.16s: a "
			 "revert undoes what ran, so the reverted plan's file must be the one that "
			 "ran; restore it",
			 p->reverted->id, PQgetvalue(row, 0, 0), p->reverted->checksum);
		PQclear(row);
		return -1;
	}
	PQclear(row);
	sb_putc(&sb, '{');
	for (size_t i = 0; i < wv->nsteps; i++)
		sb_printf(&sb, "%s%s", i ? "," : "", wv->steps[i].inverse_of);
	sb_putc(&sb, '}');
	params[1] = sb.buf;
	rc = db_execf(ex->db, fwd, err,
		      "SELECT step_sha, outcome FROM taskslaps.step_ledger WHERE target = $1 AND "
		      "step_sha = ANY($2::text[])",
		      2, params);
	sb_free(&sb);
	return rc;
}

const char *
exec_revert_forward(const PGresult *fwd, const struct plan_step *s)
{
	for (int i = 0; fwd && s->inverse_of && i < PQntuples(fwd); i++)
		if (!strcmp(PQgetvalue(fwd, i, 0), s->inverse_of))
			return PQgetvalue(fwd, i, 1);
	return NULL;
}

const char *
exec_revert_why_not(const struct plan *p, const struct plan_step *s, const char *outcome)
{
	(void)p;
	(void)s;
	if (!outcome)
		return "nothing to undo: it is not applied (it never ran, or it was undone already)";
	if (!strcmp(outcome, "already_present"))
		return "kept: it was adopted as already present, so it was there before the plan";
	if (!strcmp(outcome, "accepted"))
		return "kept: it was edited after it ran (accepted drift), so its inverse would "
		       "undo what never ran";
	return NULL;
}

bool
exec_revert_skip(struct exec *ex, const struct plan *p, const struct plan_step *s, const char *wave,
		 const PGresult *fwd)
{
	const char *why = exec_revert_why_not(p, s, exec_revert_forward(fwd, s));

	if (!why)
		return false;
	exec_event(ex, "step.skipped", p->id, wave, s->sha, NULL,
		   "%s: undoes %s (line %u, %s wave of %s): %s", plan_op_name(s->op),
		   s->undoes ? plan_op_name(s->undoes->op) : "?", s->undoes ? s->undoes->line : 0,
		   s->undoes ? plan_wave_name(s->undoes->wave) : "?", p->revert_of, why);
	return true;
}

int
exec_revert_done(struct exec *ex, const struct plan *p, const struct exec_result *res,
		 struct db_error *err)
{
	const char *status = plan_revert_status(p);

	if (exec_plan_status(ex, p->reverted, NULL, status, err) < 0)
		return -1;
	if (p->to_wave >= 0)
		exec_event(ex, "plan.reverted", p->reverted->id, NULL, NULL, NULL,
			   "%s by plan %s: the %s wave and the ones before it are kept, the "
			   "rest undone (%zu step%s undone, %zu skipped)",
			   status, p->id, plan_wave_name((enum plan_wave)p->to_wave),
			   res->steps_done - res->steps_skipped,
			   res->steps_done - res->steps_skipped == 1 ? "" : "s",
			   res->steps_skipped);
	else
		exec_event(ex, "plan.reverted", p->reverted->id, NULL, NULL, NULL,
			   "reverted by plan %s (%zu step%s undone, %zu skipped)", p->id,
			   res->steps_done - res->steps_skipped,
			   res->steps_done - res->steps_skipped == 1 ? "" : "s",
			   res->steps_skipped);
	return 0;
}

int
exec_revert_accept_refused(struct exec *ex, const char *plan_id, struct db_error *err)
{
	const char *params[2] = { ex->target, plan_id };
	PGresult *r;
	int rc;

	if (db_execf(
		ex->db, &r, err,
		"SELECT type FROM taskslaps.events WHERE target = $1 AND plan_id = $2 AND type "
		"IN ('plan.reverted', 'plan.start') ORDER BY id DESC LIMIT 1",
		2, params) < 0)
		return -1;
	rc = PQntuples(r) > 0 && !strcmp(PQgetvalue(r, 0, 0), "plan.reverted");
	PQclear(r);
	if (rc) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message),
			 "plan %s was reverted by a revert plan: its file is history, and an edit "
			 "of it is not accepted (its undone steps would run again); restore the "
			 "file, and write a new plan for what is needed",
			 plan_id);
	}
	return rc;
}
