/*
 * taskslapsctl --db CONNINFO apply (DIR|FILE...): the executor once, without
 * git or a daemon — for pipelines and local development. Plans run in order;
 * the first plan that is not applied stops the line.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "exec/exec.h"
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
 * A failed plan's remedy: the revert plan among paths[from..n) that reverts
 * plan id runs at once (the plans between wait: they run after it, in their
 * order). Returns 1 when one was found and applied, 0 when there is none
 * (or it is invalid: its turn says why), -1 when it did not apply.
 */
static int
run_revert_of(struct exec *ex, const struct plan_policy *pol, const char *id, char **paths,
	      size_t from, size_t n)
{
	for (size_t j = from; j < n; j++) {
		struct diags d = DIAGS_INIT;
		struct plan *r = NULL;
		struct exec_result res;
		int rc;

		/* every file is read, as the line will read it: its errors are said in its turn */
		(void)plan_load(&r, paths[j], &d);
		diags_clear(&d);
		if (!r || !r->revert_of || strcmp(r->revert_of, id) != 0) {
			plan_free(r);
			continue;
		}
		plan_apply_policy(r, pol);
		printf("%s reverts %s, which stops the line: it runs now\n", r->id, id);
		rc = exec_run_plan(ex, r, NULL, &res) < 0 || res.outcome != EXEC_APPLIED ? -1 : 1;
		if (rc < 0)
			fprintf(stderr, "taskslapsctl apply: %s %s: %s%s%s%s\n", r->id,
				exec_outcome_name(res.outcome), res.message,
				res.sqlstate[0] ? " (SQLSTATE " : "", res.sqlstate,
				res.sqlstate[0] ? ")" : "");
		plan_free(r);
		return rc;
	}
	return 0;
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
	struct plan_idset *ids = NULL;
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
	ids = plan_idset_new();
	for (size_t i = 0; i < n; i++) {
		struct diags d = DIAGS_INIT;
		struct plan *p = NULL;
		struct exec_result res;
		const char *first;

		if (plan_load(&p, paths[i], &d) == 0 &&
		    !plan_idset_add(ids, p->id, paths[i], &first))
			diags_add(&d, DIAG_ERROR, paths[i], p->id_line, p->id_col,
				  "duplicate plan id '%s': %s has it already", p->id, first);
		if (d.nerrors) {
			diags_print(&d, stderr);
			fprintf(stderr,
				"taskslapsctl apply: %s is invalid; the plans after it wait\n",
				paths[i]);
			diags_clear(&d);
			plan_free(p);
			rc = CTL_USAGE;
			break;
		}
		diags_clear(&d);
		plan_apply_policy(p, &pol);
		if (dry) {
			char *report = NULL;
			exec_dry_run(ex, p, &report, &res);
			render_plan(&pr.r, p, false);
			printf("\ndry run: %s\n%s\n", res.message[0] ? res.message : "would apply",
			       report ? report : "");
			free(report);
			if (res.outcome != EXEC_APPLIED)
				rc = CTL_FINDINGS;
			plan_free(p);
			continue;
		}
		if (exec_run_plan(ex, p, NULL, &res) < 0 || res.outcome != EXEC_APPLIED) {
			fprintf(stderr, "taskslapsctl apply: %s %s: %s%s%s%s\n", p->id,
				exec_outcome_name(res.outcome), res.message,
				res.sqlstate[0] ? " (SQLSTATE " : "", res.sqlstate,
				res.sqlstate[0] ? ")" : "");
			/* a failed plan stops the line, but its revert, later in it, may run */
			if (res.outcome == EXEC_FAILED &&
			    run_revert_of(ex, &pol, p->id, paths, i + 1, n) == 1) {
				plan_free(p);
				continue;
			}
			plan_free(p);
			rc = CTL_FINDINGS;
			break;
		}
		applied++;
		plan_free(p);
	}
	apply_exec = NULL;
	if (!dry && !pr.quiet)
		printf("%zu of %zu plan%s applied or already applied\n", applied, n,
		       n == 1 ? "" : "s");
out:
	plan_idset_free(ids);
	exec_close(ex);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return rc;
}
