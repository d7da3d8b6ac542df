/*
 * The results of step attempts (enum exec_attempt): what each means for the
 * plan, the failure messages, and the lock-retry loop every kind of step
 * runs its attempts in.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "exec/exec_int.h"

#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"

const char *
exec_attempt_name(enum exec_attempt a)
{
	switch (a) {
	case ATTEMPT_UNSET: return "unset";
	case ATTEMPT_OK: return "ok";
	case ATTEMPT_FAILED: return "failed";
	case ATTEMPT_DB_ERROR: return "database error";
	case ATTEMPT_PROMISE_VIOLATED: return "promise violated";
	case ATTEMPT_BUSY: return "busy";
	}
	return "?";
}

enum exec_outcome
exec_attempt_outcome(enum exec_attempt a, bool conn_lost, bool aborting)
{
	switch (a) {
	case ATTEMPT_OK: return EXEC_APPLIED;
	case ATTEMPT_DB_ERROR:
		if (conn_lost)
			return EXEC_CONN_LOST;
		break;
	case ATTEMPT_UNSET:
		/* nobody said what happened: that is never success, nor an abort */
		return EXEC_FAILED;
	case ATTEMPT_FAILED:
	case ATTEMPT_PROMISE_VIOLATED:
	case ATTEMPT_BUSY: break;
	}
	return aborting ? EXEC_ABORTED : EXEC_FAILED;
}

enum exec_attempt
exec_fail(struct step_run *r, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	r->res->outcome = exec_attempt_outcome(ATTEMPT_FAILED, false, false);
	snprintf(r->res->sqlstate, sizeof(r->res->sqlstate), "%s", sqlstate ? sqlstate : "");
	va_start(ap, fmt);
	vsnprintf(r->res->message, sizeof(r->res->message), fmt, ap);
	va_end(ap);
	if (r->s)
		snprintf(r->res->step_sha, sizeof(r->res->step_sha), "%s", r->s->sha);
	return ATTEMPT_FAILED;
}

enum exec_attempt
exec_fail_db(struct step_run *r, const struct db_error *err, const char *what)
{
	enum exec_attempt a = err->conn_lost ? ATTEMPT_DB_ERROR : ATTEMPT_FAILED;

	/* the SQLSTATE goes in res->sqlstate only: events and printers add it once */
	exec_fail(r, err->sqlstate, "%s: %s", what, err->message);
	if (err->detail[0]) {
		size_t n = strlen(r->res->message);
		snprintf(r->res->message + n, sizeof(r->res->message) - n, "; %s", err->detail);
	}
	r->res->outcome = exec_attempt_outcome(a, err->conn_lost, r->ex->abort_req != 0);
	return a;
}

enum exec_attempt
exec_attempt_db(struct step_run *r, const struct db_error *err, const char *what)
{
	if (err->conn_lost)
		return ATTEMPT_DB_ERROR;
	if (!strcmp(err->sqlstate, SQLSTATE_LOCK_NOT_AVAILABLE))
		return ATTEMPT_BUSY;
	return exec_fail_db(r, err, what);
}

/* What a busy attempt waited for: the lock and its timeout, or what err says. */
static void
busy_text(const struct step_run *r, const struct db_error *err, char *buf, size_t len)
{
	if (!strcmp(err->sqlstate, SQLSTATE_LOCK_NOT_AVAILABLE))
		snprintf(buf, len, "lock not granted within %lld ms (%s)",
			 (long long)r->s->ob.max_lock_ms, err->message);
	else
		snprintf(buf, len, "%s", err->message);
}

enum exec_attempt
exec_retry(struct step_run *r, exec_attempt_fn attempt, void *arg, struct db_error *err,
	   int *retries)
{
	enum exec_attempt a = ATTEMPT_UNSET;
	int n = 0;

	for (;;) {
		char metrics[160], what[1200];
		int64_t wait;

		memset(err, 0, sizeof(*err));
		a = attempt(r, err, arg);
		if (a != ATTEMPT_BUSY || r->ex->abort_req || n >= r->ex->cfg.lock_retries)
			break;
		wait = exec_backoff_ms(n);
		n++;
		busy_text(r, err, what, sizeof(what));
		snprintf(metrics, sizeof(metrics),
			 "{\"attempt\": %d, \"of\": %d, \"backoff_ms\": %lld, \"lock_timeout_ms\": "
			 "%lld}",
			 n, r->ex->cfg.lock_retries, (long long)wait,
			 (long long)r->s->ob.max_lock_ms);
		exec_event(r->ex, "step.retry", r->p->id, r->wave, r->s->sha, metrics,
			   "%s: busy: %s; retry %d of %d in %lld ms", plan_op_name(r->s->op), what,
			   n, r->ex->cfg.lock_retries, (long long)wait);
		if (!exec_sleep(r->ex, wait))
			break; /* an abort: the last attempt's result stands */
	}
	*retries = n;
	return a;
}

enum exec_attempt
exec_attempt_end(struct step_run *r, enum exec_attempt a, const struct db_error *err, int retries,
		 const char *what, const char *busy_tail)
{
	char busy[1200];

	switch (a) {
	case ATTEMPT_OK:
	case ATTEMPT_FAILED:
	case ATTEMPT_PROMISE_VIOLATED: break;
	case ATTEMPT_UNSET:
		return exec_fail(r, NULL, "internal error: %s: the attempt ended without a result",
				 what);
	case ATTEMPT_DB_ERROR: exec_fail_db(r, err, what); break;
	case ATTEMPT_BUSY:
		if (r->ex->abort_req) {
			/* the abort's, not the lock's: the plan is aborted */
			exec_fail_db(r, err, what);
			break;
		}
		busy_text(r, err, busy, sizeof(busy));
		/* the SQLSTATE is PostgreSQL's (55P03), or none: an index in use has none */
		exec_fail(r, err->sqlstate, "busy after %d retr%s: %s%s%s", retries,
			  retries == 1 ? "y" : "ies", busy, busy_tail ? "; " : "",
			  busy_tail ? busy_tail : "");
		r->res->outcome = exec_attempt_outcome(a, false, false);
		break;
	}
	return a;
}

void
exec_db_rollback(struct exec *ex)
{
	struct db_error ignore;

	if (db_ok(ex->db))
		(void)db_cmd(ex->db, &ignore, "ROLLBACK");
}
