/*
 * The SQL reader over libpg_query: parse, classify, and the checks of the
 * fragments an author writes (the walk is sql_walk.c). See sql.h. The
 * parser's tree is PostgreSQL's raw parse tree; the scanner's tokens still
 * come in libpg_query's protobuf form (pg_query_scan), for the two uses
 * below: a backfill's UPDATE taken apart and an `.sql` plan's token stream.
 */
#include "sql/sql_pg.h"

#include <pg_query/pg_query.pb-c.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/strbuf.h"

static void msg(struct sql_msg *m, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
msg(struct sql_msg *m, size_t off, const char *fmt, ...)
{
	va_list ap;

	if (!m)
		return;
	va_start(ap, fmt);
	vsnprintf(m->text, sizeof(m->text), fmt, ap);
	va_end(ap);
	m->off = off;
}

/* The byte offset of the 1-based character number pos in s (UTF-8). */
static size_t
char_to_byte(const char *s, int pos)
{
	size_t i = 0;
	int c = 1;

	if (pos <= 1)
		return 0;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80) {
			if (c == pos)
				return i;
			c++;
		}
	}
	return i;
}

int
sql_parse(struct sql_tree *out, const char *text, struct sql_msg *m)
{
	/*
	 * The tree lives in a memory context of its own (a child of the
	 * thread's top context), deleted by sql_tree_free; the error and the
	 * captured stderr are malloc'ed. The context stays the current one
	 * until the next call into libpg_query: each call makes its own
	 * context under the thread's top context and leaves the top one
	 * current when it ends, so trees may outlive one another in any order
	 * (libpg_query is built without assertions, whose check that the top
	 * context is current at each entry would object to a tree kept alive).
	 */
	MemoryContext ctx = pg_query_enter_memory_context();
	PgQueryInternalParsetreeAndError r = pg_query_raw_parse(text);

	free(r.stderr_buffer);
	out->ctx = NULL;
	out->stmts = NIL;
	if (r.error) {
		msg(m, char_to_byte(text, r.error->cursorpos), "%s", r.error->message);
		pg_query_free_error(r.error);
		pg_query_exit_memory_context(ctx);
		return -1;
	}
	if (strlen(text) >= SQL_DEPTH_CHECK_BYTES &&
	    !sql_depth_within((const Node *)r.tree, SQL_MAX_DEPTH)) {
		msg(m, 0,
		    "the statement nests deeper than %d levels (a chain of %d operators or "
		    "more): split it",
		    SQL_MAX_DEPTH, SQL_MAX_DEPTH);
		pg_query_exit_memory_context(ctx);
		return -1;
	}
	out->ctx = ctx;
	out->stmts = r.tree;
	return 0;
}

void
sql_tree_free(struct sql_tree *t)
{
	if (t && t->ctx) {
		pg_query_exit_memory_context(t->ctx);
		t->ctx = NULL;
		t->stmts = NIL;
	}
}

/* The first byte of text that is not blank or inside a comment, from i. */
static size_t
skip_blank(const char *s, size_t i)
{
	for (;;) {
		while (isspace((unsigned char)s[i]))
			i++;
		if (s[i] == '-' && s[i + 1] == '-') {
			/* PostgreSQL ends a -- comment at \n or \r */
			while (s[i] && s[i] != '\n' && s[i] != '\r')
				i++;
		} else if (s[i] == '/' && s[i + 1] == '*') {
			const char *e = strstr(s + i + 2, "*/");
			if (!e)
				return i;
			i = (size_t)(e - s) + 2;
		} else {
			return i;
		}
	}
}

/* The i-th RawStmt of a parsed text. */
static const RawStmt *
raw_stmt(const struct sql_tree *t, int i)
{
	return list_nth_node(RawStmt, t->stmts, i);
}

const Node *
sql_tree_one(const struct sql_tree *t, const char *text, struct sql_msg *m)
{
	const RawStmt *r;

	if (list_length(t->stmts) == 0) {
		msg(m, 0, "expected SQL, found nothing but blanks and comments");
		return NULL;
	}
	r = raw_stmt(t, 0);
	if (list_length(t->stmts) > 1) {
		size_t end = (size_t)r->stmt_location + (size_t)r->stmt_len;
		msg(m, end, "expected one statement, found ';' followed by more SQL");
		return NULL;
	}
	if (r->stmt_len) {
		/* one ';' may end the statement; another, even of an empty statement, may not */
		size_t end = (size_t)r->stmt_location + (size_t)r->stmt_len;
		if (text[end] == ';' && text[skip_blank(text, end + 1)] != '\0') {
			msg(m, end, "expected one statement, found ';' followed by more SQL");
			return NULL;
		}
	}
	return r->stmt;
}

const Node *
sql_parse_one(struct sql_tree *t, const char *text, struct sql_msg *m)
{
	const Node *n;

	if (sql_parse(t, text, m) < 0)
		return NULL;
	if (!(n = sql_tree_one(t, text, m)))
		sql_tree_free(t);
	return n;
}

const char *
sql_node_str(const Node *n)
{
	if (n && IsA(n, String))
		return strVal(n);
	return NULL;
}

/* --- volatility ----------------------------------------------------------- */

struct builtin_fn {
	const char *name;
	bool vol;
};

static const struct builtin_fn builtins[] = {
#include "sql/sql_funcs.inc"
};

static int
builtin_cmp(const void *k, const void *e)
{
	return strcmp((const char *)k, ((const struct builtin_fn *)e)->name);
}

static const struct builtin_fn *
builtin_find(const char *name)
{
	return bsearch(name, builtins, sizeof(builtins) / sizeof(*builtins), sizeof(*builtins),
		       builtin_cmp);
}

bool
sql_builtin_volatile(const char *name)
{
	const struct builtin_fn *b = builtin_find(name);

	return b && b->vol;
}

struct vol_ctx {
	enum sql_volatility worst;
	const char *fname;
	int loc;
};

static void
vol_note(struct vol_ctx *c, enum sql_volatility v, const char *name, int loc)
{
	if (v > c->worst) {
		c->worst = v;
		c->fname = name;
		c->loc = loc;
	}
}

static bool
vol_visit(const Node *n, void *ctx)
{
	struct vol_ctx *c = ctx;

	if (IsA(n, FuncCall)) {
		const FuncCall *f = (const FuncCall *)n;
		int nname = list_length(f->funcname);
		const char *schema = nname == 2 ? sql_node_str(linitial(f->funcname)) : NULL;
		const char *name = nname ? sql_node_str(llast(f->funcname)) : NULL;
		const struct builtin_fn *b = NULL;

		if (!name)
			return true;
		/*
		 * A built-in is known by its name, unqualified or in pg_catalog.
		 * The helpers of our own schema read the catalogs and change nothing.
		 */
		if (nname == 1 || (schema && !strcmp(schema, "pg_catalog")))
			b = builtin_find(name);
		if (schema && !strcmp(schema, "taskslaps"))
			return true;
		if (!b)
			vol_note(c, SQL_UNKNOWN_FUNCTION, name, f->location);
		else if (b->vol)
			vol_note(c, SQL_VOLATILE, name, f->location);
		if (c->worst == SQL_VOLATILE)
			return false;
	}
	/* a sequence's nextval through NEXT VALUE FOR does not exist in PostgreSQL; nothing else
	 * calls */
	return true;
}

enum sql_volatility
sql_volatility(const Node *expr, const char **fname, int *loc)
{
	struct vol_ctx c = { SQL_IMMUTABLE_OR_STABLE, NULL, -1 };

	(void)sql_walk(expr, vol_visit, &c);
	if (fname)
		*fname = c.fname;
	if (loc)
		*loc = c.loc;
	return c.worst;
}

/* --- the scanner, for the author's text of a parse tree's parts ----------- */

struct tokens {
	PgQuery__ScanResult *r;
};

static int
scan(struct tokens *tk, const char *text)
{
	PgQueryScanResult s = pg_query_scan(text);

	tk->r = NULL;
	if (!s.error)
		tk->r =
		    pg_query__scan_result__unpack(NULL, s.pbuf.len, (const uint8_t *)s.pbuf.data);
	pg_query_free_scan_result(s);
	return tk->r ? 0 : -1;
}

static bool
is_comment(const PgQuery__ScanToken *t)
{
	return t->token == PG_QUERY__TOKEN__SQL_COMMENT || t->token == PG_QUERY__TOKEN__C_COMMENT;
}

/*
 * Where the first token of TEXT that is not a comment starts, or -1 (none,
 * or the scanner refused the text).
 */
static long
first_token(const char *text)
{
	struct tokens tk;
	long at = -1;

	if (scan(&tk, text) < 0)
		return -1;
	for (size_t i = 0; i < tk.r->n_tokens && at < 0; i++)
		if (!is_comment(tk.r->tokens[i]))
			at = tk.r->tokens[i]->start;
	pg_query__scan_result__free_unpacked(tk.r, NULL);
	return at;
}

/* --- fragments -------------------------------------------------------------- */

/* "SELECT <frag>" parsed: the one target's value, or NULL with *m (offsets in frag). */
#define SELECT_PREFIX "SELECT "

static const Node *
one_value(struct sql_tree *t, const char *frag, const char *what, struct sql_msg *m)
{
	size_t plen = sizeof(SELECT_PREFIX) - 1, flen = strlen(frag);
	char *text = xmalloc(plen + flen + 1);
	const SelectStmt *sel;
	const RawStmt *raw;
	const ResTarget *rt;
	struct sql_msg pm;

	memcpy(text, SELECT_PREFIX, plen);
	memcpy(text + plen, frag, flen + 1);
	if (sql_parse(t, text, &pm) < 0) {
		msg(m, pm.off > plen ? pm.off - plen : 0, "%s", pm.text);
		free(text);
		return NULL;
	}
	free(text);
	if (skip_blank(frag, 0) == flen) {
		msg(m, 0, "expected %s, found nothing but blanks and comments", what);
		goto bad;
	}
	if (list_length(t->stmts) != 1) {
		const RawStmt *a = raw_stmt(t, 0);
		size_t end = (size_t)a->stmt_location + (size_t)a->stmt_len;
		msg(m, end > plen ? end - plen : 0, "expected %s, found ';' followed by more SQL",
		    what);
		goto bad;
	}
	raw = raw_stmt(t, 0);
	if (raw->stmt_len != 0) {
		/* the statement ends before the text does: a ';' */
		size_t end = (size_t)raw->stmt_len;
		msg(m, end > plen ? end - plen : 0, "expected %s, found ';'", what);
		goto bad;
	}
	if (!IsA(raw->stmt, SelectStmt))
		goto shape;
	sel = (const SelectStmt *)raw->stmt;
	if (list_length(sel->targetList) != 1 || sel->fromClause || sel->whereClause ||
	    sel->groupClause || sel->havingClause || sel->windowClause || sel->valuesLists ||
	    sel->sortClause || sel->limitCount || sel->limitOffset || sel->lockingClause ||
	    sel->withClause || sel->distinctClause || sel->intoClause || sel->op != SETOP_NONE)
		goto shape;
	if (!IsA(linitial(sel->targetList), ResTarget))
		goto shape;
	rt = linitial_node(ResTarget, sel->targetList);
	if (!sql_str_empty(rt->name) || rt->indirection || !rt->val)
		goto shape;
	/*
	 * The value starts at the fragment's first token: "SELECT ALL x" reads
	 * as "SELECT x" (ALL is the default quantifier and leaves no trace in the
	 * tree), but "ALL x" is no expression in a CHECK or a DEFAULT.
	 */
	if (rt->location < 0 || first_token(frag) != (long)rt->location - (long)plen) {
		msg(m, 0, "expected %s, found a word before it that only a SELECT list takes (ALL)",
		    what);
		goto bad;
	}
	/* `*` and `t.*` are target lists, not values */
	if (IsA(rt->val, ColumnRef)) {
		const ColumnRef *cr = (const ColumnRef *)rt->val;
		if (cr->fields && IsA(llast(cr->fields), A_Star))
			goto shape;
	}
	return rt->val;
shape:
	msg(m, 0, "expected %s alone, found more SQL around it (a list, a clause or a label)",
	    what);
bad:
	sql_tree_free(t);
	return NULL;
}

/* Turns a location in "SELECT <frag>" into an offset in frag. */
static size_t
frag_off(int loc)
{
	size_t plen = sizeof(SELECT_PREFIX) - 1;

	return loc > (int)plen ? (size_t)loc - plen : 0;
}

bool
sql_check_expr(const char *frag, bool no_volatile, struct sql_msg *m)
{
	struct sql_tree t;
	const Node *v = one_value(&t, frag, "one SQL expression", m);
	const char *fname;
	int loc;

	if (!v)
		return false;
	if (no_volatile && sql_volatility(v, &fname, &loc) == SQL_VOLATILE) {
		msg(m, frag_off(loc),
		    "expected a check without side effects, found a call of the volatile function "
		    "%s()",
		    fname);
		sql_tree_free(&t);
		return false;
	}
	sql_tree_free(&t);
	return true;
}

bool
sql_check_stmt(const char *frag, struct sql_tree *t, const Node **stmt, size_t *len,
	       struct sql_msg *m)
{
	const Node *n;
	const RawStmt *raw;
	size_t end;

	if (sql_parse(t, frag, m) < 0)
		return false;
	n = sql_tree_one(t, frag, m);
	if (!n) {
		sql_tree_free(t);
		return false;
	}
	raw = raw_stmt(t, 0);
	end = raw->stmt_len ? (size_t)raw->stmt_location + (size_t)raw->stmt_len : strlen(frag);
	while (end > 0 && isspace((unsigned char)frag[end - 1]))
		end--;
	if (stmt)
		*stmt = n;
	if (len)
		*len = end;
	return true;
}

static char *
copy_trim(struct arena *a, const char *s, size_t from, size_t to)
{
	while (from < to && isspace((unsigned char)s[from]))
		from++;
	while (to > from && isspace((unsigned char)s[to - 1]))
		to--;
	return arena_strndup(a, s + from, to - from);
}

bool
sql_split_update(struct arena *a, const char *sql, char **table, char **set, char **where,
		 struct sql_msg *m)
{
	struct sql_tree t;
	struct tokens tk = { 0 };
	const Node *n;
	const UpdateStmt *u;
	const RangeVar *rv;
	size_t set_end = 0, where_at = 0, last_end = 0, set_at = 0;
	int depth = 0;
	bool ok = false, after_dot = false;

	if (!(n = sql_parse_one(&t, sql, m)))
		goto out;
	if (!IsA(n, UpdateStmt)) {
		msg(m, (size_t)raw_stmt(&t, 0)->stmt_location + skip_blank(sql, 0),
		    "expected a single UPDATE statement");
		goto out;
	}
	u = (const UpdateStmt *)n;
	rv = u->relation;
	if (u->withClause) {
		msg(m, skip_blank(sql, 0), "expected a single UPDATE statement (without WITH)");
		goto out;
	}
	if (u->fromClause || u->returningList) {
		msg(m, 0,
		    "expected UPDATE table SET ... [WHERE ...]; found a clause a batched backfill "
		    "cannot keep (FROM, RETURNING)");
		goto locate;
	}
	if (rv->alias || !rv->inh || !sql_str_empty(rv->catalogname)) {
		msg(m, (size_t)rv->location,
		    "expected SET after the table name (a backfill updates its table without an "
		    "alias or ONLY)");
		goto out;
	}
	if (u->whereClause && IsA(u->whereClause, CurrentOfExpr)) {
		msg(m, 0, "expected a condition after WHERE, found CURRENT OF");
		goto out;
	}
	*table = !sql_str_empty(rv->schemaname)
		     ? arena_printf(a, "%s.%s", rv->schemaname, rv->relname)
		     : arena_strdup(a, rv->relname);
	if (scan(&tk, sql) < 0) {
		msg(m, 0, "the SQL scanner could not read the statement");
		goto out;
	}
	for (size_t i = 0; i < tk.r->n_tokens; i++) {
		const PgQuery__ScanToken *k = tk.r->tokens[i];
		/*
		 * The table's own name (SET is not reserved: a table may be
		 * called set), and a keyword after a '.' (s.set, x.where), are
		 * names, not clauses
		 */
		bool name = after_dot || k->start == rv->location;

		if (is_comment(k))
			continue;
		after_dot = k->token == PG_QUERY__TOKEN__ASCII_46;
		if (k->token == PG_QUERY__TOKEN__ASCII_59)
			break; /* the trailing ; */
		if (k->token == PG_QUERY__TOKEN__ASCII_40)
			depth++;
		else if (k->token == PG_QUERY__TOKEN__ASCII_41)
			depth--;
		else if (depth == 0 && !name && !set_at && k->token == PG_QUERY__TOKEN__SET)
			set_at = (size_t)k->end;
		else if (depth == 0 && !name && set_at && !where_at &&
			 k->token == PG_QUERY__TOKEN__WHERE) {
			where_at = (size_t)k->end;
			set_end = last_end;
		}
		last_end = (size_t)k->end;
	}
	if (!set_at) {
		msg(m, 0, "expected SET after the table name");
		goto out;
	}
	if ((where_at != 0) != (u->whereClause != NULL)) {
		/* the tokens and the tree disagree: never split a text we misread */
		msg(m, where_at ? where_at : 0,
		    "expected UPDATE table SET ... [WHERE ...]; the SET list and the WHERE "
		    "condition could not be told apart");
		goto out;
	}
	if (!where_at)
		set_end = last_end;
	*set = copy_trim(a, sql, set_at, set_end);
	*where = where_at ? copy_trim(a, sql, where_at, last_end) : NULL;
	ok = true;
	goto out;
locate:
	/* point at the clause: the first FROM or RETURNING at depth 0 */
	if (scan(&tk, sql) == 0) {
		for (size_t i = 0; i < tk.r->n_tokens; i++) {
			const PgQuery__ScanToken *k = tk.r->tokens[i];
			if (k->token == PG_QUERY__TOKEN__ASCII_40)
				depth++;
			else if (k->token == PG_QUERY__TOKEN__ASCII_41)
				depth--;
			else if (depth == 0 && (k->token == PG_QUERY__TOKEN__FROM ||
						k->token == PG_QUERY__TOKEN__RETURNING)) {
				m->off = (size_t)k->start;
				break;
			}
		}
	}
out:
	if (tk.r)
		pg_query__scan_result__free_unpacked(tk.r, NULL);
	sql_tree_free(&t);
	return ok;
}

bool
sql_is_batch_update(const char *sql, const char *table, struct sql_msg *m)
{
	struct sql_tree t;
	const Node *n;
	const UpdateStmt *u;
	bool ok;

	n = sql_parse_one(&t, sql, m);
	u = n && IsA(n, UpdateStmt) ? (const UpdateStmt *)n : NULL;
	ok = u && sql_rangevar_is(u->relation, table) && u->whereClause && !u->fromClause &&
	     !u->returningList && !u->withClause && !u->relation->alias;
	if (n && !ok)
		msg(m, 0, "the batch statement does not read back as one UPDATE of %s with a WHERE",
		    table);
	sql_tree_free(&t);
	return ok;
}

bool
sql_is_bool_cast(const Node *n)
{
	const TypeCast *c = n && IsA(n, TypeCast) ? (const TypeCast *)n : NULL;
	const char *type;

	if (!c || !c->typeName || list_length(c->typeName->names) < 1)
		return false;
	type = sql_node_str(llast(c->typeName->names));
	return type && !strcmp(type, "bool");
}

bool
sql_is_checks_guard(const char *sql, size_t n, struct sql_msg *m)
{
	struct sql_tree t;
	const Node *node, *cond = NULL;
	const SelectStmt *sel;
	const CaseExpr *ce = NULL;
	bool ok = false;

	node = sql_parse_one(&t, sql, m);
	sel = node && IsA(node, SelectStmt) ? (const SelectStmt *)node : NULL;
	if (sel && !sel->fromClause && !sel->whereClause && !sel->withClause &&
	    !sel->lockingClause && !sel->intoClause && !sel->groupClause && !sel->havingClause &&
	    !sel->sortClause && !sel->limitCount && !sel->limitOffset && !sel->valuesLists &&
	    !sel->distinctClause && sel->op == SETOP_NONE && list_length(sel->targetList) == 1) {
		const ResTarget *rt = linitial_node(ResTarget, sel->targetList);
		if (rt->val && IsA(rt->val, CaseExpr))
			ce = (const CaseExpr *)rt->val;
	}
	if (ce && !ce->arg && ce->defresult && list_length(ce->args) == 1 &&
	    IsA(linitial(ce->args), CaseWhen))
		cond = (const Node *)linitial_node(CaseWhen, ce->args)->expr;
	if (cond && n == 1) {
		ok = sql_is_bool_cast(cond);
	} else if (cond && IsA(cond, BoolExpr) && ((const BoolExpr *)cond)->boolop == AND_EXPR &&
		   (size_t)list_length(((const BoolExpr *)cond)->args) == n) {
		const List *args = ((const BoolExpr *)cond)->args;
		ok = true;
		for (int i = 0; ok && i < list_length(args); i++)
			ok = sql_is_bool_cast(list_nth(args, i));
	}
	if (node && !ok)
		msg(m, 0,
		    "the guard over the checks does not read back as one CASE over %zu checks", n);
	sql_tree_free(&t);
	return ok;
}

bool
sql_is_key_query(const char *sql, const char *table, struct sql_msg *m)
{
	struct sql_tree t;
	const Node *n;
	const SelectStmt *sel;
	bool ok;

	n = sql_parse_one(&t, sql, m);
	sel = n && IsA(n, SelectStmt) ? (const SelectStmt *)n : NULL;
	ok = sel && list_length(sel->fromClause) == 1 && IsA(linitial(sel->fromClause), RangeVar) &&
	     sql_rangevar_is(linitial_node(RangeVar, sel->fromClause), table) && !sel->withClause &&
	     !sel->lockingClause && !sel->intoClause && sel->op == SETOP_NONE;
	if (n && !ok)
		msg(m, 0, "the key query does not read back as one SELECT from %s", table);
	sql_tree_free(&t);
	return ok;
}

bool
sql_check_type(const char *frag, bool *serial, struct sql_msg *m)
{
	static const char *const serials[] = { "serial",  "bigserial", "smallserial",
					       "serial2", "serial4",   "serial8" };
	size_t plen = sizeof("SELECT NULL::") - 1, flen = strlen(frag);
	char *text = xmalloc(plen + flen + 1);
	struct sql_tree t;
	struct sql_msg pm;
	const SelectStmt *sel;
	const ResTarget *rt;
	const TypeCast *tc;
	const TypeName *tn;
	const char *last;
	bool ok = false;

	*serial = false;
	memcpy(text, "SELECT NULL::", plen);
	memcpy(text + plen, frag, flen + 1);
	if (sql_parse(&t, text, &pm) < 0) {
		msg(m, pm.off > plen ? pm.off - plen : 0, "%s", pm.text);
		free(text);
		return false;
	}
	free(text);
	if (list_length(t.stmts) != 1 || raw_stmt(&t, 0)->stmt_len != 0) {
		size_t end = t.stmts ? (size_t)raw_stmt(&t, 0)->stmt_len : 0;
		msg(m, end > plen ? end - plen : 0, "expected a type name alone, found ';'");
		goto out;
	}
	if (!IsA(raw_stmt(&t, 0)->stmt, SelectStmt))
		goto shape;
	sel = (const SelectStmt *)raw_stmt(&t, 0)->stmt;
	if (list_length(sel->targetList) != 1 || sel->fromClause || sel->whereClause ||
	    sel->withClause || sel->groupClause || sel->havingClause || sel->sortClause ||
	    sel->limitCount || sel->lockingClause || sel->op != SETOP_NONE)
		goto shape;
	if (!IsA(linitial(sel->targetList), ResTarget))
		goto shape;
	rt = linitial_node(ResTarget, sel->targetList);
	if (!sql_str_empty(rt->name) || !rt->val || !IsA(rt->val, TypeCast))
		goto shape;
	tc = (const TypeCast *)rt->val;
	/* NULL::a::b is two casts: the type is only the one right after NULL */
	if (!tc->arg || !IsA(tc->arg, A_Const) || !((const A_Const *)tc->arg)->isnull)
		goto shape;
	tn = tc->typeName;
	if (!tn || tn->setof || tn->pct_type || !tn->names)
		goto shape;
	last = sql_node_str(llast(tn->names));
	for (size_t i = 0;
	     last && list_length(tn->names) == 1 && i < sizeof(serials) / sizeof(*serials); i++)
		if (strcasecmp(last, serials[i]) == 0)
			*serial = true;
	ok = true;
	goto out;
shape:
	msg(m, 0,
	    "expected a type name alone, found more SQL after it (a column clause such as "
	    "UNIQUE, PRIMARY KEY, DEFAULT, GENERATED or a COLLATE, is not part of a type)");
out:
	sql_tree_free(&t);
	return ok;
}

bool
sql_check_default(const char *frag, enum sql_volatility *vol, char *fname, size_t fname_len,
		  struct sql_msg *m)
{
	struct sql_tree t;
	const Node *v = one_value(&t, frag, "one SQL expression", m);
	const char *f = NULL;

	if (!v)
		return false;
	*vol = sql_volatility(v, &f, NULL);
	snprintf(fname, fname_len, "%s", f ? f : "");
	sql_tree_free(&t);
	return true;
}

bool
sql_string_looks_evaluated(const char *s)
{
	static const char *const specials[] = { "now", "today", "tomorrow", "yesterday" };
	struct sql_tree t;
	const Node *v;
	size_t b = 0, e = strlen(s);
	bool yes;

	while (b < e && isspace((unsigned char)s[b]))
		b++;
	while (e > b && isspace((unsigned char)s[e - 1]))
		e--;
	for (size_t i = 0; i < sizeof(specials) / sizeof(*specials); i++)
		if (e - b == strlen(specials[i]) && strncasecmp(s + b, specials[i], e - b) == 0)
			return true;
	if (!memchr(s, '(', strlen(s)) && strncasecmp(s + b, "current_", 8) != 0 &&
	    strncasecmp(s + b, "local", 5) != 0)
		return false;
	if (!(v = one_value(&t, s, "an expression", NULL)))
		return false;
	yes = IsA(v, FuncCall) || IsA(v, SQLValueFunction);
	sql_tree_free(&t);
	return yes;
}

char *
sql_token_stream(struct arena *a, const char *sql)
{
	struct tokens tk;
	struct strbuf sb = STRBUF_INIT;
	char *out;

	if (scan(&tk, sql) < 0)
		return NULL;
	for (size_t i = 0; i < tk.r->n_tokens; i++) {
		const PgQuery__ScanToken *k = tk.r->tokens[i];
		size_t s = (size_t)k->start, e = (size_t)k->end;
		bool fold = k->keyword_kind != PG_QUERY__KEYWORD_KIND__NO_KEYWORD ||
			    (k->token == PG_QUERY__TOKEN__IDENT && sql[s] != '"');

		if (is_comment(k))
			continue;
		if (k->token == PG_QUERY__TOKEN__ASCII_59 && i + 1 == tk.r->n_tokens)
			break; /* the statement's own trailing ; */
		if (sb.len)
			sb_putc(&sb, ' ');
		for (size_t j = s; j < e; j++)
			sb_putc(&sb, fold ? (char)tolower((unsigned char)sql[j]) : sql[j]);
	}
	pg_query__scan_result__free_unpacked(tk.r, NULL);
	out = arena_strdup(a, sb_str(&sb));
	sb_free(&sb);
	return out;
}

/* --- names ---------------------------------------------------------------- */

bool
sql_rangevar_is(const RangeVar *rv, const char *ident)
{
	const char *dot = strchr(ident, '.');

	if (!rv || !rv->relname || !sql_str_empty(rv->catalogname))
		return false;
	if (!dot)
		return sql_str_empty(rv->schemaname) && strcmp(rv->relname, ident) == 0;
	return rv->schemaname && strlen(rv->schemaname) == (size_t)(dot - ident) &&
	       strncmp(rv->schemaname, ident, (size_t)(dot - ident)) == 0 &&
	       strcmp(rv->relname, dot + 1) == 0;
}

char *
sql_quote_ident(struct arena *a, const char *ident)
{
	struct strbuf sb = STRBUF_INIT;
	char *out;

	sb_putc(&sb, '"');
	for (const char *p = ident; *p; p++) {
		if (*p == '.') {
			sb_puts(&sb, "\".\"");
		} else {
			if (*p == '"')
				sb_putc(&sb, '"');
			sb_putc(&sb, *p);
		}
	}
	sb_putc(&sb, '"');
	out = arena_strdup(a, sb_str(&sb));
	sb_free(&sb);
	return out;
}

char *
sql_quote_literal(struct arena *a, const char *text)
{
	struct strbuf sb = STRBUF_INIT;
	bool bs = strchr(text, '\\') != NULL;
	char *out;

	if (bs)
		sb_putc(&sb, 'E');
	sb_putc(&sb, '\'');
	for (const char *p = text; *p; p++) {
		if (*p == '\'' || (bs && *p == '\\'))
			sb_putc(&sb, *p);
		sb_putc(&sb, *p);
	}
	sb_putc(&sb, '\'');
	out = arena_strdup(a, sb_str(&sb));
	sb_free(&sb);
	return out;
}
