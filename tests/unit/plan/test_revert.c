/*
 * Revert plans (plan_revert.c): a file with revert: and to_wave: parsed
 * without steps and checksummed as written; resolved against the plan it
 * reverts as that plan's inverses after to_wave, last first, each with a
 * step_sha of its own; refused with every irreversible step named, with a
 * missing target, with steps beside revert, and as the revert of a revert.
 */
#include "plan_test.h"

#include <sys/stat.h>
#include <unistd.h>

#include "plan/plan_int.h"

/* expand: add_column (line 6); backfill: backfill_sql with revert_sql (line 9); validate: check */
#define TARGET                                                                                     \
	"id: p1\ntitle: t\nreason: r\nsteps:\n"                                                    \
	"  - op: add_column\n    table: app.users\n    name: score\n"                              \
	"    type: integer\n"                                                                      \
	"  - op: add_check_not_valid\n    table: app.users\n    name: score_pos\n"                 \
	"    check: score >= 0\n"                                                                  \
	"  - op: backfill_sql\n    sql: UPDATE app.users SET score = 0 WHERE score IS NULL\n"      \
	"    revert_sql: UPDATE app.users SET score = NULL WHERE score = 0\n"                      \
	"  - { op: validate_constraint, table: app.users, name: score_pos }\n"                     \
	"  - { op: set_not_null, table: app.users, column: score }\n"

#define IRREVERSIBLE                                                                               \
	"id: p2\ntitle: t\nreason: r\nsteps:\n"                                                    \
	"  - { op: add_column, table: app.users, name: nick, type: text }\n"                       \
	"  - { op: drop_column, table: app.users, name: legacy }\n"                                \
	"  - { op: drop_table, table: app.old }\n"

static struct plan *
target(const char *text)
{
	return pt_parse_ok("dir/0001-p.yaml", text);
}

static void
test_plan_revert__whole_plan_is_its_inverses_last_first(void **state)
{
	struct plan *rev =
	    pt_parse_ok("dir/0002-r.yaml", "id: r1\ntitle: undo\nreason: why\nrevert: p1\n");
	struct plan *t = target(TARGET);
	struct diags d = DIAGS_INIT;
	const struct plan_wave_s *wv;
	const struct plan_step *fwd[5];
	size_t k = 0;

	(void)state;
	assert_string_equal(rev->revert_of, "p1");
	assert_int_equal(rev->to_wave, -1);
	assert_int_equal(rev->nsteps, 0);
	assert_int_equal(strlen(rev->checksum), 64);
	for (int w = 0; w < WAVE__COUNT; w++)
		for (size_t i = 0; i < t->waves[w].nsteps; i++)
			fwd[k++] = &t->waves[w].steps[i];
	assert_int_equal(k, 5);
	assert_int_equal(plan_revert_resolve(rev, t, &d), 0);
	assert_int_equal(d.n, 0);
	assert_ptr_equal(rev->reverted, t);
	assert_int_equal(rev->max_hazard, H3);
	wv = &rev->waves[WAVE_CONTRACT];
	/* set_not_null, backfill, add_check, add_column undone; validate has nothing to undo */
	assert_int_equal(rev->nsteps, 4);
	assert_int_equal(wv->nsteps, 4);
	assert_ptr_equal(wv->steps[0].undoes, fwd[4]);
	assert_int_equal(wv->steps[0].op, OP_DROP_NOT_NULL);
	assert_ptr_equal(wv->steps[1].undoes, fwd[2]);
	assert_int_equal(wv->steps[1].op, OP_BACKFILL_SQL);
	assert_non_null(strstr(wv->steps[1].sql, "score = NULL"));
	assert_ptr_equal(wv->steps[2].undoes, fwd[1]);
	assert_int_equal(wv->steps[2].op, OP_DROP_CONSTRAINT);
	assert_ptr_equal(wv->steps[3].undoes, fwd[0]);
	assert_int_equal(wv->steps[3].op, OP_DROP_COLUMN);
	for (size_t i = 0; i < 4; i++) {
		const struct plan_step *s = &wv->steps[i];

		assert_int_equal(s->index, i);
		assert_int_equal(s->wave, WAVE_CONTRACT);
		/* removes the forward step's ledger row; its own row is not the rollback's */
		assert_string_equal(s->inverse_of, s->undoes->sha);
		assert_string_not_equal(s->sha, s->undoes->inverse->sha);
		assert_string_not_equal(s->sha, s->undoes->sha);
		assert_int_equal(strlen(s->sha), 64);
	}
	assert_int_equal(rev->revert_kept.n, 1);
	assert_non_null(strstr(rev->revert_kept.v[0], "validate_constraint"));
	assert_string_equal(plan_revert_status(rev), "reverted");
	plan_free(rev); /* frees t too */
}

static void
test_plan_revert__to_wave_keeps_that_wave_and_the_ones_before(void **state)
{
	struct plan *rev =
	    pt_parse_ok("dir/0002-r.yaml", "id: r1\ntitle: undo\nreason: why\nrevert: p1\n"
					   "to_wave: expand\n");
	struct plan *other =
	    pt_parse_ok("dir/0002-r.yaml", "id: r1\ntitle: undo\nreason: why\nrevert: p1\n");
	struct diags d = DIAGS_INIT;
	const struct plan_wave_s *wv = &rev->waves[WAVE_CONTRACT];

	(void)state;
	assert_int_equal(rev->to_wave, WAVE_EXPAND);
	/* to_wave is part of what the checksum covers */
	assert_string_not_equal(rev->checksum, other->checksum);
	plan_free(other);
	assert_int_equal(plan_revert_resolve(rev, target(TARGET), &d), 0);
	assert_int_equal(rev->nsteps, 2);
	assert_int_equal(wv->steps[0].op, OP_DROP_NOT_NULL);
	assert_int_equal(wv->steps[1].op, OP_BACKFILL_SQL);
	for (size_t i = 0; i < wv->nsteps; i++)
		assert_true(wv->steps[i].undoes->wave > WAVE_EXPAND);
	assert_string_equal(plan_revert_status(rev), "reverted to expand");
	plan_free(rev);
}

static void
test_plan_revert__inverses_keep_the_limits_of_their_wave(void **state)
{
	struct plan *rev =
	    pt_parse_ok("dir/0002-r.yaml", "id: r1\ntitle: undo\nreason: why\nrevert: p1\n");
	struct plan *t =
	    pt_parse_ok("dir/0001-p.yaml", "id: p1\ntitle: t\nreason: r\nwaves:\n"
					   "  - name: backfill\n"
					   "    limits: { batch_size: 50, rows_per_second: 300 }\n"
					   "    steps:\n"
					   "      - op: backfill_sql\n"
					   "        sql: UPDATE a SET b = 1 WHERE b IS NULL\n"
					   "        revert_sql: UPDATE a SET b = NULL WHERE b = 1\n"
					   "        limits: { batch_size: 70 }\n");
	struct plan_policy pol;
	struct diags d = DIAGS_INIT;
	const struct plan_step *s;

	(void)state;
	assert_int_equal(plan_revert_resolve(rev, t, &d), 0);
	plan_policy_default(&pol, MODE_PROTECTED);
	plan_apply_policy(rev, &pol);
	s = &rev->waves[WAVE_CONTRACT].steps[0];
	assert_int_equal(s->op, OP_BACKFILL_SQL);
	assert_int_equal(s->ob.batch_size, 70);	      /* the step's own */
	assert_int_equal(s->ob.rows_per_second, 300); /* its wave's in the reverted plan */
	assert_int_equal(s->ob.max_lock_ms, 2000);    /* the mode's */
	plan_free(rev);
}

static void
test_plan_revert__nothing_after_to_wave_is_invalid(void **state)
{
	struct plan *rev =
	    pt_parse_ok("dir/0002-r.yaml", "id: r1\ntitle: undo\nreason: why\nrevert: p1\n"
					   "to_wave: contract\n");
	struct diags d = DIAGS_INIT;

	(void)state;
	assert_int_equal(plan_revert_resolve(rev, target(TARGET), &d), -1);
	assert_int_equal(d.nerrors, 1);
	assert_int_equal(d.v[0].line, 5);
	assert_int_equal(d.v[0].col, 10);
	assert_non_null(strstr(d.v[0].msg, "nothing to undo after wave contract"));
	assert_null(rev->reverted);
	diags_clear(&d);
	plan_free(rev);
}

static void
test_plan_revert__every_irreversible_step_is_named(void **state)
{
	struct plan *rev =
	    pt_parse_ok("dir/0002-r.yaml", "id: r2\ntitle: undo\nreason: why\nrevert: p2\n");
	struct diags d = DIAGS_INIT;

	(void)state;
	assert_int_equal(plan_revert_resolve(rev, target(IRREVERSIBLE), &d), -1);
	assert_int_equal(d.nerrors, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(d.v[i].file, "dir/0002-r.yaml");
		assert_int_equal(d.v[i].line, 4);
		assert_int_equal(d.v[i].col, 9);
		assert_non_null(strstr(d.v[i].msg, "cannot be undone"));
	}
	assert_non_null(strstr(d.v[0].msg, "drop_column at dir/0001-p.yaml:6:5"));
	assert_non_null(strstr(d.v[1].msg, "drop_table at dir/0001-p.yaml:7:5"));
	assert_int_equal(rev->nsteps, 0);
	diags_clear(&d);
	plan_free(rev);
}

static void
test_plan_revert__a_revert_is_not_reverted(void **state)
{
	struct plan *rev =
	    pt_parse_ok("dir/0003-rr.yaml", "id: r2\ntitle: undo\nreason: why\nrevert: r1\n");
	struct plan *r1 =
	    pt_parse_ok("dir/0002-r.yaml", "id: r1\ntitle: undo\nreason: why\nrevert: p1\n");
	struct diags d = DIAGS_INIT;

	(void)state;
	assert_int_equal(plan_revert_resolve(rev, r1, &d), -1);
	assert_int_equal(d.nerrors, 1);
	assert_non_null(strstr(d.v[0].msg, "is itself a revert plan"));
	diags_clear(&d);
	plan_free(rev);
}

static void
test_plan_revert__steps_beside_revert_are_an_error(void **state)
{
	static const char text[] = "id: r1\ntitle: t\nreason: r\nrevert: p1\nsteps:\n"
				   "  - { op: drop_table, table: x }\n";
	static const struct pt_err e[] = { { 6, 3,
					     "a revert plan (revert: at line 4) has no steps" } };
	static const char text2[] = "id: r1\ntitle: t\nreason: r\nrevert: p1\nto_wave: middle\n";
	static const struct pt_err e2[] = {
		{ 5, 10,
		  "to_wave: expected expand, backfill, validate or contract, found the string 'middle'" }
	};
	static const char text3[] = "id: r1\ntitle: t\nreason: r\nto_wave: expand\n";
	static const struct pt_err e3[] = { { 4, 10, "to_wave: only a revert plan has it" } };
	static const char text4[] =
	    "{\"id\": \"r1\", \"title\": \"t\", \"reason\": \"r\", \"revert\": 7}";
	static const struct pt_err e4[] = { { 1, 53,
					      "revert: expected the id of the plan to revert" } };

	(void)state;
	pt_expect_errors_n("r.yaml", text, strlen(text), 1, e);
	pt_expect_errors_n("r.yaml", text2, strlen(text2), 1, e2);
	pt_expect_errors_n("r.yaml", text3, strlen(text3), 1, e3);
	pt_expect_errors_n("r.json", text4, strlen(text4), 1, e4);
}

/* Writes text into dir/name. */
static void
put(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_plan_revert__directory_finds_the_target_before_it(void **state)
{
	char dir[] = "/tmp/ts-revert-XXXXXX", path[512];
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	put(dir, "0001-p.yaml", TARGET);
	put(dir, "0002-r.yaml", "id: r1\ntitle: undo\nreason: why\nrevert: p1\n");
	put(dir, "0003-missing.yaml", "id: r3\ntitle: undo\nreason: why\nrevert: nope\n");
	put(dir, "0004-again.yaml", "id: r4\ntitle: undo\nreason: why\nrevert: p1\n");
	put(dir, "0000-early.yaml", "id: r0\ntitle: undo\nreason: why\nrevert: late\n");
	put(dir, "0009-late.yaml",
	    "id: late\ntitle: t\nreason: r\nsteps:\n"
	    "  - { op: add_column, table: a, name: b, type: text }\n");
	snprintf(path, sizeof(path), "%s/0002-r.yaml", dir);
	assert_int_equal(plan_load(&p, path, &d), 0);
	assert_non_null(p->reverted);
	assert_string_equal(p->reverted->id, "p1");
	assert_int_equal(p->nsteps, 4);
	plan_free(p);
	p = NULL;
	/* a missing target is named */
	snprintf(path, sizeof(path), "%s/0003-missing.yaml", dir);
	assert_int_equal(plan_load(&p, path, &d), -1);
	assert_null(p);
	assert_int_equal(d.nerrors, 1);
	assert_int_equal(d.v[0].line, 4);
	assert_non_null(strstr(d.v[0].msg, "no plan with id 'nope'"));
	diags_clear(&d);
	/* a second revert of one plan */
	snprintf(path, sizeof(path), "%s/0004-again.yaml", dir);
	assert_int_equal(plan_load(&p, path, &d), -1);
	assert_int_equal(d.nerrors, 1);
	assert_non_null(strstr(d.v[0].msg, "reverted already by 0002-r.yaml"));
	diags_clear(&d);
	/* a revert before its plan */
	snprintf(path, sizeof(path), "%s/0000-early.yaml", dir);
	assert_int_equal(plan_load(&p, path, &d), -1);
	assert_int_equal(d.nerrors, 1);
	assert_non_null(strstr(d.v[0].msg, "comes after this file"));
	diags_clear(&d);
	for (const char *const *n =
		 (const char *const[]){ "0000-early.yaml", "0001-p.yaml", "0002-r.yaml",
					"0003-missing.yaml", "0004-again.yaml", "0009-late.yaml",
					NULL };
	     *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *n);
		unlink(path);
	}
	rmdir(dir);
}

static void
test_plan_revert__chaos_blocks_it(void **state)
{
	struct plan *rev =
	    pt_parse_ok("dir/0002-r.yaml", "id: r1\ntitle: undo\nreason: why\nrevert: p1\n");
	struct plan_policy pol;
	struct diags d = DIAGS_INIT;

	(void)state;
	assert_int_equal(plan_revert_resolve(rev, target(TARGET), &d), 0);
	plan_policy_default(&pol, MODE_CHAOS);
	plan_apply_policy(rev, &pol);
	assert_true(rev->blocked);
	assert_non_null(strstr(rev->blocked_reason, "H3"));
	plan_policy_default(&pol, MODE_PROTECTED);
	plan_apply_policy(rev, &pol);
	assert_false(rev->blocked);
	plan_free(rev);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_revert__whole_plan_is_its_inverses_last_first),
		cmocka_unit_test(test_plan_revert__to_wave_keeps_that_wave_and_the_ones_before),
		cmocka_unit_test(test_plan_revert__inverses_keep_the_limits_of_their_wave),
		cmocka_unit_test(test_plan_revert__nothing_after_to_wave_is_invalid),
		cmocka_unit_test(test_plan_revert__every_irreversible_step_is_named),
		cmocka_unit_test(test_plan_revert__a_revert_is_not_reverted),
		cmocka_unit_test(test_plan_revert__steps_beside_revert_are_an_error),
		cmocka_unit_test(test_plan_revert__directory_finds_the_target_before_it),
		cmocka_unit_test(test_plan_revert__chaos_blocks_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
