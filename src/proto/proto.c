/*
 * The control protocol's lines: versioned JSON, one object a line.
 * Decoding is strict about what it needs (framing, version, id, the kind of
 * message) and lenient about what it does not know (unknown keys), so a
 * later version can add fields without breaking an older peer.
 */
#include "proto/proto.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/utf8.h"

/* An error message longer than this is cut (at a character boundary). */
#define PROTO_MAX_MESSAGE 4096
/* One proto_reader_read: at most this many bytes. */
#define PROTO_READ_CHUNK (64 * 1024)

static void __attribute__((format(printf, 3, 4)))
say(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (!msg || msglen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

/* len without a trailing "\n" or "\r\n". */
static size_t
strip_newline(const char *line, size_t len)
{
	if (len && line[len - 1] == '\n') {
		len--;
		if (len && line[len - 1] == '\r')
			len--;
	}
	return len;
}

static bool
is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * The framing shared by requests and replies: length, NUL bytes, UTF-8, one
 * JSON object and nothing after it. Returns the object (caller deletes) or
 * NULL with a reason in msg.
 */
static cJSON *
parse_line(const char *line, size_t len, char *msg, size_t msglen)
{
	const char *nul, *end = NULL;
	char *copy;
	size_t bad;
	cJSON *root;

	len = strip_newline(line, len);
	if (len > TS_PROTO_MAX_LINE) {
		say(msg, msglen, "line too long (%zu bytes; the limit is %d)", len,
		    TS_PROTO_MAX_LINE);
		return NULL;
	}
	if ((nul = memchr(line, '\0', len)) != NULL) {
		say(msg, msglen, "NUL byte at offset %zu", (size_t)(nul - line));
		return NULL;
	}
	if ((bad = utf8_check(line, len)) != len) {
		say(msg, msglen, "invalid UTF-8 at byte %zu", bad);
		return NULL;
	}
	/* a NUL-terminated copy: cJSON's parser is then bounded by the terminator alone */
	copy = xmalloc(len + 1);
	memcpy(copy, line, len);
	copy[len] = '\0';
	root = cJSON_ParseWithOpts(copy, &end, 0);
	if (!root) {
		if (len == 0 || strspn(copy, " \t\r\n") == len)
			say(msg, msglen, "empty line: expected a JSON object");
		else
			say(msg, msglen, "not JSON: syntax error at byte %zu",
			    end && end >= copy && end <= copy + len ? (size_t)(end - copy)
								    : (size_t)0);
		free(copy);
		return NULL;
	}
	for (const char *p = end; p && *p; p++) {
		if (!is_json_space(*p)) {
			say(msg, msglen, "not JSON: text after the value at byte %zu",
			    (size_t)(p - copy));
			cJSON_Delete(root);
			free(copy);
			return NULL;
		}
	}
	free(copy);
	if (!cJSON_IsObject(root)) {
		say(msg, msglen, "expected a JSON object");
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* An integral JSON number in lo..hi. */
static bool
get_int(const cJSON *item, long long lo, long long hi, long long *out)
{
	double d;

	if (!cJSON_IsNumber(item))
		return false;
	d = item->valuedouble;
	/* the comparisons are false for NaN; the range check comes before the cast */
	if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
		return false;
	*out = (long long)d;
	return true;
}

/*
 * "v": 0 when it is TS_PROTO_VERSION; else -1 with code and message
 * (unsupported_version for another integer, bad_request for anything else).
 */
static int
check_version(const cJSON *root, const char **code, char *msg, size_t msglen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "v");

	*code = TS_PROTO_E_BAD_REQUEST;
	if (!v) {
		say(msg, msglen, "missing \"v\" (the protocol version, %d)", TS_PROTO_VERSION);
		return -1;
	}
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
	    v->valuedouble != floor(v->valuedouble)) {
		say(msg, msglen, "\"v\": expected an integer (the protocol version, %d)",
		    TS_PROTO_VERSION);
		return -1;
	}
	if (v->valuedouble != TS_PROTO_VERSION) {
		*code = TS_PROTO_E_VERSION;
		say(msg, msglen, "protocol version %.15g is not supported (this end speaks %d)",
		    v->valuedouble, TS_PROTO_VERSION);
		return -1;
	}
	return 0;
}

static int
cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * A key that appears twice in one object of the tree under item, or NULL.
 * cJSON keeps both and its lookups find the first, while another reader
 * may take the last: a request that says two things is refused instead.
 * Each object's keys are sorted, so a long line costs n log n, not n².
 */
static const char *
duplicate_key(const cJSON *item)
{
	const char *dup = NULL;
	const char **keys;
	size_t n = 0, i = 0;

	for (const cJSON *c = item->child; c; c = c->next) {
		n++;
		if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && (dup = duplicate_key(c)) != NULL)
			return dup;
	}
	if (!cJSON_IsObject(item) || n < 2)
		return NULL;
	keys = xcalloc(n, sizeof(*keys));
	for (const cJSON *c = item->child; c; c = c->next)
		keys[i++] = c->string ? c->string : "";
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (i = 1; i < n && !dup; i++)
		if (!strcmp(keys[i - 1], keys[i]))
			dup = keys[i];
	free(keys);
	return dup;
}

int
proto_request_decode(const char *line, size_t len, struct proto_request *out, const char **code,
		     char *msg, size_t msglen)
{
	const char *dup;
	cJSON *root, *id, *cmd, *args;
	long long idv = 0;

	memset(out, 0, sizeof(*out));
	*code = TS_PROTO_E_BAD_REQUEST;
	if (!(root = parse_line(line, len, msg, msglen)))
		return -1;
	/* the id first, so that every later error can be answered to it */
	id = cJSON_GetObjectItemCaseSensitive(root, "id");
	if (id && get_int(id, 0, PROTO_ID_MAX, &idv))
		out->id = idv;
	if (check_version(root, code, msg, msglen) < 0)
		goto fail;
	*code = TS_PROTO_E_BAD_REQUEST;
	if ((dup = duplicate_key(root)) != NULL) {
		say(msg, msglen, "duplicate key \"%.64s\": each key may appear once in an object",
		    dup);
		goto fail;
	}
	if (!id) {
		say(msg, msglen, "missing \"id\"");
		goto fail;
	}
	if (!get_int(id, 0, PROTO_ID_MAX, &idv)) {
		say(msg, msglen, "\"id\": expected an integer from 0 to %lld", PROTO_ID_MAX);
		goto fail;
	}
	cmd = cJSON_GetObjectItemCaseSensitive(root, "cmd");
	if (!cmd) {
		say(msg, msglen, "missing \"cmd\"");
		goto fail;
	}
	if (!cJSON_IsString(cmd) || !cmd->valuestring[0]) {
		say(msg, msglen, "\"cmd\": expected a non-empty string");
		goto fail;
	}
	args = cJSON_GetObjectItemCaseSensitive(root, "args");
	if (args && !cJSON_IsNull(args) && !cJSON_IsObject(args)) {
		say(msg, msglen, "\"args\": expected an object");
		goto fail;
	}
	out->v = TS_PROTO_VERSION;
	out->id = idv;
	out->cmd = xstrdup(cmd->valuestring);
	out->args = args && cJSON_IsObject(args) ? cJSON_DetachItemViaPointer(root, args) : NULL;
	cJSON_Delete(root);
	return 0;
fail:
	cJSON_Delete(root);
	return -1;
}

void
proto_request_free(struct proto_request *rq)
{
	if (!rq)
		return;
	free(rq->cmd);
	cJSON_Delete(rq->args);
	memset(rq, 0, sizeof(*rq));
}

/* The object's compact text plus "\n", in a malloc'd string; NULL if longer than a line may be. */
static char *
to_line(const cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o), *line;
	size_t n;

	if (!s) {
		fputs("taskslaps: out of memory\n", stderr);
		abort();
	}
	n = strlen(s);
	if (n > TS_PROTO_MAX_LINE) {
		cJSON_free(s);
		return NULL;
	}
	line = xmalloc(n + 2);
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	cJSON_free(s);
	return line;
}

static cJSON *
header(long long id)
{
	cJSON *o = cJSON_CreateObject();
	char buf[32];

	cJSON_AddNumberToObject(o, "v", TS_PROTO_VERSION);
	/*
	 * cJSON prints a double with 15 significant digits when that reads back
	 * "close enough", which is not exact above 10^15: the id is written as
	 * the integer it is
	 */
	if (id < 0 || id > PROTO_ID_MAX)
		id = 0;
	snprintf(buf, sizeof(buf), "%lld", id);
	cJSON_AddRawToObject(o, "id", buf);
	return o;
}

char *
proto_request_encode(long long id, const char *cmd, cJSON *args)
{
	cJSON *o = header(id);
	char *line;

	cJSON_AddStringToObject(o, "cmd", cmd);
	if (args)
		cJSON_AddItemToObject(o, "args", args);
	line = to_line(o);
	cJSON_Delete(o);
	if (!line)
		/* only absurd arguments get here; the peer would refuse the line anyway */
		line = xstrdup("{}\n");
	return line;
}

/* A reply that carries a payload under key; one too big for a line becomes an error. */
static char *
reply_with(long long id, const char *key, cJSON *payload)
{
	cJSON *o = header(id);
	char *line;

	cJSON_AddItemToObject(o, key, payload ? payload : cJSON_CreateObject());
	line = to_line(o);
	cJSON_Delete(o);
	if (!line) {
		char m[128];

		snprintf(m, sizeof(m), "the %s does not fit in one protocol line (%d bytes)", key,
			 TS_PROTO_MAX_LINE);
		line = proto_reply_error(id, TS_PROTO_E_UNAVAILABLE, m);
	}
	return line;
}

char *
proto_reply_result(long long id, cJSON *result)
{
	return reply_with(id, "result", result);
}

char *
proto_reply_event(long long id, cJSON *event)
{
	return reply_with(id, "event", event);
}

char *
proto_reply_error(long long id, const char *code, const char *message)
{
	cJSON *o = header(id), *e = cJSON_CreateObject();
	char *cut = NULL, *line;

	if (!message)
		message = "";
	if (strlen(message) > PROTO_MAX_MESSAGE) {
		size_t n = PROTO_MAX_MESSAGE;

		/* back to the start of a character */
		while (n > 0 && ((unsigned char)message[n] & 0xC0) == 0x80)
			n--;
		cut = xstrndup(message, n);
		message = cut;
	}
	cJSON_AddStringToObject(e, "code", code ? code : TS_PROTO_E_BAD_REQUEST);
	cJSON_AddStringToObject(e, "message", message);
	cJSON_AddItemToObject(o, "error", e);
	line = to_line(o); /* a 4 KiB message and a code always fit */
	cJSON_Delete(o);
	free(cut);
	return line;
}

char *
proto_reply_end(long long id)
{
	cJSON *o = header(id);
	char *line;

	cJSON_AddTrueToObject(o, "end");
	line = to_line(o);
	cJSON_Delete(o);
	return line;
}

const char *
proto_reply_kind_name(enum proto_reply_kind k)
{
	switch (k) {
	case PROTO_RESULT: return "result";
	case PROTO_ERROR: return "error";
	case PROTO_EVENT: return "event";
	case PROTO_END: return "end";
	}
	return "?";
}

int
proto_reply_decode(const char *line, size_t len, struct proto_reply *out, char *msg, size_t msglen)
{
	static const char *const keys[] = { "result", "error", "event", "end" };
	cJSON *root, *item = NULL;
	const char *code;
	long long id;
	int found = -1;

	if (!(root = parse_line(line, len, msg, msglen)))
		return -1;
	if (check_version(root, &code, msg, msglen) < 0)
		goto fail;
	if (!get_int(cJSON_GetObjectItemCaseSensitive(root, "id"), 0, PROTO_ID_MAX, &id)) {
		say(msg, msglen, "\"id\": expected an integer from 0 to %lld", PROTO_ID_MAX);
		goto fail;
	}
	for (int k = 0; k < 4; k++) {
		cJSON *it = cJSON_GetObjectItemCaseSensitive(root, keys[k]);

		if (!it)
			continue;
		if (found >= 0) {
			say(msg, msglen,
			    "a reply has one of result, error, event, end: found %s and %s",
			    keys[found], keys[k]);
			goto fail;
		}
		found = k;
		item = it;
	}
	switch (found) {
	case PROTO_RESULT: break;
	case PROTO_ERROR: {
		cJSON *c = cJSON_GetObjectItemCaseSensitive(item, "code");
		cJSON *m = cJSON_GetObjectItemCaseSensitive(item, "message");

		if (!cJSON_IsObject(item) || !cJSON_IsString(c) || !c->valuestring[0]) {
			say(msg, msglen, "\"error\": expected an object with a string \"code\"");
			goto fail;
		}
		if (m && !cJSON_IsString(m) && !cJSON_IsNull(m)) {
			say(msg, msglen, "\"error.message\": expected a string");
			goto fail;
		}
		memset(out, 0, sizeof(*out));
		out->code = xstrdup(c->valuestring);
		out->message = xstrdup(cJSON_IsString(m) ? m->valuestring : "");
		break;
	}
	case PROTO_EVENT:
		if (!cJSON_IsObject(item)) {
			say(msg, msglen, "\"event\": expected an object");
			goto fail;
		}
		break;
	case PROTO_END:
		if (!cJSON_IsTrue(item)) {
			say(msg, msglen, "\"end\": expected true");
			goto fail;
		}
		break;
	default: say(msg, msglen, "expected one of result, error, event, end"); goto fail;
	}
	if (found != PROTO_ERROR)
		memset(out, 0, sizeof(*out));
	out->kind = (enum proto_reply_kind)found;
	out->id = id;
	if (found == PROTO_RESULT || found == PROTO_EVENT)
		out->payload = cJSON_DetachItemViaPointer(root, item);
	cJSON_Delete(root);
	return 0;
fail:
	cJSON_Delete(root);
	return -1;
}

void
proto_reply_free(struct proto_reply *r)
{
	if (!r)
		return;
	cJSON_Delete(r->payload);
	free(r->code);
	free(r->message);
	memset(r, 0, sizeof(*r));
}

/* ---- access -------------------------------------------------------------- */

const char *
proto_access_name(enum proto_access a)
{
	return a == PROTO_READ ? "read" : "admin";
}

void
proto_forbidden_message(char *msg, size_t msglen, const char *cmd, const char *admin_group,
			bool group_exists)
{
	/* a name from the wire, so at most a line's worth of it */
	if (admin_group && group_exists)
		say(msg, msglen, "not allowed: '%.64s' needs root or the admin group %s", cmd,
		    admin_group);
	else if (admin_group)
		say(msg, msglen,
		    "not allowed: '%.64s' needs root (the admin group %s does not exist on this "
		    "system)",
		    cmd, admin_group);
	else
		say(msg, msglen, "not allowed: '%.64s' needs root (no admin_group is configured)",
		    cmd);
}

/* ---- line reader --------------------------------------------------------- */

void
proto_reader_init(struct proto_reader *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max ? max : TS_PROTO_MAX_LINE;
}

void
proto_reader_free(struct proto_reader *r)
{
	if (!r)
		return;
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

/* Room for n more bytes at the end, moving the unread bytes to the front first. */
static void
reserve(struct proto_reader *r, size_t n)
{
	if (r->start) {
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->start = 0;
	}
	if (r->cap - r->len <
	    n + 1) { /* + 1: next() writes a NUL over a '\n' only, but keep one spare */
		size_t cap = r->cap ? r->cap : 4096;

		while (cap - r->len < n + 1)
			cap *= 2;
		r->buf = xrealloc(r->buf, cap);
		r->cap = cap;
	}
}

void
proto_reader_feed(struct proto_reader *r, const void *data, size_t n)
{
	const char *p = data;

	if (r->skipping) {
		/* the rest of an oversized line: drop through its newline */
		const char *nl = memchr(p, '\n', n);

		if (!nl)
			return;
		r->skipping = false;
		n -= (size_t)(nl + 1 - p);
		p = nl + 1;
	}
	if (n == 0)
		return;
	reserve(r, n);
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

ssize_t
proto_reader_read(struct proto_reader *r, int fd)
{
	char chunk[4096];
	ssize_t n;

	if (r->skipping) {
		/* nothing of it is kept, so read it through a small buffer */
		n = read(fd, chunk, sizeof(chunk));
		if (n > 0)
			proto_reader_feed(r, chunk, (size_t)n);
		return n < 0 ? -errno : n;
	}
	reserve(r, PROTO_READ_CHUNK);
	n = read(fd, r->buf + r->len, PROTO_READ_CHUNK);
	if (n < 0)
		return -errno;
	r->len += (size_t)n;
	return n;
}

int
proto_reader_next(struct proto_reader *r, const char **line, size_t *len)
{
	size_t avail = r->len - r->start;
	char *base, *nl;
	size_t n;

	if (avail == 0)
		return PROTO_NEED_MORE; /* and buf may still be NULL */
	base = r->buf + r->start;
	nl = r->scanned < avail ? memchr(base + r->scanned, '\n', avail - r->scanned) : NULL;
	if (!nl) {
		r->scanned = avail;
		if (avail > r->max) {
			/* no newline within max bytes: drop what is here and the rest to come */
			r->start = r->len = 0;
			r->scanned = 0;
			r->skipping = true;
			return PROTO_TOO_LONG;
		}
		return PROTO_NEED_MORE;
	}
	n = (size_t)(nl - base);
	r->start += n + 1;
	r->scanned = 0;
	if (n > r->max)
		return PROTO_TOO_LONG;
	*nl = '\0';
	*line = base;
	*len = n;
	return PROTO_LINE;
}

size_t
proto_reader_pending(const struct proto_reader *r)
{
	return r->len - r->start;
}
