/*
 * From a document tree to a plan: every field checked for presence, kind and
 * form, every error reported with the line and column of the value at fault.
 * Here: the plan's own fields (id, title, reason, on_failure, waves or steps)
 * and reading a file; a step's fields are read in plan_fields.c (by the op
 * table of plan_ops.c), steps and waves in plan_steps.c, and a sound plan is
 * sealed in plan_seal.c.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan/doc.h"
#include "plan/plan.h"
#include "plan/plan_dir.h"
#include "plan/plan_int.h"
#include "util/alloc.h"
#include "util/canon.h"
#include "util/sha256.h"
#include "util/strbuf.h"

static void verr(struct plan_bctx *c, const struct doc_node *n, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
verr(struct plan_bctx *c, const struct doc_node *n, const char *fmt, va_list ap)
{
	char *msg;

	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	diags_add(c->d, DIAG_ERROR, c->file, n ? n->line : 0, n ? n->col : 0, "%s", msg);
	free(msg);
}

static void err(struct plan_bctx *c, const struct doc_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
err(struct plan_bctx *c, const struct doc_node *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(c, n, fmt, ap);
	va_end(ap);
}

void
plan_err(struct plan_bctx *c, const struct doc_node *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(c, n, fmt, ap);
	va_end(ap);
}

/* "'value'" for a scalar (shortened), else what kind of thing it is. */
static const char *
found(struct plan_bctx *c, const struct doc_node *n)
{
	if (n->kind == DOC_STRING) {
		size_t len = strlen(n->str);
		if (len == 0)
			return "an empty string";
		if (len > 40)
			return arena_printf(c->a, "the string '%.37s...'", n->str);
		return arena_printf(c->a, "the string '%s'", n->str);
	}
	if (n->kind == DOC_INT || n->kind == DOC_FLOAT || n->kind == DOC_BOOL)
		return arena_printf(c->a, "%s (%s)", doc_kind_name(n->kind), n->str);
	return doc_kind_name(n->kind);
}

const char *
plan_found(struct plan_bctx *c, const struct doc_node *n)
{
	return found(c, n);
}

static bool
plan_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || strchr("._-", s[i])) ||
		    (unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

#define PLAN_ID_RULE                                                                               \
	"letters, digits, '.', '_' or '-', starting with a letter or digit, at most 128"

/* The default id: the file's name without directory and extension. */
static char *
id_from_path(struct arena *a, const char *path)
{
	const char *base = strrchr(path, '/');
	const char *dot;

	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	return arena_strndup(a, base, dot && dot != base ? (size_t)(dot - base) : strlen(base));
}

/*
 * A revert plan: id, title, reason, revert and to_wave, and no steps (they
 * are the reverted plan's inverses, plan_revert_resolve). Its checksum is of
 * what is written: {hash_version, id, reason, revert, title[, to_wave]}.
 */
static void
revert_plan(struct plan_bctx *c, const struct doc_node *root, bool *ok)
{
	static const char *const others[] = { "waves", "steps", "on_failure" };
	struct plan *p = c->p;
	const struct doc_node *rv = doc_map_get(root, "revert");
	struct strbuf sb = STRBUF_INIT;

	if (!rv) {
		err(c, doc_map_get(root, "to_wave"),
		    "to_wave: only a revert plan has it (expected revert: <plan id> beside it)");
		*ok = false;
		return;
	}
	for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++) {
		const struct doc_node *o = doc_map_get(root, others[k]);

		if (!o)
			continue;
		err(c, o,
		    "%s: a revert plan (revert: at line %u) has no %s: its steps are the inverses "
		    "of the plan it reverts; expected either revert or %s, found both",
		    others[k], rv->line, others[k], others[k]);
		*ok = false;
	}
	if (!*ok)
		return;
	sb_printf(&sb, "{\"hash_version\":%d,\"id\":", PLAN_HASH_VERSION);
	canon_string(p->id, &sb);
	sb_puts(&sb, ",\"reason\":");
	canon_string(p->reason, &sb);
	sb_puts(&sb, ",\"revert\":");
	canon_string(p->revert_of, &sb);
	sb_puts(&sb, ",\"title\":");
	canon_string(p->title, &sb);
	if (p->to_wave >= 0) {
		sb_puts(&sb, ",\"to_wave\":");
		canon_string(plan_wave_name((enum plan_wave)p->to_wave), &sb);
	}
	sb_putc(&sb, '}');
	sha256_hex(sb.buf, sb.len, p->checksum);
	sb_free(&sb);
	p->max_hazard = H3;
}

int
plan_parse(struct plan **out, const char *path, const char *buf, size_t len, struct diags *d)
{
	struct plan_bctx c = { .file = path, .d = d };
	struct doc *doc = NULL;
	const struct doc_node *root, *waves, *steps;
	struct plan *p;
	bool ok = true;
	size_t before = d->nerrors;

	if (doc_parse(&doc, path, buf, len, d) < 0)
		return -1;
	p = xcalloc(1, sizeof(*p));
	p->arena = arena_new();
	p->path = arena_strdup(p->arena, path);
	for (int w = 0; w < WAVE__COUNT; w++)
		plan_limits_unset(&p->waves[w].limits);
	p->to_wave = -1;
	c.p = p;
	c.a = doc->arena;
	root = doc->root;
	if (!root || root->kind == DOC_NULL) {
		err(&c, NULL, "empty plan: expected a map with title, reason and waves or steps");
		ok = false;
		goto out;
	}
	if (root->kind != DOC_MAP) {
		/* the kind only: a file that is no plan at all is not quoted */
		err(&c, root,
		    "plan: expected a map with title, reason and waves or steps, found %s",
		    doc_kind_name(root->kind));
		ok = false;
		goto out;
	}
	for (size_t i = 0; i < root->n; i++) {
		const char *key = root->keys[i]->str;
		const struct doc_node *v = root->items[i];

		if (!strcmp(key, "id")) {
			if (v->kind != DOC_STRING || !plan_id_ok(v->str)) {
				err(&c, v, "id: expected a plan id (" PLAN_ID_RULE "), found %s",
				    found(&c, v));
				ok = false;
			} else {
				p->id = arena_strdup(p->arena, v->str);
				p->id_line = v->line;
				p->id_col = v->col;
			}
		} else if (!strcmp(key, "title") || !strcmp(key, "reason")) {
			if (v->kind != DOC_STRING || !v->str[0]) {
				err(&c, v, "%s: expected a non-empty string, found %s", key,
				    found(&c, v));
				ok = false;
			} else if (key[0] == 't') {
				p->title = arena_strdup(p->arena, v->str);
			} else {
				p->reason = arena_strdup(p->arena, v->str);
			}
		} else if (!strcmp(key, "on_failure")) {
			int f = -1;
			for (int k = 0; k <= ON_FAILURE_ROLLBACK_PLAN && v->kind == DOC_STRING; k++)
				if (!strcmp(v->str, plan_on_failure_name((enum plan_on_failure)k)))
					f = k;
			if (f < 0) {
				err(&c, v,
				    "on_failure: expected stop, rollback_wave or rollback_plan, found %s",
				    found(&c, v));
				ok = false;
			} else {
				p->on_failure = (enum plan_on_failure)f;
				p->on_failure_given = true;
				p->on_failure_line = v->line;
				p->on_failure_col = v->col;
			}
		} else if (!strcmp(key, "revert")) {
			if (v->kind != DOC_STRING || !plan_id_ok(v->str)) {
				err(&c, v,
				    "revert: expected the id of the plan to revert (" PLAN_ID_RULE
				    "), found %s",
				    found(&c, v));
				ok = false;
			} else {
				p->revert_of = arena_strdup(p->arena, v->str);
				p->revert_line = v->line;
				p->revert_col = v->col;
			}
		} else if (!strcmp(key, "to_wave")) {
			int tw = v->kind == DOC_STRING ? plan_wave_from_name(v->str) : -1;

			if (tw < 0) {
				err(&c, v,
				    "to_wave: expected expand, backfill, validate or contract, found %s",
				    found(&c, v));
				ok = false;
			} else {
				p->to_wave = tw;
				p->to_wave_line = v->line;
				p->to_wave_col = v->col;
			}
		} else if (strcmp(key, "waves") && strcmp(key, "steps")) {
			err(&c, root->keys[i],
			    "plan: unknown field '%s' (expected id, title, reason, on_failure, waves, "
			    "steps, or revert and to_wave)",
			    key);
			ok = false;
		}
	}
	if (!doc_map_get(root, "title")) {
		err(&c, root, "plan: missing field 'title' (what the change is)");
		ok = false;
	}
	if (!doc_map_get(root, "reason")) {
		err(&c, root,
		    "plan: missing field 'reason' (why the change exists, for the audit)");
		ok = false;
	}
	if (!p->id && !doc_map_get(root, "id")) {
		p->id = id_from_path(p->arena, path);
		if (!plan_id_ok(p->id)) {
			err(&c, NULL,
			    "the file name gives the plan id '%s', which is not a plan id (" PLAN_ID_RULE
			    "); rename the file or add an id: field",
			    p->id);
			ok = false;
		}
	}
	waves = doc_map_get(root, "waves");
	steps = doc_map_get(root, "steps");
	if (doc_map_get(root, "revert") || doc_map_get(root, "to_wave")) {
		revert_plan(&c, root, &ok);
		goto out;
	}
	if (waves && steps) {
		err(&c, steps, "plan: expected either waves or steps, found both");
		ok = false;
	} else if (waves) {
		plan_build_waves(&c, waves, &ok);
	} else if (steps) {
		p->flat = true;
		if (steps->kind != DOC_SEQ) {
			err(&c, steps, "steps: expected a list of steps, found %s",
			    found(&c, steps));
			ok = false;
		} else {
			plan_build_steps(&c, steps, -1, &ok);
		}
	} else {
		err(&c, root, "plan: missing field 'waves' or 'steps'");
		ok = false;
	}
	if (ok && p->nsteps == 0) {
		err(&c, waves ? waves : steps, "empty plan: expected at least one step");
		ok = false;
	}
	if (ok)
		plan_seal(&c, &ok);
out:
	doc_free(doc);
	if (!ok || d->nerrors != before) {
		plan_free(p);
		return -1;
	}
	*out = p;
	return 0;
}

int
plan_load(struct plan **out, const char *path, struct diags *d)
{
	struct plan *p;

	if (plan_load_one(&p, path, d) < 0)
		return -1;
	if (p->revert_of && plan_revert_from_dir(p, d) < 0) {
		plan_free(p);
		return -1;
	}
	*out = p;
	return 0;
}

int
plan_load_one(struct plan **out, const char *path, struct diags *d)
{
	/*
	 * A plan is a few KiB: read it into this buffer and parse it there, with
	 * no fstat, no allocation and no copy; only a larger file goes to sb.
	 * The size limit is checked on what was read.
	 */
	char chunk[65536];
	struct strbuf sb = STRBUF_INIT;
	size_t len = 0;
	ssize_t n;
	int fd, rc;
	struct stat st;

	fd = plan_dir_open(path, d); /* a regular file; no link out of its directory, no FIFO */
	if (fd < 0)
		return -1;
	while ((n = read(fd, chunk + len, sizeof(chunk) - len)) > 0) {
		len += (size_t)n;
		if (len < sizeof(chunk))
			continue;
		sb_add(&sb, chunk, len);
		len = 0;
		if (sb.len > DOC_MAX_BYTES)
			break;
	}
	if (n < 0) {
		diags_add(d, DIAG_ERROR, path, 0, 0, "cannot read: %s", strerror(errno));
		close(fd);
		sb_free(&sb);
		return -1;
	}
	if (sb.len > DOC_MAX_BYTES && fstat(fd, &st) == 0 && st.st_size > DOC_MAX_BYTES) {
		diags_add(d, DIAG_ERROR, path, 0, 0,
			  "file is %lld bytes; a plan may be at most %d bytes",
			  (long long)st.st_size, DOC_MAX_BYTES);
		close(fd);
		sb_free(&sb);
		return -1;
	}
	close(fd);
	if (sb.len) {
		sb_add(&sb, chunk, len);
		rc = plan_parse(out, path, sb.buf, sb.len, d);
	} else {
		rc = plan_parse(out, path, chunk, len, d);
	}
	sb_free(&sb);
	return rc;
}

void
plan_free(struct plan *p)
{
	if (!p)
		return;
	plan_free(p->reverted);
	arena_free(p->arena);
	free(p);
}
