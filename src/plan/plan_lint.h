/* Findings: things in a sound plan that an operator should look at before it runs. */
#ifndef TS_PLAN_LINT_H
#define TS_PLAN_LINT_H

#include "plan/plan.h"
#include "util/diag.h"

/* Adds a DIAG_WARNING per finding (with the step's line:column). Returns how many. */
size_t plan_lint(const struct plan *p, struct diags *d);

#endif
