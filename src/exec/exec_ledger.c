/* The step ledger: the row that says a step is done, and how. */
#include <stdio.h>

#include "exec/exec_int.h"

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
