/* Internal to the worker: the state one reconciliation pass keeps for the next. */
#ifndef TS_DAEMON_WORKER_INT_H
#define TS_DAEMON_WORKER_INT_H

#include "daemon/daemon.h"
#include "proto/proto.h"
#include "taskslaps/proto.h"

struct repo;
struct repo_snapshot;
struct dbview;

enum pass_result { PASS_OK, PASS_DB_DOWN, PASS_STANDBY, PASS_ERROR };

struct worker {
	struct config *cfg; /* borrowed from the daemon for this pass */
	struct exec *ex;
	struct repo *repo;
	char *repo_key; /* repository + branch the repo was opened for */
	char *applied_by;
	bool db_down_logged;
	bool connected; /* this pass had the database: a loss starts the backoff over */
	bool standby_logged;
	char last_error[512];
	struct repo_snapshot *snap; /* the last tip read, for accept-drift */
	/*
	 * Plans that failed at failed_tip: not tried again on every poll (each try
	 * is a burst of failure events and counts against the governor) but when
	 * a new commit arrives — a fix — or an operator runs reconcile or resume.
	 */
	struct plan_idset *failed;
	char failed_tip[41];
	/* commit -> the fingerprint of the key that signed it, or "": for the rate limit */
	struct plan_idset *signers;
	/*
	 * The tip of the last pass that ended in sync and healthy ("" when the
	 * last did not): a timer pass that finds the same tip has nothing to do
	 * and stops after reading the ref, so an idle daemon costs nothing
	 * whatever the number of plans. full_pass: this pass was asked for (a
	 * push seen, a request, a job, a reload): it reads everything.
	 */
	char settled_tip[41];
	bool full_pass;
	/* every plan file at the tip, parsed once per blob (reconcile_parse.c) */
	struct pcache *pcache;
	/*
	 * The database's view of the target's plans (dbview.h), kept between
	 * passes for view_target; forgotten with the executor's connection.
	 */
	struct dbview *view;
	char *view_target;
	/* the "plans" array this worker last put in the status document (reconcile_out.c) */
	cJSON *plans_doc;
	/* its items, in order: a pass that changes none leaves d->plans_gen alone */
	cJSON **plans_items;
	size_t nplans_items;
	/*
	 * Where the notes ref pointed after this worker last wrote notes ("":
	 * not yet): moved by another hand, every note is written again.
	 */
	char notes_id[41];
};

void worker_forget_failures(struct worker *w);
struct pcache;
void pcache_free(struct pcache *c);

/* worker.c: connects the executor if needed; false when the database is away. */
bool ensure_exec(struct daemon *d, struct worker *w);
/*
 * Closes the worker's executor (w->ex may be NULL), after taking it out of
 * d->ex under mu: the only way the worker closes one, so the main thread,
 * which uses d->ex under mu, never holds a closed executor.
 */
void worker_drop_exec(struct daemon *d, struct worker *w);

/* reconcile.c */
int worker_pass(struct daemon *d, struct worker *w);
/* Runs a queued request; fills res with "message" (and "code" on failure). 0 or -1. */
int worker_job(struct daemon *d, struct worker *w, const struct job *j, cJSON *res);
void worker_state_free(struct worker *w);

/* worker.c */
void iso_now(char *buf, size_t n);
/* Status document setters; st_set_str needs mu held, st_set takes it. */
void st_set_str(struct daemon *d, const char *key, const char *v);
void st_set(struct daemon *d, const char *key, const char *v);

#endif
