/*
 * The S.L.A.P.S. executor: applies planned plans to a live database under the
 * rails of docs/contract.md §5 — runner lock, idempotency ledger, transactional steps
 * with proved obligations, CONCURRENTLY steps outside transactions, batched
 * and paced backfills with checkpoints, lock-timeout retries, a health
 * governor, abort — and records every transition as an event.
 *
 * One struct exec per database and run. It is driven from one thread;
 * exec_abort may be called from another thread or a signal handler.
 */
#ifndef TS_EXEC_H
#define TS_EXEC_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "plan/plan.h"

/* Governor thresholds (docs/contract.md §5 seed values are the defaults). */
struct governor_config {
	int degraded_active;	   /* active client sessions above this: degraded (50) */
	int critical_active;	   /* ... critical (150) */
	int degraded_errors;	   /* step errors in the last 5 minutes above this (5) */
	int degraded_lock_waiters; /* sessions waiting for a lock (10) */
	int critical_lock_waiters; /* (50) */
	int64_t degraded_lag_ms;   /* replication replay lag (5000) */
	int64_t critical_lag_ms;   /* (60000) */
	int degraded_wal_ready;	   /* WAL segments waiting to be archived (16) */
	int64_t degraded_xact_s;   /* a transaction on the target table older than this (60) */
	int64_t critical_xact_s;   /* (600) */
	int probe_interval_ms;	   /* re-probe while critical (1000) */
};

void governor_config_default(struct governor_config *g);

/* What the caller sees of each event, as it is recorded. */
struct exec_event {
	const char *type;     /* "step.ok", ... (docs/contract.md §6) */
	const char *plan_id;  /* may be NULL */
	const char *wave;     /* may be NULL */
	const char *step_sha; /* may be NULL */
	const char *message;
	const char *metrics; /* JSON object text, or NULL */
	/* progress of a backfill, for live views (0 when unknown) */
	int64_t rows_done, rows_total;
	double rate;
};

typedef void (*exec_event_fn)(const struct exec_event *ev, void *arg);

struct exec_config {
	const char *target;	 /* name of the target ("default") */
	const char *applied_by;	 /* who applies, for the ledger */
	int lock_retries;	 /* retries of a lock timeout (10) */
	int runner_lock_wait_ms; /* how long to wait as standby for the runner lock; <0 forever */
	struct governor_config governor;
	exec_event_fn on_event; /* optional: called after each event is recorded */
	void *event_arg;
};

void exec_config_default(struct exec_config *c);

/* Where a plan came from: the commit that last changed its file, and its author. */
struct exec_plan_meta {
	const char *commit_sha; /* NULL outside git */
	const char *author;	/* e-mail, or NULL */
};

/*
 * How a plan's run ended. The zero value is "nobody set it": a result left
 * unfilled never reads as applied, and exec_run_plan never returns it.
 */
enum exec_outcome {
	EXEC_UNSET = 0, /* not filled in (an internal error if it is seen) */
	EXEC_APPLIED,	/* every step applied or already there */
	EXEC_FAILED,	/* a step failed; see the error */
	EXEC_BLOCKED,	/* policy refused the plan */
	EXEC_DRIFT,	/* an applied plan was edited */
	EXEC_ABORTED,	/* aborted by an operator (or still marked aborted) */
	EXEC_CONN_LOST, /* the database went away: retry after reconnecting */
};

struct exec_result {
	enum exec_outcome outcome;
	size_t steps_total, steps_done, steps_skipped;
	char sqlstate[6];
	char message[1536]; /* why it failed, with the evidence (the SQLSTATE is not repeated here)
			     */
	char step_sha[65];  /* the step that failed, or "" */
};

struct exec;

/*
 * Connects (work connection + runner-lock connection). Returns 0 or -1 with
 * err; a session whose search_path lists a schema before pg_catalog is
 * refused (see exec.c).
 */
int exec_open(struct exec **out, const char *conninfo, const struct exec_config *cfg,
	      struct db_error *err);
void exec_close(struct exec *ex);
/*
 * Sends the events still queued (they ride with the next statement
 * otherwise): before a caller waits with nothing more to run. exec_close,
 * the end of exec_run_plan and every wait inside the executor do it too.
 */
void exec_flush(struct exec *ex);
/*
 * Reads, in one query, which of the target's plans are applied and with which
 * checksum, so that exec_run_plan answers "applied and unchanged" for them
 * without asking the database again; and when the first other plan is about
 * to run, in one round trip, which plan ids the database has a row or a
 * ledger row of, and whether this login may record plans, events and ledger
 * rows, so that a plan the database knows nothing of runs without its state
 * being read first. Only while the runner lock is held (no one else can
 * change that meanwhile), and for one run of a directory (taskslapsctl
 * apply); exec_run_plan still reads the state of every other plan. Returns 0
 * or -1 with err.
 */
int exec_prefetch_applied(struct exec *ex, struct db_error *err);

/*
 * Installs or upgrades the taskslaps schema; unless force, only when it is
 * not already the one this binary carries (db_schema_install).
 */
int exec_install_schema(struct exec *ex, bool force, struct db_error *err);

/*
 * Takes the runner lock (pg_try_advisory_lock, polled with backoff: never a
 * blocking wait). Returns 1 when held, 0 when another runner holds it after
 * waiting cfg->runner_lock_wait_ms (its pid in *holder), -1 on error.
 */
int exec_runner_lock(struct exec *ex, int *holder, struct db_error *err);
void exec_runner_unlock(struct exec *ex);

/*
 * Applies one planned plan (plan_apply_policy already called). Returns 0 and
 * fills res whatever the outcome; -1 only for a database error outside any
 * step (res->message says what).
 */
int exec_run_plan(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
		  struct exec_result *res);

/*
 * Dry run: checks the plan against the database without changing anything —
 * drift, prechecks of steps not yet applied, primary keys of backfill tables
 * — and estimates each wave's duration. Prints nothing; fills a JSON report
 * (caller frees) with per-step status and per-wave estimate_ms.
 */
int exec_dry_run(struct exec *ex, const struct plan *p, char **report_json,
		 struct exec_result *res);

/* Asks the run to stop: cancels the running statement. Async-signal-safe. */
void exec_abort(struct exec *ex);
/* Whether an abort was asked for. */
bool exec_aborting(const struct exec *ex);
/*
 * Asks the run to stop for a shutdown: the current step or backfill batch
 * finishes (or exec_cancel rolls it back), and the plan is left pending, not
 * aborted, so it continues on the next start. Async-signal-safe.
 */
void exec_stop(struct exec *ex);
/* Cancels the running statement only (after exec_stop, when the grace time is over). */
void exec_cancel(struct exec *ex);

/* Sets a plan's status to pending again after an abort (taskslapsctl resume). */
int exec_resume(struct exec *ex, const char *plan_id, struct db_error *err);
/* What accept-drift did to a plan. */
struct exec_accepted {
	char status[16]; /* the plan's status after it: "applied", "pending", ... */
	size_t pending;	 /* steps of the file that never ran: they run next */
	size_t accepted; /* steps edited after they ran, recorded as accepted */
};

/*
 * accept-drift: records the file's checksum as plan P's. A step edited after
 * it ran (a ledger step of the plan sits at its wave and index) is recorded
 * in the ledger as 'accepted' and does not run; a step at a position where
 * nothing ran stays pending, and then so does the plan, so it runs next. Runs
 * nothing itself. *OUT is written on success. Returns 0, or -1 with ERR set.
 */
int exec_accept_drift(struct exec *ex, const struct plan *p, struct exec_accepted *out,
		      struct db_error *err);
/* What accept-drift did, in one line for the operator, into BUF of SIZE bytes. */
void exec_accepted_text(const struct plan *p, const struct exec_accepted *acc, char *buf,
			size_t size);

/* Records an event (also NOTIFY by trigger) and tells cfg->on_event. */
void exec_event(struct exec *ex, const char *type, const char *plan_id, const char *wave,
		const char *step_sha, const char *metrics, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/*
 * An operator's write to a plan's row and the event that names it, in one
 * transaction, so that a reader that follows events to know which rows to
 * read again (the daemon's kept view) never sees the row without its event:
 * exec_verb_begin, the write, exec_verb_event, exec_verb_commit (which tells
 * the event to cfg->on_event once committed). Any error rolls back; -1 with
 * err.
 */
int exec_verb_begin(struct exec *ex, struct db_error *err);
int exec_verb_event(struct exec *ex, const char *type, const char *plan_id, const char *msg,
		    struct db_error *err);
int exec_verb_commit(struct exec *ex, const char *type, const char *plan_id, const char *msg,
		     struct db_error *err);
/* Rolls an operator's write back (after an error of the caller's own). */
void exec_verb_rollback(struct exec *ex);

/* Records a plan's status (upsert into taskslaps.plans). */
int exec_plan_status(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
		     const char *status, struct db_error *err);

/* The outcome's name as users see it ("applied", "failed", ...; "unset"). */
const char *exec_outcome_name(enum exec_outcome o);
/*
 * Whether a plan's recorded status says a revert plan undid it ("reverted",
 * "reverted to <wave>"): settled like applied, it never runs again.
 */
bool exec_status_reverted(const char *status);
/* The governor's state ("healthy", "degraded", "critical") and rate factor. */
const char *exec_governor(const struct exec *ex, double *factor);
/* The work connection (borrowed), for readers of the audit tables. */
struct db *exec_db(struct exec *ex);

#endif
