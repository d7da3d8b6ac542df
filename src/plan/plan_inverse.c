/*
 * How each step is undone: its inverse, a step of its own that the executor
 * can run like any other, or why there is none. The op table (plan_ops.c:
 * .undo, .inverse, .undo_reason, .invert) says which, for each op:
 *
 *   create_view                 -> drop_view
 *   create_table                -> drop_table
 *   add_column                  -> drop_column
 *   add_index_concurrently      -> drop_index_concurrently
 *   add_foreign_key_not_valid,
 *   add_check_not_valid         -> drop_constraint
 *   validate_constraint         -> nothing to undo
 *   set_not_null                -> drop_not_null
 *   rename_column, rename_table -> the rename back
 *   backfill_sql                -> its revert_sql (an UPDATE, in batches), else the data stays
 *   sql                         -> its revert_sql, else irreversible
 *   drop_column, drop_table,
 *   drop_index_concurrently     -> irreversible
 *
 * An inverse is built in the plan's arena and finished by plan_step_finish
 * like a step the author wrote: its statement is read back by PostgreSQL's
 * parser (plan_shape_check), and its step_sha is the SHA-256 of the canonical
 * JSON {"inverse_of":<the step's step_sha>,"step":<its fields>}, which can
 * never be the canonical form of a forward step.
 */
#include "sql/sql_pg.h"

#include <stdio.h>
#include <string.h>

#include "plan/plan.h"
#include "plan/plan_int.h"
#include "util/alloc.h"
#include "util/canon.h"

/* A blank step of op that undoes s, at the same place in the file. */
static struct plan_step *
inverse_new(struct plan *p, const struct plan_step *s, enum plan_op op)
{
	struct plan_step *inv = arena_alloc(p->arena, sizeof(*inv));

	inv->op = op;
	inv->line = s->line;
	inv->col = s->col;
	inv->nullable = true;
	inv->declared_rewrite = -1;
	return inv;
}

struct plan_step *
plan_inverse_revert(struct plan *p, struct plan_step *s, unsigned line, unsigned col)
{
	struct plan_step *inv = inverse_new(p, s, s->op);

	inv->line = line;
	inv->col = col;
	s->inverse = inv;
	return inv;
}

/* The schema-qualified name of an object that lives beside table ("app.t", "x" -> "app.x"). */
static char *
beside(struct plan *p, const char *table, const char *name)
{
	const char *dot = strchr(table, '.');

	if (!dot)
		return arena_strdup(p->arena, name);
	return arena_printf(p->arena, "%.*s.%s", (int)(dot - table), table, name);
}

/* The name without its schema. */
static const char *
unqualified(const char *ident)
{
	const char *dot = strchr(ident, '.');

	return dot ? dot + 1 : ident;
}

/* Whether step e comes before step s in the order the plan applies them. */
static bool
before(const struct plan_step *e, const struct plan_step *s)
{
	return e->wave < s->wave || (e->wave == s->wave && e->index < s->index);
}

/*
 * The earlier step of p whose inverse drops column col of table (an
 * add_column of it, or the create_table of table), or NULL.
 */
static const struct plan_step *
dropped_by(const struct plan *p, const struct plan_step *s, const char *table, const char *col)
{
	for (int w = 0; w <= (int)s->wave; w++) {
		for (size_t i = 0; i < p->waves[w].nsteps; i++) {
			const struct plan_step *e = &p->waves[w].steps[i];

			if (!before(e, s))
				break;
			if (e->op == OP_CREATE_TABLE && !strcmp(e->table, table))
				return e;
			if (e->op == OP_ADD_COLUMN && !strcmp(e->table, table) &&
			    !strcmp(e->name, col))
				return e;
		}
	}
	return NULL;
}

/*
 * A backfill without revert_sql leaves what it wrote. Harmless when every
 * column it sets is dropped anyway by the inverse of an earlier step (which
 * a revert runs after this one): say which; else say the data stays.
 */
static const char *
backfill_left(struct plan *p, const struct plan_step *s)
{
	struct sql_tree t;
	struct sql_msg m;
	const Node *n;
	const struct plan_step *by = NULL;
	bool all = false;

	n = sql_parse_one(&t, s->sql, &m);
	if (n && IsA(n, UpdateStmt) && ((const UpdateStmt *)n)->targetList) {
		const List *tl = ((const UpdateStmt *)n)->targetList;
		all = true;
		for (int i = 0; all && i < list_length(tl); i++) {
			const ResTarget *r = list_nth(tl, i);
			const struct plan_step *e;

			e = IsA(r, ResTarget) && r->name ? dropped_by(p, s, s->bf_table, r->name)
							 : NULL;
			all = e != NULL;
			if (e && (!by || e->op == OP_CREATE_TABLE))
				by = e;
		}
	}
	sql_tree_free(&t);
	if (all && by->op == OP_CREATE_TABLE)
		return arena_printf(p->arena,
				    "data left as is: harmless, the inverse of the create_table at "
				    "line %u drops the table it filled",
				    by->line);
	if (all)
		return arena_printf(p->arena,
				    "data left as is: harmless, the inverse of the add_column at "
				    "line %u drops the column it filled",
				    by->line);
	return "data left as is: the rows keep what the backfill wrote (a revert_sql would "
	       "undo it)";
}

/* The hooks of the op table for inverses that are not a copy of the step's fields. */

/* add_index_concurrently: the index lives in the table's schema. */
struct plan_step *
plan_invert_index(struct plan *p, struct plan_step *s)
{
	struct plan_step *inv = inverse_new(p, s, OP_DROP_INDEX_CONCURRENTLY);

	inv->name = beside(p, s->table, s->name);
	return inv;
}

/* rename_column: the rename back. */
struct plan_step *
plan_invert_rename_column(struct plan *p, struct plan_step *s)
{
	struct plan_step *inv = inverse_new(p, s, OP_RENAME_COLUMN);

	inv->table = s->table;
	inv->from = s->to;
	inv->to = s->from;
	return inv;
}

/* rename_table: it stays in its schema, so from "app.a" to "b" is undone from "app.b" to "a". */
struct plan_step *
plan_invert_rename_table(struct plan *p, struct plan_step *s)
{
	struct plan_step *inv = inverse_new(p, s, OP_RENAME_TABLE);

	inv->from = beside(p, s->from, s->to);
	inv->to = (char *)unqualified(s->from);
	return inv;
}

/* backfill_sql without revert_sql: no inverse; why the data it leaves may not matter. */
struct plan_step *
plan_invert_backfill(struct plan *p, struct plan_step *s)
{
	s->undo_reason = backfill_left(p, s);
	return NULL;
}

/*
 * The generated inverse of s, or NULL with s->undo and s->undo_reason set,
 * from s's entry in the op table: a step of the entry's inverse op whose
 * fields are s's members at the same place (a drop_column gets the
 * add_column's table and name), or what the entry's hook makes.
 */
static struct plan_step *
generated_inverse(struct plan *p, struct plan_step *s)
{
	const struct plan_opdef *d = plan_opdef(s->op);
	const struct plan_opdef *id;
	struct plan_step *inv;

	s->undo = d->undo;
	s->undo_reason = d->undo_reason;
	if (d->invert)
		return d->invert(p, s);
	if (d->undo != UNDO_INVERSE)
		return NULL;
	inv = inverse_new(p, s, d->inverse);
	id = plan_opdef(d->inverse);
	for (int i = 0; i < PLAN_MAXF && id->fields[i].name; i++)
		memcpy((char *)inv + id->fields[i].off, (const char *)s + id->fields[i].off,
		       plan_fkind_size(id->fields[i].kind));
	return inv;
}

int
plan_inverse_build(struct plan *p, struct plan_step *s, struct sql_msg *m)
{
	struct plan_step *inv = s->inverse; /* read from revert_sql, or NULL */
	cJSON *j;

	if (!inv)
		inv = generated_inverse(p, s);
	if (!inv)
		return 0;
	/* its wave, position and limits are the step's, known only now */
	inv->wave = s->wave;
	inv->index = s->index;
	inv->limits = s->limits;
	inv->inverse_of = arena_strdup(p->arena, s->sha);
	inv->undo = UNDO_IRREVERSIBLE;
	inv->undo_reason = "irreversible: an inverse is not undone in turn";
	plan_step_finish(p, inv);
	/* the same reading back as a step the author wrote */
	if (!plan_shape_check(inv, m)) {
		s->inverse = inv;
		return -1;
	}
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "inverse_of", s->sha);
	cJSON_AddItemToObject(j, "step", plan_step_fields_json(inv));
	if (canon_sha256(j, inv->sha) < 0) {
		/* only integers are in a step's fields: this cannot happen */
		cJSON_Delete(j);
		snprintf(m->text, sizeof(m->text), "its canonical form has no single spelling");
		m->off = 0;
		s->inverse = inv;
		return -1;
	}
	cJSON_Delete(j);
	s->inverse = inv;
	s->undo = UNDO_INVERSE;
	s->undo_reason = NULL;
	return 0;
}
