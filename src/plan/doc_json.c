/*
 * JSON reader. cJSON checks the syntax and decodes strings; cJSON keeps no
 * positions, so a second walk over the (now known to be valid) text, in step
 * with cJSON's tree, records where every value and key starts.
 */
#include <cjson/cJSON.h>
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
	while (i < c->len && (c->buf[i] == ' ' || c->buf[i] == '\t' || c->buf[i] == '\n' ||
			      c->buf[i] == '\r'))
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
		diags_add(c->d, DIAG_ERROR, c->file, c->line, c->col, "nesting deeper than %d levels",
			  DOC_MAX_DEPTH);
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
	snprintf(out, outlen, "'%.*s'", (int)n, buf + off);
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
