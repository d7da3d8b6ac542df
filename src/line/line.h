/*
 * The line's rules, pure: a plan's status, the transitions between them,
 * health and sync, and the decision of a pass (what every plan at the tip
 * is, and which one runs next) from the plans at the tip, the database's
 * view of them and the configuration. No I/O: the daemon, `apply` and the
 * dry run gather the facts and act on the answer (docs/design.md, "A pass";
 * docs/contract.md §4, §5).
 */
#ifndef TS_LINE_H
#define TS_LINE_H

#include <stdbool.h>
#include <stddef.h>

/* A plan's status; the names are the status JSON's and the database's (plan_statuses()). */
enum line_status {
	LINE_PENDING = 0,
	LINE_RUNNING,
	LINE_APPLIED,
	LINE_FAILED,
	LINE_BLOCKED,
	LINE_DRIFT,
	LINE_RATE_LIMITED,
	LINE_ABORTED,
	LINE_INVALID,
	LINE_REVERTED,		/* undone by a revert plan, down to nothing */
	LINE_REVERTED_EXPAND,	/* "reverted to expand" */
	LINE_REVERTED_BACKFILL, /* "reverted to backfill" */
	LINE_REVERTED_VALIDATE, /* "reverted to validate" */
	LINE_STATUS__COUNT
};

enum line_sync { LINE_IN_SYNC = 0, LINE_OUT_OF_SYNC, LINE_APPLYING };

/* In order of rank: a later one is worse (line_health_worse). */
enum line_health {
	LINE_HEALTHY = 0,
	LINE_PROGRESSING,
	LINE_DEGRADED,
	LINE_PAUSED,
	LINE_FAILED_HEALTH
};

/* Who moves a plan from one status to another. */
enum line_cause {
	LINE_BY_PASS = 0, /* a pass of the line: the daemon, `apply`, the executor */
	LINE_BY_OPERATOR, /* an operator's verb: resume, accept-drift, abort */
	LINE_BY_RESTORE	  /* the file at the tip is again the one that ran (docs/contract.md §4) */
};

/* The status's name ("reverted to expand"...), never NULL. */
const char *line_status_name(enum line_status s);

/* Parses a status name: 0 and *out, or -1 for a name that is none (out untouched). */
int line_status_parse(const char *name, enum line_status *out);

/* reverted, or reverted to a wave: settled like applied, never run again. */
bool line_status_reverted(enum line_status s);

/* The reverted status a revert plan down to wave TO_WAVE (-1: all of it) leaves. */
enum line_status line_status_reverted_to(int to_wave);

/* Something of the plan ran: applied, failed, aborted, drift, running, reverted. */
bool line_status_ran(enum line_status s);

const char *line_sync_name(enum line_sync s);
const char *line_health_name(enum line_health h);
int line_health_parse(const char *name, enum line_health *out);

/* The worse of two healths: failed > paused > degraded > progressing > healthy. */
enum line_health line_health_worse(enum line_health a, enum line_health b);

/* What one plan's status says of the target's health. */
enum line_health line_status_health(enum line_status s);

/*
 * Whether a plan may move from FROM to TO by CAUSE (a plan with no row is
 * FROM LINE_PENDING). Only operator verbs leave aborted and drift (and
 * drift, the file restored to what ran: it runs, its steps skipped); invalid
 * never goes over a plan that ran; applied and reverted move only to drift
 * (and applied to reverted, by a revert plan). Staying is always allowed.
 */
bool line_transition_ok(enum line_status from, enum line_status to, enum line_cause cause);

#define LINE_NONE ((size_t)-1)

enum line_rate {
	LINE_RATE_UNCHECKED = 0, /* not asked (no chaos rate limit, or not yet) */
	LINE_RATE_UNDER,
	LINE_RATE_OVER,
	LINE_RATE_UNKNOWN /* could not be told: blocks, a failed check lets nothing through */
};

/* One plan of the line, in line order: the facts a pass gathers. */
struct line_plan {
	const char *id;
	bool valid;	      /* parsed, and its id is the first of its kind at the tip */
	bool missing;	      /* no file at the tip has it: a stand-in for an applied plan */
	const char *checksum; /* at the tip; NULL when not valid */
	bool blocked;	      /* the branch's policy, or a missing signature (H3) */
	enum line_rate rate;
	bool is_revert; /* a valid revert plan, of the plan at index reverts */
	size_t reverts;
	/* the database */
	bool has_row;
	enum line_status db;	 /* LINE_PENDING when there is no row */
	const char *db_checksum; /* "" or NULL when none (an accepted removal) */
	bool ledger_stale;	 /* a ledger step of the plan that the file no longer has */
	bool failed_here;	 /* failed in this pass's tip: not retried until a new commit */
};

enum line_ooo { LINE_OOO_RUN = 0, LINE_OOO_REFUSE };

struct line_config {
	enum line_ooo out_of_order;
};

/* Why a plan has the status it is shown with, for its message. */
enum line_why {
	LINE_WHY_NONE = 0,
	LINE_WHY_SETTLED,      /* applied (or reverted) and unchanged */
	LINE_WHY_DB,	       /* as the database has it (its last event says why) */
	LINE_WHY_WAITS,	       /* waits for the plans before it */
	LINE_WHY_INVALID,      /* the file does not parse (or repeats an id) */
	LINE_WHY_MISSING,      /* applied, and no file at the tip has it */
	LINE_WHY_CHECKSUM,     /* applied, and the file's checksum is another */
	LINE_WHY_STALE,	       /* a step in the ledger was edited */
	LINE_WHY_POLICY,       /* blocked by policy or signature */
	LINE_WHY_OUT_OF_ORDER, /* blocked: sorts before plan ref, applied (refuse) */
	LINE_WHY_RATE_OVER,    /* the chaos rate limit */
	LINE_WHY_RATE_UNKNOWN, /* blocked: the rate limit could not be checked */
	LINE_WHY_FAILED_HERE,  /* failed at this tip: not retried */
	LINE_WHY_ABORTED,      /* aborted: only `resume` lets it run again */
	LINE_WHY_REVERT_NEXT,  /* failed; its revert, plan ref, runs */
	LINE_WHY_RUNS	       /* the next plan to run */
};

/* The answer for one plan. */
struct line_verdict {
	enum line_status status; /* what the status document and the notes say */
	enum line_why why;
	size_t
	    ref; /* the plan WHY names (or the applied plan a runner sorts before), or LINE_NONE */
	bool record;	/* a verdict to record now (event; the row when line_transition_ok) */
	bool ooo_event; /* runs out of order (out_of_order: run): said once, before it runs */
	bool waits;	/* after the next plan to run: not judged yet */
};

struct line_decision {
	size_t next; /* the plan to run now, or LINE_NONE */
	enum line_sync sync;
	enum line_health health; /* of the plans' statuses only (not the governor's) */
};

/*
 * Decides a pass over N plans in line order: OUT[i] for each, and *D.
 * A caller runs D->next (a chaos plan's rate is checked first: with
 * LINE_RATE_UNCHECKED the plan counts as under the limit, so the caller
 * checks it, sets rate, and asks again), writes the result into its view
 * (db, db_checksum, failed_here) and asks again until next is LINE_NONE.
 */
void line_decide(const struct line_config *cfg, const struct line_plan *plans, size_t n,
		 struct line_verdict *out, struct line_decision *d);

#endif
