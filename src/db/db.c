#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_audit.h"
#include "util/alloc.h"
#include "util/strbuf.h"

static void prep_clear(struct db *db);
static void defer_free(struct db_deferred *d);

static void
err_from_conn(struct db_error *err, PGconn *conn, const char *what)
{
	const char *m = conn ? PQerrorMessage(conn) : "out of memory";
	size_t n;

	memset(err, 0, sizeof(*err));
	snprintf(err->message, sizeof(err->message), "%s%s", what, m);
	n = strlen(err->message);
	while (n && (err->message[n - 1] == '\n' || err->message[n - 1] == ' '))
		err->message[--n] = '\0';
	err->conn_lost = !conn || PQstatus(conn) != CONNECTION_OK;
}

static void
err_from_result(struct db_error *err, PGconn *conn, const PGresult *res)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *d = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;

	if (!m && res && PQresultErrorMessage(res)[0]) {
		/*
		 * No server message (the connection broke): the result's own text,
		 * not PQerrorMessage, which in pipeline mode also holds the errors of
		 * earlier statements of the same round trip.
		 */
		size_t n;

		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message), "%s", PQresultErrorMessage(res));
		n = strlen(err->message);
		while (n && (err->message[n - 1] == '\n' || err->message[n - 1] == ' '))
			err->message[--n] = '\0';
	} else if (!m) {
		err_from_conn(err, conn, "");
	} else {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message), "%s", m);
	}
	if (st)
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", st);
	if (d)
		snprintf(err->detail, sizeof(err->detail), "%s", d);
	err->conn_lost = PQstatus(conn) != CONNECTION_OK;
}

int
db_connect(struct db **out, const char *conninfo, const char *appname, struct db_error *err)
{
	const char *keys[] = { "dbname", "application_name", "connect_timeout", NULL };
	const char *vals[] = { conninfo, appname, "10", NULL };
	PGconn *conn;
	struct db *db;

	/* expand_dbname: conninfo's own keys win; ours fill what it leaves unset */
	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		err_from_conn(err, conn, "cannot connect to the database: ");
		/* libpq quotes a connection string it cannot read, password and all */
		db_conninfo_scrub(conninfo, err->message, sizeof(err->message));
		PQfinish(conn);
		return -1;
	}
	db = xcalloc(1, sizeof(*db));
	db->conn = conn;
	db->cancel = PQgetCancel(conn);
	db->defer_tail = &db->defer;
	*out = db;
	return 0;
}

void
db_close(struct db *db)
{
	if (!db)
		return;
	db_flush(db);
	defer_free(db->defer);
	defer_free(db->carried);
	prep_clear(db);
	free(db->prep);
	if (db->cancel)
		PQfreeCancel(db->cancel);
	PQfinish(db->conn);
	free(db);
}

bool
db_ok(const struct db *db)
{
	return db && !db->broken && PQstatus(db->conn) == CONNECTION_OK;
}

bool
db_in_transaction(const struct db *db)
{
	PGTransactionStatusType t = PQtransactionStatus(db->conn);

	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

void
db_cancel(struct db *db)
{
	char buf[256];

	if (db && db->cancel)
		(void)PQcancel(db->cancel, buf, sizeof(buf));
}

struct db_prepared {
	char *sql;
	char name[32];
};

struct db_deferred {
	struct db_deferred *next;
	const char *sql;     /* a constant of this program */
	bool fixed;	     /* prepared (all but db_prepared_reset's DEALLOCATE) */
	int nparams;	     /* a row's (db_defer_row), or the statement's */
	char **params;	     /* copies; the strings follow the array in one block */
	struct strbuf *cols; /* db_defer_row, more rows than by_rows has: an array a column */
	char **vals;	     /* db_defer_row: copies of the rows' values, row by row */
	size_t nrows;
	const char *const *by_rows; /* db_defer_row: by_rows[k - 1] inserts k rows */
	size_t nby_rows;
	int nsend; /* the parameters sent (db_defer_row: nparams, or nrows * nparams) */
};

#define DB_DEFER_MAX 64
#define DB_DEFER_ROWS_MAX 256
#define DB_DEFER_ROWS_FIRST 4 /* a power of two */
#define SQLSTATE_NO_SUCH_PREPARED "26000"

static const char *
prep_find(const struct db *db, const char *sql)
{
	for (size_t i = 0; i < db->nprep; i++)
		if (db->prep[i].sql == sql || strcmp(db->prep[i].sql, sql) == 0)
			return db->prep[i].name;
	return NULL;
}

static size_t
prep_add(struct db *db, const char *sql)
{
	struct db_prepared *p;

	if (db->nprep == db->capprep) {
		db->capprep = db->capprep ? db->capprep * 2 : 16;
		db->prep = xrealloc(db->prep, db->capprep * sizeof(*db->prep));
	}
	p = &db->prep[db->nprep];
	p->sql = xstrdup(sql);
	snprintf(p->name, sizeof(p->name), "taskslaps_%u", ++db->prep_seq);
	return db->nprep++;
}

static void
prep_forget(struct db *db, const char *name)
{
	for (size_t i = 0; i < db->nprep; i++) {
		if (strcmp(db->prep[i].name, name) != 0)
			continue;
		free(db->prep[i].sql);
		db->prep[i] = db->prep[--db->nprep];
		return;
	}
}

/* After "prepared statement does not exist" (someone ran DEALLOCATE ALL): prepare anew. */
static void
prep_clear(struct db *db)
{
	for (size_t i = 0; i < db->nprep; i++)
		free(db->prep[i].sql);
	db->nprep = 0;
}

void
db_prepared_reset(struct db *db)
{
	/* whatever is left of them goes too: a long-lived session must not pile them up */
	struct db_deferred *d = xcalloc(1, sizeof(*d));

	prep_clear(db);
	/* first in the queue: the statements queued before it are prepared after it */
	d->sql = "DEALLOCATE ALL";
	d->next = db->defer;
	db->defer = d;
	if (db->defer_tail == &db->defer)
		db->defer_tail = &d->next;
	db->ndefer++;
}

static void
check_deallocated(struct db *db, const PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (st && strcmp(st, SQLSTATE_NO_SUCH_PREPARED) == 0)
		prep_clear(db);
}

/* What one result of a pipeline belongs to. */
struct slot {
	enum { SLOT_DEFERRED, SLOT_PREPARE, SLOT_STMT, SLOT_SYNC } kind;
	size_t stmt;   /* SLOT_STMT, SLOT_PREPARE: index in st */
	bool deferred; /* SLOT_PREPARE: of a deferred statement */
	char name[32]; /* SLOT_PREPARE: the name to forget if it fails */
	PGresult *res;
};

struct pipe {
	struct slot *slots;
	size_t n, cap;
};

static struct slot *
pipe_slot(struct pipe *pp, int kind, size_t stmt)
{
	struct slot *s;

	if (pp->n == pp->cap) {
		pp->cap = pp->cap ? pp->cap * 2 : 16;
		pp->slots = xrealloc(pp->slots, pp->cap * sizeof(*pp->slots));
	}
	s = &pp->slots[pp->n++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->stmt = stmt;
	return s;
}

/* Queues one statement (and its Parse when it is fixed and new); false when libpq refuses. */
static bool
pipe_send(struct db *db, struct pipe *pp, size_t stmt, int kind, const char *sql, int nparams,
	  const char *const *params, bool fixed)
{
	const char *name = fixed ? prep_find(db, sql) : NULL;

	db_audit('E', sql);
	if (fixed && !name) {
		size_t i = prep_add(db, sql);
		struct slot *s;

		name = db->prep[i].name;
		if (!PQsendPrepare(db->conn, name, sql, nparams, NULL)) {
			prep_forget(db, name);
			return false;
		}
		s = pipe_slot(pp, SLOT_PREPARE, stmt);
		s->deferred = kind == SLOT_DEFERRED;
		snprintf(s->name, sizeof(s->name), "%s", name);
		name = s->name;
	}
	if (name ? !PQsendQueryPrepared(db->conn, name, nparams, params, NULL, NULL, 0)
		 : !PQsendQueryParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0))
		return false;
	pipe_slot(pp, kind, stmt);
	return true;
}

static bool
pipe_sync(struct db *db, struct pipe *pp)
{
	if (!PQpipelineSync(db->conn))
		return false;
	pipe_slot(pp, SLOT_SYNC, 0);
	return true;
}

/*
 * Reads every result the pipeline owes, in order: a result (PIPELINE_ABORTED
 * for a statement skipped after an error) usually followed by a NULL per
 * statement, and a PIPELINE_SYNC per Sync. Statements here return one result
 * each (no COPY, one statement per query). Returns false when the connection
 * broke first.
 */
static bool
pipe_read(struct db *db, struct pipe *pp)
{
	size_t cur = 0;
	bool have = false;
	int nulls = 0;

	while (cur < pp->n) {
		PGresult *r = PQgetResult(db->conn);

		if (!r) {
			if (have) {
				have = false;
				cur++;
				continue;
			}
			if (++nulls >= 2 || PQstatus(db->conn) != CONNECTION_OK)
				return false;
			continue;
		}
		nulls = 0;
		if (have) { /* the statement before ended without its NULL */
			have = false;
			cur++;
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			while (cur < pp->n && pp->slots[cur].kind != SLOT_SYNC)
				cur++; /* left without a result: reported as not run */
			cur++;
			continue;
		}
		if (cur >= pp->n || pp->slots[cur].kind == SLOT_SYNC) {
			PQclear(r); /* nothing expects it */
			continue;
		}
		pp->slots[cur].res = r;
		have = true;
	}
	return true;
}

/* One element of an array literal: NULL, or double-quoted with \\ and \" escaped. */
static void
array_elem(struct strbuf *sb, const char *v, bool first)
{
	if (!first)
		sb_putc(sb, ',');
	if (!v) {
		sb_puts(sb, "NULL");
		return;
	}
	sb_putc(sb, '"');
	for (const char *c = v; *c; c++) {
		if (*c == '"' || *c == '\\')
			sb_putc(sb, '\\');
		sb_putc(sb, *c);
	}
	sb_putc(sb, '"');
}

/*
 * The rows of a db_defer_row entry, as the statement to send: up to
 * nby_rows rows, the VALUES form for that many, their values in order (no
 * array to build, none for the server to read and unnest); more, the
 * unnesting statement with one array a column.
 */
static void
defer_rows_close(struct db_deferred *d)
{
	if (d->nrows <= d->nby_rows) {
		d->sql = d->by_rows[d->nrows - 1];
		d->nsend = (int)d->nrows * d->nparams;
		d->params = xcalloc((size_t)d->nsend, sizeof(char *));
		memcpy(d->params, d->vals, (size_t)d->nsend * sizeof(char *));
		return;
	}
	d->cols = xcalloc((size_t)d->nparams, sizeof(*d->cols));
	d->params = xcalloc((size_t)d->nparams, sizeof(char *));
	for (int i = 0; i < d->nparams; i++) {
		sb_putc(&d->cols[i], '{');
		for (size_t r = 0; r < d->nrows; r++)
			array_elem(&d->cols[i], d->vals[r * (size_t)d->nparams + (size_t)i],
				   r == 0);
		sb_putc(&d->cols[i], '}');
		d->params[i] = (char *)sb_str(&d->cols[i]);
	}
	d->nsend = d->nparams;
}

static void
defer_free(struct db_deferred *d)
{
	while (d) {
		struct db_deferred *next = d->next;
		for (int i = 0; d->cols && i < d->nparams; i++)
			sb_free(&d->cols[i]);
		free(d->cols);
		for (size_t i = 0; d->vals && i < d->nrows * (size_t)d->nparams; i++)
			free(d->vals[i]);
		free(d->vals);
		free(d->params);
		free(d);
		d = next;
	}
}

static bool
res_ok(const PGresult *r)
{
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* How a batch sends the deferred statements queued before it. */
enum batch_mode {
	BATCH_AHEAD,	  /* ahead of it, each with a Sync of its own; none while held */
	BATCH_FLUSH,	  /* the same, held or not (db_flush) */
	BATCH_CARRY,	  /* inside the open transaction, prepared (db_batch_carry) */
	BATCH_CARRY_TEXT, /* the same, not prepared */
};

/* Sent deferred statements: freed, or kept for db_carry_end when they were carried. */
static void
defer_done(struct db *db, struct db_deferred *d, enum batch_mode mode)
{
	struct db_deferred **tail = &db->carried;

	if (mode != BATCH_CARRY && mode != BATCH_CARRY_TEXT) {
		defer_free(d);
		return;
	}
	while (*tail)
		tail = &(*tail)->next;
	*tail = d;
}

static int
batch_run(struct db *db, struct db_stmt *st, size_t n, struct db_error *err, size_t *failed,
	  enum batch_mode mode)
{
	struct pipe pp = { 0 };
	bool carry = mode == BATCH_CARRY || mode == BATCH_CARRY_TEXT;
	struct db_deferred *d = db->defer;
	bool sent = true, read;
	size_t bad = n;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		st[i].res = NULL;
	if (db->broken) { /* out of step since an unfinished pipeline: never used again */
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message),
			 "the connection is out of step after an earlier failure");
		err->conn_lost = true;
		if (failed)
			*failed = 0;
		return -1;
	}
	if (db->hold && mode == BATCH_AHEAD) {
		/*
		 * Held: only a DEALLOCATE ALL of db_prepared_reset (always first in
		 * the queue, the only statement there that is not prepared) goes,
		 * before anything is prepared again.
		 */
		struct db_deferred **cut = &db->defer;

		while (*cut && !(*cut)->fixed) {
			cut = &(*cut)->next;
			db->ndefer--;
		}
		d = NULL;
		if (cut != &db->defer) {
			d = db->defer;
			db->defer = *cut;
			*cut = NULL;
			if (!db->defer)
				db->defer_tail = &db->defer;
		}
	} else if (d) {
		db->defer = NULL;
		db->defer_tail = &db->defer;
		db->ndefer = 0;
	}
	if (!PQenterPipelineMode(db->conn)) {
		defer_done(db, d, mode);
		err_from_conn(err, db->conn, "");
		if (failed)
			*failed = 0;
		return -1;
	}
	for (struct db_deferred *x = d; x && sent; x = x->next) {
		if (x->vals && !x->params) /* the rows are complete now */
			defer_rows_close(x);
		/* carried: in the caller's transaction, so no Sync of its own */
		sent = pipe_send(db, &pp, 0, SLOT_DEFERRED, x->sql, x->nsend,
				 (const char *const *)x->params,
				 x->fixed && mode != BATCH_CARRY_TEXT) &&
		       (carry || pipe_sync(db, &pp));
	}
	for (size_t i = 0; i < n && sent; i++) {
		sent = pipe_send(db, &pp, i, SLOT_STMT, st[i].sql, st[i].nparams, st[i].params,
				 st[i].fixed);
		if (!sent) {
			bad = i;
			err_from_conn(err, db->conn, "");
		}
	}
	if (!sent && bad == n) { /* refused while queueing the deferred statements */
		bad = 0;
		err_from_conn(err, db->conn, "");
	}
	/* what was queued is synced and read even after a refusal */
	if (sent || pp.n == 0 || pp.slots[pp.n - 1].kind != SLOT_SYNC)
		(void)pipe_sync(db, &pp);
	read = pipe_read(db, &pp);
	defer_done(db, d, mode);
	if (!sent)
		rc = -1;
	for (size_t k = 0; k < pp.n; k++) {
		struct slot *s = &pp.slots[k];

		if (s->kind == SLOT_SYNC)
			continue;
		if (!res_ok(s->res))
			check_deallocated(db, s->res);
		if (s->kind == SLOT_PREPARE && !res_ok(s->res))
			prep_forget(db, s->name);
		if (s->kind == SLOT_STMT && res_ok(s->res) && rc == 0) {
			st[s->stmt].res = s->res;
			s->res = NULL;
			continue;
		}
		/* a carried statement's failure is the transaction's, so the batch's */
		if ((s->kind == SLOT_STMT || (s->kind == SLOT_PREPARE && (!s->deferred || carry)) ||
		     (s->kind == SLOT_DEFERRED && carry)) &&
		    rc == 0 && !res_ok(s->res) &&
		    !(s->res && PQresultStatus(s->res) == PGRES_PIPELINE_ABORTED)) {
			/* the first failure of the batch: its own error, or a lost connection */
			bad = s->stmt;
			rc = -1;
			if (s->res)
				err_from_result(err, db->conn, s->res);
			else
				err_from_conn(err, db->conn, "");
		}
		PQclear(s->res);
	}
	free(pp.slots);
	if (rc == 0 && !read) {
		err_from_conn(err, db->conn, "");
		bad = 0;
		rc = -1;
	}
	if (rc == 0) {
		for (size_t i = 0; i < n; i++)
			if (!st[i].res) { /* cannot happen when every slot was read */
				err_from_conn(err, db->conn, "no result: ");
				bad = i;
				rc = -1;
				break;
			}
	}
	/*
	 * A pipeline not read to its end (the connection broke) or that cannot be
	 * left leaves the connection out of step with the server: it is not used
	 * again, and the caller reconnects as after any lost connection.
	 */
	if (!read || !PQexitPipelineMode(db->conn)) {
		db->broken = true;
		if (rc == 0) {
			err_from_conn(err, db->conn, "connection out of step: ");
			bad = 0;
			rc = -1;
		}
		err->conn_lost = true;
	}
	if (rc < 0) {
		for (size_t i = bad; i < n; i++) {
			PQclear(st[i].res);
			st[i].res = NULL;
		}
		if (failed)
			*failed = bad;
	}
	return rc;
}

int
db_batch(struct db *db, struct db_stmt *st, size_t n, struct db_error *err, size_t *failed)
{
	return batch_run(db, st, n, err, failed, BATCH_AHEAD);
}

int
db_batch_carry(struct db *db, struct db_stmt *st, size_t n, bool prepared, struct db_error *err,
	       size_t *failed)
{
	return batch_run(db, st, n, err, failed, prepared ? BATCH_CARRY : BATCH_CARRY_TEXT);
}

void
db_defer_hold(struct db *db, bool hold)
{
	db->hold = hold;
}

void
db_carry_end(struct db *db, bool committed)
{
	struct db_deferred *c = db->carried, **tail = &c;

	db->carried = NULL;
	if (!c)
		return;
	if (committed) {
		defer_free(c);
		return;
	}
	/* rolled back: first in the queue again, sent ahead of the next statement */
	for (; *tail; tail = &(*tail)->next)
		db->ndefer++;
	*tail = db->defer;
	if (db->defer_tail == &db->defer)
		db->defer_tail = tail;
	db->defer = c;
}

void
db_defer(struct db *db, const char *sql, int nparams, const char *const *params)
{
	struct db_deferred *d;
	size_t len = 0;
	char *p;

	for (int i = 0; i < nparams; i++)
		len += params[i] ? strlen(params[i]) + 1 : 0;
	d = xcalloc(1, sizeof(*d));
	d->sql = sql;
	d->fixed = true;
	d->nparams = nparams;
	d->nsend = nparams;
	d->params = xmalloc(nparams * sizeof(char *) + len + 1);
	p = (char *)(d->params + nparams);
	for (int i = 0; i < nparams; i++) {
		if (!params[i]) {
			d->params[i] = NULL;
			continue;
		}
		d->params[i] = p;
		len = strlen(params[i]) + 1;
		memcpy(p, params[i], len);
		p += len;
	}
	if (!db->defer_tail)
		db->defer_tail = &db->defer;
	*db->defer_tail = d;
	db->defer_tail = &d->next;
	if (++db->ndefer >= DB_DEFER_MAX && !db->hold)
		db_flush(db);
}

void
db_defer_row(struct db *db, const char *sql, const char *const *by_rows, size_t nby_rows,
	     int nparams, const char *const *params)
{
	struct db_deferred *d = NULL;
	size_t at;

	/* the last queued entry, when it gathers rows for the same statement */
	for (struct db_deferred *x = db->defer; x; x = x->next)
		d = x;
	/* not one that was sent already (carried, then put back): its rows are closed */
	if (!d || !d->vals || d->params || d->sql != sql || d->nrows >= DB_DEFER_ROWS_MAX) {
		d = xcalloc(1, sizeof(*d));
		d->sql = sql;
		d->by_rows = by_rows;
		d->nby_rows = nby_rows;
		d->fixed = true;
		d->nparams = nparams;
		d->vals = xcalloc(DB_DEFER_ROWS_FIRST * (size_t)nparams, sizeof(*d->vals));
		*db->defer_tail = d;
		db->defer_tail = &d->next;
		db->ndefer++;
	}
	at = d->nrows * (size_t)nparams;
	/* room for rows 1..4, then doubled at each power of two */
	if (d->nrows >= DB_DEFER_ROWS_FIRST && (d->nrows & (d->nrows - 1)) == 0)
		d->vals = xrealloc(d->vals, 2 * at * sizeof(*d->vals));
	for (int i = 0; i < nparams; i++)
		d->vals[at + (size_t)i] = params[i] ? xstrdup(params[i]) : NULL;
	d->nrows++;
	if (db->ndefer >= DB_DEFER_MAX && !db->hold)
		db_flush(db);
}

void
db_flush(struct db *db)
{
	struct db_error ignore;

	if (db && db->defer && db_ok(db))
		(void)batch_run(db, NULL, 0, &ignore, NULL, BATCH_FLUSH);
}

static int
exec_one(struct db *db, PGresult **res, struct db_error *err, const char *sql, int nparams,
	 const char *const *params, bool fixed)
{
	const char *name = fixed ? prep_find(db, sql) : NULL;
	struct db_stmt st;
	PGresult *r;

	if (db->defer || (fixed && !name) || db->broken) {
		st = (struct db_stmt){
			.sql = sql, .nparams = nparams, .params = params, .fixed = fixed
		};
		if (db_batch(db, &st, 1, err, NULL) < 0)
			return -1;
		r = st.res;
	} else {
		db_audit('E', sql);
		r = name ? PQexecPrepared(db->conn, name, nparams, params, NULL, NULL, 0)
			 : PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
		if (!res_ok(r)) {
			check_deallocated(db, r);
			err_from_result(err, db->conn, r);
			PQclear(r);
			return -1;
		}
	}
	if (res)
		*res = r;
	else
		PQclear(r);
	return 0;
}

int
db_exec(struct db *db, PGresult **res, struct db_error *err, const char *sql, int nparams,
	const char *const *params)
{
	return exec_one(db, res, err, sql, nparams, params, false);
}

int
db_execf(struct db *db, PGresult **res, struct db_error *err, const char *sql, int nparams,
	 const char *const *params)
{
	return exec_one(db, res, err, sql, nparams, params, true);
}

int
db_cmd(struct db *db, struct db_error *err, const char *sql)
{
	return db_exec(db, NULL, err, sql, 0, NULL);
}

int
db_bool(struct db *db, struct db_error *err, bool *out, const char *sql, int nparams,
	const char *const *params)
{
	PGresult *r;

	if (db_exec(db, &r, err, sql, nparams, params) < 0)
		return -1;
	*out = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return 0;
}

int
db_script(struct db *db, struct db_error *err, const char *sql)
{
	PGresult *r;
	ExecStatusType st;

	db_flush(db);
	db_audit('S', sql);
	r = PQexec(db->conn, sql);
	st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
		err_from_result(err, db->conn, r);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}
