/*
 * The worker: one reconciliation pass after another. A pass connects (with
 * backoff), takes the runner lock (or waits as standby), reads the branch
 * tip, and walks the plans in order: invalid, drift, blocked, rate limited,
 * failed or aborted plans stop the line; the rest run through the executor.
 * Then the outcome is projected into git notes and the status document.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/dbview.h"
#include "daemon/worker_int.h"
#include "plan/plan_dir.h"
#include "repo/repo.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strbuf.h"

void
iso_now(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
daemon_post_locked(struct daemon *d, unsigned client_serial, const char *plan_id, char *line)
{
	struct outq *q = xcalloc(1, sizeof(*q));
	uint64_t one = 1;

	q->client_serial = client_serial;
	q->plan_id = plan_id ? xstrdup(plan_id) : NULL;
	q->line = line;
	*d->outq_tail = q;
	d->outq_tail = &q->next;
	if (write(d->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("eventfd");
}

void
daemon_wake_worker(struct daemon *d)
{
	pthread_mutex_lock(&d->mu);
	/* under mu: the worker tests it before waiting on cond */
	atomic_store(&d->wake, true);
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->mu);
}

void
daemon_request_retry(struct daemon *d)
{
	/* before the wake-up, so the pass it starts sees it */
	atomic_store(&d->retry_failed, true);
	daemon_wake_worker(d);
}

/* Sets key of the status document to a string (or null). Caller holds mu. */
void
st_set_str(struct daemon *d, const char *key, const char *v)
{
	cJSON_DeleteItemFromObject(d->status, key);
	if (v)
		cJSON_AddStringToObject(d->status, key, v);
	else
		cJSON_AddNullToObject(d->status, key);
}

void
st_set(struct daemon *d, const char *key, const char *v)
{
	pthread_mutex_lock(&d->mu);
	st_set_str(d, key, v);
	pthread_mutex_unlock(&d->mu);
	daemon_notify_status(d);
}

/* The executor's events: logged, kept in the short history, streamed, shown as running. */
static void
on_event(const struct exec_event *ev, void *arg)
{
	struct daemon *d = arg;
	cJSON *e = cJSON_CreateObject(), *metrics = NULL;
	const char *target;
	char at[32];

	iso_now(at, sizeof(at));
	if (ev->metrics)
		metrics = cJSON_Parse(ev->metrics);
	pthread_mutex_lock(&d->mu);
	/* on the worker thread: d->cfg only under mu (a retired config is never freed while
	 * running) */
	target = d->cfg->target;
	cJSON_AddNumberToObject(e, "id", (double)++d->event_seq);
	cJSON_AddStringToObject(e, "at", at);
	cJSON_AddStringToObject(e, "type", ev->type);
	if (ev->plan_id)
		cJSON_AddStringToObject(e, "plan_id", ev->plan_id);
	if (ev->wave)
		cJSON_AddStringToObject(e, "wave", ev->wave);
	if (ev->step_sha)
		cJSON_AddStringToObject(e, "step_sha", ev->step_sha);
	cJSON_AddStringToObject(e, "message", ev->message ? ev->message : "");
	if (metrics)
		cJSON_AddItemToObject(e, "metrics", metrics);
	daemon_post_locked(d, 0, ev->plan_id, cJSON_PrintUnformatted(e));

	/* the running step, as status shows it */
	if (!strcmp(ev->type, "step.start")) {
		cJSON *run = cJSON_CreateObject();
		cJSON_AddStringToObject(run, "plan_id", ev->plan_id);
		cJSON_AddStringToObject(run, "wave", ev->wave ? ev->wave : "");
		cJSON_AddStringToObject(run, "step_sha", ev->step_sha ? ev->step_sha : "");
		cJSON_AddStringToObject(run, "statement", ev->message ? ev->message : "");
		cJSON_AddStringToObject(run, "since", at);
		cJSON_AddNumberToObject(run, "lock_wait_ms", 0);
		cJSON_AddNumberToObject(run, "retries", 0);
		cJSON_ReplaceItemInObject(d->status, "running", run);
	} else if (!strcmp(ev->type, "step.retry") || !strcmp(ev->type, "step.progress")) {
		cJSON *run = cJSON_GetObjectItem(d->status, "running");
		if (cJSON_IsObject(run) && metrics) {
			static const char *const keys[] = { "rows_done", "rows_total", "rate",
							    "eta_s" };
			for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
				cJSON *v = cJSON_GetObjectItem(metrics, keys[i]);
				if (cJSON_IsNumber(v)) {
					cJSON_DeleteItemFromObject(run, keys[i]);
					cJSON_AddNumberToObject(run, keys[i], v->valuedouble);
				}
			}
			if (!strcmp(ev->type, "step.retry")) {
				cJSON *r = cJSON_GetObjectItem(run, "retries");
				cJSON *lt = cJSON_GetObjectItem(metrics, "lock_timeout_ms");
				cJSON *lw = cJSON_GetObjectItem(run, "lock_wait_ms");
				if (cJSON_IsNumber(r))
					cJSON_SetNumberValue(r, r->valuedouble + 1);
				if (cJSON_IsNumber(lt) && cJSON_IsNumber(lw))
					cJSON_SetNumberValue(lw, lw->valuedouble + lt->valuedouble);
			}
		}
	} else if (!strcmp(ev->type, "step.ok") || !strcmp(ev->type, "step.error") ||
		   !strcmp(ev->type, "step.already_present") || !strncmp(ev->type, "plan.", 5)) {
		cJSON_ReplaceItemInObject(d->status, "running", cJSON_CreateNull());
	}
	if (strcmp(ev->type, "step.progress") != 0) {
		cJSON *h = cJSON_CreateObject();
		cJSON_AddStringToObject(h, "at", at);
		cJSON_AddStringToObject(h, "type", ev->type);
		if (ev->plan_id)
			cJSON_AddStringToObject(h, "plan_id", ev->plan_id);
		cJSON_AddStringToObject(h, "message", ev->message ? ev->message : "");
		cJSON_AddItemToArray(d->history, h);
		while (cJSON_GetArraySize(d->history) > 20)
			cJSON_DeleteItemFromArray(d->history, 0);
	}
	pthread_mutex_unlock(&d->mu);
	cJSON_Delete(e);

	/* one line per event; with journald, the same as fields a query can filter on */
	if (getenv("JOURNAL_STREAM"))
		sd_journal_send(
		    "MESSAGE=%s %s%s%s%s%.16s %s", ev->type, ev->plan_id ? ev->plan_id : "",
		    ev->wave ? "/" : "", ev->wave ? ev->wave : "", ev->step_sha ? " " : "",
		    ev->step_sha ? ev->step_sha : "", ev->message ? ev->message : "", "PRIORITY=%d",
		    strstr(ev->type, "error") || strstr(ev->type, "failed") ? 3 : 6,
		    "TASKSLAPS_TARGET=%s", target, "TASKSLAPS_EVENT=%s", ev->type,
		    "TASKSLAPS_PLAN=%s", ev->plan_id ? ev->plan_id : "", "TASKSLAPS_STEP=%s",
		    ev->step_sha ? ev->step_sha : "", NULL);
	else
		log_info("[%s] %s %s%s%s%s%.16s %s", target, ev->type,
			 ev->plan_id ? ev->plan_id : "-", ev->wave ? "/" : "",
			 ev->wave ? ev->wave : "", ev->step_sha ? " " : "",
			 ev->step_sha ? ev->step_sha : "", ev->message ? ev->message : "");
}

/*
 * Waits for a wake-up, a job, a stop, or ms; returns false when stopping.
 * *woken: something asked for a pass (not the timer).
 */
/* How long the worker stays idle before it gives its free memory back (worker_main). */
#define TRIM_GRACE_MS 500

static bool
worker_wait(struct daemon *d, int64_t ms, bool *woken)
{
	struct timespec ts;
	bool go;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&d->mu);
	while (!atomic_load(&d->wake) && !daemon_stopping(d) && !d->jobs) {
		if (pthread_cond_timedwait(&d->cond, &d->mu, &ts) == ETIMEDOUT)
			break;
	}
	/* added to, not set: a requested pass that ended early is still owed */
	*woken = *woken || atomic_load(&d->wake) || d->jobs;
	atomic_store(&d->wake, false);
	go = !daemon_stopping(d);
	pthread_mutex_unlock(&d->mu);
	return go;
}

void
worker_drop_exec(struct daemon *d, struct worker *w)
{
	if (!w->ex)
		return;
	/* first out of the main thread's reach (abort, stop, cancel take mu), then closed */
	pthread_mutex_lock(&d->mu);
	d->ex = NULL;
	pthread_mutex_unlock(&d->mu);
	exec_close(w->ex);
	w->ex = NULL;
	/* nor does it know the view of the old one: read again whole on the next pass */
	dbview_free(w->view);
	w->view = NULL;
	/* a new connection (a restart, a restored database, a reload) owes a full pass */
	w->settled_tip[0] = '\0';
	w->full_pass = true;
}

/* Connects the executor if needed; false (status says why) when the database is away. */
bool
ensure_exec(struct daemon *d, struct worker *w)
{
	struct exec_config ec;
	struct db_error err;
	struct exec *ex = NULL;
	char *msg;

	if (w->ex && db_ok(exec_db(w->ex))) {
		w->connected = true;
		return true;
	}
	worker_drop_exec(d, w);
	exec_config_default(&ec);
	ec.target = w->cfg->target;
	ec.applied_by = w->applied_by;
	ec.lock_retries = w->cfg->lock_retries;
	ec.runner_lock_wait_ms = 0;
	ec.governor = w->cfg->governor;
	ec.on_event = on_event;
	ec.event_arg = d;
	if (exec_open(&ex, w->cfg->database, &ec, &err) < 0 ||
	    exec_install_schema(ex, false, &err) < 0) {
		exec_close(ex);
		/* db_connect scrubbed the password out of libpq's message */
		msg = xasprintf("%s", err.message);
		pthread_mutex_lock(&d->mu);
		cJSON *db = cJSON_GetObjectItem(d->status, "database");
		cJSON_ReplaceItemInObject(db, "connected", cJSON_CreateFalse());
		cJSON_ReplaceItemInObject(db, "error", cJSON_CreateString(msg));
		st_set_str(d, "state", "reconnecting");
		/* nothing can be applied, and status must not read as fine */
		st_set_str(d, "health", "degraded");
		pthread_mutex_unlock(&d->mu);
		if (!w->db_down_logged)
			log_warnx("[%s] database unavailable: %s", w->cfg->target, msg);
		w->db_down_logged = true;
		free(msg);
		daemon_notify_status(d);
		return false;
	}
	if (w->db_down_logged)
		log_info("[%s] database connected again", w->cfg->target);
	w->db_down_logged = false;
	w->ex = ex;
	pthread_mutex_lock(&d->mu);
	d->ex = ex;
	cJSON *db = cJSON_GetObjectItem(d->status, "database");
	cJSON_ReplaceItemInObject(db, "connected", cJSON_CreateTrue());
	cJSON_ReplaceItemInObject(db, "error", cJSON_CreateNull());
	/* a stop that came while connecting: begin_stop saw no executor to stop */
	if (daemon_stopping(d))
		exec_stop(ex);
	pthread_mutex_unlock(&d->mu);
	w->connected = true;
	return true;
}

static void
run_jobs(struct daemon *d, struct worker *w)
{
	struct job *jobs;

	pthread_mutex_lock(&d->mu);
	jobs = d->jobs;
	d->jobs = NULL;
	pthread_mutex_unlock(&d->mu);
	while (jobs) {
		struct job *j = jobs;
		cJSON *res = cJSON_CreateObject();
		char *line;

		jobs = j->next;
		w->full_pass = true; /* a verb may have changed what the pass would find */
		if (!ensure_exec(d, w)) {
			line = proto_reply_error(j->req_id, TS_PROTO_E_UNAVAILABLE,
						 "the database is unavailable; try again");
		} else if (worker_job(d, w, j, res) == 0) {
			line = proto_reply_result(j->req_id, res);
			res = NULL;
		} else {
			cJSON *m = cJSON_GetObjectItem(res, "message");
			cJSON *c = cJSON_GetObjectItem(res, "code");
			line = proto_reply_error(
			    j->req_id, cJSON_IsString(c) ? c->valuestring : TS_PROTO_E_CONFLICT,
			    cJSON_IsString(m) ? m->valuestring : "failed");
		}
		cJSON_Delete(res);
		pthread_mutex_lock(&d->mu);
		daemon_post_locked(d, j->client_serial, NULL, line);
		pthread_mutex_unlock(&d->mu);
		free(j->cmd);
		free(j->plan_id);
		free(j);
	}
}

void *
worker_main(void *arg)
{
	struct daemon *d = arg;
	struct worker w = { .full_pass = true };
	int64_t backoff = 1000;
	char host[128] = "localhost";

	gethostname(host, sizeof(host) - 1);
	w.applied_by = xasprintf("taskslapsd@%s", host);
	for (;;) {
		int64_t next;
		int rc;
		bool reloaded;

		/* a reload swaps d->cfg between passes; the old one lives on in d->retired */
		pthread_mutex_lock(&d->mu);
		reloaded = w.cfg && w.cfg != d->cfg;
		w.cfg = d->cfg;
		pthread_mutex_unlock(&d->mu);
		if (reloaded) { /* reconnect with the new database, governor and retry settings */
			worker_drop_exec(d, &w);
			w.full_pass = true;
		}
		if (atomic_exchange(&d->retry_failed, false)) {
			/* an operator asked to reconcile: failed plans get another try */
			worker_forget_failures(&w);
			w.full_pass = true;
		}
		w.connected = false;
		run_jobs(d, &w);
		rc = worker_pass(d, &w);
		if (d->once)
			break;
		next = (int64_t)w.cfg->poll_interval_s * 1000;
		if (rc == PASS_DB_DOWN) {
			/*
			 * Lost after it had connected (a restart in the middle of a run):
			 * a new outage, so the backoff starts over instead of going on
			 * doubling from the last one.
			 */
			if (w.connected)
				backoff = 1000;
			next = backoff;
			backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
		} else {
			backoff = 1000;
		}
		if (rc == PASS_STANDBY && next > 5000)
			next = 5000;
		exec_flush(w.ex); /* no event waits in the queue while the worker sleeps */
		/*
		 * A pass frees what it parsed, but glibc only gives back free
		 * memory at the top of the heap: the free pages in between (the
		 * plans, the snapshot's copies, libpq's results) stay resident
		 * until the next pass reuses them. Hand them back once the worker
		 * is idle: TRIM_GRACE_MS after a pass that no other followed. A
		 * burst of pushes keeps them (each pass would fault in again the
		 * few MB of arrays of every plan that the last one gave back).
		 */
		if (next > TRIM_GRACE_MS) {
			bool woken = false;

			if (!worker_wait(d, TRIM_GRACE_MS, &woken))
				break;
			w.full_pass = w.full_pass || woken;
			if (woken)
				continue;
			(void)malloc_trim(0);
			next -= TRIM_GRACE_MS;
		} else {
			(void)malloc_trim(0);
		}
		if (!worker_wait(d, next, &w.full_pass))
			break;
	}
	worker_drop_exec(d, &w); /* releases the runner lock */
	/* the snapshot holds the repository's objects (its tree): freed before it */
	worker_state_free(&w);
	repo_free(w.repo);
	free(w.applied_by);
	pthread_mutex_lock(&d->mu);
	atomic_store(&d->worker_done, true);
	st_set_str(d, "state", "stopping");
	daemon_post_locked(d, 0, NULL, NULL);
	pthread_mutex_unlock(&d->mu);
	return NULL;
}
