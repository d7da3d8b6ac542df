/* The machine view of a planned plan (docs/contract.md §3, `taskslapsctl plan --json`). */
#ifndef TS_PLAN_JSON_H
#define TS_PLAN_JSON_H

#include <cjson/cJSON.h>

#include "plan/plan.h"

/* Caller owns the result. Call after plan_apply_policy so obligations are filled. */
cJSON *plan_to_json(const struct plan *p);

#endif
