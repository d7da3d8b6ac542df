/*
 * Connection strings and the secrets in them. libpq's messages about a
 * connection string quote the part it could not read — the whole URI when
 * its host is malformed, the percent-encoded token it could not decode —
 * and that part may be the password. Every such message is scrubbed here
 * before anyone logs, stores or sends it.
 *
 * The secrets are found twice: by libpq's own parser when the string
 * parses (the password as libpq will use it), and by a lenient reading of
 * the raw text, which also works on a string libpq refuses (the user-info
 * of a URI, a password=... query parameter or keyword, raw and decoded).
 */
#include "db/db.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/strbuf.h"

/* What a secret is replaced with in a message. */
#define SCRUBBED "********"
/* Most secrets one connection string can yield (raw and decoded forms of a few keys). */
#define MAX_SECRETS 16

struct secrets {
	char *s[MAX_SECRETS];
	size_t n;
};

static bool
secret_key(const char *k, size_t n)
{
	return (n == 8 && !strncmp(k, "password", 8)) ||
	       (n == 11 && !strncmp(k, "sslpassword", 11));
}

/* Adds a copy of p[0..n) (nothing when empty, a duplicate, or the list is full). */
static void
secrets_add(struct secrets *sec, const char *p, size_t n)
{
	if (n == 0 || sec->n == MAX_SECRETS)
		return;
	for (size_t i = 0; i < sec->n; i++)
		if (strlen(sec->s[i]) == n && !memcmp(sec->s[i], p, n))
			return;
	sec->s[sec->n++] = xstrndup(p, n);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* p[0..n) raw, and percent-decoded where it decodes (a bad escape is kept as it is). */
static void
secrets_add_uri(struct secrets *sec, const char *p, size_t n)
{
	struct strbuf sb = STRBUF_INIT;

	secrets_add(sec, p, n);
	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (p[i] == '%' && i + 2 < n && (hi = hexval(p[i + 1])) >= 0 &&
		    (lo = hexval(p[i + 2])) >= 0 && (hi || lo)) {
			sb_putc(&sb, (char)(hi * 16 + lo));
			i += 2;
		} else {
			sb_putc(&sb, p[i]);
		}
	}
	if (sb.len)
		secrets_add(sec, sb.buf, sb.len);
	sb_free(&sb);
}

/* postgresql://user:PASSWORD@host/db?password=PASSWORD&... read leniently. */
static void
scan_uri(struct secrets *sec, const char *s)
{
	const char *p = strstr(s, "://"), *q, *colon;

	if (!p)
		return;
	p += 3;
	/* libpq looks for the user-info's '@' up to the first '/' */
	q = p + strcspn(p, "@/");
	if (*q == '@' && (colon = memchr(p, ':', (size_t)(q - p))) != NULL)
		secrets_add_uri(sec, colon + 1, (size_t)(q - colon - 1));
	q = strchr(p, '?');
	while (q && *q) {
		const char *key = q + 1, *eq, *end;

		end = key + strcspn(key, "&");
		eq = memchr(key, '=', (size_t)(end - key));
		if (eq && secret_key(key, (size_t)(eq - key)))
			secrets_add_uri(sec, eq + 1, (size_t)(end - eq - 1));
		q = *end ? end : NULL;
	}
}

/* key = value pairs: the value of password= and sslpassword=, quoted or not. */
static void
scan_keywords(struct secrets *sec, const char *s)
{
	const char *p = s;

	while (*p) {
		const char *key, *v;
		size_t klen;
		struct strbuf sb = STRBUF_INIT;

		while (isspace((unsigned char)*p))
			p++;
		key = p;
		while (*p && *p != '=' && !isspace((unsigned char)*p))
			p++;
		klen = (size_t)(p - key);
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=') {
			if (klen == 0 && *p)
				p++;
			continue;
		}
		p++;
		while (isspace((unsigned char)*p))
			p++;
		v = p;
		if (*p == '\'') {
			for (p++; *p && *p != '\''; p++) {
				if (*p == '\\' && p[1])
					p++;
				sb_putc(&sb, *p);
			}
			if (*p)
				p++;
		} else {
			while (*p && !isspace((unsigned char)*p)) {
				if (*p == '\\' && p[1])
					p++;
				sb_putc(&sb, *p++);
			}
		}
		if (secret_key(key, klen)) {
			secrets_add(sec, v, (size_t)(p - v));
			if (sb.len)
				secrets_add(sec, sb.buf, sb.len);
		}
		sb_free(&sb);
	}
}

static void
secrets_find(struct secrets *sec, const char *conninfo)
{
	PQconninfoOption *opts;
	char *errmsg = NULL;

	memset(sec, 0, sizeof(*sec));
	if (!conninfo)
		return;
	opts = PQconninfoParse(conninfo, &errmsg);
	PQfreemem(errmsg);
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (o->val && secret_key(o->keyword, strlen(o->keyword)))
			secrets_add(sec, o->val, strlen(o->val));
	PQconninfoFree(opts);
	if (!strncmp(conninfo, "postgresql://", 13) || !strncmp(conninfo, "postgres://", 11))
		scan_uri(sec, conninfo);
	else
		scan_keywords(sec, conninfo);
}

static void
secrets_free(struct secrets *sec)
{
	for (size_t i = 0; i < sec->n; i++) {
		explicit_bzero(sec->s[i], strlen(sec->s[i]));
		free(sec->s[i]);
	}
	sec->n = 0;
}

void
db_conninfo_scrub(const char *conninfo, char *msg, size_t msglen)
{
	struct secrets sec;
	struct strbuf sb = STRBUF_INIT;
	const char *p;

	if (!msg || msglen == 0)
		return;
	secrets_find(&sec, conninfo);
	if (sec.n == 0)
		return;
	/* the longest first, so that a secret inside another one is not half replaced */
	for (size_t i = 1; i < sec.n; i++)
		for (size_t j = i; j > 0 && strlen(sec.s[j]) > strlen(sec.s[j - 1]); j--) {
			char *t = sec.s[j];
			sec.s[j] = sec.s[j - 1];
			sec.s[j - 1] = t;
		}
	p = msg;
	while (*p) {
		size_t i;

		for (i = 0; i < sec.n; i++)
			if (!strncmp(p, sec.s[i], strlen(sec.s[i])))
				break;
		if (i < sec.n) {
			sb_puts(&sb, SCRUBBED);
			p += strlen(sec.s[i]);
		} else {
			sb_putc(&sb, *p++);
		}
	}
	snprintf(msg, msglen, "%s", sb.buf ? sb.buf : "");
	explicit_bzero(sb.buf, sb.len);
	sb_free(&sb);
	secrets_free(&sec);
}

int
db_conninfo_check(const char *conninfo, char *msg, size_t msglen)
{
	PQconninfoOption *opts;
	char *errmsg = NULL;
	size_t n;

	opts = PQconninfoParse(conninfo, &errmsg);
	if (opts) {
		PQconninfoFree(opts);
		return 0;
	}
	if (msg && msglen) {
		snprintf(msg, msglen, "%s", errmsg ? errmsg : "out of memory");
		n = strlen(msg);
		while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			msg[--n] = '\0';
		db_conninfo_scrub(conninfo, msg, msglen);
	}
	if (errmsg) {
		explicit_bzero(errmsg, strlen(errmsg));
		PQfreemem(errmsg);
	}
	return -1;
}

char *
db_conninfo_redact(const char *conninfo)
{
	PQconninfoOption *opts, *o;
	struct strbuf sb = STRBUF_INIT;
	char *errmsg = NULL;

	opts = PQconninfoParse(conninfo, &errmsg);
	if (!opts) {
		PQfreemem(errmsg);
		return xstrdup("(unparsable connection string)");
	}
	for (o = opts; o->keyword; o++) {
		if (!o->val || !o->val[0])
			continue;
		sb_printf(&sb, "%s%s=%s", sb.len ? " " : "", o->keyword,
			  secret_key(o->keyword, strlen(o->keyword)) ? SCRUBBED : o->val);
	}
	PQconninfoFree(opts);
	return sb_detach(&sb);
}
