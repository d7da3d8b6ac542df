/*
 * Sealing a sound plan: each step finished (hazard, SQL, checks), read back,
 * hashed and given its inverse; the plan's checksum; on_failure's check.
 */
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"
#include "plan/plan_int.h"
#include "sql/sql.h"
#include "util/alloc.h"
#include "util/canon.h"
#include "util/sha256.h"
#include "util/strbuf.h"

/*
 * A plan that rolls back on failure may undo any completed step in the range
 * of its on_failure: every step of a wave but its last (rollback_wave: once
 * the last step is done the wave is), every step of the plan but its last
 * (rollback_plan). Each irreversible step in that range is an error of its
 * own, at the step, so that the author sees every one at once.
 */
static void
check_on_failure(struct plan_bctx *c, bool *ok)
{
	const struct plan *p = c->p;
	size_t k = 0;

	if (p->on_failure == ON_FAILURE_STOP)
		return;
	for (int w = 0; w < WAVE__COUNT; w++) {
		for (size_t i = 0; i < p->waves[w].nsteps; i++, k++) {
			const struct plan_step *s = &p->waves[w].steps[i];
			bool last = p->on_failure == ON_FAILURE_ROLLBACK_WAVE
					? i + 1 == p->waves[w].nsteps
					: k + 1 == p->nsteps;

			if (last || s->undo != UNDO_IRREVERSIBLE)
				continue;
			diags_add(
			    c->d, DIAG_ERROR, c->file, s->line, s->col,
			    "%s: on_failure: %s (line %u) may have to undo this step, which "
			    "cannot be undone (%s); use on_failure: stop, or move the step to a "
			    "plan of its own",
			    plan_op_name(s->op), plan_on_failure_name(p->on_failure),
			    p->on_failure_line, s->undo_reason ? s->undo_reason : "irreversible");
			*ok = false;
		}
	}
}

/*
 * Seals a sound plan: computes each step's hazard, SQL and obligations, and
 * the ids. Each step's canonical form is made once and reused three times: to
 * refuse duplicate steps (two steps with the same content are almost surely
 * a copy-paste slip), inside its step_sha, and inside the plan checksum. The
 * enclosing objects are written in canonical form directly (keys in sorted
 * order), so the bytes are exactly those canon_json would give for them.
 */
void
plan_seal(struct plan_bctx *c, bool *ok)
{
	struct plan *p = c->p;
	size_t n = p->nsteps, k = 0;
	struct strbuf *canon = xcalloc(n ? n : 1, sizeof(*canon));
	const struct plan_step **steps = xcalloc(n ? n : 1, sizeof(*steps));
	struct strbuf sb = STRBUF_INIT, id = STRBUF_INIT;
	struct sql_msg sm;
	bool first_wave = true;

	for (int w = 0; w < WAVE__COUNT; w++) {
		for (size_t i = 0; i < p->waves[w].nsteps; i++, k++) {
			const struct plan_step *s = &p->waves[w].steps[i];
			cJSON *j = plan_step_fields_json(s);

			canon_json(j, &canon[k]);
			cJSON_Delete(j);
			steps[k] = s;
			for (size_t m = 0; m < k; m++) {
				if (canon[m].len == canon[k].len &&
				    memcmp(canon[m].buf, canon[k].buf, canon[k].len) == 0) {
					diags_add(
					    c->d, DIAG_ERROR, c->file, s->line, s->col,
					    "duplicate step: the same %s as the step at line %u",
					    plan_op_name(s->op), steps[m]->line);
					*ok = false;
					break;
				}
			}
		}
	}
	if (!*ok)
		goto out;

	sb_printf(&sb, "{\"hash_version\":%d,\"id\":", PLAN_HASH_VERSION);
	canon_string(p->id, &sb);
	/* only when written: the checksums of plans without it stay as they were */
	if (p->on_failure_given) {
		sb_puts(&sb, ",\"on_failure\":");
		canon_string(plan_on_failure_name(p->on_failure), &sb);
	}
	sb_puts(&sb, ",\"reason\":");
	canon_string(p->reason, &sb);
	sb_puts(&sb, ",\"title\":");
	canon_string(p->title, &sb);
	sb_puts(&sb, ",\"waves\":[");
	p->max_hazard = H0;
	k = 0;
	for (int w = 0; w < WAVE__COUNT; w++) {
		struct plan_wave_s *wv = &p->waves[w];
		cJSON *lim;

		if (!wv->present)
			continue;
		sb_puts(&sb, first_wave ? "{\"limits\":" : ",{\"limits\":");
		first_wave = false;
		lim = plan_limits_json(&wv->limits);
		canon_json(lim, &sb);
		cJSON_Delete(lim);
		sb_puts(&sb, ",\"name\":");
		canon_string(plan_wave_name((enum plan_wave)w), &sb);
		sb_puts(&sb, ",\"steps\":[");
		wv->max_hazard = H0;
		for (size_t i = 0; i < wv->nsteps; i++, k++) {
			struct plan_step *s = &wv->steps[i];

			plan_step_finish(p, s);
			if (!plan_shape_check(s, &sm)) {
				diags_add(c->d, DIAG_ERROR, c->file, s->line, s->col, "%s: %s",
					  plan_op_name(s->op), sm.text);
				*ok = false;
			}
			/* {"index":N,"plan_id":...,"step":{...},"wave":...} */
			sb_reset(&id);
			sb_printf(&id, "{\"index\":%u,\"plan_id\":", s->index);
			canon_string(p->id, &id);
			sb_puts(&id, ",\"step\":");
			sb_add(&id, canon[k].buf, canon[k].len);
			sb_puts(&id, ",\"wave\":");
			canon_string(plan_wave_name(s->wave), &id);
			sb_putc(&id, '}');
			sha256_hex(id.buf, id.len, s->sha);
			if (*ok && plan_inverse_build(p, s, &sm) < 0) {
				diags_add(c->d, DIAG_ERROR, c->file, s->inverse->line,
					  s->inverse->col, "%s: its inverse: %s",
					  plan_op_name(s->op), sm.text);
				*ok = false;
			}
			if (i)
				sb_putc(&sb, ',');
			sb_add(&sb, canon[k].buf, canon[k].len);
			if (s->hazard > wv->max_hazard)
				wv->max_hazard = s->hazard;
		}
		sb_puts(&sb, "]}");
		if (wv->max_hazard > p->max_hazard)
			p->max_hazard = wv->max_hazard;
	}
	sb_puts(&sb, "]}");
	sha256_hex(sb.buf, sb.len, p->checksum);
	if (*ok)
		check_on_failure(c, ok);
out:
	for (size_t i = 0; i < n; i++)
		sb_free(&canon[i]);
	free(canon);
	free(steps);
	sb_free(&sb);
	sb_free(&id);
}
