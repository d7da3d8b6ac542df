/*
 * Revert plans: a plan file with `revert: <plan_id>` (and optionally
 * `to_wave: <wave>`) is planned as the inverses of the reverted plan's steps
 * after that wave, last first. It is resolved at the level of the
 * directory, since it needs the reverted plan: plan_revert_from_dir for a
 * directory on disk (plan_load does it), plan_revert_resolve for a caller
 * that has the plans already (the daemon's snapshot).
 *
 * The revert plan's steps are copies of the reverted plan's inverses, all
 * in its one wave (contract: it removes what the reverted plan built), at
 * the positions 0.. in the order they run. Each gets a step_sha of its own,
 * the SHA-256 of the canonical {"inverse":<the inverse's step_sha>,
 * "revert":<the revert plan's id>}, so its ledger row is never the one an
 * on_failure rollback of the reverted plan would write; inverse_of still
 * names the forward step, whose ledger row the executor removes with it.
 * A step with nothing to undo (validate_constraint, a backfill without
 * revert_sql) is no step of the revert: it is listed in revert_kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"
#include "plan/plan_dir.h"
#include "plan/plan_int.h"
#include "util/alloc.h"
#include "util/canon.h"
#include "util/sha256.h"
#include "util/strbuf.h"

const char *
plan_revert_status(const struct plan *rev)
{
	static const char *const to[] = { "reverted to expand", "reverted to backfill",
					  "reverted to validate", "reverted to contract" };

	if (rev->to_wave < 0 || rev->to_wave >= WAVE__COUNT)
		return "reverted";
	return to[rev->to_wave];
}

/* The steps of target in the range a revert undoes, counted. */
static size_t
range_steps(const struct plan *target, int to_wave)
{
	size_t n = 0;

	for (int w = to_wave + 1; w < WAVE__COUNT; w++)
		n += target->waves[w].nsteps;
	return n;
}

/* Each limit l does not set is taken from wave (which may not set it either). */
static void
inherit(struct plan_limits *l, const struct plan_limits *wave)
{
	if (l->max_lock_ms < 0)
		l->max_lock_ms = wave->max_lock_ms;
	if (l->max_stmt_ms < 0)
		l->max_stmt_ms = wave->max_stmt_ms;
	if (l->rows_per_second < 0)
		l->rows_per_second = wave->rows_per_second;
	if (l->batch_size < 0)
		l->batch_size = wave->batch_size;
}

int
plan_revert_resolve(struct plan *rev, struct plan *target, struct diags *d)
{
	struct plan_wave_s *wv = &rev->waves[WAVE_CONTRACT];
	size_t before = d->nerrors, n = 0, k = 0, nkept = 0;
	struct strbuf sb = STRBUF_INIT;

	if (target->revert_of) {
		diags_add(d, DIAG_ERROR, rev->path, rev->revert_line, rev->revert_col,
			  "revert: %s (%s) is itself a revert plan (of %s): a revert is not "
			  "reverted; write a new plan that does what is needed",
			  target->id, target->path, target->revert_of);
		goto out;
	}
	if (range_steps(target, rev->to_wave) == 0) {
		if (rev->to_wave >= 0)
			diags_add(d, DIAG_ERROR, rev->path, rev->to_wave_line, rev->to_wave_col,
				  "to_wave: nothing to undo after wave %s: plan %s has no step "
				  "after it",
				  plan_wave_name((enum plan_wave)rev->to_wave), target->id);
		else
			diags_add(d, DIAG_ERROR, rev->path, rev->revert_line, rev->revert_col,
				  "revert: plan %s has no step to undo", target->id);
		goto out;
	}
	/* every irreversible step of the range, each by name, before anything is built */
	for (int w = rev->to_wave + 1; w < WAVE__COUNT; w++) {
		for (size_t i = 0; i < target->waves[w].nsteps; i++) {
			const struct plan_step *s = &target->waves[w].steps[i];

			if (s->undo == UNDO_INVERSE)
				n++;
			else if (s->undo == UNDO_NOTHING)
				nkept++;
			else
				diags_add(
				    d, DIAG_ERROR, rev->path, rev->revert_line, rev->revert_col,
				    "revert: %s at %s:%u:%u (%s wave, step %.16s) cannot be "
				    "undone (%s); revert to a wave after it (to_wave), or write a "
				    "new plan",
				    plan_op_name(s->op), target->path, s->line, s->col,
				    plan_wave_name(s->wave), s->sha,
				    s->undo_reason ? s->undo_reason : "irreversible");
		}
	}
	if (d->nerrors != before)
		goto out;
	wv->steps = arena_alloc(rev->arena, (n ? n : 1) * sizeof(*wv->steps));
	rev->revert_kept.v = arena_alloc(rev->arena, (nkept ? nkept : 1) * sizeof(char *));
	for (int w = WAVE__COUNT - 1; w > rev->to_wave; w--) {
		for (size_t i = target->waves[w].nsteps; i-- > 0;) {
			const struct plan_step *s = &target->waves[w].steps[i];
			struct plan_step *dst;

			if (s->undo == UNDO_NOTHING) {
				rev->revert_kept.v[rev->revert_kept.n++] = arena_printf(
				    rev->arena, "%s (line %u, %s wave): %s", plan_op_name(s->op),
				    s->line, plan_wave_name(s->wave),
				    s->undo_reason ? s->undo_reason : "nothing to undo");
				continue;
			}
			dst = &wv->steps[k];
			*dst = *s->inverse;
			/* it runs under the limits of the step it undoes, its wave's included */
			inherit(&dst->limits, &target->waves[w].limits);
			dst->wave = WAVE_CONTRACT;
			dst->index = (unsigned)k;
			dst->undoes = s;
			dst->inverse = NULL;
			sb_reset(&sb);
			sb_puts(&sb, "{\"inverse\":");
			canon_string(s->inverse->sha, &sb);
			sb_puts(&sb, ",\"revert\":");
			canon_string(rev->id, &sb);
			sb_putc(&sb, '}');
			sha256_hex(sb.buf, sb.len, dst->sha);
			k++;
		}
	}
	wv->nsteps = k;
	wv->present = true;
	wv->max_hazard = H3;
	rev->nsteps = k;
	rev->max_hazard = H3;
	rev->reverted = target;
	target = NULL;
out:
	sb_free(&sb);
	plan_free(target);
	return d->nerrors != before ? -1 : 0;
}

/* The directory part of path ("." when there is none); caller frees. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

static const char *
base_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

int
plan_revert_from_dir(struct plan *rev, struct diags *d)
{
	char *dir = dir_of(rev->path);
	struct plan_dir pd = { 0 };
	struct plan *target = NULL;
	const char *self = base_of(rev->path), *after = NULL, *other = NULL;
	int rc = -1;

	if (plan_dir_list(&pd, dir, d) < 0)
		goto out;
	for (size_t i = 0; i < pd.n; i++) {
		const char *name = base_of(pd.paths[i]);
		bool earlier = strcmp(name, self) < 0;
		struct diags scratch = DIAGS_INIT;
		struct plan *p = NULL;

		if (!strcmp(name, self))
			continue;
		/* another file's errors are that file's: lint and apply say them there */
		if (plan_load_one(&p, pd.paths[i], &scratch) == 0) {
			if (!strcmp(p->id, rev->revert_of)) {
				if (earlier && !target) {
					target = p;
					p = NULL;
				} else if (!earlier && !after) {
					after = base_of(pd.paths[i]);
				}
			} else if (earlier && p->revert_of &&
				   !strcmp(p->revert_of, rev->revert_of) && !other) {
				other = base_of(pd.paths[i]);
			}
		}
		plan_free(p);
		diags_clear(&scratch);
	}
	if (!target) {
		if (after)
			diags_add(d, DIAG_ERROR, rev->path, rev->revert_line, rev->revert_col,
				  "revert: plan %s is in %s, which comes after this file: a revert "
				  "comes after the plan it reverts in the line order",
				  rev->revert_of, after);
		else
			diags_add(
			    d, DIAG_ERROR, rev->path, rev->revert_line, rev->revert_col,
			    "revert: no plan with id '%s' in %s before this file (the reverted "
			    "plan stays in the directory, unchanged)",
			    rev->revert_of, dir);
		goto out;
	}
	if (other) {
		diags_add(d, DIAG_ERROR, rev->path, rev->revert_line, rev->revert_col,
			  "revert: plan %s is reverted already by %s: a plan is reverted once",
			  rev->revert_of, other);
		plan_free(target);
		goto out;
	}
	rc = plan_revert_resolve(rev, target, d);
out:
	plan_dir_free(&pd);
	free(dir);
	return rc;
}
