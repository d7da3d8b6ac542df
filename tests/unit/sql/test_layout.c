/*
 * The SQL reader reads libpg_query's raw parse tree with the node structs of
 * PostgreSQL 15's server headers (src/sql/sql_pg.h). Both must be the same
 * PostgreSQL: a node tag numbered differently, a field moved or a union
 * member of another size would read garbage. These statements pin the
 * layout: node tags, enums, strings, chars, lists, the A_Const union and
 * byte offsets, each read where a disagreement would show.
 */
#include "sql/sql_pg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* Parses text into t (which must hold exactly one statement) and returns it. */
static const Node *
one(struct sql_tree *t, const char *text)
{
	struct sql_msg m;
	const Node *n;

	if (sql_parse(t, text, &m) < 0)
		fail_msg("%s: %s", text, m.text);
	assert_int_equal(list_length(t->stmts), 1);
	assert_true(IsA(linitial(t->stmts), RawStmt));
	n = sql_tree_one(t, text, &m);
	assert_non_null(n);
	return n;
}

static void
test_sql_layout__alter_table_foreign_key(void **state)
{
	const char *text = "ALTER TABLE s.t ADD CONSTRAINT c FOREIGN KEY (a, b) "
			   "REFERENCES s.r (x, y) ON DELETE CASCADE NOT VALID";
	struct sql_tree t;
	const Node *n = one(&t, text);
	const AlterTableStmt *a;
	const AlterTableCmd *c;
	const Constraint *k;

	(void)state;
	assert_int_equal(nodeTag(n), T_AlterTableStmt);
	a = (const AlterTableStmt *)n;
	assert_int_equal(a->objtype, OBJECT_TABLE);
	assert_false(a->missing_ok);
	assert_string_equal(a->relation->schemaname, "s");
	assert_string_equal(a->relation->relname, "t");
	assert_null(a->relation->catalogname);
	assert_true(a->relation->inh);
	assert_int_equal(a->relation->relpersistence, 'p');
	assert_int_equal(a->relation->location, 12); /* the byte of "s.t" */
	assert_int_equal(list_length(a->cmds), 1);
	c = linitial_node(AlterTableCmd, a->cmds);
	assert_int_equal(c->subtype, AT_AddConstraint);
	assert_true(IsA(c->def, Constraint));
	k = (const Constraint *)c->def;
	assert_int_equal(k->contype, CONSTR_FOREIGN);
	assert_string_equal(k->conname, "c");
	assert_true(k->skip_validation);
	assert_false(k->initially_valid);
	assert_false(k->deferrable);
	assert_int_equal(k->fk_del_action, 'c'); /* FKCONSTR_ACTION_CASCADE */
	assert_string_equal(k->pktable->relname, "r");
	assert_int_equal(list_length(k->fk_attrs), 2);
	assert_string_equal(sql_node_str(lsecond(k->fk_attrs)), "b");
	assert_int_equal(list_length(k->pk_attrs), 2);
	assert_string_equal(sql_node_str(linitial(k->pk_attrs)), "x");
	assert_int_equal(k->location, 20); /* CONSTRAINT */
	sql_tree_free(&t);
}

static void
test_sql_layout__create_table_columns(void **state)
{
	const char *text = "CREATE UNLOGGED TABLE IF NOT EXISTS t (id bigint GENERATED ALWAYS AS "
			   "IDENTITY, n text COMPRESSION lz4 NOT NULL DEFAULT 'x', "
			   "PRIMARY KEY (id)) WITH (fillfactor = 70)";
	struct sql_tree t;
	const Node *n = one(&t, text);
	const CreateStmt *c;
	const ColumnDef *id, *col;
	const Constraint *k;
	const DefElem *o;

	(void)state;
	assert_int_equal(nodeTag(n), T_CreateStmt);
	c = (const CreateStmt *)n;
	assert_true(c->if_not_exists);
	assert_int_equal(c->relation->relpersistence, 'u');
	assert_null(c->relation->schemaname);
	assert_int_equal(list_length(c->tableElts), 3);
	id = linitial_node(ColumnDef, c->tableElts);
	assert_string_equal(id->colname, "id");
	assert_string_equal(sql_node_str(llast(id->typeName->names)), "int8");
	k = linitial_node(Constraint, id->constraints);
	assert_int_equal(k->contype, CONSTR_IDENTITY);
	assert_int_equal(k->generated_when, 'a'); /* ATTRIBUTE_IDENTITY_ALWAYS */
	col = lsecond_node(ColumnDef, c->tableElts);
	assert_string_equal(col->compression, "lz4");
	assert_null(col->collClause);
	assert_int_equal(list_length(col->constraints), 2);
	assert_int_equal(linitial_node(Constraint, col->constraints)->contype, CONSTR_NOTNULL);
	k = lsecond_node(Constraint, col->constraints);
	assert_int_equal(k->contype, CONSTR_DEFAULT);
	assert_true(IsA(k->raw_expr, A_Const));
	assert_string_equal(strVal(&((const A_Const *)k->raw_expr)->val), "x");
	k = lthird_node(Constraint, c->tableElts);
	assert_int_equal(k->contype, CONSTR_PRIMARY);
	assert_int_equal(list_length(k->keys), 1);
	o = linitial_node(DefElem, c->options);
	assert_string_equal(o->defname, "fillfactor");
	assert_null(o->defnamespace);
	sql_tree_free(&t);
}

static void
test_sql_layout__constants(void **state)
{
	const char *text = "SELECT 42, 'a', 1.5, true, B'101', NULL::int";
	struct sql_tree t;
	const Node *n = one(&t, text);
	const SelectStmt *s;
	const A_Const *v[5];
	const TypeCast *tc;

	(void)state;
	assert_int_equal(nodeTag(n), T_SelectStmt);
	s = (const SelectStmt *)n;
	assert_int_equal(s->op, SETOP_NONE);
	assert_null(s->fromClause);
	assert_int_equal(list_length(s->targetList), 6);
	for (int i = 0; i < 5; i++) {
		const ResTarget *rt = list_nth_node(ResTarget, s->targetList, i);
		assert_null(rt->name);
		assert_true(IsA(rt->val, A_Const));
		v[i] = (const A_Const *)rt->val;
		assert_false(v[i]->isnull);
	}
	assert_int_equal(nodeTag(&v[0]->val), T_Integer);
	assert_int_equal(v[0]->val.ival.ival, 42);
	assert_int_equal(v[0]->location, 7);
	assert_int_equal(nodeTag(&v[1]->val), T_String);
	assert_string_equal(v[1]->val.sval.sval, "a");
	assert_int_equal(nodeTag(&v[2]->val), T_Float);
	assert_string_equal(v[2]->val.fval.fval, "1.5");
	assert_int_equal(nodeTag(&v[3]->val), T_Boolean);
	assert_true(v[3]->val.boolval.boolval);
	assert_int_equal(nodeTag(&v[4]->val), T_BitString);
	assert_string_equal(v[4]->val.bsval.bsval, "b101");
	tc = (const TypeCast *)llast_node(ResTarget, s->targetList)->val;
	assert_int_equal(nodeTag(tc), T_TypeCast);
	assert_true(((const A_Const *)tc->arg)->isnull);
	assert_int_equal(tc->location, 39); /* the "::" */
	sql_tree_free(&t);
}

static void
test_sql_layout__index_drop_lock(void **state)
{
	struct sql_tree t;
	const Node *n;
	const IndexStmt *x;
	const DropStmt *d;
	const List *names;

	(void)state;
	n = one(&t, "CREATE UNIQUE INDEX CONCURRENTLY i ON t USING btree (a DESC) INCLUDE (b) "
		    "WHERE a > 0");
	x = (const IndexStmt *)n;
	assert_int_equal(nodeTag(n), T_IndexStmt);
	assert_true(x->unique && x->concurrent && !x->primary && !x->if_not_exists);
	assert_string_equal(x->idxname, "i");
	assert_string_equal(x->accessMethod, "btree");
	assert_null(x->tableSpace);
	assert_int_equal(linitial_node(IndexElem, x->indexParams)->ordering, SORTBY_DESC);
	assert_int_equal(list_length(x->indexIncludingParams), 1);
	assert_int_equal(nodeTag(x->whereClause), T_A_Expr);
	assert_int_equal(((const A_Expr *)x->whereClause)->kind, AEXPR_OP);
	sql_tree_free(&t);

	n = one(&t, "DROP INDEX CONCURRENTLY IF EXISTS s.i CASCADE");
	d = (const DropStmt *)n;
	assert_int_equal(nodeTag(n), T_DropStmt);
	assert_int_equal(d->removeType, OBJECT_INDEX);
	assert_int_equal(d->behavior, DROP_CASCADE);
	assert_true(d->missing_ok && d->concurrent);
	names = linitial(d->objects);
	assert_true(IsA(names, List));
	assert_string_equal(sql_node_str(lsecond(names)), "i");
	sql_tree_free(&t);

	n = one(&t, "LOCK TABLE t IN SHARE ROW EXCLUSIVE MODE NOWAIT");
	assert_int_equal(nodeTag(n), T_LockStmt);
	assert_int_equal(((const LockStmt *)n)->mode, 6); /* ShareRowExclusiveLock */
	assert_true(((const LockStmt *)n)->nowait);
	sql_tree_free(&t);
}

static void
test_sql_layout__statements_and_offsets(void **state)
{
	const char *text = "-- first\nBEGIN;\n  VACUUM (FULL) t; COMMIT";
	struct sql_tree t;
	struct sql_msg m;
	const RawStmt *r;

	(void)state;
	assert_int_equal(sql_parse(&t, text, &m), 0);
	assert_int_equal(list_length(t.stmts), 3);
	r = linitial_node(RawStmt, t.stmts);
	assert_int_equal(r->stmt_location, 0);
	assert_int_equal(r->stmt_len, 14); /* up to the ';', comment included */
	assert_int_equal(((const TransactionStmt *)r->stmt)->kind, TRANS_STMT_BEGIN);
	r = lsecond_node(RawStmt, t.stmts);
	assert_int_equal(r->stmt_location, 15);
	assert_true(((const VacuumStmt *)r->stmt)->is_vacuumcmd);
	r = lthird_node(RawStmt, t.stmts);
	assert_int_equal(r->stmt_len, 0); /* the last statement runs to the end */
	assert_int_equal(((const TransactionStmt *)r->stmt)->kind, TRANS_STMT_COMMIT);
	sql_tree_free(&t);
	sql_tree_free(&t); /* twice is a no-op */

	/* an error: PostgreSQL's message, at the byte of its 1-based cursor */
	assert_int_equal(sql_parse(&t, "SELECT é, FROM t", &m), -1);
	assert_string_equal(m.text, "syntax error at or near \"FROM\"");
	assert_int_equal(m.off, 11);
	assert_null(t.ctx);
	sql_tree_free(&t);
}

static bool
count_funcs(const Node *n, void *ctx)
{
	if (IsA(n, FuncCall))
		(*(int *)ctx)++;
	return true;
}

struct rels {
	char names[8][16];
	int n;
};

static bool
note_rel(const RangeVar *rv, void *ctx)
{
	struct rels *r = ctx;

	if (r->n < 8)
		snprintf(r->names[r->n++], sizeof(r->names[0]), "%s", rv->relname);
	return true;
}

static void
test_sql_layout__walk_reaches_every_node_type(void **state)
{
	struct sql_tree t;
	const Node *n;
	struct rels r = { 0 };
	int funcs = 0;

	(void)state;
	/* a node struct inline (CreateForeignTableStmt's CreateStmt), a CHECK, a FK */
	n = one(&t, "CREATE FOREIGN TABLE f (a int CHECK (a > f1()) REFERENCES p, "
		    "b int DEFAULT f2()) INHERITS (q) SERVER s");
	assert_string_equal(sql_stmt_name(n), "create_foreign_table_stmt");
	assert_true(sql_walk_rangevars(n, note_rel, &r));
	assert_int_equal(r.n, 3);
	assert_string_equal(r.names[0], "f");
	assert_string_equal(r.names[1], "p");
	assert_string_equal(r.names[2], "q");
	assert_true(sql_walk(n, count_funcs, &funcs));
	assert_int_equal(funcs, 2);
	sql_tree_free(&t);

	/* a CALL's own FuncCall is walked into but is not a Node of the walk */
	funcs = 0;
	n = one(&t, "CALL p(f3(), (SELECT f4() FROM u))");
	assert_true(sql_walk(n, count_funcs, &funcs));
	assert_int_equal(funcs, 2);
	r.n = 0;
	assert_true(sql_walk_rangevars(n, note_rel, &r));
	assert_int_equal(r.n, 1);
	assert_string_equal(r.names[0], "u");
	sql_tree_free(&t);

	/* publications, grants, triggers: statements PostgreSQL's own walker does not know */
	r.n = 0;
	n = one(&t, "CREATE TRIGGER tg AFTER INSERT ON a FOR EACH ROW WHEN (f5() > 0) "
		    "EXECUTE FUNCTION g()");
	assert_true(sql_walk_rangevars(n, note_rel, &r));
	funcs = 0;
	assert_true(sql_walk(n, count_funcs, &funcs));
	assert_int_equal(funcs, 1);
	sql_tree_free(&t);
	n = one(&t, "CREATE PUBLICATION pb FOR TABLE b WHERE (x > 1), TABLES IN SCHEMA s");
	assert_true(sql_walk_rangevars(n, note_rel, &r));
	sql_tree_free(&t);
	n = one(&t, "GRANT SELECT ON c, d TO someone");
	assert_true(sql_walk_rangevars(n, note_rel, &r));
	sql_tree_free(&t);
	assert_int_equal(r.n, 4);
	assert_string_equal(r.names[0], "a");
	assert_string_equal(r.names[1], "b");
	assert_string_equal(r.names[2], "c");
	assert_string_equal(r.names[3], "d");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sql_layout__alter_table_foreign_key),
		cmocka_unit_test(test_sql_layout__create_table_columns),
		cmocka_unit_test(test_sql_layout__constants),
		cmocka_unit_test(test_sql_layout__index_drop_lock),
		cmocka_unit_test(test_sql_layout__statements_and_offsets),
		cmocka_unit_test(test_sql_layout__walk_reaches_every_node_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
