/*
 * The fields that hold a whole statement: create_view's query, an sql step's
 * statement (and what it does, read from its tree), backfill_sql's UPDATE.
 */
#include "sql/sql_pg.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "plan/doc.h"
#include "plan/plan.h"
#include "plan/plan_int.h"
#include "sql/sql.h"
#include "util/alloc.h"

/* A short name of a statement's kind, for messages: "VACUUM", "CREATE DATABASE". */
static const char *
stmt_keyword(const Node *q)
{
	switch (nodeTag(q)) {
	case T_VacuumStmt: return ((const VacuumStmt *)q)->is_vacuumcmd ? "VACUUM" : "ANALYZE";
	case T_AlterSystemStmt: return "ALTER SYSTEM";
	case T_CreatedbStmt: return "CREATE DATABASE";
	case T_DropdbStmt: return "DROP DATABASE";
	case T_AlterDatabaseStmt: return "ALTER DATABASE";
	case T_CreateTableSpaceStmt: return "CREATE TABLESPACE";
	case T_DropTableSpaceStmt: return "DROP TABLESPACE";
	case T_InsertStmt: return "INSERT";
	case T_UpdateStmt: return "UPDATE";
	case T_DeleteStmt: return "DELETE";
	case T_CreateStmt: return "CREATE TABLE";
	case T_AlterTableStmt: return "ALTER TABLE";
	case T_DropStmt: return "DROP";
	case T_IndexStmt: return "CREATE INDEX";
	default: return "a statement that is not a query";
	}
}

/* What the transaction statement is called in SQL. */
static const char *
tx_keyword(const TransactionStmt *t)
{
	switch (t->kind) {
	case TRANS_STMT_BEGIN: return "BEGIN";
	case TRANS_STMT_START: return "START TRANSACTION";
	case TRANS_STMT_COMMIT: return "COMMIT";
	case TRANS_STMT_ROLLBACK: return "ROLLBACK";
	case TRANS_STMT_SAVEPOINT: return "SAVEPOINT";
	case TRANS_STMT_RELEASE: return "RELEASE";
	case TRANS_STMT_ROLLBACK_TO: return "ROLLBACK TO";
	case TRANS_STMT_PREPARE: return "PREPARE TRANSACTION";
	case TRANS_STMT_COMMIT_PREPARED: return "COMMIT PREPARED";
	case TRANS_STMT_ROLLBACK_PREPARED: return "ROLLBACK PREPARED";
	default: return "transaction control";
	}
}

static bool
is_set_config(const Node *n, void *ctx)
{
	bool *found = ctx;

	if (IsA(n, FuncCall) && ((const FuncCall *)n)->funcname &&
	    sql_node_str(llast(((const FuncCall *)n)->funcname)) &&
	    !strcmp(sql_node_str(llast(((const FuncCall *)n)->funcname)), "set_config")) {
		*found = true;
		return false;
	}
	return true;
}

/* Whether the statement calls set_config anywhere (a function body is not looked into). */
static bool
calls_set_config(const Node *q)
{
	bool found = false;

	(void)sql_walk(q, is_set_config, &found);
	return found;
}

/* Why an `sql` step's statement cannot run as a step, or NULL. */
static const char *
stmt_refused(struct plan_bctx *c, const Node *q)
{
	switch (nodeTag(q)) {
	case T_TransactionStmt:
		return arena_printf(c->a,
				    "expected a statement, found transaction control ('%s'): the "
				    "executor runs each step in its own transaction",
				    tx_keyword((const TransactionStmt *)q));
	case T_AlterSystemStmt:
	case T_CreatedbStmt:
	case T_DropdbStmt:
	case T_CreateTableSpaceStmt:
	case T_DropTableSpaceStmt:
		return arena_printf(c->a,
				    "expected a statement on this database's objects, found '%s', "
				    "which changes the server or another database",
				    stmt_keyword(q));
	case T_VariableSetStmt:
	case T_DiscardStmt:
		return "expected a statement that leaves the session as it was, found SET, RESET "
		       "or DISCARD: a setting would outlive the step (use limits: for timeouts)";
	default: break;
	}
	if (calls_set_config(q))
		return "expected a statement that leaves the session as it was, found a call of "
		       "set_config(): a setting would outlive the step (use limits: for timeouts)";
	return NULL;
}

static bool
collect_rangevar(const RangeVar *rv, void *ctx)
{
	void **a = ctx;
	struct plan_bctx *c = a[0];
	struct plan_step *s = a[1];
	char *name, **nv;

	if (!rv->relname || !sql_str_empty(rv->catalogname))
		return true;
	name = !sql_str_empty(rv->schemaname)
		   ? arena_printf(c->p->arena, "%s.%s", rv->schemaname, rv->relname)
		   : arena_strdup(c->p->arena, rv->relname);
	if (!plan_ident_ok(name, true))
		return true;
	for (size_t i = 0; i < s->touched.n; i++)
		if (!strcmp(s->touched.v[i], name))
			return true;
	nv = arena_alloc(c->p->arena, (s->touched.n + 1) * sizeof(*nv));
	if (s->touched.n)
		memcpy(nv, s->touched.v, s->touched.n * sizeof(*nv));
	nv[s->touched.n++] = name;
	s->touched.v = nv;
	return true;
}

/*
 * The relations an sql step's statement names: their relfilenodes are
 * compared before and after the statement when it promises no rewrite.
 */
static void
touched_of(struct plan_bctx *c, const Node *q, struct plan_step *s)
{
	void *ctx[2] = { c, s };

	(void)sql_walk_rangevars(q, collect_rangevar, ctx);
}

/*
 * The index a CREATE or DROP INDEX CONCURRENTLY names, for the checks that let
 * a retry after a crash find what the killed run left (a CONCURRENTLY
 * statement is not rolled back). Returns why the statement is refused, or NULL.
 */
static const char *
concurrent_index(struct plan_bctx *c, const Node *q, struct plan_step *s)
{
	if (IsA(q, IndexStmt) && ((const IndexStmt *)q)->concurrent) {
		const IndexStmt *x = (const IndexStmt *)q;
		const char *schema = x->relation ? x->relation->schemaname : NULL;

		if (sql_str_empty(x->idxname))
			return "expected CREATE INDEX CONCURRENTLY to name its index: a build "
			       "killed half-way leaves an INVALID index that a retry must find";
		s->cic_index = schema && schema[0]
				   ? arena_printf(c->p->arena, "%s.%s", schema, x->idxname)
				   : arena_strdup(c->p->arena, x->idxname);
		if (!plan_ident_ok(s->cic_index, true))
			return arena_printf(c->a,
					    "expected a plain index name ([A-Za-z_][A-Za-z0-9_]*), "
					    "found '%s'",
					    s->cic_index);
	}
	if (IsA(q, DropStmt) && ((const DropStmt *)q)->concurrent &&
	    ((const DropStmt *)q)->removeType == OBJECT_INDEX &&
	    list_length(((const DropStmt *)q)->objects) == 1 &&
	    IsA(linitial(((const DropStmt *)q)->objects), List)) {
		const List *l = linitial(((const DropStmt *)q)->objects);
		const char *a = list_length(l) > 0 ? sql_node_str(linitial(l)) : NULL;
		const char *b = list_length(l) > 1 ? sql_node_str(lsecond(l)) : NULL;
		char *name = list_length(l) == 2 && a && b
				 ? arena_printf(c->p->arena, "%s.%s", a, b)
			     : list_length(l) == 1 && a ? arena_strdup(c->p->arena, a)
							: NULL;
		if (name && plan_ident_ok(name, true))
			s->dic_index = name;
	}
	return NULL;
}

bool
plan_read_query(struct plan_bctx *c, const struct doc_node *v, const char *label, char **out)
{
	struct sql_tree t;
	const Node *q;
	const SelectStmt *sel;
	char *sql = plan_get_stmt(c, v, label, &t, &q);

	if (!sql)
		return false;
	*out = sql;
	sel = IsA(q, SelectStmt) ? (const SelectStmt *)q : NULL;
	if (!sel || sel->intoClause) {
		plan_err(c, v, "sql: expected a query (SELECT, WITH, VALUES or TABLE), found %s",
			 sel ? "SELECT INTO" : arena_printf(c->a, "'%s'", stmt_keyword(q)));
		sql_tree_free(&t);
		return false;
	}
	sql_tree_free(&t);
	return true;
}

bool
plan_read_stmt(struct plan_bctx *c, struct plan_step *s, const struct doc_node *v,
	       const char *label, char **out)
{
	struct sql_tree t;
	const Node *q;
	const char *why;
	char *sql = plan_get_stmt(c, v, label, &t, &q);

	if (!sql)
		return false;
	*out = sql;
	why = stmt_refused(c, q);
	if (!why)
		why = concurrent_index(c, q, s);
	if (!why) {
		plan_sql_analyze(c->p->arena, q, &s->eff);
		touched_of(c, q, s);
		if (s->from_sql_file)
			s->sql_tokens = sql_token_stream(c->p->arena, sql);
	}
	sql_tree_free(&t);
	if (why) {
		plan_err(c, v, "%s: %s", label, why);
		return false;
	}
	return true;
}

/* What a batch keeps for itself (SQL_BATCH_SETTING): *what says which, the walk stops. */
static bool
find_batch_own(const Node *n, void *ctx)
{
	const char **what = ctx;

	if (sql_set_config_may_set(n, SQL_BATCH_SETTING)) {
		*what = "calls set_config with a name that may be " SQL_BATCH_SETTING;
		return false;
	}
	if (IsA(n, A_Const) && !((const A_Const *)n)->isnull &&
	    nodeTag(&((const A_Const *)n)->val) == T_String &&
	    !strcasecmp(((const A_Const *)n)->val.sval.sval, SQL_BATCH_SETTING)) {
		*what = "names the setting " SQL_BATCH_SETTING;
		return false;
	}
	return true;
}

bool
plan_read_update(struct plan_bctx *c, struct plan_step *s, const struct doc_node *v,
		 const char *label, char **out)
{
	struct sql_tree t;
	struct sql_msg m;
	const Node *stmt = NULL;
	const char *what = NULL;
	char *sql = plan_get_stmt(c, v, label, &t, &stmt);

	if (!sql)
		return false;
	*out = sql;
	if (stmt)
		(void)sql_walk(stmt, find_batch_own, &what);
	sql_tree_free(&t);
	if (what) {
		/* the executor's read-back would refuse every batch: say so now */
		plan_err(c, v,
			 "%s: the UPDATE %s, which its batches use to pass each batch's last key "
			 "from the keys to the UPDATE; a backfill may not",
			 label, what);
		return false;
	}
	if (!sql_split_update(c->p->arena, sql, &s->bf_table, &s->bf_set, &s->bf_where, &m)) {
		plan_sql_err(c, v, label, sql, &m);
		return false;
	}
	{
		const char *dot = strrchr(s->bf_table, '.');
		const char *rel = dot ? dot + 1 : s->bf_table;

		if (!strncasecmp(rel, "taskslaps_batch", 15)) {
			plan_err(c, v,
				 "%s: the table '%s' is named like the parts of its batches "
				 "(taskslaps_batch...), which would read the one for the other; "
				 "rename it, or backfill it with an sql step",
				 label, s->bf_table);
			return false;
		}
	}
	if (!plan_ident_ok(s->bf_table, true)) {
		plan_err(c, v,
			 "%s: expected a plain table name after UPDATE (letters, digits, _, "
			 "optionally schema.name), found '%s'",
			 label, s->bf_table);
		return false;
	}
	return true;
}
