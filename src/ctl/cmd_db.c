/*
 * The verbs that read or mend the audit tables directly (--db CONNINFO):
 * install-schema, events, history, resume, accept-drift. The last four also
 * exist without --db, asking the daemon; cmd_daemon.c chooses.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "db/db_schema.h"
#include "exec/exec.h"
#include "plan/plan_dir.h"

static volatile sig_atomic_t follow_stop;

static void
on_stop(int sig)
{
	(void)sig;
	follow_stop = 1;
}

/* Standard option handling for a verb with only --help. */
static int
only_help(const char *verb, int argc, char **argv, int min_args, int max_args)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			ctl_usage(stdout, ctl_verb_find(verb));
			return -2;
		}
		ctl_usage(stderr, ctl_verb_find(verb));
		return -1;
	}
	if (argc - optind < min_args || argc - optind > max_args) {
		fprintf(stderr, "taskslapsctl %s: wrong number of arguments\n", verb);
		ctl_usage(stderr, ctl_verb_find(verb));
		return -1;
	}
	return 0;
}

static int
open_for(const struct ctl_global *g, struct exec **ex, bool install)
{
	struct exec_config cfg;

	exec_config_default(&cfg);
	cfg.target = g->target ? g->target : "default";
	cfg.applied_by = "taskslapsctl";
	return ctl_open_exec(g, ex, &cfg, install);
}

int
cmd_install_schema(const struct ctl_global *g, int argc, char **argv)
{
	struct exec *ex = NULL;
	struct db_error err;
	int rc = only_help("install-schema", argc, argv, 0, 0);

	if (rc)
		return rc == -2 ? CTL_OK : CTL_USAGE;
	if ((rc = open_for(g, &ex, false)) != CTL_OK)
		return rc;
	/* always the whole install: it also repairs a schema edited by hand */
	if (exec_install_schema(ex, true, &err) < 0) {
		fprintf(stderr, "taskslapsctl: %s\n", err.message);
		exec_close(ex);
		return CTL_FINDINGS;
	}
	printf("taskslaps schema installed (version %d)\n", db_schema_version());
	exec_close(ex);
	return CTL_OK;
}

static void
print_events(PGresult *r, struct render *rd)
{
	for (int i = 0; i < PQntuples(r); i++) {
		const char *type = PQgetvalue(r, i, 2);
		bool bad = strstr(type, "failed") || strstr(type, "error") ||
			   strstr(type, "critical") || strstr(type, "drift") ||
			   strstr(type, "blocked");

		fprintf(rd->out, "%6s  %s  %s%-20s%s %s%s%s%s%.16s  %s\n", PQgetvalue(r, i, 0),
			PQgetvalue(r, i, 1), rd->color && bad ? "\x1b[31m" : "", type,
			rd->color && bad ? "\x1b[0m" : "", PQgetvalue(r, i, 3),
			PQgetisnull(r, i, 4) ? "" : "/", PQgetvalue(r, i, 4),
			PQgetisnull(r, i, 5) ? "" : " ", PQgetvalue(r, i, 5), PQgetvalue(r, i, 6));
	}
	fflush(rd->out);
}

#define EVENTS_COLUMNS                                                                             \
	"SELECT id, to_char(at, 'YYYY-MM-DD HH24:MI:SS'), type, coalesce(plan_id, '-'), wave, "    \
	"step_sha, coalesce(message, '') FROM taskslaps.events WHERE target = $1 AND ($2::text "   \
	"IS NULL OR plan_id = $2) "

int
cmd_db_events(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = { { "plan", required_argument, NULL, 'p' },
					      { "follow", no_argument, NULL, 'f' },
					      { "limit", required_argument, NULL, 'n' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	const char *plan = NULL, *limit = "50";
	bool follow = false;
	struct exec *ex = NULL;
	struct db_error err;
	struct render rd;
	PGresult *r;
	PGconn *conn;
	char last[24] = "0";
	int c, rc;

	while ((c = getopt_long(argc, argv, "hfn:", opts, NULL)) != -1) {
		switch (c) {
		case 'p': plan = optarg; break;
		case 'f': follow = true; break;
		case 'n':
			if (strspn(optarg, "0123456789") != strlen(optarg) || !*optarg) {
				fprintf(
				    stderr,
				    "taskslapsctl events: --limit: expected a number, found '%s'\n",
				    optarg);
				return CTL_USAGE;
			}
			limit = optarg;
			break;
		case 'h': ctl_usage(stdout, ctl_verb_find("events")); return CTL_OK;
		default: ctl_usage(stderr, ctl_verb_find("events")); return CTL_USAGE;
		}
	}
	if (optind != argc) {
		ctl_usage(stderr, ctl_verb_find("events"));
		return CTL_USAGE;
	}
	if ((rc = open_for(g, &ex, false)) != CTL_OK)
		return rc;
	render_init(&rd, stdout);
	{
		const char *params[3] = { g->target ? g->target : "default", plan, limit };
		/* the newest LIMIT events, printed oldest first */
		if (db_exec(exec_db(ex), &r, &err,
			    "SELECT * FROM (" EVENTS_COLUMNS
			    "ORDER BY id DESC LIMIT $3::int) e ORDER BY id",
			    3, params) < 0) {
			fprintf(stderr, "taskslapsctl events: %s\n", err.message);
			exec_close(ex);
			return CTL_FINDINGS;
		}
		print_events(r, &rd);
		if (PQntuples(r))
			snprintf(last, sizeof(last), "%s", PQgetvalue(r, PQntuples(r) - 1, 0));
		PQclear(r);
	}
	if (!follow) {
		exec_close(ex);
		return CTL_OK;
	}
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	conn = exec_db(ex)->conn;
	if (db_cmd(exec_db(ex), &err, "LISTEN taskslaps_events") < 0) {
		fprintf(stderr, "taskslapsctl events: %s\n", err.message);
		exec_close(ex);
		return CTL_FINDINGS;
	}
	while (!follow_stop) {
		struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
		PGnotify *nt;
		bool any = false;
		const char *params[3] = { g->target ? g->target : "default", plan, last };

		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
			break;
		if (!PQconsumeInput(conn)) {
			fprintf(stderr, "taskslapsctl events: connection lost: %s",
				PQerrorMessage(conn));
			exec_close(ex);
			return CTL_FINDINGS;
		}
		while ((nt = PQnotifies(conn)) != NULL) {
			any = true;
			PQfreemem(nt);
		}
		if (!any)
			continue;
		/* the notification says something happened; the table says what, under RLS */
		if (db_exec(exec_db(ex), &r, &err, EVENTS_COLUMNS "AND id > $3::bigint ORDER BY id",
			    3, params) < 0) {
			fprintf(stderr, "taskslapsctl events: %s\n", err.message);
			break;
		}
		print_events(r, &rd);
		if (PQntuples(r))
			snprintf(last, sizeof(last), "%s", PQgetvalue(r, PQntuples(r) - 1, 0));
		PQclear(r);
	}
	exec_close(ex);
	return CTL_OK;
}

int
cmd_db_history(const struct ctl_global *g, int argc, char **argv)
{
	struct exec *ex = NULL;
	struct db_error err;
	struct render rd;
	PGresult *r;
	const char *params[1] = { g->target ? g->target : "default" };
	int rc = only_help("history", argc, argv, 0, 0);

	if (rc)
		return rc == -2 ? CTL_OK : CTL_USAGE;
	if ((rc = open_for(g, &ex, false)) != CTL_OK)
		return rc;
	if (db_exec(
		exec_db(ex), &r, &err,
		"SELECT p.plan_id, p.status, coalesce(p.max_hazard, '-'), "
		"coalesce(left(p.commit_sha, 12), '-'), to_char(p.updated_at, 'YYYY-MM-DD "
		"HH24:MI:SS'), (SELECT count(*) FROM taskslaps.step_ledger l WHERE l.target = "
		"p.target AND l.plan_id = p.plan_id), coalesce((SELECT sum(rows_affected) FROM "
		"taskslaps.step_ledger l WHERE l.target = p.target AND l.plan_id = p.plan_id), 0) "
		"FROM taskslaps.plans p WHERE p.target = $1 ORDER BY p.plan_id",
		1, params) < 0) {
		fprintf(stderr, "taskslapsctl history: %s\n", err.message);
		exec_close(ex);
		return CTL_FINDINGS;
	}
	render_init(&rd, stdout);
	printf("%-36s %-12s %-4s %-12s %-19s %5s %10s\n", "PLAN", "STATUS", "HAZ", "COMMIT",
	       "UPDATED", "STEPS", "ROWS");
	for (int i = 0; i < PQntuples(r); i++) {
		const char *h = PQgetvalue(r, i, 2);
		enum plan_hazard hz = h[0] == 'H' ? (enum plan_hazard)(h[1] - '0') : H0;
		printf("%-36s %-12s %s %-12s %-19s %5s %10s\n", PQgetvalue(r, i, 0),
		       PQgetvalue(r, i, 1), render_badge(&rd, hz), PQgetvalue(r, i, 3),
		       PQgetvalue(r, i, 4), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6));
	}
	PQclear(r);
	exec_close(ex);
	return CTL_OK;
}

int
cmd_db_resume(const struct ctl_global *g, int argc, char **argv)
{
	struct exec *ex = NULL;
	struct db_error err;
	int rc = only_help("resume", argc, argv, 1, 1);

	if (rc)
		return rc == -2 ? CTL_OK : CTL_USAGE;
	if ((rc = open_for(g, &ex, true)) != CTL_OK)
		return rc;
	if (exec_resume(ex, argv[optind], &err) < 0) {
		fprintf(stderr, "taskslapsctl resume: %s\n", err.message);
		exec_close(ex);
		return CTL_FINDINGS;
	}
	printf("plan %s will run again on the next apply\n", argv[optind]);
	exec_close(ex);
	return CTL_OK;
}

/* Finds plan id in a file or a directory of plans; *out is loaded (caller frees). */
static int
find_plan(const char *where, const char *id, struct plan **out)
{
	struct plan_dir pd = { 0 };
	struct diags d = DIAGS_INIT;
	int rc = -1;

	*out = NULL;
	if (plan_dir_list(&pd, where, &d) < 0) {
		diags_clear(&d);
		if (plan_load(out, where, &d) == 0 && !strcmp((*out)->id, id))
			rc = 0;
		diags_print(&d, stderr);
		diags_clear(&d);
		return rc;
	}
	for (size_t i = 0; i < pd.n && rc < 0; i++) {
		struct plan *p = NULL;
		if (plan_load(&p, pd.paths[i], &d) == 0 && !strcmp(p->id, id)) {
			*out = p;
			rc = 0;
		} else {
			plan_free(p);
		}
		diags_clear(&d);
	}
	plan_dir_free(&pd);
	return rc;
}

int
cmd_db_accept_drift(const struct ctl_global *g, int argc, char **argv)
{
	struct exec_accepted acc;
	char msg[512];
	struct exec *ex = NULL;
	struct db_error err;
	struct plan *p = NULL;
	int rc = only_help("accept-drift", argc, argv, 2, 2);

	if (rc)
		return rc == -2 ? CTL_OK : CTL_USAGE;
	if (find_plan(argv[optind + 1], argv[optind], &p) < 0) {
		fprintf(stderr, "taskslapsctl accept-drift: no valid plan %s in %s\n", argv[optind],
			argv[optind + 1]);
		return CTL_USAGE;
	}
	if ((rc = open_for(g, &ex, true)) != CTL_OK) {
		plan_free(p);
		return rc;
	}
	if (exec_accept_drift(ex, p, &acc, &err) < 0) {
		fprintf(stderr, "taskslapsctl accept-drift: %s\n", err.message);
		rc = CTL_FINDINGS;
	} else {
		exec_accepted_text(p, &acc, msg, sizeof(msg));
		printf("%s\n", msg);
	}
	plan_free(p);
	exec_close(ex);
	return rc;
}
