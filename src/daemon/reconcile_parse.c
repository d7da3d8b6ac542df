/*
 * The tip's plan files parsed: the plan cache (each file parsed once per
 * blob id and path, and kept while the tip has it), invalid files and
 * revert plans resolved against the plan they revert.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/fphash.h"
#include "daemon/reconcile_int.h"
#include "plan/plan_dir.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strbuf.h"

void
pi_msgf(struct pinfo *pi, const char *fmt, ...)
{
	char buf[PI_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free(pi->message);
	pi->message = buf[0] ? xstrdup(buf) : NULL;
}

void
pinfos_free(struct pinfo *pis, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* the plan and its parse errors belong to the plan cache, but for own_* */
		if (pis[i].own_p)
			plan_free(pis[i].p);
		if (pis[i].own_id)
			free(pis[i].id);
		free(pis[i].message);
		free(pis[i].rate_note);
		if (pis[i].own_diag)
			free(pis[i].diag);
		if (pis[i].own_f)
			free(pis[i].own_f->path);
		free(pis[i].own_f);
	}
	free(pis);
}

/*
 * Parses one plan file of the snapshot. One too large to be read is refused
 * with the planner's own words for it, from the size alone.
 */
int
parse_file(const struct repo_plan_file *f, struct plan **out, struct diags *dg)
{
	if (f->too_large) {
		diags_add(dg, DIAG_ERROR, f->path, 0, 0,
			  "file is %zu bytes; a plan may be at most %d bytes", f->len,
			  REPO_PLAN_MAX_BYTES);
		return -1;
	}
	return plan_parse(out, f->path, f->content, f->len, dg);
}

struct pcache {
	struct pcache_ent *v;
	size_t n;
	unsigned long long serial; /* of the snapshot it was made from, whose order it has */
};

static void
pcache_ent_free(struct pcache_ent *e)
{
	if (!e->key_moved)
		free(e->key);
	plan_free(e->p);
	free(e->diag);
	memset(e, 0, sizeof(*e));
}

void
pcache_free(struct pcache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		pcache_ent_free(&c->v[i]);
	free(c->v);
	free(c);
}

/* The errors of an invalid file, at most five of them, as one text. */
static char *
diag_text(const struct diags *dg)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t k = 0; k < dg->n && k < 5; k++) {
		char *line = diag_format(&dg->v[k]);
		sb_printf(&sb, "%s%s", k ? "\n" : "", line);
		free(line);
	}
	if (dg->n > 5)
		sb_printf(&sb, "\n(and %zu more)", dg->n - 5);
	return sb_detach(&sb);
}

/*
 * The cache entry of file f: taken from the last pass's cache, or parsed
 * now. A revert plan goes to *own instead (the caller owns it).
 */
/* Whether e's key is "<blob>:<path>" of f, compared in place. */
static bool
pcache_key_is(const struct pcache_ent *e, const struct repo_plan_file *f, size_t blen)
{
	return !memcmp(e->key, f->blob, blen) && e->key[blen] == ':' &&
	       !strcmp(e->key + blen + 1, f->path);
}

static void
pcache_fill(struct pcache *old, unsigned long long s_prev_serial, size_t *cur,
	    const struct repo_plan_file *f, struct pcache_ent *e, struct plan **own)
{
	struct pcache_ent *hit = NULL;
	size_t blen = strlen(f->blob);
	struct diags dg = DIAGS_INIT;

	*own = NULL;
	if (old && old->serial && old->serial == s_prev_serial) {
		/*
		 * The old cache is in the order of the snapshot this one was made
		 * from, which names the entry of the same path and blob: the key is
		 * the same, by construction (checked all the same, path too, so
		 * that a change of that order parses again rather than reuses).
		 */
		if (f->prev != REPO_NONE && f->prev < old->n &&
		    pcache_key_is(&old->v[f->prev], f, blen))
			hit = &old->v[f->prev];
	} else {
		/*
		 * Both in the snapshot's order (by path): one walk down the old
		 * cache. Were an order to differ, a file would only be parsed
		 * again. The key is made only for a file parsed now.
		 */
		while (old && *cur < old->n && strcmp(old->v[*cur].key + blen + 1, f->path) < 0)
			(*cur)++;
		if (old && *cur < old->n && pcache_key_is(&old->v[*cur], f, blen))
			hit = &old->v[*cur];
	}
	/*
	 * A plan blocked in the last pass is parsed again: its reasons are
	 * written in its arena, which must not grow pass after pass.
	 */
	if (hit && !hit->moved && !hit->skip && !(hit->p && hit->p->blocked)) {
		e->key = hit->key;
		e->p = hit->p;
		e->diag = hit->diag;
		e->id_hash = hit->id_hash;
		e->note_fp = hit->note_fp;
		e->item = hit->item;
		e->item_fp = hit->item_fp;
		memcpy(&e->db, &hit->db,
		       offsetof(struct pcache_ent, view_serial) + sizeof(e->view_serial) -
			   offsetof(struct pcache_ent, db));
		e->fixed_fp = hit->fixed_fp;
		/* the key stays readable for the walk until the old cache goes */
		hit->key_moved = true;
		hit->p = NULL;
		hit->diag = NULL;
		hit->moved = true;
		return;
	}
	memset(e, 0, sizeof(*e));
	e->key = xasprintf("%s:%s", f->blob, f->path);
	if (parse_file(f, &e->p, &dg) < 0) {
		plan_free(e->p);
		e->p = NULL;
		e->diag = diag_text(&dg);
	} else if (e->p->revert_of) {
		*own = e->p;
		e->p = NULL;
		e->skip = true;
	} else {
		e->id_hash = fp_str(FP_SEED, e->p->id);
	}
	diags_clear(&dg);
}

/* Makes pi invalid, with dg's errors as its message. */
static void
make_invalid(struct pinfo *pi, const struct diags *dg)
{
	const char *base = strrchr(pi->f->path, '/');
	const char *dot;

	if (!pi->id) {
		base = base ? base + 1 : pi->f->path;
		dot = strrchr(base, '.');
		pi->id = xstrndup(base, dot ? (size_t)(dot - base) : strlen(base));
		pi->own_id = true;
	}
	if (pi->own_diag)
		free(pi->diag);
	pi->diag = diag_text(dg);
	pi->own_diag = true;
	pi->status = "invalid";
	pi_msgf(pi, "%s", pi->diag);
}

/* pi's plan goes: freed when it is pi's own, left to the cache otherwise. */
static void
drop_plan(struct pinfo *pi)
{
	if (pi->own_p && pi->p && pi->id == pi->p->id && !pi->own_id) {
		/* the id was the plan's: the pinfo keeps a copy */
		pi->id = xstrdup(pi->id);
		pi->own_id = true;
	}
	if (pi->own_p)
		plan_free(pi->p);
	pi->p = NULL;
	pi->own_p = false;
}

/*
 * A revert plan at pis[i] is resolved against the plan it reverts, which
 * must be a valid plan before it at the tip, reverted by no revert before
 * it; the reverted plan is parsed again from its file, for the revert plan
 * to own. Any problem makes the revert plan invalid.
 */
static void
resolve_revert(struct pinfo *pis, size_t n, size_t i)
{
	struct pinfo *pi = &pis[i];
	const char *id = pi->p->revert_of;
	struct diags dg = DIAGS_INIT;
	struct plan *t = NULL;
	size_t k;

	for (k = 0; k < n; k++)
		if (k != i && pis[k].p && !strcmp(pis[k].p->id, id))
			break;
	if (k == n)
		diags_add(&dg, DIAG_ERROR, pi->f->path, pi->p->revert_line, pi->p->revert_col,
			  "revert: no valid plan with id '%s' at the tip (the reverted plan stays "
			  "in the directory, unchanged)",
			  id);
	else if (k > i)
		diags_add(&dg, DIAG_ERROR, pi->f->path, pi->p->revert_line, pi->p->revert_col,
			  "revert: plan %s is in %s, which comes after this file: a revert comes "
			  "after the plan it reverts in the line order",
			  id, pis[k].f->path);
	for (size_t o = 0; o < i && !dg.nerrors; o++)
		if (pis[o].p && pis[o].p->revert_of && !strcmp(pis[o].p->revert_of, id))
			diags_add(
			    &dg, DIAG_ERROR, pi->f->path, pi->p->revert_line, pi->p->revert_col,
			    "revert: plan %s is reverted already by %s: a plan is reverted once",
			    id, pis[o].f->path);
	if (!dg.nerrors && parse_file(pis[k].f, &t, &dg) == 0)
		(void)plan_revert_resolve(pi->p, t, &dg);
	if (dg.nerrors) {
		drop_plan(pi);
		make_invalid(pi, &dg);
	}
	diags_clear(&dg);
}

/*
 * The plans at the tip, through the cache (w->pcache is replaced);
 * duplicate ids make the later file invalid (found with a table of the ids'
 * hashes, kept in the cache: no copies, no sort). Revert plans are resolved
 * against the plans before them.
 */
struct pinfo *
parse_all(struct worker *w, const struct repo_snapshot *s)
{
	struct pinfo *pis = xcalloc(s->n ? s->n : 1, sizeof(*pis));
	struct pcache *next = xcalloc(1, sizeof(*next));
	size_t cur = 0, cap = 16, *slot;

	next->v = xcalloc(s->n ? s->n : 1, sizeof(*next->v));
	next->n = s->n;
	next->serial = s->serial;
	while (cap < 2 * s->n)
		cap *= 2;
	slot = xmalloc(cap * sizeof(*slot));
	memset(slot, 0xff, cap * sizeof(*slot));
	for (size_t i = 0; i < s->n; i++) {
		struct pinfo *pi = &pis[i];
		struct pcache_ent *e = &next->v[i];
		struct plan *own;

		pi->f = &s->files[i];
		pcache_fill(w->pcache, s->prev_serial, &cur, pi->f, e, &own);
		pi->ent = e;
		pi->p = own ? own : e->p;
		pi->own_p = own != NULL;
		pi->diag = e->diag;
		if (pi->p) {
			uint64_t hv = own ? fp_str(FP_SEED, own->id) : e->id_hash;
			size_t h = (size_t)hv & (cap - 1);
			struct diags dg = DIAGS_INIT;
			const struct pinfo *first;

			pi->id = pi->p->id;
			while (slot[h] != (size_t)-1 && strcmp(pis[slot[h]].id, pi->id) != 0)
				h = (h + 1) & (cap - 1);
			if (slot[h] == (size_t)-1) {
				slot[h] = i;
				continue;
			}
			/* the same id twice: the later file is invalid */
			first = &pis[slot[h]];
			diags_add(&dg, DIAG_ERROR, pi->f->path, pi->p->id_line, pi->p->id_col,
				  "duplicate plan id '%s': %s has it already", pi->p->id,
				  first->f->path);
			drop_plan(pi);
			make_invalid(pi, &dg);
			diags_clear(&dg);
		} else {
			const char *base = strrchr(pi->f->path, '/');
			const char *dot;

			base = base ? base + 1 : pi->f->path;
			dot = strrchr(base, '.');
			pi->id = xstrndup(base, dot ? (size_t)(dot - base) : strlen(base));
			pi->own_id = true;
			pi->status = "invalid";
			pi_msgf(pi, "%s", pi->diag);
		}
	}
	free(slot);
	pcache_free(w->pcache);
	w->pcache = next;
	for (size_t i = 0; i < s->n; i++)
		if (pis[i].p && pis[i].p->revert_of)
			resolve_revert(pis, s->n, i);
	return pis;
}
