/*
 * A thin libpq wrapper: every statement goes through the extended query
 * protocol (PQexecParams), which refuses more than one statement, so a step's
 * SQL can never smuggle a second one. Errors keep their SQLSTATE.
 */
#ifndef TS_DB_H
#define TS_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

struct db_error {
	char sqlstate[6];   /* "" when the server sent none (connection trouble) */
	char message[1024];
	char detail[512];
	bool conn_lost;     /* the connection is gone; reconnect */
};

struct db {
	PGconn *conn;
	PGcancel *cancel;   /* for db_cancel, from another thread or a signal handler */
};

/*
 * Connects with conninfo (never logged: it may hold a password). Sets
 * application_name. Returns 0, or -1 with err filled.
 */
int db_connect(struct db **out, const char *conninfo, const char *appname, struct db_error *err);
void db_close(struct db *db);
/* Whether the connection is usable. */
bool db_ok(const struct db *db);
/* Cancels the statement running on db; safe from a signal handler. */
void db_cancel(struct db *db);

/*
 * Runs sql with text parameters (NULL for SQL NULL). On success returns 0 and
 * *res (caller PQclears; res may be NULL to discard). On error returns -1.
 */
int db_exec(struct db *db, PGresult **res, struct db_error *err, const char *sql, int nparams,
	    const char *const *params);
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

/* The connection string with any password=... value masked, for messages. */
char *db_conninfo_redact(const char *conninfo);

#endif
