/* The plan as JSON: the canonical step form that is hashed, and the --json view. */
#include <string.h>

#include "plan/plan.h"
#include "plan/plan_int.h"
#include "plan/plan_json.h"

static void
add_strv(cJSON *obj, const char *key, const struct plan_strv *v)
{
	cJSON *a = cJSON_AddArrayToObject(obj, key);

	for (size_t i = 0; i < v->n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v->v[i]));
}

static void
add_str(cJSON *obj, const char *key, const char *s)
{
	if (s)
		cJSON_AddStringToObject(obj, key, s);
}

/* A constant keeps its JSON kind; numbers are raw so 1.50 stays 1.50. */
static void
add_const(cJSON *obj, const char *key, const struct plan_const *c)
{
	switch (c->kind) {
	case CONST_NONE: break;
	case CONST_NULL: cJSON_AddNullToObject(obj, key); break;
	case CONST_BOOL: cJSON_AddBoolToObject(obj, key, c->text[0] == 't'); break;
	case CONST_NUMBER: cJSON_AddRawToObject(obj, key, c->text); break;
	case CONST_STRING: cJSON_AddStringToObject(obj, key, c->text); break;
	/* an expression is its own field, so the canonical form tells it from a string */
	case CONST_SQL: cJSON_AddStringToObject(obj, "default_sql", c->text); break;
	}
}

cJSON *
plan_limits_json(const struct plan_limits *l)
{
	cJSON *o = cJSON_CreateObject();

	if (l->max_lock_ms >= 0)
		cJSON_AddNumberToObject(o, "max_lock_ms", (double)l->max_lock_ms);
	if (l->max_stmt_ms >= 0)
		cJSON_AddNumberToObject(o, "max_stmt_ms", (double)l->max_stmt_ms);
	if (l->rows_per_second >= 0)
		cJSON_AddNumberToObject(o, "rows_per_second", (double)l->rows_per_second);
	if (l->batch_size >= 0)
		cJSON_AddNumberToObject(o, "batch_size", (double)l->batch_size);
	return o;
}

/*
 * One field of the op table (or of a column), read where the table says it
 * is stored in base, as the canonical form writes it. Which key and when:
 * - a constant default is "default", an SQL one "default_sql" (both kinds
 *   share one member: the first field naming it writes it);
 * - a statement of a .sql plan is its token stream, "sql_tokens" (a
 *   reformatting is no drift, an edited value is);
 * - revert_sql, lock_class_max and may_rewrite only when written, so steps
 *   without them keep the step_sha they had;
 * - on_delete is always there, "NO ACTION" when not written;
 * - the wave an `sql` step is written in is not part of it (which wave
 *   runs it is the plan's shape, hashed with the plan).
 */
static void
add_field(cJSON *o, const struct plan_step *s, const void *base, const struct plan_field *f,
	  const struct plan_field *fields)
{
	const char *at = (const char *)base + f->off;

	if (f->inverse) {
		if (!s->inverse_of && s->inverse)
			add_str(o, f->name, s->inverse->sql);
		return;
	}
	for (const struct plan_field *g = fields; g < f; g++)
		if (g->off == f->off && !g->inverse)
			return; /* written by the field before that shares its member */
	switch (f->kind) {
	case FK_IDENT:
	case FK_QIDENT:
	case FK_TYPE:
	case FK_EXPR:
	case FK_QUERY: add_str(o, f->name, *(char *const *)at); break;
	case FK_STMT:
	case FK_UPDATE:
		if (s->from_sql_file && s->sql_tokens)
			add_str(o, "sql_tokens", s->sql_tokens);
		else
			add_str(o, f->name, *(char *const *)at);
		break;
	case FK_ONDELETE: {
		const char *action = *(char *const *)at;
		add_str(o, f->name, action ? action : "NO ACTION");
		break;
	}
	case FK_BOOL: cJSON_AddBoolToObject(o, f->name, *(const bool *)at); break;
	case FK_TRIBOOL:
		if (*(const int *)at >= 0)
			cJSON_AddBoolToObject(o, f->name, *(const int *)at == 1);
		break;
	case FK_CONST:
	case FK_DEFAULT_SQL: add_const(o, "default", (const struct plan_const *)at); break;
	case FK_IDENTS: add_strv(o, f->name, (const struct plan_strv *)at); break;
	case FK_COLDEFS: {
		cJSON *cols = cJSON_AddArrayToObject(o, f->name);
		for (size_t i = 0; i < s->ncoldefs; i++) {
			cJSON *c = cJSON_CreateObject();
			for (size_t k = 0; k < PLAN_NCOLDEF_FIELDS; k++)
				add_field(c, s, &s->coldefs[i], &plan_coldef_fields[k],
					  plan_coldef_fields);
			cJSON_AddItemToArray(cols, c);
		}
		break;
	}
	case FK_LOCK:
		if (*(const enum pg_lock *)at != LOCK_NONE)
			add_str(o, f->name, pg_lock_name(*(const enum pg_lock *)at));
		break;
	case FK_WAVE:
	case FK_INT:
	case FK_CHECKS:
	case FK_LIMITS:
	case FK_ALLOWS:
	case FK__COUNT: break;
	}
}

/*
 * The step's canonical form: its op, then every field of its entry in the
 * op table (plan_ops.c), in the table's order, then what every step has.
 * An op is hashed by what the table says it holds: a new op needs no code
 * here. Once released, an op's form does not change without bumping
 * PLAN_HASH_VERSION (the keys are sorted before hashing: canon.c).
 */
cJSON *
plan_step_fields_json(const struct plan_step *s)
{
	const struct plan_opdef *d = plan_opdef(s->op);
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "op", plan_op_name(s->op));
	for (int i = 0; i < PLAN_MAXF && d->fields[i].name; i++)
		add_field(o, s, s, &d->fields[i], d->fields);
	add_strv(o, "prechecks", &s->user_prechecks);
	add_strv(o, "postchecks", &s->user_postchecks);
	cJSON_AddItemToObject(o, "limits", plan_limits_json(&s->limits));
	return o;
}

static void
add_int(cJSON *o, const char *key, int64_t v)
{
	cJSON_AddNumberToObject(o, key, (double)v);
}

/* A planned step as the --json view shows it; an inverse is shown inside its step. */
static cJSON *
step_json(const struct plan_step *s)
{
	cJSON *sj = cJSON_CreateObject(), *ob;

	cJSON_AddStringToObject(sj, "step_sha", s->sha);
	if (s->inverse_of)
		cJSON_AddStringToObject(sj, "inverse_of", s->inverse_of);
	if (!s->inverse_of || s->undoes)
		cJSON_AddNumberToObject(sj, "index", s->index);
	if (s->undoes) {
		/* a step of a revert plan: the reverted plan's step it undoes */
		cJSON *u = cJSON_AddObjectToObject(sj, "undoes");

		cJSON_AddStringToObject(u, "step_sha", s->undoes->sha);
		cJSON_AddStringToObject(u, "op", plan_op_name(s->undoes->op));
		cJSON_AddStringToObject(u, "wave", plan_wave_name(s->undoes->wave));
		cJSON_AddNumberToObject(u, "line", s->undoes->line);
	}
	cJSON_AddStringToObject(sj, "op", plan_op_name(s->op));
	cJSON_AddStringToObject(sj, "hazard", plan_hazard_name(s->hazard));
	cJSON_AddStringToObject(sj, "hazard_reason", s->hazard_reason);
	cJSON_AddStringToObject(sj, "sql", s->stmt);
	cJSON_AddNumberToObject(sj, "line", s->line);
	cJSON_AddStringToObject(sj, "exec",
				s->exec == EXEC_NONTX	  ? "outside_transaction"
				: s->exec == EXEC_BATCHED ? "batched"
							  : "transaction");
	ob = cJSON_AddObjectToObject(sj, "obligations");
	cJSON_AddStringToObject(ob, "lock_class_max", pg_lock_name(s->ob.lock_class_max));
	cJSON_AddBoolToObject(ob, "may_rewrite", s->ob.may_rewrite);
	add_int(ob, "max_lock_ms", s->ob.max_lock_ms);
	add_int(ob, "max_stmt_ms", s->ob.max_stmt_ms);
	if (s->op == OP_BACKFILL_SQL) {
		add_int(ob, "rows_per_second", s->ob.rows_per_second);
		add_int(ob, "batch_size", s->ob.batch_size);
	}
	add_strv(ob, "prechecks", &s->ob.prechecks);
	add_strv(ob, "postchecks", &s->ob.postchecks);
	if (s->op == OP_SQL) {
		/* the rules the statement's parse tree raises; an allowed one says why */
		cJSON *fa = cJSON_AddArrayToObject(sj, "findings");
		for (int r = 0; r < PLAN_RULE__COUNT; r++) {
			const struct plan_rule *ru = plan_rule((enum plan_rule_id)r);
			const char *why = plan_step_allowed(s, (enum plan_rule_id)r);
			cJSON *f;
			if (!(s->eff.rules & (1u << r)))
				continue;
			f = cJSON_CreateObject();
			cJSON_AddStringToObject(f, "rule", ru->id);
			cJSON_AddStringToObject(f, "name", ru->name);
			cJSON_AddStringToObject(f, "message", ru->what);
			cJSON_AddStringToObject(f, "fix", ru->fix);
			if (why)
				cJSON_AddStringToObject(f, "allowed", why);
			else
				cJSON_AddNullToObject(f, "allowed");
			cJSON_AddItemToArray(fa, f);
		}
	}
	if (s->inverse_of)
		return sj;
	/* how the step is undone: its inverse, or why there is none */
	cJSON_AddStringToObject(sj, "undo", plan_undo_name(s->undo));
	if (s->undo == UNDO_INVERSE && s->inverse)
		cJSON_AddItemToObject(sj, "inverse", step_json(s->inverse));
	else if (s->undo_reason)
		cJSON_AddStringToObject(sj, "undo_reason", s->undo_reason);
	return sj;
}

cJSON *
plan_to_json(const struct plan *p)
{
	cJSON *o = cJSON_CreateObject(), *waves;

	cJSON_AddStringToObject(o, "plan_id", p->id);
	cJSON_AddStringToObject(o, "title", p->title);
	cJSON_AddStringToObject(o, "reason", p->reason);
	cJSON_AddStringToObject(o, "file", p->path);
	cJSON_AddStringToObject(o, "checksum", p->checksum);
	cJSON_AddNumberToObject(o, "hash_version", PLAN_HASH_VERSION);
	cJSON_AddStringToObject(o, "max_hazard", plan_hazard_name(p->max_hazard));
	cJSON_AddBoolToObject(o, "chaos_compatible", p->max_hazard <= H2);
	cJSON_AddStringToObject(o, "mode", p->mode == MODE_CHAOS ? "chaos" : "protected");
	cJSON_AddStringToObject(o, "on_failure", plan_on_failure_name(p->on_failure));
	cJSON_AddBoolToObject(o, "blocked", p->blocked);
	if (p->blocked_reason)
		cJSON_AddStringToObject(o, "blocked_reason", p->blocked_reason);
	add_int(o, "step_count", (int64_t)p->nsteps);
	if (p->revert_of) {
		cJSON *rj = cJSON_AddObjectToObject(o, "revert"), *kept;

		cJSON_AddStringToObject(rj, "plan_id", p->revert_of);
		if (p->reverted)
			cJSON_AddStringToObject(rj, "file", p->reverted->path);
		if (p->to_wave >= 0)
			cJSON_AddStringToObject(rj, "to_wave",
						plan_wave_name((enum plan_wave)p->to_wave));
		else
			cJSON_AddNullToObject(rj, "to_wave");
		cJSON_AddStringToObject(rj, "status_after", plan_revert_status(p));
		kept = cJSON_AddArrayToObject(rj, "nothing_to_undo");
		for (size_t i = 0; i < p->revert_kept.n; i++)
			cJSON_AddItemToArray(kept, cJSON_CreateString(p->revert_kept.v[i]));
	}
	waves = cJSON_AddArrayToObject(o, "waves");
	for (int w = 0; w < WAVE__COUNT; w++) {
		const struct plan_wave_s *wv = &p->waves[w];
		cJSON *wj, *steps;

		if (!wv->present)
			continue;
		wj = cJSON_CreateObject();
		cJSON_AddStringToObject(wj, "name", plan_wave_name((enum plan_wave)w));
		cJSON_AddStringToObject(wj, "max_hazard", plan_hazard_name(wv->max_hazard));
		cJSON_AddBoolToObject(wj, "can_run_in_chaos", wv->max_hazard <= H2);
		steps = cJSON_AddArrayToObject(wj, "steps");
		for (size_t i = 0; i < wv->nsteps; i++)
			cJSON_AddItemToArray(steps, step_json(&wv->steps[i]));
		cJSON_AddItemToArray(waves, wj);
	}
	return o;
}
