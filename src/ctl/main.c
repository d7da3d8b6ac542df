/*
 * taskslapsctl: the operator's tool. Global options, then a verb.
 *
 * Linked twice. taskslapsctl-full has every verb. taskslapsctl runs the
 * offline verbs, plan and lint, and has the others from forward.c, which
 * executes taskslapsctl-full: it does not link libpq, whose libraries would
 * otherwise cost more at start-up than linting a hundred plans (CI runs lint
 * on every push).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "taskslaps/version.h"

static const struct ctl_verb verbs[] = {
	{ "status", cmd_status, "[--json]",
	  "the daemon's state, health, plans and running step; exit 1 when degraded, failed "
	  "or paused" },
	{ "watch", cmd_watch, "",
	  "live view of the daemon: waves, backfill progress, hazard badges, events" },
	{ "reconcile", cmd_reconcile, "", "ask the daemon to reconcile with the branch tip now" },
	{ "abort", cmd_abort, "",
	  "ask the daemon to cancel the running statement (the plan is marked aborted)" },
	{ "plan", cmd_plan, "FILE... [--json] [--mode protected|chaos]",
	  "show each plan's waves, steps, hazards, SQL and obligations, and how each step is "
	  "undone (its inverse, or why there is none); for a revert plan, what it would undo; "
	  "a FILE that links out of its directory is refused" },
	{ "lint", cmd_lint, "DIR [--mode protected|chaos] [--json] [--jobs N]",
	  "check every plan in DIR as the target branch would (exit 0 ok, 1 findings or "
	  "blocked, 2 invalid); links out of DIR, FIFOs and devices are refused" },
	{ "apply", cmd_apply,
	  "(DIR|FILE...) [--mode protected|chaos] [--dry-run] [--lock-wait SECONDS] "
	  "[--lock-retries N] [--quiet]",
	  "with --db: apply plans in order under the rails, once, without a daemon" },
	{ "events", cmd_events, "[--plan ID] [--follow] [--limit N (with --db)]",
	  "the daemon's recent events (--follow: and new ones until Ctrl-C); with --db, the "
	  "audit table's last N (50)" },
	{ "history", cmd_history, "",
	  "the plans at the daemon's branch tip; with --db, every plan the target has seen" },
	{ "resume", cmd_resume, "PLAN",
	  "let an aborted or failed plan run again (the daemon's next pass; with --db, the "
	  "next apply)" },
	{ "accept-drift", cmd_accept_drift, "PLAN   (with --db: PLAN FILE|DIR)",
	  "record an edited applied plan's new checksum, running nothing; steps that never "
	  "ran stay pending and run next (the daemon reads the plan at its tip; --db reads "
	  "it from FILE|DIR)" },
	{ "install-schema", cmd_install_schema, "",
	  "with --db: install or upgrade the taskslaps schema" },
};

const struct ctl_verb *
ctl_verb_find(const char *name)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(*verbs); i++)
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	return NULL;
}

void
ctl_usage(FILE *out, const struct ctl_verb *v)
{
	fprintf(out, "usage: taskslapsctl %s %s\n  %s\n", v->name, v->usage, v->summary);
}

int
ctl_parse_mode(const char *s, enum plan_mode *out)
{
	if (strcmp(s, "protected") == 0)
		*out = MODE_PROTECTED;
	else if (strcmp(s, "chaos") == 0)
		*out = MODE_CHAOS;
	else {
		fprintf(stderr, "taskslapsctl: --mode: expected protected or chaos, found '%s'\n",
			s);
		return -1;
	}
	return 0;
}

static void
usage(FILE *out)
{
	fputs("usage: taskslapsctl [--socket PATH | --target NAME] [--db CONNINFO] VERB [ARGS]\n"
	      "\n"
	      "taskslaps plans PostgreSQL schema migrations into waves and applies them under\n"
	      "safety rails. taskslapsctl is the operator's tool.\n"
	      "\n"
	      "Verbs:\n",
	      out);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(*verbs); i++)
		fprintf(out, "  %-15s %s\n", verbs[i].name, verbs[i].summary);
	fputs("\n"
	      "Global options:\n"
	      "  --socket PATH   the daemon's control socket (else --target, else\n"
	      "                  $TASKSLAPS_SOCKET, else the only socket in /run/taskslaps/)\n"
	      "  --target NAME   the daemon of target NAME (/run/taskslaps/NAME.sock); with\n"
	      "                  --db, the target whose rows to read (else \"default\")\n"
	      "  --db CONNINFO   talk to the database instead of a daemon (else $TASKSLAPS_DB,\n"
	      "                  unless --socket is given)\n"
	      "  --version       print the version\n"
	      "  -h, --help      this help; VERB --help for a verb's\n"
	      "\n"
	      "Exit status: 0 ok, 1 findings, failure or degraded, 2 usage or invalid input,\n"
	      "3 daemon unreachable.\n",
	      out);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = { { "socket", required_argument, NULL, 's' },
					      { "target", required_argument, NULL, 't' },
					      { "db", required_argument, NULL, 'd' },
					      { "help", no_argument, NULL, 'h' },
					      { "version", no_argument, NULL, 'V' },
					      { NULL, 0, NULL, 0 } };
	struct ctl_global g = { .argv = argv }; /* "+" below: getopt does not permute it */
	const struct ctl_verb *v;
	int c;

	/* "+": stop at the verb; its own options are its business */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 's': g.socket = optarg; break;
		case 't': g.target = optarg; break;
		case 'd': g.db = optarg; break;
		case 'h': usage(stdout); return CTL_OK;
		case 'V': printf("taskslapsctl %s\n", TS_VERSION); return CTL_OK;
		default: usage(stderr); return CTL_USAGE;
		}
	}
	if (!g.db && !g.socket) /* an explicit --socket means the daemon */
		g.db = getenv("TASKSLAPS_DB");
	if (optind >= argc) {
		usage(stderr);
		return CTL_USAGE;
	}
	v = ctl_verb_find(argv[optind]);
	if (!v) {
		fprintf(stderr, "taskslapsctl: unknown verb '%s'\n\n", argv[optind]);
		usage(stderr);
		return CTL_USAGE;
	}
	argc -= optind;
	argv += optind;
	optind = 0; /* reset getopt for the verb (GNU: 0 also re-initialises) */
	return v->run(&g, argc, argv);
}
