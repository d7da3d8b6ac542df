/*
 * What a pass says: the git notes on each plan's commit, written only when
 * a note changes, and the status document's "plans", each item rebuilt
 * only when what it says changes (docs/design.md, "A pass").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/fphash.h"
#include "daemon/reconcile_int.h"
#include "plan/plan_dir.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strbuf.h"

/* "taskslaps prod: applied 0001-x H2 2/2 steps" */
static void
note_line(struct strbuf *sb, const char *target, const struct pinfo *pi)
{
	sb_printf(sb, "%s %s %s %zu/%zu steps%s", pi->status, pi->id,
		  pi->p		  ? plan_hazard_name(pi->p->max_hazard)
		  : pi->hazard[0] ? pi->hazard
				  : "H?",
		  pi->done, pi->total, pi->out_of_order ? " (out of order)" : "");
	(void)target;
}

static void
note_trailers(struct strbuf *sb, const struct pinfo *pi)
{
	static const char *const wname[] = { "Expand", "Backfill", "Validate", "Contract" };

	sb_printf(sb, "Plan: %s\nStatus: %s\nFile: %s\n", pi->id, pi->status, pi->f->path);
	if (pi->p) {
		sb_printf(sb, "Hazard: %s\nSteps: %zu/%zu\nChecksum: %s\n",
			  plan_hazard_name(pi->p->max_hazard), pi->done, pi->total,
			  pi->p->checksum);
		for (int w = 0; w < WAVE__COUNT; w++)
			if (pi->p->waves[w].present)
				sb_printf(sb, "Wave-%s: %zu/%zu %s\n", wname[w], pi->wdone[w],
					  pi->wtotal[w],
					  pi->wdone[w] == pi->wtotal[w] ? "ok" : "pending");
	}
	if (pi->applied_at[0] && !strcmp(pi->status, "applied"))
		sb_printf(sb, "Applied-At: %s\n", pi->applied_at);
	if (pi->out_of_order)
		sb_puts(sb,
			"Warning: out of order: sorts before a plan that was applied earlier\n");
	if (pi->sqlstate[0])
		sb_printf(sb, "SQLSTATE: %s\n", pi->sqlstate);
	if (pi->message && strcmp(pi->status, "applied") != 0) {
		/* a trailer is one line */
		sb_puts(sb, "Message: ");
		for (const char *c = pi->message; *c; c++)
			sb_putc(sb, *c == '\n' ? ' ' : *c);
		sb_putc(sb, '\n');
	}
}

/* What of pi stays while its plan cache entry does: its id, its file's path, its plan's. */
static uint64_t
fixed_fp_of(const struct pinfo *pi)
{
	uint64_t h = FP_SEED;

	h = fp_str(h, pi->id);
	h = fp_str(h, pi->f->path);
	h = fp_str(h, pi->p ? pi->p->checksum : NULL);
	return fp_str(h, pi->p ? plan_hazard_name(pi->p->max_hazard) : NULL);
}

/*
 * fixed_fp_of, kept in the cache entry when pi's plan and id are the
 * entry's (a cache hit is the same blob at the same path: the same plan);
 * made anew otherwise (an invalid file, a revert plan, a duplicate id).
 */
static uint64_t
pi_fixed_fp(const struct pinfo *pi)
{
	struct pcache_ent *e = pi->ent;

	if (!e || !pi->p || pi->p != e->p || pi->own_id)
		return fixed_fp_of(pi);
	if (!e->fixed_fp)
		e->fixed_fp = fixed_fp_of(pi) | 1;
	return e->fixed_fp;
}

/*
 * A char array hashed whole: what follows its text is stable for a pinfo
 * (zeroed, or copied whole), and differing bytes there only rebuild.
 */
#define FP_ARRAY(h, a) fp_bytes((h), (a), sizeof(a))

/* Everything of pi that its note says (note_line, note_trailers). */
static uint64_t
note_fingerprint(const struct pinfo *pi)
{
	uint64_t h = FP_SEED, fixed = pi_fixed_fp(pi);

	h = fp_bytes(h, &fixed, sizeof(fixed));
	h = fp_str(h, pi->status);
	h = FP_ARRAY(h, pi->f->commit);
	h = FP_ARRAY(h, pi->hazard);
	h = fp_bytes(h, &pi->done, sizeof(pi->done));
	h = fp_bytes(h, &pi->total, sizeof(pi->total));
	h = fp_bytes(h, pi->wdone, sizeof(pi->wdone));
	h = fp_bytes(h, pi->wtotal, sizeof(pi->wtotal));
	h = fp_bytes(h, &pi->out_of_order, sizeof(pi->out_of_order));
	h = FP_ARRAY(h, pi->applied_at);
	h = FP_ARRAY(h, pi->sqlstate);
	return fp_str(h, pi->message);
}

/*
 * The plans by the commit that last changed their file: nxt[i] is the next
 * plan after i with i's commit (NONE at the last), and head[i] whether i is
 * the first of its commit. A hash of the commits, not a sort: one string
 * comparison per plan. Caller frees both.
 */
#define NONE ((size_t)-1)
static void
group_by_commit(const struct pinfo *pis, size_t n, size_t **nxt_out, bool **head_out)
{
	size_t cap = 16, *slot, *last = xcalloc(n ? n : 1, sizeof(*last));
	size_t *nxt = xcalloc(n ? n : 1, sizeof(*nxt));
	bool *head = xcalloc(n ? n : 1, sizeof(*head));

	while (cap < 2 * n)
		cap *= 2;
	slot = xcalloc(cap, sizeof(*slot));
	for (size_t k = 0; k < cap; k++)
		slot[k] = NONE;
	for (size_t i = 0; i < n; i++) {
		const char *c = pis[i].f->commit;
		size_t h = (size_t)fp_str(FP_SEED, c) & (cap - 1);

		while (slot[h] != NONE && strcmp(pis[slot[h]].f->commit, c) != 0)
			h = (h + 1) & (cap - 1);
		nxt[i] = NONE;
		if (slot[h] == NONE) {
			slot[h] = i;
			head[i] = true;
			last[i] = i;
		} else {
			nxt[last[slot[h]]] = i;
			last[slot[h]] = i;
		}
	}
	free(slot);
	free(last);
	*nxt_out = nxt;
	*head_out = head;
}

/*
 * The notes to write (into notes, texts, fps, firsts; returns how many):
 * one per commit whose note would say something else than the one this
 * daemon last wrote there, or every one with all.
 */
static size_t
build_notes(const struct worker *w, const struct pinfo *pis, size_t n, const size_t *nxt,
	    const bool *head, bool all, struct repo_note *notes, char **texts, uint64_t *fps,
	    size_t *firsts)
{
	size_t nn = 0;

	for (size_t g = 0; g < n; g++) {
		uint64_t fp = fp_str(fp_str(FP_SEED, w->cfg->target), w->cfg->notes_ref);
		bool same = true;

		if (!head[g])
			continue;
		for (size_t k = g; k != NONE; k = nxt[k]) {
			uint64_t one = note_fingerprint(&pis[k]);
			fp = fp_bytes(fp, &one, sizeof(one));
		}
		fp |= 1; /* never 0, which is "none written" */
		for (size_t k = g; k != NONE && same; k = nxt[k])
			same = !all && pis[k].ent && pis[k].ent->note_fp == fp;
		if (!same) {
			struct strbuf sb = STRBUF_INIT;

			sb_printf(&sb, "taskslaps %s: ", w->cfg->target);
			for (size_t k = g; k != NONE; k = nxt[k]) {
				if (k != g)
					sb_puts(&sb, "; ");
				note_line(&sb, w->cfg->target, &pis[k]);
			}
			sb_puts(&sb, "\n\n");
			sb_printf(&sb, "Target: %s\n", w->cfg->target);
			for (size_t k = g; k != NONE; k = nxt[k])
				note_trailers(&sb, &pis[k]);
			texts[nn] = sb_detach(&sb);
			notes[nn].commit = pis[g].f->commit;
			notes[nn].text = texts[nn];
			fps[nn] = fp;
			firsts[nn] = g;
			nn++;
		}
	}
	return nn;
}

/*
 * One note per commit, summing up every plan whose file that commit last
 * changed; written only for the commits whose note would say something else
 * than the one this daemon last wrote there (the fingerprint of its plans,
 * kept in their plan cache entries): a pass costs what changed, not the
 * number of plans.
 */
void
write_notes(struct daemon *d, struct worker *w, struct pinfo *pis, size_t n)
{
	struct repo_note *notes = xcalloc(n ? n : 1, sizeof(*notes));
	char **texts = xcalloc(n ? n : 1, sizeof(char *));
	uint64_t *fps = xcalloc(n ? n : 1, sizeof(*fps));
	size_t nn, *firsts = xcalloc(n ? n : 1, sizeof(*firsts)), *nxt;
	bool *head, all, push = w->cfg->push_notes && repo_is_remote(w->repo);
	char err[512], id[41], written[41] = "";
	int rc;

	/*
	 * Our notes ref as we left it: only the changed notes are written.
	 * Moved by another hand (a push to it, a repair to make): all are.
	 * Notes pushed to a remote: all are, every pass, as the remote's ref
	 * is not seen here without fetching it, and the sync that pushes them
	 * fetches it and puts back a note lost or damaged there.
	 */
	all = !w->notes_id[0] || repo_notes_id(w->repo, w->cfg->notes_ref, id) < 0 ||
	      strcmp(id, w->notes_id) != 0 || push;
	group_by_commit(pis, n, &nxt, &head);
	nn = build_notes(w, pis, n, nxt, head, all, notes, texts, fps, firsts);
	if (!nn)
		rc = 0;
	else if (push)
		rc = repo_notes_sync(w->repo, w->cfg->notes_ref, notes, nn, true, err, sizeof(err));
	else
		rc = repo_notes_sync_at(w->repo, w->cfg->notes_ref, notes, nn,
					all ? NULL : w->notes_id, written, err, sizeof(err));
	if (rc == REPO_NOTES_MOVED) {
		/*
		 * Moved by another hand between the check above and the write
		 * (which did not happen): every note, on what is there now.
		 */
		for (size_t i = 0; i < nn; i++)
			free(texts[i]);
		nn = build_notes(w, pis, n, nxt, head, true, notes, texts, fps, firsts);
		rc = repo_notes_sync_at(w->repo, w->cfg->notes_ref, notes, nn, NULL, written, err,
					sizeof(err));
	}
	if (rc > 0) {
		/* somebody pointed our notes ref at something else: said once, when repaired */
		exec_event(w->ex, "notes.repaired", NULL, NULL, NULL, NULL, "%s", err);
	} else if (rc < 0) {
		size_t used = strlen(w->last_error);

		log_warnx("[%s] writing git notes: %s", w->cfg->target, err);
		/* after a failed fetch, that one comes first: it is the cause */
		snprintf(w->last_error + used, sizeof(w->last_error) - used,
			 "%swriting git notes: %s", used ? "; " : "", err);
	}
	/*
	 * Nothing written: the ref is where the check above found it, ours.
	 * Written here: the id the write left (not read again, which could be
	 * another writer's of the moment after). Pushed: read again.
	 */
	if (rc < 0 || (nn && push && repo_notes_id(w->repo, w->cfg->notes_ref, w->notes_id) < 0))
		w->notes_id[0] = '\0';
	else if (nn && !push)
		snprintf(w->notes_id, sizeof(w->notes_id), "%s", written);
	/* written: remembered; not written: written again on the next pass */
	for (size_t m = 0; m < nn; m++)
		for (size_t k = firsts[m]; k != NONE; k = nxt[k])
			if (pis[k].ent)
				pis[k].ent->note_fp = rc >= 0 ? fps[m] : 0;
	for (size_t i = 0; i < nn; i++)
		free(texts[i]);
	free(texts);
	free(notes);
	free(fps);
	free(firsts);
	free(nxt);
	free(head);
	(void)d;
}

/* One plan of the status document's "plans", with STATUS as its status. */
static cJSON *
plan_json(const struct pinfo *pi, const char *status)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "plan_id", pi->id);
	cJSON_AddStringToObject(o, "file", pi->f->path);
	cJSON_AddStringToObject(o, "status", status);
	if (pi->p)
		cJSON_AddStringToObject(o, "max_hazard", plan_hazard_name(pi->p->max_hazard));
	cJSON_AddNumberToObject(o, "steps_done", (double)pi->done);
	cJSON_AddNumberToObject(o, "steps_total", (double)pi->total);
	cJSON_AddStringToObject(o, "commit", pi->f->commit);
	if (pi->f->author_email)
		cJSON_AddStringToObject(o, "author", pi->f->author_email);
	if (pi->message)
		cJSON_AddStringToObject(o, "message", pi->message);
	return o;
}

/*
 * Everything of pi that plan_json says, with status. The author is the
 * commit's: a commit id says it (a removed plan's stand-in, which has none,
 * keeps no item).
 */
static uint64_t
item_fingerprint(const struct pinfo *pi, const char *status)
{
	uint64_t h = FP_SEED, fixed = pi_fixed_fp(pi);

	h = fp_bytes(h, &fixed, sizeof(fixed));
	h = fp_str(h, status);
	h = fp_bytes(h, &pi->done, sizeof(pi->done));
	h = fp_bytes(h, &pi->total, sizeof(pi->total));
	h = FP_ARRAY(h, pi->f->commit);
	return fp_str(h, pi->message);
}

/*
 * Replaces the status document's "plans" (mu held) with pis, each with
 * sts[i] as its status. A plan whose item says what it said in the last
 * array the worker published keeps that item (moved, not copied): a pass
 * builds the items of what changed, not of every plan.
 */
static void
set_plans_locked(struct daemon *d, struct worker *w, struct pinfo *pis, size_t n,
		 const char *const *sts)
{
	cJSON *old = cJSON_GetObjectItem(d->status, "plans"), *arr = cJSON_CreateArray();
	bool reuse = old && old == w->plans_doc;
	bool same = reuse && n == w->nplans_items;

	if (!same || !w->plans_items)
		w->plans_items = xrealloc(w->plans_items, (n ? n : 1) * sizeof(*w->plans_items));
	for (size_t i = 0; i < n; i++) {
		struct pcache_ent *e = pis[i].ent;
		uint64_t fp = item_fingerprint(&pis[i], sts[i]);
		cJSON *it = NULL;

		if (reuse && e && e->item && e->item_fp == fp)
			it = cJSON_DetachItemViaPointer(old, e->item);
		if (!it)
			it = plan_json(&pis[i], sts[i]);
		cJSON_AddItemToArray(arr, it);
		if (e) {
			e->item = it;
			e->item_fp = fp;
		}
		same = same && w->plans_items[i] == it;
		w->plans_items[i] = it;
	}
	w->nplans_items = n;
	cJSON_ReplaceItemInObject(d->status, "plans", arr);
	w->plans_doc = arr;
	/* the same items in the same order: the index by plan id still holds */
	if (!same)
		d->plans_gen++;
}

/*
 * Before plan RUNNING of the pass starts work: every plan at the tip is
 * listed (those before it as this pass found them, it as running, those
 * after it as the database had them when the pass began, or pending), and
 * sync is "applying", not the last pass's word, which may be about another
 * tip, or none at all on the first pass.
 */
void
publish_progress(struct daemon *d, struct worker *w, struct pinfo *pis, size_t n, size_t running,
		 const struct dbview *v)
{
	const char **sts = xcalloc(n ? n : 1, sizeof(*sts));
	char result[300];

	for (size_t i = 0; i < n; i++) {
		const char *st = pis[i].status;

		fill_from_db(&pis[i], v);
		if (i == running)
			st = "running";
		else if (i > running && !st)
			st = pi_row(&pis[i]) ? pi_row(&pis[i])->status : "pending";
		sts[i] = st ? st : "pending";
	}
	snprintf(result, sizeof(result), "applying %s (plan %zu of %zu at the tip)",
		 pis[running].id, running + 1, n);
	pthread_mutex_lock(&d->mu);
	set_plans_locked(d, w, pis, n, sts);
	st_set_str(d, "sync", line_sync_name(LINE_APPLYING));
	st_set_str(d, "last_result", result);
	pthread_mutex_unlock(&d->mu);
	free(sts);
}

/*
 * After a walk that ran plans, before the notes: every plan's item as the
 * database now has it, so that a plan that is applied is listed so while
 * the notes are written (they are a projection of the same rows, and
 * writing them takes git objects and a ref). The pass is still at work:
 * sync stays "applying" until publish.
 */
void
publish_ran(struct daemon *d, struct worker *w, struct pinfo *pis, size_t n)
{
	const char **sts = xcalloc(n ? n : 1, sizeof(*sts));

	for (size_t i = 0; i < n; i++)
		sts[i] = pis[i].status;
	pthread_mutex_lock(&d->mu);
	set_plans_locked(d, w, pis, n, sts);
	st_set_str(d, "sync", line_sync_name(LINE_APPLYING));
	st_set_str(d, "last_result", "plans run; writing the notes");
	pthread_mutex_unlock(&d->mu);
	free(sts);
}

void
publish(struct daemon *d, struct worker *w, struct pinfo *pis, size_t n, enum line_health health,
	bool in_sync)
{
	cJSON *drift = cJSON_CreateArray();
	const char **sts = xcalloc(n ? n : 1, sizeof(*sts));
	char at[32];
	double factor = 1.0;
	const char *gov = w->ex ? exec_governor(w->ex, &factor) : "healthy";

	for (size_t i = 0; i < n; i++) {
		sts[i] = pis[i].status;
		if (!strcmp(pis[i].status, "drift"))
			cJSON_AddItemToArray(drift, cJSON_CreateString(pis[i].id));
	}
	iso_now(at, sizeof(at));
	pthread_mutex_lock(&d->mu);
	set_plans_locked(d, w, pis, n, sts);
	cJSON_ReplaceItemInObject(d->status, "drift", drift);
	/* a pass that could not fetch or write notes applied what it had, but is not fine */
	if (w->last_error[0])
		health = line_health_worse(health, LINE_DEGRADED);
	st_set_str(d, "health", line_health_name(health));
	st_set_str(d, "sync", line_sync_name(in_sync ? LINE_IN_SYNC : LINE_OUT_OF_SYNC));
	st_set_str(d, "last_attempted_commit", w->snap ? w->snap->tip : NULL);
	if (in_sync && w->snap)
		st_set_str(d, "last_applied_commit", w->snap->tip);
	st_set_str(d, "last_pass_at", at);
	{
		cJSON *g = cJSON_CreateObject();
		cJSON_AddStringToObject(g, "state", gov);
		cJSON_AddNumberToObject(g, "factor", factor);
		cJSON_ReplaceItemInObject(d->status, "governor", g);
	}
	st_set_str(d, "state", w->last_error[0] ? "error" : "idle");
	st_set_str(d, "last_error", w->last_error[0] ? w->last_error : NULL);
	/* before the STATUS= below, which carries it: not the previous pass's */
	st_set_str(d, "last_result",
		   in_sync ? "in sync: every plan applied" : "out of sync: see plans");
	pthread_mutex_unlock(&d->mu);
	free(sts);
	daemon_notify_status(d);
}
