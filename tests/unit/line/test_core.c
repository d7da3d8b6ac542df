/*
 * The line's rules (src/line/line.c): status names, the transition table,
 * health ranking, and the decision of a pass as a table of situations: the
 * plans at the tip and the database's view in, every plan's status, the
 * verdicts to record, the next plan to run, sync and health out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* after setjmp.h, stdarg.h, stddef.h and stdint.h, which it needs */
#include <cmocka.h>

#include "line/line.h"

static void
test_line_names__match_the_database(void **state)
{
	/* the words of taskslaps.plan_statuses() (sql/001_schema.sql), in its order */
	static const char *const db[] = { "pending",
					  "running",
					  "applied",
					  "failed",
					  "blocked",
					  "drift",
					  "rate_limited",
					  "aborted",
					  "invalid",
					  "reverted",
					  "reverted to expand",
					  "reverted to backfill",
					  "reverted to validate" };
	enum line_status s;
	enum line_health h;

	(void)state;
	assert_int_equal(sizeof(db) / sizeof(db[0]), LINE_STATUS__COUNT);
	for (size_t i = 0; i < LINE_STATUS__COUNT; i++) {
		assert_int_equal(line_status_parse(db[i], &s), 0);
		assert_int_equal(s, (enum line_status)i);
		assert_string_equal(line_status_name(s), db[i]);
	}
	s = LINE_APPLIED;
	assert_int_equal(line_status_parse("Applied", &s), -1);
	assert_int_equal(line_status_parse("reverted to contract", &s), -1);
	assert_int_equal(line_status_parse(NULL, &s), -1);
	assert_int_equal(s, LINE_APPLIED);
	assert_string_equal(line_sync_name(LINE_IN_SYNC), "in_sync");
	assert_string_equal(line_sync_name(LINE_OUT_OF_SYNC), "out_of_sync");
	assert_string_equal(line_sync_name(LINE_APPLYING), "applying");
	for (int i = LINE_HEALTHY; i <= LINE_FAILED_HEALTH; i++) {
		assert_int_equal(line_health_parse(line_health_name((enum line_health)i), &h), 0);
		assert_int_equal(h, i);
	}
	assert_string_equal(line_health_name(LINE_FAILED_HEALTH), "failed");
	assert_string_equal(line_health_name(LINE_PROGRESSING), "progressing");
	assert_int_equal(line_status_reverted_to(0), LINE_REVERTED_EXPAND);
	assert_int_equal(line_status_reverted_to(2), LINE_REVERTED_VALIDATE);
	assert_int_equal(line_status_reverted_to(-1), LINE_REVERTED);
	assert_true(line_status_reverted(LINE_REVERTED_BACKFILL));
	assert_false(line_status_reverted(LINE_APPLIED));
}

static void
test_line_health__one_ranking(void **state)
{
	static const enum line_health rank[] = { LINE_HEALTHY, LINE_PROGRESSING, LINE_DEGRADED,
						 LINE_PAUSED, LINE_FAILED_HEALTH };

	(void)state;
	for (size_t a = 0; a < 5; a++)
		for (size_t b = 0; b < 5; b++) {
			enum line_health w = line_health_worse(rank[a], rank[b]);
			assert_int_equal(w, rank[a > b ? a : b]);
			assert_int_equal(w, line_health_worse(rank[b], rank[a]));
		}
	assert_int_equal(line_status_health(LINE_FAILED), LINE_FAILED_HEALTH);
	assert_int_equal(line_status_health(LINE_DRIFT), LINE_FAILED_HEALTH);
	assert_int_equal(line_status_health(LINE_INVALID), LINE_FAILED_HEALTH);
	assert_int_equal(line_status_health(LINE_ABORTED), LINE_PAUSED);
	assert_int_equal(line_status_health(LINE_BLOCKED), LINE_DEGRADED);
	assert_int_equal(line_status_health(LINE_RATE_LIMITED), LINE_DEGRADED);
	assert_int_equal(line_status_health(LINE_APPLIED), LINE_HEALTHY);
	assert_int_equal(line_status_health(LINE_REVERTED_EXPAND), LINE_HEALTHY);
	assert_int_equal(line_status_health(LINE_PENDING), LINE_HEALTHY);
}

struct move {
	enum line_status from, to;
	enum line_cause cause;
	bool ok;
};

static void
test_line_transition__table(void **state)
{
	static const struct move moves[] = {
		/* only operator verbs leave aborted and drift */
		{ LINE_ABORTED, LINE_RUNNING, LINE_BY_PASS, false },
		{ LINE_ABORTED, LINE_PENDING, LINE_BY_PASS, false },
		{ LINE_ABORTED, LINE_INVALID, LINE_BY_PASS, false },
		{ LINE_ABORTED, LINE_PENDING, LINE_BY_OPERATOR, true }, /* resume */
		{ LINE_FAILED, LINE_PENDING, LINE_BY_OPERATOR, true },	/* resume */
		{ LINE_DRIFT, LINE_APPLIED, LINE_BY_PASS, false },
		{ LINE_DRIFT, LINE_RUNNING, LINE_BY_PASS, false },
		{ LINE_DRIFT, LINE_INVALID, LINE_BY_PASS, false },
		{ LINE_DRIFT, LINE_APPLIED, LINE_BY_OPERATOR, true }, /* accept-drift */
		{ LINE_DRIFT, LINE_PENDING, LINE_BY_OPERATOR, true }, /* ... with new steps */
		{ LINE_DRIFT, LINE_DRIFT, LINE_BY_PASS, true },
		{ LINE_DRIFT, LINE_BLOCKED, LINE_BY_PASS, false },
		{ LINE_DRIFT, LINE_RUNNING, LINE_BY_RESTORE, true }, /* the file restored */
		{ LINE_ABORTED, LINE_RUNNING, LINE_BY_RESTORE, false },
		/* invalid never goes over a plan that ran */
		{ LINE_APPLIED, LINE_INVALID, LINE_BY_PASS, false },
		{ LINE_APPLIED, LINE_INVALID, LINE_BY_OPERATOR, false },
		{ LINE_FAILED, LINE_INVALID, LINE_BY_PASS, false },
		{ LINE_RUNNING, LINE_INVALID, LINE_BY_PASS, false },
		{ LINE_REVERTED, LINE_INVALID, LINE_BY_PASS, false },
		{ LINE_PENDING, LINE_INVALID, LINE_BY_PASS, true },
		{ LINE_BLOCKED, LINE_INVALID, LINE_BY_PASS, true },
		{ LINE_RATE_LIMITED, LINE_INVALID, LINE_BY_PASS, true },
		{ LINE_INVALID, LINE_RUNNING, LINE_BY_PASS, true },
		/* applied and reverted are settled: only drift leaves them (and a revert) */
		{ LINE_APPLIED, LINE_DRIFT, LINE_BY_PASS, true },
		{ LINE_APPLIED, LINE_RUNNING, LINE_BY_PASS, false },
		{ LINE_APPLIED, LINE_PENDING, LINE_BY_PASS, false },
		{ LINE_APPLIED, LINE_REVERTED_EXPAND, LINE_BY_PASS, true },
		{ LINE_REVERTED, LINE_RUNNING, LINE_BY_PASS, false },
		{ LINE_REVERTED_VALIDATE, LINE_APPLIED, LINE_BY_PASS, false },
		{ LINE_REVERTED_VALIDATE, LINE_DRIFT, LINE_BY_PASS, true },
		/* a run and its ends */
		{ LINE_PENDING, LINE_RUNNING, LINE_BY_PASS, true },
		{ LINE_PENDING, LINE_APPLIED, LINE_BY_PASS, false },
		{ LINE_RUNNING, LINE_APPLIED, LINE_BY_PASS, true },
		{ LINE_RUNNING, LINE_FAILED, LINE_BY_PASS, true },
		{ LINE_RUNNING, LINE_ABORTED, LINE_BY_PASS, true },
		{ LINE_RUNNING, LINE_PENDING, LINE_BY_PASS, true },
		{ LINE_FAILED, LINE_RUNNING, LINE_BY_PASS, true },
		{ LINE_FAILED, LINE_REVERTED, LINE_BY_PASS, true },
		{ LINE_FAILED, LINE_APPLIED, LINE_BY_PASS, false },
		{ LINE_RATE_LIMITED, LINE_RUNNING, LINE_BY_PASS, true },
		{ LINE_BLOCKED, LINE_RATE_LIMITED, LINE_BY_PASS, true },
		{ LINE_PENDING, LINE_ABORTED, LINE_BY_PASS, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++) {
		const struct move *m = &moves[i];
		bool got = line_transition_ok(m->from, m->to, m->cause);

		if (got != m->ok)
			fail_msg("%s -> %s by %s: expected %s", line_status_name(m->from),
				 line_status_name(m->to),
				 m->cause == LINE_BY_OPERATOR  ? "operator"
				 : m->cause == LINE_BY_RESTORE ? "restore"
							       : "pass",
				 m->ok ? "allowed" : "refused");
	}
	/* every status may stay what it is */
	for (int s = 0; s < LINE_STATUS__COUNT; s++)
		assert_true(
		    line_transition_ok((enum line_status)s, (enum line_status)s, LINE_BY_PASS));
	assert_false(line_transition_ok(LINE_STATUS__COUNT, LINE_PENDING, LINE_BY_OPERATOR));
}

/* The table of situations. */
#define MAXP 5
#define N LINE_NONE

/* a valid plan with checksum SUM at the tip, and the fields given */
#define PLAN(id_, sum_, ...)                                                                       \
	{                                                                                          \
		.id = id_, .valid = true, .checksum = sum_, __VA_ARGS__                            \
	}
/* a file that does not parse (or repeats an id) */
#define BROKEN(id_, ...)                                                                           \
	{                                                                                          \
		.id = id_, __VA_ARGS__                                                             \
	}
/* the database's row */
#define ROW(st_, sum_) .has_row = true, .db = st_, .db_checksum = sum_

struct expect {
	enum line_status status;
	bool record;
	enum line_why why;
};

struct situation {
	const char *name;
	enum line_ooo ooo;
	size_t n;
	struct line_plan plans[MAXP];
	struct expect want[MAXP];
	size_t next;
	enum line_sync sync;
	enum line_health health;
	size_t ref_of, ref; /* want[ref_of].ref == ref, when ref_of != N */
	size_t ooo_event;   /* the plan whose out-of-order event is due, or N */
};

static const struct situation situations[] = {
	{ "an empty line is in sync", .n = 0, .next = N, .sync = LINE_IN_SYNC,
	  .health = LINE_HEALTHY, .ref_of = N, .ooo_event = N },
	{ "new plans: the first runs, the others wait", .n = 2,
	  .plans = { PLAN("0001-a", "a1"), PLAN("0002-b", "b1") },
	  .want = { { LINE_RUNNING, false, LINE_WHY_RUNS },
		    { LINE_PENDING, false, LINE_WHY_WAITS } },
	  .next = 0, .sync = LINE_APPLYING, .health = LINE_PROGRESSING, .ref_of = N,
	  .ooo_event = N },
	{ "applied and unchanged: settled, in sync", .n = 2,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_APPLIED, "a1")),
		     PLAN("0002-b", "b1", ROW(LINE_APPLIED, "b1")) },
	  .want = { { LINE_APPLIED, false, LINE_WHY_SETTLED },
		    { LINE_APPLIED, false, LINE_WHY_SETTLED } },
	  .next = N, .sync = LINE_IN_SYNC, .health = LINE_HEALTHY, .ref_of = N, .ooo_event = N },
	{ "an applied plan pushed broken: invalid beside it, the line stops", .n = 2,
	  .plans = { BROKEN("0001-a", ROW(LINE_APPLIED, "a1")), PLAN("0002-b", "b1") },
	  .want = { { LINE_INVALID, true, LINE_WHY_INVALID },
		    { LINE_PENDING, false, LINE_WHY_WAITS } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_FAILED_HEALTH, .ref_of = N,
	  .ooo_event = N },
	{ "... then fixed with an extra step: drift, the extra step never runs", .n = 2,
	  .plans = { PLAN("0001-a", "a2", ROW(LINE_APPLIED, "a1")), PLAN("0002-b", "b1") },
	  .want = { { LINE_DRIFT, true, LINE_WHY_CHECKSUM },
		    { LINE_PENDING, false, LINE_WHY_WAITS } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_FAILED_HEALTH, .ref_of = N,
	  .ooo_event = N },
	{ "drift, then broken: invalid shown, the row stays drift", .n = 1,
	  .plans = { BROKEN("0001-a", ROW(LINE_DRIFT, "a1")) },
	  .want = { { LINE_INVALID, true, LINE_WHY_INVALID } }, .next = N, .sync = LINE_OUT_OF_SYNC,
	  .health = LINE_FAILED_HEALTH, .ref_of = N, .ooo_event = N },
	{ "... then drifted content again: still drift, nothing new to record", .n = 1,
	  .plans = { PLAN("0001-a", "a3", ROW(LINE_DRIFT, "a1")) },
	  .want = { { LINE_DRIFT, false, LINE_WHY_CHECKSUM } }, .next = N, .sync = LINE_OUT_OF_SYNC,
	  .health = LINE_FAILED_HEALTH, .ref_of = N, .ooo_event = N },
	{ "drift, then the original restored: it runs (its steps are in the ledger)", .n = 1,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_DRIFT, "a1")) },
	  .want = { { LINE_RUNNING, false, LINE_WHY_RUNS } }, .next = 0, .sync = LINE_APPLYING,
	  .health = LINE_PROGRESSING, .ref_of = N, .ooo_event = N },
	{ "drift restored but blocked: stays drift, no block over it", .n = 2,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_DRIFT, "a1"), .blocked = true),
		     PLAN("0002-b", "b1", ROW(LINE_DRIFT, "b1"), .blocked = true) },
	  .want = { { LINE_DRIFT, false, LINE_WHY_DB }, { LINE_DRIFT, false, LINE_WHY_DB } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_FAILED_HEALTH, .ref_of = N,
	  .ooo_event = N },
	{ "aborted, then broken: invalid shown beside it", .n = 1,
	  .plans = { BROKEN("0001-a", ROW(LINE_ABORTED, "a1")) },
	  .want = { { LINE_INVALID, true, LINE_WHY_INVALID } }, .next = N, .sync = LINE_OUT_OF_SYNC,
	  .health = LINE_FAILED_HEALTH, .ref_of = N, .ooo_event = N },
	{ "... then the original again: still aborted, the line paused", .n = 2,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_ABORTED, "a1")), PLAN("0002-b", "b1") },
	  .want = { { LINE_ABORTED, false, LINE_WHY_ABORTED },
		    { LINE_PENDING, false, LINE_WHY_WAITS } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_PAUSED, .ref_of = N, .ooo_event = N },
	{ "resumed (an operator's verb made it pending): it runs", .n = 1,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_PENDING, "a1")) },
	  .want = { { LINE_RUNNING, false, LINE_WHY_RUNS } }, .next = 0, .sync = LINE_APPLYING,
	  .health = LINE_PROGRESSING, .ref_of = N, .ooo_event = N },
	{ "an applied plan renamed: the old id is drift, the new one does not run", .n = 2,
	  .plans = { { .id = "0001-a", .missing = true, ROW(LINE_APPLIED, "a1") },
		     PLAN("0001-b", "a1") },
	  .want = { { LINE_DRIFT, true, LINE_WHY_MISSING },
		    { LINE_PENDING, false, LINE_WHY_WAITS } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_FAILED_HEALTH, .ref_of = N,
	  .ooo_event = N },
	{ "a removed plan already recorded drift: nothing new to record", .n = 1,
	  .plans = { { .id = "0001-a", .missing = true, ROW(LINE_DRIFT, "a1") } },
	  .want = { { LINE_DRIFT, false, LINE_WHY_MISSING } }, .next = N, .sync = LINE_OUT_OF_SYNC,
	  .health = LINE_FAILED_HEALTH, .ref_of = N, .ooo_event = N },
	{ "one id in two formats: the second is invalid, the first unchanged", .n = 2,
	  .plans = { PLAN("0099-x", "x1", ROW(LINE_APPLIED, "x1")),
		     BROKEN("0099-x", ROW(LINE_APPLIED, "x1")) },
	  .want = { { LINE_APPLIED, false, LINE_WHY_SETTLED },
		    { LINE_INVALID, true, LINE_WHY_INVALID } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_FAILED_HEALTH, .ref_of = N,
	  .ooo_event = N },
	{ "duplicate ids: the first runs, the duplicate waits its turn", .n = 2,
	  .plans = { PLAN("0001-a", "a1"), BROKEN("0001-a") },
	  .want = { { LINE_RUNNING, false, LINE_WHY_RUNS },
		    { LINE_PENDING, false, LINE_WHY_WAITS } },
	  .next = 0, .sync = LINE_APPLYING, .health = LINE_PROGRESSING, .ref_of = N,
	  .ooo_event = N },
	{ "... and once the first is applied, the duplicate is invalid", .n = 2,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_APPLIED, "a1")), BROKEN("0001-a") },
	  .want = { { LINE_APPLIED, false, LINE_WHY_SETTLED },
		    { LINE_INVALID, true, LINE_WHY_INVALID } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_FAILED_HEALTH, .ref_of = N,
	  .ooo_event = N },
	{ "invalid in the middle: the plans after it wait, blocked ones are said", .n = 4,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_APPLIED, "a1")), BROKEN("0002-b"),
		     PLAN("0003-c", "c1"), PLAN("0004-d", "d1", .blocked = true) },
	  .want = { { LINE_APPLIED, false, LINE_WHY_SETTLED },
		    { LINE_INVALID, true, LINE_WHY_INVALID },
		    { LINE_PENDING, false, LINE_WHY_WAITS },
		    { LINE_BLOCKED, true, LINE_WHY_POLICY } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_FAILED_HEALTH, .ref_of = N,
	  .ooo_event = N },
	{ "behind a stopped line, an applied plan edited is drift at once", .n = 3,
	  .plans = { BROKEN("0001-a"), PLAN("0002-b", "b2", ROW(LINE_APPLIED, "b1")),
		     PLAN("0003-c", "c1", ROW(LINE_APPLIED, "c1")) },
	  .want = { { LINE_INVALID, true, LINE_WHY_INVALID },
		    { LINE_DRIFT, true, LINE_WHY_CHECKSUM },
		    { LINE_APPLIED, false, LINE_WHY_SETTLED } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_FAILED_HEALTH, .ref_of = N,
	  .ooo_event = N },
	{ "out of order, out_of_order: run — it runs, said once", .n = 2, .ooo = LINE_OOO_RUN,
	  .plans = { PLAN("0001-a", "a1"), PLAN("0002-b", "b1", ROW(LINE_APPLIED, "b1")) },
	  .want = { { LINE_RUNNING, false, LINE_WHY_RUNS }, { LINE_APPLIED, false, LINE_WHY_DB } },
	  .next = 0, .sync = LINE_APPLYING, .health = LINE_PROGRESSING, .ref_of = 0, .ref = 1,
	  .ooo_event = 0 },
	{ "out of order, seen before: runs, not said again", .n = 2, .ooo = LINE_OOO_RUN,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_FAILED, "a1")),
		     PLAN("0002-b", "b1", ROW(LINE_APPLIED, "b1")) },
	  .want = { { LINE_RUNNING, false, LINE_WHY_RUNS }, { LINE_APPLIED, false, LINE_WHY_DB } },
	  .next = 0, .sync = LINE_APPLYING, .health = LINE_PROGRESSING, .ref_of = N,
	  .ooo_event = N },
	{ "out of order, out_of_order: refuse — blocked, naming the later plan", .n = 2,
	  .ooo = LINE_OOO_REFUSE,
	  .plans = { PLAN("0001-a", "a1"), PLAN("0002-b", "b1", ROW(LINE_APPLIED, "b1")) },
	  .want = { { LINE_BLOCKED, true, LINE_WHY_OUT_OF_ORDER },
		    { LINE_APPLIED, false, LINE_WHY_SETTLED } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_DEGRADED, .ref_of = 0, .ref = 1,
	  .ooo_event = N },
	{ "failed, then edited (not a step that ran): it runs again", .n = 2,
	  .plans = { PLAN("0001-a", "a2", ROW(LINE_FAILED, "a1")), PLAN("0002-b", "b1") },
	  .want = { { LINE_RUNNING, false, LINE_WHY_RUNS },
		    { LINE_PENDING, false, LINE_WHY_WAITS } },
	  .next = 0, .sync = LINE_APPLYING, .health = LINE_PROGRESSING, .ref_of = N,
	  .ooo_event = N },
	{ "failed, then a step that ran edited: drift", .n = 1,
	  .plans = { PLAN("0001-a", "a2", ROW(LINE_FAILED, "a1"), .ledger_stale = true) },
	  .want = { { LINE_DRIFT, true, LINE_WHY_STALE } }, .next = N, .sync = LINE_OUT_OF_SYNC,
	  .health = LINE_FAILED_HEALTH, .ref_of = N, .ooo_event = N },
	{ "failed at this tip: not retried until a new commit or reconcile", .n = 2,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_FAILED, "a1"), .failed_here = true),
		     PLAN("0002-b", "b1") },
	  .want = { { LINE_FAILED, false, LINE_WHY_FAILED_HERE },
		    { LINE_PENDING, false, LINE_WHY_WAITS } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_FAILED_HEALTH, .ref_of = N,
	  .ooo_event = N },
	{ "failed at an earlier tip: retried", .n = 1,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_FAILED, "a1")) },
	  .want = { { LINE_RUNNING, false, LINE_WHY_RUNS } }, .next = 0, .sync = LINE_APPLYING,
	  .health = LINE_PROGRESSING, .ref_of = N, .ooo_event = N },
	{ "H3 unsigned under require_signed_h3: blocked", .n = 2,
	  .plans = { PLAN("0001-a", "a1", .blocked = true), PLAN("0002-b", "b1") },
	  .want = { { LINE_BLOCKED, true, LINE_WHY_POLICY },
		    { LINE_PENDING, false, LINE_WHY_WAITS } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_DEGRADED, .ref_of = N,
	  .ooo_event = N },
	{ "H3 unsigned, already recorded blocked: nothing new to record", .n = 1,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_BLOCKED, "a1"), .blocked = true) },
	  .want = { { LINE_BLOCKED, false, LINE_WHY_POLICY } }, .next = N, .sync = LINE_OUT_OF_SYNC,
	  .health = LINE_DEGRADED, .ref_of = N, .ooo_event = N },
	{ "H3 signed, once blocked: it runs", .n = 1,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_BLOCKED, "a1")) },
	  .want = { { LINE_RUNNING, false, LINE_WHY_RUNS } }, .next = 0, .sync = LINE_APPLYING,
	  .health = LINE_PROGRESSING, .ref_of = N, .ooo_event = N },
	{ "H3 behind a rate-limited plan: blocked at once", .n = 2,
	  .plans = { PLAN("0001-a", "a1", .rate = LINE_RATE_OVER),
		     PLAN("0002-b", "b1", .blocked = true) },
	  .want = { { LINE_RATE_LIMITED, true, LINE_WHY_RATE_OVER },
		    { LINE_BLOCKED, true, LINE_WHY_POLICY } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_DEGRADED, .ref_of = N,
	  .ooo_event = N },
	{ "rate window: still over, already recorded", .n = 1,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_RATE_LIMITED, "a1"), .rate = LINE_RATE_OVER) },
	  .want = { { LINE_RATE_LIMITED, false, LINE_WHY_RATE_OVER } }, .next = N,
	  .sync = LINE_OUT_OF_SYNC, .health = LINE_DEGRADED, .ref_of = N, .ooo_event = N },
	{ "rate window: under the limit again (the runs left the window), it runs", .n = 1,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_RATE_LIMITED, "a1"), .rate = LINE_RATE_UNDER) },
	  .want = { { LINE_RUNNING, false, LINE_WHY_RUNS } }, .next = 0, .sync = LINE_APPLYING,
	  .health = LINE_PROGRESSING, .ref_of = N, .ooo_event = N },
	{ "rate limit that could not be checked: blocked", .n = 1,
	  .plans = { PLAN("0001-a", "a1", .rate = LINE_RATE_UNKNOWN) },
	  .want = { { LINE_BLOCKED, true, LINE_WHY_RATE_UNKNOWN } }, .next = N,
	  .sync = LINE_OUT_OF_SYNC, .health = LINE_DEGRADED, .ref_of = N, .ooo_event = N },
	{ "a rate limit is only the head's: behind a stopped line, it waits", .n = 2,
	  .plans = { BROKEN("0001-a"), PLAN("0002-b", "b1", .rate = LINE_RATE_OVER) },
	  .want = { { LINE_INVALID, true, LINE_WHY_INVALID },
		    { LINE_PENDING, false, LINE_WHY_WAITS } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_FAILED_HEALTH, .ref_of = N,
	  .ooo_event = N },
	{ "the revert of the failed plan that stops the line runs", .n = 3,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_FAILED, "a1"), .failed_here = true),
		     PLAN("0002-b", "b1"),
		     PLAN("0003-revert-a", "r1", .is_revert = true, .reverts = 0) },
	  .want = { { LINE_FAILED, false, LINE_WHY_REVERT_NEXT },
		    { LINE_PENDING, false, LINE_WHY_WAITS },
		    { LINE_RUNNING, false, LINE_WHY_RUNS } },
	  .next = 2, .sync = LINE_APPLYING, .health = LINE_FAILED_HEALTH, .ref_of = 0, .ref = 2,
	  .ooo_event = N },
	{ "an invalid file between the failed plan and its revert: the revert waits too", .n = 4,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_FAILED, "a1"), .failed_here = true),
		     BROKEN("0002-x"), PLAN("0003-b", "b1"),
		     PLAN("0004-revert-a", "r1", .is_revert = true, .reverts = 0) },
	  .want = { { LINE_FAILED, false, LINE_WHY_REVERT_NEXT },
		    { LINE_INVALID, true, LINE_WHY_INVALID },
		    { LINE_PENDING, false, LINE_WHY_WAITS },
		    { LINE_PENDING, false, LINE_WHY_WAITS } },
	  .next = N, .sync = LINE_OUT_OF_SYNC, .health = LINE_FAILED_HEALTH, .ref_of = 0, .ref = 3,
	  .ooo_event = N },
	{ "... once it applied: the reverted plan is settled, the line goes on", .n = 3,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_REVERTED_EXPAND, "a1")), PLAN("0002-b", "b1"),
		     PLAN("0003-revert-a", "r1", ROW(LINE_APPLIED, "r1"), .is_revert = true,
			  .reverts = 0) },
	  .want = { { LINE_REVERTED_EXPAND, false, LINE_WHY_SETTLED },
		    { LINE_RUNNING, false, LINE_WHY_RUNS },
		    { LINE_APPLIED, false, LINE_WHY_DB } },
	  .next = 1, .sync = LINE_APPLYING, .health = LINE_PROGRESSING, .ref_of = N,
	  .ooo_event = N },
	{ "out_of_order: refuse does not block the plans behind a revert that ran at the gate",
	  .n = 3, .ooo = LINE_OOO_REFUSE,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_REVERTED, "a1")), PLAN("0002-b", "b1"),
		     PLAN("0003-revert-a", "r1", ROW(LINE_APPLIED, "r1"), .is_revert = true,
			  .reverts = 0) },
	  .want = { { LINE_REVERTED, false, LINE_WHY_SETTLED },
		    { LINE_RUNNING, false, LINE_WHY_RUNS },
		    { LINE_APPLIED, false, LINE_WHY_DB } },
	  .next = 1, .sync = LINE_APPLYING, .health = LINE_PROGRESSING, .ref_of = N,
	  .ooo_event = N },
	{ "a reverted plan never runs again, and is in sync", .n = 2,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_REVERTED, "a1")),
		     PLAN("0002-revert-a", "r1", ROW(LINE_APPLIED, "r1"), .is_revert = true,
			  .reverts = 0) },
	  .want = { { LINE_REVERTED, false, LINE_WHY_SETTLED },
		    { LINE_APPLIED, false, LINE_WHY_SETTLED } },
	  .next = N, .sync = LINE_IN_SYNC, .health = LINE_HEALTHY, .ref_of = N, .ooo_event = N },
	{ "a reverted plan edited: drift", .n = 1,
	  .plans = { PLAN("0001-a", "a2", ROW(LINE_REVERTED_VALIDATE, "a1")) },
	  .want = { { LINE_DRIFT, true, LINE_WHY_CHECKSUM } }, .next = N, .sync = LINE_OUT_OF_SYNC,
	  .health = LINE_FAILED_HEALTH, .ref_of = N, .ooo_event = N },
	{ "an accepted removal come back (no checksum): checked against the ledger", .n = 1,
	  .plans = { PLAN("0001-a", "a1", ROW(LINE_APPLIED, "")) },
	  .want = { { LINE_RUNNING, false, LINE_WHY_RUNS } }, .next = 0, .sync = LINE_APPLYING,
	  .health = LINE_PROGRESSING, .ref_of = N, .ooo_event = N },
};

static void
test_line_decide__situations(void **state)
{
	static const struct line_config base = { 0 };

	(void)state;
	for (size_t s = 0; s < sizeof(situations) / sizeof(situations[0]); s++) {
		const struct situation *t = &situations[s];
		struct line_config cfg = base;
		struct line_verdict out[MAXP];
		struct line_decision d;

		cfg.out_of_order = t->ooo;
		memset(&d, 0xff, sizeof(d));
		line_decide(&cfg, t->plans, t->n, out, &d);
		for (size_t i = 0; i < t->n; i++) {
			if (out[i].status != t->want[i].status ||
			    out[i].record != t->want[i].record || out[i].why != t->want[i].why)
				fail_msg("%s: plan %zu (%s): got %s%s (why %d), expected %s%s "
					 "(why %d)",
					 t->name, i, t->plans[i].id,
					 line_status_name(out[i].status),
					 out[i].record ? " recorded" : "", (int)out[i].why,
					 line_status_name(t->want[i].status),
					 t->want[i].record ? " recorded" : "", (int)t->want[i].why);
			if (out[i].ooo_event != (t->ooo_event == i))
				fail_msg("%s: plan %zu: out-of-order event %d", t->name, i,
					 out[i].ooo_event);
			if (i == t->ref_of && out[i].ref != t->ref)
				fail_msg("%s: plan %zu names plan %zu, expected %zu", t->name, i,
					 out[i].ref, t->ref);
			/* the plans after the one that runs are not judged yet */
			if (out[i].waits != (d.next != N && i > d.next))
				fail_msg("%s: plan %zu: waits %d", t->name, i, out[i].waits);
		}
		if (d.next != t->next || d.sync != t->sync || d.health != t->health)
			fail_msg("%s: next %zu %s %s, expected next %zu %s %s", t->name, d.next,
				 line_sync_name(d.sync), line_health_name(d.health), t->next,
				 line_sync_name(t->sync), line_health_name(t->health));
	}
}

/*
 * The caller's loop: decide, run what it names, write the outcome into the
 * view, decide again; a failure whose revert comes later runs the revert,
 * and the line goes on once the reverted plan is settled.
 */
static void
test_line_decide__loop_to_the_end(void **state)
{
	struct line_plan plans[4] = {
		PLAN("0001-a", "a1", ROW(LINE_APPLIED, "a1")),
		PLAN("0002-b", "b1"),
		PLAN("0003-c", "c1"),
		PLAN("0004-revert-b", "r1", .is_revert = true, .reverts = 1),
	};
	static const struct line_config cfg = { LINE_OOO_RUN };
	struct line_verdict out[4];
	struct line_decision d;
	size_t ran[8], nran = 0;

	(void)state;
	for (int round = 0; round < 8; round++) {
		line_decide(&cfg, plans, 4, out, &d);
		if (d.next == N)
			break;
		ran[nran++] = d.next;
		plans[d.next].has_row = true;
		plans[d.next].db_checksum = plans[d.next].checksum;
		if (d.next == 1) {
			/* b fails at this tip */
			plans[1].db = LINE_FAILED;
			plans[1].failed_here = true;
		} else {
			plans[d.next].db = LINE_APPLIED;
			if (plans[d.next].is_revert)
				plans[plans[d.next].reverts].db = LINE_REVERTED;
		}
	}
	/* b, its revert (c waits behind the failure), then c */
	assert_int_equal(nran, 3);
	assert_int_equal(ran[0], 1);
	assert_int_equal(ran[1], 3);
	assert_int_equal(ran[2], 2);
	assert_int_equal(d.sync, LINE_IN_SYNC);
	assert_int_equal(d.health, LINE_HEALTHY);
	assert_int_equal(out[1].status, LINE_REVERTED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_names__match_the_database),
		cmocka_unit_test(test_line_health__one_ranking),
		cmocka_unit_test(test_line_transition__table),
		cmocka_unit_test(test_line_decide__situations),
		cmocka_unit_test(test_line_decide__loop_to_the_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
