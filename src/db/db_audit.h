/*
 * The audit of what the program sends (test builds only: -DTS_SQL_AUDIT=ON).
 * Every SQL text that goes to the database through src/db is written once
 * per process to a file of its own in $TS_SQL_AUDIT_DIR, for
 * tests/tools/sql_audit.c to read back with PostgreSQL's parser once the
 * integration tests have run: the program's own fixed statements are held to
 * the rule that plans' SQL is held to at run time (docs/design.md, "SQL
 * read by PostgreSQL's parser"). Other builds have no audit: nothing a
 * plan's author wrote is ever written anywhere by it.
 */
#ifndef TS_DB_DB_AUDIT_H
#define TS_DB_DB_AUDIT_H

/* How a text went: 'E' one statement (extended protocol), 'S' a script (simple query). */
#ifdef TS_SQL_AUDIT
void db_audit(char how, const char *sql);
#else
static inline void
db_audit(char how, const char *sql)
{
	(void)how;
	(void)sql;
}
#endif

#endif
