/*
 * Loading a directory's plans on several threads for lint, handed back in
 * the directory's order, so the output and the exit status do not depend on
 * the number of threads.
 */
#ifndef TS_CTL_LINT_JOBS_H
#define TS_CTL_LINT_JOBS_H

#include <stddef.h>

#include "plan/plan.h"
#include "util/diag.h"

/* Plans loaded ahead of the one being handed back, per thread: bounds memory. */
#define LINT_JOBS_AHEAD 16
/* The most threads --jobs asks for. */
#define LINT_JOBS_MAX 256

/* The number of CPUs this process may run on (its affinity mask), at least 1. */
unsigned lint_jobs_default(void);

/*
 * Loads paths[0..n-1] with plan_load on `jobs` threads (this one among them;
 * fewer if threads cannot be created) and calls emit(arg, path, p, d) on this
 * thread for each, in order: p is the plan or NULL when it did not load, d
 * its diagnostics. emit may keep neither: both are freed when it returns.
 * At most LINT_JOBS_AHEAD * jobs plans are held at a time.
 */
void lint_jobs_run(char *const *paths, size_t n, unsigned jobs,
		   void (*emit)(void *arg, const char *path, struct plan *p, struct diags *d),
		   void *arg);

#endif
