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

cJSON *
plan_step_fields_json(const struct plan_step *s)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "op", plan_op_name(s->op));
	switch (s->op) {
	case OP_CREATE_VIEW:
		add_str(o, "name", s->name);
		add_str(o, "sql", s->sql);
		break;
	case OP_CREATE_TABLE: {
		cJSON *cols = cJSON_AddArrayToObject(o, "columns");
		add_str(o, "table", s->table);
		for (size_t i = 0; i < s->ncoldefs; i++) {
			cJSON *c = cJSON_CreateObject();
			add_str(c, "name", s->coldefs[i].name);
			add_str(c, "type", s->coldefs[i].type);
			cJSON_AddBoolToObject(c, "nullable", s->coldefs[i].nullable);
			add_const(c, "default", &s->coldefs[i].def);
			cJSON_AddItemToArray(cols, c);
		}
		add_strv(o, "primary_key", &s->primary_key);
		break;
	}
	case OP_ADD_COLUMN:
		add_str(o, "table", s->table);
		add_str(o, "name", s->name);
		add_str(o, "type", s->type);
		cJSON_AddBoolToObject(o, "nullable", s->nullable);
		add_const(o, "default", &s->def);
		break;
	case OP_ADD_INDEX_CONCURRENTLY:
		add_str(o, "table", s->table);
		add_str(o, "name", s->name);
		add_strv(o, "columns", &s->columns);
		cJSON_AddBoolToObject(o, "unique", s->unique);
		add_str(o, "where", s->where);
		break;
	case OP_ADD_FOREIGN_KEY_NOT_VALID:
		add_str(o, "table", s->table);
		add_str(o, "name", s->name);
		add_strv(o, "columns", &s->columns);
		add_str(o, "ref_table", s->ref_table);
		add_strv(o, "ref_columns", &s->ref_columns);
		add_str(o, "on_delete", s->on_delete ? s->on_delete : "NO ACTION");
		break;
	case OP_ADD_CHECK_NOT_VALID:
		add_str(o, "table", s->table);
		add_str(o, "name", s->name);
		add_str(o, "check", s->check);
		break;
	case OP_BACKFILL_SQL:
	case OP_SQL:
		if (s->from_sql_file && s->sql_tokens)
			/* a .sql plan's statement: reformatting it is no drift, editing a value is
			 */
			add_str(o, "sql_tokens", s->sql_tokens);
		else
			add_str(o, "sql", s->sql);
		/*
		 * Only when written, so steps without it keep their step_sha. These
		 * two ops have an inverse only when revert_sql was given (read into it).
		 */
		if (!s->inverse_of && s->inverse)
			add_str(o, "revert_sql", s->inverse->sql);
		if (s->op == OP_SQL && s->declared_lock != LOCK_NONE)
			add_str(o, "lock_class_max", pg_lock_name(s->declared_lock));
		if (s->op == OP_SQL && s->declared_rewrite >= 0)
			cJSON_AddBoolToObject(o, "may_rewrite", s->declared_rewrite == 1);
		break;
	case OP_VALIDATE_CONSTRAINT:
	case OP_DROP_COLUMN:
		add_str(o, "table", s->table);
		add_str(o, "name", s->name);
		break;
	case OP_SET_NOT_NULL:
		add_str(o, "table", s->table);
		add_str(o, "column", s->column);
		break;
	case OP_DROP_INDEX_CONCURRENTLY: add_str(o, "name", s->name); break;
	case OP_DROP_TABLE: add_str(o, "table", s->table); break;
	case OP_RENAME_COLUMN:
		add_str(o, "table", s->table);
		add_str(o, "from", s->from);
		add_str(o, "to", s->to);
		break;
	case OP_RENAME_TABLE:
		add_str(o, "from", s->from);
		add_str(o, "to", s->to);
		break;
	case OP_DROP_VIEW: add_str(o, "name", s->name); break;
	case OP_DROP_CONSTRAINT:
		add_str(o, "table", s->table);
		add_str(o, "name", s->name);
		add_str(o, "ref_table", s->ref_table);
		break;
	case OP_DROP_NOT_NULL:
		add_str(o, "table", s->table);
		add_str(o, "column", s->column);
		break;
	case OP__COUNT:
	case OP__ALL: break;
	}
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
