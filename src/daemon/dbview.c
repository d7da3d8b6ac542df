/*
 * The database's view of a target's plans, kept between passes (dbview.h).
 * A chained hash table of plans by id, and one of ledger step ids to the
 * plan that has them; a plan read again is emptied and filled anew.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/dbview.h"
#include "daemon/fphash.h"
#include "util/alloc.h"
#include "util/strbuf.h"

struct node {
	struct node *next;
	const char *key; /* borrowed from val (a plan's id, or a step id of its shas) */
	struct dbplan *val;
};

struct table {
	struct node **b;
	size_t nb, n;
};

struct dbview {
	struct table plans;  /* id -> plan */
	struct table ledger; /* step_sha -> plan */
	struct dbplan **all;
	unsigned long long *gens; /* all[i]->gen, side by side: dbview_gen_at */
	size_t nall, cap;
	long long last_event;	   /* the highest event id read; -1: nothing read yet */
	unsigned long long serial; /* dbview_serial */
	/*
	 * The ids below last_event that no read has seen, as ranges: an event
	 * of another target the view may not read, a rolled back insert, or
	 * one whose transaction had drawn its id and not yet committed. Each
	 * is looked for again by every read until it is seen or HOLE_SECONDS
	 * have passed; past HOLES_MAX ranges, a new gap widens the last one
	 * (a row in a range is read again until the range ends: more reading,
	 * nothing missed).
	 */
	struct hole {
		long long lo, hi;
		double until;
	} * holes;
	size_t nholes;
};

/* How long an id that no read has seen is looked for, and how many are kept. */
#define HOLE_SECONDS 60.0
#define HOLES_MAX 4096

/* The source of every entry's gen: never twice the same, across views. */
static unsigned long long gen_clock;

static unsigned long long
gen_next(void)
{
	return __atomic_add_fetch(&gen_clock, 1, __ATOMIC_RELAXED);
}

static size_t
hash(const char *s)
{
	return (size_t)fp_str(FP_SEED, s);
}

static struct node **
table_slot(const struct table *t, const char *key)
{
	struct node **p;

	if (!t->nb)
		return NULL;
	for (p = &t->b[hash(key) & (t->nb - 1)]; *p; p = &(*p)->next)
		if (!strcmp((*p)->key, key))
			return p;
	return p;
}

static struct dbplan *
table_get(const struct table *t, const char *key)
{
	struct node **p = table_slot(t, key);

	return p && *p ? (*p)->val : NULL;
}

/* p's gen moves (and its copy in v->gens). */
static void
gen_bump(struct dbview *v, struct dbplan *p)
{
	p->gen = gen_next();
	v->gens[p->at] = p->gen;
}

/* key -> val; v (for the ledger) when a step id changing hands moves its owner's gen. */
static void
table_put(struct table *t, const char *key, struct dbplan *val, struct dbview *v)
{
	struct node **p, *e;

	if (t->n + 1 > t->nb) {
		size_t nb = t->nb ? t->nb * 2 : 256;
		struct node **b = xcalloc(nb, sizeof(*b));

		for (size_t i = 0; i < t->nb; i++)
			for (struct node *x = t->b[i], *nx; x; x = nx) {
				nx = x->next;
				x->next = b[hash(x->key) & (nb - 1)];
				b[hash(x->key) & (nb - 1)] = x;
			}
		free(t->b);
		t->b = b;
		t->nb = nb;
	}
	p = table_slot(t, key);
	if (*p) {
		/* the ledger's step id changes hands: what its owner said changes */
		if (v && (*p)->val != val)
			gen_bump(v, (*p)->val);
		(*p)->key = key;
		(*p)->val = val;
		return;
	}
	e = xcalloc(1, sizeof(*e));
	e->key = key;
	e->val = val;
	*p = e;
	t->n++;
}

/* Removes key when it maps to val. */
static void
table_del(struct table *t, const char *key, const struct dbplan *val)
{
	struct node **p = table_slot(t, key), *e;

	if (!p || !*p || (*p)->val != val)
		return;
	e = *p;
	*p = e->next;
	free(e);
	t->n--;
}

static void
table_clear(struct table *t)
{
	for (size_t i = 0; i < t->nb; i++)
		for (struct node *x = t->b[i], *nx; x; x = nx) {
			nx = x->next;
			free(x);
		}
	free(t->b);
	memset(t, 0, sizeof(*t));
}

/* Empties what was read of p (its id stays), and its ledger entries. */
static void
plan_clear(struct dbview *v, struct dbplan *p)
{
	for (size_t i = 0; i < p->nshas; i++) {
		table_del(&v->ledger, p->shas[i], p);
		free(p->shas[i]);
	}
	free(p->shas);
	free(p->status);
	free(p->checksum);
	free(p->completed_at);
	free(p->file_path);
	free(p->max_hazard);
	free(p->commit_sha);
	free(p->author);
	free(p->ev_type);
	free(p->ev_msg);
	char *id = p->id;
	size_t at = p->at;
	memset(p, 0, sizeof(*p));
	p->id = id;
	p->at = at;
	gen_bump(v, p);
}

struct dbview *
dbview_new(void)
{
	struct dbview *v = xcalloc(1, sizeof(*v));

	v->last_event = -1;
	v->serial = gen_next();
	return v;
}

void
dbview_forget(struct dbview *v)
{
	for (size_t i = 0; i < v->nall; i++) {
		plan_clear(v, v->all[i]);
		free(v->all[i]->id);
		free(v->all[i]);
	}
	free(v->all);
	v->all = NULL;
	free(v->gens);
	v->gens = NULL;
	v->nall = v->cap = 0;
	table_clear(&v->plans);
	table_clear(&v->ledger);
	v->last_event = -1;
	v->serial = gen_next();
	free(v->holes);
	v->holes = NULL;
	v->nholes = 0;
}

void
dbview_free(struct dbview *v)
{
	if (!v)
		return;
	dbview_forget(v);
	free(v);
}

unsigned long long
dbview_serial(const struct dbview *v)
{
	return v->serial;
}

unsigned long long
dbview_gen_at(const struct dbview *v, size_t at)
{
	return at < v->nall ? v->gens[at] : 0;
}

const struct dbplan *
dbview_get(const struct dbview *v, const char *id)
{
	return table_get(&v->plans, id);
}

bool
dbview_in_ledger(const struct dbview *v, const char *step_sha)
{
	return table_get(&v->ledger, step_sha) != NULL;
}

const struct dbplan *
dbview_ledger_owner(const struct dbview *v, const char *step_sha)
{
	return table_get(&v->ledger, step_sha);
}

struct dbplan *const *
dbview_all(const struct dbview *v, size_t *n)
{
	*n = v->nall;
	return v->all;
}

/* The entry of id, made (empty) when there is none. */
static struct dbplan *
plan_of(struct dbview *v, const char *id)
{
	struct dbplan *p = table_get(&v->plans, id);

	if (p)
		return p;
	p = xcalloc(1, sizeof(*p));
	p->id = xstrdup(id);
	if (v->nall == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 256;
		v->all = xrealloc(v->all, v->cap * sizeof(*v->all));
		v->gens = xrealloc(v->gens, v->cap * sizeof(*v->gens));
	}
	p->at = v->nall;
	v->all[v->nall++] = p;
	gen_bump(v, p);
	table_put(&v->plans, p->id, p, NULL);
	return p;
}

/* ids as a text[] literal: {"a","b"}, each element quoted. */
static char *
array_literal(const char *const *ids, size_t n)
{
	struct strbuf sb = STRBUF_INIT;

	sb_putc(&sb, '{');
	for (size_t i = 0; i < n; i++) {
		sb_puts(&sb, i ? ",\"" : "\"");
		for (const char *c = ids[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				sb_putc(&sb, '\\');
			sb_putc(&sb, *c);
		}
		sb_putc(&sb, '"');
	}
	sb_putc(&sb, '}');
	return sb_detach(&sb);
}

/*
 * Reads the plans named by the text[] literal ids (NULL: every plan of the
 * target) into v, after emptying the entries of the plans named (all, for
 * NULL).
 */
static int
read_plans(struct dbview *v, struct db *db, const char *target, const char *ids,
	   const char *const *names, size_t nnames, struct db_error *err)
{
	const char *params[2] = { target, ids };
	/* one filter for all: NULL is every plan (the planner drops the test) */
	struct db_stmt st[4] = {
		{ .sql = "SELECT plan_id, status, coalesce(checksum, ''), coalesce(to_char("
			 "completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
			 "coalesce(file_path, ''), coalesce(max_hazard, ''), coalesce(commit_sha, "
			 "''), coalesce(author, '') FROM taskslaps.plans WHERE target = $1 AND "
			 "($2::text[] IS NULL OR plan_id = ANY ($2::text[]))" },
		{ .sql =
		      "SELECT step_sha, plan_id, outcome IN ('applied', 'already_present') FROM "
		      "taskslaps.step_ledger WHERE target = $1 AND ($2::text[] IS NULL OR plan_id "
		      "= ANY ($2::text[]))" },
		{ .sql =
		      "SELECT DISTINCT ON (plan_id) plan_id, type, coalesce(message, '') FROM "
		      "taskslaps.events WHERE target = $1 AND plan_id IS NOT NULL AND ($2::text[] "
		      "IS NULL OR plan_id = ANY ($2::text[])) AND type IN ('plan.ok', "
		      "'plan.failed', 'plan.blocked', 'plan.drift', 'plan.rate_limited', "
		      "'plan.aborted', 'plan.invalid', 'plan.interrupted', 'plan.start', "
		      "'plan.reverted') ORDER BY plan_id, id DESC" },
		{ .sql =
		      "SELECT DISTINCT plan_id FROM taskslaps.events WHERE target = $1 AND type = "
		      "'plan.out_of_order' AND plan_id IS NOT NULL AND ($2::text[] IS NULL OR "
		      "plan_id = ANY ($2::text[]))" },
	};
	PGresult *r[4];
	int rc = -1;

	/* in one round trip, and one implicit transaction: the four read one moment */
	for (int i = 0; i < 4; i++) {
		st[i].nparams = 2;
		st[i].params = params;
		st[i].fixed = true;
	}
	if (db_batch(db, st, 4, err, NULL) < 0)
		goto out;
	for (int i = 0; i < 4; i++)
		r[i] = st[i].res;
	if (!ids) {
		for (size_t i = 0; i < v->nall; i++)
			plan_clear(v, v->all[i]);
	} else {
		for (size_t i = 0; i < nnames; i++)
			plan_clear(v, plan_of(v, names[i]));
	}
	for (int i = 0; i < PQntuples(r[0]); i++) {
		struct dbplan *p = plan_of(v, PQgetvalue(r[0], i, 0));

		p->has_row = true;
		p->status = xstrdup(PQgetvalue(r[0], i, 1));
		p->checksum = xstrdup(PQgetvalue(r[0], i, 2));
		p->completed_at = xstrdup(PQgetvalue(r[0], i, 3));
		p->file_path = xstrdup(PQgetvalue(r[0], i, 4));
		p->max_hazard = xstrdup(PQgetvalue(r[0], i, 5));
		p->commit_sha = xstrdup(PQgetvalue(r[0], i, 6));
		p->author = xstrdup(PQgetvalue(r[0], i, 7));
	}
	for (int i = 0; i < PQntuples(r[1]); i++) {
		struct dbplan *p = plan_of(v, PQgetvalue(r[1], i, 1));

		p->shas = xrealloc(p->shas, (p->nshas + 1) * sizeof(*p->shas));
		p->shas[p->nshas] = xstrdup(PQgetvalue(r[1], i, 0));
		table_put(&v->ledger, p->shas[p->nshas], p, v);
		p->nshas++;
		if (!strcmp(PQgetvalue(r[1], i, 2), "t"))
			p->steps++;
	}
	for (int i = 0; i < PQntuples(r[2]); i++) {
		struct dbplan *p = plan_of(v, PQgetvalue(r[2], i, 0));

		p->ev_type = xstrdup(PQgetvalue(r[2], i, 1));
		p->ev_msg = xstrdup(PQgetvalue(r[2], i, 2));
	}
	for (int i = 0; i < PQntuples(r[3]); i++)
		plan_of(v, PQgetvalue(r[3], i, 0))->ooo = true;
	rc = 0;
out:
	for (int i = 0; i < 4; i++)
		PQclear(st[i].res);
	return rc;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Whether id is in a hole (an id not seen before); a range shrinks from its ends. */
static bool
hole_take(struct dbview *v, long long id)
{
	for (size_t i = 0; i < v->nholes; i++) {
		struct hole *h = &v->holes[i];

		if (id < h->lo || id > h->hi)
			continue;
		if (h->lo == h->hi)
			*h = v->holes[--v->nholes];
		else if (id == h->lo)
			h->lo++;
		else if (id == h->hi)
			h->hi--;
		return true;
	}
	return false;
}

/* Adds the ids from lo to hi as a hole (widening the last one when there are HOLES_MAX). */
static void
holes_add(struct dbview *v, long long lo, long long hi, double until)
{
	if (hi < lo)
		return;
	if (v->nholes == HOLES_MAX) {
		struct hole *last = &v->holes[v->nholes - 1];

		last->lo = lo < last->lo ? lo : last->lo;
		last->hi = hi > last->hi ? hi : last->hi;
		last->until = until;
		return;
	}
	v->holes = xrealloc(v->holes, (v->nholes + 1) * sizeof(*v->holes));
	v->holes[v->nholes++] = (struct hole){ .lo = lo, .hi = hi, .until = until };
}

int
dbview_catch_up(struct dbview *v, struct db *db, const char *target, const char *const *extra,
		size_t nextra, struct db_error *err)
{
	char from[32];
	const char *params[2] = { target, from };
	const char **names = NULL;
	size_t n = 0;
	long long top = v->last_event, seen, low = v->last_event;
	bool first = v->last_event < 0;
	double now = now_seconds();
	PGresult *r = NULL;
	char *lit = NULL;
	int rc = -1;

	for (size_t i = 0; i < v->nholes; i++)
		if (v->holes[i].lo - 1 < low)
			low = v->holes[i].lo - 1;
	snprintf(from, sizeof(from), "%lld", low);
	/*
	 * The events since the last one read, and since the oldest hole, of
	 * every target (an id of another target is no hole), in id order. The
	 * first time, the last 256 ids only, to find the holes
	 * there: every plan is read anyway, after the highest id (so an event
	 * written meanwhile is read again next time, never missed).
	 */
	if (db_exec(db, &r, err,
		    first ? "SELECT id, target = $1, coalesce(plan_id, '') FROM taskslaps.events "
			    "WHERE id > (SELECT coalesce(max(id), 0) FROM taskslaps.events) - "
			    "256 AND $2::bigint < 0 ORDER BY id"
			  : "SELECT id, target = $1, coalesce(plan_id, '') FROM taskslaps.events "
			    "WHERE id > $2::bigint ORDER BY id",
		    2, params) < 0)
		goto fail;
	names = xcalloc((size_t)PQntuples(r) + nextra + 1, sizeof(*names));
	seen = first && PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) - 1 : v->last_event;
	for (int i = 0; i < PQntuples(r); i++) {
		long long id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		bool fresh = id > v->last_event || hole_take(v, id);

		if (id > seen) {
			/* the ids skipped since the last one seen are holes */
			holes_add(v, seen + 1, id - 1, now + HOLE_SECONDS);
			seen = id;
		}
		if (id > top)
			top = id;
		if (fresh && !strcmp(PQgetvalue(r, i, 1), "t") && *PQgetvalue(r, i, 2))
			names[n++] = PQgetvalue(r, i, 2);
	}
	/*
	 * Holes given up on, once this read has looked for them a minute after
	 * they were made (the program's transactions that draw an id commit
	 * within milliseconds, not a minute): after, not before, the read,
	 * however long the daemon idled.
	 */
	for (size_t i = 0; i < v->nholes;) {
		if (v->holes[i].until < now)
			v->holes[i] = v->holes[--v->nholes];
		else
			i++;
	}
	if (first) {
		if (read_plans(v, db, target, NULL, NULL, 0, err) < 0)
			goto fail;
		v->last_event = top < 0 ? 0 : top;
		rc = (int)v->nall;
		goto out;
	}
	for (size_t i = 0; i < nextra; i++)
		names[n++] = extra[i];
	if (n) {
		lit = array_literal(names, n);
		if (read_plans(v, db, target, lit, names, n, err) < 0)
			goto fail;
	}
	v->last_event = top;
	rc = (int)n;
	goto out;
fail:
	dbview_forget(v);
out:
	free(lit);
	free(names);
	PQclear(r);
	return rc;
}
