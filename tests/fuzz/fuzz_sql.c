/*
 * libFuzzer target for the SQL reader (src/sql): the first byte of an input
 * picks what the rest is read as (a check expression, a column type, a
 * backfill UPDATE, an `sql` statement, a default_sql expression). Beyond "no
 * crash, no leak", it checks the reader's promise: a fragment it accepts
 * stays in its place in the statement built around it. An accepted check
 * inside `ALTER TABLE ... CHECK (<check>) NOT VALID` must read back as one
 * AlterTableStmt with one subcommand; an accepted type inside ADD COLUMN the
 * same; an accepted UPDATE split into SET and WHERE must rebuild as one UPDATE
 * of the same table. A violation aborts (a finding). Every statement the
 * reader accepts is also walked whole (sql_walk, sql_walk_rangevars,
 * sql_volatility), as the planner walks an `sql` step's statement: the walk
 * is table-driven (src/sql/sql_walk.c) and must get through any tree
 * PostgreSQL's grammar builds.
 *
 *   build/asan/tests/fuzz/fuzz_sql corpus tests/fuzz/seeds/sql -dict=tests/fuzz/sql.dict
 */
#include "sql/sql_pg.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether text is one statement whose node is kind, with (for ALTER TABLE) one subcommand. */
static bool
one_of(const char *text, NodeTag kind)
{
	struct sql_tree t;
	struct sql_msg m;
	const Node *n;
	bool ok;

	if (sql_parse(&t, text, &m) < 0)
		return false;
	n = sql_tree_one(&t, text, &m);
	ok = n && nodeTag(n) == kind &&
	     (kind != T_AlterTableStmt || list_length(((const AlterTableStmt *)n)->cmds) == 1);
	sql_tree_free(&t);
	return ok;
}

static bool
count_node(const Node *n, void *ctx)
{
	(void)n;
	(*(size_t *)ctx)++;
	return true;
}

static bool
count_rangevar(const RangeVar *rv, void *ctx)
{
	if (!rv->relname)
		abort();
	(*(size_t *)ctx)++;
	return true;
}

/* The concatenation of up to five strings (NULL ends the list early). */
static char *
cat5(const char *a, const char *b, const char *c, const char *d, const char *e)
{
	const char *v[5] = { a, b, c, d, e };
	size_t n = 0;
	char *out;

	for (int i = 0; i < 5 && v[i]; i++)
		n += strlen(v[i]);
	out = xmalloc(n + 1);
	out[0] = '\0';
	for (int i = 0; i < 5 && v[i]; i++)
		strcat(out, v[i]);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sql_msg m;
	struct arena *a;
	char *s, *built = NULL, *table, *set, *where;
	bool serial;
	enum sql_volatility vol;
	char fn[64];

	if (size < 1 || size > 4096)
		return 0;
	s = xmalloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 5) {
	case 0:
		if (sql_check_expr(s, true, &m)) {
			built = cat5("ALTER TABLE t ADD CONSTRAINT c CHECK (", s,
				     strstr(s, "--") ? "\n)" : ")", " NOT VALID", NULL);
			if (!one_of(built, T_AlterTableStmt))
				abort();
		}
		break;
	case 1:
		if (sql_check_type(s, &serial, &m)) {
			built = cat5("ALTER TABLE t ADD COLUMN c ", s, NULL, NULL, NULL);
			if (!one_of(built, T_AlterTableStmt))
				abort();
		}
		break;
	case 2:
		a = arena_new();
		if (sql_split_update(a, s, &table, &set, &where, &m)) {
			built = cat5("UPDATE t SET ", set, " WHERE (", where ? where : "true",
				     strstr(where ? where : "", "--") ? "\n) AND id <= 1"
								      : ") AND id <= 1");
			if (!sql_is_batch_update(built, "t", &m))
				abort();
		}
		arena_free(a);
		break;
	case 3: {
		struct sql_tree t;
		const Node *n;
		size_t len, nodes = 0, rels = 0;
		if (sql_check_stmt(s, &t, &n, &len, &m)) {
			/* the walk gets through the whole tree: every node, every RangeVar */
			if (!sql_walk(n, count_node, &nodes) || nodes == 0 ||
			    !sql_walk_rangevars(n, count_rangevar, &rels))
				abort();
			(void)sql_volatility(n, NULL, NULL);
			if (!sql_stmt_name(n))
				abort();
			sql_tree_free(&t);
		}
		break;
	}
	case 4:
		(void)sql_check_default(s, &vol, fn, sizeof(fn), &m);
		(void)sql_string_looks_evaluated(s);
		break;
	}
	free(built);
	free(s);
	return 0;
}
