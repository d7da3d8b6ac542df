#include "plan/plan_lex.h"

#include <ctype.h>
#include <string.h>

#include "plan/plan.h"
#include "util/alloc.h"
#include "util/strbuf.h"

/*
 * Skips the token that starts at s[i] if it is a quoted string, a quoted
 * identifier, a dollar-quoted string or a comment. Returns the offset after
 * it, i itself when there is no such token there, or (size_t)-1 when it is
 * not closed.
 */
static size_t
skip_quoted(const char *s, size_t i)
{
	size_t n = strlen(s);

	if (s[i] == '\'' || s[i] == '"') {
		char q = s[i];
		/* E'...' strings take backslash escapes */
		bool esc = q == '\'' && i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') &&
			   (i == 1 || !(isalnum((unsigned char)s[i - 2]) || s[i - 2] == '_'));
		for (i++; i < n; i++) {
			if (esc && s[i] == '\\' && i + 1 < n) {
				i++;
			} else if (s[i] == q) {
				if (s[i + 1] == q)
					i++;
				else
					return i + 1;
			}
		}
		return (size_t)-1;
	}
	if (s[i] == '-' && s[i + 1] == '-') {
		while (s[i] && s[i] != '\n')
			i++;
		return i;
	}
	if (s[i] == '/' && s[i + 1] == '*') {
		int depth = 1;
		for (i += 2; s[i]; i++) {
			if (s[i] == '/' && s[i + 1] == '*')
				depth++, i++;
			else if (s[i] == '*' && s[i + 1] == '/' && --depth == 0)
				return i + 2;
			else if (s[i] == '*' && s[i + 1] == '/')
				i++;
		}
		return (size_t)-1;
	}
	if (s[i] == '$' && (i == 0 || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_'))) {
		/* $tag$ ... $tag$ ; a `$1` parameter is not a quote */
		size_t j = i + 1;
		while (isalnum((unsigned char)s[j]) || s[j] == '_')
			j++;
		if (s[j] == '$' && !isdigit((unsigned char)s[i + 1])) {
			size_t taglen = j - i + 1;
			const char *end = s + j + 1;
			while ((end = strchr(end, '$')) != NULL) {
				if (strncmp(end, s + i, taglen) == 0)
					return (size_t)(end - s) + taglen;
				end++;
			}
			return (size_t)-1;
		}
	}
	return i;
}

const char *
sqllex_check(const char *s, bool stmt, size_t *off, size_t *trimmed_len)
{
	size_t i = 0, n = strlen(s), last_semi = (size_t)-1;
	int depth = 0;
	size_t open_at = 0;

	if (trimmed_len)
		*trimmed_len = n;
	while (i < n) {
		size_t j = skip_quoted(s, i);
		if (j == (size_t)-1) {
			*off = i;
			return s[i] == '-' || s[i] == '/' ? "expected the comment to be closed, found the end of the SQL"
							  : "expected the quote to be closed, found the end of the SQL";
		}
		if (j != i) {
			i = j;
			continue;
		}
		if (last_semi != (size_t)-1 && !isspace((unsigned char)s[i])) {
			*off = last_semi;
			return "expected one statement, found ';' followed by more SQL";
		}
		if (s[i] == ';') {
			if (!stmt) {
				*off = i;
				return "expected one SQL expression, found ';'";
			}
			if (depth > 0) {
				*off = i;
				return "expected ')', found ';'";
			}
			last_semi = i;
		} else if (s[i] == '(') {
			if (depth++ == 0)
				open_at = i;
		} else if (s[i] == ')') {
			if (--depth < 0) {
				*off = i;
				return "found ')' without a matching '('";
			}
		}
		i++;
	}
	if (depth > 0) {
		*off = open_at;
		return "expected ')' to close this '(', found the end of the SQL";
	}
	if (trimmed_len) {
		size_t t = last_semi != (size_t)-1 ? last_semi : n;
		while (t > 0 && isspace((unsigned char)s[t - 1]))
			t--;
		*trimmed_len = t;
	}
	{
		/* nothing but blanks and comments is no SQL at all */
		size_t k = 0;
		bool any = false;
		while (k < n) {
			size_t j = skip_quoted(s, k);
			if (j != k && (s[k] == '-' || s[k] == '/')) {
				k = j;
				continue;
			}
			if (!isspace((unsigned char)s[k]) && s[k] != ';') {
				any = true;
				break;
			}
			k++;
		}
		if (!any) {
			*off = 0;
			return "expected SQL, found nothing but blanks and comments";
		}
	}
	return NULL;
}

bool
sqllex_has_line_comment(const char *s)
{
	size_t i = 0, n = strlen(s);

	while (i < n) {
		size_t j;
		if (s[i] == '-' && s[i + 1] == '-')
			return true;
		j = skip_quoted(s, i);
		if (j == (size_t)-1)
			return false;
		i = j != i ? j : i + 1;
	}
	return false;
}

/* Skips blanks and comments from i. */
static size_t
skip_space(const char *s, size_t i)
{
	for (;;) {
		while (isspace((unsigned char)s[i]))
			i++;
		if ((s[i] == '-' && s[i + 1] == '-') || (s[i] == '/' && s[i + 1] == '*')) {
			size_t j = skip_quoted(s, i);
			if (j == (size_t)-1)
				return strlen(s);
			i = j;
			continue;
		}
		return i;
	}
}

void
sqllex_first_word(const char *s, char *out, size_t outlen)
{
	sqllex_word(s, 0, out, outlen);
}

void
sqllex_word(const char *s, unsigned index, char *out, size_t outlen)
{
	size_t i = skip_space(s, 0);

	for (unsigned w = 0;; w++) {
		size_t k = 0, j;

		while ((isalpha((unsigned char)s[i]) || s[i] == '_') && k + 1 < outlen)
			out[k++] = (char)toupper((unsigned char)s[i++]);
		out[k] = '\0';
		if (w == index || k == 0)
			return;
		/* words are separated by blanks and comments; anything else ends them */
		j = skip_space(s, i);
		if (j == i) {
			out[0] = '\0';
			return;
		}
		i = j;
	}
}

/* Whether the keyword kw (upper case) stands at s[i] as a whole word. */
static bool
keyword_at(const char *s, size_t i, const char *kw)
{
	size_t n = strlen(kw);

	if (i > 0 && (isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_' || s[i - 1] == '"'))
		return false;
	if (strncasecmp(s + i, kw, n) != 0)
		return false;
	return !(isalnum((unsigned char)s[i + n]) || s[i + n] == '_' || s[i + n] == '"');
}

/* Finds kw at parenthesis depth 0, outside quotes and comments, from i; or (size_t)-1. */
static size_t
find_keyword(const char *s, size_t i, const char *kw)
{
	int depth = 0;

	while (s[i]) {
		size_t j = skip_quoted(s, i);
		if (j == (size_t)-1)
			return (size_t)-1;
		if (j != i) {
			i = j;
			continue;
		}
		if (s[i] == '(')
			depth++;
		else if (s[i] == ')')
			depth--;
		else if (depth == 0 && keyword_at(s, i, kw))
			return i;
		i++;
	}
	return (size_t)-1;
}

static char *
trim_copy(struct arena *a, const char *s, size_t from, size_t to)
{
	while (from < to && isspace((unsigned char)s[from]))
		from++;
	while (to > from && isspace((unsigned char)s[to - 1]))
		to--;
	return arena_strndup(a, s + from, to - from);
}

const char *
sqllex_split_update(struct arena *a, const char *sql, char **table, char **set, char **where,
		    size_t *off)
{
	size_t i = skip_space(sql, 0), t0, set_at, where_at, end = strlen(sql);
	static const char *const forbidden[] = { "RETURNING", "FROM" };

	if (!keyword_at(sql, i, "UPDATE")) {
		*off = i;
		return "expected a single UPDATE statement";
	}
	i = skip_space(sql, i + 6);
	t0 = i;
	while (isalnum((unsigned char)sql[i]) || sql[i] == '_' || sql[i] == '.')
		i++;
	*table = arena_strndup(a, sql + t0, i - t0);
	if (!plan_ident_ok(*table, true)) {
		*off = t0;
		return "expected a plain table name after UPDATE (letters, digits, _, optionally schema.name)";
	}
	i = skip_space(sql, i);
	if (!keyword_at(sql, i, "SET")) {
		*off = i;
		return "expected SET after the table name (a backfill updates its table without an alias)";
	}
	set_at = i + 3;
	for (size_t k = 0; k < sizeof(forbidden) / sizeof(*forbidden); k++) {
		size_t at = find_keyword(sql, set_at, forbidden[k]);
		if (at != (size_t)-1) {
			*off = at;
			return "expected UPDATE table SET ... [WHERE ...]; found a clause a batched backfill cannot keep (FROM, RETURNING)";
		}
	}
	where_at = find_keyword(sql, set_at, "WHERE");
	/* a trailing ; was already trimmed by the caller */
	*set = trim_copy(a, sql, set_at, where_at == (size_t)-1 ? end : where_at);
	*where = where_at == (size_t)-1 ? NULL : trim_copy(a, sql, where_at + 5, end);
	if (!**set) {
		*off = set_at;
		return "expected assignments after SET";
	}
	if (*where && !**where) {
		*off = where_at;
		return "expected a condition after WHERE";
	}
	return NULL;
}

char *
sql_quote_ident(struct arena *a, const char *ident)
{
	struct strbuf sb = STRBUF_INIT;
	char *out;

	sb_putc(&sb, '"');
	for (const char *p = ident; *p; p++) {
		if (*p == '.') {
			sb_puts(&sb, "\".\"");
		} else {
			if (*p == '"')
				sb_putc(&sb, '"');
			sb_putc(&sb, *p);
		}
	}
	sb_putc(&sb, '"');
	out = arena_strdup(a, sb_str(&sb));
	sb_free(&sb);
	return out;
}

char *
sql_quote_literal(struct arena *a, const char *text)
{
	struct strbuf sb = STRBUF_INIT;
	bool bs = strchr(text, '\\') != NULL;
	char *out;

	if (bs)
		sb_putc(&sb, 'E');
	sb_putc(&sb, '\'');
	for (const char *p = text; *p; p++) {
		if (*p == '\'' || (bs && *p == '\\'))
			sb_putc(&sb, *p);
		sb_putc(&sb, *p);
	}
	sb_putc(&sb, '\'');
	out = arena_strdup(a, sb_str(&sb));
	sb_free(&sb);
	return out;
}
