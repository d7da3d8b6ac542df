/*
 * Just enough SQL lexing to check what authors write: fragments stay one
 * expression or statement (no `;`, balanced parentheses, closed quotes and
 * comments), a backfill is one UPDATE, and names are quoted on the way out.
 */
#ifndef TS_PLAN_LEX_H
#define TS_PLAN_LEX_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

/*
 * Checks a SQL fragment. stmt allows one trailing `;` (then *trimmed_len is
 * the length without it and trailing blanks). Returns NULL when fine, else a
 * message (static) and *off at the offending byte.
 */
const char *sqllex_check(const char *s, bool stmt, size_t *off, size_t *trimmed_len);

/* Whether the fragment holds a `--` comment (so a closing parenthesis needs a new line). */
bool sqllex_has_line_comment(const char *s);

/* The first keyword of s, upper-cased into out (at most outlen-1 chars); "" if none. */
void sqllex_first_word(const char *s, char *out, size_t outlen);
/* The keyword at position index (from 0) of the words that open s; "" if there is none. */
void sqllex_word(const char *s, unsigned index, char *out, size_t outlen);

/*
 * Splits `UPDATE table SET ... [WHERE ...]` into its table, SET list and WHERE
 * condition (arena copies; *where NULL when absent). Returns NULL or a message
 * with *off at the problem.
 */
const char *sqllex_split_update(struct arena *a, const char *sql, char **table, char **set,
				char **where, size_t *off);

/* "name" or "schema"."name" for a validated identifier. */
char *sql_quote_ident(struct arena *a, const char *ident);
/* 'text' (E'...' when it holds a backslash), quotes doubled. */
char *sql_quote_literal(struct arena *a, const char *text);

#endif
