/*
 * The walk of a parse tree: every node below a node, by a table of where
 * each node type keeps its children (sql_nodes.inc, generated from the
 * server headers by scripts/gen-pg-nodes.py). See sql.h.
 *
 * PostgreSQL's own raw_expression_tree_walker is not used: it knows the
 * nodes of expressions and of SELECT, INSERT, UPDATE, DELETE and MERGE only,
 * and raises an ERROR (with nothing here to catch it: a crash) at any other
 * type, while an `sql` step may hold any statement. The table knows every
 * node type the headers define; a type it has no row for has no children
 * (a value node, a list of integers or OIDs), so no tree can stop the walk.
 */
#include "sql/sql_pg.h"

#include <stddef.h>

/* What a field holds: a Node or Expr, a List of nodes, a node of a type of its own. */
enum sql_child_kind { SQL_CHILD_NODE, SQL_CHILD_LIST, SQL_CHILD_TYPED };

struct sql_child {
	size_t off;
	enum sql_child_kind kind;
};

struct sql_node_desc {
	const struct sql_child *v;
	size_t n;
};

#define SQL_CHILDREN(type, ...) static const struct sql_child children_##type[] = { __VA_ARGS__ };
#define SQL_STMT_NAME(type, name)
#include "sql/sql_nodes.inc"
#undef SQL_CHILDREN
#undef SQL_STMT_NAME

#define SQL_CHILDREN(type, ...)                                                                    \
	[T_##type] = { children_##type, sizeof(children_##type) / sizeof(children_##type[0]) },
#define SQL_STMT_NAME(type, name)
static const struct sql_node_desc descs[] = {
#include "sql/sql_nodes.inc"
};
#undef SQL_CHILDREN
#undef SQL_STMT_NAME

#define SQL_CHILDREN(type, ...)
#define SQL_STMT_NAME(type, name) [T_##type] = name,
static const char *const stmt_names[] = {
#include "sql/sql_nodes.inc"
};
#undef SQL_CHILDREN
#undef SQL_STMT_NAME

struct walk {
	sql_visit_fn node_fn;
	sql_rangevar_fn rv_fn;
	void *ctx;
};

static bool walk_node(const Node *n, bool report, const struct walk *w);

/* The nodes of a List (a list of integers or OIDs holds none). */
static bool
walk_list(const List *l, const struct walk *w)
{
	if (!l || !IsA(l, List))
		return true;
	for (int i = 0; i < list_length(l); i++)
		if (!walk_node(list_nth(l, i), true, w))
			return false;
	return true;
}

/* n, then its children; report: n is held as a Node or in a List (fn sees it). */
static bool
walk_node(const Node *n, bool report, const struct walk *w)
{
	const struct sql_node_desc *d;

	if (!n)
		return true;
	if (report && w->node_fn && !w->node_fn(n, w->ctx))
		return false;
	if (w->rv_fn && IsA(n, RangeVar) && !w->rv_fn((const RangeVar *)n, w->ctx))
		return false;
	if (IsA(n, List))
		return walk_list((const List *)n, w);
	if ((size_t)nodeTag(n) >= sizeof(descs) / sizeof(*descs))
		return true;
	d = &descs[nodeTag(n)];
	for (size_t i = 0; i < d->n; i++) {
		const void *c = *(const void *const *)((const char *)n + d->v[i].off);
		bool ok = true;

		switch (d->v[i].kind) {
		case SQL_CHILD_NODE: ok = walk_node(c, true, w); break;
		case SQL_CHILD_LIST: ok = walk_list(c, w); break;
		case SQL_CHILD_TYPED: ok = walk_node(c, false, w); break;
		}
		if (!ok)
			return false;
	}
	return true;
}

bool
sql_walk(const Node *n, sql_visit_fn fn, void *ctx)
{
	struct walk w = { .node_fn = fn, .ctx = ctx };

	return walk_node(n, true, &w);
}

bool
sql_walk_rangevars(const Node *n, sql_rangevar_fn fn, void *ctx)
{
	struct walk w = { .rv_fn = fn, .ctx = ctx };

	return walk_node(n, true, &w);
}

static bool within(const Node *n, int left);

static bool
within_list(const List *l, int left)
{
	if (!l || !IsA(l, List))
		return true;
	for (int i = 0; i < list_length(l); i++)
		if (!within(list_nth(l, i), left))
			return false;
	return true;
}

/* Whether n nests left levels at most (the recursion goes no deeper than left). */
static bool
within(const Node *n, int left)
{
	const struct sql_node_desc *d;

	if (!n)
		return true;
	if (left <= 0)
		return false;
	if (IsA(n, List))
		return within_list((const List *)n, left - 1);
	if ((size_t)nodeTag(n) >= sizeof(descs) / sizeof(*descs))
		return true;
	d = &descs[nodeTag(n)];
	for (size_t i = 0; i < d->n; i++) {
		const void *c = *(const void *const *)((const char *)n + d->v[i].off);

		if (!(d->v[i].kind == SQL_CHILD_LIST ? within_list(c, left - 1)
						     : within(c, left - 1)))
			return false;
	}
	return true;
}

bool
sql_depth_within(const Node *n, int max)
{
	return within(n, max);
}

const char *
sql_stmt_name(const Node *n)
{
	size_t tag = n ? (size_t)nodeTag(n) : 0;

	if (tag < sizeof(stmt_names) / sizeof(*stmt_names) && stmt_names[tag])
		return stmt_names[tag];
	return "?";
}
