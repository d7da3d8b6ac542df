#include "db/db_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/sha256.h"
#include "util/strbuf.h"

int
db_schema_version(void)
{
	int v = 0;

	for (const struct db_sql_file *f = db_sql_files; f->name; f++) {
		long n = strtol(f->name, NULL, 10); /* "003_roles.sql" -> 3 */
		if (n > v)
			v = (int)n;
	}
	return v;
}

/* "taskslaps schema V sha256:HEX", HEX over every file's name and text. */
static void
schema_mark(char *out, size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	char hex[SHA256_HEX_LEN + 1];

	for (const struct db_sql_file *f = db_sql_files; f->name; f++) {
		sb_add(&sb, f->name, strlen(f->name) + 1);
		sb_add(&sb, f->text, strlen(f->text) + 1);
	}
	if (sha256_hex(sb_str(&sb), sb.len, hex) < 0)
		hex[0] = '\0';
	sb_free(&sb);
	snprintf(out, len, "taskslaps schema %d sha256:%s", db_schema_version(), hex);
}

int
db_schema_install(struct db *db, bool force, struct db_error *err)
{
	struct db_error ignore;
	char mark[128], *sql;
	PGresult *r;
	bool same;

	schema_mark(mark, sizeof(mark));
	if (!force) {
		/* installed by this very binary (or one with the same sql/): nothing to do */
		if (db_execf(db, &r, err,
			     "SELECT pg_catalog.obj_description(pg_catalog.to_regnamespace("
			     "'taskslaps')::pg_catalog.oid, 'pg_namespace')",
			     0, NULL) < 0)
			return -1;
		same = !PQgetisnull(r, 0, 0) && strcmp(PQgetvalue(r, 0, 0), mark) == 0;
		PQclear(r);
		if (same)
			return 0;
	}
	/*
	 * A lock the install needs (another installer's advisory lock; ACCESS
	 * EXCLUSIVE on a state table when a constraint changes) is waited for
	 * DB_SCHEMA_LOCK_TIMEOUT at most: behind a long transaction that reads
	 * taskslaps.events, the install fails and is tried again (the daemon at its
	 * next connection), rather than queueing every session of those tables
	 * behind it.
	 */
	if (db_cmd(db, err, "BEGIN") < 0 ||
	    db_cmd(db, err, "SET LOCAL lock_timeout = '" DB_SCHEMA_LOCK_TIMEOUT "'") < 0) {
		(void)db_cmd(db, &ignore, "ROLLBACK");
		return -1;
	}
	for (const struct db_sql_file *f = db_sql_files; f->name; f++) {
		if (db_script(db, err, f->text) < 0) {
			static const char busy[] =
			    " (another session held a lock the install needs "
			    "for more than " DB_SCHEMA_LOCK_TIMEOUT "; nothing was changed)";
			char msg[sizeof(err->message) + sizeof(busy) + 64];

			snprintf(msg, sizeof(msg), "installing sql/%s: %s%s", f->name, err->message,
				 strcmp(err->sqlstate, "55P03") == 0 ? busy : "");
			snprintf(err->message, sizeof(err->message), "%.1000s", msg);
			(void)db_cmd(db, &ignore, "ROLLBACK");
			return -1;
		}
	}
	/* the mark is hex and digits only: no quoting to get wrong */
	sql = xasprintf("COMMENT ON SCHEMA taskslaps IS '%s'", mark);
	if (db_cmd(db, err, sql) < 0) {
		free(sql);
		(void)db_cmd(db, &ignore, "ROLLBACK");
		return -1;
	}
	free(sql);
	return db_cmd(db, err, "COMMIT");
}
