/* Internal to the plan module: shared between its files, not its users. */
#ifndef TS_PLAN_INT_H
#define TS_PLAN_INT_H

#include <cjson/cJSON.h>

#include "plan/plan.h"

/* Computes a built step's hazard, exec kind, SQL, lock and checks (plan_ops.c). */
void plan_step_finish(struct plan *p, struct plan_step *s);

struct sql_msg;
struct arena;
typedef struct PgQuery__Node PgQuery__Node;
/* Derives what an sql step's statement does (plan_analyze.c). */
void plan_sql_analyze(struct arena *a, const PgQuery__Node *stmt, struct plan_sql_effect *e);
/*
 * Reads a finished step's statement and checks back with PostgreSQL's parser
 * and checks the tree is the op's promise (plan_shape.c). False with *m when not.
 */
bool plan_shape_check(const struct plan_step *s, struct sql_msg *m);

/*
 * The step as written, defaults filled in: the "step" of its step_sha and the
 * plan checksum (plan_json.c). Caller owns the result.
 */
cJSON *plan_step_fields_json(const struct plan_step *s);
/* {set limits only}; caller owns it. */
cJSON *plan_limits_json(const struct plan_limits *l);

#endif
