/*
 * The SQL reader: PostgreSQL 15's own grammar, through libpg_query. Every SQL
 * text a plan carries, and every statement the planner and executor build
 * from it, is read here before it can reach a database.
 *
 * A text is parsed into PostgreSQL's raw parse tree: libpg_query's own
 * raw-tree interface hands out the tree PostgreSQL's grammar builds, with the
 * node structs of PostgreSQL 15's server headers. Files that look into a
 * tree include sql/sql_pg.h (the only one to include PostgreSQL's headers);
 * the others see only the opaque struct Node, List and RangeVar below.
 * sql_walk visits every node of a subtree.
 *
 * Errors are PostgreSQL's own messages ("syntax error at or near ...") or
 * ours, with the byte offset in the text they point at.
 */
#ifndef TS_SQL_SQL_H
#define TS_SQL_SQL_H

#include <stdbool.h>
#include <stddef.h>

struct arena;
/* PostgreSQL's node structs (sql/sql_pg.h), opaque to everyone else. */
struct Node;
struct List;
struct RangeVar;
struct MemoryContextData;

/* A message about a text, and the byte offset in that text it points at. */
struct sql_msg {
	char text[320];
	size_t off;
};

/*
 * A parsed text: PostgreSQL's raw parse tree, a List of RawStmt (NULL when
 * the text holds no statement), in a memory context of its own that
 * sql_tree_free deletes. ctx is NULL when parsing failed or after the free.
 */
struct sql_tree {
	struct MemoryContextData *ctx;
	struct List *stmts;
};

/*
 * Parses text (NUL-terminated). Returns 0 and fills *out (free with
 * sql_tree_free), or -1 with PostgreSQL's message and its position in *m.
 */
int sql_parse(struct sql_tree *out, const char *text, struct sql_msg *m);
void sql_tree_free(struct sql_tree *t);

/*
 * The parser keeps a memory context per thread, which libpg_query frees
 * itself when the thread ends (a thread-specific key's destructor): calling
 * pg_query_exit() as well would free it twice. A tree's own context is a
 * child of that thread's top context: a tree is freed by the thread that
 * parsed it.
 */

/* The one statement of t, or NULL (with *m) when t holds none or several. */
const struct Node *sql_tree_one(const struct sql_tree *t, const char *text, struct sql_msg *m);
/*
 * sql_parse and sql_tree_one: the one statement of text, *t to free once
 * done with it; or NULL with *m, and *t already freed.
 */
const struct Node *sql_parse_one(struct sql_tree *t, const char *text, struct sql_msg *m);

/*
 * Visits every node below (and including) n, depth first, each node's
 * children in the order its struct declares them; stops when fn returns
 * false. A node held in a field of a node type of its own (a statement's
 * RangeVar, a CALL's FuncCall) is walked into but not given to fn: fn sees
 * the nodes held as Node or in a List.
 */
typedef bool (*sql_visit_fn)(const struct Node *n, void *ctx);
bool sql_walk(const struct Node *n, sql_visit_fn fn, void *ctx);
/*
 * Visits every RangeVar below n, held as a Node or not (a statement's own
 * relation is a field of its own); stops when fn returns false.
 */
typedef bool (*sql_rangevar_fn)(const struct RangeVar *rv, void *ctx);
bool sql_walk_rangevars(const struct Node *n, sql_rangevar_fn fn, void *ctx);
/*
 * The walks recurse once a level: a tree deeper than SQL_MAX_DEPTH levels
 * (1+1+...+1 nests a level a term) is refused by sql_parse, so no walk can
 * exhaust a thread's stack. Only a text of SQL_DEPTH_CHECK_BYTES or more
 * can nest that deep (a level takes a token), so only such a text is
 * measured. sql_depth_within: whether n nests max levels at most.
 */
#define SQL_MAX_DEPTH 10000
#define SQL_DEPTH_CHECK_BYTES 8000
bool sql_depth_within(const struct Node *n, int max);
/* The name libpg_query gives a statement's node type ("create_foreign_table_stmt"), or "?". */
const char *sql_stmt_name(const struct Node *n);

/* Volatility of an expression, as PostgreSQL would judge the functions it calls. */
enum sql_volatility { SQL_IMMUTABLE_OR_STABLE, SQL_VOLATILE, SQL_UNKNOWN_FUNCTION };

/*
 * The most volatile function an expression tree calls: SQL_VOLATILE for a
 * built-in volatile one (set_config, nextval, random, ...), SQL_UNKNOWN_FUNCTION
 * for one that is not built in (its volatility is not known offline).
 * *fname (may be NULL) names the first such function; *loc its location.
 */
enum sql_volatility sql_volatility(const struct Node *expr, const char **fname, int *loc);
/* Whether name is a built-in function of PostgreSQL 15 that is volatile. */
bool sql_builtin_volatile(const char *name);

/* --- fragments an author writes ----------------------------------------- */

/*
 * An expression (check, where, pre/postcheck): exactly one value expression,
 * nothing around it. no_volatile refuses calls of built-in volatile functions
 * (checks must not change what they check). Returns true when fine.
 */
bool sql_check_expr(const char *frag, bool no_volatile, struct sql_msg *m);

/*
 * One statement (an `sql` step, a view's query), an optional `;` after it.
 * *len is the length of the statement without the `;` and trailing blanks.
 * *stmt (may be NULL) gets the statement node, valid while *t lives: t is
 * filled only when the function returns true (free it with sql_tree_free).
 */
bool sql_check_stmt(const char *frag, struct sql_tree *t, const struct Node **stmt, size_t *len,
		    struct sql_msg *m);

/*
 * A backfill's `UPDATE table SET ... [WHERE ...]`, taken apart by its parse
 * tree: the table as written (schema.name), and the author's text of the SET
 * list and of the WHERE condition (NULL when absent), copied into a.
 */
bool sql_split_update(struct arena *a, const char *sql, char **table, char **set, char **where,
		      struct sql_msg *m);

/*
 * Whether sql is exactly one UPDATE of table (schema.name as validated) with
 * a WHERE, no FROM, RETURNING or WITH: a backfill batch as the executor builds it.
 */
bool sql_is_batch_update(const char *sql, const char *table, struct sql_msg *m);
/* Whether n is a check as the executor wraps it: (check)::boolean. */
bool sql_is_bool_cast(const struct Node *n);
/*
 * Whether sql is exactly the executor's guard over n checks (prechecks sent
 * in the statement's own round trip): one SELECT, of one CASE whose one
 * WHEN is the n checks, each cast to boolean, joined by AND (the check
 * alone when n is 1), with an ELSE; no FROM, WHERE or anything else.
 */
bool sql_is_checks_guard(const char *sql, size_t n, struct sql_msg *m);
/*
 * Whether sql is exactly one plain SELECT from table alone (no WITH, no
 * locking clause, no set operation): a backfill's key query.
 */
bool sql_is_key_query(const char *sql, const char *table, struct sql_msg *m);

/* A column type: one TypeName and nothing else. *serial: serial, bigserial, ... */
bool sql_check_type(const char *frag, bool *serial, struct sql_msg *m);

/*
 * A column default expression (default_sql). *volatility says whether
 * PostgreSQL must evaluate it for every existing row (a table rewrite);
 * fname gets the name of the function that decided it ("" when none).
 */
bool sql_check_default(const char *frag, enum sql_volatility *volatility, char *fname,
		       size_t fname_len, struct sql_msg *m);

/* Whether a string constant looks like an expression meant to be evaluated ("now()", "today"). */
bool sql_string_looks_evaluated(const char *s);

/*
 * The statement as PostgreSQL's scanner reads it, for a checksum that a
 * reformatting does not change: its tokens, comments and blanks dropped,
 * keywords and unquoted identifiers lower-cased (PostgreSQL folds them),
 * constants and quoted identifiers exactly as written, one space between.
 * Copied into a; NULL when the scanner refuses the text.
 */
char *sql_token_stream(struct arena *a, const char *sql);

/*
 * The transaction-local setting in which a backfill batch passes its last
 * key from its keys to its UPDATE (src/exec/exec_backfill.c): a backfill's
 * SQL that names it or calls set_config could move the bound, so the
 * planner refuses such SQL and the executor's read-back does too.
 */
#define SQL_BATCH_SETTING "taskslaps.batch_hi"
/*
 * Whether n is a call of set_config that may set `setting`: its name is not
 * written out as a string constant, or is that one (in any case). A call
 * that names another setting (set_config('audit.actor', ...)) cannot.
 */
bool sql_set_config_may_set(const struct Node *n, const char *setting);

/*
 * The executor's computed checks with their names as parameters: every
 * plain string literal ('...' without quote or backslash) given as an
 * argument to a call of one of the taskslaps helpers whose string
 * parameters are all text becomes $k::pg_catalog.text (k from first, in the
 * text's order), and *values gets their texts. Returns how many (0: nothing
 * lifted, *out and *values NULL, also when the lifted text would not read
 * back as one statement), or -1 when sql is not one statement that parses.
 * *out and *values are the caller's (free *values with sql_lift_free). The
 * lifted text means what sql means: the server reads an unknown literal
 * given to a text parameter as text, as it reads $k::pg_catalog.text.
 */
int sql_lift_helper_args(const char *sql, int first, char **out, char ***values);
void sql_lift_free(char **values, int n);

/* --- names ---------------------------------------------------------------- */

/* "name" or "schema"."name" for a validated identifier. */
char *sql_quote_ident(struct arena *a, const char *ident);
/* 'text' (E'...' when it holds a backslash), quotes doubled. */
char *sql_quote_literal(struct arena *a, const char *text);
/* Whether rv names ident ("name" or "schema.name", as the planner validated it). */
bool sql_rangevar_is(const struct RangeVar *rv, const char *ident);
/* The string of a String node, or NULL. */
const char *sql_node_str(const struct Node *n);

#endif
