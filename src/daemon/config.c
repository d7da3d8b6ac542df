/*
 * The configuration file, read with the plan reader's document tree so that
 * every mistake is reported with its line and column. Unknown keys are
 * errors: a misspelt key silently ignored is a safety rail silently missing.
 */
#include "daemon/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <git2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "plan/doc.h"
#include "util/alloc.h"
#include "util/strbuf.h"

struct cctx {
	const char *file;
	struct diags *d;
	struct config *c;
};

static void cerr(struct cctx *x, const struct doc_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cerr(struct cctx *x, const struct doc_node *n, const char *fmt, ...)
{
	va_list ap;
	char *m;

	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		abort();
	va_end(ap);
	diags_add(x->d, DIAG_ERROR, x->file, n ? n->line : 0, n ? n->col : 0, "%s", m);
	free(m);
}

static const char *
kind(const struct doc_node *n)
{
	return doc_kind_name(n->kind);
}

static bool
get_str(struct cctx *x, const struct doc_node *n, const char *key, char **out)
{
	if (n->kind != DOC_STRING || !n->str[0]) {
		cerr(x, n, "%s: expected a non-empty string, found %s", key,
		     n->kind == DOC_STRING ? "an empty string" : kind(n));
		return false;
	}
	free(*out);
	*out = xstrdup(n->str);
	return true;
}

static bool
get_bool(struct cctx *x, const struct doc_node *n, const char *key, bool *out)
{
	if (n->kind != DOC_BOOL) {
		cerr(x, n, "%s: expected true or false, found %s%s%s%s", key, kind(n),
		     n->str ? " '" : "", n->str ? n->str : "", n->str ? "'" : "");
		return false;
	}
	*out = n->b;
	return true;
}

static bool
get_int(struct cctx *x, const struct doc_node *n, const char *key, long long min, long long max,
	long long *out)
{
	char *end;
	long long v;

	if (n->kind != DOC_INT) {
		cerr(x, n, "%s: expected a whole number from %lld to %lld, found %s%s%s%s", key,
		     min, max, kind(n), n->str ? " '" : "", n->str ? n->str : "",
		     n->str ? "'" : "");
		return false;
	}
	errno = 0;
	v = strtoll(n->str, &end, 10);
	if (*end || errno || v < min || v > max) {
		cerr(x, n, "%s: expected a whole number from %lld to %lld, found %s", key, min, max,
		     n->str);
		return false;
	}
	*out = v;
	return true;
}

#define GET_INT(node, key, min, max, field)                                                        \
	do {                                                                                       \
		long long v_;                                                                      \
		if (get_int(x, node, key, min, max, &v_))                                          \
			field = (__typeof__(field))v_;                                             \
	} while (0)

/*
 * A degraded threshold above its critical one (as set, or by default): the
 * governor tests critical first, so degraded would never slow anything down
 * before the full stop.
 */
static void
check_pair(struct cctx *x, const struct doc_node *m, const char *dkey, long long dv,
	   const char *ckey, long long cv)
{
	const struct doc_node *dn = doc_map_get(m, dkey), *cn = doc_map_get(m, ckey);

	if (dv <= cv)
		return;
	cerr(x,
	     dn	  ? dn
	     : cn ? cn
		  : m,
	     "governor.%s (%lld) is above governor.%s (%lld%s): the degraded threshold must not "
	     "be above the critical one",
	     dkey, dv, ckey, cv, cn ? "" : ", the default");
}

static void
read_governor(struct cctx *x, const struct doc_node *m)
{
	struct governor_config *g = &x->c->governor;

	if (m->kind != DOC_MAP) {
		cerr(x, m, "governor: expected a map of thresholds, found %s", kind(m));
		return;
	}
	for (size_t i = 0; i < m->n; i++) {
		const char *k = m->keys[i]->str;
		const struct doc_node *v = m->items[i];

		if (!strcmp(k, "degraded_active"))
			GET_INT(v, "governor.degraded_active", 1, 100000, g->degraded_active);
		else if (!strcmp(k, "critical_active"))
			GET_INT(v, "governor.critical_active", 1, 100000, g->critical_active);
		else if (!strcmp(k, "degraded_errors"))
			GET_INT(v, "governor.degraded_errors", 0, 100000, g->degraded_errors);
		else if (!strcmp(k, "degraded_lock_waiters"))
			GET_INT(v, "governor.degraded_lock_waiters", 0, 100000,
				g->degraded_lock_waiters);
		else if (!strcmp(k, "critical_lock_waiters"))
			GET_INT(v, "governor.critical_lock_waiters", 0, 100000,
				g->critical_lock_waiters);
		else if (!strcmp(k, "degraded_lag_ms"))
			GET_INT(v, "governor.degraded_lag_ms", 0, 86400000, g->degraded_lag_ms);
		else if (!strcmp(k, "critical_lag_ms"))
			GET_INT(v, "governor.critical_lag_ms", 0, 86400000, g->critical_lag_ms);
		else if (!strcmp(k, "degraded_wal_ready"))
			GET_INT(v, "governor.degraded_wal_ready", 0, 1000000,
				g->degraded_wal_ready);
		else if (!strcmp(k, "degraded_xact_s"))
			GET_INT(v, "governor.degraded_xact_s", 0, 864000, g->degraded_xact_s);
		else if (!strcmp(k, "critical_xact_s"))
			GET_INT(v, "governor.critical_xact_s", 0, 864000, g->critical_xact_s);
		else if (!strcmp(k, "probe_interval_ms"))
			GET_INT(v, "governor.probe_interval_ms", 10, 600000, g->probe_interval_ms);
		else
			cerr(
			    x, m->keys[i],
			    "governor: unknown key '%s' (expected degraded_active, critical_active, "
			    "degraded_errors, degraded_lock_waiters, critical_lock_waiters, "
			    "degraded_lag_ms, critical_lag_ms, degraded_wal_ready, degraded_xact_s, "
			    "critical_xact_s, probe_interval_ms)",
			    k);
	}
	check_pair(x, m, "degraded_active", g->degraded_active, "critical_active",
		   g->critical_active);
	check_pair(x, m, "degraded_lock_waiters", g->degraded_lock_waiters, "critical_lock_waiters",
		   g->critical_lock_waiters);
	check_pair(x, m, "degraded_lag_ms", g->degraded_lag_ms, "critical_lag_ms",
		   g->critical_lag_ms);
	check_pair(x, m, "degraded_xact_s", g->degraded_xact_s, "critical_xact_s",
		   g->critical_xact_s);
}

/*
 * git's rules for a branch name (libgit2's git_branch_name_is_valid), and
 * not a full ref name: "refs/heads/main" would be read as the branch
 * refs/heads/refs/heads/main, which anyone who may push could create.
 */
static void
check_branch(struct cctx *x, const struct doc_node *n, const char *name)
{
	int valid = 0;

	if (!strncmp(name, "refs/heads/", 11)) {
		cerr(x, n,
		     "branch: expected a branch name such as 'main', found the full ref name '%s' "
		     "(write '%s')",
		     name, name + 11);
		return;
	}
	if (!strncmp(name, "refs/", 5)) {
		cerr(x, n,
		     "branch: expected a branch name such as 'main', found the full ref name '%s'",
		     name);
		return;
	}
	if (git_libgit2_init() < 0) {
		cerr(x, n, "branch: cannot check '%s': libgit2 did not initialise", name);
		return;
	}
	if (git_branch_name_is_valid(&valid, name) < 0 || !valid)
		cerr(x, n, "branch: '%s' is not a valid git branch name", name);
	git_libgit2_shutdown();
}

/* A ref under refs/notes/, valid by git's rules (libgit2's git_reference_name_is_valid). */
static void
check_notes_ref(struct cctx *x, const struct doc_node *n, const char *ref)
{
	int valid = 0;

	if (strncmp(ref, "refs/notes/", 11) || !ref[11]) {
		cerr(x, n, "notes_ref: expected a ref under refs/notes/, found '%s'", ref);
		return;
	}
	if (git_libgit2_init() < 0) {
		cerr(x, n, "notes_ref: cannot check '%s': libgit2 did not initialise", ref);
		return;
	}
	if (git_reference_name_is_valid(&valid, ref) < 0 || !valid)
		cerr(x, n, "notes_ref: '%s' is not a valid git ref name", ref);
	git_libgit2_shutdown();
}

static bool
target_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 41 || !islower((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

static void
read_root(struct cctx *x, const struct doc_node *root)
{
	struct config *c = x->c;

	for (size_t i = 0; i < root->n; i++) {
		const char *k = root->keys[i]->str;
		const struct doc_node *v = root->items[i];

		if (!strcmp(k, "target")) {
			if (get_str(x, v, k, &c->target) && !target_ok(c->target))
				cerr(x, v,
				     "target: expected a name of lowercase letters, digits and _ "
				     "(starting with a letter, at most 41), found '%s'",
				     c->target);
		} else if (!strcmp(k, "repository")) {
			get_str(x, v, k, &c->repository);
		} else if (!strcmp(k, "branch")) {
			if (get_str(x, v, k, &c->branch))
				check_branch(x, v, c->branch);
		} else if (!strcmp(k, "migrations_dir")) {
			get_str(x, v, k, &c->migrations_dir);
		} else if (!strcmp(k, "state_dir")) {
			get_str(x, v, k, &c->state_dir);
		} else if (!strcmp(k, "database")) {
			char why[512];

			/* read now, as libpq will: a bad one fails -n, not the first pass */
			if (get_str(x, v, k, &c->database) &&
			    db_conninfo_check(c->database, why, sizeof(why)) < 0)
				cerr(x, v, "database: not a connection string libpq can read: %s",
				     why);
		} else if (!strcmp(k, "notes_ref")) {
			if (get_str(x, v, k, &c->notes_ref))
				check_notes_ref(x, v, c->notes_ref);
		} else if (!strcmp(k, "control_socket")) {
			if (get_str(x, v, k, &c->control_socket) && c->control_socket[0] != '/')
				cerr(x, v, "control_socket: expected an absolute path, found '%s'",
				     c->control_socket);
		} else if (!strcmp(k, "admin_group")) {
			get_str(x, v, k, &c->admin_group);
		} else if (!strcmp(k, "allowed_signers")) {
			get_str(x, v, k, &c->allowed_signers);
		} else if (!strcmp(k, "push_notes")) {
			get_bool(x, v, k, &c->push_notes);
		} else if (!strcmp(k, "require_signed_h3")) {
			get_bool(x, v, k, &c->require_signed_h3);
		} else if (!strcmp(k, "poll_interval")) {
			GET_INT(v, "poll_interval", 1, 86400, c->poll_interval_s);
		} else if (!strcmp(k, "control_max_clients")) {
			GET_INT(v, "control_max_clients", 1, 10000, c->control_max_clients);
		} else if (!strcmp(k, "lock_retries")) {
			GET_INT(v, "lock_retries", 0, 1000, c->lock_retries);
		} else if (!strcmp(k, "out_of_order")) {
			if (v->kind == DOC_STRING && !strcmp(v->str, "run"))
				c->out_of_order = OOO_RUN;
			else if (v->kind == DOC_STRING && !strcmp(v->str, "refuse"))
				c->out_of_order = OOO_REFUSE;
			else
				cerr(x, v, "out_of_order: expected run or refuse, found %s%s%s%s",
				     kind(v), v->str ? " '" : "", v->str ? v->str : "",
				     v->str ? "'" : "");
		} else if (!strcmp(k, "protected_branches")) {
			if (v->kind != DOC_SEQ) {
				cerr(
				    x, v,
				    "protected_branches: expected a list of branch globs, found %s",
				    kind(v));
				continue;
			}
			for (size_t j = 0; c->protected_branches && c->protected_branches[j]; j++)
				free(c->protected_branches[j]);
			free(c->protected_branches);
			c->protected_branches = xcalloc(v->n + 1, sizeof(char *));
			for (size_t j = 0, k2 = 0; j < v->n; j++) {
				if (v->items[j]->kind != DOC_STRING || !v->items[j]->str[0])
					cerr(x, v->items[j],
					     "protected_branches: expected a branch glob, found %s",
					     kind(v->items[j]));
				else
					c->protected_branches[k2++] = xstrdup(v->items[j]->str);
			}
		} else if (!strcmp(k, "governor")) {
			read_governor(x, v);
		} else if (!strcmp(k, "chaos")) {
			if (v->kind != DOC_MAP) {
				cerr(x, v, "chaos: expected a map, found %s", kind(v));
				continue;
			}
			for (size_t j = 0; j < v->n; j++) {
				if (!strcmp(v->keys[j]->str, "max_plans_per_author_per_day"))
					GET_INT(v->items[j], "chaos.max_plans_per_author_per_day",
						0, 100000, c->chaos_max_plans_per_author_per_day);
				else
					cerr(x, v->keys[j],
					     "chaos: unknown key '%s' (expected "
					     "max_plans_per_author_per_day)",
					     v->keys[j]->str);
			}
		} else {
			cerr(
			    x, root->keys[i],
			    "unknown key '%s' (expected target, repository, branch, migrations_dir, "
			    "state_dir, protected_branches, database, poll_interval, notes_ref, "
			    "push_notes, governor, chaos, lock_retries, control_socket, "
			    "control_max_clients, admin_group, require_signed_h3, allowed_signers, "
			    "out_of_order)",
			    k);
		}
	}
}

static int
read_file(const char *path, struct strbuf *sb, struct diags *d)
{
	char chunk[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		diags_add(d, DIAG_ERROR, path, 0, 0, "cannot read: %s", strerror(errno));
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 && sb->len <= DOC_MAX_BYTES)
		sb_add(sb, chunk, (size_t)n);
	close(fd);
	if (n < 0) {
		diags_add(d, DIAG_ERROR, path, 0, 0, "cannot read: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
config_load(struct config **out, const char *path, struct diags *d)
{
	struct strbuf sb = STRBUF_INIT;
	int rc;

	if (read_file(path, &sb, d) < 0)
		return -1;
	rc = config_parse(out, path, sb.buf ? sb.buf : "", sb.len, d);
	sb_free(&sb);
	return rc;
}

int
config_parse(struct config **out, const char *path, const char *buf, size_t len, struct diags *d)
{
	struct doc *doc = NULL;
	struct config *c;
	struct cctx x = { .file = path, .d = d };
	size_t before = d->nerrors;

	if (doc_parse_yaml(&doc, path, buf, len, d) < 0)
		return -1;
	c = xcalloc(1, sizeof(*c));
	x.c = c;
	c->path = xstrdup(path);
	c->poll_interval_s = 30;
	c->lock_retries = 10;
	c->control_max_clients = 64;
	c->chaos_max_plans_per_author_per_day = 3;
	c->push_notes = true;
	governor_config_default(&c->governor);
	if (!doc->root || doc->root->kind != DOC_MAP) {
		cerr(&x, doc->root, "expected a map of settings, found %s",
		     doc->root ? kind(doc->root) : "an empty file");
	} else {
		read_root(&x, doc->root);
		static const char *const required[] = {
			"target", "repository", "branch", "migrations_dir", "state_dir", "database"
		};
		for (size_t i = 0; i < sizeof(required) / sizeof(*required); i++)
			if (!doc_map_get(doc->root, required[i]))
				cerr(&x, doc->root, "missing key '%s'", required[i]);
	}
	doc_free(doc);
	if (c->require_signed_h3 && !c->allowed_signers)
		diags_add(d, DIAG_ERROR, path, 0, 0,
			  "require_signed_h3 is true but allowed_signers is not set");
	if (d->nerrors != before) {
		config_free(c);
		return -1;
	}
	if (!c->protected_branches) {
		c->protected_branches = xcalloc(2, sizeof(char *));
		c->protected_branches[0] = xstrdup("main");
	}
	if (!c->notes_ref)
		c->notes_ref = xasprintf("refs/notes/taskslaps/%s", c->target);
	if (!c->control_socket)
		c->control_socket = xasprintf("/run/taskslaps/%s.sock", c->target);
	*out = c;
	return 0;
}

void
config_free(struct config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->target);
	free(c->repository);
	free(c->branch);
	free(c->migrations_dir);
	free(c->state_dir);
	for (size_t i = 0; c->protected_branches && c->protected_branches[i]; i++)
		free(c->protected_branches[i]);
	free(c->protected_branches);
	if (c->database) {
		/* it may hold a password: do not leave it in freed memory */
		explicit_bzero(c->database, strlen(c->database));
		free(c->database);
	}
	free(c->notes_ref);
	free(c->control_socket);
	free(c->admin_group);
	free(c->allowed_signers);
	free(c);
}

bool
config_branch_protected(const struct config *c, const char *branch)
{
	for (size_t i = 0; c->protected_branches[i]; i++)
		if (fnmatch(c->protected_branches[i], branch, 0) == 0)
			return true;
	return false;
}
