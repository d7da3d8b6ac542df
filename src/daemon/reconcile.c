/*
 * One reconciliation pass: the branch tip against the ledger, in plan order,
 * under the policy of the branch; then the database's state projected into
 * git notes and the status document.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/dbview.h"
#include "daemon/worker_int.h"
#include "line/line.h"
#include "plan/plan_dir.h"
#include "repo/repo.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strbuf.h"

/*
 * The plan cache: every plan file parsed once per (blob id, path) and kept
 * while the tip has it, so a pass parses only what changed (docs/design.md,
 * "A pass"). A plan is judged again on every pass (policy, signatures,
 * the database), never remembered judged. The entries are in the
 * snapshot's order (by path), so a pass finds a file's entry by walking the
 * last array alongside the snapshot; it builds the next array from the
 * snapshot and frees what the tip no longer has. Revert plans are not kept: resolving
 * one against the plan it reverts changes it, and they are few. An entry
 * also keeps what the last pass said of its plan: the fingerprint of the
 * note on its commit, and its item of the status document's "plans".
 */
struct pcache_ent {
	char *key;	  /* "<blob id>:<path>" */
	struct plan *p;	  /* NULL when the file is invalid */
	char *diag;	  /* its errors, when invalid */
	bool moved;	  /* taken by the next pass's cache (key kept for the search) */
	bool skip;	  /* a revert plan: its pinfo owns it, never looked up */
	uint64_t note_fp; /* what the note of its commit said when written (write_notes) */
	/*
	 * Its item in the status document's "plans" (w->plans_doc, owned by the
	 * document; only the worker replaces it) and what the item says.
	 */
	cJSON *item;
	uint64_t item_fp;
};

/* What the status document and the notes say of one plan file. */
struct pinfo {
	const struct repo_plan_file *f;
	struct plan *p; /* NULL when invalid */
	char *id;
	char *diag;	    /* the parse errors of an invalid plan */
	const char *status; /* a literal (line_status_name) */
	char message[1600];
	char sqlstate[6];
	char applied_at[40];
	size_t done, total;
	size_t wdone[WAVE__COUNT], wtotal[WAVE__COUNT];
	bool out_of_order; /* ran although it sorts before a plan applied earlier */
	/*
	 * An applied plan that no file at the tip has (removed, say by a
	 * force-push): drift, shown in its old place in the order, noted on
	 * the tip. own_f is its stand-in file (path from the database, the
	 * tip as commit), freed with it.
	 */
	bool missing;
	struct repo_plan_file *own_f;
	bool own_diag;	 /* diag is the pinfo's (else the plan cache's) */
	bool own_p;	 /* p is the pinfo's (a revert plan), else the cache's */
	char *rate_note; /* the rate limit's verdict: whose plans count, or why it is not known */
	char hazard[4];
	/*
	 * Its plan cache entry, which keeps what the pass last said of it (the
	 * note, the status document's item), or NULL for a plan the cache does
	 * not keep (a removed plan's stand-in).
	 */
	struct pcache_ent *ent;
};

/* The plan's row, or NULL when the database has none. */
static const struct dbplan *
db_row(const struct dbview *v, const char *plan_id)
{
	const struct dbplan *p = dbview_get(v, plan_id);

	return p && p->has_row ? p : NULL;
}

static const char *
db_status(const struct dbview *v, const char *plan_id)
{
	const struct dbplan *p = db_row(v, plan_id);

	return p ? p->status : NULL;
}

/* The message of the last plan.* event of a plan, or "". */
static const char *
db_message(const struct dbview *v, const char *plan_id)
{
	const struct dbplan *p = dbview_get(v, plan_id);

	return p && p->ev_msg ? p->ev_msg : "";
}

/* The number of a plan's steps in the ledger. */
static size_t
db_steps(const struct dbview *v, const char *plan_id)
{
	const struct dbplan *p = dbview_get(v, plan_id);

	return p ? p->steps : 0;
}

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* The type of the last plan.* event of a plan, or NULL. */
static const char *
db_last_event(const struct dbview *v, const char *plan_id)
{
	const struct dbplan *p = dbview_get(v, plan_id);

	return p ? p->ev_type : NULL;
}

/*
 * Adds a stand-in for each plan the database has as applied (or in drift)
 * with a checksum, that no file at the tip has, by plan id or by path: a
 * plan removed from the branch. Each goes where its file name sorts, so the
 * plans after it wait as they do behind an edited one. Returns the new
 * array (pis is consumed) and its length in *n.
 */
static struct pinfo *
add_missing(struct pinfo *pis, size_t *n, const struct repo_snapshot *snap, const struct dbview *v)
{
	struct plan_idset *paths = NULL;
	size_t nall;
	struct dbplan *const *all = dbview_all(v, &nall);
	bool *here = xcalloc(nall ? nall : 1, sizeof(*here));
	const char *first;

	/* the rows of the plans at the tip, by id; by path only for what is left */
	for (size_t k = 0; k < *n; k++) {
		const struct dbplan *p = dbview_get(v, pis[k].id);

		if (p)
			here[p->at] = true;
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
		pi->missing = true;
		pi->status = "drift";
		pi->done = pi->total = db_steps(v, id);
		snprintf(pi->hazard, sizeof(pi->hazard), "%s", all[r]->max_hazard);
		snprintf(pi->message, sizeof(pi->message),
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
static void
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
			exec_event(w->ex, "plan.drift", pi->id, NULL, NULL, NULL, "%s",
				   pi->message);
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
		exec_event(w->ex, "plan.drift", pi->id, NULL, NULL, NULL, "%s", pi->message);
}

/* Counts a plan's steps in the ledger, per wave, and its recorded status. */
static void
fill_from_db(struct pinfo *pi, const struct dbview *v)
{
	const struct dbplan *row;

	if (!pi->p)
		return;
	pi->done = 0;
	for (int w = 0; w < WAVE__COUNT; w++) {
		pi->wtotal[w] = pi->p->waves[w].nsteps;
		pi->wdone[w] = 0;
		for (size_t i = 0; i < pi->p->waves[w].nsteps; i++)
			if (dbview_in_ledger(v, pi->p->waves[w].steps[i].sha))
				pi->wdone[w]++;
		pi->done += pi->wdone[w];
	}
	pi->total = pi->p->nsteps;
	row = dbview_get(v, pi->id);
	pi->out_of_order = row && row->ooo;
	if (row && !row->has_row)
		row = NULL;
	if (row)
		snprintf(pi->applied_at, sizeof(pi->applied_at), "%s", row->completed_at);
	/* reverted in this pass by a revert plan after it in the line: say so now */
	if (row && pi->status && !strcmp(pi->status, "applied") &&
	    exec_status_reverted(row->status) && !strcmp(row->checksum, pi->p->checksum)) {
		enum line_status st;

		if (line_status_parse(row->status, &st) == 0)
			pi->status = line_status_name(st);
		snprintf(pi->message, sizeof(pi->message), "%s", db_message(v, pi->id));
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
static void
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
static void
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

static const char *
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
static int
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

static const char *
outcome_status(enum exec_outcome o)
{
	switch (o) {
	case EXEC_APPLIED: return "applied";
	case EXEC_UNSET: /* exec_run_plan never returns it; were it seen, it is no success */
	case EXEC_FAILED: return "failed";
	case EXEC_BLOCKED: return "blocked";
	case EXEC_DRIFT: return "drift";
	case EXEC_ABORTED: return "aborted";
	case EXEC_CONN_LOST: return "pending";
	}
	return "pending";
}

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
	if (pi->message[0] && strcmp(pi->status, "applied") != 0) {
		/* a trailer is one line */
		sb_puts(sb, "Message: ");
		for (const char *c = pi->message; *c; c++)
			sb_putc(sb, *c == '\n' ? ' ' : *c);
		sb_putc(sb, '\n');
	}
}

static uint64_t
fp_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ull;
	return h;
}

static uint64_t
fp_str(uint64_t h, const char *s)
{
	return fp_bytes(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

/* Everything of pi that its note says (note_line, note_trailers). */
static uint64_t
note_fingerprint(const struct pinfo *pi)
{
	uint64_t h = 1469598103934665603ull;

	h = fp_str(h, pi->id);
	h = fp_str(h, pi->status);
	h = fp_str(h, pi->f->path);
	h = fp_str(h, pi->f->commit);
	h = fp_str(h, pi->hazard);
	h = fp_str(h, pi->p ? pi->p->checksum : NULL);
	h = fp_str(h, pi->p ? plan_hazard_name(pi->p->max_hazard) : "");
	h = fp_bytes(h, &pi->done, sizeof(pi->done));
	h = fp_bytes(h, &pi->total, sizeof(pi->total));
	h = fp_bytes(h, pi->wdone, sizeof(pi->wdone));
	h = fp_bytes(h, pi->wtotal, sizeof(pi->wtotal));
	h = fp_bytes(h, &pi->out_of_order, sizeof(pi->out_of_order));
	h = fp_str(h, pi->applied_at);
	h = fp_str(h, pi->sqlstate);
	h = fp_str(h, pi->message);
	return h;
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
		size_t h = (size_t)fp_str(1469598103934665603ull, c) & (cap - 1);

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
 * One note per commit, summing up every plan whose file that commit last
 * changed; written only for the commits whose note would say something else
 * than the one this daemon last wrote there (the fingerprint of its plans,
 * kept in their plan cache entries): a pass costs what changed, not the
 * number of plans.
 */
static void
write_notes(struct daemon *d, struct worker *w, struct pinfo *pis, size_t n)
{
	struct repo_note *notes = xcalloc(n ? n : 1, sizeof(*notes));
	char **texts = xcalloc(n ? n : 1, sizeof(char *));
	uint64_t *fps = xcalloc(n ? n : 1, sizeof(*fps));
	size_t nn = 0, *firsts = xcalloc(n ? n : 1, sizeof(*firsts)), *nxt;
	bool *head, all;
	char err[512], id[41];
	int rc;

	/*
	 * Our notes ref as we left it: only the changed notes are written.
	 * Moved by another hand (a push to it, a repair to make): all are.
	 */
	all = !w->notes_id[0] || repo_notes_id(w->repo, w->cfg->notes_ref, id) < 0 ||
	      strcmp(id, w->notes_id) != 0;
	group_by_commit(pis, n, &nxt, &head);
	for (size_t g = 0; g < n; g++) {
		uint64_t fp =
		    fp_str(fp_str(1469598103934665603ull, w->cfg->target), w->cfg->notes_ref);
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
	rc = nn ? repo_notes_sync(w->repo, w->cfg->notes_ref, notes, nn,
				  w->cfg->push_notes && repo_is_remote(w->repo), err, sizeof(err))
		: 0;
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
	/* (nothing written: the ref is where the check above found it, ours) */
	if (rc < 0 || (nn && repo_notes_id(w->repo, w->cfg->notes_ref, w->notes_id) < 0))
		w->notes_id[0] = '\0';
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
	if (pi->message[0])
		cJSON_AddStringToObject(o, "message", pi->message);
	return o;
}

/* Everything of pi that plan_json says, with status. */
static uint64_t
item_fingerprint(const struct pinfo *pi, const char *status)
{
	uint64_t h = 1469598103934665603ull;

	h = fp_str(h, pi->id);
	h = fp_str(h, pi->f->path);
	h = fp_str(h, status);
	h = fp_str(h, pi->p ? plan_hazard_name(pi->p->max_hazard) : NULL);
	h = fp_bytes(h, &pi->done, sizeof(pi->done));
	h = fp_bytes(h, &pi->total, sizeof(pi->total));
	h = fp_str(h, pi->f->commit);
	h = fp_str(h, pi->f->author_email);
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
	}
	cJSON_ReplaceItemInObject(d->status, "plans", arr);
	w->plans_doc = arr;
}

/*
 * Before plan RUNNING of the pass starts work: every plan at the tip is
 * listed (those before it as this pass found them, it as running, those
 * after it as the database had them when the pass began, or pending), and
 * sync is "applying", not the last pass's word, which may be about another
 * tip, or none at all on the first pass.
 */
static void
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
			st = db_status(v, pis[i].id) ? db_status(v, pis[i].id) : "pending";
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

static void
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

static void
pinfos_free(struct pinfo *pis, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* the plan and its parse errors belong to the plan cache, but for own_* */
		if (pis[i].own_p)
			plan_free(pis[i].p);
		free(pis[i].id);
		free(pis[i].rate_note);
		if (pis[i].own_diag)
			free(pis[i].diag);
		if (pis[i].own_f)
			free(pis[i].own_f->path);
		free(pis[i].own_f);
	}
	free(pis);
}

/*
 * Parses one plan file of the snapshot. One too large to be read is refused
 * with the planner's own words for it, from the size alone.
 */
static int
parse_file(const struct repo_plan_file *f, struct plan **out, struct diags *dg)
{
	if (f->too_large) {
		diags_add(dg, DIAG_ERROR, f->path, 0, 0,
			  "file is %zu bytes; a plan may be at most %d bytes", f->len,
			  REPO_PLAN_MAX_BYTES);
		return -1;
	}
	return plan_parse(out, f->path, f->content, f->len, dg);
}

struct pcache {
	struct pcache_ent *v;
	size_t n;
};

static void
pcache_ent_free(struct pcache_ent *e)
{
	free(e->key);
	plan_free(e->p);
	free(e->diag);
	memset(e, 0, sizeof(*e));
}

void
pcache_free(struct pcache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		pcache_ent_free(&c->v[i]);
	free(c->v);
	free(c);
}

/* The errors of an invalid file, at most five of them, as one text. */
static char *
diag_text(const struct diags *dg)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t k = 0; k < dg->n && k < 5; k++) {
		char *line = diag_format(&dg->v[k]);
		sb_printf(&sb, "%s%s", k ? "\n" : "", line);
		free(line);
	}
	if (dg->n > 5)
		sb_printf(&sb, "\n(and %zu more)", dg->n - 5);
	return sb_detach(&sb);
}

/*
 * The cache entry of file f: taken from the last pass's cache, or parsed
 * now. A revert plan goes to *own instead (the caller owns it).
 */
static void
pcache_fill(struct pcache *old, size_t *cur, const struct repo_plan_file *f, struct pcache_ent *e,
	    struct plan **own)
{
	struct pcache_ent want = { .key = xasprintf("%s:%s", f->blob, f->path) }, *hit = NULL;
	size_t blen = strlen(f->blob);
	struct diags dg = DIAGS_INIT;

	*own = NULL;
	/*
	 * Both in the snapshot's order (by path): one walk down the old cache.
	 * Were an order to differ, a file would only be parsed again.
	 */
	while (old && *cur < old->n && strcmp(old->v[*cur].key + blen + 1, f->path) < 0)
		(*cur)++;
	if (old && *cur < old->n && !strcmp(old->v[*cur].key, want.key))
		hit = &old->v[*cur];
	/*
	 * A plan blocked in the last pass is parsed again: its reasons are
	 * written in its arena, which must not grow pass after pass.
	 */
	if (hit && !hit->moved && !hit->skip && !(hit->p && hit->p->blocked)) {
		e->key = want.key;
		e->p = hit->p;
		e->diag = hit->diag;
		e->note_fp = hit->note_fp;
		e->item = hit->item;
		e->item_fp = hit->item_fp;
		hit->p = NULL;
		hit->diag = NULL;
		hit->moved = true;
		return;
	}
	*e = want;
	if (parse_file(f, &e->p, &dg) < 0) {
		plan_free(e->p);
		e->p = NULL;
		e->diag = diag_text(&dg);
	} else if (e->p->revert_of) {
		*own = e->p;
		e->p = NULL;
		e->skip = true;
	}
	diags_clear(&dg);
}

/* Makes pi invalid, with dg's errors as its message. */
static void
make_invalid(struct pinfo *pi, const struct diags *dg)
{
	const char *base = strrchr(pi->f->path, '/');
	const char *dot;

	if (!pi->id) {
		base = base ? base + 1 : pi->f->path;
		dot = strrchr(base, '.');
		pi->id = xstrndup(base, dot ? (size_t)(dot - base) : strlen(base));
	}
	if (pi->own_diag)
		free(pi->diag);
	pi->diag = diag_text(dg);
	pi->own_diag = true;
	pi->status = "invalid";
	snprintf(pi->message, sizeof(pi->message), "%s", pi->diag);
}

/* pi's plan goes: freed when it is pi's own, left to the cache otherwise. */
static void
drop_plan(struct pinfo *pi)
{
	if (pi->own_p)
		plan_free(pi->p);
	pi->p = NULL;
	pi->own_p = false;
}

/*
 * A revert plan at pis[i] is resolved against the plan it reverts, which
 * must be a valid plan before it at the tip, reverted by no revert before
 * it; the reverted plan is parsed again from its file, for the revert plan
 * to own. Any problem makes the revert plan invalid.
 */
static void
resolve_revert(struct pinfo *pis, size_t n, size_t i)
{
	struct pinfo *pi = &pis[i];
	const char *id = pi->p->revert_of;
	struct diags dg = DIAGS_INIT;
	struct plan *t = NULL;
	size_t k;

	for (k = 0; k < n; k++)
		if (k != i && pis[k].p && !strcmp(pis[k].p->id, id))
			break;
	if (k == n)
		diags_add(&dg, DIAG_ERROR, pi->f->path, pi->p->revert_line, pi->p->revert_col,
			  "revert: no valid plan with id '%s' at the tip (the reverted plan stays "
			  "in the directory, unchanged)",
			  id);
	else if (k > i)
		diags_add(&dg, DIAG_ERROR, pi->f->path, pi->p->revert_line, pi->p->revert_col,
			  "revert: plan %s is in %s, which comes after this file: a revert comes "
			  "after the plan it reverts in the line order",
			  id, pis[k].f->path);
	for (size_t o = 0; o < i && !dg.nerrors; o++)
		if (pis[o].p && pis[o].p->revert_of && !strcmp(pis[o].p->revert_of, id))
			diags_add(
			    &dg, DIAG_ERROR, pi->f->path, pi->p->revert_line, pi->p->revert_col,
			    "revert: plan %s is reverted already by %s: a plan is reverted once",
			    id, pis[o].f->path);
	if (!dg.nerrors && parse_file(pis[k].f, &t, &dg) == 0)
		(void)plan_revert_resolve(pi->p, t, &dg);
	if (dg.nerrors) {
		drop_plan(pi);
		make_invalid(pi, &dg);
	}
	diags_clear(&dg);
}

/*
 * The plans at the tip, through the cache (w->pcache is replaced);
 * duplicate ids make the later file invalid. Revert plans are resolved
 * against the plans before them.
 */
struct id_ref {
	const char *id;
	size_t i;
};

static int
id_ref_cmp(const void *a, const void *b)
{
	const struct id_ref *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	return c ? c : x->i < y->i ? -1 : x->i > y->i;
}

static struct pinfo *
parse_all(struct worker *w, const struct repo_snapshot *s)
{
	struct pinfo *pis = xcalloc(s->n ? s->n : 1, sizeof(*pis));
	struct id_ref *refs = xcalloc(s->n ? s->n : 1, sizeof(*refs));
	struct pcache *next = xcalloc(1, sizeof(*next));
	size_t nrefs = 0, cur = 0;

	next->v = xcalloc(s->n ? s->n : 1, sizeof(*next->v));
	next->n = s->n;
	for (size_t i = 0; i < s->n; i++) {
		struct pinfo *pi = &pis[i];
		struct pcache_ent *e = &next->v[i];
		struct plan *own;

		pi->f = &s->files[i];
		pcache_fill(w->pcache, &cur, pi->f, e, &own);
		pi->ent = e;
		pi->p = own ? own : e->p;
		pi->own_p = own != NULL;
		pi->diag = e->diag;
		if (pi->p) {
			pi->id = xstrdup(pi->p->id);
			refs[nrefs].id = pi->id;
			refs[nrefs++].i = i;
		} else {
			const char *base = strrchr(pi->f->path, '/');
			const char *dot;

			base = base ? base + 1 : pi->f->path;
			dot = strrchr(base, '.');
			pi->id = xstrndup(base, dot ? (size_t)(dot - base) : strlen(base));
			pi->status = "invalid";
			snprintf(pi->message, sizeof(pi->message), "%s", pi->diag);
		}
	}
	/* the same id twice: the later files are invalid (sorted, not hashed: no copies) */
	qsort(refs, nrefs, sizeof(*refs), id_ref_cmp);
	for (size_t k = 1; k < nrefs; k++) {
		size_t first = k - 1;
		struct diags dg = DIAGS_INIT;
		struct pinfo *pi = &pis[refs[k].i];

		while (first > 0 && !strcmp(refs[first - 1].id, refs[k].id))
			first--;
		if (strcmp(refs[first].id, refs[k].id) != 0)
			continue;
		diags_add(&dg, DIAG_ERROR, pi->f->path, pi->p->id_line, pi->p->id_col,
			  "duplicate plan id '%s': %s has it already", pi->p->id,
			  pis[refs[first].i].f->path);
		drop_plan(pi);
		make_invalid(pi, &dg);
		diags_clear(&dg);
	}
	free(refs);
	pcache_free(w->pcache);
	w->pcache = next;
	for (size_t i = 0; i < s->n; i++)
		if (pis[i].p && pis[i].p->revert_of)
			resolve_revert(pis, s->n, i);
	return pis;
}

static bool
open_repo(struct daemon *d, struct worker *w)
{
	char err[512];
	char *key = xasprintf("%s\n%s\n%s", w->cfg->repository, w->cfg->branch, w->cfg->state_dir);

	if (w->repo && !strcmp(w->repo_key, key)) {
		free(key);
		if (repo_fetch(w->repo, err, sizeof(err)) < 0) {
			snprintf(w->last_error, sizeof(w->last_error), "%s", err);
			log_warnx("[%s] %s", w->cfg->target, err);
		}
		return true;
	}
	repo_free(w->repo);
	w->repo = NULL;
	free(w->repo_key);
	w->repo_key = key;
	if (repo_open(&w->repo, w->cfg->repository, w->cfg->state_dir, w->cfg->branch, err,
		      sizeof(err)) < 0) {
		snprintf(w->last_error, sizeof(w->last_error), "%s", err);
		log_warnx("[%s] %s", w->cfg->target, err);
		st_set(d, "state", "error");
		return false;
	}
	return true;
}

/*
 * The database went away during a pass (or the runner lock's session did):
 * drop both connections, so the next pass reconnects and takes the lock
 * anew, and say so in the status until then.
 */
static void
lost_db(struct daemon *d, struct worker *w, const char *why)
{
	const char *sync;

	pthread_mutex_lock(&d->mu);
	cJSON *db = cJSON_GetObjectItem(d->status, "database");
	cJSON_ReplaceItemInObject(db, "connected", cJSON_CreateFalse());
	cJSON_ReplaceItemInObject(db, "error", cJSON_CreateString(why));
	st_set_str(d, "state", "reconnecting");
	st_set_str(d, "health", "degraded");
	/* the work in progress stopped with the connection */
	sync = cJSON_GetStringValue(cJSON_GetObjectItem(d->status, "sync"));
	if (sync && !strcmp(sync, "applying")) {
		st_set_str(d, "sync", "out_of_sync");
		st_set_str(d, "last_result", why);
	}
	pthread_mutex_unlock(&d->mu);
	worker_drop_exec(d, w);
	if (!w->db_down_logged)
		log_warnx("[%s] lost the database connection: %s", w->cfg->target, why);
	w->db_down_logged = true;
	daemon_notify_status(d);
}

/*
 * The line's core (src/line/line.h) decides the pass; the functions below
 * gather its facts from the pinfos and the database's view, and carry out
 * what it says: record the verdicts, run the plan it names, write the
 * outcome into the view and ask again (docs/design.md, "A pass").
 */

/* Per plan of a pass: what was done of it already. */
enum { LP_RAN = 1, LP_RECORDED = 2, LP_OOO_SAID = 4 };

/* The core's facts of pis[i]: the file, the database's row, this tip's failures. */
static void
line_fill(struct worker *w, const struct pinfo *pis, size_t i, const struct dbview *v,
	  struct line_plan *lp)
{
	const struct pinfo *pi = &pis[i];
	const struct dbplan *row = db_row(v, pi->id);

	memset(lp, 0, sizeof(*lp));
	lp->id = pi->id;
	lp->valid = pi->p != NULL;
	lp->missing = pi->missing;
	lp->checksum = pi->p ? pi->p->checksum : NULL;
	lp->reverts = LINE_NONE;
	/* resolve_revert made sure the reverted plan is a valid one before it */
	for (size_t k = 0; pi->p && pi->p->revert_of && k < i; k++)
		if (pis[k].p && !strcmp(pis[k].p->id, pi->p->revert_of)) {
			lp->is_revert = true;
			lp->reverts = k;
			break;
		}
	if (row) {
		lp->has_row = true;
		/* the CHECK constraint allows nothing else; were it another, it never ran */
		if (line_status_parse(row->status, &lp->db) < 0)
			lp->db = LINE_PENDING;
		lp->db_checksum = row->checksum;
	}
	lp->failed_here = w->failed && plan_idset_find(w->failed, pi->id);
}

/*
 * The policy of the branch and the signatures, for a plan that may still
 * run: not one applied (or reverted) as it is, nor an aborted one. A plan
 * in drift is judged: restored, it runs like any other.
 */
static void
line_judge(struct worker *w, struct pinfo *pi, struct line_plan *lp, const struct plan_policy *pol)
{
	if (!pi->p)
		return;
	if (lp->has_row &&
	    (lp->db == LINE_ABORTED || ((lp->db == LINE_APPLIED || line_status_reverted(lp->db)) &&
					!strcmp(lp->db_checksum, pi->p->checksum))))
		return;
	plan_apply_policy(pi->p, pol);
	check_signature(w, pi);
	lp->blocked = pi->p->blocked;
}

/* pi's message for the verdict out. */
static void
line_message(struct pinfo *pi, const struct pinfo *pis, const struct line_verdict *out,
	     const struct dbview *v, int chaos_max)
{
	switch (out->why) {
	case LINE_WHY_SETTLED:
		if (line_status_reverted(out->status))
			snprintf(pi->message, sizeof(pi->message), "%s", db_message(v, pi->id));
		break;
	case LINE_WHY_DB:
		if (out->status != LINE_APPLIED)
			snprintf(pi->message, sizeof(pi->message), "%s", db_message(v, pi->id));
		break;
	case LINE_WHY_WAITS:
		snprintf(pi->message, sizeof(pi->message), "waits for the plans before it");
		break;
	case LINE_WHY_CHECKSUM:
		snprintf(pi->message, sizeof(pi->message),
			 "plan %s was applied with checksum %.16s but the file now has %.16s: "
			 "applied plans are immutable; restore the file, or run `taskslapsctl "
			 "accept-drift %s`",
			 pi->id, db_checksum(v, pi->id), pi->p->checksum, pi->id);
		break;
	case LINE_WHY_STALE:
		snprintf(pi->message, sizeof(pi->message),
			 "plan %s was edited after some of its steps were applied: applied steps "
			 "are immutable; restore the file, or run `taskslapsctl accept-drift %s`",
			 pi->id, pi->id);
		break;
	case LINE_WHY_POLICY:
		snprintf(pi->message, sizeof(pi->message), "%s",
			 pi->p && pi->p->blocked_reason ? pi->p->blocked_reason : "blocked");
		break;
	case LINE_WHY_OUT_OF_ORDER:
		snprintf(pi->message, sizeof(pi->message),
			 "out of order: sorts before %s, which is already applied (out_of_order: "
			 "refuse)",
			 pis[out->ref].id);
		break;
	case LINE_WHY_RATE_OVER:
		snprintf(pi->message, sizeof(pi->message),
			 "%s already has %d plans in the last 24 h on this chaos branch; retried "
			 "when the window allows",
			 pi->rate_note ? pi->rate_note : "this author", chaos_max);
		break;
	case LINE_WHY_RATE_UNKNOWN:
		snprintf(pi->message, sizeof(pi->message),
			 "the chaos rate limit could not be checked (%s); blocked until it can be",
			 pi->rate_note ? pi->rate_note : "");
		break;
	case LINE_WHY_FAILED_HERE:
		snprintf(pi->message, sizeof(pi->message),
			 "%.1400s (not retried until a new commit, `taskslapsctl reconcile` or "
			 "`resume`)",
			 db_message(v, pi->id));
		break;
	case LINE_WHY_ABORTED:
		snprintf(pi->message, sizeof(pi->message),
			 "plan %s is aborted; `taskslapsctl resume %s` lets it run again", pi->id,
			 pi->id);
		break;
	case LINE_WHY_REVERT_NEXT:
		snprintf(pi->message, sizeof(pi->message), "%.1400s (its revert %s runs next)",
			 db_message(v, pi->id), pis[out->ref].id);
		break;
	case LINE_WHY_INVALID: /* the parse errors, from parse_all */
	case LINE_WHY_MISSING: /* from add_missing */
	case LINE_WHY_RUNS:
	case LINE_WHY_NONE: break;
	}
}

/*
 * A status the pass writes itself, checked against the transition table
 * (docs/design.md, "A pass"): refused, it is logged and not written.
 */
static bool
line_write_ok(struct worker *w, const struct line_plan *lp, enum line_status to)
{
	enum line_status from = lp->has_row ? lp->db : LINE_PENDING;

	if (line_transition_ok(from, to, LINE_BY_PASS))
		return true;
	log_warnx("[%s] plan %s: a pass does not move a plan from %s to %s", w->cfg->target, lp->id,
		  line_status_name(from), line_status_name(to));
	return false;
}

/* A verdict the core says to record now: the row (when the table allows it) and an event. */
static void
line_record(struct worker *w, const struct pinfo *pis, size_t n, struct pinfo *pi,
	    struct line_plan *lp, const struct line_verdict *out, const struct dbview *v)
{
	struct exec_plan_meta meta = { pi->f->commit, pi->f->author_email };
	struct db_error err;
	const char *ev = NULL;

	if (out->why == LINE_WHY_MISSING) {
		record_missing(w, pi, v);
	} else if (out->status == LINE_INVALID) {
		bool shadowed = false;

		for (size_t k = 0; k < n && !shadowed; k++)
			shadowed = pis[k].p && !strcmp(pis[k].id, pi->id);
		record_invalid(w, pi, v,
			       shadowed || (lp->has_row && !line_transition_ok(lp->db, LINE_INVALID,
									       LINE_BY_PASS)));
		return;
	} else if (out->status == LINE_DRIFT) {
		ev = "plan.drift";
	} else if (out->status == LINE_BLOCKED) {
		ev = "plan.blocked";
	} else if (out->status == LINE_RATE_LIMITED) {
		ev = "plan.rate_limited";
	}
	if (ev && pi->p && line_write_ok(w, lp, out->status)) {
		(void)exec_plan_status(w->ex, pi->p, &meta, line_status_name(out->status), &err);
		exec_event(w->ex, ev, pi->id, NULL, NULL, NULL, "%s", pi->message);
	}
	/* the view follows what was written: the next question sees it */
	if (out->status != LINE_INVALID) {
		if (!lp->has_row || out->status != LINE_DRIFT)
			lp->db_checksum = lp->checksum;
		lp->has_row = true;
		lp->db = out->status;
	}
}

/*
 * A verdict the database has already (blocked, rate limited, invalid) whose
 * reason is now another commit or author than its row names: a new version
 * of the file, still refused. Recorded again, so the row (and the event)
 * name the commit and author of now, not the first.
 */
static bool
reason_moved(const struct pinfo *pi, const struct line_plan *lp, const struct line_verdict *out,
	     const struct dbview *v)
{
	const struct dbplan *row = db_row(v, pi->id);

	if (out->record || !row || !lp->has_row || lp->db != out->status || pi->missing)
		return false;
	if (out->status != LINE_BLOCKED && out->status != LINE_RATE_LIMITED &&
	    out->status != LINE_INVALID)
		return false;
	/* an invalid file writes the row only while the row is its own (record_invalid) */
	if (out->status == LINE_INVALID && strcmp(row->status, "invalid") != 0)
		return false;
	/* the row keeps its author when the commit has none (the upsert's coalesce) */
	return strcmp(row->commit_sha, pi->f->commit) != 0 ||
	       (pi->f->author_email && *pi->f->author_email &&
		strcmp(row->author, pi->f->author_email) != 0);
}

/*
 * Plans [0, upto) as the core judged them: status, message, and what is to
 * be recorded or said, once a pass. A plan run in this pass keeps the
 * executor's words.
 */
static void
line_apply(struct worker *w, struct pinfo *pis, size_t n, struct line_plan *lps,
	   const struct line_verdict *outs, unsigned char *flags, size_t upto,
	   const struct dbview *v)
{
	for (size_t i = 0; i < upto; i++) {
		struct pinfo *pi = &pis[i];

		if (!(flags[i] & LP_RAN)) {
			pi->status = line_status_name(outs[i].status);
			line_message(pi, pis, &outs[i], v,
				     w->cfg->chaos_max_plans_per_author_per_day);
		}
		if (outs[i].ooo_event && !(flags[i] & LP_OOO_SAID)) {
			exec_event(w->ex, "plan.out_of_order", pi->id, NULL, NULL, NULL,
				   "%s sorts before %s, which is already applied; it runs anyway "
				   "(out_of_order: run)",
				   pi->id, pis[outs[i].ref].id);
			flags[i] |= LP_OOO_SAID;
		}
		if ((outs[i].record || reason_moved(pi, &lps[i], &outs[i], v)) &&
		    !(flags[i] & LP_RECORDED)) {
			line_record(w, pis, n, pi, &lps[i], &outs[i], v);
			flags[i] |= LP_RECORDED;
		}
	}
}

/*
 * The executor's outcome of pis[i], written into the view: its status and
 * checksum, this tip's failures, and the plan a revert plan settles.
 */
static void
line_ran(struct worker *w, struct pinfo *pis, struct line_plan *lps, unsigned char *flags, size_t i,
	 const struct exec_result *res)
{
	struct pinfo *pi = &pis[i];
	struct line_plan *lp = &lps[i];
	enum line_status st = LINE_PENDING;

	(void)line_status_parse(pi->status, &st);
	if (res->outcome != EXEC_DRIFT || !lp->has_row)
		lp->db_checksum = lp->checksum;
	lp->has_row = true;
	lp->db = st;
	if (res->outcome == EXEC_FAILED) {
		const char *first;

		if (!w->failed)
			w->failed = plan_idset_new();
		plan_idset_add(w->failed, pi->id, "", &first);
		lp->failed_here = true;
	}
	if (res->outcome == EXEC_APPLIED && lp->is_revert) {
		/* the reverted plan is settled; the plans after it run, in order */
		struct pinfo *t = &pis[lp->reverts];

		(void)line_status_parse(plan_revert_status(pi->p), &lps[lp->reverts].db);
		t->status = line_status_name(lps[lp->reverts].db);
		snprintf(t->message, sizeof(t->message), "%s by plan %s", t->status, pi->id);
		t->sqlstate[0] = '\0';
		flags[lp->reverts] |= LP_RAN;
	}
}

/*
 * Section timers of a pass (TS_PASS_TIMING set in the environment): one log
 * line per full pass, "pass timing: total=... snapshot=... ran=N", in ms,
 * for bench/daemon/run.sh.
 */
enum {
	T_TIP,
	T_SNAPSHOT,
	T_PARSE,
	T_VIEW,
	T_JUDGE,
	T_WALK,
	T_REFRESH,
	T_PROJECT,
	T_NOTES,
	T_PUBLISH,
	T__COUNT
};
static const char *const t_name[T__COUNT] = { "tip",  "snapshot", "parse",   "view",  "judge",
					      "walk", "refresh",  "project", "notes", "publish" };

struct ptimer {
	bool on;
	double start, last, t[T__COUNT];
};

static double
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The time since the last mark goes to section k. */
static void
pt_mark(struct ptimer *t, int k)
{
	double now;

	if (!t->on)
		return;
	now = mono_ms();
	t->t[k] += now - t->last;
	t->last = now;
}

static void
pt_log(const struct ptimer *t, const char *target, size_t ran)
{
	struct strbuf sb = STRBUF_INIT;

	if (!t->on)
		return;
	sb_printf(&sb, "total=%.2f", mono_ms() - t->start);
	for (int k = 0; k < T__COUNT; k++)
		sb_printf(&sb, " %s=%.2f", t_name[k], t->t[k]);
	log_info("[%s] pass timing: %s ran=%zu", target, sb.buf, ran);
	sb_free(&sb);
}

/*
 * The plans this pass wrote (ran, or recorded a verdict of) as ids for
 * dbview_catch_up: their events name them too, this is in case one did not.
 */
static const char **
written_ids(const struct pinfo *pis, const unsigned char *flags, size_t n, size_t *k)
{
	const char **ids = xcalloc(n ? n : 1, sizeof(*ids));

	*k = 0;
	for (size_t i = 0; i < n; i++)
		if (flags[i] & (LP_RAN | LP_RECORDED))
			ids[(*k)++] = pis[i].id;
	return ids;
}

int
worker_pass(struct daemon *d, struct worker *w)
{
	struct plan_policy pol;
	struct dbview *v;
	struct ptimer tm = { .on = getenv("TS_PASS_TIMING") != NULL };
	size_t ran = 0;
	struct db_error err;
	struct pinfo *pis = NULL;
	struct repo_snapshot *snap = NULL;
	char errbuf[512], lost[1600] = "";
	bool in_sync = false, conn_lost = false;
	struct line_config lcfg = { w->cfg->out_of_order == OOO_REFUSE ? LINE_OOO_REFUSE
								       : LINE_OOO_RUN };
	struct line_decision dec = { LINE_NONE, LINE_OUT_OF_SYNC, LINE_HEALTHY };
	struct line_plan *lps = NULL;
	struct line_verdict *outs = NULL;
	unsigned char *flags = NULL;
	enum line_health health = LINE_HEALTHY;
	int holder = 0, got, rc = PASS_OK;
	size_t n;

	if (tm.on)
		tm.start = tm.last = mono_ms();
	w->last_error[0] = '\0';
	if (!ensure_exec(d, w))
		return PASS_DB_DOWN;
	got = exec_runner_lock(w->ex, &holder, &err);
	if (got < 0) {
		lost_db(d, w, err.message[0] ? err.message : "the runner lock's session ended");
		return PASS_DB_DOWN;
	}
	if (got == 0) {
		char msg[128];
		snprintf(msg, sizeof(msg),
			 "another runner (pid %d) holds this database's runner lock", holder);
		pthread_mutex_lock(&d->mu);
		st_set_str(d, "state", "standby");
		st_set_str(d, "last_result", msg);
		pthread_mutex_unlock(&d->mu);
		if (!w->standby_logged)
			log_info("[%s] standby: %s", w->cfg->target, msg);
		w->standby_logged = true;
		daemon_notify_status(d);
		return PASS_STANDBY;
	}
	w->standby_logged = false;
	if (!open_repo(d, w))
		return PASS_ERROR;
	/* (a fetch that failed is news: the full pass below reports it) */
	if (!w->full_pass && w->settled_tip[0] && !w->last_error[0]) {
		char tip[41];

		if (repo_tip(w->repo, tip, errbuf, sizeof(errbuf)) == 0 &&
		    !strcmp(tip, w->settled_tip)) {
			/* nothing new since a pass that ended in sync: nothing to do */
			char at[32];

			iso_now(at, sizeof(at));
			pthread_mutex_lock(&d->mu);
			st_set_str(d, "last_pass_at", at);
			pthread_mutex_unlock(&d->mu);
			return PASS_OK;
		}
	}
	w->full_pass = false;
	w->settled_tip[0] = '\0';
	pt_mark(&tm, T_TIP);
	if (repo_snapshot_since_move(w->repo, w->cfg->migrations_dir, w->snap, &snap, errbuf,
				     sizeof(errbuf)) < 0) {
		snprintf(w->last_error, sizeof(w->last_error), "%s", errbuf);
		log_warnx("[%s] %s", w->cfg->target, errbuf);
		/* the failed snapshot may have taken some of its strings: read whole next time */
		repo_snapshot_free(w->snap);
		w->snap = NULL;
		pthread_mutex_lock(&d->mu);
		st_set_str(d, "state", "error");
		st_set_str(d, "last_error", errbuf);
		st_set_str(d, "health", "failed");
		/* no tip to compare with (a deleted branch): not in sync, whatever the last pass
		 * said */
		st_set_str(d, "sync", "out_of_sync");
		st_set_str(d, "last_result", errbuf);
		pthread_mutex_unlock(&d->mu);
		daemon_notify_status(d);
		return PASS_ERROR;
	}
	repo_snapshot_free(w->snap);
	w->snap = snap;
	if (strcmp(w->failed_tip, snap->tip) != 0) {
		worker_forget_failures(w);
		snprintf(w->failed_tip, sizeof(w->failed_tip), "%s", snap->tip);
	}
	plan_policy_default(&pol, config_branch_protected(w->cfg, w->cfg->branch) ? MODE_PROTECTED
										  : MODE_CHAOS);
	pthread_mutex_lock(&d->mu);
	st_set_str(d, "tip", snap->tip);
	st_set_str(d, "state", "reconciling");
	pthread_mutex_unlock(&d->mu);
	daemon_notify_status(d);

	pt_mark(&tm, T_SNAPSHOT);
	n = snap->n;
	pis = parse_all(w, snap);
	pt_mark(&tm, T_PARSE);
	/* the view of the last pass, with what changed since (another writer's work) */
	if (!w->view || strcmp(w->view_target ? w->view_target : "", w->cfg->target) != 0) {
		dbview_free(w->view);
		w->view = dbview_new();
		free(w->view_target);
		w->view_target = xstrdup(w->cfg->target);
	}
	v = w->view;
	if (dbview_catch_up(v, exec_db(w->ex), w->cfg->target, NULL, 0, &err) < 0) {
		snprintf(lost, sizeof(lost), "%s", err.message);
		rc = PASS_DB_DOWN;
		goto out;
	}
	pis = add_missing(pis, &n, snap, v);
	lps = xcalloc(n ? n : 1, sizeof(*lps));
	outs = xcalloc(n ? n : 1, sizeof(*outs));
	flags = xcalloc(n ? n : 1, 1);
	for (size_t i = 0; i < n; i++) {
		line_fill(w, pis, i, v, &lps[i]);
		line_judge(w, &pis[i], &lps[i], &pol);
	}
	pt_mark(&tm, T_VIEW);
	for (;;) {
		struct pinfo *pi;
		struct exec_plan_meta meta;
		struct exec_result res;
		size_t i;

		line_decide(&lcfg, lps, n, outs, &dec);
		line_apply(w, pis, n, lps, outs, flags, dec.next == LINE_NONE ? n : dec.next + 1,
			   v);
		if (dec.next == LINE_NONE)
			break;
		i = dec.next;
		pi = &pis[i];
		if (flags[i] & LP_RAN) {
			/* never twice in a pass: were the core to ask, the line stops here */
			log_warnx("[%s] plan %s: asked to run it twice in one pass", w->cfg->target,
				  pi->id);
			dec.sync = LINE_OUT_OF_SYNC;
			break;
		}
		if (pi->p->mode == MODE_CHAOS && lps[i].rate == LINE_RATE_UNCHECKED) {
			/* chaos: the plans this author ran in the last 24 h; then ask again */
			char why[600], *who = NULL;
			int limited = rate_limited(w, pi, &who, why, sizeof(why));

			free(pi->rate_note);
			pi->rate_note = limited > 0 ? who : limited < 0 ? xstrdup(why) : NULL;
			lps[i].rate = limited > 0   ? LINE_RATE_OVER
				      : limited < 0 ? LINE_RATE_UNKNOWN
						    : LINE_RATE_UNDER;
			continue;
		}
		publish_progress(d, w, pis, n, i, v);
		pthread_mutex_lock(&d->mu);
		st_set_str(d, "state", "applying");
		st_set_str(d, "health", line_health_name(LINE_PROGRESSING));
		pthread_mutex_unlock(&d->mu);
		daemon_notify_status(d);
		meta.commit_sha = pi->f->commit;
		meta.author = pi->f->author_email;
		exec_run_plan(w->ex, pi->p, &meta, &res);
		flags[i] |= LP_RAN;
		ran++;
		pi->status = outcome_status(res.outcome);
		pi->message[0] = '\0';
		pi->sqlstate[0] = '\0';
		if (res.outcome != EXEC_APPLIED) {
			snprintf(pi->message, sizeof(pi->message), "%s", res.message);
			snprintf(pi->sqlstate, sizeof(pi->sqlstate), "%s", res.sqlstate);
		}
		if (res.outcome == EXEC_CONN_LOST) {
			snprintf(lost, sizeof(lost), "%s", res.message);
			conn_lost = true;
			break;
		}
		line_ran(w, pis, lps, flags, i, &res);
	}
	in_sync = dec.sync == LINE_IN_SYNC;
	if (conn_lost || !db_ok(exec_db(w->ex))) {
		rc = PASS_DB_DOWN;
		goto out;
	}
	pt_mark(&tm, T_WALK);
	/*
	 * The notes and the status are a projection of what the database now
	 * says: the view reads again the plans this pass wrote, and any other
	 * writer's (their events name them), not every plan.
	 */
	{
		size_t k;
		const char **ids = written_ids(pis, flags, n, &k);

		exec_flush(w->ex);
		got = dbview_catch_up(v, exec_db(w->ex), w->cfg->target, ids, k, &err);
		free(ids);
		if (got < 0) {
			snprintf(lost, sizeof(lost), "%s", err.message);
			rc = PASS_DB_DOWN;
			goto out;
		}
	}
	pt_mark(&tm, T_REFRESH);
	for (size_t i = 0; i < n; i++) {
		struct pinfo *pi = &pis[i];
		enum line_status st;

		fill_from_db(pi, v);
		if (line_status_parse(pi->status, &st) == 0)
			health = line_health_worse(health, line_status_health(st));
		if (pi->sqlstate[0] == '\0' && pi->message[0]) {
			const char *s = strstr(pi->message, "(SQLSTATE ");
			if (s)
				snprintf(pi->sqlstate, sizeof(pi->sqlstate), "%.5s", s + 10);
		}
	}
	if (w->ex) {
		/* the governor's word, ranked with the plans' (line_health_worse) */
		double f;
		const char *g = exec_governor(w->ex, &f);
		if (!strcmp(g, "critical"))
			health = line_health_worse(health, LINE_PAUSED);
		else if (!strcmp(g, "degraded"))
			health = line_health_worse(health, LINE_DEGRADED);
	}
	pt_mark(&tm, T_PROJECT);
	write_notes(d, w, pis, n);
	pt_mark(&tm, T_NOTES);
	publish(d, w, pis, n, health, in_sync);
	pt_mark(&tm, T_PUBLISH);
	pt_log(&tm, w->cfg->target, ran);
	if (in_sync && health == LINE_HEALTHY && !w->last_error[0])
		snprintf(w->settled_tip, sizeof(w->settled_tip), "%s", snap->tip);
out:
	pinfos_free(pis, n);
	free(lps);
	free(outs);
	free(flags);
	if (rc == PASS_DB_DOWN)
		lost_db(d, w, lost[0] ? lost : "the connection was lost");
	return rc;
}

/*
 * accept-drift of a plan that is in drift because no file at the tip has it
 * any more: its removal is accepted. The row stays applied (its steps ran),
 * without a checksum, which add_missing takes as "gone, and that is known";
 * should the file come back, it is checked against the ledger like any plan.
 */
static int
accept_removal(struct worker *w, const char *plan_id, cJSON *res)
{
	const char *params[2] = { w->cfg->target, plan_id };
	const struct repo_snapshot *s = w->snap;
	struct db_error err;
	char msg[1200];
	PGresult *r;
	int n;

	if (db_exec(exec_db(w->ex), &r, &err,
		    "SELECT coalesce(file_path, '') FROM taskslaps.plans WHERE target = $1 AND "
		    "plan_id = $2 AND status = 'drift' AND checksum IS NOT NULL",
		    2, params) < 0) {
		cJSON_AddStringToObject(res, "code", TS_PROTO_E_CONFLICT);
		cJSON_AddStringToObject(res, "message", err.message);
		return -1;
	}
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
	if (db_exec(exec_db(w->ex), NULL, &err,
		    "UPDATE taskslaps.plans SET checksum = NULL, status = 'applied', updated_at = "
		    "now() WHERE target = $1 AND plan_id = $2 AND status = 'drift'",
		    2, params) < 0) {
		cJSON_AddStringToObject(res, "code", TS_PROTO_E_CONFLICT);
		cJSON_AddStringToObject(res, "message", err.message);
		return -1;
	}
	exec_event(w->ex, "plan.ok", plan_id, NULL, NULL, NULL,
		   "removal from the branch accepted by an operator: nothing run, nothing undone");
	exec_flush(w->ex);
	snprintf(msg, sizeof(msg),
		 "plan %s: its removal from the branch is accepted; nothing was run or undone",
		 plan_id);
	cJSON_AddStringToObject(res, "message", msg);
	return 0;
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

void
worker_forget_failures(struct worker *w)
{
	plan_idset_free(w->failed);
	w->failed = NULL;
}

void
worker_state_free(struct worker *w)
{
	worker_forget_failures(w);
	plan_idset_free(w->signers);
	w->signers = NULL;
	repo_snapshot_free(w->snap);
	w->snap = NULL;
	pcache_free(w->pcache);
	w->pcache = NULL;
	dbview_free(w->view);
	w->view = NULL;
	free(w->view_target);
	w->view_target = NULL;
	free(w->repo_key);
	w->repo_key = NULL;
}
