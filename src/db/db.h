/*
 * A thin libpq wrapper: every statement goes through the extended query
 * protocol (PQexecParams, or pipeline mode's PQsendQueryParams and
 * PQsendQueryPrepared), which refuses more than one statement, so a step's
 * SQL can never smuggle a second one. Errors keep their SQLSTATE. Batches
 * (db_batch) and statements nobody waits for (db_defer) share round trips.
 */
#ifndef TS_DB_H
#define TS_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

struct db_error {
	char sqlstate[6]; /* "" when the server sent none (connection trouble) */
	char message[1024];
	char detail[512];
	bool conn_lost; /* the connection is gone; reconnect */
};

struct db_prepared;
struct db_deferred;

struct db {
	PGconn *conn;
	PGcancel *cancel;	  /* for db_cancel, from another thread or a signal handler */
	struct db_prepared *prep; /* this connection's prepared statements */
	size_t nprep, capprep;
	unsigned prep_seq;
	struct db_deferred *defer; /* statements waiting for the next round trip */
	struct db_deferred **defer_tail;
	size_t ndefer;
	bool hold;		     /* db_defer_hold */
	struct db_deferred *carried; /* db_batch_carry: sent in the open transaction */
	bool broken;		     /* a pipeline was left unfinished: reconnect */
};

/*
 * One statement of a batch (db_batch). sql is prepared once per connection
 * when fixed is set: only for this program's own statements, constant or a
 * template of the planner's whose every varying part is a parameter (the
 * computed checks with their names lifted out, sql_lift_helper_args: one
 * text per op), never for text that holds anything of a plan (the cache
 * would grow without bound).
 */
struct db_stmt {
	const char *sql;
	int nparams;
	const char *const *params;
	bool fixed;
	PGresult *res; /* out: its result (caller PQclears), NULL when not run */
};

/*
 * Connects with conninfo (never logged: it may hold a password). Sets
 * application_name. Returns 0, or -1 with err filled; the message is
 * scrubbed of the password (db_conninfo_scrub).
 */
int db_connect(struct db **out, const char *conninfo, const char *appname, struct db_error *err);
void db_close(struct db *db);
/* Whether the connection is usable (connected, and no pipeline left out of step). */
bool db_ok(const struct db *db);
/* Whether the session is inside a transaction block (open or failed). */
bool db_in_transaction(const struct db *db);
/* Cancels the statement running on db; safe from a signal handler. */
void db_cancel(struct db *db);

/*
 * Runs sql with text parameters (NULL for SQL NULL). On success returns 0 and
 * *res (caller PQclears; res may be NULL to discard). On error returns -1.
 */
int db_exec(struct db *db, PGresult **res, struct db_error *err, const char *sql, int nparams,
	    const char *const *params);
/* db_exec for a constant statement of this program: prepared once per connection. */
int db_execf(struct db *db, PGresult **res, struct db_error *err, const char *sql, int nparams,
	     const char *const *params);

/*
 * Runs n statements in one round trip (libpq pipeline mode, one Sync at the
 * end: outside an explicit transaction they share one implicit transaction).
 * Statements after the first error are not run. Returns 0 with every st[i].res
 * set, or -1 with err filled, *failed (may be NULL) the index of the failing
 * statement, and the results of the statements before it set (the caller
 * PQclears st[i].res in both cases; the rest are NULL).
 */
int db_batch(struct db *db, struct db_stmt *st, size_t n, struct db_error *err, size_t *failed);

/*
 * Queues a constant statement whose result nobody waits for (an event
 * record): it is sent ahead of the next statement, in the same round trip,
 * with a Sync of its own, so it commits on its own and its failure touches
 * nothing else. Its errors are ignored, as are those of the statement it
 * stands for. Params are copied. The order of statements on the connection
 * is the order of the calls, so a deferred statement never lands inside a
 * transaction that was opened after it.
 */
void db_defer(struct db *db, const char *sql, int nparams, const char *const *params);
/*
 * db_defer for rows of one INSERT: consecutive rows for the same sql (the same
 * pointer) are gathered and sent as one statement, so they cost one
 * statement and one commit. Up to nby_rows rows, by_rows[k - 1] is the
 * statement for k rows, the rows' nparams values each in order ($1 .. $k *
 * nparams: an INSERT ... VALUES of k rows); more, sql, whose every parameter
 * is the array of that column's values (sql takes $1::T[], ... and unnests
 * them in order). NULL values stay NULL.
 */
void db_defer_row(struct db *db, const char *sql, const char *const *by_rows, size_t nby_rows,
		  int nparams, const char *const *params);
/* Sends the queued statements now and waits for them (before waiting, sleeping or exiting). */
void db_flush(struct db *db);

/*
 * Statements that commit with a transaction (a step's events and its plan's
 * status, with the step's ledger row): while held (db_defer_hold), the
 * queued statements are not sent ahead of the next statement (db_flush still
 * sends them, and the queue grows past its usual bound instead of being sent).
 * db_batch_carry sends them inside the open transaction, with no Sync of
 * their own, ahead of st (prepared unless !prepared: after an author's SQL,
 * which may have run DEALLOCATE ALL), and keeps them: a failure of one of
 * them is the batch's (*failed 0). db_carry_end says whether that
 * transaction committed: if so they are forgotten; if not (rolled back,
 * failed, never committed) they go back to the head of the queue, to be sent
 * on their own after the rollback, as if they had never been carried.
 */
void db_defer_hold(struct db *db, bool hold);
int db_batch_carry(struct db *db, struct db_stmt *st, size_t n, bool prepared, struct db_error *err,
		   size_t *failed);
void db_carry_end(struct db *db, bool committed);

/*
 * Forgets this connection's prepared statements, after SQL that may have
 * deallocated them (DEALLOCATE ALL in a step): they are prepared again, under
 * new names, when next used.
 */
void db_prepared_reset(struct db *db);

/* Runs a fixed statement with no parameters and no result. */
int db_cmd(struct db *db, struct db_error *err, const char *sql);
/* Runs a query that returns one boolean; *out gets it (NULL is false). */
int db_bool(struct db *db, struct db_error *err, bool *out, const char *sql, int nparams,
	    const char *const *params);
/*
 * Runs a script of several statements with the simple query protocol: only
 * for the schema files this program carries, never for user SQL.
 */
int db_script(struct db *db, struct db_error *err, const char *sql);

/* db_conninfo.c */

/*
 * Checks conninfo with libpq's parser (PQconninfoParse), as a connection
 * would read it. Returns 0, or -1 with libpq's reason in msg (may be NULL
 * when msglen is 0), scrubbed by db_conninfo_scrub: libpq quotes what it
 * could not read, and that may be the password.
 */
int db_conninfo_check(const char *conninfo, char *msg, size_t msglen);
/*
 * Replaces, in the NUL-terminated msg (in place, cut at msglen), every
 * password and sslpassword that conninfo holds, as written and as decoded,
 * whether or not libpq can parse conninfo. For any message built from
 * libpq's text about a connection before it is logged, stored or sent.
 */
void db_conninfo_scrub(const char *conninfo, char *msg, size_t msglen);
/* The connection string with any password=... value masked, for messages. Caller frees. */
char *db_conninfo_redact(const char *conninfo);

#endif
