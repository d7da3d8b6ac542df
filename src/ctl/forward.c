/*
 * taskslapsctl's verbs that talk to a daemon or a database, as linked into
 * taskslapsctl (not taskslapsctl-full): each executes taskslapsctl-full with
 * the command line as given, so the user sees one tool. taskslapsctl itself
 * does not link libpq and starts in a third of the time; a verb that talks
 * to a daemon or a database pays one more exec (about a millisecond) instead.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "util/alloc.h"
#include "util/strbuf.h"

/* The directory this program was run from (/proc/self/exe), or NULL; caller frees. */
static char *
self_dir(void)
{
	size_t cap = 256;

	for (;;) {
		char *buf = xmalloc(cap);
		ssize_t n = readlink("/proc/self/exe", buf, cap);
		char *slash;

		if (n < 0) {
			free(buf);
			return NULL;
		}
		if ((size_t)n < cap) {
			buf[n] = '\0';
			slash = strrchr(buf, '/');
			if (!slash) {
				free(buf);
				return NULL;
			}
			*slash = '\0';
			return buf;
		}
		free(buf);
		cap *= 2; /* truncated: the path may be longer */
	}
}

int
ctl_forward(char **all, const char *verb)
{
	/* installed (BINDIR/../LIBEXECDIR/taskslaps/), the build tree, the configured prefix */
	char *dir = self_dir();
	char *paths[3] = { NULL, NULL, NULL };
	struct strbuf tried = STRBUF_INIT;
	int err = ENOENT;

	if (dir) {
		paths[0] = xasprintf("%s/%s", dir, TS_CTL_FULL_REL);
		paths[1] = xasprintf("%s/taskslapsctl-full", dir);
	}
	paths[2] = xstrdup(TS_CTL_FULL_ABS);
	for (size_t i = 0; i < 3; i++) {
		if (!paths[i])
			continue;
		execv(paths[i], all);
		/* keep the first reason that is not "no such file" */
		if (err == ENOENT)
			err = errno;
		sb_printf(&tried, "%s%s", tried.len ? ", " : "", paths[i]);
	}
	fprintf(stderr, "taskslapsctl: %s: cannot run taskslapsctl-full (tried %s): %s\n", verb,
		sb_str(&tried), strerror(err));
	sb_free(&tried);
	for (size_t i = 0; i < 3; i++)
		free(paths[i]);
	free(dir);
	return CTL_USAGE;
}

/* The verbs of taskslapsctl-full (its main.c's table), as this program has them. */
#define CTL_FORWARD(fn)                                                                            \
	int fn(const struct ctl_global *g, int argc, char **argv)                                  \
	{                                                                                          \
		(void)argc;                                                                        \
		return ctl_forward(g->argv, argv[0]);                                              \
	}

CTL_FORWARD(cmd_status)
CTL_FORWARD(cmd_watch)
CTL_FORWARD(cmd_reconcile)
CTL_FORWARD(cmd_abort)
CTL_FORWARD(cmd_apply)
CTL_FORWARD(cmd_events)
CTL_FORWARD(cmd_history)
CTL_FORWARD(cmd_resume)
CTL_FORWARD(cmd_accept_drift)
CTL_FORWARD(cmd_install_schema)
