/*
 * Parse what we generate: every statement the planner builds is read back by
 * PostgreSQL's parser and its tree checked against what the op promises
 * (one AlterTableStmt with exactly the subcommand of the op, one IndexStmt on
 * the named table, ...). A fragment that escaped its place in the statement
 * (a comment that swallowed a parenthesis, a clause smuggled into a type)
 * changes the tree, and the plan is refused before anything reaches a
 * database. What each op promises is its entry's .shape in the op table
 * (plan_ops.c): one subcommand, one drop, or a hook below.
 */
#include "sql/sql_pg.h"

#include <stdio.h>
#include <string.h>

#include "plan/plan.h"
#include "plan/plan_int.h"
#include "util/strbuf.h"

static bool
fail(struct sql_msg *m, const char *what)
{
	snprintf(m->text, sizeof(m->text), "%s", what);
	m->off = 0;
	return false;
}

/* The AlterTableStmt on table with one subcommand of kind sub, or NULL. */
static const AlterTableCmd *
one_cmd(const Node *n, const char *table, AlterTableType sub)
{
	const AlterTableStmt *a;
	const AlterTableCmd *c;

	if (!IsA(n, AlterTableStmt))
		return NULL;
	a = (const AlterTableStmt *)n;
	if (a->objtype != OBJECT_TABLE || a->missing_ok || !sql_rangevar_is(a->relation, table) ||
	    !a->relation->inh || list_length(a->cmds) != 1 ||
	    !IsA(linitial(a->cmds), AlterTableCmd))
		return NULL;
	c = linitial_node(AlterTableCmd, a->cmds);
	return c->subtype == sub ? c : NULL;
}

/* A column definition as column_sql writes it: NOT NULL and DEFAULT at most. */
static bool
coldef_ok(const Node *n, const char *name, bool nullable, const struct plan_const *def)
{
	const ColumnDef *c;
	int want = (nullable ? 0 : 1) + (def->kind != CONST_NONE ? 1 : 0), got_nn = 0, got_def = 0;

	if (!n || !IsA(n, ColumnDef))
		return false;
	c = (const ColumnDef *)n;
	if (!sql_str_eq(c->colname, name) || !c->typeName || c->collClause || c->raw_default ||
	    c->identity || c->generated || !sql_str_empty(c->compression) ||
	    list_length(c->constraints) != want)
		return false;
	for (int i = 0; i < list_length(c->constraints); i++) {
		const Constraint *k = list_nth(c->constraints, i);
		if (!IsA(k, Constraint))
			return false;
		if (k->contype == CONSTR_NOTNULL)
			got_nn++;
		else if (k->contype == CONSTR_DEFAULT)
			got_def++;
		else
			return false;
	}
	return got_nn == (nullable ? 0 : 1) && got_def == (def->kind != CONST_NONE ? 1 : 0);
}

static bool
add_constraint_ok(const Node *n, const struct plan_step *s, ConstrType type)
{
	const AlterTableCmd *c = one_cmd(n, s->table, AT_AddConstraint);
	const Constraint *k;

	if (!c || !c->def || !IsA(c->def, Constraint))
		return false;
	k = (const Constraint *)c->def;
	return k->contype == type && sql_str_eq(k->conname, s->name) && k->skip_validation &&
	       !k->is_no_inherit && !k->deferrable &&
	       (type != CONSTR_FOREIGN || (sql_rangevar_is(k->pktable, s->ref_table) &&
					   (size_t)list_length(k->fk_attrs) == s->columns.n &&
					   (size_t)list_length(k->pk_attrs) == s->ref_columns.n));
}

static bool
drop_ok(const Node *n, ObjectType type, bool concurrent)
{
	const DropStmt *d;

	if (!IsA(n, DropStmt))
		return false;
	d = (const DropStmt *)n;
	return d->removeType == type && list_length(d->objects) == 1 && !d->missing_ok &&
	       d->concurrent == concurrent && d->behavior == DROP_RESTRICT;
}

/* Whether the one object of a DropStmt is ident ("name" or "schema.name"). */
static bool
drop_names(const Node *n, const char *ident)
{
	const List *o = linitial(((const DropStmt *)n)->objects);
	const char *dot = strchr(ident, '.'), *a, *b;

	if (!IsA(o, List) || list_length(o) != (dot ? 2 : 1))
		return false;
	a = sql_node_str(linitial(o));
	if (!dot)
		return a && !strcmp(a, ident);
	b = sql_node_str(lsecond(o));
	return a && b && strlen(a) == (size_t)(dot - ident) && !strncmp(a, ident, strlen(a)) &&
	       !strcmp(b, dot + 1);
}

static bool
index_ok(const Node *n, const struct plan_step *s)
{
	const IndexStmt *x;

	if (!IsA(n, IndexStmt))
		return false;
	x = (const IndexStmt *)n;
	if (!sql_str_eq(x->idxname, s->name) || !sql_rangevar_is(x->relation, s->table) ||
	    !x->concurrent || x->unique != s->unique || x->primary || x->isconstraint ||
	    (size_t)list_length(x->indexParams) != s->columns.n || x->indexIncludingParams ||
	    x->options || !sql_str_empty(x->tableSpace) || x->if_not_exists ||
	    (x->whereClause != NULL) != (s->where != NULL))
		return false;
	for (int i = 0; i < list_length(x->indexParams); i++) {
		const IndexElem *e = list_nth(x->indexParams, i);
		if (!IsA(e, IndexElem) || !e->name || strcmp(e->name, s->columns.v[i]) != 0)
			return false;
	}
	return true;
}

static bool
create_table_ok(const Node *n, const struct plan_step *s)
{
	const CreateStmt *c;
	size_t want = s->ncoldefs + (s->primary_key.n ? 1 : 0);

	if (!IsA(n, CreateStmt))
		return false;
	c = (const CreateStmt *)n;
	if (!sql_rangevar_is(c->relation, s->table) || c->inhRelations || c->partbound ||
	    c->partspec || c->ofTypename || c->constraints || c->options || c->if_not_exists ||
	    !sql_str_empty(c->tablespacename) || !sql_str_empty(c->accessMethod) ||
	    c->relation->relpersistence != 'p' /* permanent */ ||
	    (size_t)list_length(c->tableElts) != want)
		return false;
	for (size_t i = 0; i < s->ncoldefs; i++)
		if (!coldef_ok(list_nth(c->tableElts, (int)i), s->coldefs[i].name,
			       s->coldefs[i].nullable, &s->coldefs[i].def))
			return false;
	if (s->primary_key.n) {
		const Constraint *k = list_nth(c->tableElts, (int)s->ncoldefs);
		if (!IsA(k, Constraint) || k->contype != CONSTR_PRIMARY ||
		    (size_t)list_length(k->keys) != s->primary_key.n)
			return false;
	}
	return true;
}

/* The hooks of the op table, for statements that are more than one subcommand or one drop. */

bool
plan_shape_create_view(const Node *n, const struct plan_step *s)
{
	const ViewStmt *v;

	if (!IsA(n, ViewStmt))
		return false;
	v = (const ViewStmt *)n;
	return sql_rangevar_is(v->view, s->name) && !v->replace && !v->aliases && !v->options &&
	       v->query && IsA(v->query, SelectStmt) &&
	       !((const SelectStmt *)v->query)->intoClause &&
	       v->withCheckOption == NO_CHECK_OPTION && v->view->relpersistence == 'p';
}

bool
plan_shape_create_table(const Node *n, const struct plan_step *s)
{
	return create_table_ok(n, s);
}

bool
plan_shape_add_column(const Node *n, const struct plan_step *s)
{
	const AlterTableCmd *c = one_cmd(n, s->table, AT_AddColumn);

	return c && !c->missing_ok && coldef_ok(c->def, s->name, s->nullable, &s->def);
}

bool
plan_shape_add_index(const Node *n, const struct plan_step *s)
{
	return index_ok(n, s);
}

bool
plan_shape_add_foreign_key(const Node *n, const struct plan_step *s)
{
	return add_constraint_ok(n, s, CONSTR_FOREIGN);
}

bool
plan_shape_add_check(const Node *n, const struct plan_step *s)
{
	return add_constraint_ok(n, s, CONSTR_CHECK);
}

bool
plan_shape_backfill(const Node *n, const struct plan_step *s)
{
	const UpdateStmt *u;

	if (!IsA(n, UpdateStmt))
		return false;
	u = (const UpdateStmt *)n;
	return sql_rangevar_is(u->relation, s->bf_table) && !u->fromClause && !u->returningList &&
	       !u->withClause && u->targetList;
}

bool
plan_shape_rename_column(const Node *n, const struct plan_step *s)
{
	const RenameStmt *r;

	if (!IsA(n, RenameStmt))
		return false;
	r = (const RenameStmt *)n;
	return r->renameType == OBJECT_COLUMN && sql_rangevar_is(r->relation, s->table) &&
	       sql_str_eq(r->subname, s->from) && sql_str_eq(r->newname, s->to) && !r->missing_ok;
}

bool
plan_shape_rename_table(const Node *n, const struct plan_step *s)
{
	const RenameStmt *r;

	if (!IsA(n, RenameStmt))
		return false;
	r = (const RenameStmt *)n;
	return r->renameType == OBJECT_TABLE && sql_rangevar_is(r->relation, s->from) &&
	       sql_str_eq(r->newname, s->to) && !r->missing_ok;
}

/* PostgreSQL's subcommand and object type of the op table's words for them. */
static const AlterTableType alter_sub[SHAPE_SUB__COUNT] = {
	[SHAPE_SUB_VALIDATE_CONSTRAINT] = AT_ValidateConstraint,
	[SHAPE_SUB_SET_NOT_NULL] = AT_SetNotNull,
	[SHAPE_SUB_DROP_NOT_NULL] = AT_DropNotNull,
	[SHAPE_SUB_DROP_COLUMN] = AT_DropColumn,
	[SHAPE_SUB_DROP_CONSTRAINT] = AT_DropConstraint,
};
static const ObjectType drop_object[SHAPE_OBJ__COUNT] = {
	[SHAPE_OBJ_TABLE] = OBJECT_TABLE,
	[SHAPE_OBJ_INDEX] = OBJECT_INDEX,
	[SHAPE_OBJ_VIEW] = OBJECT_VIEW,
};

/* The step's member that the op table says the statement names. */
static const char *
named(const struct plan_step *s, const struct plan_shape *sh)
{
	return *(char *const *)((const char *)s + sh->name_off);
}

/*
 * Whether n is what the op's entry in the op table (.shape) promises: one
 * ALTER TABLE of the step's table with exactly the one subcommand, naming
 * the member it says (no IF EXISTS, RESTRICT); one DROP of the object it
 * names (CONCURRENTLY as it says, no IF EXISTS, RESTRICT); or what its hook
 * checks. An `sql` step is the author's statement: the analyser reads it.
 */
static bool
shape_ok(const Node *n, const struct plan_step *s)
{
	const struct plan_shape *sh = &plan_opdef(s->op)->shape;
	const AlterTableCmd *c;

	switch (sh->kind) {
	case SHAPE_ANY: return true;
	case SHAPE_ALTER:
		c = one_cmd(n, s->table, alter_sub[sh->sub]);
		return c && sql_str_eq(c->name, named(s, sh)) && !c->missing_ok &&
		       c->behavior == DROP_RESTRICT;
	case SHAPE_DROP:
		return drop_ok(n, drop_object[sh->object], sh->concurrent) &&
		       drop_names(n, named(s, sh));
	case SHAPE_HOOK: return sh->hook(n, s);
	case SHAPE_UNSET: break;
	}
	return false;
}

/*
 * A list of checks as the executor sends it (exec_checks.c): the computed
 * ones, the first v->n - nuser, in one SELECT of a boolean each; then each
 * of the author's alone. Each text is one statement: SELECT ..., appended
 * to sb with ";\n" after it. Returns how many (the first: ncomp targets,
 * the others one); *ncomp gets the number of computed ones.
 */
static size_t
checks_stmts(struct strbuf *sb, const struct plan_strv *v, size_t nuser, size_t *ncomp)
{
	size_t n = 0;

	*ncomp = v->n > nuser ? v->n - nuser : 0;
	for (size_t i = 0; i < v->n; i++) {
		if (i == 0 || i >= *ncomp)
			sb_puts(sb, "SELECT ");
		else
			sb_puts(sb, ", ");
		/* the newline lets a trailing -- comment end before the parenthesis */
		sb_printf(sb, "(%s\n)::boolean", v->v[i]);
		if (i + 1 >= *ncomp) {
			sb_puts(sb, ";\n");
			n++;
		}
	}
	return n;
}

static bool
checks_node_ok(const Node *n, size_t want)
{
	const SelectStmt *s = n && IsA(n, SelectStmt) ? (const SelectStmt *)n : NULL;
	const ListCell *lc;

	if (!s || (size_t)list_length(s->targetList) != want || s->fromClause || s->whereClause)
		return false;
	/* each target is one check as the executor wraps it, nothing around it */
	foreach (lc, s->targetList) {
		const ResTarget *rt = lfirst_node(ResTarget, lc);

		if (rt->name || !sql_is_bool_cast(rt->val))
			return false;
	}
	return true;
}

/* Whether the statements of t from *k on are the check statements of v (checks_stmts). */
static bool
checks_read_ok(const struct sql_tree *t, int *k, const struct plan_strv *v, size_t nuser)
{
	size_t ncomp = v->n > nuser ? v->n - nuser : 0;

	for (size_t i = 0; i < v->n; i++) {
		if (i > 0 && i < ncomp)
			continue; /* in the computed ones' one SELECT */
		if (*k >= list_length(t->stmts) ||
		    !checks_node_ok(list_nth_node(RawStmt, t->stmts, *k)->stmt,
				    i < ncomp ? ncomp : 1))
			return false;
		(*k)++;
	}
	return true;
}

/* A list of checks alone, each statement as the executor sends it: slower, for the message. */
static bool
checks_ok(const struct plan_strv *v, size_t nuser, struct sql_msg *m)
{
	struct strbuf sb = STRBUF_INIT;
	struct sql_tree t;
	size_t ncomp, want;
	int k = 0;
	bool ok;

	if (v->n == 0)
		return true;
	want = checks_stmts(&sb, v, nuser, &ncomp);
	if (sql_parse(&t, sb_str(&sb), m) < 0) {
		sb_free(&sb);
		return false;
	}
	ok = (size_t)list_length(t.stmts) == want && checks_read_ok(&t, &k, v, nuser);
	if (!ok)
		fail(m, "the step's checks do not read back as one boolean each");
	sql_tree_free(&t);
	sb_free(&sb);
	return ok;
}

/* The statement alone, then each list of checks alone: slower, for the message. */
static bool
shape_check_apart(const struct plan_step *s, struct sql_msg *m)
{
	struct sql_tree t;
	const Node *n;
	bool ok;

	n = sql_parse_one(&t, s->stmt, m);
	ok = n && shape_ok(n, s);
	if (n && !ok)
		snprintf(m->text, sizeof(m->text),
			 "the statement built for %s does not read back as that op (a value "
			 "reached outside its place in the statement): %.160s",
			 plan_op_name(s->op), s->stmt);
	sql_tree_free(&t);
	return ok && checks_ok(&s->ob.prechecks, s->user_prechecks.n, m) &&
	       checks_ok(&s->ob.postchecks, s->user_postchecks.n, m);
}

bool
plan_shape_check(const struct plan_step *s, struct sql_msg *m)
{
	/*
	 * One parse for the step: its statement, then its checks as the
	 * executor sends them (the computed ones of a list in one SELECT, each
	 * of the author's alone), each a statement of its own (libpg_query's
	 * cost is per call as much as per node). The first statement must be
	 * exactly the step's, to its last byte; when anything is off, the
	 * pieces are read again apart for a precise message. The guard the
	 * executor builds over the computed prechecks is read back where it is
	 * built (sql_is_checks_guard).
	 */
	const struct plan_strv *pre = &s->ob.prechecks, *post = &s->ob.postchecks;
	size_t want = 1, len = strlen(s->stmt), ncomp;
	int k = 1;
	struct strbuf sb = STRBUF_INIT;
	struct sql_tree t;
	bool ok;

	sb_puts(&sb, s->stmt);
	sb_puts(&sb, "\n;\n"); /* a new line ends a -- comment at the statement's end */
	want += checks_stmts(&sb, pre, s->user_prechecks.n, &ncomp);
	want += checks_stmts(&sb, post, s->user_postchecks.n, &ncomp);
	ok = sql_parse(&t, sb_str(&sb), m) == 0;
	sb_free(&sb);
	if (ok) {
		const RawStmt *r = list_length(t.stmts) ? linitial_node(RawStmt, t.stmts) : NULL;
		ok = (size_t)list_length(t.stmts) == want && r->stmt_location == 0 &&
		     (size_t)r->stmt_len == len + 1 && shape_ok(r->stmt, s) &&
		     checks_read_ok(&t, &k, pre, s->user_prechecks.n) &&
		     checks_read_ok(&t, &k, post, s->user_postchecks.n);
		sql_tree_free(&t);
	}
	return ok || shape_check_apart(s, m);
}
