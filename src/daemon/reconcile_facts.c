/*
 * The facts a pass gathers for the line's core (src/line/), beside each
 * plan file: plans the database has that the tip lost, a plan's counts
 * and status from the database's view, the record of an invalid file,
 * H3 signatures, and the chaos rate limit (docs/design.md, "A pass").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/reconcile_int.h"
#include "plan/plan_dir.h"
#include "repo/repo.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strbuf.h"

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/*
 * Adds a stand-in for each plan the database has as applied (or in drift)
 * with a checksum, that no file at the tip has, by plan id or by path: a
 * plan removed from the branch. Each goes where its file name sorts, so the
 * plans after it wait as they do behind an edited one. Returns the new
 * array (pis is consumed) and its length in *n.
 */
struct pinfo *
add_missing(struct pinfo *pis, size_t *n, const struct repo_snapshot *snap, const struct dbview *v)
{
	struct plan_idset *paths = NULL;
	size_t nall;
	struct dbplan *const *all = dbview_all(v, &nall);
	bool *here = xcalloc(nall ? nall : 1, sizeof(*here));
	const char *first;

	/* the rows of the plans at the tip, by id; by path only for what is left */
	for (size_t k = 0; k < *n; k++) {
		struct pcache_ent *e = pis[k].ent;
		/* the entry of the cached plan's id: kept in its cache entry while the view's */
		bool keep = e && pis[k].p && pis[k].p == e->p && !pis[k].own_id;

		if (keep && e->dbp && e->view_serial == dbview_serial(v)) {
			pis[k].dbp = e->dbp;
			here[e->dbp_at] = true;
			continue;
		}
		pis[k].dbp = dbview_get(v, pis[k].id);
		if (!pis[k].dbp)
			continue;
		here[pis[k].dbp->at] = true;
		if (keep) {
			e->dbp = pis[k].dbp;
			e->dbp_at = pis[k].dbp->at;
			e->view_serial = dbview_serial(v);
		}
	}
	for (size_t r = 0; r < nall; r++) {
		const char *id = all[r]->id, *st = all[r]->status;
		const char *path = all[r]->file_path;
		struct repo_plan_file *f;
		struct pinfo *pi;
		size_t at;

		/* an accepted removal leaves the row applied with no checksum */
		if (!all[r]->has_row ||
		    (strcmp(st, "applied") != 0 && strcmp(st, "drift") != 0 &&
		     !exec_status_reverted(st)) ||
		    !*all[r]->checksum)
			continue;
		if (here[r])
			continue;
		if (*path && !paths) {
			paths = plan_idset_new();
			for (size_t k = 0; k < *n; k++)
				(void)plan_idset_add(paths, pis[k].f->path, "", &first);
		}
		if (*path && plan_idset_find(paths, path))
			continue;
		f = xcalloc(1, sizeof(*f));
		/* rows written by older versions hold raw text from git: clean it as new text is */
		f->path =
		    *path ? repo_text_clean(path, strlen(path)) : repo_text_clean(id, strlen(id));
		snprintf(f->commit, sizeof(f->commit), "%s", snap->tip);
		for (at = 0; at < *n; at++)
			if (strcmp(base_name(pis[at].f->path), base_name(f->path)) > 0)
				break;
		pis = xrealloc(pis, (*n + 1) * sizeof(*pis));
		memmove(&pis[at + 1], &pis[at], (*n - at) * sizeof(*pis));
		pi = &pis[at];
		memset(pi, 0, sizeof(*pi));
		pi->f = pi->own_f = f;
		pi->id = repo_text_clean(id, strlen(id));
		pi->own_id = true;
		pi->dbp = dbview_get(v, pi->id);
		pi->missing = true;
		pi->status = "drift";
		pi->done = pi->total = db_steps(v, id);
		snprintf(pi->hazard, sizeof(pi->hazard), "%s", all[r]->max_hazard);
		pi_msgf(pi,
			"plan %s (%s) was applied, but no plan file at the tip %.12s has it: "
			"removing an applied plan is drift, as editing one is; restore the file, "
			"or run `taskslapsctl accept-drift %s` to accept its removal (nothing is "
			"undone)",
			id, f->path, snap->tip, id);
		(*n)++;
	}
	plan_idset_free(paths);
	free(here);
	return pis;
}

/* A removed plan, the first time it is seen: the database says drift, with an event. */
void
record_missing(struct worker *w, const struct pinfo *pi, const struct dbview *v)
{
	const char *st = db_status(v, pi->id);
	const char *params[3] = { w->cfg->target, pi->id, st };
	struct db_error err;
	PGresult *r;
	int changed;

	/* applied, or undone by a revert plan: both are history the tip must keep */
	if (!st || (strcmp(st, "applied") != 0 && !exec_status_reverted(st)))
		return;
	if (exec_status_reverted(st)) {
		/*
		 * The row keeps "reverted": written over, the fact would be lost, and
		 * the file restored would read as a drifted plan with its checksum,
		 * which runs again (its undone steps are out of the ledger). The
		 * tip shows drift and the line waits until the file is back.
		 */
		const char *last = db_last_event(v, pi->id);

		if (!last || strcmp(last, "plan.drift") != 0)
			exec_event(w->ex, "plan.drift", pi->id, NULL, NULL, NULL, "%s", pi_msg(pi));
		return;
	}
	if (db_exec(
		exec_db(w->ex), &r, &err,
		"UPDATE taskslaps.plans SET status = 'drift', updated_at = now() WHERE target = "
		"$1 AND plan_id = $2 AND status = $3 RETURNING 1",
		3, params) < 0)
		return; /* said again on the next pass, which tries again */
	changed = PQntuples(r);
	PQclear(r);
	if (changed)
		exec_event(w->ex, "plan.drift", pi->id, NULL, NULL, NULL, "%s", pi_msg(pi));
}

/*
 * pi's cache entry when it may keep what the pass read of pi's plan in the
 * view (the entry's plan is pi's, and the view has an entry of its id), or
 * NULL; *gen is that entry's gen now.
 */
struct pcache_ent *
pi_memo(const struct pinfo *pi, const struct dbview *v, unsigned long long *gen)
{
	struct pcache_ent *e = pi->ent;

	if (!e || !pi->p || e->p != pi->p || !pi->dbp)
		return NULL;
	if (e->db != pi->dbp) {
		e->db = pi->dbp;
		e->fill_gen = e->line_gen = 0;
	}
	*gen = dbview_gen_at(v, e->db_at);
	return e;
}

/*
 * Counts a plan's steps in the ledger, per wave, and its recorded status.
 * What it reads of the view is kept in the plan's cache entry while the
 * view's entry of the plan stays as it was (its gen): when every step is in
 * that plan's own ledger rows, only a read of the plan again (or a step id
 * of its taken by another plan's rows) can change the count.
 */
void
fill_from_db(struct pinfo *pi, const struct dbview *v)
{
	unsigned long long gen = 0;
	struct pcache_ent *e = pi->p ? pi_memo(pi, v, &gen) : NULL;
	const struct dbplan *row;
	bool own;

	if (!pi->p)
		return;
	if (e && e->fill_gen && e->fill_gen == gen) {
		/* all of it from the cache entry: not even the plan is visited */
		memcpy(pi->wtotal, e->wtotal, sizeof(pi->wtotal));
		pi->total = e->total;
		memcpy(pi->wdone, e->wdone, sizeof(pi->wdone));
		pi->done = e->done;
		pi->out_of_order = e->ooo;
		if (e->has_row)
			memcpy(pi->applied_at, e->applied_at, sizeof(pi->applied_at));
		if (e->reverted && pi->status && !strcmp(pi->status, "applied")) {
			pi->status = e->reverted;
			pi_msgf(pi, "%s", db_message(v, pi->id));
		}
		return;
	}
	for (int w = 0; w < WAVE__COUNT; w++)
		pi->wtotal[w] = pi->p->waves[w].nsteps;
	pi->total = pi->p->nsteps;
	row = pi->dbp;
	own = row != NULL;
	pi->done = 0;
	for (int w = 0; w < WAVE__COUNT; w++) {
		pi->wdone[w] = 0;
		for (size_t i = 0; i < pi->p->waves[w].nsteps; i++) {
			const struct dbplan *o =
			    dbview_ledger_owner(v, pi->p->waves[w].steps[i].sha);

			if (o)
				pi->wdone[w]++;
			own = own && o == row;
		}
		pi->done += pi->wdone[w];
	}
	pi->out_of_order = row && row->ooo;
	if (row && !row->has_row)
		row = NULL;
	if (row) {
		size_t len = strlen(row->completed_at);

		/* as snprintf into it would */
		if (len >= sizeof(pi->applied_at))
			len = sizeof(pi->applied_at) - 1;
		memcpy(pi->applied_at, row->completed_at, len);
		pi->applied_at[len] = '\0';
	}
	if (e) {
		e->fill_gen = 0;
		e->reverted = NULL;
		if (own) {
			/* kept: the row's gen and index, as read now */
			e->db_at = pi->dbp->at;
			e->fill_gen = pi->dbp->gen;
			if (e->line_gen && e->line_gen != e->fill_gen)
				e->line_gen = 0;
			memcpy(e->wdone, pi->wdone, sizeof(e->wdone));
			e->done = pi->done;
			memcpy(e->wtotal, pi->wtotal, sizeof(e->wtotal));
			e->total = pi->total;
			e->ooo = pi->out_of_order;
			e->has_row = row != NULL;
			memset(e->applied_at, 0, sizeof(e->applied_at));
			if (row)
				memcpy(e->applied_at, pi->applied_at, sizeof(e->applied_at));
		}
	}
	/* reverted in this pass by a revert plan after it in the line: say so now */
	if (row && exec_status_reverted(row->status) && !strcmp(row->checksum, pi->p->checksum)) {
		enum line_status st;

		if (line_status_parse(row->status, &st) == 0) {
			if (e && own)
				e->reverted = line_status_name(st);
			if (pi->status && !strcmp(pi->status, "applied")) {
				pi->status = line_status_name(st);
				pi_msgf(pi, "%s", db_message(v, pi->id));
			}
		}
	}
}

/*
 * Records an invalid plan file (once: again only when the errors change).
 * A file that does not parse is a fact about the file at the tip, not about
 * the plan: it is recorded over the plan's row only while nothing of the
 * plan ever ran (pending, invalid, blocked, rate_limited). An applied,
 * failed, aborted, drifted or running plan keeps its status — else a broken
 * intermediate commit would wipe it, and the next valid version would run as
 * a new plan (an extra step on an applied plan, drift cleared, an abort
 * undone; docs/contract.md §4). The verdict is still an event and a note.
 */
void
record_invalid(struct worker *w, struct pinfo *pi, const struct dbview *v, bool keep_row)
{
	const char *params[5] = { w->cfg->target, pi->id, pi->f->path, pi->f->commit,
				  pi->f->author_email };
	const char *last = db_last_event(v, pi->id);
	struct db_error err;

	const struct dbplan *row = db_row(v, pi->id);

	/* said already, and by this commit (reason_moved) */
	if (last && !strcmp(last, "plan.invalid") && !strcmp(db_message(v, pi->id), pi->diag) &&
	    (keep_row || !row || strcmp(row->status, "invalid") != 0 ||
	     !strcmp(row->commit_sha, pi->f->commit)))
		return;
	/*
	 * the row is not the file's to write: a valid plan at the tip has this id
	 * (the row is that plan's), or the plan ran (line_transition_ok keeps it)
	 */
	if (keep_row)
		goto event;
	/* "nothing ran" is the ledger's word: a pending plan may have run steps (interrupted) */
	(void)db_exec(
	    exec_db(w->ex), NULL, &err,
	    "INSERT INTO taskslaps.plans AS p (target, plan_id, checksum, file_path, "
	    "commit_sha, author, status) VALUES ($1, $2, NULL, $3, $4, $5, 'invalid') ON "
	    "CONFLICT (target, plan_id) DO UPDATE SET status = 'invalid', file_path = $3, "
	    "commit_sha = $4, author = $5, updated_at = now() WHERE p.status IN "
	    "('pending', 'invalid', 'blocked', 'rate_limited') AND NOT EXISTS (SELECT 1 FROM "
	    "taskslaps.step_ledger l WHERE l.target = p.target AND l.plan_id = p.plan_id)",
	    5, params);
event:
	exec_event(w->ex, "plan.invalid", pi->id, NULL, NULL, NULL, "%s", pi->diag);
}

/* Blocks pi's plan: H3 under require_signed_h3 without the signatures it needs. */
static void
block_unsigned(struct pinfo *pi, const char *which, const char *commit, const char *why)
{
	pi->p->blocked = true;
	pi->p->blocked_reason = arena_printf(
	    pi->p->arena,
	    "H3 plan needs the commit that wrote it and the commit that brought it onto the "
	    "branch signed by keys in allowed_signers; %s %.12s: %s",
	    which, commit, why[0] ? why : "not verified");
}

/*
 * H3 with require_signed_h3: authorship and approval. The commit that wrote
 * the plan's content must be signed by an allowed key, and so must the
 * first-parent commit that brought it onto the followed branch (the merge,
 * for a plan from a side branch): a signed commit on a rejected branch is
 * not approved by whoever merges it unsigned. Anything that cannot be
 * checked blocks.
 */
void
check_signature(struct worker *w, struct pinfo *pi)
{
	char why[512] = "", landed[41];

	if (!w->cfg->require_signed_h3 || pi->p->blocked || pi->p->max_hazard < H3)
		return;
	if (repo_verify_commit(w->repo, pi->f->commit, w->cfg->allowed_signers, why, sizeof(why)) !=
	    1) {
		block_unsigned(pi, "commit", pi->f->commit, why);
		return;
	}
	if (repo_landed_commit(w->repo, w->snap->tip, pi->f, landed, sizeof(landed), why,
			       sizeof(why)) < 0) {
		block_unsigned(pi, "the commit that brought", pi->f->commit, why);
		return;
	}
	if (strcmp(landed, pi->f->commit) != 0 &&
	    repo_verify_commit(w->repo, landed, w->cfg->allowed_signers, why, sizeof(why)) != 1)
		block_unsigned(pi, "commit", landed, why);
}

const char *
db_checksum(const struct dbview *v, const char *plan_id)
{
	const struct dbplan *p = db_row(v, plan_id);

	return p ? p->checksum : "";
}

/*
 * Who a commit counts as for the chaos rate limit: its signing key when it
 * carries an SSH signature that holds ("key SHA256:..."), else its author's
 * e-mail (email, as recorded). Keys are looked up once per commit. Returns
 * 0 and *out (caller frees), or -1 with why.
 */
static int
rate_identity(struct worker *w, const char *commit, const char *email, char **out, char *why,
	      size_t whylen)
{
	const char *known = w->signers && *commit ? plan_idset_find(w->signers, commit) : NULL;
	char fp[128];
	int rc;

	if (!known && *commit) {
		/* a commit gone from the repository (force-pushed away) counts by e-mail */
		rc = repo_commit_signer(w->repo, commit, fp, sizeof(fp), why, whylen);
		if (rc < 0)
			return -1;
		if (!w->signers)
			w->signers = plan_idset_new();
		known = rc == 1 ? fp : "";
		(void)plan_idset_add(w->signers, commit, known, &known);
	}
	*out = known && *known ? xasprintf("key %s", known) : xstrdup(email);
	return 0;
}

/*
 * Chaos mode: at most N plans per signing key (signed commits) or author
 * e-mail (the others) that ran in the last 24 h: a wave of it started then
 * (a plan counts when it ran, not when it was first seen: one that waited is
 * not free; an operator's resume or accept-drift, which also write
 * plan.start, spend nothing of the author's budget). Returns 1 when over (who says
 * whose), 0 when not (or not in chaos mode), -1 when it could not be told (why says why): the
 * caller blocks the plan then, a check that fails must not let the plan through.
 */
int
rate_limited(struct worker *w, struct pinfo *pi, char **who, char *why, size_t whylen)
{
	const char *params[2] = { w->cfg->target, pi->id };
	struct db_error err;
	PGresult *r;
	char *mine = NULL;
	long n = 0;
	int rc = -1;

	if (pi->p->mode != MODE_CHAOS)
		return 0;
	if (rate_identity(w, pi->f->commit, pi->f->author_email, &mine, why, whylen) < 0)
		return -1;
	if (db_exec(exec_db(w->ex), &r, &err,
		    "SELECT coalesce(p.commit_sha, ''), coalesce(p.author, '') FROM "
		    "taskslaps.plans p WHERE p.target = $1 AND p.plan_id <> $2 AND EXISTS "
		    "(SELECT 1 FROM taskslaps.events e WHERE e.target = p.target AND e.plan_id = "
		    "p.plan_id AND e.type = 'wave.start' AND e.at > now() - interval '24 hours')",
		    2, params) < 0) {
		snprintf(why, whylen, "%.500s", err.message);
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		char *theirs;

		if (rate_identity(w, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), &theirs, why,
				  whylen) < 0) {
			PQclear(r);
			goto out;
		}
		n += !strcmp(theirs, mine);
		free(theirs);
	}
	PQclear(r);
	rc = n >= w->cfg->chaos_max_plans_per_author_per_day;
	if (rc)
		*who = mine, mine = NULL;
out:
	free(mine);
	return rc;
}
