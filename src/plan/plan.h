/*
 * The T.A.S.K.S. planner's model: a migration plan, its waves and steps, each
 * step's hazard class, SQL and obligations.
 *
 * A plan is read from a YAML or JSON file (plan_load), validated as it is
 * built, then planned for a mode (plan_apply_policy) which fills in the
 * obligations. Everything a plan points to lives in its arena and is freed by
 * plan_free.
 */
#ifndef TS_PLAN_PLAN_H
#define TS_PLAN_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/diag.h"

/* Bump when the canonical form of a step or plan changes (stored in the ledger). */
#define PLAN_HASH_VERSION 1

enum plan_op {
	OP_CREATE_VIEW,
	OP_CREATE_TABLE,
	OP_ADD_COLUMN,
	OP_ADD_INDEX_CONCURRENTLY,
	OP_ADD_FOREIGN_KEY_NOT_VALID,
	OP_ADD_CHECK_NOT_VALID,
	OP_BACKFILL_SQL,
	OP_VALIDATE_CONSTRAINT,
	OP_SET_NOT_NULL,
	OP_DROP_COLUMN,
	OP_DROP_INDEX_CONCURRENTLY,
	OP_DROP_TABLE,
	OP_RENAME_COLUMN,
	OP_RENAME_TABLE,
	OP_SQL,
	OP__COUNT, /* a plan may name the ops above; the ones below it may not */
	/* written only by the planner, as the inverse of a step (plan_inverse.c) */
	OP_DROP_VIEW,
	OP_DROP_CONSTRAINT,
	OP_DROP_NOT_NULL,
	OP__ALL
};

enum plan_wave { WAVE_EXPAND, WAVE_BACKFILL, WAVE_VALIDATE, WAVE_CONTRACT, WAVE__COUNT };

enum plan_hazard { H0, H1, H2, H3 };

/* PostgreSQL's table lock modes, weakest first (the order of their strength). */
enum pg_lock {
	LOCK_NONE,
	LOCK_ACCESS_SHARE,
	LOCK_ROW_SHARE,
	LOCK_ROW_EXCLUSIVE,
	LOCK_SHARE_UPDATE_EXCLUSIVE,
	LOCK_SHARE,
	LOCK_SHARE_ROW_EXCLUSIVE,
	LOCK_EXCLUSIVE,
	LOCK_ACCESS_EXCLUSIVE,
};

enum plan_mode { MODE_PROTECTED, MODE_CHAOS };

/* What the executor does when a step fails (the plan's on_failure field). */
enum plan_on_failure {
	ON_FAILURE_STOP,	  /* stop where it failed (the default) */
	ON_FAILURE_ROLLBACK_WAVE, /* undo the failing wave's completed steps */
	ON_FAILURE_ROLLBACK_PLAN, /* undo every completed step of the plan */
};

/* How the executor runs a step. */
enum plan_exec_kind {
	EXEC_TX,      /* one transaction: checks, statement, proof, ledger row */
	EXEC_NONTX,   /* CREATE/DROP INDEX CONCURRENTLY: outside a transaction */
	EXEC_BATCHED, /* backfill_sql: keyset batches, a transaction each */
};

/* How a step is undone (plan_inverse.c); the zero value means "not worked out". */
enum plan_undo {
	UNDO_UNSET,
	UNDO_INVERSE,	   /* by its inverse, a step of its own */
	UNDO_NOTHING,	   /* there is nothing to undo (undo_reason says why) */
	UNDO_IRREVERSIBLE, /* it cannot be undone (undo_reason says why) */
};

/* -1 means "not set here" (inherit); 0 means "none" for timeouts and rate. */
struct plan_limits {
	int64_t max_lock_ms;
	int64_t max_stmt_ms;
	int64_t rows_per_second;
	int64_t batch_size;
};

struct plan_strv {
	size_t n;
	char **v;
};

/* A default: a constant (kind tells how to write it as SQL) or an expression (default_sql). */
enum plan_const_kind { CONST_NONE, CONST_NULL, CONST_BOOL, CONST_NUMBER, CONST_STRING, CONST_SQL };

struct plan_const {
	enum plan_const_kind kind;
	char *text; /* number as written, "true"/"false", the string's value, or the expression */
	/* CONST_SQL: PostgreSQL evaluates it for every existing row (a volatile or unknown
	 * function) */
	bool per_row;
	char *per_row_fn; /* the function that makes it so */
};

struct plan_coldef {
	char *name;
	char *type;
	bool nullable;
	struct plan_const def;
};

/* The rules of findings on SQL statements (plan_analyze.c); documented in taskslaps-plan(5). */
enum plan_rule_id {
	RULE_INDEX_NOT_CONCURRENT,
	RULE_CONSTRAINT_NOT_VALID,
	RULE_SET_NOT_NULL,
	RULE_VOLATILE_DEFAULT,
	RULE_COLUMN_TYPE,
	RULE_RENAME,
	RULE_DROP,
	RULE_TRUNCATE,
	RULE_SERIAL_COLUMN,
	RULE_UNIQUE_WITHOUT_INDEX,
	RULE_DML_IN_SQL,
	RULE_TABLE_REWRITE,
	PLAN_RULE__COUNT
};

struct plan_rule {
	const char *id;	  /* stable: "S001" */
	const char *name; /* "index-not-concurrent" */
	const char *what; /* the risk, one line */
	const char *fix;  /* the fix, one line */
};

/* A rule silenced on a step, and why (shown, never hidden). */
struct plan_allow {
	enum plan_rule_id rule;
	char *reason;
	unsigned line, col;
};

/* What an sql step's statement does, derived from its parse tree. */
struct plan_sql_effect {
	bool known;	   /* the planner knows the statement */
	enum pg_lock lock; /* strongest lock on a relation that existed before */
	bool rewrites;	   /* may give a table a new relfilenode */
	bool scans;	   /* scans a table under its lock */
	bool nontx;	   /* must run outside a transaction block */
	bool destructive;  /* destroys data or a relation */
	enum plan_hazard hazard;
	const char *reason;
	uint32_t rules; /* bit per enum plan_rule_id: findings */
};

const struct plan_rule *plan_rule(enum plan_rule_id id);
struct plan_step;
/* The reason a step silences rule with (allow:), or NULL when it does not. */
const char *plan_step_allowed(const struct plan_step *s, enum plan_rule_id rule);
int plan_rule_find(const char *id_or_name); /* -1 if unknown */

struct plan_obligations {
	enum pg_lock lock_class_max; /* strongest lock on any relation that existed before */
	bool may_rewrite;	     /* may the step give an existing table a new relfilenode */
	int64_t max_lock_ms;
	int64_t max_stmt_ms;
	int64_t rows_per_second;    /* backfill only */
	int64_t batch_size;	    /* backfill only */
	struct plan_strv prechecks; /* computed first, then the author's */
	struct plan_strv postchecks;
};

struct plan_step {
	enum plan_op op;
	enum plan_wave wave;
	unsigned index;	    /* position inside its wave, from 0 */
	unsigned line, col; /* where the step starts in its file */

	/* fields, as the op uses them (NULL/empty when not used) */
	char *table; /* table, or rename_table's source: identifier */
	char *name;  /* column, index, constraint or view name */
	char *type;
	bool nullable;
	bool unique;
	struct plan_const def;
	char *sql;	 /* create_view's query, backfill_sql, sql */
	char *check;	 /* add_check_not_valid */
	char *where;	 /* add_index_concurrently's partial predicate */
	char *column;	 /* set_not_null */
	char *from, *to; /* renames */
	char *ref_table;
	char *on_delete;	  /* "NO ACTION" "RESTRICT" "CASCADE" "SET NULL" "SET DEFAULT" */
	struct plan_strv columns; /* index or foreign key columns */
	struct plan_strv ref_columns;
	struct plan_strv primary_key;
	struct plan_coldef *coldefs; /* create_table */
	size_t ncoldefs;
	enum pg_lock declared_lock; /* sql: lock_class_max as promised; LOCK_NONE if not given */
	int declared_rewrite; /* sql: may_rewrite as promised: 0 false, 1 true, -1 not given */
	struct plan_sql_effect eff; /* sql: what the statement does, derived */
	bool from_sql_file; /* sql: a statement of a plain .sql plan (checksummed by tokens) */
	/*
	 * sql: the index a CREATE INDEX CONCURRENTLY builds or a DROP INDEX
	 * CONCURRENTLY drops, schema-qualified like its table: computed checks
	 * make a retry after a crash find it (and an INVALID one is rebuilt)
	 */
	char *cic_index, *dic_index;
	char *sql_tokens;	   /* ... its token stream (sql_token_stream) */
	struct plan_allow *allows; /* findings silenced on this step */
	size_t nallows;
	struct plan_strv user_prechecks;
	struct plan_strv user_postchecks;
	struct plan_limits limits; /* as written on the step */

	/* backfill_sql, split by the planner */
	char *bf_table; /* the UPDATE's target */
	char *bf_set;	/* text after SET, up to WHERE */
	char *bf_where; /* text after WHERE, or NULL */

	/* computed */
	enum plan_hazard hazard;
	char *hazard_reason; /* why the hazard is what it is */
	enum plan_exec_kind exec;
	char *stmt;		  /* the SQL statement, identifiers quoted */
	struct plan_strv touched; /* existing tables the step reads or changes */
	char sha[65];
	struct plan_obligations ob; /* filled by plan_apply_policy */

	/*
	 * Undoing it, worked out when the plan is sealed. The inverse is a step
	 * like any other (its own op, statement, hazard, checks, obligations and
	 * step_sha), in the plan's arena. For backfill_sql and sql it is read
	 * from the revert_sql field, so its sql is that field as written.
	 */
	enum plan_undo undo;
	struct plan_step *inverse; /* UNDO_INVERSE */
	const char *undo_reason;   /* UNDO_NOTHING, UNDO_IRREVERSIBLE */
	const char *inverse_of;	   /* on an inverse: the step_sha of the step it undoes */
	/* on a step of a revert plan (plan_revert.c): the reverted plan's step it undoes */
	const struct plan_step *undoes;
};

struct plan_wave_s {
	bool present;
	unsigned line, col;
	struct plan_limits limits;
	struct plan_step *steps;
	size_t nsteps;
	enum plan_hazard max_hazard;
};

struct arena;

struct plan {
	struct arena *arena;
	char *id;
	unsigned id_line, id_col; /* where id: is, or 0 when it comes from the file name */
	char *title;
	char *reason;
	char *path;
	bool flat; /* written as `steps:` rather than `waves:` */
	struct plan_wave_s waves[WAVE__COUNT];
	size_t nsteps;
	enum plan_hazard max_hazard;
	char checksum[65];
	enum plan_on_failure on_failure;
	bool on_failure_given; /* written in the file (only then part of the checksum) */
	unsigned on_failure_line, on_failure_col;
	/* set by plan_apply_policy */
	enum plan_mode mode;
	bool blocked;
	char *blocked_reason;
	/*
	 * A revert plan (`revert:` in the file) undoes the applied steps of the
	 * plan revert_of after the wave to_wave (-1: all of them). It is written
	 * without steps: plan_revert_resolve gives it the inverses of the
	 * reverted plan's steps, last first, as the steps of its one wave
	 * (contract), and owns the reverted plan from then on.
	 */
	char *revert_of;
	unsigned revert_line, revert_col;
	int to_wave;
	unsigned to_wave_line, to_wave_col;
	struct plan *reverted;	      /* owned; set once resolved */
	struct plan_strv revert_kept; /* steps in the range with nothing to undo, and why */
};

/*
 * Builds a plan from the text of a file (path names it in messages and gives
 * the default id). Every problem goes into d. Returns 0 and *out (free with
 * plan_free), or -1 when there was any error.
 */
int plan_parse(struct plan **out, const char *path, const char *buf, size_t len, struct diags *d);
/*
 * Reads path and calls plan_parse; a revert plan is then resolved from the
 * plans of its directory (plan_revert_from_dir). Returns -1 (with a
 * diagnostic) if it cannot be read or is invalid.
 */
int plan_load(struct plan **out, const char *path, struct diags *d);
void plan_free(struct plan *p);

/* The status of a plan undone by a revert plan: "reverted", "reverted to expand", ... */
const char *plan_revert_status(const struct plan *rev);
/*
 * Resolves the revert plan rev against target, the plan it reverts (whose
 * file comes before rev's in the line order): rev's steps become the
 * inverses of target's steps after rev->to_wave, last first, each with a
 * step_sha of its own (derived from rev's id and the inverse); the plan is
 * H3. Takes target in every case (rev owns it, or it is freed). Returns 0,
 * or -1 with every problem in d (an irreversible step in the range, each by
 * name; a target that is itself a revert; nothing to undo after to_wave).
 */
int plan_revert_resolve(struct plan *rev, struct plan *target, struct diags *d);
/*
 * Finds the plan rev reverts among the plan files of rev's directory (by
 * id; it must come before rev's file, and no other revert file before rev
 * may revert it) and resolves rev against it. Returns 0, or -1 with d.
 */
int plan_revert_from_dir(struct plan *rev, struct diags *d);

/* The policy a mode applies; plan_policy_default fills the defaults of docs/contract.md §4. */
struct plan_policy {
	enum plan_mode mode;
	int64_t max_lock_ms;	     /* default for every step */
	int64_t max_stmt_ms;	     /* default for statements that are not long by nature */
	int64_t max_stmt_ms_long;    /* default for index builds and backfill batches */
	int64_t rows_per_second;     /* default backfill rate */
	int64_t batch_size;	     /* default backfill batch */
	enum plan_hazard max_hazard; /* hazards above it are blocked */
};

void plan_policy_default(struct plan_policy *pol, enum plan_mode mode);
/* Fills every step's obligations for pol and decides whether the plan is blocked. */
void plan_apply_policy(struct plan *p, const struct plan_policy *pol);

/* Names, for messages and JSON. */
const char *plan_op_name(enum plan_op op); /* the inverse-only ops too */
int plan_op_from_name(const char *name);   /* the ops a plan may name; -1 if unknown */
const char *plan_wave_name(enum plan_wave w);
int plan_wave_from_name(const char *name);		  /* -1 if unknown */
const char *plan_hazard_name(enum plan_hazard h);	  /* "H0".."H3" */
const char *plan_undo_name(enum plan_undo u);		  /* "inverse", "nothing", "irreversible" */
const char *plan_on_failure_name(enum plan_on_failure f); /* "stop", "rollback_wave", ... */
const char *plan_hazard_label(enum plan_hazard h);	  /* "metadata only", ... */
const char *pg_lock_name(enum pg_lock l); /* "AccessExclusiveLock", as pg_locks.mode */
int pg_lock_from_name(const char *name);  /* accepts pg_locks names and SQL spellings; -1 */
enum plan_wave plan_op_wave(enum plan_op op);

/* Whether a string is a plain SQL identifier, optionally schema-qualified. */
bool plan_ident_ok(const char *s, bool allow_schema);
/* Whether a string is a plain type name (words, optional (n[,m]), optional []). */
bool plan_type_ok(const char *s);

#endif
