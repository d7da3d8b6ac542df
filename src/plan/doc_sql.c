/*
 * A plain SQL migration as a plan document: NNNN-name.sql becomes the tree a
 * flat YAML plan would give,
 *
 *   { title, reason, steps: [ {op: sql, sql: <statement>, wave: <wave>}, ... ] }
 *
 * one `sql` step per statement, each node at the statement's own line and
 * column, so the planner reads, analyses and reports on it like any step.
 * `-- title:` and `-- reason:` comment lines before the first statement give
 * the title and reason (default: the file's name, and "plain SQL migration").
 *
 * A statement goes to the wave of what it does (additions to expand, row
 * changes to backfill, validations to validate, the rest to contract), but
 * never before a statement above it: the file's order is kept, so a wave is
 * the latest of its own and its predecessors'.
 */
#include "sql/sql_pg.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "plan/doc.h"
#include "plan/plan.h"
#include "util/alloc.h"
#include "util/utf8.h"

/* An ALTER TABLE that only adds, or changes what does not block (expand), or validates. */
static enum plan_wave
alter_wave(const AlterTableStmt *a)
{
	enum plan_wave w = WAVE_EXPAND;

	for (int i = 0; i < list_length(a->cmds); i++) {
		const AlterTableCmd *c = list_nth(a->cmds, i);

		if (!IsA(c, AlterTableCmd))
			return WAVE_CONTRACT;
		switch (c->subtype) {
		case AT_AddColumn:
		case AT_ColumnDefault:
		case AT_SetStatistics:
		case AT_SetOptions:
		case AT_ResetOptions:
		case AT_SetRelOptions:
		case AT_ResetRelOptions:
		case AT_DropNotNull: break;
		case AT_AddConstraint:
			/* NOT VALID adds; a constraint checked as it is added validates */
			if (c->def && IsA(c->def, Constraint) &&
			    !((const Constraint *)c->def)->skip_validation && w < WAVE_VALIDATE)
				w = WAVE_VALIDATE;
			break;
		case AT_ValidateConstraint:
		case AT_SetNotNull:
			if (w < WAVE_VALIDATE)
				w = WAVE_VALIDATE;
			break;
		default: return WAVE_CONTRACT;
		}
	}
	return w;
}

static enum plan_wave
doc_sql_wave(const Node *n)
{
	switch (nodeTag(n)) {
	case T_CreateStmt:
	case T_IndexStmt:
	case T_ViewStmt:
	case T_CreateFunctionStmt:
	case T_CreateEnumStmt:
	case T_DefineStmt:
	case T_CompositeTypeStmt:
	case T_CreateDomainStmt:
	case T_CreateSeqStmt:
	case T_CreateSchemaStmt:
	case T_CreateTrigStmt:
	case T_CreateTableAsStmt:
	case T_CreateStatsStmt:
	case T_CommentStmt:
	case T_GrantStmt: return WAVE_EXPAND;
	case T_AlterEnumStmt:
		return sql_str_empty(((const AlterEnumStmt *)n)->oldVal) ? WAVE_EXPAND
									 : WAVE_CONTRACT;
	case T_AlterTableStmt: return alter_wave((const AlterTableStmt *)n);
	case T_InsertStmt:
	case T_UpdateStmt:
	case T_DeleteStmt:
	case T_MergeStmt: return WAVE_BACKFILL;
	default: return WAVE_CONTRACT;
	}
}

static struct doc_node *
str_node(struct doc *doc, const char *s, size_t len, unsigned line, unsigned col)
{
	struct doc_node *n = doc_node_new(doc, DOC_STRING, line, col);

	n->str = arena_strndup(doc->arena, s, len);
	return n;
}

static void
put(struct doc *doc, struct doc_node *map, const char *key, struct doc_node *v)
{
	doc_node_append(doc, map, str_node(doc, key, strlen(key), v->line, v->col), v);
}

/* `-- title: ...` and `-- reason: ...` among the comment lines before the first statement. */
static void
headers(struct doc *doc, struct doc_node *root, const char *buf, size_t first)
{
	static const char *const keys[] = { "title", "reason" };
	size_t i = 0;
	unsigned line = 1;

	while (i < first) {
		size_t e = i;
		while (e < first && buf[e] != '\n')
			e++;
		for (size_t k = 0; k < 2; k++) {
			size_t kl = strlen(keys[k]), p = i;
			if (strncmp(buf + p, "--", 2) != 0)
				break;
			p += 2;
			while (p < e && buf[p] == ' ')
				p++;
			if (e - p > kl && !strncmp(buf + p, keys[k], kl) && buf[p + kl] == ':' &&
			    !doc_map_get(root, keys[k])) {
				size_t v = p + kl + 1, ve = e;
				while (v < ve && isspace((unsigned char)buf[v]))
					v++;
				while (ve > v && isspace((unsigned char)buf[ve - 1]))
					ve--;
				put(doc, root, keys[k],
				    str_node(doc, buf + v, ve - v, line, (unsigned)(v - i) + 1));
			}
		}
		i = e + 1;
		line++;
	}
}

/* The file's name without directory, number prefix and extension: its default title. */
static void
default_title(struct doc *doc, struct doc_node *root, const char *file)
{
	const char *b = strrchr(file, '/'), *dot;
	struct doc_node *n;

	b = b ? b + 1 : file;
	dot = strrchr(b, '.');
	n = str_node(doc, b, dot ? (size_t)(dot - b) : strlen(b), 1, 1);
	put(doc, root, "title", n);
}

int
doc_parse_sql(struct doc **out, const char *file, const char *buf, size_t len, struct diags *d)
{
	struct doc *doc;
	struct doc_node *root, *steps;
	struct sql_tree t;
	struct sql_msg m;
	char *text;
	enum plan_wave wave = WAVE_EXPAND;
	unsigned line, col;
	size_t first;

	if (doc_precheck(file, buf, len, d) < 0)
		return -1;
	text = xmalloc(len + 1);
	memcpy(text, buf, len);
	text[len] = '\0';
	if (sql_parse(&t, text, &m) < 0) {
		text_position(text, m.off, &line, &col);
		diags_add(d, DIAG_ERROR, file, line, col, "sql: %s", m.text);
		free(text);
		return -1;
	}
	doc = xcalloc(1, sizeof(*doc));
	doc->arena = arena_new();
	root = doc->root = doc_node_new(doc, DOC_MAP, 1, 1);
	first = t.stmts ? (size_t)linitial_node(RawStmt, t.stmts)->stmt_location : len;
	/* the first statement's location includes the comments before it */
	{
		size_t k = first;
		while (k < len && (isspace((unsigned char)text[k]) ||
				   (text[k] == '-' && k + 1 < len && text[k + 1] == '-'))) {
			if (text[k] == '-')
				while (k < len && text[k] != '\n')
					k++;
			else
				k++;
		}
		headers(doc, root, text, k);
	}
	if (!doc_map_get(root, "title"))
		default_title(doc, root, file);
	if (!doc_map_get(root, "reason"))
		put(doc, root, "reason", str_node(doc, "plain SQL migration", 19, 1, 1));
	steps = doc_node_new(doc, DOC_SEQ, 1, 1);
	put(doc, root, "steps", steps);
	for (int i = 0; i < list_length(t.stmts); i++) {
		const RawStmt *r = list_nth_node(RawStmt, t.stmts, i);
		size_t s = (size_t)r->stmt_location,
		       e = r->stmt_len ? s + (size_t)r->stmt_len : len;
		struct doc_node *step;
		enum plan_wave w;

		/* from the statement's first token, not the comments and blanks before it */
		while (s < e) {
			if (isspace((unsigned char)text[s])) {
				s++;
			} else if (text[s] == '-' && text[s + 1] == '-') {
				while (s < e && text[s] != '\n' && text[s] != '\r')
					s++;
			} else if (text[s] == '/' && text[s + 1] == '*') {
				const char *c = strstr(text + s + 2, "*/");
				s = c ? (size_t)(c - text) + 2 : e;
			} else {
				break;
			}
		}
		text_position(text, s, &line, &col);
		step = doc_node_new(doc, DOC_MAP, line, col);
		put(doc, step, "op", str_node(doc, "sql", 3, line, col));
		put(doc, step, "sql", str_node(doc, text + s, e - s, line, col));
		w = doc_sql_wave(r->stmt);
		if (w > wave)
			wave = w;
		put(doc, step, "wave",
		    str_node(doc, plan_wave_name(wave), strlen(plan_wave_name(wave)), line, col));
		doc_node_append(doc, steps, NULL, step);
	}
	sql_tree_free(&t);
	free(text);
	*out = doc;
	return 0;
}
