/*
 * taskslapsctl --db CONNINFO apply (DIR|FILE...): the executor once, without
 * git or a daemon — for pipelines and local development. Plans run in order;
 * the first plan that is not applied stops the line.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "exec/exec.h"
#include "line/line.h"
#include "plan/plan_dir.h"
#include "util/alloc.h"

/* The one executor a signal handler may abort: set while plans run. */
static struct exec *volatile apply_exec;

static void
on_signal(int sig)
{
	(void)sig;
	if (apply_exec)
		exec_abort(apply_exec);
}

struct printer {
	struct render r;
	bool bar_shown; /* a progress bar is on the current line */
	bool quiet;
};

static void
print_event(const struct exec_event *ev, void *arg)
{
	struct printer *pr = arg;
	FILE *o = pr->r.out;
	char ts[16];
	time_t now = time(NULL);
	struct tm tm;

	if (pr->quiet)
		return;
	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	if (!strcmp(ev->type, "step.progress") && pr->r.color && ev->metrics) {
		/* live bar on a terminal: rewrite the same line */
		long long done = 0, total = 0;
		double rate = 0, eta = -1;
		const char *m;
		int width = 30, fill;

		if ((m = strstr(ev->metrics, "\"rows_done\": ")))
			done = strtoll(m + 13, NULL, 10);
		if ((m = strstr(ev->metrics, "\"rows_total\": ")))
			total = strtoll(m + 14, NULL, 10);
		if ((m = strstr(ev->metrics, "\"rate\": ")))
			rate = strtod(m + 8, NULL);
		if ((m = strstr(ev->metrics, "\"eta_s\": ")))
			eta = strtod(m + 9, NULL);
		fill = total > 0 ? (int)(width * (done > total ? total : done) / total) : 0;
		fprintf(o, "\r\x1b[K%s  backfill [%.*s%*s] %lld/%lld rows  %.0f rows/s", ts, fill,
			"##############################", width - fill, "", done, total, rate);
		if (eta >= 0)
			fprintf(o, "  ETA %.0fs", eta);
		fflush(o);
		pr->bar_shown = true;
		return;
	}
	if (pr->bar_shown) {
		fputs("\r\x1b[K", o);
		pr->bar_shown = false;
	}
	fprintf(o, "%s  %-20s %s%s%s%s%.16s%s%s\n", ts, ev->type, ev->plan_id ? ev->plan_id : "",
		ev->wave ? "/" : "", ev->wave ? ev->wave : "", ev->step_sha ? " " : "",
		ev->step_sha ? ev->step_sha : "", ev->message && ev->message[0] ? "  " : "",
		ev->message ? ev->message : "");
	fflush(o);
}

/* Plan paths from the arguments: a directory gives its plans in order. */
static int
collect(int argc, char **argv, char ***out, size_t *n)
{
	size_t cap = 16;

	*n = 0;
	*out = xcalloc(cap, sizeof(char *));
	for (int i = 0; i < argc; i++) {
		struct stat st;
		struct plan_dir pd = { 0 };
		struct diags d = DIAGS_INIT;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "taskslapsctl apply: %s: no such file or directory\n",
				argv[i]);
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (*n == cap)
				*out = xrealloc(*out, (cap *= 2) * sizeof(char *));
			(*out)[(*n)++] = xstrdup(argv[i]);
			continue;
		}
		if (plan_dir_list(&pd, argv[i], &d) < 0) {
			diags_print(&d, stderr);
			diags_clear(&d);
			return -1;
		}
		for (size_t k = 0; k < pd.n; k++) {
			if (*n == cap)
				*out = xrealloc(*out, (cap *= 2) * sizeof(char *));
			(*out)[(*n)++] = xstrdup(pd.paths[k]);
		}
		plan_dir_free(&pd);
	}
	return 0;
}

int
ctl_open_exec(const struct ctl_global *g, struct exec **ex, struct exec_config *cfg, bool install)
{
	struct db_error err;

	if (!g->db) {
		fprintf(stderr, "taskslapsctl: this verb needs --db CONNINFO (or $TASKSLAPS_DB)\n");
		return CTL_USAGE;
	}
	if (exec_open(ex, g->db, cfg, &err) < 0) {
		/* db_connect scrubbed the password out of libpq's message */
		fprintf(stderr, "taskslapsctl: %s\n", err.message);
		return CTL_FINDINGS;
	}
	if (install && exec_install_schema(*ex, false, &err) < 0) {
		fprintf(stderr, "taskslapsctl: %s\n", err.message);
		exec_close(*ex);
		*ex = NULL;
		return CTL_FINDINGS;
	}
	return CTL_OK;
}

/*
 * The line of an apply: every plan file loaded (a duplicate id makes the
 * later file invalid), the branch's policy applied, and the database's
 * view of each, for the line's core (src/line/line.h), which decides what
 * runs, in which order, and where the line stops — as in the daemon.
 */
struct apply_line {
	size_t n;
	struct plan **p; /* NULL: invalid, its errors in dg */
	struct diags *dg;
	struct line_plan *lp;
	struct line_verdict *out;
	bool *ran;	/* run (or, in a dry run, would run) in this apply */
	PGresult *view; /* plan_id, status, checksum */
};

static void
apply_line_free(struct apply_line *l)
{
	for (size_t i = 0; i < l->n; i++) {
		plan_free(l->p[i]);
		diags_clear(&l->dg[i]);
	}
	free(l->p);
	free(l->dg);
	free(l->lp);
	free(l->out);
	free(l->ran);
	PQclear(l->view);
}

/* The row of plan id in the view, as the core's facts. */
static void
apply_line_row(struct apply_line *l, size_t i)
{
	struct line_plan *lp = &l->lp[i];

	for (int r = 0; l->view && r < PQntuples(l->view); r++) {
		if (strcmp(PQgetvalue(l->view, r, 0), lp->id) != 0)
			continue;
		lp->has_row = true;
		if (line_status_parse(PQgetvalue(l->view, r, 1), &lp->db) < 0)
			lp->db = LINE_PENDING;
		lp->db_checksum = PQgetvalue(l->view, r, 2);
		return;
	}
}

/*
 * The plan files, read and planned on a thread of their own while the main
 * thread connects, installs the schema and takes the runner lock: the
 * client's work and the server's overlap. Nothing here touches the
 * database; the plans are plain memory, freed by whichever thread.
 */
struct preload {
	char **paths;
	size_t n;
	struct plan **p;
	struct diags *dg;
	pthread_t thread;
	bool started;
	atomic_bool stop; /* no use for the rest: the run ends before its line */
};

static void *
preload_run(void *arg)
{
	struct preload *pl = arg;

	for (size_t i = 0; i < pl->n && !atomic_load(&pl->stop); i++)
		(void)plan_load(&pl->p[i], pl->paths[i], &pl->dg[i]);
	return NULL;
}

static void
preload_start(struct preload *pl, char **paths, size_t n)
{
	pl->paths = paths;
	pl->n = n;
	pl->p = xcalloc(n ? n : 1, sizeof(*pl->p));
	pl->dg = xcalloc(n ? n : 1, sizeof(*pl->dg));
	for (size_t i = 0; i < n; i++)
		pl->dg[i] = (struct diags)DIAGS_INIT;
	atomic_init(&pl->stop, false);
	/* no thread (or none to be had): read them here */
	pl->started = n > 0 && pthread_create(&pl->thread, NULL, preload_run, pl) == 0;
	if (!pl->started)
		(void)preload_run(pl);
}

static void
preload_join(struct preload *pl)
{
	if (pl->started)
		(void)pthread_join(pl->thread, NULL);
	pl->started = false;
}

/* What apply_line_load did not take (all of it when the run ends before its line). */
static void
preload_free(struct preload *pl)
{
	atomic_store(&pl->stop, true);
	preload_join(pl);
	for (size_t i = 0; pl->p && i < pl->n; i++) {
		plan_free(pl->p[i]);
		diags_clear(&pl->dg[i]);
	}
	free(pl->p);
	free(pl->dg);
	memset(pl, 0, sizeof(*pl));
}

/* The line's plans, from the preload (which gives them up). */
static void
apply_line_load(struct apply_line *l, struct exec *ex, const char *target, struct preload *pl,
		const struct plan_policy *pol)
{
	const char *params[1] = { target };
	struct plan_idset *ids = plan_idset_new();
	struct db_error err;
	char **paths = pl->paths;
	size_t n = pl->n;

	preload_join(pl);
	l->n = n;
	l->p = pl->p;
	l->dg = pl->dg;
	pl->p = NULL;
	pl->dg = NULL;
	l->lp = xcalloc(n ? n : 1, sizeof(*l->lp));
	l->out = xcalloc(n ? n : 1, sizeof(*l->out));
	l->ran = xcalloc(n ? n : 1, sizeof(*l->ran));
	/* a database without the schema has no rows: the dry run says what it needs */
	if (db_exec(exec_db(ex), &l->view, &err,
		    "SELECT plan_id, status, coalesce(checksum, '') FROM taskslaps.plans WHERE "
		    "target = $1",
		    1, params) < 0)
		l->view = NULL;
	for (size_t i = 0; i < n; i++) {
		struct line_plan *lp = &l->lp[i];
		struct plan *p = NULL;
		const char *first;

		p = l->p[i];
		if (p && !l->dg[i].nerrors && !plan_idset_add(ids, p->id, paths[i], &first))
			diags_add(&l->dg[i], DIAG_ERROR, paths[i], p->id_line, p->id_col,
				  "duplicate plan id '%s': %s has it already", p->id, first);
		if (l->dg[i].nerrors) {
			plan_free(p);
			p = NULL;
		} else {
			plan_apply_policy(p, pol);
		}
		l->p[i] = p;
		lp->id = p ? p->id : paths[i];
		lp->valid = p != NULL;
		lp->checksum = p ? p->checksum : NULL;
		lp->blocked = p && p->blocked;
		lp->reverts = LINE_NONE;
		for (size_t k = 0; p && p->revert_of && k < i; k++)
			if (l->p[k] && !strcmp(l->p[k]->id, p->revert_of)) {
				lp->is_revert = true;
				lp->reverts = k;
				break;
			}
		if (p)
			apply_line_row(l, i);
	}
	plan_idset_free(ids);
}

/* The view after plan i ran (or would run) with outcome o. */
static void
apply_line_ran(struct apply_line *l, size_t i, enum exec_outcome o)
{
	static const enum line_status st[] = {
		[EXEC_UNSET] = LINE_FAILED,	[EXEC_APPLIED] = LINE_APPLIED,
		[EXEC_FAILED] = LINE_FAILED,	[EXEC_BLOCKED] = LINE_BLOCKED,
		[EXEC_DRIFT] = LINE_DRIFT,	[EXEC_ABORTED] = LINE_ABORTED,
		[EXEC_CONN_LOST] = LINE_PENDING
	};
	struct line_plan *lp = &l->lp[i];

	l->ran[i] = true;
	if (o != EXEC_DRIFT || !lp->has_row)
		lp->db_checksum = lp->checksum;
	lp->has_row = true;
	lp->db = (unsigned)o < sizeof(st) / sizeof(st[0]) ? st[o] : LINE_FAILED;
	lp->failed_here = o == EXEC_FAILED;
	if (o == EXEC_APPLIED && lp->is_revert)
		l->lp[lp->reverts].db = line_status_reverted_to(l->p[i]->to_wave);
}

/* The first plan the line does not get past (not applied, not reverted), or LINE_NONE. */
static size_t
apply_line_stop(const struct apply_line *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->out[i].status != LINE_APPLIED && !line_status_reverted(l->out[i].status))
			return i;
	return LINE_NONE;
}

static void
print_failure(const struct plan *p, const struct exec_result *res)
{
	fprintf(stderr, "taskslapsctl apply: %s %s: %s%s%s%s\n", p->id,
		exec_outcome_name(res->outcome), res->message,
		res->sqlstate[0] ? " (SQLSTATE " : "", res->sqlstate, res->sqlstate[0] ? ")" : "");
}

/*
 * Runs the line: the plan the core names, its outcome into the view, and
 * again, until it names none; then the plan that stops the line says why
 * (an invalid file its errors; drift, a block or an abort through the
 * executor, which records them). Returns CTL_OK, CTL_FINDINGS or CTL_USAGE.
 */
static int
apply_line_run(struct apply_line *l, struct exec *ex, size_t *applied)
{
	static const struct line_config lcfg = { LINE_OOO_RUN };
	struct line_decision dec;
	struct exec_result res;
	size_t stop;

	for (;;) {
		size_t i;

		line_decide(&lcfg, l->lp, l->n, l->out, &dec);
		if (dec.next == LINE_NONE || l->ran[dec.next])
			break;
		i = dec.next;
		if (l->lp[i].is_revert && l->out[l->lp[i].reverts].why == LINE_WHY_REVERT_NEXT)
			printf("%s reverts %s, which stops the line: it runs now\n", l->p[i]->id,
			       l->p[l->lp[i].reverts]->id);
		if (exec_run_plan(ex, l->p[i], NULL, &res) < 0 || res.outcome != EXEC_APPLIED)
			print_failure(l->p[i], &res);
		apply_line_ran(l, i, res.outcome);
	}
	stop = apply_line_stop(l);
	*applied = 0;
	for (size_t i = 0; i < (stop == LINE_NONE ? l->n : stop); i++)
		*applied += l->out[i].status == LINE_APPLIED;
	if (stop == LINE_NONE)
		return CTL_OK;
	if (!l->p[stop]) {
		diags_print(&l->dg[stop], stderr);
		fprintf(stderr, "taskslapsctl apply: %s is invalid; the plans after it wait\n",
			l->lp[stop].id);
		return CTL_USAGE;
	}
	if (!l->ran[stop] &&
	    (exec_run_plan(ex, l->p[stop], NULL, &res) < 0 || res.outcome != EXEC_APPLIED))
		print_failure(l->p[stop], &res);
	return CTL_FINDINGS;
}

/*
 * The dry run of the line: the core's decisions with every plan that would
 * run taken as applied, then each plan's report in order. The verdicts of
 * the line (drift, aborted) are the core's, as the daemon's and apply's.
 */
static int
apply_line_dry(struct apply_line *l, struct exec *ex, struct printer *pr)
{
	static const struct line_config lcfg = { LINE_OOO_RUN };
	struct line_decision dec;
	int rc = CTL_OK;

	for (;;) {
		line_decide(&lcfg, l->lp, l->n, l->out, &dec);
		if (dec.next == LINE_NONE || l->ran[dec.next])
			break;
		apply_line_ran(l, dec.next, EXEC_APPLIED);
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct line_verdict *v = &l->out[i];
		struct plan *p = l->p[i];
		struct exec_result res;
		char *report = NULL;

		if (!p) {
			diags_print(&l->dg[i], stderr);
			fprintf(stderr,
				"taskslapsctl apply: %s is invalid; the plans after it wait\n",
				l->lp[i].id);
			rc = CTL_USAGE;
			break;
		}
		exec_dry_run(ex, p, &report, &res);
		if (!l->ran[i] && v->status == LINE_DRIFT && res.outcome != EXEC_DRIFT) {
			res.outcome = EXEC_DRIFT;
			snprintf(res.message, sizeof(res.message),
				 "plan %s was applied with checksum %.16s; the file has %.16s",
				 p->id, l->lp[i].db_checksum, p->checksum);
		} else if (!l->ran[i] && v->status == LINE_ABORTED) {
			res.outcome = EXEC_ABORTED;
			snprintf(res.message, sizeof(res.message),
				 "plan %s is aborted; `taskslapsctl resume %s` lets it run again",
				 p->id, p->id);
		}
		render_plan(&pr->r, p, false);
		printf("\ndry run: %s\n%s\n", res.message[0] ? res.message : "would apply",
		       report ? report : "");
		free(report);
		if (res.outcome != EXEC_APPLIED)
			rc = CTL_FINDINGS;
	}
	return rc;
}

int
cmd_apply(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = { { "mode", required_argument, NULL, 'm' },
					      { "dry-run", no_argument, NULL, 'n' },
					      { "lock-wait", required_argument, NULL, 'w' },
					      { "lock-retries", required_argument, NULL, 'r' },
					      { "quiet", no_argument, NULL, 'q' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	enum plan_mode mode = MODE_PROTECTED;
	bool dry = false;
	struct exec_config cfg;
	struct printer pr = { 0 };
	struct plan_policy pol;
	struct exec *ex = NULL;
	struct apply_line line = { 0 };
	struct preload pl = { 0 };
	char **paths = NULL, *end;
	size_t n = 0, applied = 0;
	int c, rc = CTL_OK, holder = 0;
	struct db_error err;
	struct sigaction sa;

	exec_config_default(&cfg);
	while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (ctl_parse_mode(optarg, &mode) < 0)
				return CTL_USAGE;
			break;
		case 'n': dry = true; break;
		case 'q': pr.quiet = true; break;
		case 'w':
			cfg.runner_lock_wait_ms = (int)strtol(optarg, &end, 10) * 1000;
			if (*end || cfg.runner_lock_wait_ms < 0) {
				fprintf(
				    stderr,
				    "taskslapsctl apply: --lock-wait: expected seconds, found '%s'\n",
				    optarg);
				return CTL_USAGE;
			}
			break;
		case 'r':
			cfg.lock_retries = (int)strtol(optarg, &end, 10);
			if (*end || cfg.lock_retries < 0 || cfg.lock_retries > 1000) {
				fprintf(
				    stderr,
				    "taskslapsctl apply: --lock-retries: expected 0..1000, found '%s'\n",
				    optarg);
				return CTL_USAGE;
			}
			break;
		case 'h': ctl_usage(stdout, ctl_verb_find("apply")); return CTL_OK;
		default: ctl_usage(stderr, ctl_verb_find("apply")); return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "taskslapsctl apply: expected a DIR or FILE...\n");
		ctl_usage(stderr, ctl_verb_find("apply"));
		return CTL_USAGE;
	}
	if (collect(argc - optind, argv + optind, &paths, &n) < 0) {
		rc = CTL_USAGE;
		goto out;
	}
	render_init(&pr.r, stdout);
	cfg.target = g->target ? g->target : "default";
	cfg.applied_by = "taskslapsctl apply";
	cfg.on_event = print_event;
	cfg.event_arg = &pr;
	plan_policy_default(&pol, mode);
	preload_start(&pl, paths, n);
	if ((rc = ctl_open_exec(g, &ex, &cfg, !dry)) != CTL_OK)
		goto out;
	if (!dry) {
		int got = exec_runner_lock(ex, &holder, &err);
		if (got < 0) {
			fprintf(stderr, "taskslapsctl apply: %s\n", err.message);
			rc = CTL_FINDINGS;
			goto out;
		}
		if (got == 0) {
			fprintf(
			    stderr,
			    "taskslapsctl apply: standby: another runner (pid %d) holds the runner "
			    "lock of this database\n",
			    holder);
			rc = CTL_FINDINGS;
			goto out;
		}
		/* one query for what is already applied, instead of one per plan */
		if (exec_prefetch_applied(ex, &err) < 0) {
			fprintf(stderr, "taskslapsctl apply: reading the plans: %s\n", err.message);
			rc = CTL_FINDINGS;
			goto out;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	apply_exec = ex;
	apply_line_load(&line, ex, cfg.target, &pl, &pol);
	if (dry)
		rc = apply_line_dry(&line, ex, &pr);
	else
		rc = apply_line_run(&line, ex, &applied);
	apply_exec = NULL;
	if (!dry && !pr.quiet)
		printf("%zu of %zu plan%s applied or already applied\n", applied, n,
		       n == 1 ? "" : "s");
out:
	preload_free(&pl);
	apply_line_free(&line);
	exec_close(ex);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return rc;
}
