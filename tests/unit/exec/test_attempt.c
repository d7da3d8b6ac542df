/*
 * The executor's attempt results: what each means for the plan, the
 * backoff schedule, and the lock-retry loop driven by a scripted attempt
 * (no database: the events go to cfg.on_event only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* after setjmp.h, stdarg.h, stddef.h and stdint.h, which it needs */
#include <cmocka.h>

#include "exec/exec_int.h"

static void
test_exec_attempt__unset_is_zero_and_never_success(void **state)
{
	struct exec_result res;

	(void)state;
	assert_int_equal(ATTEMPT_UNSET, 0);
	assert_int_equal(EXEC_UNSET, 0);
	/* a result nobody filled is not applied */
	memset(&res, 0, sizeof(res));
	assert_int_not_equal(res.outcome, EXEC_APPLIED);
	assert_string_equal(exec_outcome_name(res.outcome), "unset");
	for (int lost = 0; lost < 2; lost++)
		for (int ab = 0; ab < 2; ab++)
			assert_int_equal(exec_attempt_outcome(ATTEMPT_UNSET, lost, ab),
					 EXEC_FAILED);
}

static void
test_exec_attempt__outcome_table(void **state)
{
	static const struct {
		enum exec_attempt a;
		bool conn_lost, aborting;
		enum exec_outcome want;
	} rows[] = {
		{ ATTEMPT_OK, false, false, EXEC_APPLIED },
		{ ATTEMPT_OK, false, true, EXEC_APPLIED },
		{ ATTEMPT_FAILED, false, false, EXEC_FAILED },
		{ ATTEMPT_FAILED, false, true, EXEC_ABORTED },
		{ ATTEMPT_PROMISE_VIOLATED, false, false, EXEC_FAILED },
		{ ATTEMPT_PROMISE_VIOLATED, false, true, EXEC_ABORTED },
		{ ATTEMPT_BUSY, false, false, EXEC_FAILED },
		{ ATTEMPT_BUSY, false, true, EXEC_ABORTED },
		{ ATTEMPT_DB_ERROR, true, false, EXEC_CONN_LOST },
		{ ATTEMPT_DB_ERROR, true, true, EXEC_CONN_LOST },
		{ ATTEMPT_DB_ERROR, false, false, EXEC_FAILED },
		{ ATTEMPT_DB_ERROR, false, true, EXEC_ABORTED },
		{ ATTEMPT_UNSET, false, false, EXEC_FAILED },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum exec_outcome got =
		    exec_attempt_outcome(rows[i].a, rows[i].conn_lost, rows[i].aborting);
		if (got != rows[i].want)
			fail_msg("row %zu: %s (conn_lost %d, aborting %d): %s, want %s", i,
				 exec_attempt_name(rows[i].a), rows[i].conn_lost, rows[i].aborting,
				 exec_outcome_name(got), exec_outcome_name(rows[i].want));
	}
}

static void
test_exec_attempt__names_users_see_unchanged(void **state)
{
	(void)state;
	assert_string_equal(exec_outcome_name(EXEC_APPLIED), "applied");
	assert_string_equal(exec_outcome_name(EXEC_FAILED), "failed");
	assert_string_equal(exec_outcome_name(EXEC_BLOCKED), "blocked");
	assert_string_equal(exec_outcome_name(EXEC_DRIFT), "drift");
	assert_string_equal(exec_outcome_name(EXEC_ABORTED), "aborted");
	assert_string_equal(exec_outcome_name(EXEC_CONN_LOST), "connection lost");
	assert_string_equal(exec_attempt_name(ATTEMPT_BUSY), "busy");
	assert_string_equal(exec_attempt_name(ATTEMPT_UNSET), "unset");
}

static void
test_exec_attempt__backoff_schedule(void **state)
{
	static const int64_t caps[] = { 100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000 };

	(void)state;
	for (int n = 0; n < (int)(sizeof(caps) / sizeof(caps[0])); n++)
		assert_int_equal(exec_backoff_cap_ms(n), caps[n]);
	assert_int_equal(exec_backoff_cap_ms(40), 10000);
	assert_int_equal(exec_backoff_cap_ms(-1), 100);
	/* full jitter: c/2 .. c */
	for (int i = 0; i < 2000; i++) {
		int n = i % 10;
		int64_t w = exec_backoff_ms(n), c = exec_backoff_cap_ms(n);
		assert_in_range(w, c / 2, c);
	}
}

/* A scripted attempt: returns script[calls] (the last one again past the end). */
struct script {
	const enum exec_attempt *v;
	size_t n, calls;
	const char *sqlstate, *message;
	bool abort_on_first;
	struct exec *ex;
};

static enum exec_attempt
scripted(struct step_run *r, struct db_error *err, void *arg)
{
	struct script *sc = arg;
	enum exec_attempt a = sc->v[sc->calls < sc->n ? sc->calls : sc->n - 1];

	(void)r;
	sc->calls++;
	if (a == ATTEMPT_BUSY || a == ATTEMPT_DB_ERROR) {
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sc->sqlstate);
		snprintf(err->message, sizeof(err->message), "%s", sc->message);
	}
	if (sc->abort_on_first)
		sc->ex->abort_req = 1;
	return a;
}

struct seen {
	int retries;
	char last[1024];
};

static void
on_event(const struct exec_event *ev, void *arg)
{
	struct seen *s = arg;

	if (!strcmp(ev->type, "step.retry")) {
		s->retries++;
		snprintf(s->last, sizeof(s->last), "%s", ev->message);
	}
}

struct fixture {
	struct exec ex;
	struct plan p;
	struct plan_step s;
	struct exec_result res;
	struct step_run r;
	struct seen seen;
};

static void
fixture_init(struct fixture *f, int lock_retries)
{
	memset(f, 0, sizeof(*f));
	f->ex.cfg.lock_retries = lock_retries;
	f->ex.cfg.on_event = on_event;
	f->ex.cfg.event_arg = &f->seen;
	f->ex.target = "default";
	f->p.id = "0001-x";
	f->s.op = OP_ADD_INDEX_CONCURRENTLY;
	f->s.ob.max_lock_ms = 50;
	snprintf(f->s.sha, sizeof(f->s.sha), "%s", "abc");
	f->r = (struct step_run){
		.ex = &f->ex, .p = &f->p, .s = &f->s, .wave = "expand", .res = &f->res
	};
}

static void
test_exec_attempt__retry_busy_until_retries_run_out(void **state)
{
	static const enum exec_attempt v[] = { ATTEMPT_BUSY };
	struct fixture f;
	struct script sc = { .v = v,
			     .n = 1,
			     .sqlstate = "55P03",
			     .message = "canceling statement due to lock timeout" };
	struct db_error err;
	int retries = -1;
	enum exec_attempt a;

	(void)state;
	fixture_init(&f, 2);
	a = exec_retry(&f.r, scripted, &sc, &err, &retries);
	assert_int_equal(a, ATTEMPT_BUSY);
	assert_int_equal(retries, 2);
	assert_int_equal(sc.calls, 3);
	assert_int_equal(f.seen.retries, 2);
	assert_non_null(strstr(f.seen.last,
			       "add_index_concurrently: busy: lock not granted "
			       "within 50 ms (canceling statement due to lock timeout); "
			       "retry 2 of 2"));
	assert_int_equal(f.res.outcome, EXEC_UNSET); /* the loop fills nothing */
	a = exec_attempt_end(&f.r, a, &err, retries, "statement failed", NULL);
	assert_int_equal(a, ATTEMPT_BUSY);
	assert_int_equal(f.res.outcome, EXEC_FAILED);
	assert_string_equal(f.res.sqlstate, "55P03"); /* PostgreSQL's own */
	assert_string_equal(f.res.message, "busy after 2 retries: lock not granted within 50 ms "
					   "(canceling statement due to lock timeout)");
	assert_string_equal(f.res.step_sha, "abc");
}

static void
test_exec_attempt__busy_index_invents_no_sqlstate(void **state)
{
	static const enum exec_attempt v[] = { ATTEMPT_BUSY };
	struct fixture f;
	struct script sc = { .v = v,
			     .n = 1,
			     .sqlstate = "",
			     .message = "index i is INVALID because another session (pid 7) is "
					"still building it" };
	struct db_error err;
	int retries = -1;
	enum exec_attempt a;

	(void)state;
	fixture_init(&f, 1);
	a = exec_retry(&f.r, scripted, &sc, &err, &retries);
	assert_int_equal(retries, 1);
	assert_non_null(strstr(f.seen.last, "busy: index i is INVALID because another session"));
	exec_attempt_end(&f.r, a, &err, retries, "statement failed", "nothing was applied");
	assert_string_equal(f.res.sqlstate, "");
	assert_string_equal(f.res.message, "busy after 1 retry: index i is INVALID because another "
					   "session (pid 7) is still building it; nothing was "
					   "applied");
}

static void
test_exec_attempt__retry_stops_at_success_failure_or_abort(void **state)
{
	static const enum exec_attempt ok2[] = { ATTEMPT_BUSY, ATTEMPT_OK };
	static const enum exec_attempt failed[] = { ATTEMPT_FAILED, ATTEMPT_OK };
	static const enum exec_attempt busy[] = { ATTEMPT_BUSY };
	struct fixture f;
	struct db_error err;
	int retries;

	(void)state;
	fixture_init(&f, 5);
	{
		struct script sc = { .v = ok2, .n = 2, .sqlstate = "55P03", .message = "x" };
		assert_int_equal(exec_retry(&f.r, scripted, &sc, &err, &retries), ATTEMPT_OK);
		assert_int_equal(retries, 1);
		assert_int_equal(sc.calls, 2);
	}
	fixture_init(&f, 5);
	{
		/* a failure is not retried, whatever comes after it */
		struct script sc = { .v = failed, .n = 2 };
		assert_int_equal(exec_retry(&f.r, scripted, &sc, &err, &retries), ATTEMPT_FAILED);
		assert_int_equal(retries, 0);
		assert_int_equal(sc.calls, 1);
		assert_int_equal(f.seen.retries, 0);
	}
	fixture_init(&f, 5);
	{
		/* an abort asked for during the attempt: no retry, and the plan is aborted */
		struct script sc = { .v = busy,
				     .n = 1,
				     .sqlstate = "55P03",
				     .message = "canceling statement due to lock timeout",
				     .abort_on_first = true,
				     .ex = &f.ex };
		enum exec_attempt a = exec_retry(&f.r, scripted, &sc, &err, &retries);
		assert_int_equal(a, ATTEMPT_BUSY);
		assert_int_equal(sc.calls, 1);
		exec_attempt_end(&f.r, a, &err, retries, "statement failed", NULL);
		assert_int_equal(f.res.outcome, EXEC_ABORTED);
	}
}

static void
test_exec_attempt__end_reports_unset_and_lost_connection(void **state)
{
	struct fixture f;
	struct db_error err = { .conn_lost = true };

	(void)state;
	fixture_init(&f, 0);
	/* nobody set the result: an internal error, never applied */
	assert_int_equal(exec_attempt_end(&f.r, ATTEMPT_UNSET, &err, 0, "statement failed", NULL),
			 ATTEMPT_FAILED);
	assert_int_equal(f.res.outcome, EXEC_FAILED);
	assert_non_null(strstr(f.res.message, "internal error"));
	fixture_init(&f, 0);
	snprintf(err.message, sizeof(err.message), "server closed the connection");
	assert_int_equal(
	    exec_attempt_end(&f.r, ATTEMPT_DB_ERROR, &err, 0, "statement failed", NULL),
	    ATTEMPT_DB_ERROR);
	assert_int_equal(f.res.outcome, EXEC_CONN_LOST);
	assert_string_equal(f.res.message, "statement failed: server closed the connection");
	/* a database error that is no lost connection fails the step with its SQLSTATE */
	fixture_init(&f, 0);
	memset(&err, 0, sizeof(err));
	snprintf(err.sqlstate, sizeof(err.sqlstate), "42P01");
	snprintf(err.message, sizeof(err.message), "relation \"t\" does not exist");
	assert_int_equal(exec_attempt_db(&f.r, &err, "statement failed"), ATTEMPT_FAILED);
	assert_int_equal(f.res.outcome, EXEC_FAILED);
	assert_string_equal(f.res.sqlstate, "42P01");
	/* a lock timeout and a lost connection are left to the retry loop */
	fixture_init(&f, 0);
	snprintf(err.sqlstate, sizeof(err.sqlstate), "55P03");
	assert_int_equal(exec_attempt_db(&f.r, &err, "statement failed"), ATTEMPT_BUSY);
	err.conn_lost = true;
	assert_int_equal(exec_attempt_db(&f.r, &err, "statement failed"), ATTEMPT_DB_ERROR);
	assert_int_equal(f.res.outcome, EXEC_UNSET);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec_attempt__unset_is_zero_and_never_success),
		cmocka_unit_test(test_exec_attempt__outcome_table),
		cmocka_unit_test(test_exec_attempt__names_users_see_unchanged),
		cmocka_unit_test(test_exec_attempt__backoff_schedule),
		cmocka_unit_test(test_exec_attempt__retry_busy_until_retries_run_out),
		cmocka_unit_test(test_exec_attempt__busy_index_invents_no_sqlstate),
		cmocka_unit_test(test_exec_attempt__retry_stops_at_success_failure_or_abort),
		cmocka_unit_test(test_exec_attempt__end_reports_unset_and_lost_connection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
