/* YAML reader: libyaml's event stream into a document tree, positions kept. */
#include <string.h>
#include <yaml.h>

#include "plan/doc.h"
#include "util/alloc.h"

struct yctx {
	struct doc *doc;
	yaml_parser_t parser;
	const char *file;
	struct diags *d;
	int depth;
};

static int
is_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* YAML 1.2 core schema, for plain (unquoted) scalars only. */
static enum doc_kind
plain_kind(const char *s)
{
	const char *p = s;
	int digits = 0;

	/* the first byte rules out the words for most scalars: no strcmp for them */
	switch (*s) {
	case '\0': return DOC_NULL;
	case '~':
		if (!s[1])
			return DOC_NULL;
		break;
	case 'n':
	case 'N':
		if (!strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
			return DOC_NULL;
		break;
	case 't':
	case 'T':
		if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
			return DOC_BOOL;
		break;
	case 'f':
	case 'F':
		if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
			return DOC_BOOL;
		break;
	default: break;
	}
	if (*p == '-' || *p == '+')
		p++;
	if (is_digits(p))
		return DOC_INT;
	/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
	while (*p >= '0' && *p <= '9')
		p++, digits++;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9')
			p++, digits++;
	}
	if (!digits)
		return DOC_STRING;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!is_digits(p))
			return DOC_STRING;
		return DOC_FLOAT;
	}
	return *p ? DOC_STRING : DOC_FLOAT;
}

static int parse_node(struct yctx *c, yaml_event_t *ev, struct doc_node **out);

/*
 * A plan is plain maps, lists and scalars: every tag is refused, `!!str` and
 * the bare `!` included (a quoted scalar is the way to write a string), and
 * so is every anchor. Aliases are refused where they occur, so an anchor
 * could only ever be unused; it is refused too, where it is written.
 */
static void
refuse_properties(struct yctx *c, const char *tag, const char *anchor, unsigned line, unsigned col)
{
	if (anchor) {
		diags_add(c->d, DIAG_ERROR, c->file, line, col,
			  "expected a value without an anchor, found the anchor &%s: anchors "
			  "are not supported",
			  anchor);
	}
	if (tag) {
		diags_add(c->d, DIAG_ERROR, c->file, line, col,
			  "expected an untagged value, found the tag %s: tags are not supported "
			  "(quote a value to make it a string)",
			  tag);
	}
}

static int
next_event(struct yctx *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->parser, ev)) {
		const yaml_mark_t *m = &c->parser.problem_mark;
		diags_add(c->d, DIAG_ERROR, c->file, (unsigned)m->line + 1, (unsigned)m->column + 1,
			  "YAML syntax: %s%s%s", c->parser.problem ? c->parser.problem : "error",
			  c->parser.context ? " " : "", c->parser.context ? c->parser.context : "");
		return -1;
	}
	return 0;
}

static int
parse_collection(struct yctx *c, struct doc_node *node, yaml_event_type_t end)
{
	yaml_event_t ev;

	for (;;) {
		struct doc_node *key = NULL, *value = NULL;

		if (next_event(c, &ev) < 0)
			return -1;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (node->kind == DOC_MAP) {
			if (parse_node(c, &ev, &key) < 0)
				return -1;
			if (key->kind == DOC_SEQ || key->kind == DOC_MAP) {
				diags_add(c->d, DIAG_ERROR, c->file, key->line, key->col,
					  "expected a plain key, found %s",
					  doc_kind_name(key->kind));
			} else {
				/* keys are names: `1:` and `true:` are the strings "1" and "true"
				 */
				if (!key->str)
					key->str = arena_strdup(c->doc->arena, "");
				key->kind = DOC_STRING;
				for (size_t i = 0; i < node->n; i++) {
					if (node->keys[i]->str &&
					    strcmp(node->keys[i]->str, key->str) == 0) {
						diags_add(c->d, DIAG_ERROR, c->file, key->line,
							  key->col,
							  "duplicate key '%s' (first at line %u)",
							  key->str, node->keys[i]->line);
						break;
					}
				}
			}
			if (next_event(c, &ev) < 0)
				return -1;
		}
		if (parse_node(c, &ev, &value) < 0)
			return -1;
		doc_node_append(c->doc, node, key, value);
	}
}

/*
 * Consumes ev (already read) and everything up to the end of its node.
 * Problems that leave the event stream intact are reported and parsing goes
 * on, so a file's errors come out together; -1 means the stream is unusable.
 */
static int
parse_node(struct yctx *c, yaml_event_t *ev, struct doc_node **out)
{
	unsigned line = (unsigned)ev->start_mark.line + 1,
		 col = (unsigned)ev->start_mark.column + 1;
	struct doc_node *node;

	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		diags_add(c->d, DIAG_ERROR, c->file, line, col,
			  "expected a value, found an alias (*%s): aliases are not supported",
			  (const char *)ev->data.alias.anchor);
		yaml_event_delete(ev);
		node = doc_node_new(c->doc, DOC_NULL, line, col);
		break;
	case YAML_SCALAR_EVENT: {
		const char *tag = (const char *)ev->data.scalar.tag;
		const char *v = (const char *)ev->data.scalar.value;

		if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag)
			node = doc_node_new(c->doc, plain_kind(v), line, col);
		else
			node = doc_node_new(c->doc, DOC_STRING, line, col);
		refuse_properties(c, tag, (const char *)ev->data.scalar.anchor, line, col);
		node->str = arena_strndup(c->doc->arena, v, ev->data.scalar.length);
		if (strlen(node->str) != ev->data.scalar.length) {
			diags_add(c->d, DIAG_ERROR, c->file, line, col,
				  "expected text, found an escaped NUL character");
		}
		if (node->kind == DOC_BOOL)
			node->b = (v[0] == 't' || v[0] == 'T');
		yaml_event_delete(ev);
		break;
	}
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		int is_map = ev->type == YAML_MAPPING_START_EVENT;
		const char *tag = is_map ? (const char *)ev->data.mapping_start.tag
					 : (const char *)ev->data.sequence_start.tag;
		const char *anchor = is_map ? (const char *)ev->data.mapping_start.anchor
					    : (const char *)ev->data.sequence_start.anchor;

		refuse_properties(c, tag, anchor, line, col);
		yaml_event_delete(ev);
		if (++c->depth > DOC_MAX_DEPTH) {
			diags_add(c->d, DIAG_ERROR, c->file, line, col,
				  "nesting deeper than %d levels", DOC_MAX_DEPTH);
			return -1;
		}
		node = doc_node_new(c->doc, is_map ? DOC_MAP : DOC_SEQ, line, col);
		if (parse_collection(c, node,
				     is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT) < 0)
			return -1;
		c->depth--;
		break;
	}
	default:
		diags_add(c->d, DIAG_ERROR, c->file, line, col, "unexpected YAML event");
		yaml_event_delete(ev);
		return -1;
	}
	*out = node;
	return 0;
}

int
doc_parse_yaml(struct doc **out, const char *file, const char *buf, size_t len, struct diags *d)
{
	struct yctx c = { .file = file, .d = d };
	yaml_event_t ev;
	int rc = -1;
	size_t before = d->nerrors;

	if (doc_precheck(file, buf, len, d) < 0)
		return -1;
	c.doc = xcalloc(1, sizeof(*c.doc));
	c.doc->arena = arena_new();
	yaml_parser_initialize(&c.parser);
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)buf, len);

	if (next_event(&c, &ev) < 0)
		goto out;
	yaml_event_delete(&ev); /* STREAM-START */
	if (next_event(&c, &ev) < 0)
		goto out;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		rc = 0; /* empty file: root stays NULL */
		goto out;
	}
	yaml_event_delete(&ev); /* DOCUMENT-START */
	if (next_event(&c, &ev) < 0)
		goto out;
	if (parse_node(&c, &ev, &c.doc->root) < 0)
		goto out;
	if (next_event(&c, &ev) < 0)
		goto out;
	yaml_event_delete(&ev); /* DOCUMENT-END */
	if (next_event(&c, &ev) < 0)
		goto out;
	if (ev.type != YAML_STREAM_END_EVENT) {
		diags_add(d, DIAG_ERROR, file, (unsigned)ev.start_mark.line + 1,
			  (unsigned)ev.start_mark.column + 1,
			  "expected one YAML document, found a second one");
		yaml_event_delete(&ev);
		goto out;
	}
	yaml_event_delete(&ev);
	rc = d->nerrors == before ? 0 : -1;
out:
	yaml_parser_delete(&c.parser);
	if (rc == 0)
		*out = c.doc;
	else
		doc_free(c.doc);
	return rc;
}
