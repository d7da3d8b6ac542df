/*
 * The fields of a plan's maps: each kind of value read, checked and stored
 * where its table says (struct plan_field: the op table in plan_ops.c, the
 * fields every step has, a column's, a limit's). Every error names the field
 * and says what was expected and what was found, at the value's position.
 */
#include <errno.h>
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

#define IDENT_RULE "a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes)"
#define QIDENT_RULE                                                                                \
	"a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes, optionally schema.name)"

static const char *
get_string(struct plan_bctx *c, const struct doc_node *n, const char *field, const char *what)
{
	if (n->kind != DOC_STRING) {
		plan_err(c, n, "%s: expected %s, found %s", field, what, plan_found(c, n));
		return NULL;
	}
	return n->str;
}

static char *
get_ident(struct plan_bctx *c, const struct doc_node *n, const char *field, bool qualified)
{
	const char *s = get_string(c, n, field, qualified ? QIDENT_RULE : IDENT_RULE);

	if (!s)
		return NULL;
	if (!plan_ident_ok(s, qualified)) {
		plan_err(c, n, "%s: expected %s, found %s", field,
			 qualified ? QIDENT_RULE : IDENT_RULE, plan_found(c, n));
		return NULL;
	}
	return arena_strdup(c->p->arena, s);
}

static bool
get_bool(struct plan_bctx *c, const struct doc_node *n, const char *field, bool *out)
{
	if (n->kind != DOC_BOOL) {
		plan_err(c, n, "%s: expected a boolean (true or false), found %s", field,
			 plan_found(c, n));
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
void
plan_sql_err(struct plan_bctx *c, const struct doc_node *n, const char *field, const char *s,
	     const struct sql_msg *m)
{
	plan_err(c, n, "%s: %s (at character %zu of the SQL)", field, m->text,
		 char_number(s, m->off));
}

/*
 * An SQL expression, read by PostgreSQL's parser: one value and nothing
 * around it. Checks (no_volatile) may not call a volatile built-in function.
 */
static char *
get_expr(struct plan_bctx *c, const struct doc_node *n, const char *field, bool no_volatile)
{
	const char *s = get_string(c, n, field, "an SQL expression");
	struct sql_msg m;

	if (!s)
		return NULL;
	if (!sql_check_expr(s, no_volatile, &m)) {
		plan_sql_err(c, n, field, s, &m);
		return NULL;
	}
	return arena_strdup(c->p->arena, s);
}

/*
 * One SQL statement, read by PostgreSQL's parser; the text kept without its
 * `;`. *t holds the parse tree on success (free with sql_tree_free).
 */
char *
plan_get_stmt(struct plan_bctx *c, const struct doc_node *n, const char *field, struct sql_tree *t,
	      const struct Node **stmt)
{
	const char *s = get_string(c, n, field, "an SQL statement");
	struct sql_msg m;
	size_t len;

	if (!s)
		return NULL;
	if (!sql_check_stmt(s, t, stmt, &len, &m)) {
		plan_sql_err(c, n, field, s, &m);
		return NULL;
	}
	return arena_strndup(c->p->arena, s, len);
}

/* A column type, read by PostgreSQL's parser: a type name and no column clause. */
static char *
get_type(struct plan_bctx *c, const struct doc_node *n, const char *field)
{
	const char *t = get_string(c, n, field, "a type name");
	struct sql_msg m;
	bool serial;

	if (!t)
		return NULL;
	if (!sql_check_type(t, &serial, &m)) {
		plan_err(c, n, "%s: %s (at character %zu of the type)", field, m.text,
			 char_number(t, m.off));
		return NULL;
	}
	if (!plan_type_ok(t)) {
		plan_err(c, n,
			 "%s: expected a plain type name (words, optional (n[,m]), optional []; no "
			 "quotes, semicolons or comments), found %s",
			 field, plan_found(c, n));
		return NULL;
	}
	return arena_strdup(c->p->arena, t);
}

/* default_sql: an expression, classified by the volatility of what it calls. */
static bool
get_default_sql(struct plan_bctx *c, const struct doc_node *n, const char *field,
		struct plan_const *out)
{
	const char *s = get_string(c, n, field, "an SQL expression");
	enum sql_volatility vol;
	char fn[64];
	struct sql_msg m;

	if (!s)
		return false;
	if (out->kind != CONST_NONE) {
		plan_err(c, n, "%s: expected either default or default_sql, found both", field);
		return false;
	}
	if (!sql_check_default(s, &vol, fn, sizeof(fn), &m)) {
		plan_sql_err(c, n, field, s, &m);
		return false;
	}
	out->kind = CONST_SQL;
	out->text = arena_strdup(c->p->arena, s);
	out->per_row = vol != SQL_IMMUTABLE_OR_STABLE;
	out->per_row_fn = out->per_row ? arena_strdup(c->p->arena, fn) : NULL;
	return true;
}

static bool
get_idents(struct plan_bctx *c, const struct doc_node *n, const char *field, struct plan_strv *out)
{
	bool ok = true;

	if (n->kind != DOC_SEQ) {
		plan_err(c, n, "%s: expected a list of column names, found %s", field,
			 plan_found(c, n));
		return false;
	}
	if (n->n == 0) {
		plan_err(c, n, "%s: expected at least one column name, found an empty list", field);
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
				plan_err(c, n->items[i], "%s: column '%s' is listed twice", field,
					 s);
				ok = false;
			}
		}
		out->v[out->n++] = s;
	}
	return ok;
}

static bool
get_checks(struct plan_bctx *c, const struct doc_node *n, const char *field, struct plan_strv *out)
{
	bool ok = true;

	if (n->kind != DOC_SEQ) {
		plan_err(c, n, "%s: expected a list of SQL boolean expressions, found %s", field,
			 plan_found(c, n));
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
get_const(struct plan_bctx *c, const struct doc_node *n, const char *field, struct plan_const *out)
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
			plan_err(c, n, "%s: expected a number, found %s", field, plan_found(c, n));
			return false;
		}
		out->kind = CONST_NUMBER;
		out->text = arena_strdup(c->p->arena, n->str[0] == '+' ? n->str + 1 : n->str);
		return true;
	}
	case DOC_STRING:
		if (sql_string_looks_evaluated(n->str)) {
			plan_err(
			    c, n,
			    "%s: expected a constant, found %s, which PostgreSQL would store as "
			    "the text itself or freeze at the moment of the migration; write an "
			    "expression to evaluate as default_sql",
			    field, plan_found(c, n));
			return false;
		}
		out->kind = CONST_STRING;
		out->text = arena_strdup(c->p->arena, n->str);
		return true;
	default:
		plan_err(c, n,
			 "%s: expected a constant (a string, number, boolean or null), found %s; "
			 "a default must be a constant so that adding the column does not rewrite "
			 "the table",
			 field, plan_found(c, n));
		return false;
	}
}

static bool
get_int(struct plan_bctx *c, const struct doc_node *n, const char *field, int64_t min, int64_t max,
	int64_t *out)
{
	long long v;
	char *end;

	if (n->kind != DOC_INT) {
		plan_err(c, n, "%s: expected a whole number from %lld to %lld, found %s", field,
			 (long long)min, (long long)max, plan_found(c, n));
		return false;
	}
	errno = 0;
	v = strtoll(n->str, &end, 10);
	if (*end || errno || v < min || v > max) {
		plan_err(c, n, "%s: expected a whole number from %lld to %lld, found %s", field,
			 (long long)min, (long long)max, plan_found(c, n));
		return false;
	}
	*out = v;
	return true;
}

void
plan_limits_unset(struct plan_limits *l)
{
	l->max_lock_ms = l->max_stmt_ms = l->rows_per_second = l->batch_size = -1;
}

/* A limit's bounds; -1 (unset) is not among them. */
static const struct plan_field limit_fields[] = {
	{ "max_lock_ms", FK_INT, .off = offsetof(struct plan_limits, max_lock_ms), .min = 1,
	  .max = 86400000 },
	{ "max_stmt_ms", FK_INT, .off = offsetof(struct plan_limits, max_stmt_ms), .min = 0,
	  .max = 86400000 },
	{ "rows_per_second", FK_INT, .off = offsetof(struct plan_limits, rows_per_second), .min = 0,
	  .max = 1000000000 },
	{ "batch_size", FK_INT, .off = offsetof(struct plan_limits, batch_size), .min = 1,
	  .max = 1000000 },
};

bool
plan_get_limits(struct plan_bctx *c, const struct doc_node *n, struct plan_limits *l)
{
	bool ok = true;

	plan_limits_unset(l);
	if (n->kind != DOC_MAP) {
		plan_err(c, n,
			 "limits: expected a map of max_lock_ms, max_stmt_ms, rows_per_second, "
			 "batch_size, found %s",
			 plan_found(c, n));
		return false;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		const struct plan_field *f =
		    plan_field_find(limit_fields, sizeof(limit_fields) / sizeof(*limit_fields), k);

		if (!f) {
			plan_err(c, n->keys[i],
				 "limits: unknown field '%s' (expected max_lock_ms, max_stmt_ms, "
				 "rows_per_second or batch_size)",
				 k);
			ok = false;
			continue;
		}
		ok &= plan_field_store(c, NULL, l, f, arena_printf(c->a, "limits.%s", k),
				       n->items[i]);
	}
	return ok;
}

/* A column of create_table. */
const struct plan_field plan_coldef_fields[PLAN_NCOLDEF_FIELDS] = {
	{ "name", FK_IDENT, true, .off = offsetof(struct plan_coldef, name) },
	{ "type", FK_TYPE, true, .off = offsetof(struct plan_coldef, type) },
	{ "nullable", FK_BOOL, false, .off = offsetof(struct plan_coldef, nullable) },
	{ "default", FK_CONST, false, .off = offsetof(struct plan_coldef, def) },
	{ "default_sql", FK_DEFAULT_SQL, false, .off = offsetof(struct plan_coldef, def) },
};

static bool
get_coldefs(struct plan_bctx *c, const struct doc_node *n, struct plan_step *s)
{
	bool ok = true;

	if (n->kind != DOC_SEQ || n->n == 0) {
		plan_err(c, n,
			 "columns: expected a non-empty list of {name, type, nullable, default}, "
			 "found %s",
			 n->kind == DOC_SEQ ? "an empty list" : plan_found(c, n));
		return false;
	}
	s->coldefs = arena_alloc(c->p->arena, n->n * sizeof(*s->coldefs));
	for (size_t i = 0; i < n->n; i++) {
		const struct doc_node *m = n->items[i];
		struct plan_coldef *cd = &s->coldefs[s->ncoldefs];
		bool have_name = false, have_type = false;

		if (m->kind != DOC_MAP) {
			plan_err(
			    c, m,
			    "columns: expected a map {name, type, nullable, default}, found %s",
			    plan_found(c, m));
			ok = false;
			continue;
		}
		/* a column refused before leaves its slot to this one: start it afresh */
		memset(cd, 0, sizeof(*cd));
		cd->nullable = true;
		for (size_t k = 0; k < m->n; k++) {
			const char *key = m->keys[k]->str;
			const struct plan_field *f =
			    plan_field_find(plan_coldef_fields, PLAN_NCOLDEF_FIELDS, key);

			if (!f) {
				plan_err(
				    c, m->keys[k],
				    "columns: unknown field '%s' (expected name, type, nullable, "
				    "default, default_sql)",
				    key);
				ok = false;
				continue;
			}
			ok &= plan_field_store(c, s, cd, f, arena_printf(c->a, "columns.%s", key),
					       m->items[k]);
		}
		for (size_t k = 0; k < PLAN_NCOLDEF_FIELDS; k++) {
			if (plan_coldef_fields[k].required &&
			    !doc_map_get(m, plan_coldef_fields[k].name)) {
				plan_err(c, m, "columns: missing field '%s'",
					 plan_coldef_fields[k].name);
				ok = false;
			}
		}
		have_name = cd->name != NULL;
		have_type = cd->type != NULL;
		if (have_name) {
			for (size_t k = 0; k < s->ncoldefs; k++)
				if (strcmp(s->coldefs[k].name, cd->name) == 0) {
					plan_err(c, m, "columns: column '%s' is defined twice",
						 cd->name);
					ok = false;
				}
		}
		if (have_name && have_type)
			s->ncoldefs++;
	}
	return ok;
}

/* allow: [{rule: S001 | index-not-concurrent, reason: ...}, ...] */
static bool
get_allows(struct plan_bctx *c, const struct doc_node *n, struct plan_step *s)
{
	bool ok = true;

	if (n->kind != DOC_SEQ || n->n == 0) {
		plan_err(c, n, "allow: expected a list of {rule, reason}, found %s",
			 plan_found(c, n));
		return false;
	}
	s->allows = arena_alloc(c->p->arena, n->n * sizeof(*s->allows));
	for (size_t i = 0; i < n->n; i++) {
		const struct doc_node *m = n->items[i], *r, *why;
		int id;

		if (m->kind != DOC_MAP) {
			plan_err(c, m, "allow: expected a map {rule, reason}, found %s",
				 plan_found(c, m));
			ok = false;
			continue;
		}
		for (size_t k = 0; k < m->n; k++)
			if (strcmp(m->keys[k]->str, "rule") && strcmp(m->keys[k]->str, "reason")) {
				plan_err(c, m->keys[k],
					 "allow: unknown field '%s' (expected rule, reason)",
					 m->keys[k]->str);
				ok = false;
			}
		r = doc_map_get(m, "rule");
		why = doc_map_get(m, "reason");
		if (!r || !why) {
			plan_err(
			    c, m,
			    "allow: missing field '%s' (a finding is silenced only with a reason)",
			    r ? "reason" : "rule");
			ok = false;
			continue;
		}
		if (r->kind != DOC_STRING || (id = plan_rule_find(r->str)) < 0) {
			plan_err(c, r,
				 "allow: rule: expected a rule id (S001 ...) or name, found %s",
				 plan_found(c, r));
			ok = false;
			continue;
		}
		if (why->kind != DOC_STRING || !why->str[0]) {
			plan_err(c, why, "allow: reason: expected a non-empty string, found %s",
				 plan_found(c, why));
			ok = false;
			continue;
		}
		s->allows[s->nallows++] =
		    (struct plan_allow){ (enum plan_rule_id)id, arena_strdup(c->p->arena, why->str),
					 m->line, m->col };
	}
	return ok;
}

const struct plan_field plan_step_common_fields[4] = {
	{ "prechecks", FK_CHECKS, .off = offsetof(struct plan_step, user_prechecks) },
	{ "postchecks", FK_CHECKS, .off = offsetof(struct plan_step, user_postchecks) },
	{ "limits", FK_LIMITS, .off = offsetof(struct plan_step, limits) },
	{ "allow", FK_ALLOWS, .off = offsetof(struct plan_step, allows) },
};

const struct plan_field *
plan_field_find(const struct plan_field *v, size_t n, const char *key)
{
	for (size_t i = 0; i < n && v[i].name; i++)
		if (!strcmp(v[i].name, key))
			return &v[i];
	return NULL;
}

size_t
plan_fkind_size(enum plan_fkind k)
{
	switch (k) {
	case FK_IDENT:
	case FK_QIDENT:
	case FK_TYPE:
	case FK_EXPR:
	case FK_QUERY:
	case FK_STMT:
	case FK_UPDATE:
	case FK_ONDELETE: return sizeof(char *);
	case FK_BOOL: return sizeof(bool);
	case FK_TRIBOOL: return sizeof(int);
	case FK_CONST:
	case FK_DEFAULT_SQL: return sizeof(struct plan_const);
	case FK_IDENTS:
	case FK_CHECKS: return sizeof(struct plan_strv);
	case FK_COLDEFS: return sizeof(struct plan_coldef *);
	case FK_LOCK: return sizeof(enum pg_lock);
	case FK_WAVE: return sizeof(enum plan_wave);
	case FK_INT: return sizeof(int64_t);
	case FK_LIMITS: return sizeof(struct plan_limits);
	case FK_ALLOWS: return sizeof(struct plan_allow *);
	case FK__COUNT: break;
	}
	return 0;
}

/* The value's place: f->off bytes into base, as a T. */
#define AT(T) ((T *)(void *)((char *)base + f->off))

static bool
get_lock(struct plan_bctx *c, const struct doc_node *v, const char *label, enum pg_lock *out)
{
	const char *l = get_string(c, v, label, "a lock mode");
	int lk = l ? pg_lock_from_name(l) : -1;

	if (lk < 0) {
		if (l)
			plan_err(
			    c, v,
			    "lock_class_max: expected a lock mode (AccessShareLock ... "
			    "AccessExclusiveLock, or ACCESS SHARE ... ACCESS EXCLUSIVE), found %s",
			    plan_found(c, v));
		return false;
	}
	*out = (enum pg_lock)lk;
	return true;
}

static bool
get_on_delete(struct plan_bctx *c, const struct doc_node *v, const char *label, char **out)
{
	static const char *const acts[] = { "NO ACTION", "RESTRICT", "CASCADE", "SET NULL",
					    "SET DEFAULT" };
	const char *a = get_string(c, v, label, "an action");

	if (!a)
		return false;
	for (size_t i = 0; i < sizeof(acts) / sizeof(*acts); i++) {
		if (strcasecmp(a, acts[i]) == 0) {
			*out = (char *)acts[i];
			return true;
		}
	}
	plan_err(c, v,
		 "on_delete: expected NO ACTION, RESTRICT, CASCADE, SET NULL or SET DEFAULT, "
		 "found %s",
		 plan_found(c, v));
	return false;
}

static bool
get_wave(struct plan_bctx *c, const struct doc_node *v, const char *label, enum plan_wave *out)
{
	const char *w = get_string(c, v, label, "a wave name");
	int wi = w ? plan_wave_from_name(w) : -1;

	if (wi < 0) {
		if (w)
			plan_err(c, v,
				 "wave: expected expand, backfill, validate or contract, found %s",
				 plan_found(c, v));
		return false;
	}
	*out = (enum plan_wave)wi;
	return true;
}

/* A char * kind's value stored at its place; false (nothing stored) when it is NULL. */
static bool
put_str(void *place, char *v)
{
	if (!v)
		return false;
	*(char **)place = v;
	return true;
}

bool
plan_field_store(struct plan_bctx *c, struct plan_step *s, void *base, const struct plan_field *f,
		 const char *label, const struct doc_node *v)
{
	bool b;

	/* revert_sql is read like the op's own sql, into the step that undoes this one */
	if (f->inverse)
		base = s = plan_inverse_revert(c->p, s, v->line, v->col);
	switch (f->kind) {
	case FK_IDENT:
	case FK_QIDENT: return put_str(AT(char *), get_ident(c, v, label, f->kind == FK_QIDENT));
	case FK_TYPE: return put_str(AT(char *), get_type(c, v, label));
	case FK_BOOL: return get_bool(c, v, label, AT(bool));
	case FK_TRIBOOL:
		if (!get_bool(c, v, label, &b))
			return false;
		*AT(int) = b;
		return true;
	case FK_EXPR: return put_str(AT(char *), get_expr(c, v, label, true));
	case FK_QUERY: return plan_read_query(c, v, label, AT(char *));
	case FK_STMT: return plan_read_stmt(c, s, v, label, AT(char *));
	case FK_UPDATE: return plan_read_update(c, s, v, label, AT(char *));
	case FK_CONST:
		if (AT(struct plan_const)->kind != CONST_NONE) {
			plan_err(c, v, "%s: expected either default or default_sql, found both",
				 label);
			return false;
		}
		return get_const(c, v, label, AT(struct plan_const));
	case FK_DEFAULT_SQL: return get_default_sql(c, v, label, AT(struct plan_const));
	case FK_IDENTS: return get_idents(c, v, label, AT(struct plan_strv));
	case FK_COLDEFS: return get_coldefs(c, v, s);
	case FK_LOCK: return get_lock(c, v, label, AT(enum pg_lock));
	case FK_ONDELETE: return get_on_delete(c, v, label, AT(char *));
	case FK_WAVE: return get_wave(c, v, label, AT(enum plan_wave));
	case FK_INT: return get_int(c, v, label, f->min, f->max, AT(int64_t));
	case FK_CHECKS: return get_checks(c, v, label, AT(struct plan_strv));
	case FK_LIMITS: return plan_get_limits(c, v, AT(struct plan_limits));
	case FK_ALLOWS: return get_allows(c, v, s);
	case FK__COUNT: break;
	}
	return false;
}
