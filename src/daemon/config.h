/* taskslapsd's configuration: one YAML file per target (docs/contract.md §8). */
#ifndef TS_DAEMON_CONFIG_H
#define TS_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "exec/exec.h"
#include "util/diag.h"

enum out_of_order_policy { OOO_RUN, OOO_REFUSE };

struct config {
	char *path;	  /* the file it was read from */
	char *target;	  /* [a-z][a-z0-9_]{0,40} */
	char *repository; /* local path or URL */
	char *branch;
	char *migrations_dir;
	char *state_dir;
	char **protected_branches; /* globs (fnmatch), NULL-terminated */
	char *database;		   /* libpq conninfo: never logged (may hold a password) */
	int poll_interval_s;
	char *notes_ref; /* refs/notes/taskslaps/<target> unless set */
	bool push_notes;
	struct governor_config governor;
	int chaos_max_plans_per_author_per_day;
	int lock_retries;
	char *control_socket;	 /* /run/taskslaps/<target>.sock unless set */
	int control_max_clients; /* connections served at once; more are refused */
	char *admin_group;	 /* may be NULL: root (and the daemon's own user) only */
	bool require_signed_h3;
	char *allowed_signers;
	enum out_of_order_policy out_of_order;
};

/* Reads path; every problem (with line:column) goes into d. Returns 0 and *out, or -1. */
int config_load(struct config **out, const char *path, struct diags *d);
/* The same from the file's text (path names it in messages and is kept for reloads). */
int config_parse(struct config **out, const char *path, const char *buf, size_t len,
		 struct diags *d);
void config_free(struct config *c);
/* Whether branch matches protected_branches. */
bool config_branch_protected(const struct config *c, const char *branch);

#endif
