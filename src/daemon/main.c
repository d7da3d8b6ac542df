/*
 * taskslapsd --config FILE: the GitOps reconciler. The main thread owns the
 * event loop; the worker thread (worker.c) reconciles.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/fphash.h"
#include "daemon/worker_int.h"
#include "repo/repo.h"
#include "taskslaps/version.h"
#include "util/alloc.h"
#include "util/log.h"

/* After SIGTERM the current batch may finish; past this, the statement is cancelled. */
#define STOP_GRACE_USEC (20 * 1000000ULL)

static void
usage(FILE *out)
{
	fputs(
	    "usage: taskslapsd --config FILE [-n] [--once] [--debug]\n"
	    "\n"
	    "Follows a branch of a git repository of migration plans and applies them to a\n"
	    "PostgreSQL database under taskslaps' safety rails. See taskslapsd(8).\n"
	    "\n"
	    "  -c, --config FILE  the target's configuration (taskslaps.yaml(5))\n"
	    "  -n, --check        check the configuration and the plans at the branch tip, then exit\n"
	    "      --once         reconcile once and exit (0 in sync, 1 otherwise)\n"
	    "      --debug        log debug messages\n"
	    "      --version      print the version\n"
	    "  -h, --help         this help\n",
	    out);
}

static void
status_init(struct daemon *d)
{
	char at[32];
	cJSON *s = cJSON_CreateObject(), *db, *gov;

	iso_now(at, sizeof(at));
	cJSON_AddStringToObject(s, "target", d->cfg->target);
	cJSON_AddStringToObject(s, "state", "starting");
	cJSON_AddNumberToObject(s, "pid", getpid());
	cJSON_AddStringToObject(s, "version", TS_VERSION);
	cJSON_AddStringToObject(s, "started_at", at);
	{
		/* a URL may carry a password: status is readable by anyone on the socket */
		char *shown = repo_url_redact(d->cfg->repository);
		cJSON_AddStringToObject(s, "repository", shown);
		free(shown);
	}
	cJSON_AddStringToObject(s, "branch", d->cfg->branch);
	cJSON_AddBoolToObject(s, "protected", config_branch_protected(d->cfg, d->cfg->branch));
	cJSON_AddStringToObject(
	    s, "mode", config_branch_protected(d->cfg, d->cfg->branch) ? "protected" : "chaos");
	cJSON_AddNullToObject(s, "tip");
	cJSON_AddStringToObject(s, "sync", "unknown");
	cJSON_AddStringToObject(s, "health", "progressing");
	cJSON_AddNullToObject(s, "last_applied_commit");
	cJSON_AddNullToObject(s, "last_attempted_commit");
	cJSON_AddStringToObject(s, "last_result", "starting");
	db = cJSON_AddObjectToObject(s, "database");
	cJSON_AddFalseToObject(db, "connected");
	cJSON_AddNullToObject(db, "error");
	gov = cJSON_AddObjectToObject(s, "governor");
	cJSON_AddStringToObject(gov, "state", "healthy");
	cJSON_AddNumberToObject(gov, "factor", 1.0);
	cJSON_AddNullToObject(s, "running");
	cJSON_AddArrayToObject(s, "plans");
	cJSON_AddArrayToObject(s, "drift");
	d->status = s;
	d->history = cJSON_CreateArray();
}

static void
begin_stop(struct daemon *d)
{
	pthread_mutex_lock(&d->mu);
	/* under mu: the worker tests it before waiting on cond */
	if (atomic_exchange(&d->stopping, true)) {
		pthread_mutex_unlock(&d->mu);
		return;
	}
	if (d->ex)
		exec_stop(d->ex);
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->mu);
	(void)sd_notify(0, "STOPPING=1");
	log_info("[%s] stopping: the current step or batch finishes, then the runner lock is "
		 "released",
		 d->cfg->target);
}

static int
on_stop_grace(sd_event_source *s, uint64_t usec, void *arg)
{
	struct daemon *d = arg;

	(void)s;
	(void)usec;
	pthread_mutex_lock(&d->mu);
	if (d->ex) {
		log_warnx("[%s] still busy after the grace time: cancelling the statement "
			  "(it rolls back)",
			  d->cfg->target);
		exec_cancel(d->ex);
	}
	pthread_mutex_unlock(&d->mu);
	return 0;
}

static int
on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *arg)
{
	struct daemon *d = arg;
	uint64_t now;

	(void)s;
	(void)si;
	begin_stop(d);
	if (!d->stop_timer && sd_event_now(d->loop, CLOCK_MONOTONIC, &now) >= 0)
		sd_event_add_time(d->loop, &d->stop_timer, CLOCK_MONOTONIC, now + STOP_GRACE_USEC,
				  0, on_stop_grace, d);
	return 0;
}

static int watch_repo(struct daemon *d);

/* Some keys cannot change while running: say so and keep the old value's effect. */
static void
reload(struct daemon *d)
{
	struct diags dg = DIAGS_INIT;
	struct config *c = NULL;

	(void)sd_notify(0, "RELOADING=1");
	if (config_load(&c, d->cfg->path, &dg) < 0) {
		diags_print(&dg, stderr);
		log_warnx("[%s] reload: the new configuration is invalid; keeping the old one",
			  d->cfg->target);
	} else if (strcmp(c->target, d->cfg->target) ||
		   strcmp(c->control_socket, d->cfg->control_socket)) {
		log_warnx("[%s] reload: target and control_socket cannot change while running; "
			  "restart instead. Keeping the old configuration",
			  d->cfg->target);
		config_free(c);
	} else {
		pthread_mutex_lock(&d->mu);
		d->retired = xrealloc(d->retired, (d->nretired + 1) * sizeof(*d->retired));
		d->retired[d->nretired++] = d->cfg;
		d->cfg = c;
		atomic_store(&d->wake, true);
		{
			char *shown = repo_url_redact(c->repository);
			bool prot = config_branch_protected(c, c->branch);
			cJSON_ReplaceItemInObject(d->status, "repository",
						  cJSON_CreateString(shown));
			cJSON_ReplaceItemInObject(d->status, "branch",
						  cJSON_CreateString(c->branch));
			cJSON_ReplaceItemInObject(d->status, "protected", cJSON_CreateBool(prot));
			cJSON_ReplaceItemInObject(d->status, "mode",
						  cJSON_CreateString(prot ? "protected" : "chaos"));
			free(shown);
		}
		pthread_cond_signal(&d->cond);
		pthread_mutex_unlock(&d->mu);
		/* the repository or branch may be another now: pushes to it wake the worker */
		if (!d->once)
			watch_repo(d);
		log_info("[%s] reload: configuration re-read; it takes effect on the next pass",
			 c->target);
	}
	diags_clear(&dg);
	(void)sd_notify(0, "READY=1");
}

static int
on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *arg)
{
	(void)s;
	(void)si;
	reload(arg);
	return 0;
}

/* The worker has events or replies for clients, or has finished. */
static int
on_efd(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	struct daemon *d = arg;
	uint64_t n;

	(void)s;
	(void)revents;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("eventfd read");
	control_flush(d);
	if (daemon_worker_done(d)) {
		int ok;
		pthread_mutex_lock(&d->mu);
		ok = strcmp(cJSON_GetObjectItem(d->status, "sync")->valuestring, "in_sync") == 0;
		pthread_mutex_unlock(&d->mu);
		if (d->once)
			d->exit_code = ok ? 0 : 1;
		sd_event_exit(d->loop, d->exit_code);
	}
	return 0;
}

/*
 * A push to the local repository: any change under the watched ref
 * directories but git's lock files. A ref is written as "<ref>.lock" and
 * renamed onto the ref (packed-refs the same way): the lock's creation comes
 * before the new tip is there, and a pass woken by it would find the old
 * tip and make the push wait for a second pass.
 */
static int
on_inotify(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool wake = false;
	ssize_t len;

	(void)s;
	(void)revents;
	while ((len = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			size_t nl = ev->len ? strlen(ev->name) : 0;

			if (nl < 5 || strcmp(ev->name + nl - 5, ".lock") != 0)
				wake = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (wake)
		daemon_wake_worker(arg);
	return 0;
}

static void
unwatch_repo(struct daemon *d)
{
	d->inotify_src = sd_event_source_disable_unref(d->inotify_src);
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	d->inotify_fd = -1;
}

/*
 * Watches the configured repository, when it is a local path, for pushes
 * (replacing an earlier watch: a reload may name another repository or
 * branch). A URL is fetched every poll_interval by the worker, which owns
 * its mirror: nothing to watch, and no fetch on this thread.
 */
static int
watch_repo(struct daemon *d)
{
	char err[512];
	struct repo *r = NULL;
	const char *const *paths;
	int n = 0;

	unwatch_repo(d);
	if (repo_location_is_url(d->cfg->repository))
		return 0;
	/* a throwaway handle just for the paths; the worker opens its own */
	if (repo_open(&r, d->cfg->repository, d->cfg->state_dir, d->cfg->branch, err, sizeof(err)) <
	    0) {
		log_warnx("[%s] %s (changes are seen by polling only)", d->cfg->target, err);
		return 0;
	}
	paths = repo_watch_paths(r);
	if (paths && paths[0]) {
		d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		for (size_t i = 0; d->inotify_fd >= 0 && paths[i]; i++)
			if (inotify_add_watch(d->inotify_fd, paths[i],
					      IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE |
						  IN_DELETE) >= 0)
				n++;
		if (n && sd_event_add_io(d->loop, &d->inotify_src, d->inotify_fd, EPOLLIN,
					 on_inotify, d) < 0)
			n = 0;
		if (!n)
			unwatch_repo(d);
	}
	repo_free(r);
	return n;
}

/* -n: the configuration parsed already; check that the plans at the tip parse too. */
static int
check_only(struct daemon *d)
{
	char err[512];
	struct repo *r = NULL;
	struct repo_snapshot *s = NULL;
	int bad = 0;

	if (repo_open(&r, d->cfg->repository, d->cfg->state_dir, d->cfg->branch, err, sizeof(err)) <
		0 ||
	    repo_snapshot(r, d->cfg->migrations_dir, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "taskslapsd: %s\n", err);
		repo_free(r);
		return 1;
	}
	for (size_t i = 0; i < s->n; i++) {
		struct diags dg = DIAGS_INIT;
		struct plan *p = NULL;

		if (s->files[i].too_large) {
			fprintf(stderr, "%s: file is %zu bytes; a plan may be at most %d bytes\n",
				s->files[i].path, s->files[i].len, REPO_PLAN_MAX_BYTES);
			bad++;
		} else if (plan_parse(&p, s->files[i].path, s->files[i].content, s->files[i].len,
				      &dg) < 0) {
			diags_print(&dg, stderr);
			bad++;
		}
		plan_free(p);
		diags_clear(&dg);
	}
	printf("%s: configuration ok; %zu plan%s at %.12s of %s, %d invalid\n", d->cfg->path, s->n,
	       s->n == 1 ? "" : "s", s->tip, d->cfg->branch, bad);
	repo_snapshot_free(s);
	repo_free(r);
	return bad ? 1 : 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
					      { "check", no_argument, NULL, 'n' },
					      { "once", no_argument, NULL, 'o' },
					      { "debug", no_argument, NULL, 'd' },
					      { "version", no_argument, NULL, 'V' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct daemon d = { .listen_fd = -1, .inotify_fd = -1, .efd = -1 };
	const char *path = NULL;
	struct diags dg = DIAGS_INIT;
	enum log_level lvl = LOG_LVL_INFO;
	sigset_t ss;
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:nh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'n': d.check_only = true; break;
		case 'o': d.once = true; break;
		case 'd': lvl = LOG_LVL_DEBUG; break;
		case 'V': printf("taskslapsd %s\n", TS_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!path || optind != argc) {
		usage(stderr);
		return 2;
	}
	fp_seed_init();
	log_init("taskslapsd", lvl);
	/*
	 * One malloc arena for both threads. glibc gives every thread that
	 * allocates its own arena (a 64 MiB reservation of which the worker
	 * touched about 1 MiB), and each arena keeps its own free memory, so
	 * the worker's pass leaves pages behind that the main thread cannot
	 * reuse. The two threads rarely allocate at the same moment: the lock
	 * of the one arena costs nothing measurable, and the worker's free
	 * memory goes back to the kernel after each pass (worker.c).
	 */
	(void)mallopt(M_ARENA_MAX, 1);
	if (config_load(&d.cfg, path, &dg) < 0) {
		diags_print(&dg, stderr);
		diags_clear(&dg);
		return 2;
	}
	if (d.check_only) {
		rc = check_only(&d);
		config_free(d.cfg);
		return rc;
	}
	/* libgit2's last shutdown must happen on this thread (see repo.h) */
	if (repo_global_init() < 0)
		fatalx("cannot initialise libgit2");
	pthread_mutex_init(&d.mu, NULL);
	pthread_cond_init(&d.cond, NULL);
	d.outq_tail = &d.outq;
	d.self_uid = getuid();
	if (d.cfg->admin_group) {
		struct group *g = getgrnam(d.cfg->admin_group);

		d.admin_group = xstrdup(d.cfg->admin_group);
		if (!g)
			log_warnx(
			    "[%s] admin_group '%s' does not exist: only root may change things",
			    d.cfg->target, d.cfg->admin_group);
		else
			d.admin_gid = g->gr_gid, d.have_admin_gid = true;
	}
	status_init(&d);

	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_BLOCK, &ss, NULL); /* before the worker starts, so it inherits the mask */
	signal(SIGPIPE, SIG_IGN);
	if (sd_event_default(&d.loop) < 0)
		fatalx("cannot create the event loop");
	sd_event_add_signal(d.loop, NULL, SIGTERM, on_sigterm, &d);
	sd_event_add_signal(d.loop, NULL, SIGINT, on_sigterm, &d);
	sd_event_add_signal(d.loop, NULL, SIGHUP, on_sighup, &d);
	d.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	sd_event_add_io(d.loop, NULL, d.efd, EPOLLIN, on_efd, &d);
	if (!d.once && control_listen(&d) < 0) {
		rc = 1;
		goto out;
	}
	if (!d.once)
		watch_repo(&d);
	/* WATCHDOG=1 is sent by the loop itself at half WatchdogSec when systemd asks */
	sd_event_set_watchdog(d.loop, true);
	/* the first pass, and one more right after it (before the thread: no lock needed) */
	atomic_store(&d.wake, true);
	if (pthread_create(&d.worker, NULL, worker_main, &d) != 0)
		fatalx("cannot start the worker thread");
	d.worker_started = true;
	(void)sd_notify(0, "READY=1");
	char *shown = repo_url_redact(d.cfg->repository);
	log_info("[%s] following %s of %s (%s mode); control socket %s", d.cfg->target,
		 d.cfg->branch, shown,
		 config_branch_protected(d.cfg, d.cfg->branch) ? "protected" : "chaos",
		 d.once ? "(none with --once)" : d.cfg->control_socket);
	free(shown);
	rc = sd_event_loop(d.loop);
out:
	begin_stop(&d);
	if (d.worker_started)
		pthread_join(d.worker, NULL);
	control_close(&d);
	while (d.outq) {
		struct outq *q = d.outq;
		d.outq = q->next;
		free(q->line);
		free(q->plan_id);
		free(q);
	}
	unwatch_repo(&d);
	if (d.efd >= 0)
		close(d.efd);
	sd_event_source_unref(d.stop_timer);
	sd_event_unref(d.loop);
	cJSON_Delete(d.status);
	cJSON_Delete(d.history);
	for (size_t i = 0; i < d.nretired; i++)
		config_free(d.retired[i]);
	free(d.retired);
	free(d.admin_group);
	repo_global_shutdown();
	log_info("[%s] stopped", d.cfg->target);
	config_free(d.cfg);
	return rc < 0 ? 1 : rc;
}
