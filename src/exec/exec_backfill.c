/*
 * backfill_sql: the author's UPDATE, run in keyset batches over the table's
 * primary key, one statement a batch that takes the next keys and updates
 * their rows. Each batch is its own transaction and writes its checkpoint
 * in that same transaction, so a killed run resumes after the last committed
 * batch and never applies one twice. The key range is fixed when the
 * backfill starts, so rows inserted meanwhile do not keep it running.
 */
#include "sql/sql_pg.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exec/exec_int.h"
#include "util/alloc.h"
#include "util/strbuf.h"

int
exec_primary_key(struct exec *ex, const char *table, char ***cols, char ***types, size_t *n,
		 struct db_error *err)
{
	const char *params[1] = { table };
	PGresult *r;

	*n = 0;
	if (db_exec(
		ex->db, &r, err,
		"SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM "
		"pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid "
		"AND a.attnum = ANY(i.indkey) WHERE i.indrelid = taskslaps.lookup_relation($1) "
		"AND i.indisprimary ORDER BY pg_catalog.array_position(i.indkey::int2[], "
		"a.attnum)",
		1, params) < 0)
		return -1;
	*n = (size_t)PQntuples(r);
	*cols = xcalloc(*n ? *n : 1, sizeof(char *));
	*types = xcalloc(*n ? *n : 1, sizeof(char *));
	for (size_t i = 0; i < *n; i++) {
		(*cols)[i] = xstrdup(PQgetvalue(r, (int)i, 0));
		(*types)[i] = xstrdup(PQgetvalue(r, (int)i, 1));
	}
	PQclear(r);
	return 0;
}

struct backfill {
	struct step_run *r;
	char *qtable;	      /* quoted table */
	char **cols, **types; /* primary key */
	char **qcols;	      /* quoted key columns */
	size_t nk;
	char *keylist;	      /* "a", "b" */
	char *last;	      /* JSON array text of the last key done, or NULL at the start */
	char *upper;	      /* JSON array text of the largest key when the backfill began */
	int64_t rows_done;    /* rows walked (keys) so far, all runs */
	int64_t rows_updated; /* rows the UPDATEs changed, this run */
	int64_t rows_total;   /* estimate, for progress */
	struct exec_proof pf; /* each batch proves its locks before COMMIT */
	char *sql_first[2];   /* the batch's keys and UPDATE from the start of the range, */
	char *sql_next[2];    /* and after a checkpoint (exec_backfill_batch_sql) */
	bool done;	      /* out of the last batch: it reached the range's end */
	int64_t walked;	      /* out of the last batch: the keys it walked */
};

static char *
quote_ident(PGconn *conn, const char *s)
{
	char *q = PQescapeIdentifier(conn, s, strlen(s));
	char *out = xstrdup(q ? q : "\"\"");

	PQfreemem(q);
	return out;
}

/* "schema"."table" from a validated name. */
static char *
quote_table(PGconn *conn, const char *name)
{
	const char *dot = strchr(name, '.');
	char *a, *b, *out;

	if (!dot)
		return quote_ident(conn, name);
	a = xstrndup(name, (size_t)(dot - name));
	b = xstrdup(dot + 1);
	{
		char *qa = quote_ident(conn, a), *qb = quote_ident(conn, b);
		out = xasprintf("%s.%s", qa, qb);
		free(qa);
		free(qb);
	}
	free(a);
	free(b);
	return out;
}

static void
backfill_free(struct backfill *b)
{
	for (size_t i = 0; i < b->nk; i++) {
		free(b->cols[i]);
		free(b->types[i]);
		free(b->qcols[i]);
	}
	free(b->cols);
	free(b->types);
	free(b->qcols);
	free(b->qtable);
	free(b->keylist);
	free(b->last);
	free(b->upper);
	for (int i = 0; i < 2; i++) {
		free(b->sql_first[i]);
		free(b->sql_next[i]);
	}
	exec_proof_free(&b->pf);
}

/* "($1::bigint, $2::text)" with parameters numbered from first. */
static void
key_params(struct strbuf *sb, const char *const *types, size_t nk, int first)
{
	sb_putc(sb, '(');
	for (size_t i = 0; i < nk; i++)
		sb_printf(sb, "%s$%d::%s", i ? ", " : "", first + (int)i, types[i]);
	sb_putc(sb, ')');
}

/* pg_catalog.json_build_array(k1::text, ...)::text: a key as one JSON value. */
static void
key_json(struct strbuf *sb, const char *const *qcols, size_t nk)
{
	sb_puts(sb, "pg_catalog.json_build_array(");
	for (size_t i = 0; i < nk; i++)
		sb_printf(sb, "%s%s::text", i ? ", " : "", qcols[i]);
	sb_puts(sb, ")::text");
}

/* Unpacks a JSON array of strings into params[from..from+nk). Returns 0 or -1. */
static int
unpack_key(const struct backfill *b, const char *json, const char **params, cJSON **keep)
{
	cJSON *a = cJSON_Parse(json);
	size_t i = 0;

	*keep = a;
	if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != b->nk)
		return -1;
	for (cJSON *e = a->child; e; e = e->next, i++) {
		if (!cJSON_IsString(e))
			return -1;
		params[i] = e->valuestring;
	}
	return 0;
}

/* Parse what we generate: a key query is one SELECT from the backfill's table. */
static bool
key_query_ok(const struct step_run *r, const char *sql, struct db_error *err)
{
	struct sql_msg m;

	if (sql_is_key_query(sql, r->s->bf_table, &m))
		return true;
	memset(err, 0, sizeof(*err));
	snprintf(err->message, sizeof(err->message), "backfill key query refused: %s", m.text);
	return false;
}

static int
load_progress(struct backfill *b, struct db_error *err)
{
	struct step_run *r = b->r;
	const char *params[3] = { r->s->sha, r->ex->target, NULL };
	struct strbuf sql = STRBUF_INIT;
	PGresult *res;

	if (db_exec(
		r->ex->db, &res, err,
		"SELECT last_key::text, upper_key::text, rows_done FROM taskslaps.backfill_progress "
		"WHERE step_sha = $1 AND target = $2",
		2, params) < 0)
		return -1;
	if (PQntuples(res) > 0) {
		b->last = PQgetisnull(res, 0, 0) ? NULL : xstrdup(PQgetvalue(res, 0, 0));
		b->upper = PQgetisnull(res, 0, 1) ? NULL : xstrdup(PQgetvalue(res, 0, 1));
		b->rows_done = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
		PQclear(res);
		exec_event(r->ex, "step.progress", r->p->id, r->wave, r->s->sha, NULL,
			   "resuming the backfill from its checkpoint: %lld rows done, last key %s",
			   (long long)b->rows_done, b->last ? b->last : "(none)");
		return 0;
	}
	PQclear(res);
	/* fix the range now: rows inserted later are the application's business */
	sb_puts(&sql, "SELECT ");
	key_json(&sql, (const char *const *)b->qcols, b->nk);
	sb_printf(&sql, " FROM %s ORDER BY ", b->qtable);
	for (size_t i = 0; i < b->nk; i++)
		sb_printf(&sql, "%s%s DESC", i ? ", " : "", b->qcols[i]);
	sb_puts(&sql, " LIMIT 1");
	if (!key_query_ok(r, sb_str(&sql), err) ||
	    db_exec(r->ex->db, &res, err, sb_str(&sql), 0, NULL) < 0) {
		sb_free(&sql);
		return -1;
	}
	sb_free(&sql);
	b->upper = PQntuples(res) > 0 ? xstrdup(PQgetvalue(res, 0, 0)) : NULL;
	PQclear(res);
	params[2] = b->upper;
	return db_exec(r->ex->db, NULL, err,
		       "INSERT INTO taskslaps.backfill_progress (step_sha, target, last_key, "
		       "rows_done, upper_key) VALUES ($1, $2, NULL, 0, $3::jsonb)",
		       3, params);
}

/*
 * A batch is two statements in one transaction. The first finds the batch's
 * last key and leaves it, as JSON text, in a transaction-local setting; the
 * second, the author's UPDATE, reads its upper bound from that setting. The
 * names below are the statements' own: the first names its WITH queries
 * after the batch, and an author's SQL that names the setting, or calls
 * set_config, could move the second's bound: the read-back refuses it.
 */
#define BATCH_SETTING SQL_BATCH_SETTING
#define BATCH_HI "taskslaps_batch_hi"
#define BATCH_KEYS "taskslaps_batch_keys"
#define BATCH_SET "taskslaps_batch_set"
#define BATCH_BOUND "taskslaps_batch"

static void msg_set(struct sql_msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
msg_set(struct sql_msg *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->text, sizeof(m->text), fmt, ap);
	va_end(ap);
	m->off = 0;
}

static bool
is_batch_cte(const Node *n, const char *name, CTEMaterialize mat)
{
	const CommonTableExpr *c;

	if (!n || !IsA(n, CommonTableExpr))
		return false;
	c = (const CommonTableExpr *)n;
	return c->ctename && strcmp(c->ctename, name) == 0 && c->ctequery &&
	       IsA(c->ctequery, SelectStmt) && c->ctematerialized == mat && !c->aliascolnames &&
	       !c->search_clause && !c->cycle_clause;
}

/* one plain SELECT from table alone, with no WITH of its own */
static bool
key_select(const Node *q, const char *table)
{
	const SelectStmt *sel = q && IsA(q, SelectStmt) ? (const SelectStmt *)q : NULL;

	return sel && !sel->withClause && !sel->lockingClause && !sel->intoClause &&
	       sel->op == SETOP_NONE && list_length(sel->fromClause) == 1 &&
	       IsA(linitial(sel->fromClause), RangeVar) &&
	       sql_rangevar_is(linitial_node(RangeVar, sel->fromClause), table);
}

/* a function call named name, in pg_catalog or unqualified */
static bool
is_call(const Node *n, const char *name)
{
	const FuncCall *f = n && IsA(n, FuncCall) ? (const FuncCall *)n : NULL;
	int nn = f ? list_length(f->funcname) : 0;
	const char *fn = nn ? sql_node_str(llast(f->funcname)) : NULL;

	return fn && !strcmp(fn, name) &&
	       (nn == 1 ||
		(nn == 2 && sql_str_eq(sql_node_str(linitial(f->funcname)), "pg_catalog")));
}

static const char *
const_str(const Node *n)
{
	const A_Const *c = n && IsA(n, A_Const) ? (const A_Const *)n : NULL;

	return c && !c->isnull && nodeTag(&c->val) == T_String ? c->val.sval.sval : NULL;
}

/* what a walk of the statement counts: the setting's name and calls of set_config */
struct batch_refs {
	int setting, set_config;
};

static bool
count_batch_refs(const Node *n, void *ctx)
{
	struct batch_refs *c = ctx;
	const char *s = const_str(n);

	if (s && strcasecmp(s, BATCH_SETTING) == 0)
		c->setting++;
	if (sql_set_config_may_set(n, BATCH_SETTING))
		c->set_config++;
	return true;
}

static bool
count_rangevars(const RangeVar *rv, void *ctx)
{
	(void)rv;
	(*(int *)ctx)++;
	return true;
}

/*
 * Parse what we generate, the keys: WITH hi and keys, each one SELECT from
 * the table alone, and set, MATERIALIZED (so that it runs once), one
 * set_config of the setting to a SELECT from hi; then a SELECT of two
 * values from set alone. Five tables read: hi, keys, set, and the table
 * twice.
 */
static bool
keys_readback(const char *sql, const char *table, struct sql_msg *m)
{
	struct sql_tree t;
	const Node *n;
	const SelectStmt *top, *set = NULL;
	const WithClause *w;
	const FuncCall *f = NULL;
	const CoalesceExpr *ce = NULL;
	struct batch_refs c = { 0, 0 };
	int tables = 0;
	bool ok;

	n = sql_parse_one(&t, sql, m);
	if (!n)
		return false;
	top = IsA(n, SelectStmt) ? (const SelectStmt *)n : NULL;
	w = top ? top->withClause : NULL;
	ok = w && !w->recursive && list_length(w->ctes) == 3 && list_length(top->targetList) == 2 &&
	     list_length(top->fromClause) == 1 && IsA(linitial(top->fromClause), RangeVar) &&
	     sql_rangevar_is(linitial_node(RangeVar, top->fromClause), BATCH_SET) &&
	     !top->whereClause && !top->lockingClause && !top->intoClause &&
	     top->op == SETOP_NONE &&
	     is_batch_cte(linitial(w->ctes), BATCH_HI, CTEMaterializeDefault) &&
	     is_batch_cte(lsecond(w->ctes), BATCH_KEYS, CTEMaterializeDefault) &&
	     is_batch_cte(lthird(w->ctes), BATCH_SET, CTEMaterializeAlways) &&
	     key_select(linitial_node(CommonTableExpr, w->ctes)->ctequery, table) &&
	     key_select(lsecond_node(CommonTableExpr, w->ctes)->ctequery, table);
	if (ok) {
		set = (const SelectStmt *)lthird_node(CommonTableExpr, w->ctes)->ctequery;
		ok = !set->fromClause && !set->whereClause && !set->withClause &&
		     set->op == SETOP_NONE && list_length(set->targetList) == 1 &&
		     is_call(linitial_node(ResTarget, set->targetList)->val, "set_config");
	}
	if (ok) {
		f = (const FuncCall *)linitial_node(ResTarget, set->targetList)->val;
		ok = list_length(f->args) == 3 && const_str(linitial(f->args)) &&
		     !strcmp(const_str(linitial(f->args)), BATCH_SETTING) &&
		     IsA(lsecond(f->args), CoalesceExpr) && IsA(lthird(f->args), A_Const) &&
		     nodeTag(&((const A_Const *)lthird(f->args))->val) == T_Boolean &&
		     ((const A_Const *)lthird(f->args))->val.boolval.boolval;
	}
	if (ok) {
		ce = (const CoalesceExpr *)lsecond(f->args);
		ok = list_length(ce->args) == 2 && IsA(linitial(ce->args), SubLink) &&
		     ((const SubLink *)linitial(ce->args))->subLinkType == EXPR_SUBLINK &&
		     key_select(((const SubLink *)linitial(ce->args))->subselect, BATCH_HI);
	}
	if (ok) {
		sql_walk(n, count_batch_refs, &c);
		sql_walk_rangevars(n, count_rangevars, &tables);
		ok = c.setting == 1 && c.set_config == 1 && tables == 5;
	}
	if (!ok)
		msg_set(
		    m,
		    "the batch's keys do not read back as the last key of %s kept in " BATCH_SETTING
		    " and the count of its keys",
		    table);
	sql_tree_free(&t);
	return ok;
}

/*
 * "(k) <= (SELECT ...)": the key, one column or a row of nk, at most a
 * subquery's answer (the raw tree's A_Expr; PostgreSQL makes a row's a
 * row comparison later)
 */
static bool
is_bound(const Node *n, size_t nk)
{
	const A_Expr *e = n && IsA(n, A_Expr) ? (const A_Expr *)n : NULL;
	const char *op = e && e->kind == AEXPR_OP ? sql_node_str(llast(e->name)) : NULL;

	if (!op || strcmp(op, "<=") != 0 || !e->lexpr || !e->rexpr || !IsA(e->rexpr, SubLink) ||
	    ((const SubLink *)e->rexpr)->subLinkType != EXPR_SUBLINK)
		return false;
	if (nk == 1)
		return !IsA(e->lexpr, RowExpr);
	return IsA(e->lexpr, RowExpr) &&
	       (size_t)list_length(((const RowExpr *)e->lexpr)->args) == nk;
}

/*
 * Parse what we generate, the UPDATE: one UPDATE of the table with a WHERE
 * (sql_is_batch_update) that is the batch's bound, or conditions joined by
 * AND whose last is; the bound reads the setting, and nothing else in the
 * statement names the setting or calls set_config.
 */
static bool
update_readback(const char *sql, const char *table, size_t nk, struct sql_msg *m)
{
	struct sql_tree t;
	const Node *n, *bound;
	const UpdateStmt *u;
	struct batch_refs all = { 0, 0 }, in_bound = { 0, 0 };
	bool ok;

	if (!sql_is_batch_update(sql, table, m))
		return false;
	n = sql_parse_one(&t, sql, m);
	if (!n)
		return false;
	u = (const UpdateStmt *)n;
	bound = u->whereClause;
	if (IsA(bound, BoolExpr) && ((const BoolExpr *)bound)->boolop == AND_EXPR)
		bound = llast(((const BoolExpr *)bound)->args);
	sql_walk(n, count_batch_refs, &all);
	sql_walk(bound, count_batch_refs, &in_bound);
	ok = is_bound(bound, nk);
	if (!ok)
		msg_set(m,
			"the batch's UPDATE does not read back as the backfill's condition AND the "
			"batch's range of %s",
			table);
	else if (!(ok = all.setting == 1 && in_bound.setting == 1 && all.set_config == 0))
		msg_set(m, "the backfill's SQL names the setting " BATCH_SETTING
			   " or calls set_config: the batch passes its bound through that setting");
	sql_tree_free(&t);
	return ok;
}

/* "SELECT k FROM t WHERE [(k) > last AND] (k) <= upper ORDER BY k LIMIT ..." */
static void
range_select(struct strbuf *sb, const struct exec_batch_shape *bs, const char *kl, bool from_start,
	     int up, const char *limit)
{
	sb_printf(sb, "SELECT %s FROM %s WHERE ", kl, bs->qtable);
	if (!from_start) {
		sb_printf(sb, "(%s) > ", kl);
		key_params(sb, bs->types, bs->nk, 1);
		sb_puts(sb, " AND ");
	}
	sb_printf(sb, "(%s) <= ", kl);
	key_params(sb, bs->types, bs->nk, up);
	sb_printf(sb, " ORDER BY %s LIMIT %s", kl, limit);
}

int
exec_backfill_batch_sql(const struct exec_batch_shape *bs, bool from_start, char **keys_sql,
			char **update_sql, struct sql_msg *m)
{
	struct strbuf kl = STRBUF_INIT, hi = STRBUF_INIT, keys = STRBUF_INIT, upd = STRBUF_INIT,
		      q = STRBUF_INIT;
	int up = from_start ? 1 : (int)bs->nk + 1; /* the upper key's first parameter */
	int n = up + (int)bs->nk;		   /* batch_size */
	char lim[48];
	int rc = -1;

	*keys_sql = *update_sql = NULL;
	for (size_t i = 0; i < bs->nk; i++)
		sb_printf(&kl, "%s%s", i ? ", " : "", bs->qcols[i]);
	/* the batch's last key: batch_size keys on, none when fewer are left */
	snprintf(lim, sizeof(lim), "1 OFFSET $%d::bigint - 1", n);
	range_select(&hi, bs, sb_str(&kl), from_start, up, lim);
	if (!sql_is_key_query(sb_str(&hi), bs->table, m))
		goto out;
	/* the keys left, counted only when fewer than batch_size are */
	snprintf(lim, sizeof(lim), "$%d::bigint", n);
	range_select(&keys, bs, sb_str(&kl), from_start, up, lim);
	if (!sql_is_key_query(sb_str(&keys), bs->table, m))
		goto out;
	/*
	 * The keys: set is MATERIALIZED and read once, so set_config runs once;
	 * the setting is '' when no key was left. The key is made JSON from hi's
	 * one row, not in hi, which would make it of every key its OFFSET skips.
	 */
	sb_printf(&q,
		  "WITH " BATCH_HI " AS (%s), " BATCH_KEYS " AS (%s), " BATCH_SET
		  " AS MATERIALIZED (SELECT pg_catalog.set_config('" BATCH_SETTING
		  "', COALESCE((SELECT ",
		  sb_str(&hi), sb_str(&keys));
	key_json(&q, bs->qcols, bs->nk);
	sb_printf(&q,
		  " FROM " BATCH_HI "), ''), true) AS hi) SELECT NULLIF(hi, ''), CASE WHEN hi = '' "
		  "THEN (SELECT pg_catalog.count(*) FROM " BATCH_KEYS
		  ") ELSE $%d::bigint END FROM " BATCH_SET,
		  n);
	if (!keys_readback(sb_str(&q), bs->table, m))
		goto out;
	/*
	 * The author's UPDATE, bounded by (checkpoint, hi], or the upper key
	 * without hi. Its rows updated are its command tag's.
	 */
	sb_printf(&upd, "UPDATE %s SET %s%s WHERE ", bs->qtable, bs->set,
		  strstr(bs->set, "--") ? "\n" : "");
	if (bs->where)
		sb_printf(&upd, "(%s%s) AND ", bs->where, strstr(bs->where, "--") ? "\n" : "");
	if (!from_start) {
		sb_printf(&upd, "(%s) > ", sb_str(&kl));
		key_params(&upd, bs->types, bs->nk, 1);
		sb_puts(&upd, " AND ");
	}
	sb_printf(&upd, "(%s) <= (SELECT ", sb_str(&kl));
	for (size_t i = 0; i < bs->nk; i++)
		sb_printf(&upd, "%sCOALESCE((j ->> %zu)::%s, $%d::%s)", i ? ", " : "", i,
			  bs->types[i], up + (int)i, bs->types[i]);
	sb_puts(&upd, " FROM (SELECT NULLIF(pg_catalog.current_setting('" BATCH_SETTING
		      "'), '')::json) AS " BATCH_BOUND " (j))");
	if (!update_readback(sb_str(&upd), bs->table, bs->nk, m))
		goto out;
	*keys_sql = sb_detach(&q);
	*update_sql = sb_detach(&upd);
	rc = 0;
out:
	sb_free(&kl);
	sb_free(&hi);
	sb_free(&keys);
	sb_free(&upd);
	sb_free(&q);
	return rc;
}

/*
 * The checkpoint moves from the key this batch started at, and only from it:
 * were another runner on the same backfill (its runner lock lost), its batch
 * would have moved the checkpoint, and this one rolls back instead of
 * applying a range twice. Sent in the same round trip as COMMIT, so a
 * checkpoint that did not move raises (an invalid integer,
 * "BATCH_MOVED <rows>"; not a constant, so the planner does not fold it),
 * and COMMIT does not run.
 */
#define BATCH_MOVED "taskslaps: the checkpoint moved"
#define SQL_CHECKPOINT                                                                             \
	"WITH moved AS (UPDATE taskslaps.backfill_progress SET last_key = $2::jsonb, rows_done = " \
	"rows_done + $3::bigint, updated_at = now() WHERE step_sha = $1 AND target = $5 AND "      \
	"last_key IS NOT DISTINCT FROM $4::jsonb RETURNING 1) SELECT CASE WHEN (SELECT "           \
	"pg_catalog.count(*) FROM moved) = 1 THEN 1 ELSE ('" BATCH_MOVED " ' || (SELECT "          \
	"pg_catalog.count(*) FROM moved))::int END"

/*
 * The batch's timeouts, and its COMMIT not waiting for the WAL flush: a
 * batch and its checkpoint commit together, so a crash loses the last
 * batches whole and the resumed backfill redoes them (docs/design.md).
 */
#define SQL_BATCH_TIMEOUTS                                                                         \
	"SELECT pg_catalog.set_config('lock_timeout', $1, true), "                                 \
	"pg_catalog.set_config('statement_timeout', $2, true), "                                   \
	"pg_catalog.set_config('synchronous_commit', 'off', true)"

/*
 * One batch in one transaction, as exec_attempt_fn (arg: the struct
 * backfill), in two round trips:
 *   1. BEGIN, the timeouts (and synchronous_commit off), the batch's keys
 *      (they find the batch's last key, batch_size keys after the
 *      checkpoint or the upper key when fewer are left, and say how many
 *      keys they walked), its UPDATE of the rows up to that key (the rows
 *      updated are its command tag's), the proof's "after" (this backend's
 *      locks, the relfilenodes);
 *   2. when the locks are proved, the checkpoint moved to that key and
 *      COMMIT.
 * ATTEMPT_OK (b->done when this was the last batch, b->walked the keys it
 * walked); ATTEMPT_PROMISE_VIOLATED when the proof failed (res says why);
 * otherwise what exec_attempt_db makes of the error (a lock timeout is
 * busy, and retried). The transaction is rolled back on any failure.
 */
static enum exec_attempt
batch_attempt(struct step_run *r, struct db_error *err, void *arg)
{
	struct backfill *b = arg;
	const struct plan_step *s = r->s;
	const char **params = xcalloc(2 * b->nk + 5, sizeof(char *));
	cJSON *jlast = NULL, *jupper = NULL;
	char *hi = NULL, lim[24], rows[24], lock[24], stmt[24];
	const char *tparams[2] = { lock, stmt }, *cparams[5];
	char **sql = b->last ? b->sql_next : b->sql_first;
	size_t np = b->last ? b->nk : 0, n = 0, failed = 0;
	int64_t updated;
	const char *tag;
	struct db_stmt st[6];
	PGresult *res;
	enum exec_attempt a = ATTEMPT_UNSET;

	memset(st, 0, sizeof(st));
	if (!sql[0]) {
		struct exec_batch_shape bs = {
			.table = s->bf_table,
			.qtable = b->qtable,
			.qcols = (const char *const *)b->qcols,
			.types = (const char *const *)b->types,
			.nk = b->nk,
			.set = s->bf_set,
			.where = s->bf_where,
		};
		struct sql_msg m;
		if (exec_backfill_batch_sql(&bs, b->last == NULL, &sql[0], &sql[1], &m) < 0) {
			memset(err, 0, sizeof(*err));
			snprintf(err->message, sizeof(err->message), "backfill batch refused: %s",
				 m.text);
			goto dberr;
		}
	}
	snprintf(lock, sizeof(lock), "%lldms", (long long)s->ob.max_lock_ms);
	snprintf(stmt, sizeof(stmt), "%lldms", (long long)s->ob.max_stmt_ms);
	/*
	 * $1.. the checkpoint's key (but at the start), then the upper key, then
	 * batch_size (the keys' only: the UPDATE takes the keys before it)
	 */
	if ((b->last && unpack_key(b, b->last, params, &jlast) < 0) ||
	    unpack_key(b, b->upper, params + np, &jupper) < 0) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message), "corrupt backfill checkpoint");
		goto dberr;
	}
	snprintf(lim, sizeof(lim), "%lld", (long long)s->ob.batch_size);
	params[np + b->nk] = lim;

	/* 1: open, timeouts, the batch, and a batch is held to lock_class_max like any step */
	st[n++] = (struct db_stmt){ .sql = "BEGIN", .fixed = true };
	st[n++] = (struct db_stmt){
		.sql = SQL_BATCH_TIMEOUTS, .nparams = 2, .params = tparams, .fixed = true
	};
	st[n++] =
	    (struct db_stmt){ .sql = sql[0], .nparams = (int)(np + b->nk + 1), .params = params };
	st[n++] = (struct db_stmt){ .sql = sql[1], .nparams = (int)(np + b->nk), .params = params };
	n += exec_proof_after_stmts(&b->pf, true, st + n);
	if (db_batch(r->ex->db, st, n, err, NULL) < 0)
		goto dberr;
	res = st[2].res;
	tag = PQcmdTuples(st[3].res);
	if (PQntuples(res) != 1 || PQnfields(res) != 2 || !tag[0]) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message),
			 "the backfill batch answered %d rows of %d values and an UPDATE of "
			 "\"%s\" rows, expected 1 of 2 and a count",
			 PQntuples(res), PQnfields(res), tag);
		goto dberr;
	}
	b->walked = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	updated = strtoll(tag, NULL, 10);
	/*
	 * fewer keys than a batch: the range's end; no key at all: the
	 * checkpoint goes to it. The last key is the keys', not the rows
	 * updated: the checkpoint passes over the rows the WHERE skips.
	 */
	hi = xstrdup(PQgetisnull(res, 0, 0) ? b->upper : PQgetvalue(res, 0, 0));
	a = exec_proof_judge(r, &b->pf, st[4].res, st[5].res, err);
	if (a != ATTEMPT_OK)
		goto out;

	/* 2: the checkpoint, in the same transaction, and COMMIT */
	snprintf(rows, sizeof(rows), "%lld", (long long)b->walked);
	cparams[0] = s->sha;
	cparams[1] = hi;
	cparams[2] = rows;
	cparams[3] = b->last;
	cparams[4] = r->ex->target;
	for (size_t i = 0; i < n; i++)
		PQclear(st[i].res);
	memset(st, 0, sizeof(st));
	n = 0;
	st[n++] = (struct db_stmt){
		.sql = SQL_CHECKPOINT, .nparams = 5, .params = cparams, .fixed = true
	};
	st[n++] = (struct db_stmt){ .sql = "COMMIT", .fixed = true };
	if (db_batch(r->ex->db, st, n, err, &failed) < 0) {
		if (failed == 0 && strstr(err->message, BATCH_MOVED)) {
			memset(err, 0, sizeof(*err));
			snprintf(err->message, sizeof(err->message),
				 "the checkpoint moved under this batch (another runner on this "
				 "backfill?)");
		}
		goto dberr;
	}
	b->rows_updated += updated;
	b->done = b->walked < s->ob.batch_size;
	free(b->last);
	b->last = hi;
	hi = NULL;
	a = ATTEMPT_OK;
	goto out;
dberr:
	a = exec_attempt_db(r, err, "backfill batch failed, rolled back (checkpoint kept)");
out:
	if (a != ATTEMPT_OK)
		exec_db_rollback(r->ex);
	for (size_t i = 0; i < n; i++)
		PQclear(st[i].res);
	cJSON_Delete(jlast);
	cJSON_Delete(jupper);
	free(hi);
	free(params);
	return a;
}

static void
progress_event(struct backfill *b, double rate, int64_t run_start, int64_t rows_at_start)
{
	struct step_run *r = b->r;
	char metrics[320];
	double eta = -1;
	int64_t elapsed = exec_now_ms() - run_start;
	double actual =
	    elapsed > 0 ? (double)(b->rows_done - rows_at_start) * 1000.0 / (double)elapsed : 0;

	if (actual > 0 && b->rows_total > b->rows_done)
		eta = (double)(b->rows_total - b->rows_done) / actual;
	snprintf(
	    metrics, sizeof(metrics),
	    "{\"rows_done\": %lld, \"rows_total\": %lld, \"rows_updated\": %lld, \"rate\": %.1f, "
	    "\"target_rate\": %.1f, \"eta_s\": %.1f, \"governor_factor\": %.3f}",
	    (long long)b->rows_done, (long long)b->rows_total, (long long)b->rows_updated, actual,
	    rate, eta, r->ex->gov.factor);
	exec_event(r->ex, "step.progress", r->p->id, r->wave, r->s->sha, metrics,
		   "backfill: %lld of ~%lld rows, %.0f rows/s", (long long)b->rows_done,
		   (long long)b->rows_total, actual);
}

static int
estimate_rows(struct backfill *b, struct db_error *err)
{
	const char *params[1] = { b->r->s->bf_table };
	PGresult *res;

	if (db_exec(
		b->r->ex->db, &res, err,
		"SELECT greatest(c.reltuples, 0)::bigint FROM pg_catalog.pg_class c WHERE c.oid "
		"= taskslaps.lookup_relation($1)",
		1, params) < 0)
		return -1;
	b->rows_total = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	if (b->rows_total == 0) {
		/* never analysed: count, but never more than ten million rows */
		char *sql = xasprintf("SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 10000000) s",
				      b->qtable);
		int rc = db_exec(b->r->ex->db, &res, err, sql, 0, NULL);
		free(sql);
		if (rc < 0)
			return -1;
		b->rows_total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	if (b->rows_total < b->rows_done)
		b->rows_total = b->rows_done;
	return 0;
}

enum exec_attempt
exec_step_backfill(struct step_run *r)
{
	struct backfill b = { .r = r };
	struct db_error err;
	const char *failed = NULL, *failed_post = NULL;
	struct strbuf kl = STRBUF_INIT;
	int64_t t0 = exec_now_ms(), last_event = 0, run_start, rows_at_start;
	enum exec_attempt a = ATTEMPT_UNSET;

	exec_event(r->ex, "step.start", r->p->id, r->wave, r->s->sha, NULL,
		   "%s backfill_sql on %s: batches of %lld, %lld rows/s%s",
		   plan_hazard_name(r->s->hazard), r->s->bf_table, (long long)r->s->ob.batch_size,
		   (long long)r->s->ob.rows_per_second,
		   r->s->ob.rows_per_second ? "" : " (unthrottled)");
	/* before its keys are read as text: an `sql` step may have changed them */
	exec_pin_formats(r->ex);
	if (exec_checks(r, &r->s->ob.prechecks, &failed, &err) < 0)
		return exec_fail_db(r, &err, "prechecks");
	if (failed) {
		if (exec_checks(r, &r->s->ob.postchecks, &failed_post, &err) < 0)
			return exec_fail_db(r, &err, "postchecks");
		if (failed_post || r->s->ob.postchecks.n == 0)
			return exec_fail(r, NULL, "precheck failed: %s", failed);
		r->already_present = true;
		if (exec_ledger_insert(r, exec_now_ms() - t0, &err) < 0)
			return exec_fail_db(r, &err, "recording the step");
		exec_event(r->ex, "step.already_present", r->p->id, r->wave, r->s->sha, NULL,
			   "backfill_sql: prechecks fail but postchecks hold: adopted");
		return ATTEMPT_OK;
	}
	if (exec_primary_key(r->ex, r->s->bf_table, &b.cols, &b.types, &b.nk, &err) < 0)
		return exec_fail_db(r, &err, "reading the primary key");
	if (b.nk == 0) {
		backfill_free(&b);
		return exec_fail(
		    r, NULL,
		    "table %s has no primary key: a batched backfill walks the primary "
		    "key, so it needs one",
		    r->s->bf_table);
	}
	b.qcols = xcalloc(b.nk, sizeof(char *));
	for (size_t i = 0; i < b.nk; i++) {
		b.qcols[i] = quote_ident(r->ex->db->conn, b.cols[i]);
		sb_printf(&kl, "%s%s", i ? ", " : "", b.qcols[i]);
	}
	b.keylist = sb_detach(&kl);
	b.qtable = quote_table(r->ex->db->conn, r->s->bf_table);
	if (load_progress(&b, &err) < 0 || estimate_rows(&b, &err) < 0 ||
	    exec_proof_before(r, &b.pf, &err) < 0) {
		a = exec_fail_db(r, &err, "starting the backfill");
		goto out;
	}
	run_start = last_event = exec_now_ms();
	rows_at_start = b.rows_done;
	/* an empty table at the start: nothing to walk */
	b.done = b.upper == NULL || (b.last && strcmp(b.last, b.upper) == 0);
	while (!b.done) {
		double rate = (double)r->s->ob.rows_per_second;
		int64_t bt0 = exec_now_ms();
		int retries = 0;

		if (r->ex->abort_req) {
			a = exec_fail(r, NULL, "%s after %lld rows (checkpoint kept)",
				      r->ex->stop_req ? "interrupted by a stop of the runner"
						      : "aborted by an operator",
				      (long long)b.rows_done);
			r->res->outcome = exec_attempt_outcome(a, false, true);
			goto out;
		}
		if (exec_now_ms() - r->ex->gov.last_probe_ms >= 250 &&
		    governor_check(r->ex, r->p->id, r->s->bf_table) == GOV_CRITICAL &&
		    !governor_wait(r->ex, r->p->id, r->s->bf_table))
			continue; /* aborted: the top of the loop says so */
		rate *= r->ex->gov.factor;
		/* each batch has its own lock retries */
		a = exec_retry(r, batch_attempt, &b, &err, &retries);
		if (a == ATTEMPT_BUSY && r->ex->abort_req)
			continue; /* stopped while it waited: the top of the loop says so */
		if (a != ATTEMPT_OK) {
			a = exec_attempt_end(r, a, &err, retries,
					     "backfill batch failed, rolled back (checkpoint kept)",
					     "rolled back (checkpoint kept)");
			goto out;
		}
		b.rows_done += b.walked;
		if (b.done || exec_now_ms() - last_event >= 1000) {
			progress_event(&b, rate, run_start, rows_at_start);
			last_event = exec_now_ms();
		}
		if (!b.done && rate > 0) {
			int64_t want = (int64_t)((double)b.walked * 1000.0 / rate);
			int64_t spent = exec_now_ms() - bt0;
			if (want > spent)
				exec_sleep(r->ex, want - spent);
		} else if (!b.done && r->ex->gov.factor < 1.0) {
			/* unthrottled, but the governor says slow down: stretch each batch */
			int64_t spent = exec_now_ms() - bt0;
			exec_sleep(r->ex, (int64_t)((double)spent / r->ex->gov.factor) - spent);
		}
	}
	r->rows = b.rows_updated;
	/* postchecks and the ledger row together */
	if (db_cmd(r->ex->db, &err, "BEGIN") < 0 ||
	    exec_checks(r, &r->s->ob.postchecks, &failed_post, &err) < 0) {
		a = exec_fail_db(r, &err, "postchecks");
		goto rollback;
	}
	if (failed_post) {
		exec_fail(r, NULL, "postcheck failed after the backfill: %s", failed_post);
		a = ATTEMPT_PROMISE_VIOLATED;
		goto rollback;
	}
	if (exec_ledger_insert(r, exec_now_ms() - t0, &err) < 0 ||
	    db_cmd(r->ex->db, &err, "COMMIT") < 0) {
		a = exec_fail_db(r, &err, "recording the step");
		goto rollback;
	}
	{
		char metrics[200];
		snprintf(
		    metrics, sizeof(metrics),
		    "{\"execution_time_ms\": %lld, \"rows_affected\": %lld, \"rows_walked\": %lld}",
		    (long long)(exec_now_ms() - t0), (long long)b.rows_updated,
		    (long long)b.rows_done);
		exec_event(r->ex, "step.ok", r->p->id, r->wave, r->s->sha, metrics,
			   "backfill_sql: %lld rows updated in %lld ms", (long long)b.rows_updated,
			   (long long)(exec_now_ms() - t0));
	}
	a = ATTEMPT_OK;
	goto out;
rollback:
	exec_db_rollback(r->ex);
out:
	backfill_free(&b);
	return a;
}
