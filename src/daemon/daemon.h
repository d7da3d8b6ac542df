/*
 * taskslapsd: one struct daemon owns the configuration, the event loop, the
 * worker that reconciles, and the status the control socket serves.
 *
 * Threads. The main thread runs the sd-event loop (signals, control socket,
 * inotify, timers, watchdog) and never touches the database: main.c,
 * control.c, notify.c. The worker thread reconciles synchronously with
 * libpq: worker.c, reconcile*.c, and everything in struct worker, which no
 * other thread sees. The rules for what they share in struct daemon:
 *
 *  - Set before the worker starts, read-only after: check_only, once,
 *    self_uid, admin_group, admin_gid, have_admin_gid, efd, loop.
 *  - The main thread's alone (no lock): the loop's sources, clients,
 *    nclients, next_serial, the ratelogs, exit_code, worker_started,
 *    retired and nretired (written under mu all the same, see cfg).
 *  - Under mu: jobs, outq, ex, status, history, notified, event_seq, and
 *    the pointer cfg. Only the main thread replaces cfg (reload), under mu;
 *    it may read d->cfg without the lock, being its only writer. The
 *    worker reads d->cfg only under mu, and keeps the pointer it read
 *    (w->cfg) for a whole pass: the config it replaced goes to `retired`
 *    and is freed only at exit, after the worker is joined, so no thread
 *    ever reads a freed one.
 *  - Atomics (stdatomic.h), read through the accessors below with no lock:
 *    the flags one thread raises and the other reads: wake, retry_failed,
 *    stopping, worker_done. wake and stopping are also what the worker
 *    waits for on cond, so they are raised under mu (else a signal could
 *    fall between its test and its wait).
 *  - ex, the executor, is the worker's: it opens and closes it. The main
 *    thread uses d->ex only under mu, to abort, stop or cancel. The worker
 *    closes an executor only through worker_drop_exec() (worker.c), which
 *    clears d->ex under mu first, so the main thread never sees a closed one.
 *
 * The worker publishes the status document and queues events and replies
 * under mu, and wakes the loop through the eventfd; the loop queues jobs
 * and wakes the worker through cond.
 */
#ifndef TS_DAEMON_H
#define TS_DAEMON_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "daemon/config.h"
#include "exec/exec.h"

struct client;

/* A request that needs the database, done by the worker; the reply goes to (client, id). */
struct job {
	struct job *next;
	char *cmd; /* "resume", "accept-drift" */
	char *plan_id;
	unsigned client_serial;
	long long req_id;
};

/* Lines for the main loop to deliver: an event for subscribers, or a reply to one client. */
struct outq {
	struct outq *next;
	unsigned client_serial; /* 0: an event for every subscriber (and the log) */
	char *plan_id;		/* for subscribers that filter by plan */
	char *line; /* for a reply: a whole protocol line; for an event: the event JSON */
};

/* At most one log line per interval for one kind of trouble, and a count of the lines left out. */
struct ratelog {
	uint64_t next_usec; /* CLOCK_MONOTONIC: the next line may be written from then */
	unsigned suppressed;
};

struct daemon {
	struct config *cfg; /* current; replaced whole on reload (under mu; see above) */
	bool check_only;    /* -n */
	bool once;	    /* --once: one pass, then exit */
	int exit_code;

	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_t worker;
	bool worker_started;
	atomic_bool wake;	  /* reconcile now (raised under mu) */
	atomic_bool retry_failed; /* ... and try failed plans again (taskslapsctl reconcile) */
	atomic_bool stopping;	  /* shutting down (raised under mu) */
	atomic_bool worker_done;  /* the worker has returned */
	struct job *jobs;
	struct outq *outq, **outq_tail;
	struct exec *ex; /* the worker's executor, for abort (under mu) */
	cJSON *status;	 /* the status document (under mu) */
	cJSON *history;	 /* last events, newest last (under mu) */
	/*
	 * The status document's "plans" by plan id, for status with args.plan
	 * (control.c, main thread, under mu): made again when plans_gen has
	 * moved, which the worker does whenever the items of "plans" change.
	 */
	unsigned long plans_gen;
	struct plans_index *plans_idx;
	char notified[512];	 /* the last STATUS= sent (under mu) */
	long long event_seq;	 /* ids of streamed events (under mu) */
	struct config **retired; /* configs replaced by reloads: the worker may still read one;
				    freed at exit */
	size_t nretired;

	sd_event *loop;
	int efd; /* eventfd: the worker has something for the loop */
	int listen_fd;
	sd_event_source *listen_src;   /* off while accept(2) has no file descriptor to give */
	sd_event_source *accept_timer; /* turns listen_src back on */
	unsigned nclients;
	struct ratelog refused_log; /* connections refused: too many clients */
	struct ratelog nofd_log;    /* connections not accepted: no descriptor left */
	struct ratelog slow_log;    /* clients disconnected for not reading */
	int inotify_fd;
	sd_event_source *inotify_src; /* the watch of a local repository (moved by a reload) */
	sd_event_source *stop_timer;
	struct client *clients;
	unsigned next_serial;
	uid_t self_uid;
	char *admin_group; /* admin_group as configured at start (a reload keeps it), or NULL */
	gid_t admin_gid;   /* its gid, when it exists (have_admin_gid) */
	bool have_admin_gid;
};

/* Whether the daemon is shutting down (any thread, no lock needed). */
static inline bool
daemon_stopping(struct daemon *d)
{
	return atomic_load(&d->stopping);
}

/* Whether the worker thread has returned (any thread, no lock needed). */
static inline bool
daemon_worker_done(struct daemon *d)
{
	return atomic_load(&d->worker_done);
}

/* worker.c */
void *worker_main(void *arg);
/* Pushes a line for the loop (takes ownership of line), and wakes it. Caller holds mu. */
void daemon_post_locked(struct daemon *d, unsigned client_serial, const char *plan_id, char *line);
/* Wakes the worker (reconcile now). Main thread. */
void daemon_wake_worker(struct daemon *d);
/* Wakes the worker, which also tries failed plans again (taskslapsctl reconcile). Main thread. */
void daemon_request_retry(struct daemon *d);

/* control.c */
int control_listen(struct daemon *d);
void control_close(struct daemon *d);
/* Delivers queued replies and events to clients (main thread). */
void control_flush(struct daemon *d);

/* notify.c: sd_notify STATUS= from the status document. */
void daemon_notify_status(struct daemon *d);

#endif
