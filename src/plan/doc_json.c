/*
 * JSON reader. cJSON checks the syntax and decodes strings; cJSON keeps no
 * positions, so a second walk over the (now known to be valid) text, in step
 * with cJSON's tree, records where every value and key starts.
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <string.h>

#include "plan/doc.h"
#include "util/alloc.h"
#include "util/utf8.h"

struct jctx {
	struct doc *doc;
	const char *file;
	const char *buf;
	size_t len;
	struct diags *d;
	/* forward-only cursor, so positions cost O(file) in all */
	size_t at;
	unsigned line, col;
};

static void
seek(struct jctx *c, size_t off)
{
	for (; c->at < off; c->at++) {
		if (c->buf[c->at] == '\n') {
			c->line++;
			c->col = 1;
		} else if (((unsigned char)c->buf[c->at] & 0xc0) != 0x80) {
			c->col++;
		}
	}
}

static size_t
skip_ws(const struct jctx *c, size_t i)
{
	while (i < c->len &&
	       (c->buf[i] == ' ' || c->buf[i] == '\t' || c->buf[i] == '\n' || c->buf[i] == '\r'))
		i++;
	return i;
}

/* i is at the opening quote; returns the offset after the closing one. */
static size_t
skip_string(const struct jctx *c, size_t i, int *has_nul)
{
	for (i++; i < c->len && c->buf[i] != '"'; i++) {
		if (c->buf[i] == '\\') {
			if (i + 5 < c->len && c->buf[i + 1] == 'u' &&
			    memcmp(c->buf + i + 2, "0000", 4) == 0)
				*has_nul = 1;
			i++;
		}
	}
	return i + 1;
}

static struct doc_node *
walk(struct jctx *c, const cJSON *item, size_t *pos, int depth)
{
	size_t i = skip_ws(c, *pos);
	struct doc_node *node;
	int nul = 0;

	seek(c, i);
	if (depth > DOC_MAX_DEPTH) {
		diags_add(c->d, DIAG_ERROR, c->file, c->line, c->col,
			  "nesting deeper than %d levels", DOC_MAX_DEPTH);
		return NULL;
	}
	if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
		int is_map = cJSON_IsObject(item);
		const cJSON *ch;

		node = doc_node_new(c->doc, is_map ? DOC_MAP : DOC_SEQ, c->line, c->col);
		i++; /* { or [ */
		for (ch = item->child; ch; ch = ch->next) {
			struct doc_node *key = NULL, *value;

			i = skip_ws(c, i);
			if (is_map) {
				seek(c, i);
				key = doc_node_new(c->doc, DOC_STRING, c->line, c->col);
				key->str = arena_strdup(c->doc->arena, ch->string);
				i = skip_string(c, i, &nul);
				if (nul)
					diags_add(c->d, DIAG_ERROR, c->file, key->line, key->col,
						  "expected text, found an escaped NUL character");
				for (size_t k = 0; k < node->n; k++) {
					if (strcmp(node->keys[k]->str, key->str) == 0) {
						diags_add(c->d, DIAG_ERROR, c->file, key->line,
							  key->col,
							  "duplicate key '%s' (first at line %u)",
							  key->str, node->keys[k]->line);
						break;
					}
				}
				i = skip_ws(c, i) + 1; /* : */
			}
			value = walk(c, ch, &i, depth + 1);
			if (!value)
				return NULL;
			doc_node_append(c->doc, node, key, value);
			i = skip_ws(c, i) + 1; /* , or the closing bracket */
		}
		if (!item->child)
			i = skip_ws(c, i) + 1;
		*pos = i;
		return node;
	}
	if (cJSON_IsString(item)) {
		node = doc_node_new(c->doc, DOC_STRING, c->line, c->col);
		node->str = arena_strdup(c->doc->arena, item->valuestring);
		*pos = skip_string(c, i, &nul);
		if (nul)
			diags_add(c->d, DIAG_ERROR, c->file, node->line, node->col,
				  "expected text, found an escaped NUL character");
		return node;
	}
	if (cJSON_IsNumber(item)) {
		size_t j = i;
		enum doc_kind k = DOC_INT;

		while (j < c->len && strchr("+-0123456789.eE", c->buf[j])) {
			if (c->buf[j] == '.' || c->buf[j] == 'e' || c->buf[j] == 'E')
				k = DOC_FLOAT;
			j++;
		}
		node = doc_node_new(c->doc, k, c->line, c->col);
		node->str = arena_strndup(c->doc->arena, c->buf + i, j - i);
		*pos = j;
		return node;
	}
	if (cJSON_IsBool(item)) {
		node = doc_node_new(c->doc, DOC_BOOL, c->line, c->col);
		node->b = cJSON_IsTrue(item);
		node->str = arena_strdup(c->doc->arena, node->b ? "true" : "false");
		*pos = i + (node->b ? 4 : 5);
		return node;
	}
	node = doc_node_new(c->doc, DOC_NULL, c->line, c->col);
	*pos = i + 4;
	return node;
}

/*
 * A strict JSON syntax check (RFC 8259) run before cJSON, which is lenient
 * (+1, 01, raw control characters) and whose error offset is unreliable (one
 * past a bad key, the last byte instead of the end of the file). It stops at
 * the first error with *at on the offending byte and what was expected there.
 */
struct jsyn {
	const char *buf;
	size_t len, at;
	const char *expected; /* "expected %s" */
	bool too_deep;	      /* nested deeper than DOC_MAX_DEPTH instead */
};

static int
jsyn_fail(struct jsyn *j, const char *expected)
{
	j->expected = expected;
	return -1;
}

static void
jsyn_ws(struct jsyn *j)
{
	while (j->at < j->len && (j->buf[j->at] == ' ' || j->buf[j->at] == '\t' ||
				  j->buf[j->at] == '\n' || j->buf[j->at] == '\r'))
		j->at++;
}

static int
jsyn_hex4(const struct jsyn *j, size_t i, unsigned *cp)
{
	*cp = 0;
	for (size_t k = 0; k < 4; k++) {
		char ch = i + k < j->len ? j->buf[i + k] : '\0';
		unsigned v;

		if (ch >= '0' && ch <= '9')
			v = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v = (unsigned)(ch - 'A' + 10);
		else
			return -1;
		*cp = *cp << 4 | v;
	}
	return 0;
}

static int
jsyn_string(struct jsyn *j)
{
	for (j->at++; j->at < j->len; j->at++) {
		unsigned char ch = (unsigned char)j->buf[j->at];
		unsigned cp, lo;

		if (ch == '"') {
			j->at++;
			return 0;
		}
		if (ch < 0x20)
			return jsyn_fail(j, "'\"' to close the string (a line break or control "
					    "character inside a string must be escaped)");
		if (ch != '\\')
			continue;
		ch = j->at + 1 < j->len ? (unsigned char)j->buf[j->at + 1] : 0;
		if (ch && strchr("\"\\/bfnrt", ch)) {
			j->at++;
			continue;
		}
		if (ch != 'u')
			return jsyn_fail(j, "an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or "
					    "\\uXXXX)");
		if (jsyn_hex4(j, j->at + 2, &cp) < 0)
			return jsyn_fail(j, "\\u and four hex digits");
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return jsyn_fail(j, "a character, not a lone low surrogate");
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (j->at + 7 >= j->len || j->buf[j->at + 6] != '\\' ||
			    j->buf[j->at + 7] != 'u' || jsyn_hex4(j, j->at + 8, &lo) < 0 ||
			    lo < 0xdc00 || lo > 0xdfff)
				return jsyn_fail(j, "a high surrogate followed by a low one "
						    "(\\uD800-\\uDBFF \\uDC00-\\uDFFF)");
			j->at += 6;
		}
		j->at += 5;
	}
	return jsyn_fail(j, "'\"' to close the string");
}

static int
jsyn_digits(struct jsyn *j)
{
	if (j->at >= j->len || j->buf[j->at] < '0' || j->buf[j->at] > '9')
		return jsyn_fail(j, "a digit");
	while (j->at < j->len && j->buf[j->at] >= '0' && j->buf[j->at] <= '9')
		j->at++;
	return 0;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? */
static int
jsyn_number(struct jsyn *j)
{
	if (j->buf[j->at] == '-')
		j->at++;
	if (j->at < j->len && j->buf[j->at] == '0')
		j->at++;
	else if (jsyn_digits(j) < 0)
		return -1;
	if (j->at < j->len && j->buf[j->at] == '.') {
		j->at++;
		if (jsyn_digits(j) < 0)
			return -1;
	}
	if (j->at < j->len && (j->buf[j->at] == 'e' || j->buf[j->at] == 'E')) {
		j->at++;
		if (j->at < j->len && (j->buf[j->at] == '+' || j->buf[j->at] == '-'))
			j->at++;
		if (jsyn_digits(j) < 0)
			return -1;
	}
	return 0;
}

#define JSYN_VALUE "a value (an object, a list, a string, a number, true, false or null)"

static int
jsyn_value(struct jsyn *j, int depth)
{
	static const char *const words[] = { "true", "false", "null" };
	char ch;

	jsyn_ws(j);
	if (j->at >= j->len)
		return jsyn_fail(j, JSYN_VALUE);
	ch = j->buf[j->at];
	if (ch == '{' || ch == '[') {
		char close = ch == '{' ? '}' : ']';

		if (depth >= DOC_MAX_DEPTH) {
			j->too_deep = true;
			return -1;
		}
		j->at++;
		jsyn_ws(j);
		if (j->at < j->len && j->buf[j->at] == close) {
			j->at++;
			return 0;
		}
		for (;;) {
			if (ch == '{') {
				jsyn_ws(j);
				if (j->at >= j->len || j->buf[j->at] != '"')
					return jsyn_fail(j, "a key in double quotes");
				if (jsyn_string(j) < 0)
					return -1;
				jsyn_ws(j);
				if (j->at >= j->len || j->buf[j->at] != ':')
					return jsyn_fail(j, "':' after the key");
				j->at++;
			}
			if (jsyn_value(j, depth + 1) < 0)
				return -1;
			jsyn_ws(j);
			if (j->at < j->len && j->buf[j->at] == ',') {
				j->at++;
				continue;
			}
			if (j->at < j->len && j->buf[j->at] == close) {
				j->at++;
				return 0;
			}
			return jsyn_fail(j, ch == '{' ? "',' or '}' after a member of the object"
						      : "',' or ']' after an item of the list");
		}
	}
	if (ch == '"')
		return jsyn_string(j);
	if (ch == '-' || (ch >= '0' && ch <= '9'))
		return jsyn_number(j);
	for (size_t k = 0; k < 3; k++) {
		size_t n = strlen(words[k]);
		if (j->len - j->at >= n && memcmp(j->buf + j->at, words[k], n) == 0) {
			j->at += n;
			return 0;
		}
	}
	return jsyn_fail(j, JSYN_VALUE);
}

static void
describe_at(const char *buf, size_t len, size_t off, char *out, size_t outlen)
{
	size_t n = 0;

	if (off >= len) {
		snprintf(out, outlen, "the end of the file");
		return;
	}
	while (off + n < len && n < 12 && buf[off + n] != '\n' && buf[off + n] != '\r')
		n++;
	/* never cut a character in two */
	while (off + n < len && ((unsigned char)buf[off + n] & 0xc0) == 0x80)
		n++;
	snprintf(out, outlen, "'%.*s'", (int)n, buf + off);
}

/* Returns 0 when buf is one JSON value, else -1 with one diagnostic. */
static int
jsyn_check(const char *file, const char *buf, size_t len, struct diags *d)
{
	struct jsyn j = { .buf = buf, .len = len };
	unsigned line, col;
	char what[64];
	int rc = jsyn_value(&j, 0);

	if (rc == 0) {
		jsyn_ws(&j);
		if (j.at < len)
			rc = jsyn_fail(&j, "the end of the file");
	}
	if (rc == 0)
		return 0;
	text_position(buf, j.at, &line, &col);
	if (j.too_deep) {
		diags_add(d, DIAG_ERROR, file, line, col, "nesting deeper than %d levels",
			  DOC_MAX_DEPTH);
		return -1;
	}
	describe_at(buf, len, j.at, what, sizeof(what));
	diags_add(d, DIAG_ERROR, file, line, col, "JSON syntax: expected %s, found %s", j.expected,
		  what);
	return -1;
}

int
doc_parse_json(struct doc **out, const char *file, const char *buf, size_t len, struct diags *d)
{
	struct jctx c = { .file = file, .buf = buf, .len = len, .d = d, .line = 1, .col = 1 };
	const char *end = NULL;
	cJSON *root;
	size_t pos = 0, before = d->nerrors;
	unsigned line, col;
	char what[64];

	if (doc_precheck(file, buf, len, d) < 0)
		return -1;
	if (skip_ws(&c, 0) == len) {
		diags_add(d, DIAG_ERROR, file, 1, 1, "expected a JSON object, found an empty file");
		return -1;
	}
	if (jsyn_check(file, buf, len, d) < 0)
		return -1;
	root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (!root) {
		size_t off = end ? (size_t)(end - buf) : 0;
		const char *e = cJSON_GetErrorPtr();

		if (!end && e >= buf && e <= buf + len)
			off = (size_t)(e - buf);
		text_position(buf, off, &line, &col);
		describe_at(buf, len, off, what, sizeof(what));
		diags_add(d, DIAG_ERROR, file, line, col,
			  "JSON syntax: expected a valid JSON value here, found %s", what);
		return -1;
	}
	pos = skip_ws(&c, (size_t)(end - buf));
	if (pos < len) {
		text_position(buf, pos, &line, &col);
		describe_at(buf, len, pos, what, sizeof(what));
		diags_add(d, DIAG_ERROR, file, line, col,
			  "JSON syntax: expected the end of the file, found %s", what);
		cJSON_Delete(root);
		return -1;
	}
	c.doc = xcalloc(1, sizeof(*c.doc));
	c.doc->arena = arena_new();
	pos = 0;
	c.doc->root = walk(&c, root, &pos, 0);
	cJSON_Delete(root);
	if (!c.doc->root || d->nerrors != before) {
		doc_free(c.doc);
		return -1;
	}
	*out = c.doc;
	return 0;
}
