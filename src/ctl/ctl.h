/* taskslapsctl: one cmd_<verb>.c per verb, dispatched from a table in main.c. */
#ifndef TS_CTL_H
#define TS_CTL_H

#include <stdbool.h>
#include <stdio.h>

#include "plan/plan.h"

/* Exit statuses (docs/contract.md §9). */
#define CTL_OK 0
#define CTL_FINDINGS 1	  /* findings, a failure, or degraded */
#define CTL_USAGE 2	  /* usage or invalid input */
#define CTL_UNREACHABLE 3 /* the daemon did not answer */

/* Options that come before the verb. */
struct ctl_global {
	const char *socket;
	const char *target;
	const char *db;
	char **argv; /* main's, unchanged: what ctl_forward runs taskslapsctl-full with */
};

struct ctl_verb {
	const char *name;
	int (*run)(const struct ctl_global *g, int argc, char **argv);
	const char *usage;   /* arguments, after the verb */
	const char *summary; /* one line */
};

/* Prints "usage: taskslapsctl VERB USAGE" and the summary to out. */
void ctl_usage(FILE *out, const struct ctl_verb *v);
const struct ctl_verb *ctl_verb_find(const char *name);

/*
 * taskslapsctl (forward.c): executes taskslapsctl-full with all (main's argv)
 * for verb, which needs a daemon or a database. Returns only on failure, with
 * a message printed, and CTL_USAGE.
 */
int ctl_forward(char **all, const char *verb);

/* Parses "protected"/"chaos"; prints an error and returns -1 otherwise. */
int ctl_parse_mode(const char *s, enum plan_mode *out);

/* Terminal output: hazard badges in colour on a terminal, plain when piped or NO_COLOR. */
struct render {
	FILE *out;
	bool color;
};

void render_init(struct render *r, FILE *out);
/* "[H2]" or a coloured " H2 "; valid until the next call. */
const char *render_badge(const struct render *r, enum plan_hazard h);
const char *render_bold(const struct render *r, const char *s); /* static buffer */
const char *render_dim(const struct render *r, const char *s);
/* The human view of a planned plan. */
void render_plan(const struct render *r, const struct plan *p, bool verbose);

struct exec;
struct exec_config;
/* Opens the executor on --db (installing the schema if asked). Returns a CTL_ status. */
int ctl_open_exec(const struct ctl_global *g, struct exec **ex, struct exec_config *cfg,
		  bool install);

int cmd_plan(const struct ctl_global *g, int argc, char **argv);
int cmd_lint(const struct ctl_global *g, int argc, char **argv);
int cmd_apply(const struct ctl_global *g, int argc, char **argv);
int cmd_install_schema(const struct ctl_global *g, int argc, char **argv);
/* Verbs in both modes (cmd_daemon.c): with g->db the cmd_db_ variant, else the daemon. */
int cmd_events(const struct ctl_global *g, int argc, char **argv);
int cmd_history(const struct ctl_global *g, int argc, char **argv);
int cmd_resume(const struct ctl_global *g, int argc, char **argv);
int cmd_accept_drift(const struct ctl_global *g, int argc, char **argv);
/* cmd_db.c: the --db variants */
int cmd_db_events(const struct ctl_global *g, int argc, char **argv);
int cmd_db_history(const struct ctl_global *g, int argc, char **argv);
int cmd_db_resume(const struct ctl_global *g, int argc, char **argv);
int cmd_db_accept_drift(const struct ctl_global *g, int argc, char **argv);
/* The daemon's verbs (cmd_status.c, cmd_watch.c, cmd_daemon.c) */
int cmd_status(const struct ctl_global *g, int argc, char **argv);
int cmd_watch(const struct ctl_global *g, int argc, char **argv);
int cmd_reconcile(const struct ctl_global *g, int argc, char **argv);
int cmd_abort(const struct ctl_global *g, int argc, char **argv);

#endif
