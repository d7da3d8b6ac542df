/*
 * step_sha and plan_checksum: the same plan gives the same hashes whatever
 * its syntax and layout; any change of meaning, or of a step's place, gives
 * new ones. The exact hashed form is pinned too, since ledgers keep it.
 */
#include "plan_test.h"

#include <cjson/cJSON.h>
#include <ctype.h>

#include "util/canon.h"

static const char base_yaml[] =
    "id: 0007-coffee-dependency\n"
    "title: Coffee dependency tracking\n"
    "reason: Engagement optimization\n"
    "waves:\n"
    "  - name: expand\n"
    "    steps:\n"
    "      - { op: add_column, table: employee, name: coffee_dependency, type: numeric, "
    "nullable: true }\n"
    "      - { op: add_check_not_valid, table: employee, name: coffee_nonneg, "
    "check: \"coffee_dependency >= 0\" }\n"
    "      - op: create_table\n"
    "        table: app.mug\n"
    "        columns:\n"
    "          - { name: id, type: bigint, nullable: false }\n"
    "          - { name: size, type: 'numeric(4, 1)', default: 1.50 }\n"
    "          - { name: hot, type: boolean, default: true }\n"
    "          - { name: label, type: text, default: \"it's\" }\n"
    "        primary_key: [id]\n"
    "      - op: add_foreign_key_not_valid\n"
    "        table: employee\n"
    "        name: employee_mug_fk\n"
    "        columns: [mug_id]\n"
    "        ref_table: app.mug\n"
    "        ref_columns: [id]\n"
    "        on_delete: set null\n"
    "  - name: backfill\n"
    "    limits: { rows_per_second: 5000, max_lock_ms: 50, batch_size: 1000 }\n"
    "    steps:\n"
    "      - op: backfill_sql\n"
    "        sql: UPDATE employee SET coffee_dependency = 0 WHERE coffee_dependency IS NULL\n"
    "        postchecks: [\"NOT EXISTS (SELECT 1 FROM employee WHERE coffee_dependency IS "
    "NULL)\"]\n"
    "  - name: validate\n"
    "    steps:\n"
    "      - { op: validate_constraint, table: employee, name: coffee_nonneg }\n"
    "  - name: contract\n"
    "    steps:\n"
    "      - { op: sql, sql: 'ANALYZE employee', lock_class_max: ShareUpdateExclusiveLock }\n";

/* The same plan in JSON. */
static const char base_json[] =
    "{\n"
    "  \"id\": \"0007-coffee-dependency\",\n"
    "  \"title\": \"Coffee dependency tracking\",\n"
    "  \"reason\": \"Engagement optimization\",\n"
    "  \"waves\": [\n"
    "    {\"name\": \"expand\", \"steps\": [\n"
    "      {\"op\": \"add_column\", \"table\": \"employee\", \"name\": \"coffee_dependency\", "
    "\"type\": \"numeric\", \"nullable\": true},\n"
    "      {\"op\": \"add_check_not_valid\", \"table\": \"employee\", \"name\": "
    "\"coffee_nonneg\", \"check\": \"coffee_dependency >= 0\"},\n"
    "      {\"op\": \"create_table\", \"table\": \"app.mug\", \"columns\": [\n"
    "        {\"name\": \"id\", \"type\": \"bigint\", \"nullable\": false},\n"
    "        {\"name\": \"size\", \"type\": \"numeric(4, 1)\", \"default\": 1.50},\n"
    "        {\"name\": \"hot\", \"type\": \"boolean\", \"default\": true},\n"
    "        {\"name\": \"label\", \"type\": \"text\", \"default\": \"it's\"}],\n"
    "       \"primary_key\": [\"id\"]},\n"
    "      {\"op\": \"add_foreign_key_not_valid\", \"table\": \"employee\", \"name\": "
    "\"employee_mug_fk\", \"columns\": [\"mug_id\"], \"ref_table\": \"app.mug\", "
    "\"ref_columns\": [\"id\"], \"on_delete\": \"set null\"}\n"
    "    ]},\n"
    "    {\"name\": \"backfill\", \"limits\": {\"rows_per_second\": 5000, \"max_lock_ms\": 50, "
    "\"batch_size\": 1000},\n"
    "     \"steps\": [{\"op\": \"backfill_sql\", \"sql\": \"UPDATE employee SET "
    "coffee_dependency = 0 WHERE coffee_dependency IS NULL\", \"postchecks\": [\"NOT EXISTS "
    "(SELECT 1 FROM employee WHERE coffee_dependency IS NULL)\"]}]},\n"
    "    {\"name\": \"validate\", \"steps\": [{\"op\": \"validate_constraint\", \"table\": "
    "\"employee\", \"name\": \"coffee_nonneg\"}]},\n"
    "    {\"name\": \"contract\", \"steps\": [{\"op\": \"sql\", \"sql\": \"ANALYZE employee\", "
    "\"lock_class_max\": \"ShareUpdateExclusiveLock\"}]}\n"
    "  ]\n"
    "}\n";

/*
 * The same plan again, written differently: comments, blank lines, key order,
 * quoting, flow and block styles swapped, defaults left out or spelled
 * otherwise, a trailing ; on the SQL.
 */
static const char restyled_yaml[] =
    "---\n"
    "# The coffee plan\n"
    "\n"
    "reason: 'Engagement optimization'   # for the audit\n"
    "title: \"Coffee dependency tracking\"\n"
    "id: \"0007-coffee-dependency\"\n"
    "\n\n"
    "waves:\n"
    "- steps:\n"
    "  - name: coffee_dependency\n"
    "    type: \"numeric\"\n"
    "    op: add_column\n"
    "    table: employee\n"
    "  - {check: 'coffee_dependency >= 0', name: coffee_nonneg, table: employee, "
    "op: add_check_not_valid}\n"
    "  - {op: create_table, primary_key: [ id ], table: app.mug, columns: [\n"
    "      {type: bigint, name: id, nullable: false},\n"
    "      {name: size, type: \"numeric(4, 1)\", default: 1.50, nullable: true},\n"
    "      {name: hot, type: boolean, default: True},\n"
    "      {name: label, type: text, default: 'it''s'}]}\n"
    "  - op: add_foreign_key_not_valid\n"
    "    on_delete: SET NULL\n"
    "    ref_columns:\n"
    "      - id\n"
    "    ref_table: app.mug\n"
    "    columns:\n"
    "      - mug_id\n"
    "    name: employee_mug_fk\n"
    "    table: employee\n"
    "  name: expand\n"
    "- name: backfill\n"
    "  limits:\n"
    "    batch_size: 1000\n"
    "    max_lock_ms: 50\n"
    "    rows_per_second: 5000\n"
    "  steps:\n"
    "  - postchecks:\n"
    "    - NOT EXISTS (SELECT 1 FROM employee WHERE coffee_dependency IS NULL)\n"
    "    op: backfill_sql\n"
    "    sql: \"UPDATE employee SET coffee_dependency = 0 WHERE coffee_dependency IS NULL;\"\n"
    "- {name: validate, steps: [{name: coffee_nonneg, op: validate_constraint, "
    "table: employee}]}\n"
    "- name: contract\n"
    "  steps:\n"
    "  - op: sql\n"
    "    lock_class_max: SHARE UPDATE EXCLUSIVE\n"
    "    sql: ANALYZE employee;\n"
    "...\n";

static bool
is_lower_hex64(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!isdigit((unsigned char)s[n]) && !(s[n] >= 'a' && s[n] <= 'f'))
			return false;
	return n == 64;
}

/* a and b have the same checksum and the same step_sha step by step. */
static void
assert_same_hashes(const struct plan *a, const struct plan *b)
{
	assert_string_equal(a->checksum, b->checksum);
	assert_int_equal(a->nsteps, b->nsteps);
	for (int w = 0; w < WAVE__COUNT; w++) {
		assert_int_equal(a->waves[w].nsteps, b->waves[w].nsteps);
		for (size_t i = 0; i < a->waves[w].nsteps; i++)
			assert_string_equal(a->waves[w].steps[i].sha, b->waves[w].steps[i].sha);
	}
}

static char *
crlf(const char *text)
{
	char *out = malloc(strlen(text) * 2 + 1), *o = out;

	for (const char *p = text; *p; p++) {
		if (*p == '\n')
			*o++ = '\r';
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* base_yaml with the first occurrence of from replaced by to. */
static struct plan *
variant(const char *from, const char *to)
{
	const char *at = strstr(base_yaml, from);
	char text[8192];

	assert_non_null(at);
	snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - base_yaml), base_yaml, to,
		 at + strlen(from));
	return pt_parse_ok("variant.yaml", text);
}

static void
test_plan_checksum__hashes_are_lowercase_hex(void **state)
{
	struct plan *p = pt_parse_ok("base.yaml", base_yaml);

	(void)state;
	assert_true(is_lower_hex64(p->checksum));
	for (int w = 0; w < WAVE__COUNT; w++)
		for (size_t i = 0; i < p->waves[w].nsteps; i++)
			assert_true(is_lower_hex64(p->waves[w].steps[i].sha));
	plan_free(p);
}

static void
test_plan_checksum__yaml_and_json_agree(void **state)
{
	struct plan *y = pt_parse_ok("migrations/base.yaml", base_yaml);
	struct plan *j = pt_parse_ok("elsewhere/base.json", base_json);

	(void)state;
	assert_same_hashes(y, j);
	plan_free(y);
	plan_free(j);
}

static void
test_plan_checksum__restyling_changes_nothing(void **state)
{
	struct plan *a = pt_parse_ok("base.yaml", base_yaml);
	struct plan *b = pt_parse_ok("restyled.yaml", restyled_yaml);

	(void)state;
	assert_same_hashes(a, b);
	plan_free(b);
	plan_free(a);
}

static void
test_plan_checksum__crlf_changes_nothing(void **state)
{
	char *y = crlf(base_yaml), *r = crlf(restyled_yaml), *j = crlf(base_json);
	struct plan *a = pt_parse_ok("base.yaml", base_yaml);
	struct plan *b = pt_parse_ok("crlf.yaml", y);
	struct plan *c = pt_parse_ok("crlf2.yaml", r);
	struct plan *d = pt_parse_ok("crlf.json", j);

	(void)state;
	assert_same_hashes(a, b);
	assert_same_hashes(a, c);
	assert_same_hashes(a, d);
	/* positions are the same as with LF */
	assert_int_equal(pt_step(b, WAVE_BACKFILL, 0)->line, pt_step(a, WAVE_BACKFILL, 0)->line);
	assert_int_equal(pt_step(b, WAVE_BACKFILL, 0)->col, pt_step(a, WAVE_BACKFILL, 0)->col);
	plan_free(a);
	plan_free(b);
	plan_free(c);
	plan_free(d);
	free(y);
	free(r);
	free(j);
}

static void
test_plan_checksum__meaningful_changes_change_it(void **state)
{
	static const struct {
		const char *from, *to;
	} changes[] = {
		{ "type: numeric,", "type: integer," },
		{ "coffee_dependency >= 0", "coffee_dependency > 0" },
		{ "rows_per_second: 5000", "rows_per_second: 5001" },
		{ "title: Coffee dependency tracking", "title: Coffee dependency tracking v2" },
		{ "reason: Engagement optimization", "reason: Engagement" },
		{ "nullable: true }", "nullable: false }" },
		{ "default: true", "default: 'true'" },
		{ "on_delete: set null", "on_delete: cascade" },
		{ "primary_key: [id]", "primary_key: [id, size]" },
		{ "lock_class_max: ShareUpdateExclusiveLock", "lock_class_max: ExclusiveLock" },
		{ "postchecks: [\"NOT", "prechecks: ['true']\n        postchecks: [\"NOT" },
		{ "- name: validate\n    steps:",
		  "- name: validate\n    limits: {max_lock_ms: 10}\n    steps:" },
		{ "table: employee, name: coffee_nonneg }", "table: employee, name: coffee_nonneg, "
							    "limits: {max_stmt_ms: 0} }" },
		{ "reason: Engagement optimization\n",
		  "reason: Engagement optimization\non_failure: rollback_wave\n" },
		{ "reason: Engagement optimization\n",
		  "reason: Engagement optimization\non_failure: rollback_plan\n" },
		/* written, even as the default: part of the checksum (absent, it is not) */
		{ "reason: Engagement optimization\n",
		  "reason: Engagement optimization\non_failure: stop\n" },
	};
	struct plan *base = pt_parse_ok("base.yaml", base_yaml);

	(void)state;
	for (size_t i = 0; i < sizeof(changes) / sizeof(*changes); i++) {
		struct plan *p = variant(changes[i].from, changes[i].to);
		if (strcmp(p->checksum, base->checksum) == 0)
			print_message("checksum unchanged by '%s' -> '%s'\n", changes[i].from,
				      changes[i].to);
		assert_string_not_equal(p->checksum, base->checksum);
		plan_free(p);
	}
	plan_free(base);
}

static void
test_plan_checksum__step_sha_follows_the_step(void **state)
{
	struct plan *base = pt_parse_ok("base.yaml", base_yaml);
	struct plan *t = variant("title: Coffee dependency tracking", "title: Other");
	struct plan *c = variant("type: numeric,", "type: integer,");
	struct plan *id = variant("id: 0007-coffee-dependency", "id: 0008-coffee-dependency");

	(void)state;
	/* the title is the plan's, not a step's */
	for (int w = 0; w < WAVE__COUNT; w++)
		for (size_t i = 0; i < base->waves[w].nsteps; i++) {
			assert_string_equal(t->waves[w].steps[i].sha, base->waves[w].steps[i].sha);
			/* every step's identity includes its plan's id */
			assert_string_not_equal(id->waves[w].steps[i].sha,
						base->waves[w].steps[i].sha);
		}
	/* changing one step changes only that step's sha */
	assert_string_not_equal(pt_step(c, WAVE_EXPAND, 0)->sha,
				pt_step(base, WAVE_EXPAND, 0)->sha);
	assert_string_equal(pt_step(c, WAVE_EXPAND, 1)->sha, pt_step(base, WAVE_EXPAND, 1)->sha);
	assert_string_equal(pt_step(c, WAVE_BACKFILL, 0)->sha,
			    pt_step(base, WAVE_BACKFILL, 0)->sha);
	plan_free(base);
	plan_free(t);
	plan_free(c);
	plan_free(id);
}

static void
test_plan_checksum__moving_a_step_changes_its_sha(void **state)
{
	const char *head = "id: p\ntitle: t\nreason: r\nsteps:\n";
	const char *a = "  - {op: add_column, table: t, name: a, type: int}\n";
	const char *b = "  - {op: add_column, table: t, name: b, type: int}\n";
	const char *d = "  - {op: drop_table, table: old}\n";
	char t1[512], t2[512], t3[512];
	struct plan *p1, *p2, *p3;

	(void)state;
	snprintf(t1, sizeof(t1), "%s%s%s%s", head, a, b, d);
	snprintf(t2, sizeof(t2), "%s%s%s%s", head, b, a, d);
	snprintf(t3, sizeof(t3), "%s%s%s%s", head, d, a, b);
	p1 = pt_parse_ok("p.yaml", t1);
	p2 = pt_parse_ok("p.yaml", t2);
	p3 = pt_parse_ok("p.yaml", t3);
	/* a and b swap places inside expand: both get new shas, and the plan a new checksum */
	assert_string_equal(pt_step(p1, WAVE_EXPAND, 0)->name, "a");
	assert_string_equal(pt_step(p2, WAVE_EXPAND, 1)->name, "a");
	assert_string_not_equal(pt_step(p1, WAVE_EXPAND, 0)->sha, pt_step(p2, WAVE_EXPAND, 1)->sha);
	assert_string_not_equal(pt_step(p1, WAVE_EXPAND, 1)->sha, pt_step(p2, WAVE_EXPAND, 0)->sha);
	assert_string_not_equal(p1->checksum, p2->checksum);
	assert_string_equal(pt_step(p1, WAVE_CONTRACT, 0)->sha, pt_step(p2, WAVE_CONTRACT, 0)->sha);
	/* a flat list's order across waves is not its plan's: the waves are the same */
	assert_same_hashes(p1, p3);
	plan_free(p1);
	plan_free(p2);
	plan_free(p3);
}

static void
test_plan_checksum__flat_and_waves_agree(void **state)
{
	struct plan *f =
	    pt_parse_ok("p.yaml", "title: t\nreason: r\nsteps:\n"
				  "  - {op: drop_table, table: old}\n"
				  "  - {op: add_column, table: t, name: a, type: int}\n"
				  "  - {op: sql, sql: 'ANALYZE t', wave: expand}\n");
	struct plan *w = pt_parse_ok(
	    "p.json",
	    "{\"title\": \"t\", \"reason\": \"r\", \"waves\": ["
	    "{\"name\": \"expand\", \"steps\": ["
	    "{\"op\": \"add_column\", \"table\": \"t\", \"name\": \"a\", \"type\": \"int\"},"
	    "{\"op\": \"sql\", \"sql\": \"ANALYZE t\"}]},"
	    "{\"name\": \"contract\", \"steps\": [{\"op\": \"drop_table\", "
	    "\"table\": \"old\"}]}]}");

	(void)state;
	assert_string_equal(f->id, "p");
	assert_string_equal(w->id, "p");
	assert_same_hashes(f, w);
	plan_free(f);
	plan_free(w);
}

/* The hashed bytes are part of the ledger's contract (PLAN_HASH_VERSION 1). */
/* on_failure is the plan's: the step_sha of every step stays as it was. */
static void
test_plan_checksum__on_failure_keeps_step_shas(void **state)
{
	struct plan *base = pt_parse_ok("base.yaml", base_yaml);
	struct plan *p = variant("reason: Engagement optimization\n",
				 "reason: Engagement optimization\non_failure: rollback_plan\n");

	(void)state;
	assert_int_equal(base->on_failure, ON_FAILURE_STOP);
	assert_false(base->on_failure_given);
	assert_int_equal(p->on_failure, ON_FAILURE_ROLLBACK_PLAN);
	for (int w = 0; w < WAVE__COUNT; w++)
		for (size_t i = 0; i < base->waves[w].nsteps; i++)
			assert_string_equal(base->waves[w].steps[i].sha, p->waves[w].steps[i].sha);
	plan_free(p);
	plan_free(base);
}

static void
test_plan_checksum__hashed_form_is_pinned(void **state)
{
	struct plan *p = pt_parse_ok("p1.yaml", "title: T\nreason: R\nsteps:\n"
						"  - {op: drop_table, table: app.old, "
						"limits: {max_lock_ms: 100}}\n");
	const char *step = "{\"op\":\"drop_table\",\"table\":\"app.old\",\"prechecks\":[],"
			   "\"postchecks\":[],\"limits\":{\"max_lock_ms\":100}}";
	char json[1024], want[65];
	cJSON *j;

	(void)state;
	snprintf(json, sizeof(json),
		 "{\"plan_id\":\"p1\",\"wave\":\"contract\",\"index\":0,\"step\":%s}", step);
	j = cJSON_Parse(json);
	assert_non_null(j);
	assert_int_equal(canon_sha256(j, want), 0);
	cJSON_Delete(j);
	assert_string_equal(pt_step(p, WAVE_CONTRACT, 0)->sha, want);

	snprintf(json, sizeof(json),
		 "{\"hash_version\":1,\"id\":\"p1\",\"title\":\"T\",\"reason\":\"R\",\"waves\":["
		 "{\"name\":\"contract\",\"limits\":{},\"steps\":[%s]}]}",
		 step);
	j = cJSON_Parse(json);
	assert_non_null(j);
	assert_int_equal(canon_sha256(j, want), 0);
	cJSON_Delete(j);
	assert_string_equal(p->checksum, want);
	plan_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_checksum__hashes_are_lowercase_hex),
		cmocka_unit_test(test_plan_checksum__yaml_and_json_agree),
		cmocka_unit_test(test_plan_checksum__restyling_changes_nothing),
		cmocka_unit_test(test_plan_checksum__crlf_changes_nothing),
		cmocka_unit_test(test_plan_checksum__meaningful_changes_change_it),
		cmocka_unit_test(test_plan_checksum__step_sha_follows_the_step),
		cmocka_unit_test(test_plan_checksum__moving_a_step_changes_its_sha),
		cmocka_unit_test(test_plan_checksum__flat_and_waves_agree),
		cmocka_unit_test(test_plan_checksum__on_failure_keeps_step_shas),
		cmocka_unit_test(test_plan_checksum__hashed_form_is_pinned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
