/* Modes: what a protected branch and a chaos branch let a plan do. */
#include "plan/plan.h"
#include "util/alloc.h"

void
plan_policy_default(struct plan_policy *pol, enum plan_mode mode)
{
	pol->mode = mode;
	if (mode == MODE_PROTECTED) {
		pol->max_lock_ms = 2000;
		pol->max_stmt_ms = 60000;
		pol->max_stmt_ms_long = 0;
		pol->rows_per_second = 20000;
		pol->batch_size = 1000;
		pol->max_hazard = H3;
	} else {
		pol->max_lock_ms = 50;
		pol->max_stmt_ms = 10000;
		pol->max_stmt_ms_long = 10000;
		pol->rows_per_second = 5000;
		pol->batch_size = 1000;
		pol->max_hazard = H2;
	}
}

/* The first of step, wave, mode default that is set. */
static int64_t
pick(int64_t step, int64_t wave, int64_t dflt)
{
	return step >= 0 ? step : wave >= 0 ? wave : dflt;
}

/* A step's timeouts and pace: its own limit, else its wave's, else the mode's. */
static void
step_obligations(struct plan_step *s, const struct plan_wave_s *wv, const struct plan_policy *pol)
{
	/* index builds, backfill batches, and sql run outside a transaction (CONCURRENTLY, VACUUM)
	 */
	bool long_op = s->op == OP_ADD_INDEX_CONCURRENTLY || s->op == OP_BACKFILL_SQL ||
		       (s->op == OP_SQL && s->exec == EXEC_NONTX);

	s->ob.max_lock_ms = pick(s->limits.max_lock_ms, wv->limits.max_lock_ms, pol->max_lock_ms);
	s->ob.max_stmt_ms = pick(s->limits.max_stmt_ms, wv->limits.max_stmt_ms,
				 long_op ? pol->max_stmt_ms_long : pol->max_stmt_ms);
	s->ob.rows_per_second =
	    pick(s->limits.rows_per_second, wv->limits.rows_per_second, pol->rows_per_second);
	s->ob.batch_size = pick(s->limits.batch_size, wv->limits.batch_size, pol->batch_size);
}

void
plan_apply_policy(struct plan *p, const struct plan_policy *pol)
{
	p->mode = pol->mode;
	p->blocked = p->max_hazard > pol->max_hazard;
	p->blocked_reason = NULL;
	if (p->blocked)
		p->blocked_reason =
		    arena_printf(p->arena, "%s plan on a %s branch: %s allows at most %s",
				 plan_hazard_name(p->max_hazard),
				 pol->mode == MODE_CHAOS ? "chaos (unprotected)" : "protected",
				 pol->mode == MODE_CHAOS ? "chaos mode" : "this policy",
				 plan_hazard_name(pol->max_hazard));
	for (int w = 0; w < WAVE__COUNT; w++) {
		const struct plan_wave_s *wv = &p->waves[w];

		for (size_t i = 0; i < wv->nsteps; i++) {
			step_obligations(&wv->steps[i], wv, pol);
			/* an inverse runs under the same limits as the step it undoes */
			if (wv->steps[i].inverse)
				step_obligations(wv->steps[i].inverse, wv, pol);
		}
	}
}
