/*
 * plan_to_json: the machine view of a planned plan (docs/contract.md §3,
 * `taskslapsctl plan --json`), with the keys and types a caller relies on.
 */
#include "plan_test.h"

#include <cjson/cJSON.h>

#include "plan/plan_json.h"

static const char text[] =
    "id: 0007-coffee\n"
    "title: Coffee\n"
    "reason: Engagement\n"
    "waves:\n"
    "  - name: expand\n"
    "    steps:\n"
    "      - {op: add_column, table: employee, name: cups, type: int}\n"
    "      - {op: add_index_concurrently, table: employee, name: cups_idx, columns: [cups]}\n"
    "  - name: backfill\n"
    "    limits: {rows_per_second: 500, batch_size: 100}\n"
    "    steps:\n"
    "      - op: backfill_sql\n"
    "        sql: UPDATE employee SET cups = 0 WHERE cups IS NULL\n"
    "        postchecks: ['NOT EXISTS (SELECT 1 FROM employee WHERE cups IS NULL)']\n"
    "  - name: contract\n"
    "    steps:\n"
    "      - {op: drop_column, table: employee, name: mugs}\n";

static const cJSON *
get(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v)
		print_message("missing key '%s'\n", key);
	assert_non_null(v);
	return v;
}

static const char *
get_str(const cJSON *o, const char *key)
{
	const cJSON *v = get(o, key);

	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

static double
get_num(const cJSON *o, const char *key)
{
	const cJSON *v = get(o, key);

	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

static cJSON *
planned(struct plan **pp, enum plan_mode mode)
{
	struct plan_policy pol;

	*pp = pt_parse_ok("m/0007-coffee.yaml", text);
	plan_policy_default(&pol, mode);
	plan_apply_policy(*pp, &pol);
	return plan_to_json(*pp);
}

static void
test_plan_json__top_level_keys(void **state)
{
	struct plan *p;
	cJSON *j = planned(&p, MODE_PROTECTED);

	(void)state;
	assert_string_equal(get_str(j, "plan_id"), "0007-coffee");
	assert_string_equal(get_str(j, "title"), "Coffee");
	assert_string_equal(get_str(j, "checksum"), p->checksum);
	assert_string_equal(get_str(j, "max_hazard"), "H3");
	assert_true(cJSON_IsFalse(get(j, "chaos_compatible")));
	assert_true(cJSON_IsArray(get(j, "waves")));
	assert_int_equal(cJSON_GetArraySize(get(j, "waves")), 3);
	assert_int_equal((int)get_num(j, "step_count"), 4);
	assert_string_equal(get_str(j, "mode"), "protected");
	assert_true(cJSON_IsFalse(get(j, "blocked")));
	assert_null(cJSON_GetObjectItemCaseSensitive(j, "blocked_reason"));
	cJSON_Delete(j);
	plan_free(p);
}

static void
test_plan_json__waves_and_steps(void **state)
{
	static const char *const names[] = { "expand", "backfill", "contract" };
	static const char *const hazards[] = { "H1", "H2", "H3" };
	struct plan *p;
	cJSON *j = planned(&p, MODE_PROTECTED);
	const cJSON *waves = get(j, "waves"), *w;
	int i = 0;

	(void)state;
	cJSON_ArrayForEach(w, waves)
	{
		const cJSON *steps = get(w, "steps"), *s;
		assert_string_equal(get_str(w, "name"), names[i]);
		assert_string_equal(get_str(w, "max_hazard"), hazards[i]);
		assert_int_equal(cJSON_IsTrue(get(w, "can_run_in_chaos")), i < 2);
		assert_true(cJSON_IsArray(steps));
		cJSON_ArrayForEach(s, steps)
		{
			const cJSON *ob = get(s, "obligations");
			assert_int_equal(strlen(get_str(s, "step_sha")), 64);
			assert_non_null(get_str(s, "op"));
			assert_non_null(get_str(s, "hazard"));
			assert_non_null(get_str(s, "sql"));
			assert_true(cJSON_IsObject(ob));
			assert_non_null(get_str(ob, "lock_class_max"));
			(void)get_num(ob, "max_lock_ms");
			(void)get_num(ob, "max_stmt_ms");
			assert_true(cJSON_IsArray(get(ob, "prechecks")));
			assert_true(cJSON_IsArray(get(ob, "postchecks")));
		}
		i++;
	}
	assert_int_equal(i, 3);
	cJSON_Delete(j);
	plan_free(p);
}

static void
test_plan_json__step_values(void **state)
{
	struct plan *p;
	cJSON *j = planned(&p, MODE_PROTECTED);
	const cJSON *expand = cJSON_GetArrayItem(get(j, "waves"), 0);
	const cJSON *backfill = cJSON_GetArrayItem(get(j, "waves"), 1);
	const cJSON *add = cJSON_GetArrayItem(get(expand, "steps"), 0);
	const cJSON *idx = cJSON_GetArrayItem(get(expand, "steps"), 1);
	const cJSON *bf = cJSON_GetArrayItem(get(backfill, "steps"), 0);
	const cJSON *ob;

	(void)state;
	assert_string_equal(get_str(add, "step_sha"), pt_step(p, WAVE_EXPAND, 0)->sha);
	assert_string_equal(get_str(add, "op"), "add_column");
	assert_string_equal(get_str(add, "hazard"), "H1");
	assert_string_equal(get_str(add, "sql"),
			    "ALTER TABLE \"employee\" ADD COLUMN \"cups\" int");
	ob = get(add, "obligations");
	assert_string_equal(get_str(ob, "lock_class_max"), "AccessExclusiveLock");
	assert_int_equal((int)get_num(ob, "max_lock_ms"), 2000);
	assert_int_equal((int)get_num(ob, "max_stmt_ms"), 60000);
	assert_int_equal(cJSON_GetArraySize(get(ob, "prechecks")), 2);
	assert_string_equal(cJSON_GetArrayItem(get(ob, "prechecks"), 0)->valuestring,
			    "taskslaps.table_exists('employee')");
	assert_string_equal(cJSON_GetArrayItem(get(ob, "postchecks"), 0)->valuestring,
			    "taskslaps.column_exists('employee', 'cups')");

	ob = get(idx, "obligations");
	assert_string_equal(get_str(ob, "lock_class_max"), "ShareUpdateExclusiveLock");
	assert_int_equal((int)get_num(ob, "max_stmt_ms"), 0);

	assert_string_equal(get_str(bf, "op"), "backfill_sql");
	assert_string_equal(get_str(bf, "hazard"), "H2");
	ob = get(bf, "obligations");
	assert_string_equal(get_str(ob, "lock_class_max"), "RowExclusiveLock");
	assert_int_equal((int)get_num(ob, "rows_per_second"), 500);
	assert_int_equal((int)get_num(ob, "batch_size"), 100);
	assert_int_equal(cJSON_GetArraySize(get(ob, "postchecks")), 1);
	/* only a backfill carries a rate */
	assert_null(cJSON_GetObjectItemCaseSensitive(get(add, "obligations"), "batch_size"));
	cJSON_Delete(j);
	plan_free(p);
}

static void
test_plan_json__chaos_blocked(void **state)
{
	struct plan *p;
	cJSON *j = planned(&p, MODE_CHAOS);

	(void)state;
	assert_string_equal(get_str(j, "mode"), "chaos");
	assert_true(cJSON_IsTrue(get(j, "blocked")));
	assert_non_null(strstr(get_str(j, "blocked_reason"), "H3"));
	{
		const cJSON *expand = cJSON_GetArrayItem(get(j, "waves"), 0);
		const cJSON *add = cJSON_GetArrayItem(get(expand, "steps"), 0);
		assert_int_equal((int)get_num(get(add, "obligations"), "max_lock_ms"), 50);
		assert_int_equal((int)get_num(get(add, "obligations"), "max_stmt_ms"), 10000);
	}
	cJSON_Delete(j);
	plan_free(p);
}

static void
test_plan_json__chaos_compatible_plan(void **state)
{
	struct plan *p =
	    pt_parse_ok("p.yaml", PT_HEAD "  - {op: create_view, name: v, sql: 'SELECT 1'}\n");
	struct plan_policy pol;
	cJSON *j;
	char *s;

	(void)state;
	plan_policy_default(&pol, MODE_CHAOS);
	plan_apply_policy(p, &pol);
	j = plan_to_json(p);
	assert_string_equal(get_str(j, "max_hazard"), "H0");
	assert_true(cJSON_IsTrue(get(j, "chaos_compatible")));
	assert_true(cJSON_IsFalse(get(j, "blocked")));
	/* it prints and reads back */
	s = cJSON_PrintUnformatted(j);
	assert_non_null(s);
	cJSON_Delete(j);
	j = cJSON_Parse(s);
	assert_non_null(j);
	assert_string_equal(get_str(j, "plan_id"), "p");
	free(s);
	cJSON_Delete(j);
	plan_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_json__top_level_keys),
		cmocka_unit_test(test_plan_json__waves_and_steps),
		cmocka_unit_test(test_plan_json__step_values),
		cmocka_unit_test(test_plan_json__chaos_blocked),
		cmocka_unit_test(test_plan_json__chaos_compatible_plan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
