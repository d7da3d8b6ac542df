#include "ctl/lint_jobs.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/alloc.h"

struct lint_slot {
	struct plan *p;
	struct diags d;
	bool ready;
};

/*
 * Plan k is loaded into slots[k % window]. Any thread claims the next plan
 * (`next`) while it lies within the window after the next to hand back
 * (`emitted`); the calling thread hands them back in order and, rather than
 * wait for one, loads the next itself.
 */
struct lint_jobs {
	pthread_mutex_t mu;
	pthread_cond_t ready; /* the slot the caller waits for is loaded */
	pthread_cond_t space; /* emitted moved: the window has room */
	char *const *paths;
	size_t n, window, next, emitted;
	size_t waiting_for; /* the plan the caller waits for, or SIZE_MAX */
	unsigned space_waiters;
	struct lint_slot *slots;
};

unsigned
lint_jobs_default(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

/* Loads plan k and marks it ready: called with the lock held, drops it while loading. */
static void
load(struct lint_jobs *j, size_t k)
{
	struct lint_slot *s = &j->slots[k % j->window];

	pthread_mutex_unlock(&j->mu);
	s->p = NULL;
	s->d = (struct diags)DIAGS_INIT;
	(void)plan_load(&s->p, j->paths[k], &s->d); /* a failure is in s->d */
	pthread_mutex_lock(&j->mu);
	s->ready = true;
	if (j->waiting_for == k)
		pthread_cond_signal(&j->ready);
}

static bool
can_claim(const struct lint_jobs *j)
{
	return j->next < j->n && j->next < j->emitted + j->window;
}

static void *
worker(void *arg)
{
	struct lint_jobs *j = arg;

	pthread_mutex_lock(&j->mu);
	while (j->next < j->n) {
		if (!can_claim(j)) {
			j->space_waiters++;
			pthread_cond_wait(&j->space, &j->mu);
			j->space_waiters--;
			continue;
		}
		load(j, j->next++);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

void
lint_jobs_run(char *const *paths, size_t n, unsigned jobs,
	      void (*emit)(void *arg, const char *path, struct plan *p, struct diags *d), void *arg)
{
	struct lint_jobs j = { .paths = paths, .n = n, .waiting_for = SIZE_MAX };
	pthread_t *tids = NULL;
	size_t nthreads = 0, helpers;

	if (n == 0)
		return;
	if (jobs < 1)
		jobs = 1;
	helpers = jobs - 1 < n - 1 ? jobs - 1 : n - 1;
	j.window = (size_t)LINT_JOBS_AHEAD * jobs;
	j.slots = xcalloc(j.window, sizeof(*j.slots));
	pthread_mutex_init(&j.mu, NULL);
	pthread_cond_init(&j.ready, NULL);
	pthread_cond_init(&j.space, NULL);
	if (helpers) {
		tids = xcalloc(helpers, sizeof(*tids));
		/* with fewer threads than asked (or none), the caller loads the rest */
		while (nthreads < helpers && pthread_create(&tids[nthreads], NULL, worker, &j) == 0)
			nthreads++;
	}
	pthread_mutex_lock(&j.mu);
	for (size_t k = 0; k < n; k++) {
		struct lint_slot *s = &j.slots[k % j.window];

		while (!s->ready) {
			if (can_claim(&j)) {
				load(&j, j.next++);
				continue;
			}
			j.waiting_for = k;
			pthread_cond_wait(&j.ready, &j.mu);
			j.waiting_for = SIZE_MAX;
		}
		pthread_mutex_unlock(&j.mu);
		emit(arg, paths[k], s->p, &s->d);
		plan_free(s->p);
		diags_clear(&s->d);
		pthread_mutex_lock(&j.mu);
		s->ready = false;
		j.emitted++;
		if (j.space_waiters)
			pthread_cond_broadcast(&j.space);
	}
	pthread_mutex_unlock(&j.mu);
	for (size_t i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	free(tids);
	pthread_cond_destroy(&j.space);
	pthread_cond_destroy(&j.ready);
	pthread_mutex_destroy(&j.mu);
	free(j.slots);
}
