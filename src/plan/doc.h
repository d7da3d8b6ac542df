/*
 * The document tree: what a YAML or a JSON plan file says, before it means
 * anything. Both readers produce this tree, with the line and column of every
 * node and every map key, so the plan builder can point at the offending
 * value whichever syntax the author used.
 */
#ifndef TS_PLAN_DOC_H
#define TS_PLAN_DOC_H

#include <stdbool.h>
#include <stddef.h>

#include "util/diag.h"

/* Plan files larger than this are refused: a plan is a page, not a data dump. */
#define DOC_MAX_BYTES (1024 * 1024)
/* Deeper nesting than this is refused (a plan needs 6 levels). */
#define DOC_MAX_DEPTH 64

enum doc_kind { DOC_NULL, DOC_BOOL, DOC_INT, DOC_FLOAT, DOC_STRING, DOC_SEQ, DOC_MAP };

struct doc_node {
	enum doc_kind kind;
	unsigned line, col;
	char *str;		 /* scalars: the value's text (numbers as written) */
	bool b;			 /* DOC_BOOL */
	size_t n;		 /* DOC_SEQ items or DOC_MAP pairs */
	struct doc_node **items; /* DOC_SEQ: items; DOC_MAP: values */
	struct doc_node **keys;	 /* DOC_MAP: keys (DOC_STRING nodes) */
};

struct arena;

struct doc {
	struct arena *arena;   /* owns every node */
	struct doc_node *root; /* NULL for an empty document */
};

/*
 * Reads buf (len bytes, named file in messages) as YAML or JSON. Checks size,
 * NUL bytes and UTF-8 first. On success *out is a new tree (free with
 * doc_free) and 0 is returned; otherwise every problem found is in d and -1
 * is returned.
 */
int doc_parse_yaml(struct doc **out, const char *file, const char *buf, size_t len,
		   struct diags *d);
int doc_parse_json(struct doc **out, const char *file, const char *buf, size_t len,
		   struct diags *d);
/*
 * A plain SQL migration (doc_sql.c): one `sql` step per statement, each at
 * its own line and column, in the wave of what it does.
 */
int doc_parse_sql(struct doc **out, const char *file, const char *buf, size_t len, struct diags *d);
/* Picks the reader by the file name's extension (.json, .sql, else YAML). */
int doc_parse(struct doc **out, const char *file, const char *buf, size_t len, struct diags *d);
void doc_free(struct doc *doc);

/* The checks every reader makes before parsing: size, NUL, UTF-8. Returns 0 or -1. */
int doc_precheck(const char *file, const char *buf, size_t len, struct diags *d);

/* "a string", "a map", ...: for "expected X, found Y" messages. */
const char *doc_kind_name(enum doc_kind k);
/* The value under key in a map (borrowed), or NULL. */
struct doc_node *doc_map_get(const struct doc_node *map, const char *key);

/* Internal to the readers: allocate a node in doc's arena. */
struct doc_node *doc_node_new(struct doc *doc, enum doc_kind kind, unsigned line, unsigned col);
void doc_node_append(struct doc *doc, struct doc_node *parent, struct doc_node *key,
		     struct doc_node *value);

#endif
