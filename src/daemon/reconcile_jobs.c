/*
 * The operator verbs the worker runs between passes (worker_job): resume,
 * and accept-drift of an edited plan or of a removed one. They change the
 * database's rows with events naming the plan, so the next pass's view reads
 * them again (dbview.h).
 */
#include <stdio.h>
#include <string.h>

#include "daemon/reconcile_int.h"
#include "proto/proto.h"

/*
 * accept-drift of a plan that is in drift because no file at the tip has it
 * any more: its removal is accepted. The row stays applied (its steps ran),
 * without a checksum, which add_missing takes as "gone, and that is known";
 * should the file come back, it is checked against the ledger like any plan.
 */
static int
accept_removal(struct worker *w, const char *plan_id, cJSON *res)
{
	static const char removal[] =
	    "removal from the branch accepted by an operator: nothing run, nothing undone";
	const char *params[2] = { w->cfg->target, plan_id };
	const struct repo_snapshot *s = w->snap;
	struct db_error err;
	char msg[1200];
	PGresult *r;
	int n;

	if (db_exec(exec_db(w->ex), &r, &err,
		    "SELECT coalesce(file_path, '') FROM taskslaps.plans WHERE target = $1 AND "
		    "plan_id = $2 AND status = 'drift' AND checksum IS NOT NULL",
		    2, params) < 0)
		goto fail;
	n = PQntuples(r);
	for (size_t i = 0; n && s && i < s->n; i++)
		if (!strcmp(s->files[i].path, PQgetvalue(r, 0, 0)))
			n = 0; /* there, but invalid: not a removal */
	PQclear(r);
	if (n == 0) {
		snprintf(msg, sizeof(msg), "no valid plan %s at the branch tip", plan_id);
		cJSON_AddStringToObject(res, "code", TS_PROTO_E_NOT_FOUND);
		cJSON_AddStringToObject(res, "message", msg);
		return -1;
	}
	/* the row and its event in one transaction (exec_verb_begin) */
	if (exec_verb_begin(w->ex, &err) < 0)
		goto fail;
	if (db_exec(exec_db(w->ex), NULL, &err,
		    "UPDATE taskslaps.plans SET checksum = NULL, status = 'applied', updated_at = "
		    "now() WHERE target = $1 AND plan_id = $2 AND status = 'drift'",
		    2, params) < 0) {
		exec_verb_rollback(w->ex);
		goto fail;
	}
	if (exec_verb_event(w->ex, "plan.ok", plan_id, removal, &err) < 0 ||
	    exec_verb_commit(w->ex, "plan.ok", plan_id, removal, &err) < 0)
		goto fail;
	snprintf(msg, sizeof(msg),
		 "plan %s: its removal from the branch is accepted; nothing was run or undone",
		 plan_id);
	cJSON_AddStringToObject(res, "message", msg);
	return 0;
fail:
	cJSON_AddStringToObject(res, "code", TS_PROTO_E_CONFLICT);
	cJSON_AddStringToObject(res, "message", err.message);
	return -1;
}

int
worker_job(struct daemon *d, struct worker *w, const struct job *j, cJSON *res)
{
	struct db_error err;
	char msg[1200];

	(void)d;
	if (!strcmp(j->cmd, "resume")) {
		if (exec_resume(w->ex, j->plan_id, &err) < 0) {
			cJSON_AddStringToObject(res, "code", TS_PROTO_E_CONFLICT);
			cJSON_AddStringToObject(res, "message", err.message);
			return -1;
		}
		worker_forget_failures(w);
		snprintf(msg, sizeof(msg), "plan %s resumed: it runs on this pass", j->plan_id);
		cJSON_AddStringToObject(res, "message", msg);
		return 0;
	}
	if (!strcmp(j->cmd, "accept-drift")) {
		struct repo_snapshot *s = w->snap;
		if (!s) {
			/* no tip read yet (or the last read failed): absent is not removed */
			cJSON_AddStringToObject(res, "code", TS_PROTO_E_CONFLICT);
			cJSON_AddStringToObject(res, "message",
						"the branch tip is not read yet (or its last read "
						"failed): try again after a pass");
			return -1;
		}
		for (size_t i = 0; s && i < s->n; i++) {
			struct diags dg = DIAGS_INIT;
			struct plan *p = NULL;
			int rc = -1;

			if (parse_file(&s->files[i], &p, &dg) == 0 && !strcmp(p->id, j->plan_id)) {
				struct exec_accepted acc;

				rc = exec_accept_drift(w->ex, p, &acc, &err);
				if (rc < 0)
					snprintf(msg, sizeof(msg), "plan %s: %s", p->id,
						 err.message);
				else
					exec_accepted_text(p, &acc, msg, sizeof(msg));
				cJSON_AddStringToObject(res, "message", msg);
				if (rc < 0)
					cJSON_AddStringToObject(res, "code", TS_PROTO_E_CONFLICT);
				plan_free(p);
				diags_clear(&dg);
				return rc;
			}
			plan_free(p);
			diags_clear(&dg);
		}
		return accept_removal(w, j->plan_id, res);
	}
	cJSON_AddStringToObject(res, "code", TS_PROTO_E_UNKNOWN_CMD);
	cJSON_AddStringToObject(res, "message", "unknown job");
	return -1;
}
