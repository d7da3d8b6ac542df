/*
 * The op table (plan_ops.c) is consistent: every op has a name, a wave, a
 * hazard and an SQL template; its fields have distinct names and lie inside
 * struct plan_step; the JSON Schema knows every op and every field, and
 * requires exactly the fields the table requires. A broken copy of an entry
 * shows the checks catch the slips a new op is likely to come with.
 */
#include "plan_test.h"

#include <stdalign.h>

#include "plan/plan_int.h"

#define NCOMMON (sizeof(plan_step_common_fields) / sizeof(*plan_step_common_fields))

/*
 * What is wrong with how the entry o says its steps are undone, or NULL: an
 * inverse op that is an op, and, when the inverse is a copy of the step's
 * fields (no hook), every field the inverse op requires is one of o's, of
 * the same kind at the same place; a reason when there is no inverse.
 */
static const char *
undo_problem(const struct plan_opdef *o, char *why, size_t n)
{
	const struct plan_opdef *inv;

	if (o->undo == UNDO_UNSET)
		return "no undo: how are its steps undone?";
	if (o->undo != UNDO_INVERSE)
		return o->undo_reason || o->invert ? NULL : "no inverse and no reason why";
	if (o->invert)
		return NULL;
	if (o->inverse >= OP__ALL || o->inverse == OP__COUNT || !plan_optable[o->inverse].name)
		return "an inverse that is no op";
	inv = &plan_optable[o->inverse];
	for (int i = 0; i < PLAN_MAXF && inv->fields[i].name; i++) {
		const struct plan_field *f = &inv->fields[i];
		const struct plan_field *g = plan_field_find(o->fields, PLAN_MAXF, f->name);

		if (f->required && (!g || g->off != f->off || g->kind != f->kind)) {
			snprintf(why, n, "its inverse %s needs '%s', which it does not have",
				 inv->name, f->name);
			return why;
		}
	}
	return NULL;
}

/*
 * What is wrong with what the entry o says its statement reads back as, or
 * NULL: a kind; a hook for SHAPE_HOOK; for an ALTER TABLE subcommand or a
 * DROP, a subcommand or object there is, naming one of the op's fields
 * that holds a name.
 */
static const char *
shape_problem(const struct plan_opdef *o)
{
	const struct plan_shape *sh = &o->shape;
	bool names = false;

	switch (sh->kind) {
	case SHAPE_UNSET: return "no shape: what does its statement read back as?";
	case SHAPE_ANY:
		return o->fields[0].kind == FK_STMT ? NULL : "any statement, but not an sql op";
	case SHAPE_HOOK: return sh->hook ? NULL : "a shape hook that is not there";
	case SHAPE_ALTER:
		if (sh->sub >= SHAPE_SUB__COUNT)
			return "an ALTER TABLE subcommand there is not";
		break;
	case SHAPE_DROP:
		if (sh->object >= SHAPE_OBJ__COUNT)
			return "a DROP of an object there is not";
		break;
	}
	for (int i = 0; i < PLAN_MAXF && o->fields[i].name; i++)
		if (o->fields[i].off == sh->name_off &&
		    (o->fields[i].kind == FK_IDENT || o->fields[i].kind == FK_QIDENT))
			names = true;
	return names ? NULL : "a shape that names no field of the op holding a name";
}

/* What is wrong with the entry o for op, or NULL; why is a scratch buffer. */
static const char *
opdef_problem(enum plan_op op, const struct plan_opdef *o, char *why, size_t n)
{
	bool plannable = op < OP__COUNT;
	bool ended = false;

	if (!o->name || !o->name[0])
		return "no name";
	if (o->plannable != plannable)
		return plannable ? "a plan cannot name it" : "an inverse-only op a plan may name";
	if (o->wave >= WAVE__COUNT)
		return "no wave";
	if (!o->sql)
		return "no SQL template";
	if (o->hazard > H3)
		return "a hazard beyond H3";
	if (o->lock > LOCK_ACCESS_EXCLUSIVE)
		return "no lock mode";
	if (!o->hazard_rule && (!o->hazard_reason || o->lock == LOCK_NONE))
		return "no hazard rule and no hazard reason or lock";
	if (o->exec > EXEC_BATCHED)
		return "no exec kind";
	for (int i = 0; i < PLAN_MAXF; i++) {
		const struct plan_field *f = &o->fields[i];

		if (!f->name) {
			ended = true;
			continue;
		}
		if (ended)
			return "a field after the end of the list (a gap)";
		if (f->kind >= FK__COUNT || plan_fkind_size(f->kind) == 0)
			return "a field of no kind";
		if (f->off + plan_fkind_size(f->kind) > sizeof(struct plan_step)) {
			snprintf(why, n, "field '%s' is stored outside struct plan_step", f->name);
			return why;
		}
		if (f->off % (plan_fkind_size(f->kind) < alignof(max_align_t)
				  ? plan_fkind_size(f->kind)
				  : sizeof(void *))) {
			snprintf(why, n, "field '%s' is stored at a misaligned offset", f->name);
			return why;
		}
		if (!strcmp(f->name, "op") ||
		    plan_field_find(plan_step_common_fields, NCOMMON, f->name)) {
			snprintf(why, n, "field '%s' is a field every step has", f->name);
			return why;
		}
		for (int k = 0; k < i; k++) {
			if (o->fields[k].name && !strcmp(o->fields[k].name, f->name)) {
				snprintf(why, n, "field '%s' is listed twice", f->name);
				return why;
			}
		}
		if (f->inverse && f->kind != FK_STMT && f->kind != FK_UPDATE)
			return "a field read into the inverse that is not a statement";
		if (f->kind == FK_WAVE && !o->wave_of_place)
			return "a wave: field on an op whose wave is fixed";
		if (f->kind == FK_INT && f->min > f->max)
			return "an int field whose bounds are reversed";
	}
	return undo_problem(o, why, n) ? undo_problem(o, why, n) : shape_problem(o);
}

static void
test_plan_optable__every_entry_is_whole(void **state)
{
	char why[200];

	(void)state;
	for (int op = 0; op < OP__ALL; op++) {
		const struct plan_opdef *o = plan_opdef((enum plan_op)op);
		const char *bad;

		if (op == OP__COUNT) {
			assert_null(o->name);
			continue;
		}
		bad = opdef_problem((enum plan_op)op, o, why, sizeof(why));
		if (bad)
			fail_msg("op %d (%s): %s", op, o->name ? o->name : "?", bad);
		for (int k = 0; k < op; k++)
			if (k != OP__COUNT && !strcmp(plan_optable[k].name, o->name))
				fail_msg("op %d: the name '%s' is op %d's too", op, o->name, k);
		assert_string_equal(plan_op_name((enum plan_op)op), o->name);
		assert_int_equal(plan_op_from_name(o->name), op < OP__COUNT ? op : -1);
		assert_int_equal(plan_op_wave((enum plan_op)op), o->wave);
	}
	assert_string_equal(plan_op_name(OP__COUNT), "?");
	assert_string_equal(plan_op_name(OP__ALL), "?");
}

/* The common fields are whole too, and land where the step keeps them. */
static void
test_plan_optable__common_fields(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCOMMON; i++) {
		const struct plan_field *f = &plan_step_common_fields[i];
		assert_non_null(f->name);
		assert_false(f->required);
		assert_true(f->off + plan_fkind_size(f->kind) <= sizeof(struct plan_step));
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(plan_step_common_fields[k].name, f->name);
	}
}

/* Each slip a newcomer may make in a new entry is caught. */
static void
test_plan_optable__slips_are_caught(void **state)
{
	struct plan_opdef o;
	char why[200];
	const char *bad;

	(void)state;
	o = plan_optable[OP_ADD_CHECK_NOT_VALID];
	assert_null(opdef_problem(OP_ADD_CHECK_NOT_VALID, &o, why, sizeof(why)));

	o = plan_optable[OP_ADD_CHECK_NOT_VALID];
	o.sql = NULL;
	assert_string_equal(opdef_problem(OP_ADD_CHECK_NOT_VALID, &o, why, sizeof(why)),
			    "no SQL template");

	o = plan_optable[OP_ADD_CHECK_NOT_VALID];
	o.fields[1].name = "table";
	bad = opdef_problem(OP_ADD_CHECK_NOT_VALID, &o, why, sizeof(why));
	assert_non_null(bad);
	assert_non_null(strstr(bad, "listed twice"));

	o = plan_optable[OP_ADD_CHECK_NOT_VALID];
	o.fields[2].off = sizeof(struct plan_step);
	bad = opdef_problem(OP_ADD_CHECK_NOT_VALID, &o, why, sizeof(why));
	assert_non_null(bad);
	assert_non_null(strstr(bad, "outside struct plan_step"));

	o = plan_optable[OP_ADD_CHECK_NOT_VALID];
	o.fields[1].name = NULL; /* a gap before the third field */
	assert_non_null(opdef_problem(OP_ADD_CHECK_NOT_VALID, &o, why, sizeof(why)));

	o = plan_optable[OP_ADD_CHECK_NOT_VALID];
	o.fields[0].name = "limits";
	bad = opdef_problem(OP_ADD_CHECK_NOT_VALID, &o, why, sizeof(why));
	assert_non_null(bad);
	assert_non_null(strstr(bad, "every step has"));

	o = plan_optable[OP_ADD_CHECK_NOT_VALID];
	o.hazard_reason = NULL;
	assert_non_null(opdef_problem(OP_ADD_CHECK_NOT_VALID, &o, why, sizeof(why)));

	o = plan_optable[OP_ADD_CHECK_NOT_VALID];
	o.fields[3] = (struct plan_field){ .name = "wave", .kind = FK_WAVE };
	assert_non_null(opdef_problem(OP_ADD_CHECK_NOT_VALID, &o, why, sizeof(why)));

	o = plan_optable[OP_ADD_CHECK_NOT_VALID];
	o.undo = UNDO_UNSET;
	bad = opdef_problem(OP_ADD_CHECK_NOT_VALID, &o, why, sizeof(why));
	assert_non_null(bad);
	assert_non_null(strstr(bad, "no undo"));

	o = plan_optable[OP_ADD_CHECK_NOT_VALID];
	o.inverse = OP_DROP_NOT_NULL; /* wants a column this op does not have */
	bad = opdef_problem(OP_ADD_CHECK_NOT_VALID, &o, why, sizeof(why));
	assert_non_null(bad);
	assert_non_null(strstr(bad, "needs 'column'"));

	o = plan_optable[OP_DROP_TABLE];
	o.undo_reason = NULL;
	assert_non_null(opdef_problem(OP_DROP_TABLE, &o, why, sizeof(why)));

	o = plan_optable[OP_ADD_CHECK_NOT_VALID];
	o.shape.kind = SHAPE_UNSET;
	bad = opdef_problem(OP_ADD_CHECK_NOT_VALID, &o, why, sizeof(why));
	assert_non_null(bad);
	assert_non_null(strstr(bad, "no shape"));

	o = plan_optable[OP_SET_NOT_NULL];
	o.shape.name_off = offsetof(struct plan_step, name); /* set_not_null has no name */
	bad = opdef_problem(OP_SET_NOT_NULL, &o, why, sizeof(why));
	assert_non_null(bad);
	assert_non_null(strstr(bad, "names no field"));

	o = plan_optable[OP_ADD_CHECK_NOT_VALID];
	o.plannable = false;
	assert_non_null(opdef_problem(OP_ADD_CHECK_NOT_VALID, &o, why, sizeof(why)));
}

static cJSON *
load_schema(void)
{
	const char *path = TS_SRC_DIR "/examples/schema/taskslaps-plan.schema.json";
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	cJSON *j;

	if (!f)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	j = cJSON_Parse(buf);
	free(buf);
	assert_non_null(j);
	return j;
}

static bool
json_array_has(const cJSON *a, const char *s)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, a) if (cJSON_IsString(e) && !strcmp(e->valuestring, s)) return true;
	return false;
}

/*
 * The schema (examples/schema/gen.py makes it) has a definition op_<name>
 * for every op a plan may name, with every field of the table and the ones
 * every step has, and requires op and exactly the table's required fields.
 */
static void
test_plan_optable__schema_knows_every_op_and_field(void **state)
{
	cJSON *schema = load_schema();
	const cJSON *defs = cJSON_GetObjectItemCaseSensitive(schema, "definitions");
	const cJSON *step = cJSON_GetObjectItemCaseSensitive(defs, "step");
	const cJSON *ops = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(step, "properties"),
					     "op"),
	    "enum");

	(void)state;
	assert_non_null(ops);
	assert_int_equal(cJSON_GetArraySize(ops), OP__COUNT);
	for (int op = 0; op < OP__COUNT; op++) {
		const struct plan_opdef *o = plan_opdef((enum plan_op)op);
		char key[96];
		const cJSON *def, *props, *req, *e;
		int nreq = 1; /* op */

		if (!json_array_has(ops, o->name))
			fail_msg("the schema's op enum lacks '%s'", o->name);
		snprintf(key, sizeof(key), "op_%s", o->name);
		def = cJSON_GetObjectItemCaseSensitive(defs, key);
		if (!def)
			fail_msg("the schema has no definition %s", key);
		props = cJSON_GetObjectItemCaseSensitive(def, "properties");
		req = cJSON_GetObjectItemCaseSensitive(def, "required");
		assert_non_null(props);
		assert_non_null(req);
		if (!json_array_has(req, "op"))
			fail_msg("%s: op is not required", key);
		for (int i = 0; i < PLAN_MAXF && o->fields[i].name; i++) {
			const struct plan_field *f = &o->fields[i];
			if (!cJSON_GetObjectItemCaseSensitive(props, f->name))
				fail_msg("%s: the schema does not know the field '%s'", key,
					 f->name);
			if (f->required != json_array_has(req, f->name))
				fail_msg("%s: field '%s' is %s in the table but not in the schema",
					 key, f->name, f->required ? "required" : "optional");
			nreq += f->required;
		}
		for (size_t i = 0; i < NCOMMON; i++)
			if (!cJSON_GetObjectItemCaseSensitive(props,
							      plan_step_common_fields[i].name))
				fail_msg("%s: the schema does not know the field '%s'", key,
					 plan_step_common_fields[i].name);
		cJSON_ArrayForEach(e, props)
		{
			if (!strcmp(e->string, "op") ||
			    plan_field_find(o->fields, PLAN_MAXF, e->string) ||
			    plan_field_find(plan_step_common_fields, NCOMMON, e->string))
				continue;
			fail_msg("%s: the schema has a field '%s' the planner refuses", key,
				 e->string);
		}
		assert_int_equal(cJSON_GetArraySize(req), nreq);
	}
	cJSON_Delete(schema);
}

/*
 * A column refused for its name or type leaves its slot to the next one,
 * which starts afresh: the first column's default is not taken for a second
 * default of the next (it was, before the fields were read by the table).
 */
static void
test_plan_optable__refused_column_leaves_nothing_behind(void **state)
{
	(void)state;
	pt_expect_error("p.yaml",
			PT_HEAD "  - op: create_table\n"
				"    table: t\n"
				"    columns:\n"
				"      - {name: a, type: \"int;\", default: 1}\n"
				"      - {name: b, type: int, default: 2}\n",
			7, 25, "columns.type: expected a type name alone");
}

/* Fields land where the table says: one of each kind, read back from the step. */
static void
test_plan_optable__fields_land_at_their_offsets(void **state)
{
	struct plan *p;
	const struct plan_step *s;

	(void)state;
	p = pt_parse_ok("p.yaml", PT_HEAD "  - op: add_foreign_key_not_valid\n"
					  "    table: s.orders\n"
					  "    name: orders_user_fk\n"
					  "    columns: [user_id]\n"
					  "    ref_table: users\n"
					  "    ref_columns: [id]\n"
					  "    on_delete: set null\n"
					  "    limits: {max_lock_ms: 50}\n"
					  "  - op: sql\n"
					  "    sql: ALTER TABLE t ADD COLUMN x int\n"
					  "    lock_class_max: access exclusive\n"
					  "    may_rewrite: false\n"
					  "    wave: expand\n");
	s = &p->waves[WAVE_EXPAND].steps[0];
	assert_int_equal(s->op, OP_ADD_FOREIGN_KEY_NOT_VALID);
	assert_string_equal(s->table, "s.orders");
	assert_string_equal(s->name, "orders_user_fk");
	assert_int_equal(s->columns.n, 1);
	assert_string_equal(s->columns.v[0], "user_id");
	assert_string_equal(s->ref_table, "users");
	assert_string_equal(s->ref_columns.v[0], "id");
	assert_string_equal(s->on_delete, "SET NULL");
	assert_int_equal(s->limits.max_lock_ms, 50);
	assert_int_equal(s->limits.max_stmt_ms, -1);
	s = &p->waves[WAVE_EXPAND].steps[1];
	assert_int_equal(s->op, OP_SQL);
	assert_int_equal(s->declared_lock, LOCK_ACCESS_EXCLUSIVE);
	assert_int_equal(s->declared_rewrite, 0);
	assert_int_equal(s->wave, WAVE_EXPAND);
	assert_string_equal(s->sql, "ALTER TABLE t ADD COLUMN x int");
	plan_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_optable__every_entry_is_whole),
		cmocka_unit_test(test_plan_optable__common_fields),
		cmocka_unit_test(test_plan_optable__slips_are_caught),
		cmocka_unit_test(test_plan_optable__schema_knows_every_op_and_field),
		cmocka_unit_test(test_plan_optable__refused_column_leaves_nothing_behind),
		cmocka_unit_test(test_plan_optable__fields_land_at_their_offsets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
