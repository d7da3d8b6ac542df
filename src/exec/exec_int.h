/* Internal to the executor. */
#ifndef TS_EXEC_INT_H
#define TS_EXEC_INT_H

#include "exec/exec.h"

/* pg_try_advisory_lock key of the runner lock: the ASCII of "tsrunner". */
#define EXEC_RUNNER_LOCK_KEY "8391176379410834802"

enum governor_state { GOV_HEALTHY, GOV_DEGRADED, GOV_CRITICAL };

struct governor {
	enum governor_state state;
	double factor; /* share of the configured rate allowed now (0..1] */
	int64_t last_probe_ms;
	bool archive_ok; /* pg_ls_archive_statusdir is allowed for us */
	bool decided;	 /* a first decision was made (and told) */
	char last_metrics[512];
};

struct exec {
	struct exec_config cfg;
	char *target;
	char *applied_by;
	struct db *db;	   /* the work connection */
	struct db *lockdb; /* the runner lock; and the proof: which relations existed */
	volatile sig_atomic_t abort_req; /* stop at the next boundary (abort or stop) */
	volatile sig_atomic_t stop_req;	 /* ... and it is a shutdown, not an abort */
	bool lock_held;
	struct governor gov;
	int64_t err_times[16]; /* monotonic ms of recent step errors (ring) */
	unsigned nerr;
	struct plan_idset *applied; /* exec_prefetch_applied: plan id -> checksum */
	/*
	 * Asked for by exec_prefetch_applied (prefetch), read when the first plan
	 * runs: every plan id the database has a row or a ledger row of (and each
	 * plan run since), so that a plan it has neither of needs no read before
	 * it runs; and whether this login may record (may_record).
	 */
	bool prefetch;
	struct plan_idset *known;
	bool may_record;
};

/*
 * How results travel in the executor, one way per layer:
 *  - the helpers that talk to the database (checks, ledger, proof "before",
 *    exec_present_compare) return int: 0, or -1 with a struct db_error;
 *  - a step attempt (one try of a step, or of a backfill's batch), the
 *    parts of an attempt that decide something (the proof "after", the
 *    adoption of a step already present, the drop of an INVALID index),
 *    the lock-retry loop and a whole step (exec_run_step) return enum
 *    exec_attempt, every database error classified once, where it happens,
 *    by exec_attempt_db;
 *  - a plan ends in struct exec_result (exec.h), whose outcome is derived
 *    from the step's attempt by exec_attempt_outcome only.
 */

/*
 * What an attempt came to. The zero value is "nobody set it": it is never
 * success, and exec_attempt_end reports it as an internal error.
 *  - ATTEMPT_OK: done, and recorded in the ledger.
 *  - ATTEMPT_FAILED: a statement or a check failed (the database refused
 *    the step's statement or one of this program's, or a precheck is
 *    false): the plan fails (r->res filled).
 *  - ATTEMPT_DB_ERROR: the connection went away (err filled; r->res too
 *    once exec_attempt_end has run): the run retries after reconnecting.
 *  - ATTEMPT_PROMISE_VIOLATED: a proof obligation failed — a lock stronger
 *    than lock_class_max, a rewrite, a postcheck after the statement —
 *    and the step was rolled back where it could be (r->res filled).
 *  - ATTEMPT_BUSY: something another session holds was not available: a
 *    lock within lock_timeout (err has PostgreSQL's 55P03), or an index that
 *    another session is still building (err has no SQLSTATE). The
 *    lock-retry loop tries again after a backoff.
 * Whatever an attempt opened (a transaction, session timeouts) is closed
 * when it returns anything but ATTEMPT_OK.
 */
enum exec_attempt {
	ATTEMPT_UNSET = 0,
	ATTEMPT_OK,
	ATTEMPT_FAILED,
	ATTEMPT_DB_ERROR,
	ATTEMPT_PROMISE_VIOLATED,
	ATTEMPT_BUSY,
};

/* The attempt's name ("ok", "failed", ..., "unset"), for messages and tests. */
const char *exec_attempt_name(enum exec_attempt a);
/*
 * The plan outcome an attempt's result means: ok is applied; a lost
 * connection (conn_lost, with ATTEMPT_DB_ERROR) is EXEC_CONN_LOST; any
 * other failure is EXEC_ABORTED while an abort is asked for (aborting),
 * else EXEC_FAILED; ATTEMPT_UNSET is EXEC_FAILED (an internal error, never
 * applied). Pure.
 */
enum exec_outcome exec_attempt_outcome(enum exec_attempt a, bool conn_lost, bool aborting);

/* exec_clock.c */

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t exec_now_ms(void);
/* Sleeps ms in short slices; returns false early when an abort is asked for. */
bool exec_sleep(struct exec *ex, int64_t ms);
/*
 * The bound c of the backoff before retry n (0-based): min(100 ms * 2^n,
 * 10 s). Pure.
 */
int64_t exec_backoff_cap_ms(int attempt);
/* Backoff before retry n (0-based): c/2 + random(0..c/2), c = exec_backoff_cap_ms(n). */
int64_t exec_backoff_ms(int attempt);

/* A step's context while it runs. */
struct step_run {
	struct exec *ex;
	const struct plan *p;
	const struct plan_step *s;
	const struct exec_plan_meta *meta;
	const char *wave;
	struct exec_result *res;
	int64_t rows; /* rows affected */
	bool already_present;
	/*
	 * Set by the plan's loop (exec_run_plan) when the plan ends with this
	 * step: a transactional step then commits the plan's end (wave.ok,
	 * plan.ok, status applied) with its ledger row, and says so in ended.
	 */
	bool last;
	int64_t plan_t0, wave_t0; /* when the plan and the step's wave began */
	int attempts;		  /* attempts made so far (a transactional step's) */
	bool ended;		  /* the plan's end was committed with the step */
	/*
	 * The plan's `running` status was not queued, since this step's commit
	 * writes its `applied` one: an attempt that does not commit queues it
	 * (exec_plan_status_defer), so that the plan shows as running while it
	 * waits to try again, and before its failure is recorded.
	 */
	bool running_later;
};

/* exec_attempt.c */

/* Fills res with a failure (message formatted). Returns ATTEMPT_FAILED. */
enum exec_attempt exec_fail(struct step_run *r, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * Fills res from a database error ("what: message; detail"), the outcome by
 * exec_attempt_outcome (a lost connection, an abort). Returns
 * ATTEMPT_DB_ERROR when the connection was lost, else ATTEMPT_FAILED.
 */
enum exec_attempt exec_fail_db(struct step_run *r, const struct db_error *err, const char *what);
/*
 * What a database error means for the attempt it ended: ATTEMPT_BUSY for a
 * lock timeout (55P03) and ATTEMPT_DB_ERROR for a lost connection (err
 * kept for the retry loop and exec_attempt_end); otherwise ATTEMPT_FAILED,
 * with res filled by exec_fail_db(r, err, what).
 */
enum exec_attempt exec_attempt_db(struct step_run *r, const struct db_error *err, const char *what);

/*
 * One attempt, for exec_retry: returns an enum exec_attempt as described
 * there, with err filled for ATTEMPT_BUSY and ATTEMPT_DB_ERROR.
 */
typedef enum exec_attempt (*exec_attempt_fn)(struct step_run *r, struct db_error *err, void *arg);

/*
 * The lock-retry loop, for every kind of step: runs attempt(r, err, arg);
 * while it answers ATTEMPT_BUSY, records a step.retry event and tries again
 * after exec_backoff_ms(n), up to cfg.lock_retries times. An abort asked for
 * ends the loop at once (no retry, and the backoff's sleep is cut short).
 * Returns the last attempt's result (err as that attempt left it); *retries
 * gets how many retries were made.
 */
enum exec_attempt exec_retry(struct step_run *r, exec_attempt_fn attempt, void *arg,
			     struct db_error *err, int *retries);
/*
 * Ends a step after exec_retry: fills res for a result that left its detail
 * in err — ATTEMPT_BUSY ("busy after N retries: ...", then busy_tail if not
 * NULL), ATTEMPT_DB_ERROR ("what: ...") — and for ATTEMPT_UNSET (an
 * internal error). Returns a, or ATTEMPT_FAILED for ATTEMPT_UNSET.
 */
enum exec_attempt exec_attempt_end(struct step_run *r, enum exec_attempt a,
				   const struct db_error *err, int retries, const char *what,
				   const char *busy_tail);
/* Rolls back the transaction open on the work connection, if the connection is usable. */
void exec_db_rollback(struct exec *ex);

/* exec_events.c: the events of a step (exec_event is in exec.h) */

/* step.start: the step's hazard, op and statement. */
void exec_event_step_start(struct step_run *r);
/* step.ok, or step.already_present: how long it took, rows, attempts made. */
void exec_event_step_ok(struct step_run *r, int64_t ms, int attempts);

/*
 * The events a transactional step writes in its own transaction, after its
 * ledger row (exec_step.c): step.ok, and for the plan's last step wave.ok and
 * plan.ok. They are recorded by statements of the step's last batch
 * (exec_tail_stmt) and told to cfg.on_event only once it committed
 * (exec_tail_tell): a COMMIT that fails said nothing.
 */
#define EXEC_TAIL_MAX 3
struct exec_tail {
	size_t n;
	struct {
		const char *type, *wave, *step_sha;
		char *metrics, *message;
	} ev[EXEC_TAIL_MAX];
	const char *params[7 * EXEC_TAIL_MAX];
};

void exec_tail_add(struct exec_tail *t, const char *type, const char *wave, const char *step_sha,
		   char *metrics, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* step.ok or step.already_present, into the tail (as exec_event_step_ok). */
void exec_tail_step_ok(struct exec_tail *t, struct step_run *r, int64_t ms, int attempts);
/* The one INSERT of the tail's events (t->n >= 1), prepared when fixed. */
struct db_stmt exec_tail_stmt(struct exec_tail *t, struct step_run *r, bool fixed);
void exec_tail_tell(struct exec_tail *t, struct step_run *r);
void exec_tail_free(struct exec_tail *t);

/* exec.c: queues the plan's status row (db_defer), sent with the next statement. */
void exec_plan_status_defer(struct exec *ex, const struct plan *p,
			    const struct exec_plan_meta *meta, const char *status);
/* exec.c: the plan's status row as a statement of a batch (params[9], hv[16] are its storage). */
struct db_stmt exec_plan_status_stmt(struct exec *ex, const struct plan *p,
				     const struct exec_plan_meta *meta, const char *status,
				     char hv[16], const char *params[9], bool fixed);

/* exec_checks.c */

/*
 * Runs checks (a step's ob.prechecks or ob.postchecks): the computed ones in
 * one statement, then the author's one at a time; *failed gets the first
 * false one (borrowed), or NULL.
 */
int exec_checks(struct step_run *r, const struct plan_strv *checks, const char **failed,
		struct db_error *err);
/* How many of checks are computed by the planner (they come first). */
size_t exec_checks_computed(const struct step_run *r, const struct plan_strv *checks);
/* "SELECT (c1)::boolean, (c2)::boolean ..." for the first n checks; NULL when n is 0. */
char *exec_checks_sql(const struct plan_strv *checks, size_t n);
/*
 * The first n checks as one statement that answers true when all of them are
 * true and raises otherwise (an invalid boolean, "EXEC_CHECK_FALSE <pid>"),
 * so that statements pipelined after it do not run; NULL when n is 0. Its
 * error says nothing of which check: the caller asks again with
 * exec_checks_sql.
 */
#define EXEC_CHECK_FALSE "taskslaps: a check is not true"
/* DateStyle, IntervalStyle, extra_float_digits as the keys' text needs them (exec.c). */
void exec_pin_formats(struct exec *ex);
char *exec_checks_guard_sql(const struct plan_strv *checks, size_t n);
/*
 * The names in *sql (exec_checks_sql, exec_checks_guard_sql of computed
 * checks) as parameters $1..: *sql replaced by the lifted text and *values
 * set (free with sql_lift_free); the number of values, 0 when nothing was
 * lifted (*sql as it was, *values NULL). The lifted text is the same for
 * every step of an op, so it is sent prepared (sql_lift_helper_args).
 */
int exec_checks_lift(char **sql, char ***values);
/* The first check whose column in res is not true, or NULL. */
const char *exec_checks_first_false(const PGresult *res, const struct plan_strv *checks);
/* The checks from index from on, one statement each, up to the first false. */
int exec_checks_user(struct step_run *r, const struct plan_strv *checks, size_t from,
		     const char **failed, struct db_error *err);
/* exec_ledger.c */

/* Records the step in the ledger (inside the caller's transaction if one is open). */
int exec_ledger_insert(struct step_run *r, int64_t ms, struct db_error *err);
#define SQL_LEDGER_COLUMNS                                                                         \
	"INSERT INTO taskslaps.step_ledger (step_sha, target, plan_id, wave, step_index, op, "     \
	"hazard, commit_sha, applied_by, execution_time_ms, rows_affected, outcome) VALUES ($1, "  \
	"$2, $3, $4, $5::int, $6, $7, $8, $9, $10::bigint, $11::bigint, $12)"
#define SQL_LEDGER_INSERT SQL_LEDGER_COLUMNS
/*
 * The row of an inverse (a rollback): the row of the step it undoes ($13)
 * goes in the same statement, so that a crash leaves either both changes or
 * neither; the row of an earlier rollback of the same step is replaced.
 */
#define SQL_LEDGER_UNDO                                                                            \
	"WITH undone AS (DELETE FROM taskslaps.step_ledger WHERE target = $2 AND step_sha = "      \
	"$13), progress AS (DELETE FROM taskslaps.backfill_progress WHERE target = $2 AND "        \
	"step_sha = $13) " SQL_LEDGER_COLUMNS                                                      \
	" ON CONFLICT ON CONSTRAINT step_ledger_pkey DO UPDATE SET "                               \
	"commit_sha = EXCLUDED.commit_sha, applied_by = EXCLUDED.applied_by, applied_at = "        \
	"now(), execution_time_ms = EXCLUDED.execution_time_ms, rows_affected = "                  \
	"EXCLUDED.rows_affected, outcome = EXCLUDED.outcome"
/*
 * exec_ledger_insert's statement and parameters, for a batch (the buffers
 * hold the numbers): SQL_LEDGER_INSERT, or SQL_LEDGER_UNDO for an inverse;
 * *nparams gets how many of params it takes.
 */
const char *exec_ledger_params(struct step_run *r, int64_t ms, const char *params[13], int *nparams,
			       char idx[16], char msbuf[24], char rows[24]);
/* The ledger outcome of a step that is done: "applied", "already_present" or "undone". */
const char *exec_ledger_outcome(const struct step_run *r);
/*
 * Runs one step by its kind (the governor is asked first). ATTEMPT_OK, or
 * another result with r->res filled (its outcome set); never ATTEMPT_UNSET.
 * ATTEMPT_BUSY here means busy still after the step's retries.
 */
enum exec_attempt exec_run_step(struct step_run *r);

/*
 * exec_rollback.c: a plan's on_failure. exec_rollback undoes the completed
 * steps of the range (wave: the wave that failed) after res's failure, and
 * rewrites res (still failed: "rolled back to ...", or both errors).
 * exec_rollback_resume finishes a rollback that a crash or a stop
 * interrupted: 1 when there was one (res filled), 0 when there was none, -1
 * with res->message when the database failed.
 */
void exec_rollback(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
		   enum plan_wave wave, struct exec_result *res);
int exec_rollback_resume(struct exec *ex, const struct plan *p, const struct exec_plan_meta *meta,
			 struct exec_result *res);

/*
 * exec_revert.c: a revert plan's steps. exec_revert_load reads the ledger
 * rows (step_sha, outcome) of the steps its inverses undo; *fwd to PQclear.
 * exec_revert_forward is the outcome of the step s undoes (NULL when it is
 * not in the ledger); exec_revert_why_not why s does not run for that
 * outcome (NULL: it runs). exec_revert_skip records that as a step.skipped
 * event and returns true when s does not run. exec_revert_done records the
 * reverted plan's status ("reverted", "reverted to <wave>") and its
 * plan.reverted event, once every step is done.
 */
int exec_revert_load(struct exec *ex, const struct plan *p, PGresult **fwd, struct db_error *err);
const char *exec_revert_forward(const PGresult *fwd, const struct plan_step *s);
const char *exec_revert_why_not(const struct plan *p, const struct plan_step *s,
				const char *outcome);
bool exec_revert_skip(struct exec *ex, const struct plan *p, const struct plan_step *s,
		      const char *wave, const PGresult *fwd);
int exec_revert_done(struct exec *ex, const struct plan *p, const struct exec_result *res,
		     struct db_error *err);
/*
 * Whether plan_id's last run was undone by a revert plan (its last plan.start
 * or plan.reverted event is plan.reverted): accept-drift refuses it then, with
 * err saying why. 1 refused, 0 not, -1 database error.
 */
int exec_revert_accept_refused(struct exec *ex, const char *plan_id, struct db_error *err);

/*
 * exec_present.c: before a step whose postchecks already hold is adopted as
 * already_present, compares each column it defines (add_column,
 * create_table) with the database's: type as format_type() gives it,
 * nullability, default. 0 with *why NULL when they match (or the op defines
 * no column), 0 with *why (malloc'ed, the differences) when they do not, -1
 * with err when the database failed. The caller's transaction, if one is
 * open, is left as it was.
 */
int exec_present_compare(struct step_run *r, char **why, struct db_error *err);

/*
 * Proof of a step's obligations (exec_step.c): before the statement, the
 * touched tables' relfilenodes; after it, before COMMIT, the locks this
 * backend holds on user relations against lock_class_max (a stronger one
 * counts when the relation existed before the step: when the runner lock's
 * connection, outside the step's transaction, sees it), and the relfilenodes
 * against the no-rewrite promise.
 */
struct exec_proof {
	PGresult *nodes; /* name, oid, relfilenode before the statement */
	char *oids;	 /* their oids, as an oid[] literal */
};

int exec_proof_before(struct step_run *r, struct exec_proof *pf, struct db_error *err);
/*
 * ATTEMPT_OK proved; ATTEMPT_PROMISE_VIOLATED (res filled with the
 * evidence); or what exec_attempt_db makes of a failed query of the proof.
 */
enum exec_attempt exec_proof_after(struct step_run *r, struct exec_proof *pf, bool with_locks,
				   struct db_error *err);
void exec_proof_free(struct exec_proof *pf);
/*
 * The proof's "after" as statements of a batch: the locks (when in a
 * transaction), then the relfilenodes by oid. Returns how many (at most 2).
 */
size_t exec_proof_after_stmts(struct exec_proof *pf, bool with_locks, struct db_stmt *st);
/*
 * Judges the obligations from the "after"'s results (locks may be NULL;
 * after: oid, relfilenode): no lock on a relation that existed before
 * stronger than lock_class_max, and no table rewritten (new relfilenode)
 * unless the op may rewrite. As exec_proof_after.
 */
enum exec_attempt exec_proof_judge(struct step_run *r, const struct exec_proof *pf,
				   const PGresult *locks, const PGresult *after,
				   struct db_error *err);

/*
 * exec_step.c: a transactional or a CONCURRENTLY step; exec_backfill.c: a
 * backfill. As exec_run_step: ATTEMPT_OK, or another result with res filled.
 */
enum exec_attempt exec_step_tx(struct step_run *r);

/*
 * exec_backfill.c: a backfill batch as two statements, sent in one
 * transaction. The keys take the next batch_size keys after the checkpoint
 * (none when from_start), up to the upper key fixed when the backfill
 * began, keep the last of them as a JSON array of text in the
 * transaction-local setting taskslaps.batch_hi ('' when fewer were left),
 * and answer one row: that key (NULL when none) and how many keys they
 * walked. The UPDATE is the author's, on the rows after the checkpoint up
 * to that key (the upper key without one); its command tag counts the rows
 * it changed. Parameters: the checkpoint's key ($1..$nk, but from the
 * start), the upper key (the next nk), then, for the keys only,
 * batch_size (bigint). table is the name as validated; qtable and qcols
 * are quoted; set and where (NULL when absent) are the author's fragments
 * as the planner split them. Each part and each statement are read back
 * by the parser. Returns 0 with both statements (free them), or -1 with
 * the reason in m.
 */
struct sql_msg;
struct exec_batch_shape {
	const char *table, *qtable;
	const char *const *qcols, *const *types; /* the primary key, in its order */
	size_t nk;
	const char *set, *where;
};
int exec_backfill_batch_sql(const struct exec_batch_shape *bs, bool from_start, char **keys_sql,
			    char **update_sql, struct sql_msg *m);
enum exec_attempt exec_step_nontx(struct step_run *r);
enum exec_attempt exec_step_backfill(struct step_run *r);
/* Primary key columns and their types of table; -1 with err, 0 with n=0 when there is none. */
int exec_primary_key(struct exec *ex, const char *table, char ***cols, char ***types, size_t *n,
		     struct db_error *err);

/* governor.c: probes the database and decides; table may be NULL. Returns the state. */
enum governor_state governor_check(struct exec *ex, const char *plan_id, const char *table);
/* Probes until the governor is not critical (or an abort). Returns false on abort. */
bool governor_wait(struct exec *ex, const char *plan_id, const char *table);
void governor_note_error(struct exec *ex);

#endif
