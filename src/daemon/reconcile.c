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

#include "daemon/reconcile_int.h"
#include "line/line.h"
#include "plan/plan_dir.h"
#include "repo/repo.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strbuf.h"

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
	/* the last snapshot holds the old repository's objects (its tree): it goes first */
	repo_snapshot_free(w->snap);
	w->snap = NULL;
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
line_fill(struct worker *w, struct pinfo *pis, size_t i, const struct dbview *v,
	  struct line_plan *lp)
{
	struct pinfo *pi = &pis[i];
	unsigned long long gen = 0;
	struct pcache_ent *e = pi_memo(pi, v, &gen);

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
	pi->sum_same = -1;
	if (e && e->line_gen && e->line_gen == gen) {
		/* the view's entry as the last pass read it: its row's facts, kept */
		if (e->line_db_checksum) {
			lp->has_row = true;
			lp->db = e->line_db;
			pi->sum_same = e->line_sum_same;
			/* the same text: the plan's own, which the core compares at no cost */
			lp->db_checksum = e->line_sum_same ? lp->checksum : e->line_db_checksum;
		}
	} else {
		const struct dbplan *row = pi_row(pi);

		if (row) {
			lp->has_row = true;
			/* the CHECK constraint allows nothing else; were it another, it never ran
			 */
			if (line_status_parse(row->status, &lp->db) < 0)
				lp->db = LINE_PENDING;
			lp->db_checksum = row->checksum;
			pi->sum_same = pi->p && !strcmp(row->checksum, pi->p->checksum);
		}
		if (e) {
			e->db_at = pi->dbp->at;
			e->line_gen = pi->dbp->gen;
			e->line_db = lp->db;
			e->line_db_checksum = row ? row->checksum : NULL;
			e->line_sum_same = pi->sum_same > 0;
		}
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
	    (lp->db == LINE_ABORTED ||
	     ((lp->db == LINE_APPLIED || line_status_reverted(lp->db)) &&
	      (pi->sum_same >= 0 ? pi->sum_same > 0 : !strcmp(lp->db_checksum, pi->p->checksum)))))
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
			pi_msgf(pi, "%s", db_message(v, pi->id));
		break;
	case LINE_WHY_DB:
		if (out->status != LINE_APPLIED)
			pi_msgf(pi, "%s", db_message(v, pi->id));
		break;
	case LINE_WHY_WAITS: pi_msgf(pi, "waits for the plans before it"); break;
	case LINE_WHY_CHECKSUM:
		pi_msgf(pi,
			"plan %s was applied with checksum %.16s but the file now has %.16s: "
			"applied plans are immutable; restore the file, or run `taskslapsctl "
			"accept-drift %s`",
			pi->id, db_checksum(v, pi->id), pi->p->checksum, pi->id);
		break;
	case LINE_WHY_STALE:
		pi_msgf(pi,
			"plan %s was edited after some of its steps were applied: applied steps "
			"are immutable; restore the file, or run `taskslapsctl accept-drift %s`",
			pi->id, pi->id);
		break;
	case LINE_WHY_POLICY:
		pi_msgf(pi, "%s",
			pi->p && pi->p->blocked_reason ? pi->p->blocked_reason : "blocked");
		break;
	case LINE_WHY_OUT_OF_ORDER:
		pi_msgf(pi,
			"out of order: sorts before %s, which is already applied (out_of_order: "
			"refuse)",
			pis[out->ref].id);
		break;
	case LINE_WHY_RATE_OVER:
		pi_msgf(pi,
			"%s already has %d plans in the last 24 h on this chaos branch; retried "
			"when the window allows",
			pi->rate_note ? pi->rate_note : "this author", chaos_max);
		break;
	case LINE_WHY_RATE_UNKNOWN:
		pi_msgf(pi,
			"the chaos rate limit could not be checked (%s); blocked until it can be",
			pi->rate_note ? pi->rate_note : "");
		break;
	case LINE_WHY_FAILED_HERE:
		pi_msgf(pi,
			"%.1400s (not retried until a new commit, `taskslapsctl reconcile` or "
			"`resume`)",
			db_message(v, pi->id));
		break;
	case LINE_WHY_ABORTED:
		pi_msgf(pi, "plan %s is aborted; `taskslapsctl resume %s` lets it run again",
			pi->id, pi->id);
		break;
	case LINE_WHY_REVERT_NEXT:
		pi_msgf(pi, "%.1400s (its revert %s runs next)", db_message(v, pi->id),
			pis[out->ref].id);
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
		exec_event(w->ex, ev, pi->id, NULL, NULL, NULL, "%s", pi_msg(pi));
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
	const struct dbplan *row;

	(void)v;
	if (out->record || !lp->has_row || lp->db != out->status || pi->missing)
		return false;
	if (!(row = pi_row(pi)))
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
		pi_msgf(t, "%s by plan %s", t->status, pi->id);
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
	if (w->standby_logged && w->view) {
		/*
		 * Another runner had the database: what it wrote is read whole,
		 * not from the events since the last read (a runner cut off
		 * between a row and its event leaves no event to follow).
		 */
		dbview_forget(w->view);
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
		pi_msgf(pi, "%s", "");
		pi->sqlstate[0] = '\0';
		if (res.outcome != EXEC_APPLIED) {
			pi_msgf(pi, "%s", res.message);
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
	/* a plan the view had no entry for may have one now */
	for (size_t i = 0; i < n; i++)
		if (!pis[i].dbp)
			pis[i].dbp = dbview_get(v, pis[i].id);
	pt_mark(&tm, T_REFRESH);
	for (size_t i = 0; i < n; i++) {
		struct pinfo *pi = &pis[i];
		enum line_status st;

		fill_from_db(pi, v);
		if (line_status_parse(pi->status, &st) == 0)
			health = line_health_worse(health, line_status_health(st));
		if (pi->sqlstate[0] == '\0' && pi->message) {
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
	if (ran)
		publish_ran(d, w, pis, n);
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
	free(w->plans_items);
	w->plans_items = NULL;
	w->nplans_items = 0;
	free(w->repo_key);
	w->repo_key = NULL;
}
