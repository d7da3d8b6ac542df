#include "plan/doc.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/utf8.h"

int
doc_precheck(const char *file, const char *buf, size_t len, struct diags *d)
{
	const char *nul;
	size_t bad;
	unsigned line, col;

	if (len > DOC_MAX_BYTES) {
		diags_add(d, DIAG_ERROR, file, 0, 0,
			  "file is %zu bytes; a plan may be at most %d bytes", len, DOC_MAX_BYTES);
		return -1;
	}
	nul = memchr(buf, '\0', len);
	if (nul) {
		text_position(buf, (size_t)(nul - buf), &line, &col);
		diags_add(d, DIAG_ERROR, file, line, col,
			  "expected text, found a NUL byte (is this a binary file?)");
		return -1;
	}
	bad = utf8_check(buf, len);
	if (bad != len) {
		text_position(buf, bad, &line, &col);
		diags_add(d, DIAG_ERROR, file, line, col,
			  "expected UTF-8 text, found the byte 0x%02x", (unsigned char)buf[bad]);
		return -1;
	}
	return 0;
}

int
doc_parse(struct doc **out, const char *file, const char *buf, size_t len, struct diags *d)
{
	size_t n = strlen(file);

	if (n >= 5 && strcmp(file + n - 5, ".json") == 0)
		return doc_parse_json(out, file, buf, len, d);
	if (n >= 4 && strcmp(file + n - 4, ".sql") == 0)
		return doc_parse_sql(out, file, buf, len, d);
	return doc_parse_yaml(out, file, buf, len, d);
}

void
doc_free(struct doc *doc)
{
	if (!doc)
		return;
	arena_free(doc->arena);
	free(doc);
}

const char *
doc_kind_name(enum doc_kind k)
{
	switch (k) {
	case DOC_NULL: return "null";
	case DOC_BOOL: return "a boolean";
	case DOC_INT: return "an integer";
	case DOC_FLOAT: return "a number";
	case DOC_STRING: return "a string";
	case DOC_SEQ: return "a list";
	case DOC_MAP: return "a map";
	}
	return "?";
}

struct doc_node *
doc_map_get(const struct doc_node *map, const char *key)
{
	if (!map || map->kind != DOC_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->keys[i]->str, key) == 0)
			return map->items[i];
	return NULL;
}

struct doc_node *
doc_node_new(struct doc *doc, enum doc_kind kind, unsigned line, unsigned col)
{
	struct doc_node *n = arena_alloc(doc->arena, sizeof(*n));

	n->kind = kind;
	n->line = line;
	n->col = col;
	return n;
}

/*
 * Arrays grow when their length reaches a power of two (capacity is that
 * length doubled); the old block is left in the arena.
 */
void
doc_node_append(struct doc *doc, struct doc_node *parent, struct doc_node *key,
		struct doc_node *value)
{
	size_t n = parent->n;

	if ((n & (n - 1)) == 0) {
		size_t cap = n ? n * 2 : 4;
		struct doc_node **items = arena_alloc(doc->arena, cap * sizeof(*items));
		if (n)
			memcpy(items, parent->items, n * sizeof(*items));
		parent->items = items;
		if (parent->kind == DOC_MAP) {
			struct doc_node **keys = arena_alloc(doc->arena, cap * sizeof(*keys));
			if (n)
				memcpy(keys, parent->keys, n * sizeof(*keys));
			parent->keys = keys;
		}
	}
	parent->items[n] = value;
	if (parent->kind == DOC_MAP)
		parent->keys[n] = key;
	parent->n = n + 1;
}
