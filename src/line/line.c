/*
 * The line's rules: statuses, transitions, health, sync and the decision
 * of a pass. Pure (line.h).
 */
#include <string.h>

#include "line/line.h"

static const char *const status_names[LINE_STATUS__COUNT] = {
	[LINE_PENDING] = "pending",
	[LINE_RUNNING] = "running",
	[LINE_APPLIED] = "applied",
	[LINE_FAILED] = "failed",
	[LINE_BLOCKED] = "blocked",
	[LINE_DRIFT] = "drift",
	[LINE_RATE_LIMITED] = "rate_limited",
	[LINE_ABORTED] = "aborted",
	[LINE_INVALID] = "invalid",
	[LINE_REVERTED] = "reverted",
	[LINE_REVERTED_EXPAND] = "reverted to expand",
	[LINE_REVERTED_BACKFILL] = "reverted to backfill",
	[LINE_REVERTED_VALIDATE] = "reverted to validate",
};

static const char *const health_names[] = {
	[LINE_HEALTHY] = "healthy",	 [LINE_PROGRESSING] = "progressing",
	[LINE_DEGRADED] = "degraded",	 [LINE_PAUSED] = "paused",
	[LINE_FAILED_HEALTH] = "failed",
};

const char *
line_status_name(enum line_status s)
{
	if ((unsigned)s >= LINE_STATUS__COUNT)
		return "pending";
	return status_names[s];
}

int
line_status_parse(const char *name, enum line_status *out)
{
	for (int s = 0; name && s < LINE_STATUS__COUNT; s++)
		if (!strcmp(name, status_names[s])) {
			*out = (enum line_status)s;
			return 0;
		}
	return -1;
}

bool
line_status_reverted(enum line_status s)
{
	return s == LINE_REVERTED || s == LINE_REVERTED_EXPAND || s == LINE_REVERTED_BACKFILL ||
	       s == LINE_REVERTED_VALIDATE;
}

enum line_status
line_status_reverted_to(int to_wave)
{
	/* the waves in plan.h's order: expand, backfill, validate, contract */
	switch (to_wave) {
	case 0: return LINE_REVERTED_EXPAND;
	case 1: return LINE_REVERTED_BACKFILL;
	case 2: return LINE_REVERTED_VALIDATE;
	default: return LINE_REVERTED;
	}
}

bool
line_status_ran(enum line_status s)
{
	return s == LINE_RUNNING || s == LINE_APPLIED || s == LINE_FAILED || s == LINE_DRIFT ||
	       s == LINE_ABORTED || line_status_reverted(s);
}

const char *
line_sync_name(enum line_sync s)
{
	switch (s) {
	case LINE_IN_SYNC: return "in_sync";
	case LINE_APPLYING: return "applying";
	case LINE_OUT_OF_SYNC: break;
	}
	return "out_of_sync";
}

const char *
line_health_name(enum line_health h)
{
	if ((unsigned)h > LINE_FAILED_HEALTH)
		return "failed";
	return health_names[h];
}

int
line_health_parse(const char *name, enum line_health *out)
{
	for (int h = 0; name && h <= LINE_FAILED_HEALTH; h++)
		if (!strcmp(name, health_names[h])) {
			*out = (enum line_health)h;
			return 0;
		}
	return -1;
}

enum line_health
line_health_worse(enum line_health a, enum line_health b)
{
	return a > b ? a : b;
}

enum line_health
line_status_health(enum line_status s)
{
	switch (s) {
	case LINE_FAILED:
	case LINE_DRIFT:
	case LINE_INVALID: return LINE_FAILED_HEALTH;
	case LINE_ABORTED: return LINE_PAUSED;
	case LINE_BLOCKED:
	case LINE_RATE_LIMITED: return LINE_DEGRADED;
	case LINE_RUNNING: return LINE_PROGRESSING;
	default: return LINE_HEALTHY;
	}
}

/* Not started, or stopped before anything of it ran (or after a failure: failed). */
static bool
queued(enum line_status s)
{
	return s == LINE_PENDING || s == LINE_BLOCKED || s == LINE_RATE_LIMITED ||
	       s == LINE_INVALID;
}

bool
line_transition_ok(enum line_status from, enum line_status to, enum line_cause cause)
{
	if ((unsigned)from >= LINE_STATUS__COUNT || (unsigned)to >= LINE_STATUS__COUNT)
		return false;
	if (from == to)
		return true;
	if (cause == LINE_BY_OPERATOR) {
		/* resume; accept-drift (of an edit, or of a removal) */
		if ((from == LINE_ABORTED || from == LINE_FAILED) && to == LINE_PENDING)
			return true;
		if (from == LINE_DRIFT && (to == LINE_APPLIED || to == LINE_PENDING))
			return true;
	}
	if (cause == LINE_BY_RESTORE && from == LINE_DRIFT)
		return to == LINE_RUNNING || to == LINE_APPLIED;
	/* a file that does not parse is said beside a plan that ran, never over it */
	if (to == LINE_INVALID)
		return queued(from);
	switch (from) {
	case LINE_ABORTED:
	case LINE_DRIFT: return false; /* only an operator's verb leaves them */
	case LINE_APPLIED:
		/* edited or removed; undone by a revert plan */
		return to == LINE_DRIFT || line_status_reverted(to);
	case LINE_RUNNING:
		/* the run's end; pending when the connection went away */
		return to == LINE_APPLIED || to == LINE_FAILED || to == LINE_ABORTED ||
		       to == LINE_DRIFT || to == LINE_BLOCKED || to == LINE_PENDING;
	case LINE_FAILED:
		/* runs again (a new commit, an edit), or its revert settles it */
		return to == LINE_RUNNING || to == LINE_BLOCKED || to == LINE_RATE_LIMITED ||
		       to == LINE_DRIFT || line_status_reverted(to);
	case LINE_PENDING:
	case LINE_BLOCKED:
	case LINE_RATE_LIMITED:
	case LINE_INVALID:
		return to == LINE_RUNNING || to == LINE_BLOCKED || to == LINE_RATE_LIMITED ||
		       to == LINE_PENDING || to == LINE_DRIFT;
	default:
		/* reverted: settled like applied; an edit of it is drift */
		return line_status_reverted(from) && to == LINE_DRIFT;
	}
}

/* (one text at both places is the same checksum: the daemon says so with one pointer) */
static bool
sum_differs(const struct line_plan *p)
{
	return p->has_row && p->db_checksum && p->checksum && p->db_checksum != p->checksum &&
	       p->db_checksum[0] && strcmp(p->db_checksum, p->checksum) != 0;
}

static bool
sum_same(const struct line_plan *p)
{
	return p->has_row && p->db_checksum && p->checksum &&
	       (p->db_checksum == p->checksum || !strcmp(p->db_checksum, p->checksum));
}

/* Applied, in drift or reverted: what ran is the database's checksum. */
static bool
holds_history(enum line_status s)
{
	return s == LINE_APPLIED || s == LINE_DRIFT || line_status_reverted(s);
}

/* The valid revert plan after plans[i] that reverts it, or LINE_NONE. */
static size_t
reverted_later(const struct line_plan *plans, size_t n, size_t i)
{
	for (size_t k = i + 1; k < n; k++)
		if (plans[k].valid && plans[k].is_revert && plans[k].reverts == i)
			return k;
	return LINE_NONE;
}

static void
set(struct line_verdict *v, enum line_status st, enum line_why why, size_t ref, bool record)
{
	v->status = st;
	v->why = why;
	v->ref = ref;
	v->record = record;
}

/*
 * The verdicts that do not depend on the queue, for a plan behind a stopped
 * line: drift (applied, and the file's checksum is another) or blocked
 * (policy, signature). Returns true when the plan got one.
 */
static bool
verdict_now(const struct line_plan *p, struct line_verdict *v)
{
	if (holds_history(p->db) && p->has_row && sum_differs(p)) {
		set(v, LINE_DRIFT, LINE_WHY_CHECKSUM, LINE_NONE, p->db != LINE_DRIFT);
		return true;
	}
	/* applied, aborted, in drift...: a block would go over what ran */
	if (!p->blocked || (p->has_row && !line_transition_ok(p->db, LINE_BLOCKED, LINE_BY_PASS)))
		return false;
	set(v, LINE_BLOCKED, LINE_WHY_POLICY, LINE_NONE, !p->has_row || p->db != LINE_BLOCKED);
	return true;
}

/*
 * The head's verdict TO, unless the transition table keeps the plan where it
 * is (a restored drift stays drift while it is blocked): then that.
 */
static void
verdict_or_stay(const struct line_plan *p, struct line_verdict *v, enum line_status to,
		enum line_why why, size_t ref)
{
	if (p->has_row && !line_transition_ok(p->db, to, LINE_BY_PASS))
		set(v, p->db, LINE_WHY_DB, LINE_NONE, false);
	else
		set(v, to, why, ref, !p->has_row || p->db != to);
}

/*
 * The plan at the head of the line, not applied as it is: blocked (out of
 * order, policy, signature, a rate limit that could not be checked), rate
 * limited, failed at this tip, or what the executor would find (drift,
 * aborted). Returns true when it does not run; else it is the next.
 */
static bool
verdict_head(const struct line_config *cfg, const struct line_plan *plans, size_t n, size_t i,
	     struct line_verdict *v)
{
	const struct line_plan *p = &plans[i];
	enum line_why blocked = p->blocked ? LINE_WHY_POLICY : LINE_WHY_NONE;
	size_t ref = LINE_NONE;

	if (!p->has_row || p->db != LINE_APPLIED) {
		/*
		 * sorts before a plan already applied: merged from a parallel
		 * branch. Not a revert plan: one that ran before its turn was the
		 * remedy of a failure (the gate), and the plans behind it keep theirs.
		 */
		for (size_t k = i + 1; k < n; k++) {
			if (!plans[k].valid || plans[k].is_revert || !plans[k].has_row ||
			    plans[k].db != LINE_APPLIED)
				continue;
			ref = k;
			if (cfg->out_of_order == LINE_OOO_REFUSE)
				blocked = LINE_WHY_OUT_OF_ORDER;
			else
				v->ooo_event = !p->has_row;
			break;
		}
		if (!blocked && p->rate == LINE_RATE_UNKNOWN)
			blocked = LINE_WHY_RATE_UNKNOWN;
		if (!blocked && p->rate == LINE_RATE_OVER) {
			verdict_or_stay(p, v, LINE_RATE_LIMITED, LINE_WHY_RATE_OVER, LINE_NONE);
			return true;
		}
		if (p->has_row && p->db == LINE_FAILED && p->failed_here) {
			set(v, LINE_FAILED, LINE_WHY_FAILED_HERE, LINE_NONE, false);
			return true;
		}
	}
	/* what the executor finds first: an edit of what ran, then an abort, then a block */
	if (sum_differs(p) && (holds_history(p->db) || p->ledger_stale)) {
		set(v, LINE_DRIFT, holds_history(p->db) ? LINE_WHY_CHECKSUM : LINE_WHY_STALE,
		    LINE_NONE, p->db != LINE_DRIFT);
		return true;
	}
	if (p->has_row && p->db == LINE_ABORTED) {
		set(v, LINE_ABORTED, LINE_WHY_ABORTED, LINE_NONE, false);
		return true;
	}
	if (blocked) {
		verdict_or_stay(p, v, LINE_BLOCKED, blocked, ref);
		return true;
	}
	v->ref = ref;
	return false;
}

void
line_decide(const struct line_config *cfg, const struct line_plan *plans, size_t n,
	    struct line_verdict *out, struct line_decision *d)
{
	bool stopped = false, in_sync = true;
	size_t gate = LINE_NONE; /* a failed plan's revert, which may run behind it */
	enum line_health health = LINE_HEALTHY;

	d->next = LINE_NONE;
	for (size_t i = 0; i < n; i++) {
		const struct line_plan *p = &plans[i];
		struct line_verdict *v = &out[i];
		size_t g;

		memset(v, 0, sizeof(*v));
		v->ref = LINE_NONE;
		if (d->next != LINE_NONE) {
			/* behind the plan that runs now: as the database has it */
			v->waits = true;
			set(v, p->has_row ? p->db : LINE_PENDING,
			    p->has_row ? LINE_WHY_DB : LINE_WHY_WAITS, LINE_NONE, false);
		} else if (p->missing) {
			/* queue-free verdicts: recorded wherever they are */
			set(v, LINE_DRIFT, LINE_WHY_MISSING, LINE_NONE,
			    p->has_row && (p->db == LINE_APPLIED || line_status_reverted(p->db)));
			stopped = true;
			gate = LINE_NONE; /* a revert is the remedy of its plan, not of this */
		} else if (!p->valid) {
			set(v, LINE_INVALID, LINE_WHY_INVALID, LINE_NONE, true);
			stopped = true;
			gate = LINE_NONE;
		} else if (p->has_row && line_status_reverted(p->db) && sum_same(p)) {
			/* undone by a revert plan: settled like applied, it never runs again */
			set(v, p->db, LINE_WHY_SETTLED, LINE_NONE, false);
			continue;
		} else if (!stopped && p->has_row && p->db == LINE_FAILED &&
			   (g = reverted_later(plans, n, i)) != LINE_NONE) {
			/* failed, and reverted later in the line: not retried, its revert runs */
			set(v, LINE_FAILED, LINE_WHY_REVERT_NEXT, g, false);
			gate = g;
			stopped = true;
		} else if (stopped && i != gate) {
			if (verdict_now(p, v))
				gate = LINE_NONE; /* it stops the line on its own account */
			else
				set(v, p->has_row ? p->db : LINE_PENDING,
				    !p->has_row		    ? LINE_WHY_WAITS
				    : p->db == LINE_APPLIED ? LINE_WHY_SETTLED
							    : LINE_WHY_DB,
				    LINE_NONE, false);
		} else if (p->has_row && p->db == LINE_APPLIED && sum_same(p)) {
			/* the revert at the gate, applied: the line goes on after it */
			stopped = false;
			set(v, LINE_APPLIED, LINE_WHY_SETTLED, LINE_NONE, false);
		} else {
			stopped = verdict_head(cfg, plans, n, i, v);
			if (!stopped) {
				set(v, LINE_RUNNING, LINE_WHY_RUNS, v->ref, false);
				d->next = i;
			}
		}
		if (v->status != LINE_APPLIED && !line_status_reverted(v->status))
			in_sync = false;
		health = line_health_worse(health, line_status_health(v->status));
	}
	d->sync = d->next != LINE_NONE ? LINE_APPLYING : in_sync ? LINE_IN_SYNC : LINE_OUT_OF_SYNC;
	d->health = health;
}
