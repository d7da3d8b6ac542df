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
 * The step a revert_sql field is read into (plan_build.c reads it like the
 * op's own sql): s's inverse to be, of the same op, at line:col. In p's arena.
 */
struct plan_step *plan_inverse_revert(struct plan *p, struct plan_step *s, unsigned line,
				      unsigned col);
/*
 * Works out how a finished step (its sha set) is undone (plan_inverse.c):
 * builds, finishes, reads back and hashes its inverse, or says why there is
 * none. Returns 0, or -1 with *m when the inverse does not read back as its
 * op (s->inverse then says where).
 */
int plan_inverse_build(struct plan *p, struct plan_step *s, struct sql_msg *m);

/*
 * The step as written, defaults filled in: the "step" of its step_sha and the
 * plan checksum (plan_json.c). Caller owns the result.
 */
cJSON *plan_step_fields_json(const struct plan_step *s);
/* {set limits only}; caller owns it. */
cJSON *plan_limits_json(const struct plan_limits *l);

/* plan_load without resolving a revert plan (plan_revert_from_dir reads its directory so). */
int plan_load_one(struct plan **out, const char *path, struct diags *d);

#endif
