#include "plan/plan_lint.h"

#include <ctype.h>
#include <string.h>

static bool
has_upper(const char *s)
{
	for (; s && *s; s++)
		if (isupper((unsigned char)*s))
			return true;
	return false;
}

/* The first identifier of v that has capitals, or NULL. */
static const char *
upper_in(const struct plan_strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		if (has_upper(v->v[i]))
			return v->v[i];
	return NULL;
}

/* Whether this plan adds the constraint table.name as a foreign key. */
static bool
adds_foreign_key(const struct plan *p, const char *table, const char *name)
{
	const struct plan_wave_s *e = &p->waves[WAVE_EXPAND];

	for (size_t i = 0; i < e->nsteps; i++)
		if (e->steps[i].op == OP_ADD_FOREIGN_KEY_NOT_VALID &&
		    !strcmp(e->steps[i].table, table) && !strcmp(e->steps[i].name, name))
			return true;
	return false;
}

/*
 * Whether the plan validates a constraint on table before step `before` that
 * may be a CHECK (a foreign key it adds itself cannot prove NOT NULL).
 */
static bool
check_validated_before(const struct plan *p, const char *table, const struct plan_step *before)
{
	const struct plan_wave_s *v = &p->waves[WAVE_VALIDATE];

	for (size_t i = 0; i < v->nsteps && &v->steps[i] != before; i++)
		if (v->steps[i].op == OP_VALIDATE_CONSTRAINT && !strcmp(v->steps[i].table, table) &&
		    !adds_foreign_key(p, table, v->steps[i].name))
			return true;
	return false;
}

/*
 * The findings of an sql step's statement, by rule: "[S001 index-not-
 * concurrent] what; fix: how". One silenced with `allow:` is a note that
 * says so and why, never dropped.
 */
static void
sql_findings(const struct plan *p, const struct plan_step *s, struct diags *d)
{
	for (int r = 0; r < PLAN_RULE__COUNT; r++) {
		const struct plan_rule *ru = plan_rule((enum plan_rule_id)r);
		const char *al;

		if (!(s->eff.rules & (1u << r)))
			continue;
		al = plan_step_allowed(s, (enum plan_rule_id)r);
		if (al)
			diags_add(d, DIAG_NOTE, p->path, s->line, s->col,
				  "sql: [%s %s] allowed: %s (%s)", ru->id, ru->name, al, ru->what);
		else
			diags_add(d, DIAG_WARNING, p->path, s->line, s->col,
				  "sql: [%s %s] %s; fix: %s", ru->id, ru->name, ru->what, ru->fix);
	}
	if (!s->eff.known)
		diags_add(d, DIAG_WARNING, p->path, s->line, s->col,
			  "sql: %s; it is held to AccessExclusiveLock and may rewrite. Declare "
			  "lock_class_max and may_rewrite: false if it does less, so the executor "
			  "can prove it",
			  s->hazard_reason);
	/* an allow that silences nothing is a slip */
	for (size_t k = 0; k < s->nallows; k++)
		if (!(s->eff.rules & (1u << s->allows[k].rule)))
			diags_add(d, DIAG_WARNING, p->path, s->allows[k].line, s->allows[k].col,
				  "allow: rule %s (%s) has no finding on this step",
				  plan_rule(s->allows[k].rule)->id,
				  plan_rule(s->allows[k].rule)->name);
}

size_t
plan_lint(const struct plan *p, struct diags *d)
{
	size_t n = d->nwarnings;

	for (int w = 0; w < WAVE__COUNT; w++) {
		for (size_t i = 0; i < p->waves[w].nsteps; i++) {
			const struct plan_step *s = &p->waves[w].steps[i];
			const char *names[] = { s->table,
						s->name,
						s->column,
						s->from,
						s->to,
						s->ref_table,
						upper_in(&s->columns),
						upper_in(&s->ref_columns),
						upper_in(&s->primary_key),
						NULL };

			for (size_t k = 0; k < s->ncoldefs && !names[9]; k++)
				if (has_upper(s->coldefs[k].name))
					names[9] = s->coldefs[k].name;
			for (size_t k = 0; k < sizeof(names) / sizeof(*names); k++) {
				if (has_upper(names[k])) {
					diags_add(
					    d, DIAG_WARNING, p->path, s->line, s->col,
					    "%s: '%s' has capitals; identifiers are quoted as "
					    "written, so it is case-sensitive",
					    plan_op_name(s->op), names[k]);
					break;
				}
			}
			switch (s->op) {
			case OP_ADD_COLUMN:
				if (s->hazard == H3)
					diags_add(
					    d, DIAG_WARNING, p->path, s->line, s->col,
					    "add_column: %s rewrites the table under ACCESS "
					    "EXCLUSIVE; add a nullable integer column and fill "
					    "it by backfill instead",
					    s->type);
				else if (!s->nullable && s->def.kind == CONST_NONE)
					diags_add(
					    d, DIAG_WARNING, p->path, s->line, s->col,
					    "add_column: NOT NULL without a default fails on a "
					    "table that has rows; add it nullable, backfill, "
					    "then set_not_null");
				break;
			case OP_SET_NOT_NULL:
				if (!check_validated_before(p, s->table, s))
					diags_add(d, DIAG_WARNING, p->path, s->line, s->col,
						  "set_not_null: scans %s under ACCESS EXCLUSIVE; "
						  "add_check_not_valid (%s IS NOT NULL) and "
						  "validate_constraint first make it instant",
						  s->table, s->column);
				break;
			case OP_SQL: sql_findings(p, s, d); break;
			default: break;
			}
		}
	}
	return d->nwarnings - n;
}
