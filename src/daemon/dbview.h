/*
 * The daemon's view of the database's word on a target's plans: each plan's
 * row, its steps in the ledger and its last plan.* event. Kept between
 * passes and brought up to date by reading only the plans that changed
 * since: every write to a plan's row or ledger comes with an event naming
 * the plan, committed in the same transaction (the executor's, the pass's
 * own verdicts, the operator verbs of the daemon and of `taskslapsctl --db`:
 * exec_verb_begin), so the events with an id over the
 * last one read name every plan to read again (docs/design.md, "A pass").
 *
 * An event whose id was drawn before, but whose transaction commits after,
 * the read of a higher id (an operator verb of `taskslapsctl --db` writing
 * while the daemon reads) is not lost: the ids a read skips are kept as
 * holes, and every later read looks for them again, for a minute (the
 * program's transactions that draw one commit within milliseconds; a
 * transaction held open longer than that by hand is not followed). The
 * first read looks for holes among
 * the last 256 ids.
 */
#ifndef TS_DAEMON_DBVIEW_H
#define TS_DAEMON_DBVIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "db/db.h"

/* One plan as the database has it; strings are "" when the column is NULL. */
struct dbplan {
	char *id;
	bool has_row; /* a row in taskslaps.plans */
	char *status, *checksum, *completed_at, *file_path, *max_hazard, *commit_sha, *author;
	size_t steps;  /* its ledger steps applied or already present */
	char *ev_type; /* its last plan.* event, or NULL */
	char *ev_msg;  /* that event's message ("" when none) */
	bool ooo;      /* a plan.out_of_order event names it */
	char **shas;   /* its step_sha in the ledger, any outcome */
	size_t nshas;
	size_t at; /* its index in dbview_all */
	/*
	 * Moves whenever what the view says of the plan may have changed: it
	 * was read again, or a step id of its ledger was taken by another
	 * plan's (dbview_ledger_owner). Never the same for two entries, even
	 * of two views: a memo of an entry holds while its gen does.
	 */
	unsigned long long gen;
};

struct dbview;

/* An empty view (never loaded: dbview_catch_up reads all). dbview_free(NULL) is a no-op. */
struct dbview *dbview_new(void);
void dbview_free(struct dbview *v);

/*
 * Brings the view up to date for target: the first time (or after
 * dbview_forget) every plan is read; afterwards one indexed query reads the
 * plans named by events newer than the last one seen, and only those plans
 * are read again, with the EXTRA ids given (plans the caller wrote). Returns
 * the number of plans read again (0: nothing changed), or -1 with err (the
 * view is then forgotten, so the next call reads all).
 */
int dbview_catch_up(struct dbview *v, struct db *db, const char *target, const char *const *extra,
		    size_t nextra, struct db_error *err);
/* Forgets what was read: the next dbview_catch_up reads every plan (a new connection). */
void dbview_forget(struct dbview *v);

/*
 * Never the same for two views, and moved whenever the view forgets what it
 * read: while it stays, an entry dbview_get gave stays where it is.
 */
unsigned long long dbview_serial(const struct dbview *v);

/*
 * The gen of the entry at index at of dbview_all (0 when there is none),
 * read from an array of them side by side: a memo checked for every plan
 * of a pass costs no visit to each entry.
 */
unsigned long long dbview_gen_at(const struct dbview *v, size_t at);

/* The plan id's entry, or NULL (borrowed, valid until the next catch-up). */
const struct dbplan *dbview_get(const struct dbview *v, const char *id);
/* Whether a ledger row has step_sha (any plan, any outcome). */
bool dbview_in_ledger(const struct dbview *v, const char *step_sha);
/*
 * The plan whose ledger row has step_sha, as dbview_in_ledger finds it, or
 * NULL: while that plan's gen stays, so does the answer.
 */
const struct dbplan *dbview_ledger_owner(const struct dbview *v, const char *step_sha);
/* The plans in the order they were first read; n in *n (borrowed). */
struct dbplan *const *dbview_all(const struct dbview *v, size_t *n);

#endif
