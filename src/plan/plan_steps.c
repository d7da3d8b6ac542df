/*
 * Steps and waves: each step read by its op's entry in the op table
 * (plan_ops.c), each wave by its name, in the order waves run.
 */
#include <stdbool.h>
#include <string.h>

#include "plan/doc.h"
#include "plan/plan.h"
#include "plan/plan_int.h"
#include "util/alloc.h"
#include "util/strbuf.h"

#define NCOMMON (sizeof(plan_step_common_fields) / sizeof(*plan_step_common_fields))

static char *
field_list(struct plan_bctx *c, enum plan_op op)
{
	const struct plan_opdef *o = plan_opdef(op);
	struct strbuf sb = STRBUF_INIT;
	char *out;

	for (int i = 0; i < PLAN_MAXF && o->fields[i].name; i++)
		sb_printf(&sb, "%s, ", o->fields[i].name);
	sb_puts(&sb, "prechecks, postchecks, limits");
	out = arena_strdup(c->a, sb_str(&sb));
	sb_free(&sb);
	return out;
}

static char *
op_list(struct plan_bctx *c)
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
build_step(struct plan_bctx *c, const struct doc_node *n, int wave, struct plan_step *s)
{
	const struct doc_node *opn;
	const struct plan_opdef *o;
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
	plan_limits_unset(&s->limits);
	if (n->kind != DOC_MAP) {
		plan_err(c, n, "step: expected a map with an 'op' field, found %s",
			 plan_found(c, n));
		return false;
	}
	opn = doc_map_get(n, "op");
	if (!opn) {
		plan_err(c, n, "step: missing field 'op' (one of: %s)", op_list(c));
		return false;
	}
	if (opn->kind != DOC_STRING) {
		plan_err(c, opn, "op: expected one of: %s; found %s", op_list(c),
			 plan_found(c, opn));
		return false;
	}
	op = plan_op_from_name(opn->str);
	if (op < 0) {
		plan_err(c, opn, "op: unknown op '%s' (expected one of: %s)", opn->str, op_list(c));
		return false;
	}
	s->op = (enum plan_op)op;
	o = plan_opdef(s->op);
	s->wave = o->wave_of_place && wave >= 0 ? (enum plan_wave)wave : o->wave;

	for (size_t i = 0; i < n->n; i++) {
		const char *key = n->keys[i]->str;
		const struct doc_node *v = n->items[i];
		const struct plan_field *f;

		if (!strcmp(key, "op"))
			continue;
		f = plan_field_find(plan_step_common_fields, NCOMMON, key);
		if (!f)
			f = plan_field_find(o->fields, PLAN_MAXF, key);
		if (!f) {
			plan_err(c, n->keys[i], "%s: unknown field '%s' (expected %s)", opn->str,
				 key, field_list(c, s->op));
			ok = false;
			continue;
		}
		if (f->kind == FK_WAVE)
			wave_field = true;
		if (!plan_field_store(c, s, s, f, key, v))
			ok = false;
	}
	for (int k = 0; k < PLAN_MAXF && o->fields[k].name; k++) {
		if (o->fields[k].required && !doc_map_get(n, o->fields[k].name)) {
			plan_err(c, n, "%s: missing field '%s'", opn->str, o->fields[k].name);
			ok = false;
		}
	}
	if (wave >= 0 && s->wave != (enum plan_wave)wave) {
		if (wave_field)
			plan_err(c, doc_map_get(n, "wave"),
				 "%s: its wave: field says '%s' but the step is in the '%s' wave",
				 opn->str, plan_wave_name(s->wave),
				 plan_wave_name((enum plan_wave)wave));
		else
			plan_err(c, opn, "%s belongs to the %s wave, found in the %s wave",
				 opn->str, plan_wave_name(s->wave),
				 plan_wave_name((enum plan_wave)wave));
		ok = false;
	}
	if (ok && o->check)
		ok = o->check(c, n, s);
	return ok;
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

void
plan_build_steps(struct plan_bctx *c, const struct doc_node *list, int wave, bool *ok)
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

void
plan_build_waves(struct plan_bctx *c, const struct doc_node *waves, bool *ok)
{
	int last = -1;
	unsigned seen_line[WAVE__COUNT] = { 0 };

	if (waves->kind != DOC_SEQ) {
		plan_err(c, waves, "waves: expected a list of {name, steps, limits}, found %s",
			 plan_found(c, waves));
		*ok = false;
		return;
	}
	for (size_t i = 0; i < waves->n; i++) {
		const struct doc_node *w = waves->items[i], *name, *steps;
		int wi;

		if (w->kind != DOC_MAP) {
			plan_err(c, w, "waves: expected a map {name, steps, limits}, found %s",
				 plan_found(c, w));
			*ok = false;
			continue;
		}
		for (size_t k = 0; k < w->n; k++) {
			const char *key = w->keys[k]->str;
			if (strcmp(key, "name") && strcmp(key, "steps") && strcmp(key, "limits")) {
				plan_err(c, w->keys[k],
					 "wave: unknown field '%s' (expected name, steps, limits)",
					 key);
				*ok = false;
			}
		}
		name = doc_map_get(w, "name");
		steps = doc_map_get(w, "steps");
		if (!name) {
			plan_err(c, w,
				 "wave: missing field 'name' (expand, backfill, validate or "
				 "contract)");
			*ok = false;
			continue;
		}
		wi = name->kind == DOC_STRING ? plan_wave_from_name(name->str) : -1;
		if (wi < 0) {
			plan_err(c, name,
				 "name: expected expand, backfill, validate or contract, found %s",
				 plan_found(c, name));
			*ok = false;
			continue;
		}
		if (seen_line[wi]) {
			plan_err(c, name, "wave '%s' is named twice (first at line %u)", name->str,
				 seen_line[wi]);
			*ok = false;
			continue;
		}
		seen_line[wi] = name->line;
		if (wi < last) {
			plan_err(
			    c, name,
			    "wave '%s' comes after '%s': waves run in the order expand, backfill, "
			    "validate, contract",
			    name->str, plan_wave_name((enum plan_wave)last));
			*ok = false;
		}
		last = wi > last ? wi : last;
		c->p->waves[wi].line = w->line;
		c->p->waves[wi].col = w->col;
		plan_limits_unset(&c->p->waves[wi].limits);
		if (doc_map_get(w, "limits"))
			*ok &=
			    plan_get_limits(c, doc_map_get(w, "limits"), &c->p->waves[wi].limits);
		if (!steps) {
			plan_err(c, w, "wave '%s': missing field 'steps'", name->str);
			*ok = false;
			continue;
		}
		if (steps->kind != DOC_SEQ || steps->n == 0) {
			plan_err(c, steps, "steps: expected a non-empty list of steps, found %s",
				 steps->kind == DOC_SEQ ? "an empty list" : plan_found(c, steps));
			*ok = false;
			continue;
		}
		plan_build_steps(c, steps, wi, ok);
		c->p->waves[wi].present = true;
	}
}
