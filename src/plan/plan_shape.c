/*
 * Parse what we generate: every statement the planner builds is read back by
 * PostgreSQL's parser and its tree checked against what the op promises
 * (one AlterTableStmt with exactly the subcommand of the op, one IndexStmt on
 * the named table, ...). A fragment that escaped its place in the statement
 * (a comment that swallowed a parenthesis, a clause smuggled into a type)
 * changes the tree, and the plan is refused before anything reaches a
 * database.
 */
#include <stdio.h>
#include <string.h>

#include "plan/plan.h"
#include "plan/plan_int.h"
#include "sql/sql.h"
#include "util/strbuf.h"

typedef PgQuery__Node node;

static bool
fail(struct sql_msg *m, const char *what)
{
	snprintf(m->text, sizeof(m->text), "%s", what);
	m->off = 0;
	return false;
}

/* The AlterTableStmt on table with one subcommand of kind sub, or NULL. */
static const PgQuery__AlterTableCmd *
one_cmd(const node *n, const char *table, PgQuery__AlterTableType sub)
{
	const PgQuery__AlterTableStmt *a;

	if (n->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_STMT)
		return NULL;
	a = n->alter_table_stmt;
	if (a->objtype != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE || a->missing_ok ||
	    !sql_rangevar_is(a->relation, table) || !a->relation->inh || a->n_cmds != 1 ||
	    a->cmds[0]->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
		return NULL;
	if (a->cmds[0]->alter_table_cmd->subtype != sub)
		return NULL;
	return a->cmds[0]->alter_table_cmd;
}

/* A column definition as column_sql writes it: NOT NULL and DEFAULT at most. */
static bool
coldef_ok(const node *n, const char *name, bool nullable, const struct plan_const *def)
{
	const PgQuery__ColumnDef *c;
	size_t want = (nullable ? 0 : 1) + (def->kind != CONST_NONE ? 1 : 0), got_nn = 0,
	       got_def = 0;

	if (!n || n->node_case != PG_QUERY__NODE__NODE_COLUMN_DEF)
		return false;
	c = n->column_def;
	if (strcmp(c->colname, name) != 0 || !c->type_name || c->coll_clause || c->raw_default ||
	    (c->identity && c->identity[0]) || (c->generated && c->generated[0]) ||
	    (c->compression && c->compression[0]) || c->n_constraints != want)
		return false;
	for (size_t i = 0; i < c->n_constraints; i++) {
		const node *k = c->constraints[i];
		if (k->node_case != PG_QUERY__NODE__NODE_CONSTRAINT)
			return false;
		if (k->constraint->contype == PG_QUERY__CONSTR_TYPE__CONSTR_NOTNULL)
			got_nn++;
		else if (k->constraint->contype == PG_QUERY__CONSTR_TYPE__CONSTR_DEFAULT)
			got_def++;
		else
			return false;
	}
	return got_nn == (nullable ? 0u : 1u) && got_def == (def->kind != CONST_NONE ? 1u : 0u);
}

static bool
add_constraint_ok(const node *n, const struct plan_step *s, PgQuery__ConstrType type)
{
	const PgQuery__AlterTableCmd *c =
	    one_cmd(n, s->table, PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint);
	const PgQuery__Constraint *k;

	if (!c || !c->def || c->def->node_case != PG_QUERY__NODE__NODE_CONSTRAINT)
		return false;
	k = c->def->constraint;
	return k->contype == type && !strcmp(k->conname, s->name) && k->skip_validation &&
	       !k->is_no_inherit && !k->deferrable &&
	       (type != PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN ||
		(sql_rangevar_is(k->pktable, s->ref_table) && k->n_fk_attrs == s->columns.n &&
		 k->n_pk_attrs == s->ref_columns.n));
}

static bool
drop_ok(const node *n, PgQuery__ObjectType type, bool concurrent)
{
	const PgQuery__DropStmt *d;

	if (n->node_case != PG_QUERY__NODE__NODE_DROP_STMT)
		return false;
	d = n->drop_stmt;
	return d->remove_type == type && d->n_objects == 1 && !d->missing_ok &&
	       d->concurrent == concurrent && d->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_RESTRICT;
}

/* Whether the one object of a DropStmt is ident ("name" or "schema.name"). */
static bool
drop_names(const node *n, const char *ident)
{
	const node *o = n->drop_stmt->objects[0];
	const char *dot = strchr(ident, '.'), *a, *b;

	if (o->node_case != PG_QUERY__NODE__NODE_LIST || o->list->n_items != (dot ? 2u : 1u))
		return false;
	a = sql_node_str(o->list->items[0]);
	if (!dot)
		return a && !strcmp(a, ident);
	b = sql_node_str(o->list->items[1]);
	return a && b && strlen(a) == (size_t)(dot - ident) && !strncmp(a, ident, strlen(a)) &&
	       !strcmp(b, dot + 1);
}

static bool
index_ok(const node *n, const struct plan_step *s)
{
	const PgQuery__IndexStmt *x;

	if (n->node_case != PG_QUERY__NODE__NODE_INDEX_STMT)
		return false;
	x = n->index_stmt;
	if (strcmp(x->idxname, s->name) != 0 || !sql_rangevar_is(x->relation, s->table) ||
	    !x->concurrent || x->unique != s->unique || x->primary || x->isconstraint ||
	    x->n_index_params != s->columns.n || x->n_index_including_params || x->n_options ||
	    (x->table_space && x->table_space[0]) || x->if_not_exists ||
	    (x->where_clause != NULL) != (s->where != NULL))
		return false;
	for (size_t i = 0; i < x->n_index_params; i++) {
		const node *e = x->index_params[i];
		if (e->node_case != PG_QUERY__NODE__NODE_INDEX_ELEM || !e->index_elem->name ||
		    strcmp(e->index_elem->name, s->columns.v[i]) != 0)
			return false;
	}
	return true;
}

static bool
create_table_ok(const node *n, const struct plan_step *s)
{
	const PgQuery__CreateStmt *c;
	size_t want = s->ncoldefs + (s->primary_key.n ? 1 : 0);

	if (n->node_case != PG_QUERY__NODE__NODE_CREATE_STMT)
		return false;
	c = n->create_stmt;
	if (!sql_rangevar_is(c->relation, s->table) || c->n_inh_relations || c->partbound ||
	    c->partspec || c->of_typename || c->n_constraints || c->n_options || c->if_not_exists ||
	    (c->tablespacename && c->tablespacename[0]) ||
	    (c->access_method && c->access_method[0]) ||
	    strcmp(c->relation->relpersistence, "p") != 0 || c->n_table_elts != want)
		return false;
	for (size_t i = 0; i < s->ncoldefs; i++)
		if (!coldef_ok(c->table_elts[i], s->coldefs[i].name, s->coldefs[i].nullable,
			       &s->coldefs[i].def))
			return false;
	if (s->primary_key.n) {
		const node *k = c->table_elts[s->ncoldefs];
		if (k->node_case != PG_QUERY__NODE__NODE_CONSTRAINT ||
		    k->constraint->contype != PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY ||
		    k->constraint->n_keys != s->primary_key.n)
			return false;
	}
	return true;
}

static bool
shape_ok(const node *n, const struct plan_step *s)
{
	const PgQuery__AlterTableCmd *c;

	switch (s->op) {
	case OP_CREATE_VIEW: {
		const PgQuery__ViewStmt *v;
		if (n->node_case != PG_QUERY__NODE__NODE_VIEW_STMT)
			return false;
		v = n->view_stmt;
		return sql_rangevar_is(v->view, s->name) && !v->replace && !v->n_aliases &&
		       !v->n_options && v->query &&
		       v->query->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
		       !v->query->select_stmt->into_clause &&
		       v->with_check_option == PG_QUERY__VIEW_CHECK_OPTION__NO_CHECK_OPTION &&
		       strcmp(v->view->relpersistence, "p") == 0;
	}
	case OP_CREATE_TABLE: return create_table_ok(n, s);
	case OP_ADD_COLUMN:
		c = one_cmd(n, s->table, PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn);
		return c && !c->missing_ok && coldef_ok(c->def, s->name, s->nullable, &s->def);
	case OP_ADD_INDEX_CONCURRENTLY: return index_ok(n, s);
	case OP_ADD_FOREIGN_KEY_NOT_VALID:
		return add_constraint_ok(n, s, PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN);
	case OP_ADD_CHECK_NOT_VALID:
		return add_constraint_ok(n, s, PG_QUERY__CONSTR_TYPE__CONSTR_CHECK);
	case OP_BACKFILL_SQL: {
		const PgQuery__UpdateStmt *u;
		if (n->node_case != PG_QUERY__NODE__NODE_UPDATE_STMT)
			return false;
		u = n->update_stmt;
		return sql_rangevar_is(u->relation, s->bf_table) && !u->n_from_clause &&
		       !u->n_returning_list && !u->with_clause && u->n_target_list > 0;
	}
	case OP_VALIDATE_CONSTRAINT:
		c = one_cmd(n, s->table, PG_QUERY__ALTER_TABLE_TYPE__AT_ValidateConstraint);
		return c && !strcmp(c->name, s->name);
	case OP_SET_NOT_NULL:
		c = one_cmd(n, s->table, PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull);
		return c && !strcmp(c->name, s->column);
	case OP_DROP_COLUMN:
		c = one_cmd(n, s->table, PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn);
		return c && !strcmp(c->name, s->name) && !c->missing_ok &&
		       c->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_RESTRICT;
	case OP_DROP_INDEX_CONCURRENTLY:
		return drop_ok(n, PG_QUERY__OBJECT_TYPE__OBJECT_INDEX, true) &&
		       drop_names(n, s->name);
	case OP_DROP_TABLE:
		return drop_ok(n, PG_QUERY__OBJECT_TYPE__OBJECT_TABLE, false) &&
		       drop_names(n, s->table);
	case OP_RENAME_COLUMN: {
		const PgQuery__RenameStmt *r;
		if (n->node_case != PG_QUERY__NODE__NODE_RENAME_STMT)
			return false;
		r = n->rename_stmt;
		return r->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN &&
		       sql_rangevar_is(r->relation, s->table) && !strcmp(r->subname, s->from) &&
		       !strcmp(r->newname, s->to) && !r->missing_ok;
	}
	case OP_RENAME_TABLE: {
		const PgQuery__RenameStmt *r;
		if (n->node_case != PG_QUERY__NODE__NODE_RENAME_STMT)
			return false;
		r = n->rename_stmt;
		return r->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE &&
		       sql_rangevar_is(r->relation, s->from) && !strcmp(r->newname, s->to) &&
		       !r->missing_ok;
	}
	case OP_SQL: return true;
	case OP_DROP_VIEW:
		return drop_ok(n, PG_QUERY__OBJECT_TYPE__OBJECT_VIEW, false) &&
		       drop_names(n, s->name);
	case OP_DROP_CONSTRAINT:
		c = one_cmd(n, s->table, PG_QUERY__ALTER_TABLE_TYPE__AT_DropConstraint);
		return c && !strcmp(c->name, s->name) && !c->missing_ok &&
		       c->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_RESTRICT;
	case OP_DROP_NOT_NULL:
		c = one_cmd(n, s->table, PG_QUERY__ALTER_TABLE_TYPE__AT_DropNotNull);
		return c && !strcmp(c->name, s->column);
	case OP__COUNT:
	case OP__ALL: break;
	}
	return false;
}

/* All of a step's checks as the executor sends them, in one SELECT of n booleans. */
static bool
checks_ok(const struct plan_strv *v, struct sql_msg *m)
{
	struct strbuf sb = STRBUF_INIT;
	struct sql_tree t;
	const node *n;
	bool ok;

	if (v->n == 0)
		return true;
	sb_puts(&sb, "SELECT ");
	for (size_t i = 0; i < v->n; i++)
		sb_printf(&sb, "%s(%s\n)::boolean", i ? ", " : "", v->v[i]);
	if (sql_parse(&t, sb_str(&sb), m) < 0) {
		sb_free(&sb);
		return false;
	}
	n = sql_tree_one(&t, sb_str(&sb), m);
	ok = n && n->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
	     n->select_stmt->n_target_list == v->n && !n->select_stmt->n_from_clause &&
	     !n->select_stmt->where_clause;
	if (n && !ok)
		fail(m, "the step's checks do not read back as one boolean each");
	sql_tree_free(&t);
	sb_free(&sb);
	return ok;
}

static bool
checks_node_ok(const node *n, size_t want)
{
	return n && n->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
	       n->select_stmt->n_target_list == want && !n->select_stmt->n_from_clause &&
	       !n->select_stmt->where_clause;
}

static void
checks_text(struct strbuf *sb, const struct plan_strv *v)
{
	sb_puts(sb, "SELECT ");
	for (size_t i = 0; i < v->n; i++)
		sb_printf(sb, "%s(%s\n)::boolean", i ? ", " : "", v->v[i]);
}

/* The statement alone, then each list of checks alone: slower, for the message. */
static bool
shape_check_apart(const struct plan_step *s, struct sql_msg *m)
{
	struct sql_tree t;
	const node *n;
	bool ok;

	if (sql_parse(&t, s->stmt, m) < 0)
		return false;
	n = sql_tree_one(&t, s->stmt, m);
	ok = n && shape_ok(n, s);
	if (n && !ok)
		snprintf(m->text, sizeof(m->text),
			 "the statement built for %s does not read back as that op (a value "
			 "reached outside its place in the statement): %.160s",
			 plan_op_name(s->op), s->stmt);
	sql_tree_free(&t);
	return ok && checks_ok(&s->ob.prechecks, m) && checks_ok(&s->ob.postchecks, m);
}

bool
plan_shape_check(const struct plan_step *s, struct sql_msg *m)
{
	/*
	 * One parse for the step: its statement, then its prechecks and its
	 * postchecks as the executor sends them, each a statement of its own
	 * (libpg_query's cost is per call as much as per node). The first
	 * statement must be exactly the step's, to its last byte; when anything
	 * is off, the pieces are read again apart for a precise message.
	 */
	const struct plan_strv *pre = &s->ob.prechecks, *post = &s->ob.postchecks;
	size_t want = 1 + (pre->n ? 1 : 0) + (post->n ? 1 : 0), len = strlen(s->stmt), k = 1;
	struct strbuf sb = STRBUF_INIT;
	struct sql_tree t;
	bool ok;

	sb_puts(&sb, s->stmt);
	sb_puts(&sb, "\n;\n"); /* a new line ends a -- comment at the statement's end */
	if (pre->n) {
		checks_text(&sb, pre);
		sb_puts(&sb, ";\n");
	}
	if (post->n)
		checks_text(&sb, post);
	ok = sql_parse(&t, sb_str(&sb), m) == 0;
	sb_free(&sb);
	if (ok) {
		const PgQuery__ParseResult *r = t.tree;
		ok = r->n_stmts == want && r->stmts[0]->stmt_location == 0 &&
		     (size_t)r->stmts[0]->stmt_len == len + 1 && shape_ok(r->stmts[0]->stmt, s);
		if (ok && pre->n)
			ok = checks_node_ok(r->stmts[k++]->stmt, pre->n);
		if (ok && post->n)
			ok = checks_node_ok(r->stmts[k]->stmt, post->n);
		sql_tree_free(&t);
	}
	return ok || shape_check_apart(s, m);
}
