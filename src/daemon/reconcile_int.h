/*
 * What the files of a reconciliation pass share (reconcile.c, the pass;
 * reconcile_facts.c, what it gathers for the line's core beside the files;
 * reconcile_parse.c, the plan cache and the parsing of the tip;
 * reconcile_out.c, the notes and the status document; reconcile_jobs.c,
 * the operator verbs the worker runs): one plan file's
 * facts as the pass gathers them, the cache entry that keeps a file
 * parsed, and the database's word on a plan from the kept view.
 */
#ifndef TS_DAEMON_RECONCILE_INT_H
#define TS_DAEMON_RECONCILE_INT_H

#include <stdint.h>

#include "daemon/dbview.h"
#include "daemon/worker_int.h"
#include "line/line.h"
#include "repo/repo.h"

/*
 * The plan cache: every plan file parsed once per (blob id, path) and kept
 * while the tip has it, so a pass parses only what changed (docs/design.md,
 * "A pass"). A plan is judged again on every pass (policy, signatures,
 * the database), never remembered judged. The entries are in the
 * snapshot's order (by path), so a pass finds a file's entry by walking the
 * last array alongside the snapshot; it builds the next array from the
 * snapshot and frees what the tip no longer has. Revert plans are not kept: resolving
 * one against the plan it reverts changes it, and they are few. An entry
 * also keeps what the last pass said of its plan: the fingerprint of the
 * note on its commit, and its item of the status document's "plans".
 */
struct pcache_ent {
	char *key;	  /* "<blob id>:<path>" */
	struct plan *p;	  /* NULL when the file is invalid */
	char *diag;	  /* its errors, when invalid */
	uint64_t id_hash; /* fp_str of its plan's id, when p */
	bool moved;	  /* taken by the next pass's cache (key kept for the search) */
	bool key_moved;	  /* the key too: the next cache's, freed there */
	bool skip;	  /* a revert plan: its pinfo owns it, never looked up */
	uint64_t note_fp; /* what the note of its commit said when written (write_notes) */
	/*
	 * Its item in the status document's "plans" (w->plans_doc, owned by the
	 * document; only the worker replaces it) and what the item says.
	 */
	cJSON *item;
	uint64_t item_fp;
	/*
	 * What the pass read of its plan's entry in the view (db, at index
	 * db_at of dbview_all), kept while that entry's gen is the one read:
	 * fill_gen for what fill_from_db found (its steps in the ledger, kept
	 * only when each is in db's own ledger rows), line_gen for line_fill's
	 * facts. 0: nothing kept. Checked with dbview_gen_at, which visits no
	 * entry: a plan nothing changed costs no lookup of the view.
	 */
	const struct dbplan *db;
	size_t db_at;
	unsigned long long fill_gen, line_gen;
	size_t wdone[WAVE__COUNT], done, wtotal[WAVE__COUNT], total;
	bool ooo, has_row;
	char applied_at[40];
	const char *reverted; /* the row's reverted status, its checksum the plan's; else NULL */
	enum line_status line_db;
	const char *line_db_checksum;
	bool line_sum_same;
	/* its plan's entry in the view (add_missing), while the view's serial is view_serial */
	const struct dbplan *dbp;
	size_t dbp_at;
	unsigned long long view_serial;
	/* fp of what of its plan does not change while the entry is kept (pi_fixed_fp) */
	uint64_t fixed_fp;
};

/* What the status document and the notes say of one plan file. */
struct pinfo {
	const struct repo_plan_file *f;
	struct plan *p; /* NULL when invalid */
	char *id;	/* p's (borrowed), or the pinfo's own (own_id) */
	bool own_id;
	char *diag;	    /* the parse errors of an invalid plan */
	const char *status; /* a literal (line_status_name) */
	char *message;	    /* the pinfo's own, NULL for none: pi_msg, pi_msgf */
	char sqlstate[6];
	char applied_at[40];
	size_t done, total;
	size_t wdone[WAVE__COUNT], wtotal[WAVE__COUNT];
	bool out_of_order; /* ran although it sorts before a plan applied earlier */
	/*
	 * An applied plan that no file at the tip has (removed, say by a
	 * force-push): drift, shown in its old place in the order, noted on
	 * the tip. own_f is its stand-in file (path from the database, the
	 * tip as commit), freed with it.
	 */
	bool missing;
	struct repo_plan_file *own_f;
	bool own_diag;	 /* diag is the pinfo's (else the plan cache's) */
	bool own_p;	 /* p is the pinfo's (a revert plan), else the cache's */
	char *rate_note; /* the rate limit's verdict: whose plans count, or why it is not known */
	char hazard[4];
	/*
	 * Its plan cache entry, which keeps what the pass last said of it (the
	 * note, the status document's item), or NULL for a plan the cache does
	 * not keep (a removed plan's stand-in).
	 */
	struct pcache_ent *ent;
	/*
	 * dbview_get of its id, looked up once a pass (add_missing), again
	 * after the view's refresh only when NULL: an entry, once made, stays
	 * where it is until the view is forgotten.
	 */
	const struct dbplan *dbp;
	/* line_fill: the row's checksum is the plan's (-1: not known, no row) */
	signed char sum_same;
};

/* pi's row in the view, or NULL when the database has none. */
static inline const struct dbplan *
pi_row(const struct pinfo *pi)
{
	return pi->dbp && pi->dbp->has_row ? pi->dbp : NULL;
}

/* What pi says of its plan ("" when nothing). */
static inline const char *
pi_msg(const struct pinfo *pi)
{
	return pi->message ? pi->message : "";
}

/*
 * Sets pi's message, at most PI_MSG_MAX - 1 bytes of it, as snprintf into
 * a buffer of PI_MSG_MAX would; an empty one is none.
 */
#define PI_MSG_MAX 1600
void pi_msgf(struct pinfo *pi, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The plan's row, or NULL when the database has none. */
static inline const struct dbplan *
db_row(const struct dbview *v, const char *plan_id)
{
	const struct dbplan *p = dbview_get(v, plan_id);

	return p && p->has_row ? p : NULL;
}

static inline const char *
db_status(const struct dbview *v, const char *plan_id)
{
	const struct dbplan *p = db_row(v, plan_id);

	return p ? p->status : NULL;
}

/* The message of the last plan.* event of a plan, or "". */
static inline const char *
db_message(const struct dbview *v, const char *plan_id)
{
	const struct dbplan *p = dbview_get(v, plan_id);

	return p && p->ev_msg ? p->ev_msg : "";
}

/* The number of a plan's steps in the ledger. */
static inline size_t
db_steps(const struct dbview *v, const char *plan_id)
{
	const struct dbplan *p = dbview_get(v, plan_id);

	return p ? p->steps : 0;
}

/* The type of the last plan.* event of a plan, or NULL. */
static inline const char *
db_last_event(const struct dbview *v, const char *plan_id)
{
	const struct dbplan *p = dbview_get(v, plan_id);

	return p ? p->ev_type : NULL;
}

/* reconcile_facts.c */
struct pcache_ent *pi_memo(const struct pinfo *pi, const struct dbview *v, unsigned long long *gen);
/* a plan's counts, status and message from the database's view */
void fill_from_db(struct pinfo *pi, const struct dbview *v);
struct pinfo *add_missing(struct pinfo *pis, size_t *n, const struct repo_snapshot *snap,
			  const struct dbview *v);
void record_missing(struct worker *w, const struct pinfo *pi, const struct dbview *v);
void record_invalid(struct worker *w, struct pinfo *pi, const struct dbview *v, bool keep_row);
void check_signature(struct worker *w, struct pinfo *pi);
const char *db_checksum(const struct dbview *v, const char *plan_id);
int rate_limited(struct worker *w, struct pinfo *pi, char **who, char *why, size_t whylen);

/* reconcile_parse.c */
void pinfos_free(struct pinfo *pis, size_t n);
struct pinfo *parse_all(struct worker *w, const struct repo_snapshot *s);
int parse_file(const struct repo_plan_file *f, struct plan **out, struct diags *dg);
void pcache_free(struct pcache *c);

/* reconcile_out.c */
void write_notes(struct daemon *d, struct worker *w, struct pinfo *pis, size_t n);
void publish(struct daemon *d, struct worker *w, struct pinfo *pis, size_t n,
	     enum line_health health, bool in_sync);
void publish_ran(struct daemon *d, struct worker *w, struct pinfo *pis, size_t n);
void publish_progress(struct daemon *d, struct worker *w, struct pinfo *pis, size_t n,
		      size_t running, const struct dbview *v);

#endif
