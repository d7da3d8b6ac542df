/*
 * The op table: every op the planner knows, one entry each (at the end of
 * this file), with its name, wave, hazard rule, lock, exec kind, the fields
 * it accepts and where each is stored, and its SQL template: a function that
 * writes the statement and the computed prechecks and postchecks. The field
 * kinds are read in plan_fields.c; CONTRIBUTING.md says what else a new op
 * needs (its read-back, its inverse, docs and tests); the canonical form a
 * step is hashed by is written from the fields (plan_json.c).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plan/doc.h"
#include "plan/plan.h"
#include "plan/plan_int.h"
#include "sql/sql.h"
#include "util/alloc.h"
#include "util/strbuf.h"

/* Helpers for building statements and checks in the plan's arena. */

static char *
q(struct plan *p, const char *ident)
{
	return sql_quote_ident(p->arena, ident);
}

static char *
lit(struct plan *p, const char *s)
{
	return sql_quote_literal(p->arena, s);
}

/* The schema-qualified name of an index or constraint that lives beside table. */
static char *
sibling(struct plan *p, const char *table, const char *name)
{
	const char *dot = strchr(table, '.');

	if (!dot)
		return arena_strdup(p->arena, name);
	return arena_printf(p->arena, "%.*s.%s", (int)(dot - table), table, name);
}

static void
strv_push(struct plan *p, struct plan_strv *v, const char *s)
{
	char **nv = arena_alloc(p->arena, (v->n + 1) * sizeof(*nv));

	if (v->n)
		memcpy(nv, v->v, v->n * sizeof(*nv));
	nv[v->n++] = (char *)s; /* arena-owned, never freed alone */
	v->v = nv;
}

static void pre(struct plan *p, struct plan_step *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void post(struct plan *p, struct plan_step *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static char *vprint(struct plan *p, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static char *
vprint(struct plan *p, const char *fmt, va_list ap)
{
	char *tmp, *out;

	if (vasprintf(&tmp, fmt, ap) < 0)
		abort();
	out = arena_strdup(p->arena, tmp);
	free(tmp);
	return out;
}

static void
pre(struct plan *p, struct plan_step *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strv_push(p, &s->ob.prechecks, vprint(p, fmt, ap));
	va_end(ap);
}

static void
post(struct plan *p, struct plan_step *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strv_push(p, &s->ob.postchecks, vprint(p, fmt, ap));
	va_end(ap);
}

static char *
ident_list(struct plan *p, const struct plan_strv *v)
{
	struct strbuf sb = STRBUF_INIT;
	char *out;

	for (size_t i = 0; i < v->n; i++) {
		if (i)
			sb_puts(&sb, ", ");
		sb_puts(&sb, q(p, v->v[i]));
	}
	out = arena_strdup(p->arena, sb_str(&sb));
	sb_free(&sb);
	return out;
}

/* A closing parenthesis after a fragment goes on its own line if a -- comment could eat it. */
static const char *
close_paren(const char *frag)
{
	/* PostgreSQL ends a -- comment at a new line or a carriage return */
	return strstr(frag, "--") ? "\n)" : ")";
}

static char *
const_sql(struct plan *p, const struct plan_const *c)
{
	switch (c->kind) {
	case CONST_NULL: return "NULL";
	case CONST_BOOL: return c->text[0] == 't' ? "true" : "false";
	case CONST_NUMBER: return c->text;
	case CONST_STRING: return lit(p, c->text);
	case CONST_SQL: return arena_printf(p->arena, "(%s%s", c->text, close_paren(c->text));
	case CONST_NONE: break;
	}
	return NULL;
}

static bool
is_serial(const char *type)
{
	static const char *const serials[] = { "serial",  "bigserial", "smallserial",
					       "serial2", "serial4",   "serial8" };
	for (size_t i = 0; i < sizeof(serials) / sizeof(*serials); i++)
		if (strcasecmp(type, serials[i]) == 0)
			return true;
	return false;
}

static void
column_sql(struct plan *p, struct strbuf *sb, const char *name, const char *type, bool nullable,
	   const struct plan_const *def)
{
	sb_printf(sb, "%s %s", q(p, name), type);
	if (!nullable)
		sb_puts(sb, " NOT NULL");
	if (def->kind != CONST_NONE)
		sb_printf(sb, " DEFAULT %s", const_sql(p, def));
}

/*
 * The SQL templates, one per op: the statement into sb (quote every
 * identifier with q(), every literal with lit()), the computed prechecks
 * and postchecks (pre, post), and the existing tables whose relfilenodes
 * are checked (touched). t is the step's table.
 */

static void
sql_create_view(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	sb_printf(sb, "CREATE VIEW %s AS %s", q(p, s->name), s->sql);
	pre(p, s, "NOT taskslaps.view_exists(%s)%s", lit(p, s->name), "");
	post(p, s, "taskslaps.view_exists(%s)%s", lit(p, s->name), "");
}

static void
sql_create_table(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	const char *t = s->table;

	sb_printf(sb, "CREATE TABLE %s (", q(p, t));
	for (size_t i = 0; i < s->ncoldefs; i++) {
		sb_puts(sb, i ? ", " : "");
		column_sql(p, sb, s->coldefs[i].name, s->coldefs[i].type, s->coldefs[i].nullable,
			   &s->coldefs[i].def);
	}
	if (s->primary_key.n)
		sb_printf(sb, ", PRIMARY KEY (%s)", ident_list(p, &s->primary_key));
	sb_puts(sb, ")");
	pre(p, s, "NOT taskslaps.table_exists(%s)%s", lit(p, t), "");
	post(p, s, "taskslaps.table_exists(%s)%s", lit(p, t), "");
	for (size_t i = 0; i < s->ncoldefs; i++)
		post(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t),
		     lit(p, s->coldefs[i].name));
}

/* A primary key names columns of the table. */
static bool
check_create_table(struct plan_bctx *c, const struct doc_node *n, struct plan_step *s)
{
	bool ok = true;

	for (size_t i = 0; i < s->primary_key.n; i++) {
		bool known = false;
		for (size_t k = 0; k < s->ncoldefs; k++)
			known |= !strcmp(s->coldefs[k].name, s->primary_key.v[i]);
		if (!known) {
			plan_err(c, doc_map_get(n, "primary_key"),
				 "primary_key: expected a column of the table, found '%s'",
				 s->primary_key.v[i]);
			ok = false;
		}
	}
	return ok;
}

static void
hazard_add_column(struct plan *p, struct plan_step *s)
{
	if (is_serial(s->type)) {
		s->hazard = H3;
		s->hazard_reason = "a serial column's default (nextval) is volatile: "
				   "PostgreSQL rewrites the whole table under ACCESS EXCLUSIVE";
	} else if (s->def.kind == CONST_SQL && s->def.per_row) {
		s->hazard = H3;
		s->hazard_reason =
		    arena_printf(p->arena,
				 "default_sql calls %s(), which is volatile or not "
				 "built in: PostgreSQL rewrites the whole table under "
				 "ACCESS EXCLUSIVE",
				 s->def.per_row_fn);
		s->ob.may_rewrite = true;
	} else if (!s->nullable) {
		s->hazard = H2;
		s->hazard_reason = "a NOT NULL column must be filled for every existing row";
	}
}

static void
sql_add_column(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	const char *t = s->table;

	sb_printf(sb, "ALTER TABLE %s ADD COLUMN ", q(p, t));
	column_sql(p, sb, s->name, s->type, s->nullable, &s->def);
	pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, t), "");
	pre(p, s, "NOT taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->name));
	post(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->name));
	if (!s->nullable)
		post(p, s, "taskslaps.column_not_null(%s, %s)", lit(p, t), lit(p, s->name));
	strv_push(p, &s->touched, t);
}

static void
sql_add_index_concurrently(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	const char *t = s->table;
	char *idx = sibling(p, t, s->name);

	sb_printf(sb, "CREATE %sINDEX CONCURRENTLY %s ON %s (%s)", s->unique ? "UNIQUE " : "",
		  q(p, s->name), q(p, t), ident_list(p, &s->columns));
	if (s->where)
		sb_printf(sb, " WHERE (%s%s", s->where, close_paren(s->where));
	pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, t), "");
	pre(p, s, "NOT taskslaps.index_exists(%s)%s", lit(p, idx), "");
	post(p, s, "taskslaps.index_valid(%s)%s", lit(p, idx), "");
	strv_push(p, &s->touched, t);
}

static void
sql_add_foreign_key_not_valid(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	const char *t = s->table;

	sb_printf(sb, "ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)",
		  q(p, t), q(p, s->name), ident_list(p, &s->columns), q(p, s->ref_table),
		  ident_list(p, &s->ref_columns));
	if (s->on_delete)
		sb_printf(sb, " ON DELETE %s", s->on_delete);
	sb_puts(sb, " NOT VALID");
	pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, t), "");
	pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, s->ref_table), "");
	pre(p, s, "NOT taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
	post(p, s, "taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
	strv_push(p, &s->touched, t);
	if (strcmp(s->ref_table, t) != 0)
		strv_push(p, &s->touched, s->ref_table);
}

/* As many referenced columns as referencing ones. */
static bool
check_add_foreign_key_not_valid(struct plan_bctx *c, const struct doc_node *n, struct plan_step *s)
{
	if (s->columns.n == s->ref_columns.n)
		return true;
	plan_err(c, doc_map_get(n, "ref_columns"),
		 "ref_columns: expected %zu column(s) to match columns, found %zu", s->columns.n,
		 s->ref_columns.n);
	return false;
}

static void
sql_add_check_not_valid(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	const char *t = s->table;

	sb_printf(sb, "ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s%s NOT VALID", q(p, t),
		  q(p, s->name), s->check, close_paren(s->check));
	pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, t), "");
	pre(p, s, "NOT taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
	post(p, s, "taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
	strv_push(p, &s->touched, t);
}

static void
sql_backfill_sql(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	sb_puts(sb, s->sql);
	pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, s->bf_table), "");
	strv_push(p, &s->touched, s->bf_table);
}

static void
sql_validate_constraint(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	const char *t = s->table;

	sb_printf(sb, "ALTER TABLE %s VALIDATE CONSTRAINT %s", q(p, t), q(p, s->name));
	pre(p, s, "taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
	pre(p, s, "NOT taskslaps.constraint_valid(%s, %s)", lit(p, t), lit(p, s->name));
	post(p, s, "taskslaps.constraint_valid(%s, %s)", lit(p, t), lit(p, s->name));
	strv_push(p, &s->touched, t);
}

static void
sql_set_not_null(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	const char *t = s->table;

	sb_printf(sb, "ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", q(p, t), q(p, s->column));
	pre(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->column));
	pre(p, s, "NOT taskslaps.column_not_null(%s, %s)", lit(p, t), lit(p, s->column));
	post(p, s, "taskslaps.column_not_null(%s, %s)", lit(p, t), lit(p, s->column));
	strv_push(p, &s->touched, t);
}

static void
sql_drop_column(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	const char *t = s->table;

	sb_printf(sb, "ALTER TABLE %s DROP COLUMN %s", q(p, t), q(p, s->name));
	pre(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->name));
	post(p, s, "NOT taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->name));
	strv_push(p, &s->touched, t);
}

static void
sql_drop_index_concurrently(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	sb_printf(sb, "DROP INDEX CONCURRENTLY %s", q(p, s->name));
	pre(p, s, "taskslaps.index_exists(%s)%s", lit(p, s->name), "");
	post(p, s, "NOT taskslaps.index_exists(%s)%s", lit(p, s->name), "");
}

static void
sql_drop_table(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	const char *t = s->table;

	sb_printf(sb, "DROP TABLE %s", q(p, t));
	pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, t), "");
	post(p, s, "NOT taskslaps.table_exists(%s)%s", lit(p, t), "");
}

static void
sql_rename_column(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	const char *t = s->table;

	sb_printf(sb, "ALTER TABLE %s RENAME COLUMN %s TO %s", q(p, t), q(p, s->from), q(p, s->to));
	pre(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->from));
	pre(p, s, "NOT taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->to));
	post(p, s, "NOT taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->from));
	post(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->to));
	strv_push(p, &s->touched, t);
}

static void
sql_rename_table(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	char *dst = sibling(p, s->from, s->to);

	sb_printf(sb, "ALTER TABLE %s RENAME TO %s", q(p, s->from), q(p, s->to));
	pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, s->from), "");
	pre(p, s, "NOT taskslaps.table_exists(%s)%s", lit(p, dst), "");
	post(p, s, "NOT taskslaps.table_exists(%s)%s", lit(p, s->from), "");
	post(p, s, "taskslaps.table_exists(%s)%s", lit(p, dst), "");
	strv_push(p, &s->touched, s->from);
}

/* What the parse tree says the statement does; a promise may only be stronger. */
static void
hazard_sql(struct plan *p, struct plan_step *s)
{
	enum pg_lock l = s->eff.lock > LOCK_ACCESS_SHARE ? s->eff.lock : LOCK_ACCESS_SHARE;

	(void)p;
	s->hazard = s->eff.hazard;
	s->hazard_reason = (char *)s->eff.reason;
	s->ob.lock_class_max = s->declared_lock > l ? s->declared_lock : l;
	s->ob.may_rewrite = s->eff.rewrites || s->declared_rewrite == 1;
	if (!s->eff.known) {
		/* the author's promise, proved at run time, is all there is to go by */
		if (s->declared_lock != LOCK_NONE)
			s->ob.lock_class_max = s->declared_lock;
		if (s->declared_rewrite == 0)
			s->ob.may_rewrite = false;
	}
	s->exec = s->eff.nontx ? EXEC_NONTX : EXEC_TX;
}

static void
sql_sql(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	sb_puts(sb, s->sql);
	/* CONCURRENTLY is not rolled back: the checks let a retry see what is there */
	if (s->cic_index) {
		pre(p, s, "NOT taskslaps.index_exists(%s)%s", lit(p, s->cic_index), "");
		post(p, s, "taskslaps.index_valid(%s)%s", lit(p, s->cic_index), "");
	}
	if (s->dic_index) {
		pre(p, s, "taskslaps.index_exists(%s)%s", lit(p, s->dic_index), "");
		post(p, s, "NOT taskslaps.index_exists(%s)%s", lit(p, s->dic_index), "");
	}
}

/* A statement the planner knows keeps the author's promises of lock and rewrite. */
static bool
check_sql(struct plan_bctx *c, const struct doc_node *n, struct plan_step *s)
{
	bool ok = true;

	if (!s->eff.known)
		return true;
	if (s->declared_lock != LOCK_NONE && s->declared_lock < s->eff.lock) {
		plan_err(
		    c, doc_map_get(n, "lock_class_max"),
		    "lock_class_max: the statement takes %s (%s), stronger than the %s promised",
		    pg_lock_name(s->eff.lock), s->eff.reason, pg_lock_name(s->declared_lock));
		ok = false;
	}
	if (s->declared_rewrite == 0 && s->eff.rewrites) {
		plan_err(
		    c, doc_map_get(n, "may_rewrite"),
		    "may_rewrite: the statement may rewrite a table (%s), but false was promised",
		    s->eff.reason);
		ok = false;
	}
	return ok;
}

/* the inverse-only ops (plan_inverse.c makes them) */

static void
sql_drop_view(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	sb_printf(sb, "DROP VIEW %s", q(p, s->name));
	pre(p, s, "taskslaps.view_exists(%s)%s", lit(p, s->name), "");
	post(p, s, "NOT taskslaps.view_exists(%s)%s", lit(p, s->name), "");
}

static void
sql_drop_constraint(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	const char *t = s->table;

	sb_printf(sb, "ALTER TABLE %s DROP CONSTRAINT %s", q(p, t), q(p, s->name));
	pre(p, s, "taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
	post(p, s, "NOT taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
	strv_push(p, &s->touched, t);
	if (s->ref_table && strcmp(s->ref_table, t) != 0)
		strv_push(p, &s->touched, s->ref_table);
}

static void
sql_drop_not_null(struct plan *p, struct plan_step *s, struct strbuf *sb)
{
	const char *t = s->table;

	sb_printf(sb, "ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", q(p, t), q(p, s->column));
	pre(p, s, "taskslaps.column_not_null(%s, %s)", lit(p, t), lit(p, s->column));
	post(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->column));
	post(p, s, "NOT taskslaps.column_not_null(%s, %s)", lit(p, t), lit(p, s->column));
	strv_push(p, &s->touched, t);
}

/* A field of a step: its name, kind, whether it must be written, and its member. */
#define REQ(fname, kind, member)                                                                   \
	{                                                                                          \
		fname, kind, true, .off = offsetof(struct plan_step, member)                       \
	}
#define OPT(fname, kind, member)                                                                   \
	{                                                                                          \
		fname, kind, false, .off = offsetof(struct plan_step, member)                      \
	}
/* revert_sql: read like the op's sql, into the step that undoes this one */
#define REVERT(k)                                                                                  \
	{                                                                                          \
		.name = "revert_sql", .kind = k, .inverse = true,                                  \
		.off = offsetof(struct plan_step, sql)                                             \
	}

/*
 * The op table. A step's fields besides these: op, prechecks, postchecks,
 * limits, allow (plan_step_common_fields). At most PLAN_MAXF fields; the
 * order of the fields is the order messages list them in.
 */
static const char inverse_only[] = "irreversible: an inverse is not undone in turn";

const struct plan_opdef plan_optable[OP__ALL] = {
	[OP_CREATE_VIEW] = {
		.name = "create_view", .plannable = true, .wave = WAVE_EXPAND,
		.hazard = H0, .hazard_reason = "creates a view: metadata only",
		.lock = LOCK_ACCESS_SHARE, .exec = EXEC_TX, .sql = sql_create_view,
		.fields = { REQ("name", FK_QIDENT, name), REQ("sql", FK_QUERY, sql) },
		.undo = UNDO_INVERSE, .inverse = OP_DROP_VIEW,
		.shape = { .kind = SHAPE_HOOK, .hook = plan_shape_create_view },
	},
	[OP_CREATE_TABLE] = {
		.name = "create_table", .plannable = true, .wave = WAVE_EXPAND,
		.hazard = H1, .hazard_reason = "creates a new table: nothing existing is locked",
		.lock = LOCK_ACCESS_SHARE, .exec = EXEC_TX, .sql = sql_create_table,
		.check = check_create_table,
		.fields = { REQ("table", FK_QIDENT, table), REQ("columns", FK_COLDEFS, coldefs),
			    OPT("primary_key", FK_IDENTS, primary_key) },
		.undo = UNDO_INVERSE, .inverse = OP_DROP_TABLE,
		.shape = { .kind = SHAPE_HOOK, .hook = plan_shape_create_table },
	},
	[OP_ADD_COLUMN] = {
		.name = "add_column", .plannable = true, .wave = WAVE_EXPAND,
		.hazard = H1,
		.hazard_reason = "a nullable column with a constant default: no rewrite",
		.hazard_rule = hazard_add_column,
		.lock = LOCK_ACCESS_EXCLUSIVE, .exec = EXEC_TX, .sql = sql_add_column,
		.fields = { REQ("table", FK_QIDENT, table), REQ("name", FK_IDENT, name),
			    REQ("type", FK_TYPE, type), OPT("nullable", FK_BOOL, nullable),
			    OPT("default", FK_CONST, def), OPT("default_sql", FK_DEFAULT_SQL, def) },
		.undo = UNDO_INVERSE, .inverse = OP_DROP_COLUMN,
		.shape = { .kind = SHAPE_HOOK, .hook = plan_shape_add_column },
	},
	[OP_ADD_INDEX_CONCURRENTLY] = {
		.name = "add_index_concurrently", .plannable = true, .wave = WAVE_EXPAND,
		.hazard = H1, .hazard_reason = "builds the index concurrently: writes go on",
		.lock = LOCK_SHARE_UPDATE_EXCLUSIVE, .exec = EXEC_NONTX,
		.sql = sql_add_index_concurrently,
		.fields = { REQ("table", FK_QIDENT, table), REQ("name", FK_IDENT, name),
			    REQ("columns", FK_IDENTS, columns), OPT("unique", FK_BOOL, unique),
			    OPT("where", FK_EXPR, where) },
		.undo = UNDO_INVERSE, .invert = plan_invert_index,
		.shape = { .kind = SHAPE_HOOK, .hook = plan_shape_add_index },
	},
	[OP_ADD_FOREIGN_KEY_NOT_VALID] = {
		.name = "add_foreign_key_not_valid", .plannable = true, .wave = WAVE_EXPAND,
		.hazard = H1,
		.hazard_reason = "NOT VALID: existing rows are not checked, so nothing is scanned",
		.lock = LOCK_SHARE_ROW_EXCLUSIVE, .exec = EXEC_TX,
		.sql = sql_add_foreign_key_not_valid, .check = check_add_foreign_key_not_valid,
		.fields = { REQ("table", FK_QIDENT, table), REQ("name", FK_IDENT, name),
			    REQ("columns", FK_IDENTS, columns),
			    REQ("ref_table", FK_QIDENT, ref_table),
			    REQ("ref_columns", FK_IDENTS, ref_columns),
			    OPT("on_delete", FK_ONDELETE, on_delete) },
		.undo = UNDO_INVERSE, .inverse = OP_DROP_CONSTRAINT,
		.shape = { .kind = SHAPE_HOOK, .hook = plan_shape_add_foreign_key },
	},
	[OP_ADD_CHECK_NOT_VALID] = {
		.name = "add_check_not_valid", .plannable = true, .wave = WAVE_EXPAND,
		.hazard = H1,
		.hazard_reason = "NOT VALID: existing rows are not checked, so nothing is scanned",
		.lock = LOCK_ACCESS_EXCLUSIVE, .exec = EXEC_TX, .sql = sql_add_check_not_valid,
		.fields = { REQ("table", FK_QIDENT, table), REQ("name", FK_IDENT, name),
			    REQ("check", FK_EXPR, check) },
		.undo = UNDO_INVERSE, .inverse = OP_DROP_CONSTRAINT,
		.shape = { .kind = SHAPE_HOOK, .hook = plan_shape_add_check },
	},
	[OP_BACKFILL_SQL] = {
		.name = "backfill_sql", .plannable = true, .wave = WAVE_BACKFILL,
		.hazard = H2, .hazard_reason = "updates rows: run in throttled batches",
		.lock = LOCK_ROW_EXCLUSIVE, .exec = EXEC_BATCHED, .sql = sql_backfill_sql,
		.fields = { REQ("sql", FK_UPDATE, sql), REVERT(FK_UPDATE) },
		.undo = UNDO_NOTHING, .invert = plan_invert_backfill,
		.shape = { .kind = SHAPE_HOOK, .hook = plan_shape_backfill },
	},
	[OP_VALIDATE_CONSTRAINT] = {
		.name = "validate_constraint", .plannable = true, .wave = WAVE_VALIDATE,
		.hazard = H3, .hazard_reason = "scans the whole table to validate",
		.lock = LOCK_SHARE_UPDATE_EXCLUSIVE, .exec = EXEC_TX,
		.sql = sql_validate_constraint,
		.fields = { REQ("table", FK_QIDENT, table), REQ("name", FK_IDENT, name) },
		.undo = UNDO_NOTHING,
		.undo_reason = "nothing to undo: validating changed no row and no definition "
			       "(the inverse of the step that added the constraint drops it)",
		.shape = { .kind = SHAPE_ALTER, .sub = SHAPE_SUB_VALIDATE_CONSTRAINT, .name_off = offsetof(struct plan_step, name) },
	},
	[OP_SET_NOT_NULL] = {
		.name = "set_not_null", .plannable = true, .wave = WAVE_VALIDATE,
		.hazard = H3,
		.hazard_reason = "ACCESS EXCLUSIVE while the table is scanned (unless a valid "
				 "CHECK (col IS NOT NULL) proves it)",
		.lock = LOCK_ACCESS_EXCLUSIVE, .exec = EXEC_TX, .sql = sql_set_not_null,
		.fields = { REQ("table", FK_QIDENT, table), REQ("column", FK_IDENT, column) },
		.undo = UNDO_INVERSE, .inverse = OP_DROP_NOT_NULL,
		.shape = { .kind = SHAPE_ALTER, .sub = SHAPE_SUB_SET_NOT_NULL, .name_off = offsetof(struct plan_step, column) },
	},
	[OP_DROP_COLUMN] = {
		.name = "drop_column", .plannable = true, .wave = WAVE_CONTRACT,
		.hazard = H3, .hazard_reason = "destroys data; readers of the column break",
		.lock = LOCK_ACCESS_EXCLUSIVE, .exec = EXEC_TX, .sql = sql_drop_column,
		.fields = { REQ("table", FK_QIDENT, table), REQ("name", FK_IDENT, name) },
		.undo = UNDO_IRREVERSIBLE,
		.undo_reason = "irreversible: the column and its data are gone",
		.shape = { .kind = SHAPE_ALTER, .sub = SHAPE_SUB_DROP_COLUMN, .name_off = offsetof(struct plan_step, name) },
	},
	[OP_DROP_INDEX_CONCURRENTLY] = {
		.name = "drop_index_concurrently", .plannable = true, .wave = WAVE_CONTRACT,
		.hazard = H3,
		.hazard_reason = "queries that use the index slow down or change plans",
		.lock = LOCK_SHARE_UPDATE_EXCLUSIVE, .exec = EXEC_NONTX,
		.sql = sql_drop_index_concurrently,
		.fields = { REQ("name", FK_QIDENT, name) },
		.undo = UNDO_IRREVERSIBLE,
		.undo_reason = "irreversible: the index's definition is gone (the step does not "
			       "say how it was built)",
		.shape = { .kind = SHAPE_DROP, .object = SHAPE_OBJ_INDEX, .concurrent = true, .name_off = offsetof(struct plan_step, name) },
	},
	[OP_DROP_TABLE] = {
		.name = "drop_table", .plannable = true, .wave = WAVE_CONTRACT,
		.hazard = H3, .hazard_reason = "destroys a table and its data",
		.lock = LOCK_ACCESS_EXCLUSIVE, .exec = EXEC_TX, .sql = sql_drop_table,
		.fields = { REQ("table", FK_QIDENT, table) },
		.undo = UNDO_IRREVERSIBLE,
		.undo_reason = "irreversible: the table and its rows are gone",
		.shape = { .kind = SHAPE_DROP, .object = SHAPE_OBJ_TABLE, .name_off = offsetof(struct plan_step, table) },
	},
	[OP_RENAME_COLUMN] = {
		.name = "rename_column", .plannable = true, .wave = WAVE_CONTRACT,
		.hazard = H3, .hazard_reason = "readers and writers of the old name break",
		.lock = LOCK_ACCESS_EXCLUSIVE, .exec = EXEC_TX, .sql = sql_rename_column,
		.fields = { REQ("table", FK_QIDENT, table), REQ("from", FK_IDENT, from),
			    REQ("to", FK_IDENT, to) },
		.undo = UNDO_INVERSE, .invert = plan_invert_rename_column,
		.shape = { .kind = SHAPE_HOOK, .hook = plan_shape_rename_column },
	},
	[OP_RENAME_TABLE] = {
		.name = "rename_table", .plannable = true, .wave = WAVE_CONTRACT,
		.hazard = H3, .hazard_reason = "readers and writers of the old name break",
		.lock = LOCK_ACCESS_EXCLUSIVE, .exec = EXEC_TX, .sql = sql_rename_table,
		.fields = { REQ("from", FK_QIDENT, from), REQ("to", FK_IDENT, to) },
		.undo = UNDO_INVERSE, .invert = plan_invert_rename_table,
		.shape = { .kind = SHAPE_HOOK, .hook = plan_shape_rename_table },
	},
	[OP_SQL] = {
		/* hazard, lock and exec: from what the statement does (hazard_sql) */
		.name = "sql", .plannable = true, .wave = WAVE_CONTRACT, .wave_of_place = true,
		.hazard_rule = hazard_sql, .sql = sql_sql, .check = check_sql,
		.fields = { REQ("sql", FK_STMT, sql),
			    OPT("lock_class_max", FK_LOCK, declared_lock),
			    OPT("may_rewrite", FK_TRIBOOL, declared_rewrite),
			    OPT("wave", FK_WAVE, wave), REVERT(FK_STMT) },
		.undo = UNDO_IRREVERSIBLE,
		.undo_reason = "irreversible: an sql step is undone only by its revert_sql, and it "
			       "has none",
		.shape = { .kind = SHAPE_ANY },
	},
	/*
	 * The inverse-only ops: a plan may not name them; their fields are
	 * what plan_inverse.c fills in, and what their canonical form holds.
	 */
	[OP_DROP_VIEW] = {
		.name = "drop_view", .wave = WAVE_CONTRACT,
		.hazard = H3, .hazard_reason = "readers of the view break",
		.lock = LOCK_ACCESS_EXCLUSIVE /* on the view */, .exec = EXEC_TX,
		.sql = sql_drop_view,
		.fields = { REQ("name", FK_QIDENT, name) },
		.undo = UNDO_IRREVERSIBLE,
		.undo_reason = inverse_only,
		.shape = { .kind = SHAPE_DROP, .object = SHAPE_OBJ_VIEW, .name_off = offsetof(struct plan_step, name) },
	},
	[OP_DROP_CONSTRAINT] = {
		.name = "drop_constraint", .wave = WAVE_CONTRACT,
		.hazard = H1,
		.hazard_reason = "drops a constraint: ACCESS EXCLUSIVE for an instant, nothing "
				 "is scanned",
		/* a foreign key's triggers go from both tables, each under ACCESS EXCLUSIVE */
		.lock = LOCK_ACCESS_EXCLUSIVE, .exec = EXEC_TX, .sql = sql_drop_constraint,
		.fields = { REQ("table", FK_QIDENT, table), REQ("name", FK_IDENT, name),
			    OPT("ref_table", FK_QIDENT, ref_table) },
		.undo = UNDO_IRREVERSIBLE,
		.undo_reason = inverse_only,
		.shape = { .kind = SHAPE_ALTER, .sub = SHAPE_SUB_DROP_CONSTRAINT, .name_off = offsetof(struct plan_step, name) },
	},
	[OP_DROP_NOT_NULL] = {
		.name = "drop_not_null", .wave = WAVE_CONTRACT,
		.hazard = H1,
		.hazard_reason = "drops NOT NULL: ACCESS EXCLUSIVE for an instant, nothing is "
				 "scanned",
		.lock = LOCK_ACCESS_EXCLUSIVE, .exec = EXEC_TX, .sql = sql_drop_not_null,
		.fields = { REQ("table", FK_QIDENT, table), REQ("column", FK_IDENT, column) },
		.undo = UNDO_IRREVERSIBLE,
		.undo_reason = inverse_only,
		.shape = { .kind = SHAPE_ALTER, .sub = SHAPE_SUB_DROP_NOT_NULL, .name_off = offsetof(struct plan_step, column) },
	},
};

void
plan_step_finish(struct plan *p, struct plan_step *s)
{
	const struct plan_opdef *o = plan_opdef(s->op);
	struct strbuf sb = STRBUF_INIT;

	s->exec = o->exec;
	s->hazard = o->hazard;
	s->hazard_reason = (char *)o->hazard_reason;
	s->ob.lock_class_max = o->lock;
	s->ob.may_rewrite = false;
	if (o->hazard_rule)
		o->hazard_rule(p, s);
	if (o->sql)
		o->sql(p, s, &sb);
	s->stmt = arena_strdup(p->arena, sb_str(&sb));
	sb_free(&sb);
	for (size_t i = 0; i < s->user_prechecks.n; i++)
		strv_push(p, &s->ob.prechecks, s->user_prechecks.v[i]);
	for (size_t i = 0; i < s->user_postchecks.n; i++)
		strv_push(p, &s->ob.postchecks, s->user_postchecks.v[i]);
}
