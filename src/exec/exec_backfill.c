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
	char *sql_first;      /* the batch statement from the start of the range, */
	char *sql_next;	      /* and after a checkpoint (exec_backfill_batch_sql) */
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
	free(b->sql_first);
	free(b->sql_next);
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
 * The names the batch statement gives its WITH queries. An author's SQL that
 * names one of them as a table would read the batch's own rows instead: the
 * read-back refuses it.
 */
#define BATCH_HI "taskslaps_batch_hi"
#define BATCH_KEYS "taskslaps_batch_keys"
#define BATCH_UPD "taskslaps_batch_update"
#define BATCH_PREFIX "taskslaps_batch_"
/* how often the statement reads them: hi twice and once a key column, keys and update once */
#define BATCH_OWN_REFS(nk) (4 + (int)(nk))

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
is_batch_cte(const Node *n, NodeTag query, const char *name)
{
	const CommonTableExpr *c;

	if (!n || !IsA(n, CommonTableExpr))
		return false;
	c = (const CommonTableExpr *)n;
	return c->ctename && strcmp(c->ctename, name) == 0 && c->ctequery &&
	       nodeTag(c->ctequery) == query && !c->aliascolnames && !c->search_clause &&
	       !c->cycle_clause;
}

/* one plain SELECT from table alone */
static bool
key_select(const Node *cte, const char *table)
{
	const SelectStmt *sel = (const SelectStmt *)((const CommonTableExpr *)cte)->ctequery;

	return !sel->withClause && !sel->lockingClause && !sel->intoClause &&
	       sel->op == SETOP_NONE && list_length(sel->fromClause) == 1 &&
	       IsA(linitial(sel->fromClause), RangeVar) &&
	       sql_rangevar_is(linitial_node(RangeVar, sel->fromClause), table);
}

static bool
count_own_refs(const RangeVar *rv, void *ctx)
{
	if (sql_str_empty(rv->schemaname) && rv->relname &&
	    strncmp(rv->relname, BATCH_PREFIX, sizeof(BATCH_PREFIX) - 1) == 0)
		(*(int *)ctx)++;
	return true;
}

/*
 * Parse what we generate: WITH hi and keys (each one SELECT from the table
 * alone) and update (one UPDATE of the table with a WHERE, no FROM, no
 * alias, RETURNING), then a SELECT of three values from no table; and the
 * WITH queries' names read only where the statement reads them.
 */
static bool
batch_readback(const char *sql, const char *table, size_t nk, struct sql_msg *m)
{
	struct sql_tree t;
	const Node *n;
	const SelectStmt *top;
	const UpdateStmt *u;
	const WithClause *w;
	int refs = 0;
	bool ok;

	if (sql_parse(&t, sql, m) < 0)
		return false;
	n = sql_tree_one(&t, sql, m);
	if (!n) {
		sql_tree_free(&t);
		return false;
	}
	top = IsA(n, SelectStmt) ? (const SelectStmt *)n : NULL;
	w = top ? top->withClause : NULL;
	ok = w && !w->recursive && list_length(w->ctes) == 3 && list_length(top->targetList) == 3 &&
	     !top->fromClause && !top->lockingClause && !top->intoClause && top->op == SETOP_NONE &&
	     is_batch_cte(linitial(w->ctes), T_SelectStmt, BATCH_HI) &&
	     is_batch_cte(lsecond(w->ctes), T_SelectStmt, BATCH_KEYS) &&
	     is_batch_cte(lthird(w->ctes), T_UpdateStmt, BATCH_UPD) &&
	     key_select(linitial(w->ctes), table) && key_select(lsecond(w->ctes), table);
	if (ok) {
		u = (const UpdateStmt *)lthird_node(CommonTableExpr, w->ctes)->ctequery;
		ok = sql_rangevar_is(u->relation, table) && !u->relation->alias && u->whereClause &&
		     !u->fromClause && !u->withClause && list_length(u->returningList) == 1;
	}
	if (!ok)
		msg_set(m,
			"the batch statement does not read back as the keys of %s, the UPDATE "
			"of their rows and its counts",
			table);
	if (ok) {
		sql_walk_rangevars(n, count_own_refs, &refs);
		if (refs != BATCH_OWN_REFS(nk)) {
			msg_set(m, "the backfill's SQL reads a table named " BATCH_PREFIX
				   "...: the batch statement uses that name for its own parts");
			ok = false;
		}
	}
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

char *
exec_backfill_batch_sql(const struct exec_batch_shape *bs, bool from_start, struct sql_msg *m)
{
	struct strbuf kl = STRBUF_INIT, hi = STRBUF_INIT, keys = STRBUF_INIT, upd = STRBUF_INIT,
		      q = STRBUF_INIT;
	int up = from_start ? 1 : (int)bs->nk + 1; /* the upper key's first parameter */
	int n = up + (int)bs->nk;		   /* batch_size */
	char lim[48];
	char *out = NULL;

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
	/* the author's UPDATE, bounded by (checkpoint, hi], or the upper key without hi */
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
		sb_printf(&upd, "%sCOALESCE((SELECT %s FROM " BATCH_HI "), $%d::%s)", i ? ", " : "",
			  bs->qcols[i], up + (int)i, bs->types[i]);
	sb_putc(&upd, ')');
	if (!sql_is_batch_update(sb_str(&upd), bs->table, m))
		goto out;
	/*
	 * One statement: the last key comes from the keys, not from the rows
	 * the UPDATE changed, so the checkpoint passes over the rows its WHERE
	 * skips.
	 */
	sb_printf(&q,
		  "WITH " BATCH_HI " AS (%s), " BATCH_KEYS " AS (%s), " BATCH_UPD
		  " AS (%s RETURNING 1) SELECT (SELECT ",
		  sb_str(&hi), sb_str(&keys), sb_str(&upd));
	key_json(&q, bs->qcols, bs->nk);
	sb_printf(&q,
		  " FROM " BATCH_HI "), CASE WHEN EXISTS (SELECT 1 FROM " BATCH_HI
		  ") THEN $%d::bigint ELSE (SELECT pg_catalog.count(*) FROM " BATCH_KEYS
		  ") END, (SELECT pg_catalog.count(*) FROM " BATCH_UPD ")",
		  n);
	if (batch_readback(sb_str(&q), bs->table, bs->nk, m))
		out = sb_detach(&q);
out:
	sb_free(&kl);
	sb_free(&hi);
	sb_free(&keys);
	sb_free(&upd);
	sb_free(&q);
	return out;
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

#define SQL_BATCH_TIMEOUTS                                                                         \
	"SELECT pg_catalog.set_config('lock_timeout', $1, true), "                                 \
	"pg_catalog.set_config('statement_timeout', $2, true)"

/*
 * One batch in one transaction, as exec_attempt_fn (arg: the struct
 * backfill), in two round trips:
 *   1. BEGIN, the timeouts, the batch statement (it finds the batch's last
 *      key, batch_size keys after the checkpoint or the upper key when fewer
 *      are left, updates the rows up to it and says how many keys it
 *      walked), the proof's "after" (this backend's locks, the relfilenodes);
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
	char **sql = b->last ? &b->sql_next : &b->sql_first;
	size_t np = b->last ? b->nk : 0, n = 0, failed = 0;
	int64_t updated;
	struct db_stmt st[5];
	PGresult *res;
	enum exec_attempt a = ATTEMPT_UNSET;

	memset(st, 0, sizeof(st));
	if (!*sql) {
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
		if (!(*sql = exec_backfill_batch_sql(&bs, b->last == NULL, &m))) {
			memset(err, 0, sizeof(*err));
			snprintf(err->message, sizeof(err->message), "backfill batch refused: %s",
				 m.text);
			goto dberr;
		}
	}
	snprintf(lock, sizeof(lock), "%lldms", (long long)s->ob.max_lock_ms);
	snprintf(stmt, sizeof(stmt), "%lldms", (long long)s->ob.max_stmt_ms);
	/* $1.. the checkpoint's key (but at the start), then the upper key, then batch_size */
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
	    (struct db_stmt){ .sql = *sql, .nparams = (int)(np + b->nk + 1), .params = params };
	n += exec_proof_after_stmts(&b->pf, true, st + n);
	if (db_batch(r->ex->db, st, n, err, NULL) < 0)
		goto dberr;
	res = st[2].res;
	if (PQntuples(res) != 1 || PQnfields(res) != 3) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message),
			 "the backfill batch answered %d rows of %d values, expected 1 of 3",
			 PQntuples(res), PQnfields(res));
		goto dberr;
	}
	b->walked = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	updated = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	/* fewer keys than a batch: the range's end; no key at all: the checkpoint goes to it */
	hi = xstrdup(PQgetisnull(res, 0, 0) ? b->upper : PQgetvalue(res, 0, 0));
	a = exec_proof_judge(r, &b->pf, st[3].res, st[4].res, err);
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
