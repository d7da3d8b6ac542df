/*
 * What each op means: its wave, hazard class, SQL, locks and computed checks.
 * Adding an op touches: enum plan_op (plan.h), op_names and op_waves here,
 * the field table in plan_build.c, plan_step_finish below, and its docs.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"
#include "plan/plan_int.h"
#include "sql/sql.h"
#include "util/alloc.h"
#include "util/strbuf.h"

static const char *const op_names[OP__COUNT] = {
	[OP_CREATE_VIEW] = "create_view",
	[OP_CREATE_TABLE] = "create_table",
	[OP_ADD_COLUMN] = "add_column",
	[OP_ADD_INDEX_CONCURRENTLY] = "add_index_concurrently",
	[OP_ADD_FOREIGN_KEY_NOT_VALID] = "add_foreign_key_not_valid",
	[OP_ADD_CHECK_NOT_VALID] = "add_check_not_valid",
	[OP_BACKFILL_SQL] = "backfill_sql",
	[OP_VALIDATE_CONSTRAINT] = "validate_constraint",
	[OP_SET_NOT_NULL] = "set_not_null",
	[OP_DROP_COLUMN] = "drop_column",
	[OP_DROP_INDEX_CONCURRENTLY] = "drop_index_concurrently",
	[OP_DROP_TABLE] = "drop_table",
	[OP_RENAME_COLUMN] = "rename_column",
	[OP_RENAME_TABLE] = "rename_table",
	[OP_SQL] = "sql",
};

/* The ops only the planner writes, as inverses; never accepted in a plan file. */
static const char *const inverse_op_names[OP__ALL - OP__COUNT - 1] = {
	[OP_DROP_VIEW - OP__COUNT - 1] = "drop_view",
	[OP_DROP_CONSTRAINT - OP__COUNT - 1] = "drop_constraint",
	[OP_DROP_NOT_NULL - OP__COUNT - 1] = "drop_not_null",
};

static const enum plan_wave op_waves[OP__COUNT] = {
	[OP_CREATE_VIEW] = WAVE_EXPAND,
	[OP_CREATE_TABLE] = WAVE_EXPAND,
	[OP_ADD_COLUMN] = WAVE_EXPAND,
	[OP_ADD_INDEX_CONCURRENTLY] = WAVE_EXPAND,
	[OP_ADD_FOREIGN_KEY_NOT_VALID] = WAVE_EXPAND,
	[OP_ADD_CHECK_NOT_VALID] = WAVE_EXPAND,
	[OP_BACKFILL_SQL] = WAVE_BACKFILL,
	[OP_VALIDATE_CONSTRAINT] = WAVE_VALIDATE,
	[OP_SET_NOT_NULL] = WAVE_VALIDATE,
	[OP_DROP_COLUMN] = WAVE_CONTRACT,
	[OP_DROP_INDEX_CONCURRENTLY] = WAVE_CONTRACT,
	[OP_DROP_TABLE] = WAVE_CONTRACT,
	[OP_RENAME_COLUMN] = WAVE_CONTRACT,
	[OP_RENAME_TABLE] = WAVE_CONTRACT,
	[OP_SQL] = WAVE_CONTRACT,
};

static const char *const wave_names[WAVE__COUNT] = { "expand", "backfill", "validate",
						     "contract" };

static const char *const lock_names[] = {
	[LOCK_NONE] = "none",
	[LOCK_ACCESS_SHARE] = "AccessShareLock",
	[LOCK_ROW_SHARE] = "RowShareLock",
	[LOCK_ROW_EXCLUSIVE] = "RowExclusiveLock",
	[LOCK_SHARE_UPDATE_EXCLUSIVE] = "ShareUpdateExclusiveLock",
	[LOCK_SHARE] = "ShareLock",
	[LOCK_SHARE_ROW_EXCLUSIVE] = "ShareRowExclusiveLock",
	[LOCK_EXCLUSIVE] = "ExclusiveLock",
	[LOCK_ACCESS_EXCLUSIVE] = "AccessExclusiveLock",
};

/* The same modes as SQL's LOCK TABLE spells them. */
static const char *const lock_sql_names[] = {
	[LOCK_NONE] = "NONE",
	[LOCK_ACCESS_SHARE] = "ACCESS SHARE",
	[LOCK_ROW_SHARE] = "ROW SHARE",
	[LOCK_ROW_EXCLUSIVE] = "ROW EXCLUSIVE",
	[LOCK_SHARE_UPDATE_EXCLUSIVE] = "SHARE UPDATE EXCLUSIVE",
	[LOCK_SHARE] = "SHARE",
	[LOCK_SHARE_ROW_EXCLUSIVE] = "SHARE ROW EXCLUSIVE",
	[LOCK_EXCLUSIVE] = "EXCLUSIVE",
	[LOCK_ACCESS_EXCLUSIVE] = "ACCESS EXCLUSIVE",
};

const char *
plan_op_name(enum plan_op op)
{
	if (op < OP__COUNT)
		return op_names[op];
	if (op > OP__COUNT && op < OP__ALL)
		return inverse_op_names[op - OP__COUNT - 1];
	return "?";
}

int
plan_op_from_name(const char *name)
{
	for (int i = 0; i < OP__COUNT; i++)
		if (strcmp(op_names[i], name) == 0)
			return i;
	return -1;
}

enum plan_wave
plan_op_wave(enum plan_op op)
{
	return op_waves[op];
}

const char *
plan_wave_name(enum plan_wave w)
{
	return w < WAVE__COUNT ? wave_names[w] : "?";
}

int
plan_wave_from_name(const char *name)
{
	for (int i = 0; i < WAVE__COUNT; i++)
		if (strcmp(wave_names[i], name) == 0)
			return i;
	return -1;
}

const char *
plan_hazard_name(enum plan_hazard h)
{
	static const char *const n[] = { "H0", "H1", "H2", "H3" };
	return h <= H3 ? n[h] : "H?";
}

const char *
plan_undo_name(enum plan_undo u)
{
	static const char *const n[] = { "?", "inverse", "nothing", "irreversible" };
	return u <= UNDO_IRREVERSIBLE ? n[u] : "?";
}

const char *
plan_on_failure_name(enum plan_on_failure f)
{
	static const char *const n[] = { "stop", "rollback_wave", "rollback_plan" };
	return f <= ON_FAILURE_ROLLBACK_PLAN ? n[f] : "?";
}

const char *
plan_hazard_label(enum plan_hazard h)
{
	static const char *const n[] = { "metadata only", "additive", "touches data",
					 "blocking or destructive" };
	return h <= H3 ? n[h] : "?";
}

const char *
pg_lock_name(enum pg_lock l)
{
	return l <= LOCK_ACCESS_EXCLUSIVE ? lock_names[l] : "?";
}

int
pg_lock_from_name(const char *name)
{
	for (int i = LOCK_ACCESS_SHARE; i <= LOCK_ACCESS_EXCLUSIVE; i++) {
		const char *sqln = lock_sql_names[i];
		size_t k = 0, j = 0;

		if (strcmp(lock_names[i], name) == 0)
			return i;
		/* "ACCESS EXCLUSIVE", "access exclusive", "access_exclusive" */
		for (; name[j] && sqln[k]; j++, k++) {
			char c = name[j] == '_' ? ' ' : (char)toupper((unsigned char)name[j]);
			if (c != sqln[k])
				break;
		}
		if (!name[j] && !sqln[k])
			return i;
	}
	return -1;
}

static bool
word_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63)
		return false;
	if (!(isalpha((unsigned char)s[0]) || s[0] == '_') || (unsigned char)s[0] >= 0x80)
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_') || (unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* name or schema.name, within s[0..n) */
static bool
qualified_ok(const char *s, size_t n, bool allow_schema)
{
	const char *dot = memchr(s, '.', n);

	if (!dot)
		return word_ok(s, n);
	if (!allow_schema)
		return false;
	return word_ok(s, (size_t)(dot - s)) && word_ok(dot + 1, n - (size_t)(dot - s) - 1);
}

bool
plan_ident_ok(const char *s, bool allow_schema)
{
	return qualified_ok(s, strlen(s), allow_schema);
}

bool
plan_type_ok(const char *s)
{
	const char *p = s;
	int words = 0;

	/* words: [A-Za-z_][A-Za-z0-9_]* (optionally schema.word), separated by single spaces */
	for (;;) {
		const char *w = p;
		while (isalnum((unsigned char)*p) || *p == '_' || *p == '.')
			p++;
		if (!qualified_ok(w, (size_t)(p - w), true))
			return false;
		words++;
		if (*p == ' ' && (isalpha((unsigned char)p[1]) || p[1] == '_'))
			p++;
		else
			break;
	}
	if (*p == '(') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
		if (*p == ',') {
			p++;
			if (*p == ' ')
				p++;
			if (!isdigit((unsigned char)*p))
				return false;
			while (isdigit((unsigned char)*p))
				p++;
		}
		if (*p++ != ')')
			return false;
	}
	if (p[0] == '[' && p[1] == ']')
		p += 2;
	return *p == '\0' && words > 0 && (size_t)(p - s) <= 128;
}

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
	static const char *const serials[] = { "serial", "bigserial", "smallserial", "serial2",
					       "serial4", "serial8" };
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

void
plan_step_finish(struct plan *p, struct plan_step *s)
{
	struct strbuf sb = STRBUF_INIT;
	struct arena *a = p->arena;
	const char *t = s->table;

	s->exec = EXEC_TX;
	s->ob.may_rewrite = false;
	switch (s->op) {
	case OP_CREATE_VIEW:
		s->hazard = H0;
		s->hazard_reason = "creates a view: metadata only";
		s->ob.lock_class_max = LOCK_ACCESS_SHARE;
		sb_printf(&sb, "CREATE VIEW %s AS %s", q(p, s->name), s->sql);
		pre(p, s, "NOT taskslaps.view_exists(%s)%s", lit(p, s->name), "");
		post(p, s, "taskslaps.view_exists(%s)%s", lit(p, s->name), "");
		break;
	case OP_CREATE_TABLE:
		s->hazard = H1;
		s->hazard_reason = "creates a new table: nothing existing is locked";
		s->ob.lock_class_max = LOCK_ACCESS_SHARE;
		sb_printf(&sb, "CREATE TABLE %s (", q(p, t));
		for (size_t i = 0; i < s->ncoldefs; i++) {
			sb_puts(&sb, i ? ", " : "");
			column_sql(p, &sb, s->coldefs[i].name, s->coldefs[i].type,
				   s->coldefs[i].nullable, &s->coldefs[i].def);
		}
		if (s->primary_key.n)
			sb_printf(&sb, ", PRIMARY KEY (%s)", ident_list(p, &s->primary_key));
		sb_puts(&sb, ")");
		pre(p, s, "NOT taskslaps.table_exists(%s)%s", lit(p, t), "");
		post(p, s, "taskslaps.table_exists(%s)%s", lit(p, t), "");
		for (size_t i = 0; i < s->ncoldefs; i++)
			post(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t),
			     lit(p, s->coldefs[i].name));
		break;
	case OP_ADD_COLUMN:
		if (is_serial(s->type)) {
			s->hazard = H3;
			s->hazard_reason = "a serial column's default (nextval) is volatile: "
					   "PostgreSQL rewrites the whole table under ACCESS EXCLUSIVE";
		} else if (s->def.kind == CONST_SQL && s->def.per_row) {
			s->hazard = H3;
			s->hazard_reason = arena_printf(
				a,
				"default_sql calls %s(), which is volatile or not built in: "
				"PostgreSQL rewrites the whole table under ACCESS EXCLUSIVE",
				s->def.per_row_fn);
			s->ob.may_rewrite = true;
		} else if (!s->nullable) {
			s->hazard = H2;
			s->hazard_reason = "a NOT NULL column must be filled for every existing row";
		} else {
			s->hazard = H1;
			s->hazard_reason = "a nullable column with a constant default: no rewrite";
		}
		s->ob.lock_class_max = LOCK_ACCESS_EXCLUSIVE;
		sb_printf(&sb, "ALTER TABLE %s ADD COLUMN ", q(p, t));
		column_sql(p, &sb, s->name, s->type, s->nullable, &s->def);
		pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, t), "");
		pre(p, s, "NOT taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->name));
		post(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->name));
		if (!s->nullable)
			post(p, s, "taskslaps.column_not_null(%s, %s)", lit(p, t), lit(p, s->name));
		strv_push(p, &s->touched, t);
		break;
	case OP_ADD_INDEX_CONCURRENTLY: {
		char *idx = sibling(p, t, s->name);
		s->hazard = H1;
		s->hazard_reason = "builds the index concurrently: writes go on";
		s->exec = EXEC_NONTX;
		s->ob.lock_class_max = LOCK_SHARE_UPDATE_EXCLUSIVE;
		sb_printf(&sb, "CREATE %sINDEX CONCURRENTLY %s ON %s (%s)", s->unique ? "UNIQUE " : "",
			  q(p, s->name), q(p, t), ident_list(p, &s->columns));
		if (s->where)
			sb_printf(&sb, " WHERE (%s%s", s->where, close_paren(s->where));
		pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, t), "");
		pre(p, s, "NOT taskslaps.index_exists(%s)%s", lit(p, idx), "");
		post(p, s, "taskslaps.index_valid(%s)%s", lit(p, idx), "");
		strv_push(p, &s->touched, t);
		break;
	}
	case OP_ADD_FOREIGN_KEY_NOT_VALID:
		s->hazard = H1;
		s->hazard_reason = "NOT VALID: existing rows are not checked, so nothing is scanned";
		s->ob.lock_class_max = LOCK_SHARE_ROW_EXCLUSIVE;
		sb_printf(&sb, "ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)",
			  q(p, t), q(p, s->name), ident_list(p, &s->columns), q(p, s->ref_table),
			  ident_list(p, &s->ref_columns));
		if (s->on_delete)
			sb_printf(&sb, " ON DELETE %s", s->on_delete);
		sb_puts(&sb, " NOT VALID");
		pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, t), "");
		pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, s->ref_table), "");
		pre(p, s, "NOT taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
		post(p, s, "taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
		strv_push(p, &s->touched, t);
		if (strcmp(s->ref_table, t) != 0)
			strv_push(p, &s->touched, s->ref_table);
		break;
	case OP_ADD_CHECK_NOT_VALID:
		s->hazard = H1;
		s->hazard_reason = "NOT VALID: existing rows are not checked, so nothing is scanned";
		s->ob.lock_class_max = LOCK_ACCESS_EXCLUSIVE;
		sb_printf(&sb, "ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s%s NOT VALID", q(p, t),
			  q(p, s->name), s->check, close_paren(s->check));
		pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, t), "");
		pre(p, s, "NOT taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
		post(p, s, "taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
		strv_push(p, &s->touched, t);
		break;
	case OP_BACKFILL_SQL:
		s->hazard = H2;
		s->hazard_reason = "updates rows: run in throttled batches";
		s->exec = EXEC_BATCHED;
		s->ob.lock_class_max = LOCK_ROW_EXCLUSIVE;
		sb_puts(&sb, s->sql);
		pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, s->bf_table), "");
		strv_push(p, &s->touched, s->bf_table);
		break;
	case OP_VALIDATE_CONSTRAINT:
		s->hazard = H3;
		s->hazard_reason = "scans the whole table to validate";
		s->ob.lock_class_max = LOCK_SHARE_UPDATE_EXCLUSIVE;
		sb_printf(&sb, "ALTER TABLE %s VALIDATE CONSTRAINT %s", q(p, t), q(p, s->name));
		pre(p, s, "taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
		pre(p, s, "NOT taskslaps.constraint_valid(%s, %s)", lit(p, t), lit(p, s->name));
		post(p, s, "taskslaps.constraint_valid(%s, %s)", lit(p, t), lit(p, s->name));
		strv_push(p, &s->touched, t);
		break;
	case OP_SET_NOT_NULL:
		s->hazard = H3;
		s->hazard_reason = "ACCESS EXCLUSIVE while the table is scanned (unless a valid "
				   "CHECK (col IS NOT NULL) proves it)";
		s->ob.lock_class_max = LOCK_ACCESS_EXCLUSIVE;
		sb_printf(&sb, "ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", q(p, t), q(p, s->column));
		pre(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->column));
		pre(p, s, "NOT taskslaps.column_not_null(%s, %s)", lit(p, t), lit(p, s->column));
		post(p, s, "taskslaps.column_not_null(%s, %s)", lit(p, t), lit(p, s->column));
		strv_push(p, &s->touched, t);
		break;
	case OP_DROP_COLUMN:
		s->hazard = H3;
		s->hazard_reason = "destroys data; readers of the column break";
		s->ob.lock_class_max = LOCK_ACCESS_EXCLUSIVE;
		sb_printf(&sb, "ALTER TABLE %s DROP COLUMN %s", q(p, t), q(p, s->name));
		pre(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->name));
		post(p, s, "NOT taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->name));
		strv_push(p, &s->touched, t);
		break;
	case OP_DROP_INDEX_CONCURRENTLY:
		s->hazard = H3;
		s->hazard_reason = "queries that use the index slow down or change plans";
		s->exec = EXEC_NONTX;
		s->ob.lock_class_max = LOCK_SHARE_UPDATE_EXCLUSIVE;
		sb_printf(&sb, "DROP INDEX CONCURRENTLY %s", q(p, s->name));
		pre(p, s, "taskslaps.index_exists(%s)%s", lit(p, s->name), "");
		post(p, s, "NOT taskslaps.index_exists(%s)%s", lit(p, s->name), "");
		break;
	case OP_DROP_TABLE:
		s->hazard = H3;
		s->hazard_reason = "destroys a table and its data";
		s->ob.lock_class_max = LOCK_ACCESS_EXCLUSIVE;
		sb_printf(&sb, "DROP TABLE %s", q(p, t));
		pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, t), "");
		post(p, s, "NOT taskslaps.table_exists(%s)%s", lit(p, t), "");
		break;
	case OP_RENAME_COLUMN:
		s->hazard = H3;
		s->hazard_reason = "readers and writers of the old name break";
		s->ob.lock_class_max = LOCK_ACCESS_EXCLUSIVE;
		sb_printf(&sb, "ALTER TABLE %s RENAME COLUMN %s TO %s", q(p, t), q(p, s->from),
			  q(p, s->to));
		pre(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->from));
		pre(p, s, "NOT taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->to));
		post(p, s, "NOT taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->from));
		post(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->to));
		strv_push(p, &s->touched, t);
		break;
	case OP_RENAME_TABLE: {
		char *dst = sibling(p, s->from, s->to);
		s->hazard = H3;
		s->hazard_reason = "readers and writers of the old name break";
		s->ob.lock_class_max = LOCK_ACCESS_EXCLUSIVE;
		sb_printf(&sb, "ALTER TABLE %s RENAME TO %s", q(p, s->from), q(p, s->to));
		pre(p, s, "taskslaps.table_exists(%s)%s", lit(p, s->from), "");
		pre(p, s, "NOT taskslaps.table_exists(%s)%s", lit(p, dst), "");
		post(p, s, "NOT taskslaps.table_exists(%s)%s", lit(p, s->from), "");
		post(p, s, "taskslaps.table_exists(%s)%s", lit(p, dst), "");
		strv_push(p, &s->touched, s->from);
		break;
	}
	case OP_SQL: {
		/* what the parse tree says it does; a promise may only be stronger */
		enum pg_lock l = s->eff.lock > LOCK_ACCESS_SHARE ? s->eff.lock : LOCK_ACCESS_SHARE;
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
		sb_puts(&sb, s->sql);
		/* CONCURRENTLY is not rolled back: the checks let a retry see what is there */
		if (s->cic_index) {
			pre(p, s, "NOT taskslaps.index_exists(%s)%s", lit(p, s->cic_index), "");
			post(p, s, "taskslaps.index_valid(%s)%s", lit(p, s->cic_index), "");
		}
		if (s->dic_index) {
			pre(p, s, "taskslaps.index_exists(%s)%s", lit(p, s->dic_index), "");
			post(p, s, "NOT taskslaps.index_exists(%s)%s", lit(p, s->dic_index), "");
		}
		break;
	}
	/* the inverse-only ops (plan_inverse.c makes them) */
	case OP_DROP_VIEW:
		s->hazard = H3;
		s->hazard_reason = "readers of the view break";
		s->ob.lock_class_max = LOCK_ACCESS_EXCLUSIVE; /* on the view */
		sb_printf(&sb, "DROP VIEW %s", q(p, s->name));
		pre(p, s, "taskslaps.view_exists(%s)%s", lit(p, s->name), "");
		post(p, s, "NOT taskslaps.view_exists(%s)%s", lit(p, s->name), "");
		break;
	case OP_DROP_CONSTRAINT:
		s->hazard = H1;
		s->hazard_reason = "drops a constraint: ACCESS EXCLUSIVE for an instant, nothing "
				   "is scanned";
		/* a foreign key's triggers go from both tables, each under ACCESS EXCLUSIVE */
		s->ob.lock_class_max = LOCK_ACCESS_EXCLUSIVE;
		sb_printf(&sb, "ALTER TABLE %s DROP CONSTRAINT %s", q(p, t), q(p, s->name));
		pre(p, s, "taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
		post(p, s, "NOT taskslaps.constraint_exists(%s, %s)", lit(p, t), lit(p, s->name));
		strv_push(p, &s->touched, t);
		if (s->ref_table && strcmp(s->ref_table, t) != 0)
			strv_push(p, &s->touched, s->ref_table);
		break;
	case OP_DROP_NOT_NULL:
		s->hazard = H1;
		s->hazard_reason = "drops NOT NULL: ACCESS EXCLUSIVE for an instant, nothing is "
				   "scanned";
		s->ob.lock_class_max = LOCK_ACCESS_EXCLUSIVE;
		sb_printf(&sb, "ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", q(p, t),
			  q(p, s->column));
		pre(p, s, "taskslaps.column_not_null(%s, %s)", lit(p, t), lit(p, s->column));
		post(p, s, "taskslaps.column_exists(%s, %s)", lit(p, t), lit(p, s->column));
		post(p, s, "NOT taskslaps.column_not_null(%s, %s)", lit(p, t), lit(p, s->column));
		strv_push(p, &s->touched, t);
		break;
	case OP__COUNT:
	case OP__ALL:
		break;
	}
	s->stmt = arena_strdup(a, sb_str(&sb));
	sb_free(&sb);
	for (size_t i = 0; i < s->user_prechecks.n; i++)
		strv_push(p, &s->ob.prechecks, s->user_prechecks.v[i]);
	for (size_t i = 0; i < s->user_postchecks.n; i++)
		strv_push(p, &s->ob.postchecks, s->user_postchecks.v[i]);
}
