/*
 * From a document tree to a plan: every field checked for presence, kind and
 * form, every error reported with the line and column of the value at fault.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan/doc.h"
#include "plan/plan.h"
#include "plan/plan_dir.h"
#include "plan/plan_int.h"
#include "sql/sql.h"
#include "util/alloc.h"
#include "util/canon.h"
#include "util/sha256.h"
#include "util/strbuf.h"

enum ftype {
	FT_IDENT,      /* plain identifier */
	FT_QIDENT,     /* identifier, optionally schema-qualified */
	FT_TYPE,
	FT_BOOL,
	FT_EXPR,       /* SQL boolean expression */
	FT_QUERY,      /* a query, for create_view */
	FT_STMT,       /* one statement, for sql */
	FT_UPDATE,     /* one UPDATE, for backfill_sql */
	FT_CONST,
	FT_DEFAULT_SQL, /* a default as an SQL expression */
	FT_IDENTS,     /* list of plain identifiers */
	FT_COLDEFS,    /* create_table's columns */
	FT_LOCK,
	FT_ONDELETE,
	FT_WAVE,
};

struct fspec {
	const char *name;
	enum ftype t;
	bool required;
};

#define MAXF 7
static const struct fspec opspecs[OP__COUNT][MAXF] = {
	[OP_CREATE_VIEW] = { { "name", FT_QIDENT, true }, { "sql", FT_QUERY, true } },
	[OP_CREATE_TABLE] = { { "table", FT_QIDENT, true }, { "columns", FT_COLDEFS, true },
			      { "primary_key", FT_IDENTS, false } },
	[OP_ADD_COLUMN] = { { "table", FT_QIDENT, true }, { "name", FT_IDENT, true },
			    { "type", FT_TYPE, true }, { "nullable", FT_BOOL, false },
			    { "default", FT_CONST, false }, { "default_sql", FT_DEFAULT_SQL, false } },
	[OP_ADD_INDEX_CONCURRENTLY] = { { "table", FT_QIDENT, true }, { "name", FT_IDENT, true },
					{ "columns", FT_IDENTS, true }, { "unique", FT_BOOL, false },
					{ "where", FT_EXPR, false } },
	[OP_ADD_FOREIGN_KEY_NOT_VALID] = { { "table", FT_QIDENT, true }, { "name", FT_IDENT, true },
					   { "columns", FT_IDENTS, true },
					   { "ref_table", FT_QIDENT, true },
					   { "ref_columns", FT_IDENTS, true },
					   { "on_delete", FT_ONDELETE, false } },
	[OP_ADD_CHECK_NOT_VALID] = { { "table", FT_QIDENT, true }, { "name", FT_IDENT, true },
				     { "check", FT_EXPR, true } },
	[OP_BACKFILL_SQL] = { { "sql", FT_UPDATE, true }, { "revert_sql", FT_UPDATE, false } },
	[OP_VALIDATE_CONSTRAINT] = { { "table", FT_QIDENT, true }, { "name", FT_IDENT, true } },
	[OP_SET_NOT_NULL] = { { "table", FT_QIDENT, true }, { "column", FT_IDENT, true } },
	[OP_DROP_COLUMN] = { { "table", FT_QIDENT, true }, { "name", FT_IDENT, true } },
	[OP_DROP_INDEX_CONCURRENTLY] = { { "name", FT_QIDENT, true } },
	[OP_DROP_TABLE] = { { "table", FT_QIDENT, true } },
	[OP_RENAME_COLUMN] = { { "table", FT_QIDENT, true }, { "from", FT_IDENT, true },
			       { "to", FT_IDENT, true } },
	[OP_RENAME_TABLE] = { { "from", FT_QIDENT, true }, { "to", FT_IDENT, true } },
	[OP_SQL] = { { "sql", FT_STMT, true }, { "lock_class_max", FT_LOCK, false },
		     { "may_rewrite", FT_BOOL, false }, { "wave", FT_WAVE, false },
		     { "revert_sql", FT_STMT, false } },
};

#define IDENT_RULE "a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes)"
#define QIDENT_RULE \
	"a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes, optionally schema.name)"

struct bctx {
	struct plan *p;
	const char *file;
	struct diags *d;
	struct arena *a;
};

static void
err(struct bctx *c, const struct doc_node *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
err(struct bctx *c, const struct doc_node *n, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	diags_add(c->d, DIAG_ERROR, c->file, n ? n->line : 0, n ? n->col : 0, "%s", msg);
	free(msg);
}

/* "'value'" for a scalar (shortened), else what kind of thing it is. */
static const char *
found(struct bctx *c, const struct doc_node *n)
{
	if (n->kind == DOC_STRING) {
		size_t len = strlen(n->str);
		if (len == 0)
			return "an empty string";
		if (len > 40)
			return arena_printf(c->a, "the string '%.37s...'", n->str);
		return arena_printf(c->a, "the string '%s'", n->str);
	}
	if (n->kind == DOC_INT || n->kind == DOC_FLOAT || n->kind == DOC_BOOL)
		return arena_printf(c->a, "%s (%s)", doc_kind_name(n->kind), n->str);
	return doc_kind_name(n->kind);
}

static const char *
get_string(struct bctx *c, const struct doc_node *n, const char *field, const char *what)
{
	if (n->kind != DOC_STRING) {
		err(c, n, "%s: expected %s, found %s", field, what, found(c, n));
		return NULL;
	}
	return n->str;
}

static char *
get_ident(struct bctx *c, const struct doc_node *n, const char *field, bool qualified)
{
	const char *s = get_string(c, n, field, qualified ? QIDENT_RULE : IDENT_RULE);

	if (!s)
		return NULL;
	if (!plan_ident_ok(s, qualified)) {
		err(c, n, "%s: expected %s, found %s", field, qualified ? QIDENT_RULE : IDENT_RULE,
		    found(c, n));
		return NULL;
	}
	return arena_strdup(c->p->arena, s);
}

static bool
get_bool(struct bctx *c, const struct doc_node *n, const char *field, bool *out)
{
	if (n->kind != DOC_BOOL) {
		err(c, n, "%s: expected a boolean (true or false), found %s", field, found(c, n));
		return false;
	}
	*out = n->b;
	return true;
}

/* The 1-based number of the character at byte offset off of s (UTF-8). */
static size_t
char_number(const char *s, size_t off)
{
	size_t n = 1;

	for (size_t i = 0; i < off && s[i]; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

/* A message of the SQL reader, at the value's position with the offset inside it. */
static void
sql_err(struct bctx *c, const struct doc_node *n, const char *field, const char *s,
	const struct sql_msg *m)
{
	err(c, n, "%s: %s (at character %zu of the SQL)", field, m->text, char_number(s, m->off));
}

/*
 * An SQL expression, read by PostgreSQL's parser: one value and nothing
 * around it. Checks (no_volatile) may not call a volatile built-in function.
 */
static char *
get_expr(struct bctx *c, const struct doc_node *n, const char *field, bool no_volatile)
{
	const char *s = get_string(c, n, field, "an SQL expression");
	struct sql_msg m;

	if (!s)
		return NULL;
	if (!sql_check_expr(s, no_volatile, &m)) {
		sql_err(c, n, field, s, &m);
		return NULL;
	}
	return arena_strdup(c->p->arena, s);
}

/*
 * One SQL statement, read by PostgreSQL's parser; the text kept without its
 * `;`. *t holds the parse tree on success (free with sql_tree_free).
 */
static char *
get_stmt(struct bctx *c, const struct doc_node *n, const char *field, struct sql_tree *t,
	 const PgQuery__Node **stmt)
{
	const char *s = get_string(c, n, field, "an SQL statement");
	struct sql_msg m;
	size_t len;

	if (!s)
		return NULL;
	if (!sql_check_stmt(s, t, stmt, &len, &m)) {
		sql_err(c, n, field, s, &m);
		return NULL;
	}
	return arena_strndup(c->p->arena, s, len);
}

/* A column type, read by PostgreSQL's parser: a type name and no column clause. */
static char *
get_type(struct bctx *c, const struct doc_node *n, const char *field)
{
	const char *t = get_string(c, n, field, "a type name");
	struct sql_msg m;
	bool serial;

	if (!t)
		return NULL;
	if (!sql_check_type(t, &serial, &m)) {
		err(c, n, "%s: %s (at character %zu of the type)", field, m.text,
		    char_number(t, m.off));
		return NULL;
	}
	if (!plan_type_ok(t)) {
		err(c, n,
		    "%s: expected a plain type name (words, optional (n[,m]), optional []; no "
		    "quotes, semicolons or comments), found %s",
		    field, found(c, n));
		return NULL;
	}
	return arena_strdup(c->p->arena, t);
}

/* default_sql: an expression, classified by the volatility of what it calls. */
static bool
get_default_sql(struct bctx *c, const struct doc_node *n, const char *field,
		struct plan_const *out)
{
	const char *s = get_string(c, n, field, "an SQL expression");
	enum sql_volatility vol;
	char fn[64];
	struct sql_msg m;

	if (!s)
		return false;
	if (out->kind != CONST_NONE) {
		err(c, n, "%s: expected either default or default_sql, found both", field);
		return false;
	}
	if (!sql_check_default(s, &vol, fn, sizeof(fn), &m)) {
		sql_err(c, n, field, s, &m);
		return false;
	}
	out->kind = CONST_SQL;
	out->text = arena_strdup(c->p->arena, s);
	out->per_row = vol != SQL_IMMUTABLE_OR_STABLE;
	out->per_row_fn = out->per_row ? arena_strdup(c->p->arena, fn) : NULL;
	return true;
}

static bool
get_idents(struct bctx *c, const struct doc_node *n, const char *field, struct plan_strv *out)
{
	bool ok = true;

	if (n->kind != DOC_SEQ) {
		err(c, n, "%s: expected a list of column names, found %s", field, found(c, n));
		return false;
	}
	if (n->n == 0) {
		err(c, n, "%s: expected at least one column name, found an empty list", field);
		return false;
	}
	out->v = arena_alloc(c->p->arena, n->n * sizeof(char *));
	for (size_t i = 0; i < n->n; i++) {
		char *s = get_ident(c, n->items[i], field, false);
		if (!s) {
			ok = false;
			continue;
		}
		for (size_t k = 0; k < out->n; k++) {
			if (strcmp(out->v[k], s) == 0) {
				err(c, n->items[i], "%s: column '%s' is listed twice", field, s);
				ok = false;
			}
		}
		out->v[out->n++] = s;
	}
	return ok;
}

static bool
get_checks(struct bctx *c, const struct doc_node *n, const char *field, struct plan_strv *out)
{
	bool ok = true;

	if (n->kind != DOC_SEQ) {
		err(c, n, "%s: expected a list of SQL boolean expressions, found %s", field,
		    found(c, n));
		return false;
	}
	out->v = arena_alloc(c->p->arena, (n->n ? n->n : 1) * sizeof(char *));
	for (size_t i = 0; i < n->n; i++) {
		char *s = get_expr(c, n->items[i], field, true);
		if (s)
			out->v[out->n++] = s;
		else
			ok = false;
	}
	return ok;
}

static bool
get_const(struct bctx *c, const struct doc_node *n, const char *field, struct plan_const *out)
{
	switch (n->kind) {
	case DOC_NULL:
		out->kind = CONST_NULL;
		out->text = "null";
		return true;
	case DOC_BOOL:
		out->kind = CONST_BOOL;
		out->text = n->b ? "true" : "false";
		return true;
	case DOC_INT:
	case DOC_FLOAT: {
		char *end;
		errno = 0;
		(void)strtod(n->str, &end);
		if (*end || errno) {
			err(c, n, "%s: expected a number, found %s", field, found(c, n));
			return false;
		}
		out->kind = CONST_NUMBER;
		out->text = arena_strdup(c->p->arena, n->str[0] == '+' ? n->str + 1 : n->str);
		return true;
	}
	case DOC_STRING:
		if (sql_string_looks_evaluated(n->str)) {
			err(c, n,
			    "%s: expected a constant, found %s, which PostgreSQL would store as "
			    "the text itself or freeze at the moment of the migration; write an "
			    "expression to evaluate as default_sql",
			    field, found(c, n));
			return false;
		}
		out->kind = CONST_STRING;
		out->text = arena_strdup(c->p->arena, n->str);
		return true;
	default:
		err(c, n,
		    "%s: expected a constant (a string, number, boolean or null), found %s; "
		    "a default must be a constant so that adding the column does not rewrite "
		    "the table",
		    field, found(c, n));
		return false;
	}
}

static bool
get_int(struct bctx *c, const struct doc_node *n, const char *field, int64_t min, int64_t max,
	int64_t *out)
{
	long long v;
	char *end;

	if (n->kind != DOC_INT) {
		err(c, n, "%s: expected a whole number from %lld to %lld, found %s", field,
		    (long long)min, (long long)max, found(c, n));
		return false;
	}
	errno = 0;
	v = strtoll(n->str, &end, 10);
	if (*end || errno || v < min || v > max) {
		err(c, n, "%s: expected a whole number from %lld to %lld, found %s", field,
		    (long long)min, (long long)max, found(c, n));
		return false;
	}
	*out = v;
	return true;
}

static void
limits_unset(struct plan_limits *l)
{
	l->max_lock_ms = l->max_stmt_ms = l->rows_per_second = l->batch_size = -1;
}

static bool
get_limits(struct bctx *c, const struct doc_node *n, struct plan_limits *l)
{
	bool ok = true;

	limits_unset(l);
	if (n->kind != DOC_MAP) {
		err(c, n, "limits: expected a map of max_lock_ms, max_stmt_ms, rows_per_second, "
			  "batch_size, found %s",
		    found(c, n));
		return false;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		const struct doc_node *v = n->items[i];
		char *field = arena_printf(c->a, "limits.%s", k);

		if (!strcmp(k, "max_lock_ms"))
			ok &= get_int(c, v, field, 1, 86400000, &l->max_lock_ms);
		else if (!strcmp(k, "max_stmt_ms"))
			ok &= get_int(c, v, field, 0, 86400000, &l->max_stmt_ms);
		else if (!strcmp(k, "rows_per_second"))
			ok &= get_int(c, v, field, 0, 1000000000, &l->rows_per_second);
		else if (!strcmp(k, "batch_size"))
			ok &= get_int(c, v, field, 1, 1000000, &l->batch_size);
		else {
			err(c, n->keys[i],
			    "limits: unknown field '%s' (expected max_lock_ms, max_stmt_ms, "
			    "rows_per_second or batch_size)",
			    k);
			ok = false;
		}
	}
	return ok;
}

static bool
get_coldefs(struct bctx *c, const struct doc_node *n, struct plan_step *s)
{
	bool ok = true;

	if (n->kind != DOC_SEQ || n->n == 0) {
		err(c, n, "columns: expected a non-empty list of {name, type, nullable, default}, "
			  "found %s",
		    n->kind == DOC_SEQ ? "an empty list" : found(c, n));
		return false;
	}
	s->coldefs = arena_alloc(c->p->arena, n->n * sizeof(*s->coldefs));
	for (size_t i = 0; i < n->n; i++) {
		const struct doc_node *m = n->items[i];
		struct plan_coldef *cd = &s->coldefs[s->ncoldefs];
		bool have_name = false, have_type = false;

		if (m->kind != DOC_MAP) {
			err(c, m, "columns: expected a map {name, type, nullable, default}, found %s",
			    found(c, m));
			ok = false;
			continue;
		}
		cd->nullable = true;
		for (size_t k = 0; k < m->n; k++) {
			const char *key = m->keys[k]->str;
			const struct doc_node *v = m->items[k];

			if (!strcmp(key, "name")) {
				have_name = (cd->name = get_ident(c, v, "columns.name", false));
				ok &= have_name;
			} else if (!strcmp(key, "type")) {
				have_type = (cd->type = get_type(c, v, "columns.type")) != NULL;
				ok &= have_type;
			} else if (!strcmp(key, "nullable")) {
				ok &= get_bool(c, v, "columns.nullable", &cd->nullable);
			} else if (!strcmp(key, "default")) {
				if (cd->def.kind != CONST_NONE) {
					err(c, v, "columns.default: expected either default or "
						  "default_sql, found both");
					ok = false;
				} else {
					ok &= get_const(c, v, "columns.default", &cd->def);
				}
			} else if (!strcmp(key, "default_sql")) {
				ok &= get_default_sql(c, v, "columns.default_sql", &cd->def);
			} else {
				err(c, m->keys[k],
				    "columns: unknown field '%s' (expected name, type, nullable, "
				    "default, default_sql)",
				    key);
				ok = false;
			}
		}
		if (!m->n || (!have_name && !doc_map_get(m, "name"))) {
			err(c, m, "columns: missing field 'name'");
			ok = false;
		}
		if (!have_type && !doc_map_get(m, "type")) {
			err(c, m, "columns: missing field 'type'");
			ok = false;
		}
		if (have_name) {
			for (size_t k = 0; k < s->ncoldefs; k++)
				if (strcmp(s->coldefs[k].name, cd->name) == 0) {
					err(c, m, "columns: column '%s' is defined twice", cd->name);
					ok = false;
				}
		}
		if (have_name && have_type)
			s->ncoldefs++;
	}
	return ok;
}

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
stmt_refused(struct bctx *c, const PgQuery__Node *q)
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
	default:
		break;
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
	struct bctx *c = a[0];
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
touched_of(struct bctx *c, const PgQuery__Node *q, struct plan_step *s)
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
concurrent_index(struct bctx *c, const PgQuery__Node *q, struct plan_step *s)
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
			     : l->n_items == 1 && a   ? arena_strdup(c->p->arena, a)
						      : NULL;
		if (name && plan_ident_ok(name, true))
			s->dic_index = name;
	}
	return NULL;
}

/* allow: [{rule: S001 | index-not-concurrent, reason: ...}, ...] */
static bool
get_allows(struct bctx *c, const struct doc_node *n, struct plan_step *s)
{
	bool ok = true;

	if (n->kind != DOC_SEQ || n->n == 0) {
		err(c, n, "allow: expected a list of {rule, reason}, found %s", found(c, n));
		return false;
	}
	s->allows = arena_alloc(c->p->arena, n->n * sizeof(*s->allows));
	for (size_t i = 0; i < n->n; i++) {
		const struct doc_node *m = n->items[i], *r, *why;
		int id;

		if (m->kind != DOC_MAP) {
			err(c, m, "allow: expected a map {rule, reason}, found %s", found(c, m));
			ok = false;
			continue;
		}
		for (size_t k = 0; k < m->n; k++)
			if (strcmp(m->keys[k]->str, "rule") && strcmp(m->keys[k]->str, "reason")) {
				err(c, m->keys[k], "allow: unknown field '%s' (expected rule, reason)",
				    m->keys[k]->str);
				ok = false;
			}
		r = doc_map_get(m, "rule");
		why = doc_map_get(m, "reason");
		if (!r || !why) {
			err(c, m,
			    "allow: missing field '%s' (a finding is silenced only with a reason)",
			    r ? "reason" : "rule");
			ok = false;
			continue;
		}
		if (r->kind != DOC_STRING || (id = plan_rule_find(r->str)) < 0) {
			err(c, r, "allow: rule: expected a rule id (S001 ...) or name, found %s",
			    found(c, r));
			ok = false;
			continue;
		}
		if (why->kind != DOC_STRING || !why->str[0]) {
			err(c, why, "allow: reason: expected a non-empty string, found %s",
			    found(c, why));
			ok = false;
			continue;
		}
		s->allows[s->nallows++] = (struct plan_allow){ (enum plan_rule_id)id,
							       arena_strdup(c->p->arena, why->str),
							       m->line, m->col };
	}
	return ok;
}

/* Reads one op-specific field into the step. */
static bool
store_field(struct bctx *c, struct plan_step *s, const struct fspec *f, const struct doc_node *v)
{
	const char *name = f->name;

	/* revert_sql is read like the op's own sql, into the step that undoes this one */
	if (!strcmp(name, "revert_sql"))
		s = plan_inverse_revert(c->p, s, v->line, v->col);
	switch (f->t) {
	case FT_IDENT:
	case FT_QIDENT: {
		char *id = get_ident(c, v, name, f->t == FT_QIDENT);
		if (!id)
			return false;
		if (!strcmp(name, "table"))
			s->table = id;
		else if (!strcmp(name, "name"))
			s->name = id;
		else if (!strcmp(name, "column"))
			s->column = id;
		else if (!strcmp(name, "from"))
			s->from = id;
		else if (!strcmp(name, "to"))
			s->to = id;
		else if (!strcmp(name, "ref_table"))
			s->ref_table = id;
		return true;
	}
	case FT_TYPE:
		return (s->type = get_type(c, v, name)) != NULL;
	case FT_BOOL: {
		bool b;
		if (!strcmp(name, "may_rewrite")) {
			if (!get_bool(c, v, name, &b))
				return false;
			s->declared_rewrite = b;
			return true;
		}
		return get_bool(c, v, name, !strcmp(name, "unique") ? &s->unique : &s->nullable);
	}
	case FT_EXPR: {
		char *e = get_expr(c, v, name, true);
		if (!e)
			return false;
		if (!strcmp(name, "where"))
			s->where = e;
		else
			s->check = e;
		return true;
	}
	case FT_QUERY: {
		struct sql_tree t;
		const PgQuery__Node *q;
		const PgQuery__SelectStmt *sel;
		if (!(s->sql = get_stmt(c, v, name, &t, &q)))
			return false;
		sel = q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT ? q->select_stmt : NULL;
		if (!sel || sel->into_clause) {
			err(c, v, "sql: expected a query (SELECT, WITH, VALUES or TABLE), found %s",
			    sel ? "SELECT INTO" : arena_printf(c->a, "'%s'", stmt_keyword(q)));
			sql_tree_free(&t);
			return false;
		}
		sql_tree_free(&t);
		return true;
	}
	case FT_STMT: {
		struct sql_tree t;
		const PgQuery__Node *q;
		const char *why;
		if (!(s->sql = get_stmt(c, v, name, &t, &q)))
			return false;
		why = stmt_refused(c, q);
		if (!why)
			why = concurrent_index(c, q, s);
		if (!why) {
			plan_sql_analyze(c->p->arena, q, &s->eff);
			touched_of(c, q, s);
			if (s->from_sql_file)
				s->sql_tokens = sql_token_stream(c->p->arena, s->sql);
		}
		sql_tree_free(&t);
		if (why) {
			err(c, v, "%s: %s", name, why);
			return false;
		}
		return true;
	}
	case FT_UPDATE: {
		struct sql_tree t;
		struct sql_msg m;
		if (!(s->sql = get_stmt(c, v, name, &t, NULL)))
			return false;
		sql_tree_free(&t);
		if (!sql_split_update(c->p->arena, s->sql, &s->bf_table, &s->bf_set, &s->bf_where,
				      &m)) {
			sql_err(c, v, name, s->sql, &m);
			return false;
		}
		if (!plan_ident_ok(s->bf_table, true)) {
			err(c, v,
			    "%s: expected a plain table name after UPDATE (letters, digits, _, "
			    "optionally schema.name), found '%s'",
			    name, s->bf_table);
			return false;
		}
		return true;
	}
	case FT_CONST:
		if (s->def.kind != CONST_NONE) {
			err(c, v, "%s: expected either default or default_sql, found both", name);
			return false;
		}
		return get_const(c, v, name, &s->def);
	case FT_DEFAULT_SQL:
		return get_default_sql(c, v, name, &s->def);
	case FT_IDENTS:
		if (!strcmp(name, "columns"))
			return get_idents(c, v, name, &s->columns);
		if (!strcmp(name, "ref_columns"))
			return get_idents(c, v, name, &s->ref_columns);
		return get_idents(c, v, name, &s->primary_key);
	case FT_COLDEFS:
		return get_coldefs(c, v, s);
	case FT_LOCK: {
		const char *l = get_string(c, v, name, "a lock mode");
		int lk = l ? pg_lock_from_name(l) : -1;
		if (lk < 0) {
			if (l)
				err(c, v,
				    "lock_class_max: expected a lock mode (AccessShareLock ... "
				    "AccessExclusiveLock, or ACCESS SHARE ... ACCESS EXCLUSIVE), "
				    "found %s",
				    found(c, v));
			return false;
		}
		s->declared_lock = (enum pg_lock)lk;
		return true;
	}
	case FT_ONDELETE: {
		static const char *const acts[] = { "NO ACTION", "RESTRICT", "CASCADE", "SET NULL",
						    "SET DEFAULT" };
		const char *a = get_string(c, v, name, "an action");
		if (!a)
			return false;
		for (size_t i = 0; i < sizeof(acts) / sizeof(*acts); i++) {
			if (strcasecmp(a, acts[i]) == 0) {
				s->on_delete = (char *)acts[i];
				return true;
			}
		}
		err(c, v,
		    "on_delete: expected NO ACTION, RESTRICT, CASCADE, SET NULL or SET DEFAULT, "
		    "found %s",
		    found(c, v));
		return false;
	}
	case FT_WAVE: {
		const char *w = get_string(c, v, name, "a wave name");
		int wi = w ? plan_wave_from_name(w) : -1;
		if (wi < 0) {
			if (w)
				err(c, v,
				    "wave: expected expand, backfill, validate or contract, found %s",
				    found(c, v));
			return false;
		}
		s->wave = (enum plan_wave)wi;
		return true;
	}
	}
	return false;
}

static char *
field_list(struct bctx *c, enum plan_op op)
{
	struct strbuf sb = STRBUF_INIT;
	char *out;

	for (int i = 0; i < MAXF && opspecs[op][i].name; i++)
		sb_printf(&sb, "%s, ", opspecs[op][i].name);
	sb_puts(&sb, "prechecks, postchecks, limits");
	out = arena_strdup(c->a, sb_str(&sb));
	sb_free(&sb);
	return out;
}

static char *
op_list(struct bctx *c)
{
	struct strbuf sb = STRBUF_INIT;
	char *out;

	for (int i = 0; i < OP__COUNT; i++)
		sb_printf(&sb, "%s%s", i ? ", " : "", plan_op_name((enum plan_op)i));
	out = arena_strdup(c->a, sb_str(&sb));
	sb_free(&sb);
	return out;
}

/*
 * Builds one step from its map. wave is the enclosing wave, or -1 in a flat
 * list. Returns true when the step is sound.
 */
static bool
build_step(struct bctx *c, const struct doc_node *n, int wave, struct plan_step *s)
{
	const struct doc_node *opn;
	bool ok = true, wave_field = false;
	int op;

	s->line = n->line;
	s->col = n->col;
	s->nullable = true;
	s->declared_rewrite = -1;
	{
		size_t fl = strlen(c->file);
		s->from_sql_file = fl > 4 && !strcmp(c->file + fl - 4, ".sql");
	}
	limits_unset(&s->limits);
	if (n->kind != DOC_MAP) {
		err(c, n, "step: expected a map with an 'op' field, found %s", found(c, n));
		return false;
	}
	opn = doc_map_get(n, "op");
	if (!opn) {
		err(c, n, "step: missing field 'op' (one of: %s)", op_list(c));
		return false;
	}
	if (opn->kind != DOC_STRING) {
		err(c, opn, "op: expected one of: %s; found %s", op_list(c), found(c, opn));
		return false;
	}
	op = plan_op_from_name(opn->str);
	if (op < 0) {
		err(c, opn, "op: unknown op '%s' (expected one of: %s)", opn->str, op_list(c));
		return false;
	}
	s->op = (enum plan_op)op;
	s->wave = op == OP_SQL ? (wave >= 0 ? (enum plan_wave)wave : WAVE_CONTRACT)
			       : plan_op_wave(s->op);

	for (size_t i = 0; i < n->n; i++) {
		const char *key = n->keys[i]->str;
		const struct doc_node *v = n->items[i];
		const struct fspec *f = NULL;

		if (!strcmp(key, "op"))
			continue;
		if (!strcmp(key, "prechecks")) {
			ok &= get_checks(c, v, key, &s->user_prechecks);
			continue;
		}
		if (!strcmp(key, "postchecks")) {
			ok &= get_checks(c, v, key, &s->user_postchecks);
			continue;
		}
		if (!strcmp(key, "limits")) {
			ok &= get_limits(c, v, &s->limits);
			continue;
		}
		if (!strcmp(key, "allow")) {
			ok &= get_allows(c, v, s);
			continue;
		}
		for (int k = 0; k < MAXF && opspecs[op][k].name; k++)
			if (!strcmp(opspecs[op][k].name, key))
				f = &opspecs[op][k];
		if (!f) {
			err(c, n->keys[i], "%s: unknown field '%s' (expected %s)", opn->str, key,
			    field_list(c, s->op));
			ok = false;
			continue;
		}
		if (f->t == FT_WAVE)
			wave_field = true;
		if (!store_field(c, s, f, v))
			ok = false;
	}
	for (int k = 0; k < MAXF && opspecs[op][k].name; k++) {
		if (opspecs[op][k].required && !doc_map_get(n, opspecs[op][k].name)) {
			err(c, n, "%s: missing field '%s'", opn->str, opspecs[op][k].name);
			ok = false;
		}
	}
	if (wave >= 0 && s->wave != (enum plan_wave)wave) {
		if (op == OP_SQL && wave_field)
			err(c, doc_map_get(n, "wave"),
			    "sql: its wave: field says '%s' but the step is in the '%s' wave",
			    plan_wave_name(s->wave), plan_wave_name((enum plan_wave)wave));
		else
			err(c, opn, "%s belongs to the %s wave, found in the %s wave", opn->str,
			    plan_wave_name(s->wave), plan_wave_name((enum plan_wave)wave));
		ok = false;
	}
	if (ok && s->op == OP_SQL && s->eff.known) {
		if (s->declared_lock != LOCK_NONE && s->declared_lock < s->eff.lock) {
			err(c, doc_map_get(n, "lock_class_max"),
			    "lock_class_max: the statement takes %s (%s), stronger than the %s "
			    "promised",
			    pg_lock_name(s->eff.lock), s->eff.reason, pg_lock_name(s->declared_lock));
			ok = false;
		}
		if (s->declared_rewrite == 0 && s->eff.rewrites) {
			err(c, doc_map_get(n, "may_rewrite"),
			    "may_rewrite: the statement may rewrite a table (%s), but false was "
			    "promised",
			    s->eff.reason);
			ok = false;
		}
	}
	if (ok && s->op == OP_CREATE_TABLE) {
		for (size_t i = 0; i < s->primary_key.n; i++) {
			bool known = false;
			for (size_t k = 0; k < s->ncoldefs; k++)
				known |= !strcmp(s->coldefs[k].name, s->primary_key.v[i]);
			if (!known) {
				err(c, doc_map_get(n, "primary_key"),
				    "primary_key: expected a column of the table, found '%s'",
				    s->primary_key.v[i]);
				ok = false;
			}
		}
	}
	if (ok && s->op == OP_ADD_FOREIGN_KEY_NOT_VALID && s->columns.n != s->ref_columns.n) {
		err(c, doc_map_get(n, "ref_columns"),
		    "ref_columns: expected %zu column(s) to match columns, found %zu", s->columns.n,
		    s->ref_columns.n);
		ok = false;
	}
	return ok;
}

static bool
plan_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || strchr("._-", s[i])) ||
		    (unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

#define PLAN_ID_RULE "letters, digits, '.', '_' or '-', starting with a letter or digit, at most 128"

/* The default id: the file's name without directory and extension. */
static char *
id_from_path(struct arena *a, const char *path)
{
	const char *base = strrchr(path, '/');
	const char *dot;

	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	return arena_strndup(a, base, dot && dot != base ? (size_t)(dot - base) : strlen(base));
}

/* Adds a step to its wave; steps arrive in file order. */
static void
add_step(struct plan *p, const struct plan_step *s)
{
	struct plan_wave_s *w = &p->waves[s->wave];
	struct plan_step *nv = arena_alloc(p->arena, (w->nsteps + 1) * sizeof(*nv));

	if (w->nsteps)
		memcpy(nv, w->steps, w->nsteps * sizeof(*nv));
	nv[w->nsteps] = *s;
	nv[w->nsteps].index = (unsigned)w->nsteps;
	w->steps = nv;
	w->nsteps++;
	w->present = true;
	p->nsteps++;
}

static void
build_steps(struct bctx *c, const struct doc_node *list, int wave, bool *ok)
{
	for (size_t i = 0; i < list->n; i++) {
		struct plan_step s;

		memset(&s, 0, sizeof(s));
		if (build_step(c, list->items[i], wave, &s))
			add_step(c->p, &s);
		else
			*ok = false;
	}
}

static void
build_waves(struct bctx *c, const struct doc_node *waves, bool *ok)
{
	int last = -1;
	unsigned seen_line[WAVE__COUNT] = { 0 };

	if (waves->kind != DOC_SEQ) {
		err(c, waves, "waves: expected a list of {name, steps, limits}, found %s",
		    found(c, waves));
		*ok = false;
		return;
	}
	for (size_t i = 0; i < waves->n; i++) {
		const struct doc_node *w = waves->items[i], *name, *steps;
		int wi;

		if (w->kind != DOC_MAP) {
			err(c, w, "waves: expected a map {name, steps, limits}, found %s",
			    found(c, w));
			*ok = false;
			continue;
		}
		for (size_t k = 0; k < w->n; k++) {
			const char *key = w->keys[k]->str;
			if (strcmp(key, "name") && strcmp(key, "steps") && strcmp(key, "limits")) {
				err(c, w->keys[k],
				    "wave: unknown field '%s' (expected name, steps, limits)", key);
				*ok = false;
			}
		}
		name = doc_map_get(w, "name");
		steps = doc_map_get(w, "steps");
		if (!name) {
			err(c, w, "wave: missing field 'name' (expand, backfill, validate or "
				  "contract)");
			*ok = false;
			continue;
		}
		wi = name->kind == DOC_STRING ? plan_wave_from_name(name->str) : -1;
		if (wi < 0) {
			err(c, name, "name: expected expand, backfill, validate or contract, found %s",
			    found(c, name));
			*ok = false;
			continue;
		}
		if (seen_line[wi]) {
			err(c, name, "wave '%s' is named twice (first at line %u)", name->str,
			    seen_line[wi]);
			*ok = false;
			continue;
		}
		seen_line[wi] = name->line;
		if (wi < last) {
			err(c, name,
			    "wave '%s' comes after '%s': waves run in the order expand, backfill, "
			    "validate, contract",
			    name->str, plan_wave_name((enum plan_wave)last));
			*ok = false;
		}
		last = wi > last ? wi : last;
		c->p->waves[wi].line = w->line;
		c->p->waves[wi].col = w->col;
		limits_unset(&c->p->waves[wi].limits);
		if (doc_map_get(w, "limits"))
			*ok &= get_limits(c, doc_map_get(w, "limits"), &c->p->waves[wi].limits);
		if (!steps) {
			err(c, w, "wave '%s': missing field 'steps'", name->str);
			*ok = false;
			continue;
		}
		if (steps->kind != DOC_SEQ || steps->n == 0) {
			err(c, steps, "steps: expected a non-empty list of steps, found %s",
			    steps->kind == DOC_SEQ ? "an empty list" : found(c, steps));
			*ok = false;
			continue;
		}
		build_steps(c, steps, wi, ok);
		c->p->waves[wi].present = true;
	}
}

/*
 * A plan that rolls back on failure may undo any completed step in the range
 * of its on_failure: every step of a wave but its last (rollback_wave: once
 * the last step is done the wave is), every step of the plan but its last
 * (rollback_plan). Each irreversible step in that range is an error of its
 * own, at the step, so that the author sees every one at once.
 */
static void
check_on_failure(struct bctx *c, bool *ok)
{
	const struct plan *p = c->p;
	size_t k = 0;

	if (p->on_failure == ON_FAILURE_STOP)
		return;
	for (int w = 0; w < WAVE__COUNT; w++) {
		for (size_t i = 0; i < p->waves[w].nsteps; i++, k++) {
			const struct plan_step *s = &p->waves[w].steps[i];
			bool last = p->on_failure == ON_FAILURE_ROLLBACK_WAVE
					    ? i + 1 == p->waves[w].nsteps
					    : k + 1 == p->nsteps;

			if (last || s->undo != UNDO_IRREVERSIBLE)
				continue;
			diags_add(c->d, DIAG_ERROR, c->file, s->line, s->col,
				  "%s: on_failure: %s (line %u) may have to undo this step, which "
				  "cannot be undone (%s); use on_failure: stop, or move the step to a "
				  "plan of its own",
				  plan_op_name(s->op), plan_on_failure_name(p->on_failure),
				  p->on_failure_line, s->undo_reason ? s->undo_reason : "irreversible");
			*ok = false;
		}
	}
}

/*
 * Seals a sound plan: computes each step's hazard, SQL and obligations, and
 * the ids. Each step's canonical form is made once and reused three times: to
 * refuse duplicate steps (two steps with the same content are almost surely
 * a copy-paste slip), inside its step_sha, and inside the plan checksum. The
 * enclosing objects are written in canonical form directly (keys in sorted
 * order), so the bytes are exactly those canon_json would give for them.
 */
static void
seal(struct bctx *c, bool *ok)
{
	struct plan *p = c->p;
	size_t n = p->nsteps, k = 0;
	struct strbuf *canon = xcalloc(n ? n : 1, sizeof(*canon));
	const struct plan_step **steps = xcalloc(n ? n : 1, sizeof(*steps));
	struct strbuf sb = STRBUF_INIT, id = STRBUF_INIT;
	struct sql_msg sm;
	bool first_wave = true;

	for (int w = 0; w < WAVE__COUNT; w++) {
		for (size_t i = 0; i < p->waves[w].nsteps; i++, k++) {
			const struct plan_step *s = &p->waves[w].steps[i];
			cJSON *j = plan_step_fields_json(s);

			canon_json(j, &canon[k]);
			cJSON_Delete(j);
			steps[k] = s;
			for (size_t m = 0; m < k; m++) {
				if (canon[m].len == canon[k].len &&
				    memcmp(canon[m].buf, canon[k].buf, canon[k].len) == 0) {
					diags_add(c->d, DIAG_ERROR, c->file, s->line, s->col,
						  "duplicate step: the same %s as the step at line %u",
						  plan_op_name(s->op), steps[m]->line);
					*ok = false;
					break;
				}
			}
		}
	}
	if (!*ok)
		goto out;

	sb_printf(&sb, "{\"hash_version\":%d,\"id\":", PLAN_HASH_VERSION);
	canon_string(p->id, &sb);
	/* only when written: the checksums of plans without it stay as they were */
	if (p->on_failure_given) {
		sb_puts(&sb, ",\"on_failure\":");
		canon_string(plan_on_failure_name(p->on_failure), &sb);
	}
	sb_puts(&sb, ",\"reason\":");
	canon_string(p->reason, &sb);
	sb_puts(&sb, ",\"title\":");
	canon_string(p->title, &sb);
	sb_puts(&sb, ",\"waves\":[");
	p->max_hazard = H0;
	k = 0;
	for (int w = 0; w < WAVE__COUNT; w++) {
		struct plan_wave_s *wv = &p->waves[w];
		cJSON *lim;

		if (!wv->present)
			continue;
		sb_puts(&sb, first_wave ? "{\"limits\":" : ",{\"limits\":");
		first_wave = false;
		lim = plan_limits_json(&wv->limits);
		canon_json(lim, &sb);
		cJSON_Delete(lim);
		sb_puts(&sb, ",\"name\":");
		canon_string(plan_wave_name((enum plan_wave)w), &sb);
		sb_puts(&sb, ",\"steps\":[");
		wv->max_hazard = H0;
		for (size_t i = 0; i < wv->nsteps; i++, k++) {
			struct plan_step *s = &wv->steps[i];

			plan_step_finish(p, s);
			if (!plan_shape_check(s, &sm)) {
				diags_add(c->d, DIAG_ERROR, c->file, s->line, s->col, "%s: %s",
					  plan_op_name(s->op), sm.text);
				*ok = false;
			}
			/* {"index":N,"plan_id":...,"step":{...},"wave":...} */
			sb_reset(&id);
			sb_printf(&id, "{\"index\":%u,\"plan_id\":", s->index);
			canon_string(p->id, &id);
			sb_puts(&id, ",\"step\":");
			sb_add(&id, canon[k].buf, canon[k].len);
			sb_puts(&id, ",\"wave\":");
			canon_string(plan_wave_name(s->wave), &id);
			sb_putc(&id, '}');
			sha256_hex(id.buf, id.len, s->sha);
			if (*ok && plan_inverse_build(p, s, &sm) < 0) {
				diags_add(c->d, DIAG_ERROR, c->file, s->inverse->line,
					  s->inverse->col, "%s: its inverse: %s",
					  plan_op_name(s->op), sm.text);
				*ok = false;
			}
			if (i)
				sb_putc(&sb, ',');
			sb_add(&sb, canon[k].buf, canon[k].len);
			if (s->hazard > wv->max_hazard)
				wv->max_hazard = s->hazard;
		}
		sb_puts(&sb, "]}");
		if (wv->max_hazard > p->max_hazard)
			p->max_hazard = wv->max_hazard;
	}
	sb_puts(&sb, "]}");
	sha256_hex(sb.buf, sb.len, p->checksum);
	if (*ok)
		check_on_failure(c, ok);
out:
	for (size_t i = 0; i < n; i++)
		sb_free(&canon[i]);
	free(canon);
	free(steps);
	sb_free(&sb);
	sb_free(&id);
}

/*
 * A revert plan: id, title, reason, revert and to_wave, and no steps (they
 * are the reverted plan's inverses, plan_revert_resolve). Its checksum is of
 * what is written: {hash_version, id, reason, revert, title[, to_wave]}.
 */
static void
revert_plan(struct bctx *c, const struct doc_node *root, bool *ok)
{
	static const char *const others[] = { "waves", "steps", "on_failure" };
	struct plan *p = c->p;
	const struct doc_node *rv = doc_map_get(root, "revert");
	struct strbuf sb = STRBUF_INIT;

	if (!rv) {
		err(c, doc_map_get(root, "to_wave"),
		    "to_wave: only a revert plan has it (expected revert: <plan id> beside it)");
		*ok = false;
		return;
	}
	for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++) {
		const struct doc_node *o = doc_map_get(root, others[k]);

		if (!o)
			continue;
		err(c, o,
		    "%s: a revert plan (revert: at line %u) has no %s: its steps are the inverses "
		    "of the plan it reverts; expected either revert or %s, found both",
		    others[k], rv->line, others[k], others[k]);
		*ok = false;
	}
	if (!*ok)
		return;
	sb_printf(&sb, "{\"hash_version\":%d,\"id\":", PLAN_HASH_VERSION);
	canon_string(p->id, &sb);
	sb_puts(&sb, ",\"reason\":");
	canon_string(p->reason, &sb);
	sb_puts(&sb, ",\"revert\":");
	canon_string(p->revert_of, &sb);
	sb_puts(&sb, ",\"title\":");
	canon_string(p->title, &sb);
	if (p->to_wave >= 0) {
		sb_puts(&sb, ",\"to_wave\":");
		canon_string(plan_wave_name((enum plan_wave)p->to_wave), &sb);
	}
	sb_putc(&sb, '}');
	sha256_hex(sb.buf, sb.len, p->checksum);
	sb_free(&sb);
	p->max_hazard = H3;
}

int
plan_parse(struct plan **out, const char *path, const char *buf, size_t len, struct diags *d)
{
	struct bctx c = { .file = path, .d = d };
	struct doc *doc = NULL;
	const struct doc_node *root, *waves, *steps;
	struct plan *p;
	bool ok = true;
	size_t before = d->nerrors;

	if (doc_parse(&doc, path, buf, len, d) < 0)
		return -1;
	p = xcalloc(1, sizeof(*p));
	p->arena = arena_new();
	p->path = arena_strdup(p->arena, path);
	for (int w = 0; w < WAVE__COUNT; w++)
		limits_unset(&p->waves[w].limits);
	p->to_wave = -1;
	c.p = p;
	c.a = doc->arena;
	root = doc->root;
	if (!root || root->kind == DOC_NULL) {
		err(&c, NULL, "empty plan: expected a map with title, reason and waves or steps");
		ok = false;
		goto out;
	}
	if (root->kind != DOC_MAP) {
		/* the kind only: a file that is no plan at all is not quoted */
		err(&c, root, "plan: expected a map with title, reason and waves or steps, found %s",
		    doc_kind_name(root->kind));
		ok = false;
		goto out;
	}
	for (size_t i = 0; i < root->n; i++) {
		const char *key = root->keys[i]->str;
		const struct doc_node *v = root->items[i];

		if (!strcmp(key, "id")) {
			if (v->kind != DOC_STRING || !plan_id_ok(v->str)) {
				err(&c, v, "id: expected a plan id (" PLAN_ID_RULE "), found %s",
				    found(&c, v));
				ok = false;
			} else {
				p->id = arena_strdup(p->arena, v->str);
				p->id_line = v->line;
				p->id_col = v->col;
			}
		} else if (!strcmp(key, "title") || !strcmp(key, "reason")) {
			if (v->kind != DOC_STRING || !v->str[0]) {
				err(&c, v, "%s: expected a non-empty string, found %s", key,
				    found(&c, v));
				ok = false;
			} else if (key[0] == 't') {
				p->title = arena_strdup(p->arena, v->str);
			} else {
				p->reason = arena_strdup(p->arena, v->str);
			}
		} else if (!strcmp(key, "on_failure")) {
			int f = -1;
			for (int k = 0; k <= ON_FAILURE_ROLLBACK_PLAN && v->kind == DOC_STRING; k++)
				if (!strcmp(v->str, plan_on_failure_name((enum plan_on_failure)k)))
					f = k;
			if (f < 0) {
				err(&c, v,
				    "on_failure: expected stop, rollback_wave or rollback_plan, found %s",
				    found(&c, v));
				ok = false;
			} else {
				p->on_failure = (enum plan_on_failure)f;
				p->on_failure_given = true;
				p->on_failure_line = v->line;
				p->on_failure_col = v->col;
			}
		} else if (!strcmp(key, "revert")) {
			if (v->kind != DOC_STRING || !plan_id_ok(v->str)) {
				err(&c, v,
				    "revert: expected the id of the plan to revert (" PLAN_ID_RULE
				    "), found %s",
				    found(&c, v));
				ok = false;
			} else {
				p->revert_of = arena_strdup(p->arena, v->str);
				p->revert_line = v->line;
				p->revert_col = v->col;
			}
		} else if (!strcmp(key, "to_wave")) {
			int tw = v->kind == DOC_STRING ? plan_wave_from_name(v->str) : -1;

			if (tw < 0) {
				err(&c, v,
				    "to_wave: expected expand, backfill, validate or contract, found %s",
				    found(&c, v));
				ok = false;
			} else {
				p->to_wave = tw;
				p->to_wave_line = v->line;
				p->to_wave_col = v->col;
			}
		} else if (strcmp(key, "waves") && strcmp(key, "steps")) {
			err(&c, root->keys[i],
			    "plan: unknown field '%s' (expected id, title, reason, on_failure, waves, "
			    "steps, or revert and to_wave)",
			    key);
			ok = false;
		}
	}
	if (!doc_map_get(root, "title")) {
		err(&c, root, "plan: missing field 'title' (what the change is)");
		ok = false;
	}
	if (!doc_map_get(root, "reason")) {
		err(&c, root, "plan: missing field 'reason' (why the change exists, for the audit)");
		ok = false;
	}
	if (!p->id && !doc_map_get(root, "id")) {
		p->id = id_from_path(p->arena, path);
		if (!plan_id_ok(p->id)) {
			err(&c, NULL,
			    "the file name gives the plan id '%s', which is not a plan id (" PLAN_ID_RULE
			    "); rename the file or add an id: field",
			    p->id);
			ok = false;
		}
	}
	waves = doc_map_get(root, "waves");
	steps = doc_map_get(root, "steps");
	if (doc_map_get(root, "revert") || doc_map_get(root, "to_wave")) {
		revert_plan(&c, root, &ok);
		goto out;
	}
	if (waves && steps) {
		err(&c, steps, "plan: expected either waves or steps, found both");
		ok = false;
	} else if (waves) {
		build_waves(&c, waves, &ok);
	} else if (steps) {
		p->flat = true;
		if (steps->kind != DOC_SEQ) {
			err(&c, steps, "steps: expected a list of steps, found %s", found(&c, steps));
			ok = false;
		} else {
			build_steps(&c, steps, -1, &ok);
		}
	} else {
		err(&c, root, "plan: missing field 'waves' or 'steps'");
		ok = false;
	}
	if (ok && p->nsteps == 0) {
		err(&c, waves ? waves : steps, "empty plan: expected at least one step");
		ok = false;
	}
	if (ok)
		seal(&c, &ok);
out:
	doc_free(doc);
	if (!ok || d->nerrors != before) {
		plan_free(p);
		return -1;
	}
	*out = p;
	return 0;
}

int
plan_load(struct plan **out, const char *path, struct diags *d)
{
	struct plan *p;

	if (plan_load_one(&p, path, d) < 0)
		return -1;
	if (p->revert_of && plan_revert_from_dir(p, d) < 0) {
		plan_free(p);
		return -1;
	}
	*out = p;
	return 0;
}

int
plan_load_one(struct plan **out, const char *path, struct diags *d)
{
	/*
	 * A plan is a few KiB: read it into this buffer and parse it there, with
	 * no fstat, no allocation and no copy; only a larger file goes to sb.
	 * The size limit is checked on what was read.
	 */
	char chunk[65536];
	struct strbuf sb = STRBUF_INIT;
	size_t len = 0;
	ssize_t n;
	int fd, rc;
	struct stat st;

	fd = plan_dir_open(path, d); /* a regular file; no link out of its directory, no FIFO */
	if (fd < 0)
		return -1;
	while ((n = read(fd, chunk + len, sizeof(chunk) - len)) > 0) {
		len += (size_t)n;
		if (len < sizeof(chunk))
			continue;
		sb_add(&sb, chunk, len);
		len = 0;
		if (sb.len > DOC_MAX_BYTES)
			break;
	}
	if (n < 0) {
		diags_add(d, DIAG_ERROR, path, 0, 0, "cannot read: %s", strerror(errno));
		close(fd);
		sb_free(&sb);
		return -1;
	}
	if (sb.len > DOC_MAX_BYTES && fstat(fd, &st) == 0 && st.st_size > DOC_MAX_BYTES) {
		diags_add(d, DIAG_ERROR, path, 0, 0, "file is %lld bytes; a plan may be at most %d bytes",
			  (long long)st.st_size, DOC_MAX_BYTES);
		close(fd);
		sb_free(&sb);
		return -1;
	}
	close(fd);
	if (sb.len) {
		sb_add(&sb, chunk, len);
		rc = plan_parse(out, path, sb.buf, sb.len, d);
	} else {
		rc = plan_parse(out, path, chunk, len, d);
	}
	sb_free(&sb);
	return rc;
}

void
plan_free(struct plan *p)
{
	if (!p)
		return;
	plan_free(p->reverted);
	arena_free(p->arena);
	free(p);
}
