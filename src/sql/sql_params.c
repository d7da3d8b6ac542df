/*
 * The names in the executor's computed checks as parameters (see sql.h,
 * sql_lift_helper_args): the checks of two add_column steps differ only in
 * the table and column they name, so with the names lifted out they are one
 * text, which a connection parses and plans once and then executes with the
 * names as values.
 */
#include "sql/sql_pg.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql/sql.h"
#include "util/alloc.h"
#include "util/strbuf.h"

/* more arguments than any check of the planner has: then nothing is lifted */
#define LIFT_MAX 64

struct lift {
	int loc[LIFT_MAX];
	const char *val[LIFT_MAX];
	int n;
	bool over;
};

/*
 * The helpers of sql/002_functions.sql whose every string parameter is
 * text (the others are boolean): a literal given to one of them reads as
 * text, and so does $k::pg_catalog.text. A helper added with a parameter of
 * another type must not be listed here as it is.
 */
static const char *const text_helpers[] = {
	"lookup_relation", "relation_kind", "table_exists",	 "view_exists",
	"column_is",	   "column_exists", "column_not_null",	 "index_exists",
	"index_valid",	   "constraint_is", "constraint_exists", "constraint_valid",
};

/* A call of taskslaps.<helper>(...) of the list above, by its plain name. */
static bool
is_helper_call(const FuncCall *fc)
{
	const char *schema, *name;

	if (list_length(fc->funcname) != 2 || fc->agg_order || fc->agg_filter || fc->over ||
	    fc->agg_star || fc->agg_distinct || fc->func_variadic)
		return false;
	schema = sql_node_str(linitial(fc->funcname));
	name = sql_node_str(lsecond(fc->funcname));
	if (!schema || !name || strcmp(schema, "taskslaps") != 0)
		return false;
	for (size_t i = 0; i < sizeof(text_helpers) / sizeof(text_helpers[0]); i++)
		if (strcmp(name, text_helpers[i]) == 0)
			return true;
	return false;
}

static bool
collect(const Node *n, void *ctx)
{
	struct lift *l = ctx;
	const List *args;

	if (!IsA(n, FuncCall) || !is_helper_call((const FuncCall *)n))
		return true;
	args = ((const FuncCall *)n)->args;
	for (int i = 0; i < list_length(args); i++) {
		const Node *a = list_nth(args, i);
		const A_Const *c = IsA(a, A_Const) ? (const A_Const *)a : NULL;

		if (!c || c->isnull || nodeTag(&c->val) != T_String)
			continue;
		if (l->n == LIFT_MAX) {
			l->over = true;
			return false;
		}
		l->loc[l->n] = c->location;
		l->val[l->n] = c->val.sval.sval;
		l->n++;
	}
	return true;
}

static int
by_loc(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/*
 * The end of the plain literal '...' at sql + loc holding exactly val (no
 * quote, no backslash, no continuation: what the server reads whatever its
 * standard_conforming_strings), or -1.
 */
static int
plain_literal_end(const char *sql, int loc, const char *val)
{
	size_t len = strlen(val);

	if (loc < 0 || sql[loc] != '\'' || strpbrk(val, "'\\"))
		return -1;
	if (strncmp(sql + loc + 1, val, len) != 0 || sql[loc + 1 + len] != '\'')
		return -1;
	if (sql[loc + 2 + len] == '\'')
		return -1;
	return loc + 2 + (int)len;
}

int
sql_lift_helper_args(const char *sql, int first, char **out, char ***values)
{
	struct sql_tree t;
	struct sql_msg m;
	struct lift l = { .n = 0 };
	struct strbuf sb = STRBUF_INIT;
	const Node *stmt;
	int order[LIFT_MAX], at = 0, rc = 0;
	const char *val[LIFT_MAX];

	*out = NULL;
	*values = NULL;
	if (!(stmt = sql_parse_one(&t, sql, &m)))
		return -1;
	(void)sql_walk(stmt, collect, &l);
	if (l.over || l.n == 0)
		goto out;
	/* in the text's order (the walk's is the tree's) */
	for (int i = 0; i < l.n; i++)
		order[i] = l.loc[i];
	qsort(order, (size_t)l.n, sizeof(int), by_loc);
	for (int i = 0; i < l.n; i++)
		for (int j = 0; j < l.n; j++)
			if (l.loc[j] == order[i])
				val[i] = l.val[j];
	for (int i = 0; i < l.n; i++) {
		int end = plain_literal_end(sql, order[i], val[i]);

		if (end < 0 || (i && order[i] == order[i - 1])) {
			sb_free(&sb);
			goto out;
		}
		sb_add(&sb, sql + at, (size_t)(order[i] - at));
		/* qualified: a type named text on the caller's search_path is not it */
		sb_printf(&sb, "$%d::pg_catalog.text", first + i);
		at = end;
	}
	sb_puts(&sb, sql + at);
	/* what is sent is read back: one statement, as the text it came from */
	{
		struct sql_tree lt;

		stmt = sql_parse_one(&lt, sb_str(&sb), &m);
		sql_tree_free(&lt);
		if (!stmt) {
			sb_free(&sb);
			goto out;
		}
	}
	*out = sb_detach(&sb);
	*values = xcalloc((size_t)l.n, sizeof(char *));
	for (int i = 0; i < l.n; i++)
		(*values)[i] = xstrdup(val[i]);
	rc = l.n;
out:
	sql_tree_free(&t);
	return rc;
}

void
sql_lift_free(char **values, int n)
{
	for (int i = 0; i < n; i++)
		free(values[i]);
	free(values);
}

bool
sql_set_config_may_set(const Node *n, const char *setting)
{
	const FuncCall *f = n && IsA(n, FuncCall) ? (const FuncCall *)n : NULL;
	const char *fn = f ? sql_node_str(llast(f->funcname)) : NULL;
	const Node *a;
	const A_Const *c;

	if (!fn || strcmp(fn, "set_config") != 0)
		return false;
	a = list_length(f->args) ? linitial(f->args) : NULL;
	c = a && IsA(a, A_Const) ? (const A_Const *)a : NULL;
	/* only a name written out, and another one, is known not to be it */
	if (!c || c->isnull || nodeTag(&c->val) != T_String)
		return true;
	return strcasecmp(c->val.sval.sval, setting) == 0;
}
