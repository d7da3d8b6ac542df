/*
 * Modes: the defaults of a protected and a chaos branch (docs/contract.md §4), which
 * plans a chaos branch blocks, and how step, wave and mode limits combine.
 */
#include "plan_test.h"

static void
test_plan_policy__protected_defaults(void **state)
{
	struct plan_policy pol;

	(void)state;
	memset(&pol, 0xab, sizeof(pol));
	plan_policy_default(&pol, MODE_PROTECTED);
	assert_int_equal(pol.mode, MODE_PROTECTED);
	assert_int_equal(pol.max_lock_ms, 2000);
	assert_int_equal(pol.max_stmt_ms, 60000);
	assert_int_equal(pol.max_stmt_ms_long, 0);
	assert_int_equal(pol.max_hazard, H3);
	assert_true(pol.rows_per_second > 0);
	assert_true(pol.batch_size > 0);
}

static void
test_plan_policy__chaos_defaults(void **state)
{
	struct plan_policy pol;

	(void)state;
	memset(&pol, 0xab, sizeof(pol));
	plan_policy_default(&pol, MODE_CHAOS);
	assert_int_equal(pol.mode, MODE_CHAOS);
	assert_int_equal(pol.max_lock_ms, 50);
	assert_int_equal(pol.max_stmt_ms, 10000);
	assert_int_equal(pol.max_stmt_ms_long, 10000);
	assert_int_equal(pol.max_hazard, H2);
	assert_true(pol.rows_per_second > 0);
	assert_true(pol.batch_size > 0);
}

static const char mixed[] =
    PT_HEAD "  - {op: add_column, table: t, name: a, type: int}\n"
	    "  - {op: add_index_concurrently, table: t, name: i, columns: [a]}\n"
	    "  - {op: backfill_sql, sql: 'UPDATE t SET a = 1'}\n"
	    "  - {op: add_check_not_valid, table: t, name: c, check: 'a > 0'}\n";

static void
test_plan_policy__protected_timeouts_by_op(void **state)
{
	struct plan *p = pt_parse_ok("p.yaml", mixed);
	struct plan_policy pol;
	struct plan_step *add, *idx, *bf, *chk;

	(void)state;
	plan_policy_default(&pol, MODE_PROTECTED);
	plan_apply_policy(p, &pol);
	add = pt_step(p, WAVE_EXPAND, 0);
	idx = pt_step(p, WAVE_EXPAND, 1);
	chk = pt_step(p, WAVE_EXPAND, 2);
	bf = pt_step(p, WAVE_BACKFILL, 0);
	assert_int_equal(add->ob.max_lock_ms, 2000);
	assert_int_equal(add->ob.max_stmt_ms, 60000);
	assert_int_equal(chk->ob.max_stmt_ms, 60000);
	/* index builds and backfill batches have no statement timeout */
	assert_int_equal(idx->ob.max_lock_ms, 2000);
	assert_int_equal(idx->ob.max_stmt_ms, 0);
	assert_int_equal(bf->ob.max_lock_ms, 2000);
	assert_int_equal(bf->ob.max_stmt_ms, 0);
	assert_int_equal(bf->ob.rows_per_second, pol.rows_per_second);
	assert_int_equal(bf->ob.batch_size, pol.batch_size);
	assert_int_equal(p->mode, MODE_PROTECTED);
	assert_false(p->blocked);
	assert_null(p->blocked_reason);
	plan_free(p);
}

static void
test_plan_policy__chaos_timeouts_by_op(void **state)
{
	struct plan *p = pt_parse_ok("p.yaml", mixed);
	struct plan_policy pol;

	(void)state;
	plan_policy_default(&pol, MODE_CHAOS);
	plan_apply_policy(p, &pol);
	for (int w = 0; w < WAVE__COUNT; w++)
		for (size_t i = 0; i < p->waves[w].nsteps; i++) {
			assert_int_equal(p->waves[w].steps[i].ob.max_lock_ms, 50);
			assert_int_equal(p->waves[w].steps[i].ob.max_stmt_ms, 10000);
		}
	/* an H2 plan runs on a chaos branch */
	assert_int_equal(p->max_hazard, H2);
	assert_false(p->blocked);
	assert_int_equal(p->mode, MODE_CHAOS);
	plan_free(p);
}

static void
test_plan_policy__h3_blocked_in_chaos_only(void **state)
{
	struct plan *p =
	    pt_parse_ok("p.yaml", PT_HEAD "  - {op: add_column, table: t, name: a, type: int}\n"
					  "  - {op: drop_column, table: t, name: b}\n");
	struct plan_policy chaos, prot;

	(void)state;
	plan_policy_default(&chaos, MODE_CHAOS);
	plan_policy_default(&prot, MODE_PROTECTED);
	plan_apply_policy(p, &chaos);
	assert_true(p->blocked);
	assert_non_null(p->blocked_reason);
	assert_non_null(strstr(p->blocked_reason, "H3"));
	assert_non_null(strstr(p->blocked_reason, "chaos"));
	assert_non_null(strstr(p->blocked_reason, "at most H2"));
	/* the same plan, planned again for a protected branch */
	plan_apply_policy(p, &prot);
	assert_false(p->blocked);
	assert_null(p->blocked_reason);
	plan_free(p);
}

static void
test_plan_policy__every_h3_op_is_blocked_in_chaos(void **state)
{
	static const char *const steps[] = {
		"{op: add_column, table: t, name: s, type: bigserial}",
		"{op: validate_constraint, table: t, name: c}",
		"{op: set_not_null, table: t, column: a}",
		"{op: drop_column, table: t, name: a}",
		"{op: drop_index_concurrently, name: i}",
		"{op: drop_table, table: t}",
		"{op: rename_column, table: t, from: a, to: b}",
		"{op: rename_table, from: a, to: b}",
		"{op: sql, sql: 'CREATE INDEX i ON t (a)', lock_class_max: ShareLock}",
		"{op: sql, sql: 'DO $$BEGIN NULL; END$$'}",
	};
	struct plan_policy chaos;

	(void)state;
	plan_policy_default(&chaos, MODE_CHAOS);
	for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
		char text[256];
		struct plan *p;

		snprintf(text, sizeof(text), PT_HEAD "  - %s\n", steps[i]);
		p = pt_parse_ok("p.yaml", text);
		plan_apply_policy(p, &chaos);
		assert_int_equal(p->max_hazard, H3);
		assert_true(p->blocked);
		plan_free(p);
	}
}

static void
test_plan_policy__step_over_wave_over_mode(void **state)
{
	struct plan *p = pt_parse_ok(
	    "p.yaml", "title: t\nreason: r\nwaves:\n"
		      "  - name: expand\n"
		      "    limits: {max_lock_ms: 100, max_stmt_ms: 5000}\n"
		      "    steps:\n"
		      "      - {op: add_column, table: t, name: a, type: int, "
		      "limits: {max_lock_ms: 7}}\n"
		      "      - {op: add_column, table: t, name: b, type: int}\n"
		      "      - {op: add_index_concurrently, table: t, name: i, columns: [a]}\n"
		      "  - name: backfill\n"
		      "    limits: {rows_per_second: 300, batch_size: 50}\n"
		      "    steps:\n"
		      "      - {op: backfill_sql, sql: 'UPDATE t SET a = 1', "
		      "limits: {batch_size: 10, max_stmt_ms: 0}}\n"
		      "      - {op: backfill_sql, sql: 'UPDATE t SET b = 1'}\n"
		      "  - name: contract\n"
		      "    steps:\n"
		      "      - {op: drop_column, table: t, name: c, limits: {max_stmt_ms: 1}}\n");
	struct plan_policy pol;
	struct plan_step *s;

	(void)state;
	plan_policy_default(&pol, MODE_PROTECTED);
	plan_apply_policy(p, &pol);
	s = pt_step(p, WAVE_EXPAND, 0); /* step limit, wave limit */
	assert_int_equal(s->ob.max_lock_ms, 7);
	assert_int_equal(s->ob.max_stmt_ms, 5000);
	s = pt_step(p, WAVE_EXPAND, 1); /* wave limits */
	assert_int_equal(s->ob.max_lock_ms, 100);
	assert_int_equal(s->ob.max_stmt_ms, 5000);
	s = pt_step(p, WAVE_EXPAND, 2); /* the wave's max_stmt_ms overrides the index default 0 */
	assert_int_equal(s->ob.max_stmt_ms, 5000);
	s = pt_step(p, WAVE_BACKFILL, 0);
	assert_int_equal(s->ob.batch_size, 10);
	assert_int_equal(s->ob.rows_per_second, 300);
	assert_int_equal(s->ob.max_stmt_ms, 0);
	assert_int_equal(s->ob.max_lock_ms, 2000);
	s = pt_step(p, WAVE_BACKFILL, 1);
	assert_int_equal(s->ob.batch_size, 50);
	assert_int_equal(s->ob.rows_per_second, 300);
	s = pt_step(p, WAVE_CONTRACT, 0); /* no wave limits: step, then mode */
	assert_int_equal(s->ob.max_stmt_ms, 1);
	assert_int_equal(s->ob.max_lock_ms, 2000);

	/* in chaos, what the plan sets still wins over the mode's defaults */
	plan_policy_default(&pol, MODE_CHAOS);
	plan_apply_policy(p, &pol);
	assert_int_equal(pt_step(p, WAVE_EXPAND, 0)->ob.max_lock_ms, 7);
	assert_int_equal(pt_step(p, WAVE_EXPAND, 1)->ob.max_lock_ms, 100);
	assert_int_equal(pt_step(p, WAVE_CONTRACT, 0)->ob.max_lock_ms, 50);
	assert_int_equal(pt_step(p, WAVE_CONTRACT, 0)->ob.max_stmt_ms, 1);
	plan_free(p);
}

static void
test_plan_policy__custom_policy(void **state)
{
	struct plan *p =
	    pt_parse_ok("p.yaml", PT_HEAD
			"  - {op: add_column, table: t, name: a, type: int, nullable: false}\n");
	struct plan_policy pol;

	(void)state;
	plan_policy_default(&pol, MODE_CHAOS);
	pol.max_hazard = H1;
	pol.max_lock_ms = 25;
	plan_apply_policy(p, &pol);
	assert_true(p->blocked);
	assert_non_null(strstr(p->blocked_reason, "H2"));
	assert_non_null(strstr(p->blocked_reason, "at most H1"));
	assert_int_equal(pt_step(p, WAVE_EXPAND, 0)->ob.max_lock_ms, 25);
	plan_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_policy__protected_defaults),
		cmocka_unit_test(test_plan_policy__chaos_defaults),
		cmocka_unit_test(test_plan_policy__protected_timeouts_by_op),
		cmocka_unit_test(test_plan_policy__chaos_timeouts_by_op),
		cmocka_unit_test(test_plan_policy__h3_blocked_in_chaos_only),
		cmocka_unit_test(test_plan_policy__every_h3_op_is_blocked_in_chaos),
		cmocka_unit_test(test_plan_policy__step_over_wave_over_mode),
		cmocka_unit_test(test_plan_policy__custom_policy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
