/* The taskslaps schema (sql/), carried in the binary and installed idempotently. */
#ifndef TS_DB_SCHEMA_H
#define TS_DB_SCHEMA_H

#include "db/db.h"

struct db_sql_file {
	const char *name;
	const char *text;
};

/* The files of sql/ in order, ending with {NULL, NULL} (generated at build time). */
extern const struct db_sql_file db_sql_files[];

/*
 * Installs or upgrades the schema: every file in one transaction (the files
 * serialise concurrent installers themselves), then a comment on the schema
 * with the version and a SHA-256 of the files. Unless force, a schema that
 * already carries this binary's comment is left as it is (one query instead
 * of the whole install). Returns 0, or -1 with err (err->message names the
 * file; a lock not had within DB_SCHEMA_LOCK_TIMEOUT fails it, SQLSTATE
 * 55P03).
 */
int db_schema_install(struct db *db, bool force, struct db_error *err);
/* The install's lock_timeout: a lock it needs is waited for this long at most. */
#define DB_SCHEMA_LOCK_TIMEOUT "5s"
/* The highest schema version this binary installs. */
int db_schema_version(void);

#endif
