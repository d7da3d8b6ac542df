/*
 * The canonical form of a step (plan_step_fields_json), pinned for every op
 * and for the inverses the planner makes: it is built from the op table's
 * fields (plan_ops.c), and it is what step_sha and the plan checksum hash,
 * so an edit of the table that changed it would make every applied plan
 * look drifted. Once released, a form changes only with PLAN_HASH_VERSION.
 */
#include "plan_test.h"

#include <cjson/cJSON.h>

#include "plan/plan_int.h"
#include "util/canon.h"
#include "util/strbuf.h"

static const char text[] =
    "id: 0042-every-op\n"
    "title: One step of every op\n"
    "reason: The canonical forms\n"
    "waves:\n"
    "  - name: expand\n"
    "    steps:\n"
    "      - {op: create_view, name: app.v, sql: 'SELECT 1 AS one'}\n"
    "      - op: create_table\n"
    "        table: app.t\n"
    "        columns:\n"
    "          - {name: id, type: bigint, nullable: false}\n"
    "          - {name: at, type: timestamptz, default_sql: now()}\n"
    "          - {name: n, type: numeric, default: 1.50}\n"
    "        primary_key: [id]\n"
    "      - {op: add_column, table: acct, name: note, type: text, default: 'x'}\n"
    "      - {op: add_column, table: acct, name: seen, type: timestamptz, default_sql: "
    "'now()'}\n"
    "      - {op: add_index_concurrently, table: acct, name: acct_note_idx, columns: [note],"
    " unique: true, where: 'note IS NOT NULL'}\n"
    "      - {op: add_foreign_key_not_valid, table: acct, name: acct_owner_fk, columns: "
    "[owner], ref_table: owners, ref_columns: [id]}\n"
    "      - {op: add_foreign_key_not_valid, table: acct, name: acct_org_fk, columns: "
    "[org], ref_table: orgs, ref_columns: [id], on_delete: CASCADE}\n"
    "      - {op: add_check_not_valid, table: acct, name: acct_bal_ck, check: 'bal >= 0'}\n"
    "  - name: backfill\n"
    "    steps:\n"
    "      - op: backfill_sql\n"
    "        sql: UPDATE acct SET note = 'n' WHERE note IS NULL\n"
    "        revert_sql: UPDATE acct SET note = NULL WHERE note = 'n'\n"
    "  - name: validate\n"
    "    steps:\n"
    "      - {op: validate_constraint, table: acct, name: acct_bal_ck}\n"
    "      - {op: set_not_null, table: acct, column: note}\n"
    "  - name: contract\n"
    "    steps:\n"
    "      - {op: drop_column, table: acct, name: old}\n"
    "      - {op: drop_index_concurrently, name: acct_old_idx}\n"
    "      - {op: drop_table, table: gone}\n"
    "      - {op: rename_column, table: acct, from: a, to: b}\n"
    "      - {op: rename_table, from: app.u, to: w}\n"
    "      - op: sql\n"
    "        sql: COMMENT ON TABLE acct IS 'accounts'\n"
    "        lock_class_max: ShareUpdateExclusiveLock\n"
    "        may_rewrite: false\n"
    "        revert_sql: COMMENT ON TABLE acct IS NULL\n"
    "      - {op: sql, sql: 'COMMENT ON TABLE w IS NULL'}\n";

static char *
form(const struct plan_step *s)
{
	struct strbuf sb = STRBUF_INIT;
	cJSON *j = plan_step_fields_json(s);
	char *out;

	assert_int_equal(canon_json(j, &sb), 0);
	cJSON_Delete(j);
	out = strdup(sb_str(&sb));
	sb_free(&sb);
	return out;
}

/* Each step's form in plan order, each followed by its inverse's (when it has one). */
static const struct {
	bool inverse;
	const char *form;
} want
    [] = {
	    { false,
	      "{\"limits\":{},\"name\":\"app.v\",\"op\":\"create_view\",\"postchecks\":[],\"prechecks\":[],\"sql\":\"SELECT 1 AS one\"}" },
	    { true,
	      "{\"limits\":{},\"name\":\"app.v\",\"op\":\"drop_view\",\"postchecks\":[],\"prechecks\":[]}" },
	    { false,
	      "{\"columns\":[{\"name\":\"id\",\"nullable\":false,\"type\":\"bigint\"},{\"default_sql\":\"now()\",\"name\":\"at\",\"nullable\":true,\"type\":\"timestamptz\"},{\"default\":1.50,\"name\":\"n\",\"nullable\":true,\"type\":\"numeric\"}],\"limits\":{},\"op\":\"create_table\",\"postchecks\":[],\"prechecks\":[],\"primary_key\":[\"id\"],\"table\":\"app.t\"}" },
	    { true,
	      "{\"limits\":{},\"op\":\"drop_table\",\"postchecks\":[],\"prechecks\":[],\"table\":\"app.t\"}" },
	    { false,
	      "{\"default\":\"x\",\"limits\":{},\"name\":\"note\",\"nullable\":true,\"op\":\"add_column\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\",\"type\":\"text\"}" },
	    { true,
	      "{\"limits\":{},\"name\":\"note\",\"op\":\"drop_column\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\"}" },
	    { false,
	      "{\"default_sql\":\"now()\",\"limits\":{},\"name\":\"seen\",\"nullable\":true,\"op\":\"add_column\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\",\"type\":\"timestamptz\"}" },
	    { true,
	      "{\"limits\":{},\"name\":\"seen\",\"op\":\"drop_column\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\"}" },
	    { false,
	      "{\"columns\":[\"note\"],\"limits\":{},\"name\":\"acct_note_idx\",\"op\":\"add_index_concurrently\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\",\"unique\":true,\"where\":\"note IS NOT NULL\"}" },
	    { true,
	      "{\"limits\":{},\"name\":\"acct_note_idx\",\"op\":\"drop_index_concurrently\",\"postchecks\":[],\"prechecks\":[]}" },
	    { false,
	      "{\"columns\":[\"owner\"],\"limits\":{},\"name\":\"acct_owner_fk\",\"on_delete\":\"NO ACTION\",\"op\":\"add_foreign_key_not_valid\",\"postchecks\":[],\"prechecks\":[],\"ref_columns\":[\"id\"],\"ref_table\":\"owners\",\"table\":\"acct\"}" },
	    { true,
	      "{\"limits\":{},\"name\":\"acct_owner_fk\",\"op\":\"drop_constraint\",\"postchecks\":[],\"prechecks\":[],\"ref_table\":\"owners\",\"table\":\"acct\"}" },
	    { false,
	      "{\"columns\":[\"org\"],\"limits\":{},\"name\":\"acct_org_fk\",\"on_delete\":\"CASCADE\",\"op\":\"add_foreign_key_not_valid\",\"postchecks\":[],\"prechecks\":[],\"ref_columns\":[\"id\"],\"ref_table\":\"orgs\",\"table\":\"acct\"}" },
	    { true,
	      "{\"limits\":{},\"name\":\"acct_org_fk\",\"op\":\"drop_constraint\",\"postchecks\":[],\"prechecks\":[],\"ref_table\":\"orgs\",\"table\":\"acct\"}" },
	    { false,
	      "{\"check\":\"bal >= 0\",\"limits\":{},\"name\":\"acct_bal_ck\",\"op\":\"add_check_not_valid\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\"}" },
	    { true,
	      "{\"limits\":{},\"name\":\"acct_bal_ck\",\"op\":\"drop_constraint\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\"}" },
	    { false,
	      "{\"limits\":{},\"op\":\"backfill_sql\",\"postchecks\":[],\"prechecks\":[],\"revert_sql\":\"UPDATE acct SET note = NULL WHERE note = 'n'\",\"sql\":\"UPDATE acct SET note = 'n' WHERE note IS NULL\"}" },
	    { true,
	      "{\"limits\":{},\"op\":\"backfill_sql\",\"postchecks\":[],\"prechecks\":[],\"sql\":\"UPDATE acct SET note = NULL WHERE note = 'n'\"}" },
	    { false,
	      "{\"limits\":{},\"name\":\"acct_bal_ck\",\"op\":\"validate_constraint\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\"}" },
	    { false,
	      "{\"column\":\"note\",\"limits\":{},\"op\":\"set_not_null\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\"}" },
	    { true,
	      "{\"column\":\"note\",\"limits\":{},\"op\":\"drop_not_null\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\"}" },
	    { false,
	      "{\"limits\":{},\"name\":\"old\",\"op\":\"drop_column\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\"}" },
	    { false,
	      "{\"limits\":{},\"name\":\"acct_old_idx\",\"op\":\"drop_index_concurrently\",\"postchecks\":[],\"prechecks\":[]}" },
	    { false,
	      "{\"limits\":{},\"op\":\"drop_table\",\"postchecks\":[],\"prechecks\":[],\"table\":\"gone\"}" },
	    { false,
	      "{\"from\":\"a\",\"limits\":{},\"op\":\"rename_column\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\",\"to\":\"b\"}" },
	    { true,
	      "{\"from\":\"b\",\"limits\":{},\"op\":\"rename_column\",\"postchecks\":[],\"prechecks\":[],\"table\":\"acct\",\"to\":\"a\"}" },
	    { false,
	      "{\"from\":\"app.u\",\"limits\":{},\"op\":\"rename_table\",\"postchecks\":[],\"prechecks\":[],\"to\":\"w\"}" },
	    { true,
	      "{\"from\":\"app.w\",\"limits\":{},\"op\":\"rename_table\",\"postchecks\":[],\"prechecks\":[],\"to\":\"u\"}" },
	    { false,
	      "{\"limits\":{},\"lock_class_max\":\"ShareUpdateExclusiveLock\",\"may_rewrite\":false,\"op\":\"sql\",\"postchecks\":[],\"prechecks\":[],\"revert_sql\":\"COMMENT ON TABLE acct IS NULL\",\"sql\":\"COMMENT ON TABLE acct IS 'accounts'\"}" },
	    { true,
	      "{\"limits\":{},\"op\":\"sql\",\"postchecks\":[],\"prechecks\":[],\"sql\":\"COMMENT ON TABLE acct IS NULL\"}" },
	    { false,
	      "{\"limits\":{},\"op\":\"sql\",\"postchecks\":[],\"prechecks\":[],\"sql\":\"COMMENT ON TABLE w IS NULL\"}" },
    };

static void
test_plan_canonical__every_op_is_pinned(void **state)
{
	struct plan *p = pt_parse_ok("0042-every-op.yaml", text);
	size_t k = 0, n = sizeof(want) / sizeof(*want);
	bool seen[OP__ALL] = { false };

	(void)state;
	for (int w = 0; w < WAVE__COUNT; w++) {
		for (size_t i = 0; i < p->waves[w].nsteps; i++) {
			const struct plan_step *s = &p->waves[w].steps[i];
			for (const struct plan_step *t = s; t; t = t == s ? s->inverse : NULL) {
				char *f = form(t);
				assert_true(k < n);
				assert_int_equal(t != s, want[k].inverse);
				assert_string_equal(f, want[k].form);
				free(f);
				seen[t->op] = true;
				k++;
			}
		}
	}
	assert_int_equal(k, n);
	/* every op of the table, the inverse-only ones too, is pinned above */
	for (int op = 0; op < OP__ALL; op++)
		if (op != OP__COUNT && !seen[op])
			fail_msg("op %s has no pinned canonical form",
				 plan_op_name((enum plan_op)op));
	plan_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_canonical__every_op_is_pinned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
