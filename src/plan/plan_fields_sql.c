/*
 * The fields that hold a whole statement: create_view's query, an sql step's
 * statement (and what it does, read from its tree), backfill_sql's UPDATE.
 */
#include <stdio.h>
#include <string.h>

#include "plan/doc.h"
#include "plan/plan.h"
#include "plan/plan_int.h"
#include "sql/sql.h"
#include "util/alloc.h"

/* A short name of a statement's kind, for messages: "VACUUM", "CREATE DATABASE". */
static const char *
stmt_keyword(const PgQuery__Node *q)
{
	switch (q->node_case) {
	case PG_QUERY__NODE__NODE_VACUUM_STMT:
		return q->vacuum_stmt->is_vacuumcmd ? "VACUUM" : "ANALYZE";
	case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT: return "ALTER SYSTEM";
	case PG_QUERY__NODE__NODE_CREATEDB_STMT: return "CREATE DATABASE";
	case PG_QUERY__NODE__NODE_DROPDB_STMT: return "DROP DATABASE";
	case PG_QUERY__NODE__NODE_ALTER_DATABASE_STMT: return "ALTER DATABASE";
	case PG_QUERY__NODE__NODE_CREATE_TABLE_SPACE_STMT: return "CREATE TABLESPACE";
	case PG_QUERY__NODE__NODE_DROP_TABLE_SPACE_STMT: return "DROP TABLESPACE";
	case PG_QUERY__NODE__NODE_INSERT_STMT: return "INSERT";
	case PG_QUERY__NODE__NODE_UPDATE_STMT: return "UPDATE";
	case PG_QUERY__NODE__NODE_DELETE_STMT: return "DELETE";
	case PG_QUERY__NODE__NODE_CREATE_STMT: return "CREATE TABLE";
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT: return "ALTER TABLE";
	case PG_QUERY__NODE__NODE_DROP_STMT: return "DROP";
	case PG_QUERY__NODE__NODE_INDEX_STMT: return "CREATE INDEX";
	default: return "a statement that is not a query";
	}
}

/* What the transaction statement is called in SQL. */
static const char *
tx_keyword(const PgQuery__TransactionStmt *t)
{
	switch (t->kind) {
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN: return "BEGIN";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START: return "START TRANSACTION";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT: return "COMMIT";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK: return "ROLLBACK";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT: return "SAVEPOINT";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE: return "RELEASE";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO: return "ROLLBACK TO";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE: return "PREPARE TRANSACTION";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED: return "COMMIT PREPARED";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED:
		return "ROLLBACK PREPARED";
	default: return "transaction control";
	}
}

static bool
is_set_config(const PgQuery__Node *n, void *ctx)
{
	bool *found = ctx;

	if (n->node_case == PG_QUERY__NODE__NODE_FUNC_CALL && n->func_call->n_funcname &&
	    sql_node_str(n->func_call->funcname[n->func_call->n_funcname - 1]) &&
	    !strcmp(sql_node_str(n->func_call->funcname[n->func_call->n_funcname - 1]),
		    "set_config")) {
		*found = true;
		return false;
	}
	return true;
}

/* Whether the statement calls set_config anywhere (a function body is not looked into). */
static bool
calls_set_config(const PgQuery__Node *q)
{
	bool found = false;

	(void)sql_walk(&q->base, is_set_config, &found);
	return found;
}

/* Why an `sql` step's statement cannot run as a step, or NULL. */
static const char *
stmt_refused(struct plan_bctx *c, const PgQuery__Node *q)
{
	switch (q->node_case) {
	case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
		return arena_printf(c->a,
				    "expected a statement, found transaction control ('%s'): the "
				    "executor runs each step in its own transaction",
				    tx_keyword(q->transaction_stmt));
	case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT:
	case PG_QUERY__NODE__NODE_CREATEDB_STMT:
	case PG_QUERY__NODE__NODE_DROPDB_STMT:
	case PG_QUERY__NODE__NODE_CREATE_TABLE_SPACE_STMT:
	case PG_QUERY__NODE__NODE_DROP_TABLE_SPACE_STMT:
		return arena_printf(c->a,
				    "expected a statement on this database's objects, found '%s', "
				    "which changes the server or another database",
				    stmt_keyword(q));
	case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
	case PG_QUERY__NODE__NODE_DISCARD_STMT:
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
collect_rangevar(const PgQuery__RangeVar *rv, void *ctx)
{
	void **a = ctx;
	struct plan_bctx *c = a[0];
	struct plan_step *s = a[1];
	char *name, **nv;

	if (!rv->relname || (rv->catalogname && rv->catalogname[0]))
		return true;
	name = rv->schemaname && rv->schemaname[0]
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
touched_of(struct plan_bctx *c, const PgQuery__Node *q, struct plan_step *s)
{
	void *ctx[2] = { c, s };

	(void)sql_walk_rangevars(&q->base, collect_rangevar, ctx);
}

/*
 * The index a CREATE or DROP INDEX CONCURRENTLY names, for the checks that let
 * a retry after a crash find what the killed run left (a CONCURRENTLY
 * statement is not rolled back). Returns why the statement is refused, or NULL.
 */
static const char *
concurrent_index(struct plan_bctx *c, const PgQuery__Node *q, struct plan_step *s)
{
	if (q->node_case == PG_QUERY__NODE__NODE_INDEX_STMT && q->index_stmt->concurrent) {
		const PgQuery__IndexStmt *x = q->index_stmt;
		const char *schema = x->relation ? x->relation->schemaname : NULL;

		if (!x->idxname || !x->idxname[0])
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
	if (q->node_case == PG_QUERY__NODE__NODE_DROP_STMT && q->drop_stmt->concurrent &&
	    q->drop_stmt->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_INDEX &&
	    q->drop_stmt->n_objects == 1 &&
	    q->drop_stmt->objects[0]->node_case == PG_QUERY__NODE__NODE_LIST) {
		const PgQuery__List *l = q->drop_stmt->objects[0]->list;
		const char *a = l->n_items > 0 ? sql_node_str(l->items[0]) : NULL;
		const char *b = l->n_items > 1 ? sql_node_str(l->items[1]) : NULL;
		char *name = l->n_items == 2 && a && b ? arena_printf(c->p->arena, "%s.%s", a, b)
			     : l->n_items == 1 && a    ? arena_strdup(c->p->arena, a)
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
	const PgQuery__Node *q;
	const PgQuery__SelectStmt *sel;
	char *sql = plan_get_stmt(c, v, label, &t, &q);

	if (!sql)
		return false;
	*out = sql;
	sel = q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT ? q->select_stmt : NULL;
	if (!sel || sel->into_clause) {
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
	const PgQuery__Node *q;
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

bool
plan_read_update(struct plan_bctx *c, struct plan_step *s, const struct doc_node *v,
		 const char *label, char **out)
{
	struct sql_tree t;
	struct sql_msg m;
	char *sql = plan_get_stmt(c, v, label, &t, NULL);

	if (!sql)
		return false;
	*out = sql;
	sql_tree_free(&t);
	if (!sql_split_update(c->p->arena, sql, &s->bf_table, &s->bf_set, &s->bf_where, &m)) {
		plan_sql_err(c, v, label, sql, &m);
		return false;
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
