/*
 * Dry run: what applying a plan would do, read from the database without
 * changing it (every query runs in a READ ONLY transaction that is rolled
 * back), with an estimate of each wave's duration.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec_int.h"
#include "util/alloc.h"

/* Throughputs for estimates, measured on a small machine; deliberately modest. */
#define EST_UPDATE_ROWS_PER_S 150000.0
#define EST_INDEX_BYTES_PER_S (60.0 * 1024 * 1024)
#define EST_SCAN_BYTES_PER_S (250.0 * 1024 * 1024)

struct relsize {
	double tuples, bytes;
	bool exists;
};

static void
rel_size(struct exec *ex, const char *table, struct relsize *rs)
{
	const char *params[1] = { table };
	struct db_error err;
	PGresult *r;

	memset(rs, 0, sizeof(*rs));
	if (!table || db_exec(ex->db, &r, &err,
			      "SELECT greatest(c.reltuples, 0), "
			      "pg_catalog.pg_relation_size(c.oid) FROM pg_catalog.pg_class c WHERE "
			      "c.oid = taskslaps.lookup_relation($1)",
			      1, params) < 0)
		return;
	if (PQntuples(r) > 0) {
		rs->exists = true;
		rs->tuples = strtod(PQgetvalue(r, 0, 0), NULL);
		rs->bytes = strtod(PQgetvalue(r, 0, 1), NULL);
	}
	PQclear(r);
}

static int64_t
estimate_ms(const struct plan_step *s, const struct relsize *rs)
{
	double ms = 5; /* a metadata change once its lock is granted */

	switch (s->op) {
	case OP_BACKFILL_SQL: {
		double rate = s->ob.rows_per_second > 0 ? (double)s->ob.rows_per_second
							: EST_UPDATE_ROWS_PER_S;
		if (rate > EST_UPDATE_ROWS_PER_S)
			rate = EST_UPDATE_ROWS_PER_S;
		ms = rs->tuples * 1000.0 / rate;
		break;
	}
	case OP_ADD_INDEX_CONCURRENTLY:
		ms = rs->bytes * 1000.0 / EST_INDEX_BYTES_PER_S * 2; /* two scans */
		break;
	case OP_VALIDATE_CONSTRAINT:
	case OP_SET_NOT_NULL: ms = rs->bytes * 1000.0 / EST_SCAN_BYTES_PER_S; break;
	default: break;
	}
	return (int64_t)ms;
}

int
exec_dry_run(struct exec *ex, const struct plan *p, char **report_json, struct exec_result *res)
{
	cJSON *o = cJSON_CreateObject(), *waves = cJSON_AddArrayToObject(o, "waves");
	struct db_error err;
	PGresult *ledger = NULL, *fwd = NULL;
	const char *params[2] = { ex->target, p->id };
	bool earlier_would_run = false, reverted = false;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	res->steps_total = p->nsteps;
	cJSON_AddStringToObject(o, "plan_id", p->id);
	cJSON_AddStringToObject(o, "max_hazard", plan_hazard_name(p->max_hazard));
	if (db_cmd(ex->db, &err, "BEGIN READ ONLY") < 0)
		goto dberr;
	{
		/* the checks call the schema's helpers: without it nothing can be checked */
		bool have;
		if (db_bool(
			ex->db, &err, &have,
			"SELECT pg_catalog.to_regclass('taskslaps.step_ledger') IS NOT NULL AND "
			"pg_catalog.to_regprocedure('taskslaps.table_exists(text)') IS NOT NULL",
			0, NULL) < 0)
			goto dberr;
		if (!have) {
			res->outcome = EXEC_FAILED;
			snprintf(res->message, sizeof(res->message),
				 "the taskslaps schema is not installed in this database, so the "
				 "steps' checks cannot run; install it with `taskslapsctl --db "
				 "CONNINFO install-schema` (a dry run changes nothing)");
			goto out;
		}
	}
	{
		PGresult *row;
		if (db_exec(ex->db, &row, &err,
			    "SELECT checksum, status FROM taskslaps.plans WHERE target = $1 AND "
			    "plan_id = $2",
			    2, params) < 0)
			goto dberr;
		if (PQntuples(row) > 0) {
			cJSON_AddStringToObject(o, "recorded_status", PQgetvalue(row, 0, 1));
			/* undone by a revert plan: it does not run again; its steps are not checked
			 */
			reverted = exec_status_reverted(PQgetvalue(row, 0, 1)) &&
				   !PQgetisnull(row, 0, 0) &&
				   !strcmp(PQgetvalue(row, 0, 0), p->checksum);
			if (reverted)
				snprintf(res->message, sizeof(res->message),
					 "%s is %s: it does not run again", p->id,
					 PQgetvalue(row, 0, 1));
			if (!PQgetisnull(row, 0, 0) && strcmp(PQgetvalue(row, 0, 0), p->checksum) &&
			    !strcmp(PQgetvalue(row, 0, 1), "applied")) {
				res->outcome = EXEC_DRIFT;
				snprintf(
				    res->message, sizeof(res->message),
				    "plan %s was applied with checksum %.16s; the file has %.16s",
				    p->id, PQgetvalue(row, 0, 0), p->checksum);
			}
		}
		PQclear(row);
	}
	{
		if (db_exec(ex->db, &ledger, &err,
			    "SELECT step_sha FROM taskslaps.step_ledger WHERE target = $1 AND "
			    "plan_id = $2",
			    2, params) < 0)
			goto dberr;
	}
	if (p->reverted && exec_revert_load(ex, p, &fwd, &err) < 0)
		goto dberr;
	if (p->blocked && res->outcome == EXEC_UNSET) {
		res->outcome = EXEC_BLOCKED;
		snprintf(res->message, sizeof(res->message), "%s", p->blocked_reason);
	}
	for (int w = 0; w < WAVE__COUNT; w++) {
		const struct plan_wave_s *wv = &p->waves[w];
		cJSON *wj, *steps;
		int64_t total = 0;

		if (!wv->present)
			continue;
		wj = cJSON_CreateObject();
		cJSON_AddStringToObject(wj, "name", plan_wave_name((enum plan_wave)w));
		steps = cJSON_AddArrayToObject(wj, "steps");
		for (size_t i = 0; i < wv->nsteps; i++) {
			const struct plan_step *s = &wv->steps[i];
			struct step_run r = { .ex = ex, .p = p, .s = s, .res = res };
			cJSON *sj = cJSON_CreateObject();
			const char *state = "would_run", *failed = NULL, *failed_post = NULL,
				   *why_not;
			char detail[512] = "";
			struct relsize rs;
			bool applied = false;
			int64_t est;

			for (int k = 0; k < PQntuples(ledger); k++)
				applied |= !strcmp(PQgetvalue(ledger, k, 0), s->sha);
			/* a revert's step runs only when what it undoes is applied */
			why_not = p->reverted && !applied
				      ? exec_revert_why_not(p, s, exec_revert_forward(fwd, s))
				      : NULL;
			rel_size(ex, s->touched.n ? s->touched.v[0] : NULL, &rs);
			est = applied || why_not ? 0 : estimate_ms(s, &rs);
			if (applied) {
				state = "applied";
			} else if (reverted) {
				state = "reverted";
				est = 0;
			} else if (why_not) {
				state = "skipped";
				snprintf(detail, sizeof(detail), "%s", why_not);
			} else {
				if (exec_checks(&r, &s->ob.prechecks, &failed, &err) < 0)
					goto dberr;
				if (failed &&
				    exec_checks(&r, &s->ob.postchecks, &failed_post, &err) < 0)
					goto dberr;
				if (failed && !failed_post && s->ob.postchecks.n) {
					state = "already_present";
					/* READ ONLY: no exec_present probe here */
					if (s->op == OP_ADD_COLUMN || s->op == OP_CREATE_TABLE)
						snprintf(detail, sizeof(detail),
							 "if the columns' type, nullability and "
							 "default are the step's (compared when "
							 "applied)");
				} else if (failed && earlier_would_run) {
					state = "would_run";
					snprintf(detail, sizeof(detail),
						 "precheck holds only after earlier steps: %s",
						 failed);
				} else if (failed) {
					state = "precheck_fails";
					snprintf(detail, sizeof(detail), "%s", failed);
					if (res->outcome == EXEC_UNSET)
						res->outcome = EXEC_FAILED;
					if (!res->message[0])
						snprintf(res->message, sizeof(res->message),
							 "step %.16s (%s): precheck fails: %s",
							 s->sha, plan_op_name(s->op), failed);
				}
				if (s->op == OP_BACKFILL_SQL && rs.exists) {
					char **cols, **types;
					size_t nk;
					if (exec_primary_key(ex, s->bf_table, &cols, &types, &nk,
							     &err) < 0)
						goto dberr;
					for (size_t k = 0; k < nk; k++) {
						free(cols[k]);
						free(types[k]);
					}
					free(cols);
					free(types);
					if (nk == 0) {
						state = "no_primary_key";
						snprintf(detail, sizeof(detail),
							 "table %s has no primary key: a batched "
							 "backfill needs one",
							 s->bf_table);
						res->outcome = EXEC_FAILED;
						snprintf(res->message, sizeof(res->message), "%s",
							 detail);
					}
				}
				if (!strcmp(state, "would_run"))
					earlier_would_run = true;
			}
			total += est;
			cJSON_AddStringToObject(sj, "step_sha", s->sha);
			cJSON_AddStringToObject(sj, "op", plan_op_name(s->op));
			cJSON_AddStringToObject(sj, "hazard", plan_hazard_name(s->hazard));
			cJSON_AddStringToObject(sj, "state", state);
			if (detail[0])
				cJSON_AddStringToObject(sj, "detail", detail);
			if (rs.exists)
				cJSON_AddNumberToObject(sj, "table_rows", rs.tuples);
			cJSON_AddNumberToObject(sj, "estimate_ms", (double)est);
			cJSON_AddItemToArray(steps, sj);
		}
		cJSON_AddNumberToObject(wj, "estimate_ms", (double)total);
		cJSON_AddItemToArray(waves, wj);
	}
	/* nothing above found a reason not to: the plan would apply */
	if (res->outcome == EXEC_UNSET)
		res->outcome = EXEC_APPLIED;
	rc = 0;
	goto out;
dberr:
	res->outcome = err.conn_lost ? EXEC_CONN_LOST : EXEC_FAILED;
	snprintf(res->message, sizeof(res->message), "reading the database: %s", err.message);
out:
	exec_db_rollback(ex);
	PQclear(ledger);
	PQclear(fwd);
	cJSON_AddStringToObject(
	    o, "outcome",
	    rc == 0 && res->outcome == EXEC_APPLIED ? "ok" : exec_outcome_name(res->outcome));
	if (res->message[0])
		cJSON_AddStringToObject(o, "message", res->message);
	*report_json = cJSON_Print(o);
	cJSON_Delete(o);
	return rc;
}
