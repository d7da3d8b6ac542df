/*
 * The verbs that ask the daemon over its control socket: reconcile, abort,
 * resume, accept-drift, events and history. The last four exist with --db
 * too (cmd_db.c); their entry points here choose: --db (or $TASKSLAPS_DB
 * without --socket) talks to the database, anything else to the daemon.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/client.h"

/* reconcile and abort are answered at once; this is generous. */
#define QUICK_TIMEOUT_MS 30000

static volatile sig_atomic_t events_stop;

static void
on_stop(int sig)
{
	(void)sig;
	events_stop = 1;
}

/*
 * Option handling for a verb with only --help and min..max arguments:
 * 0 go on; else the CTL_ status to return (help printed, or a usage error).
 */
static int
args_only(const char *verb, int argc, char **argv, int min, int max, bool *done)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	int ch;

	*done = true;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'h') {
			ctl_usage(stdout, ctl_verb_find(verb));
			return CTL_OK;
		}
		ctl_usage(stderr, ctl_verb_find(verb));
		return CTL_USAGE;
	}
	if (argc - optind < min || argc - optind > max) {
		fprintf(stderr, "taskslapsctl %s: wrong number of arguments\n", verb);
		ctl_usage(stderr, ctl_verb_find(verb));
		return CTL_USAGE;
	}
	*done = false;
	return CTL_OK;
}

/* Sends cmd (args consumed) and prints the result's message. */
static int
simple_request(const struct ctl_global *g, const char *verb, const char *cmd, cJSON *args,
	       int timeout_ms)
{
	struct ctl_client c;
	cJSON *res = NULL;
	const char *m;
	int rc;

	if ((rc = ctl_client_open(&c, g, verb)) != CTL_OK) {
		cJSON_Delete(args);
		return rc;
	}
	rc = ctl_client_call(&c, cmd, args, timeout_ms, &res);
	ctl_client_close(&c);
	if (rc != CTL_OK)
		return rc;
	m = ctl_json_str(res, "message");
	printf("%s\n", m && m[0] ? m : "done");
	cJSON_Delete(res);
	return CTL_OK;
}

static cJSON *
plan_args(const char *plan)
{
	cJSON *a = cJSON_CreateObject();

	cJSON_AddStringToObject(a, "plan", plan);
	return a;
}

int
cmd_reconcile(const struct ctl_global *g, int argc, char **argv)
{
	bool done;
	int rc = args_only("reconcile", argc, argv, 0, 0, &done);

	if (done)
		return rc;
	return simple_request(g, "reconcile", "reconcile", NULL, QUICK_TIMEOUT_MS);
}

int
cmd_abort(const struct ctl_global *g, int argc, char **argv)
{
	bool done;
	int rc = args_only("abort", argc, argv, 0, 0, &done);

	if (done)
		return rc;
	return simple_request(g, "abort", "abort", NULL, QUICK_TIMEOUT_MS);
}

int
cmd_resume(const struct ctl_global *g, int argc, char **argv)
{
	bool done;
	int rc;

	if (g->db)
		return cmd_db_resume(g, argc, argv);
	rc = args_only("resume", argc, argv, 1, 1, &done);
	if (done)
		return rc;
	/* the worker runs it between plans: no time limit */
	return simple_request(g, "resume", "resume", plan_args(argv[optind]), -1);
}

int
cmd_accept_drift(const struct ctl_global *g, int argc, char **argv)
{
	bool done;
	int rc;

	if (g->db)
		return cmd_db_accept_drift(g, argc, argv);
	rc = args_only("accept-drift", argc, argv, 1, 2, &done);
	if (done)
		return rc;
	if (argc - optind == 2) {
		fprintf(stderr,
			"taskslapsctl accept-drift: FILE|DIR goes with --db; the daemon takes plan "
			"%s from its branch tip\n",
			argv[optind]);
		ctl_usage(stderr, ctl_verb_find("accept-drift"));
		return CTL_USAGE;
	}
	return simple_request(g, "accept-drift", "accept-drift", plan_args(argv[optind]), -1);
}

int
cmd_history(const struct ctl_global *g, int argc, char **argv)
{
	struct ctl_client c;
	struct render rd;
	cJSON *doc = NULL;
	bool done;
	int rc;

	if (g->db)
		return cmd_db_history(g, argc, argv);
	rc = args_only("history", argc, argv, 0, 0, &done);
	if (done)
		return rc;
	if ((rc = ctl_client_open(&c, g, "history")) != CTL_OK)
		return rc;
	rc = ctl_client_call(&c, "status", NULL, QUICK_TIMEOUT_MS, &doc);
	ctl_client_close(&c);
	if (rc != CTL_OK)
		return rc;
	render_init(&rd, stdout);
	ctl_status_plans_table(&rd, doc);
	cJSON_Delete(doc);
	return CTL_OK;
}

/* events without --db: the daemon's short history, then (--follow) new events. */
static int
daemon_events(const struct ctl_global *g, const char *plan, bool follow)
{
	struct ctl_client c;
	struct render rd;
	struct sigaction sa;
	cJSON *args = cJSON_CreateObject();
	long long id;
	int rc;

	if (plan)
		cJSON_AddStringToObject(args, "plan", plan);
	if (follow)
		cJSON_AddTrueToObject(args, "follow");
	if (!args->child) {
		cJSON_Delete(args);
		args = NULL;
	}
	if ((rc = ctl_client_open(&c, g, "events")) != CTL_OK) {
		cJSON_Delete(args);
		return rc;
	}
	if (ctl_client_send(&c, "events", args, &id) < 0) {
		rc = ctl_client_recv_error(&c, CTL_RECV_GONE);
		ctl_client_close(&c);
		return rc;
	}
	/* Ctrl-C ends a follow cleanly; SA_RESTART off so poll returns */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	events_stop = 0;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	render_init(&rd, stdout);
	rc = CTL_OK;
	while (!events_stop) {
		struct proto_reply rep;
		enum ctl_recv got = ctl_client_recv(&c, &rep, -1);

		if (got == CTL_RECV_INTR)
			continue;
		if (got != CTL_RECV_OK) {
			rc = ctl_client_recv_error(&c, got);
			break;
		}
		if (rep.id != id && !(rep.kind == PROTO_ERROR && rep.id == 0)) {
			proto_reply_free(&rep);
			continue;
		}
		if (rep.kind == PROTO_EVENT) {
			ctl_print_event(&rd, rep.payload);
			fflush(stdout);
		} else if (rep.kind == PROTO_END) {
			proto_reply_free(&rep);
			break;
		} else if (rep.kind == PROTO_ERROR) {
			rc = ctl_client_error_status(&c, &rep);
			proto_reply_free(&rep);
			break;
		} else {
			snprintf(c.why, sizeof(c.why), "a result where events were expected");
			rc = ctl_client_recv_error(&c, CTL_RECV_BAD);
			proto_reply_free(&rep);
			break;
		}
		proto_reply_free(&rep);
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	ctl_client_close(&c);
	return rc;
}

int
cmd_events(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = { { "plan", required_argument, NULL, 'p' },
					      { "follow", no_argument, NULL, 'f' },
					      { "limit", required_argument, NULL, 'n' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	const char *plan = NULL;
	bool follow = false, limit = false;
	int ch;

	if (g->db)
		return cmd_db_events(g, argc, argv);
	while ((ch = getopt_long(argc, argv, "hfn:", opts, NULL)) != -1) {
		switch (ch) {
		case 'p': plan = optarg; break;
		case 'f': follow = true; break;
		case 'n': limit = true; break;
		case 'h': ctl_usage(stdout, ctl_verb_find("events")); return CTL_OK;
		default: ctl_usage(stderr, ctl_verb_find("events")); return CTL_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "taskslapsctl events: unexpected argument '%s'\n", argv[optind]);
		ctl_usage(stderr, ctl_verb_find("events"));
		return CTL_USAGE;
	}
	if (limit) {
		fprintf(stderr, "taskslapsctl events: --limit goes with --db (the daemon sends its "
				"short history)\n");
		return CTL_USAGE;
	}
	return daemon_events(g, plan, follow);
}
