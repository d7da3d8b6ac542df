/*
 * PostgreSQL 15's parse tree, for the files that walk it: the node structs of
 * the server headers (postgresql-server-dev-15) and libpg_query's raw-tree
 * interface. libpg_query is PostgreSQL 15's own parser, so its tree is the
 * one these headers describe (tests/unit/sql/test_layout.c pins that).
 *
 * Only this header includes PostgreSQL's: include it first, before any
 * header of ours or of libc. port.h renames printf, snprintf, strerror and
 * their kin to PostgreSQL's own (pg_snprintf...); they are undone below so
 * our code keeps libc's.
 *
 * libpg_query keeps PostgreSQL's globals per thread (CurrentMemoryContext,
 * TopMemoryContext are thread-local in the library, plain externs in these
 * headers): our code must not touch them, nor the inline functions that do
 * (MemoryContextSwitchTo, palloc's callers). Reading a tree is fine.
 */
#ifndef TS_SQL_SQL_PG_H
#define TS_SQL_SQL_PG_H

#include <postgres.h>

#include <nodes/parsenodes.h>
#include <nodes/pg_list.h>
#include <nodes/primnodes.h>
#include <nodes/value.h>

#include <pg_query.h>

#include <pg_query/pg_query_internal.h>

#undef printf
#undef fprintf
#undef vfprintf
#undef vprintf
#undef snprintf
#undef vsnprintf
#undef sprintf
#undef vsprintf
#undef strerror
#undef strerror_r
#undef qsort
#undef strtof
#undef rename
#undef unlink
#undef DEBUG

#include "sql/sql.h"

/* Whether s is NULL or empty: the parser leaves an absent name NULL. */
static inline bool
sql_str_empty(const char *s)
{
	return !s || !s[0];
}

/* strcmp's equality with NULL read as "" (an absent name). */
static inline bool
sql_str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

#endif
