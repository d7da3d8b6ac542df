/* Internal to the plan module: shared between its files, not its users. */
#ifndef TS_PLAN_INT_H
#define TS_PLAN_INT_H

#include <cjson/cJSON.h>

#include "plan/plan.h"

/* Computes a built step's hazard, exec kind, SQL, lock and checks (plan_ops.c). */
void plan_step_finish(struct plan *p, struct plan_step *s);

struct sql_msg;
struct arena;
struct Node;
/* Derives what an sql step's statement does (plan_analyze.c). */
void plan_sql_analyze(struct arena *a, const struct Node *stmt, struct plan_sql_effect *e);
/*
 * Reads a finished step's statement and checks back with PostgreSQL's parser
 * and checks the tree is the op's promise (plan_shape.c). False with *m when not.
 */
bool plan_shape_check(const struct plan_step *s, struct sql_msg *m);

/*
 * The step a revert_sql field is read into (plan_build.c reads it like the
 * op's own sql): s's inverse to be, of the same op, at line:col. In p's arena.
 */
struct plan_step *plan_inverse_revert(struct plan *p, struct plan_step *s, unsigned line,
				      unsigned col);
/*
 * Works out how a finished step (its sha set) is undone (plan_inverse.c):
 * builds, finishes, reads back and hashes its inverse, or says why there is
 * none. Returns 0, or -1 with *m when the inverse does not read back as its
 * op (s->inverse then says where).
 */
int plan_inverse_build(struct plan *p, struct plan_step *s, struct sql_msg *m);

/*
 * The step as written, defaults filled in: the "step" of its step_sha and the
 * plan checksum (plan_json.c). Caller owns the result.
 */
cJSON *plan_step_fields_json(const struct plan_step *s);
/* {set limits only}; caller owns it. */
cJSON *plan_limits_json(const struct plan_limits *l);

/*
 * The op table (plan_ops.c): one entry per op, indexed by enum plan_op, with
 * everything the planner knows of the op but its read-back (plan_shape.c),
 * its inverse (plan_inverse.c) and its canonical form (plan_json.c).
 */

/* How a field's value is read and what it is stored as (plan_fields.c). */
enum plan_fkind {
	FK_IDENT,	/* char *: a plain identifier */
	FK_QIDENT,	/* char *: an identifier, optionally schema-qualified */
	FK_TYPE,	/* char *: a column type */
	FK_BOOL,	/* bool */
	FK_TRIBOOL,	/* int: 0 false, 1 true (the step's default says "not written") */
	FK_EXPR,	/* char *: an SQL boolean expression, no volatile function */
	FK_QUERY,	/* char *: a query (SELECT, WITH, VALUES, TABLE) */
	FK_STMT,	/* char *: one statement; also the step's eff, touched, cic/dic_index */
	FK_UPDATE,	/* char *: one UPDATE; also the step's bf_table, bf_set, bf_where */
	FK_CONST,	/* struct plan_const: a constant default */
	FK_DEFAULT_SQL, /* struct plan_const: a default as an SQL expression */
	FK_IDENTS,	/* struct plan_strv: distinct column names */
	FK_COLDEFS,	/* struct plan_coldef *: create_table's columns; also ncoldefs */
	FK_LOCK,	/* enum pg_lock: a lock mode */
	FK_ONDELETE,	/* char *: a referential action */
	FK_WAVE,	/* enum plan_wave: the step's wave, written (sql) */
	FK_INT,		/* int64_t from min to max */
	FK_CHECKS,	/* struct plan_strv: SQL boolean expressions */
	FK_LIMITS,	/* struct plan_limits */
	FK_ALLOWS,	/* struct plan_allow *: silenced findings; also nallows */
	FK__COUNT
};

/* One field a map accepts: a step's field, a column's, a limit. */
struct plan_field {
	const char *name;
	enum plan_fkind kind;
	bool required;
	bool inverse;	  /* read into the step that undoes this one (revert_sql) */
	size_t off;	  /* where the value goes: offsetof() in the struct being read */
	int64_t min, max; /* FK_INT: the bounds */
};

#define PLAN_MAXF 7

struct plan_bctx;
struct strbuf;
struct doc_node;

/*
 * What an op's statement must read back as in PostgreSQL's parse tree
 * (plan_shape.c): every statement the planner builds is parsed again and
 * refused when its tree is not exactly the op's promise.
 */
enum plan_shape_kind {
	SHAPE_UNSET, /* the table's test refuses it */
	SHAPE_ANY,   /* sql: the author's statement, which the analyser reads */
	/* ALTER TABLE <the step's table> with the one subcommand .sub naming .name_off */
	SHAPE_ALTER,
	/* DROP <.object> [CONCURRENTLY] <.name_off>, no IF EXISTS, RESTRICT */
	SHAPE_DROP,
	SHAPE_HOOK, /* .hook checks the tree */
};
/* The ALTER TABLE subcommands and the objects of DROP that ops build. */
enum plan_shape_sub {
	SHAPE_SUB_VALIDATE_CONSTRAINT,
	SHAPE_SUB_SET_NOT_NULL,
	SHAPE_SUB_DROP_NOT_NULL,
	SHAPE_SUB_DROP_COLUMN,
	SHAPE_SUB_DROP_CONSTRAINT,
	SHAPE_SUB__COUNT
};
enum plan_shape_object { SHAPE_OBJ_TABLE, SHAPE_OBJ_INDEX, SHAPE_OBJ_VIEW, SHAPE_OBJ__COUNT };
struct Node; /* PostgreSQL's parse tree node (sql/sql_pg.h) */
struct plan_step;
struct plan_shape {
	enum plan_shape_kind kind;
	enum plan_shape_sub sub;       /* SHAPE_ALTER */
	enum plan_shape_object object; /* SHAPE_DROP */
	bool concurrent;	       /* SHAPE_DROP: DROP ... CONCURRENTLY */
	size_t name_off;	       /* the char * member of struct plan_step it names */
	bool (*hook)(const struct Node *n, const struct plan_step *s); /* SHAPE_HOOK */
};
/* The hooks (plan_shape.c). */
bool plan_shape_create_view(const struct Node *n, const struct plan_step *s);
bool plan_shape_create_table(const struct Node *n, const struct plan_step *s);
bool plan_shape_add_column(const struct Node *n, const struct plan_step *s);
bool plan_shape_add_index(const struct Node *n, const struct plan_step *s);
bool plan_shape_add_foreign_key(const struct Node *n, const struct plan_step *s);
bool plan_shape_add_check(const struct Node *n, const struct plan_step *s);
bool plan_shape_backfill(const struct Node *n, const struct plan_step *s);
bool plan_shape_rename_column(const struct Node *n, const struct plan_step *s);
bool plan_shape_rename_table(const struct Node *n, const struct plan_step *s);

struct plan_opdef {
	const char *name; /* as written in a plan; NULL for the OP__COUNT gap */
	bool plannable;	  /* a plan may name it (the others are inverses only) */
	enum plan_wave wave;
	bool wave_of_place;	 /* takes the wave it is written in (sql), else wave */
	enum plan_hazard hazard; /* the hazard class, and why */
	const char *hazard_reason;
	enum pg_lock lock; /* lock_class_max: strongest lock on an existing relation */
	enum plan_exec_kind exec;
	/*
	 * The hazard rule of an op whose hazard depends on its fields: may change
	 * hazard, hazard_reason, ob.lock_class_max, ob.may_rewrite and exec. NULL
	 * when the class above is the whole story.
	 */
	void (*hazard_rule)(struct plan *p, struct plan_step *s);
	/*
	 * The SQL template: writes the statement into sb and pushes the computed
	 * prechecks, postchecks and touched tables (plan_ops.c's helpers).
	 */
	void (*sql)(struct plan *p, struct plan_step *s, struct strbuf *sb);
	/*
	 * Checks between fields once every field is read and sound (a primary
	 * key names a column...); errors at the step map n. NULL when none.
	 */
	bool (*check)(struct plan_bctx *c, const struct doc_node *n, struct plan_step *s);
	struct plan_field fields[PLAN_MAXF]; /* ends at the first without a name */
	/*
	 * How a step of the op is undone (plan_inverse.c). UNDO_INVERSE: by a
	 * step of op .inverse whose fields (that op's entry's) are the step's
	 * members at the same place, or made by .invert when they are not such
	 * a copy (a rename back). UNDO_NOTHING and UNDO_IRREVERSIBLE:
	 * .undo_reason says why, or .invert sets the step's when the reason
	 * depends on the step. A written revert_sql is the inverse whatever
	 * this says.
	 */
	enum plan_undo undo;
	enum plan_op inverse;
	const char *undo_reason;
	struct plan_step *(*invert)(struct plan *p, struct plan_step *s);
	struct plan_shape shape; /* what its statement reads back as */
};

/* The op table's hooks for inverses that are not a copy of the step's fields (plan_inverse.c). */
struct plan_step *plan_invert_index(struct plan *p, struct plan_step *s);
struct plan_step *plan_invert_rename_column(struct plan *p, struct plan_step *s);
struct plan_step *plan_invert_rename_table(struct plan *p, struct plan_step *s);
struct plan_step *plan_invert_backfill(struct plan *p, struct plan_step *s);

extern const struct plan_opdef plan_optable[OP__ALL];

/* The op's entry, for any op a step may hold (inverse-only ones too). */
static inline const struct plan_opdef *
plan_opdef(enum plan_op op)
{
	return &plan_optable[op];
}

/* The fields of one column of create_table's columns (name, type, nullable, default, default_sql).
 */
#define PLAN_NCOLDEF_FIELDS 5
extern const struct plan_field plan_coldef_fields[PLAN_NCOLDEF_FIELDS];
/* The fields every step accepts besides its op's: prechecks, postchecks, limits, allow. */
extern const struct plan_field plan_step_common_fields[4];
/* How many bytes a field of kind k takes where it is stored (for the table's test). */
size_t plan_fkind_size(enum plan_fkind k);

/*
 * Building a plan from its document (plan_build.c, with plan_fields.c,
 * plan_fields_sql.c, plan_steps.c and plan_seal.c): the plan being built,
 * its file and diagnostics, and the document's arena for scratch text.
 */
struct diags;
struct plan_bctx {
	struct plan *p;
	const char *file;
	struct diags *d;
	struct arena *a;
};

/* An error at n (its line and column; 0:0 without n). */
void plan_err(struct plan_bctx *c, const struct doc_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "the string 'value'" for a scalar (shortened), else what kind of thing it is; in c->a. */
const char *plan_found(struct plan_bctx *c, const struct doc_node *n);

/* plan_fields.c */
/*
 * Reads v as field f into base (the struct f->off is relative to), naming it
 * label in messages. s is the step being built (some kinds also fill other
 * fields of it; an f->inverse field goes to its inverse). False on error.
 */
bool plan_field_store(struct plan_bctx *c, struct plan_step *s, void *base,
		      const struct plan_field *f, const char *label, const struct doc_node *v);
/* The field named key among the n of v, or NULL. */
const struct plan_field *plan_field_find(const struct plan_field *v, size_t n, const char *key);
void plan_limits_unset(struct plan_limits *l);
/* A wave's or a step's limits: map; unset where not written. */
bool plan_get_limits(struct plan_bctx *c, const struct doc_node *n, struct plan_limits *l);
/* The error of a message of the SQL reader, at n, with the character it is at in s. */
void plan_sql_err(struct plan_bctx *c, const struct doc_node *n, const char *field, const char *s,
		  const struct sql_msg *m);
/* One SQL statement (without its `;`) in the plan's arena; *t holds its tree (sql_tree_free). */
struct sql_tree;
char *plan_get_stmt(struct plan_bctx *c, const struct doc_node *n, const char *field,
		    struct sql_tree *t, const struct Node **stmt);

/* plan_fields_sql.c: the kinds that hold a statement */
bool plan_read_query(struct plan_bctx *c, const struct doc_node *v, const char *label, char **out);
bool plan_read_stmt(struct plan_bctx *c, struct plan_step *s, const struct doc_node *v,
		    const char *label, char **out);
bool plan_read_update(struct plan_bctx *c, struct plan_step *s, const struct doc_node *v,
		      const char *label, char **out);

/* plan_steps.c: the steps of a flat list (wave -1) or of a wave; the waves: list. */
void plan_build_steps(struct plan_bctx *c, const struct doc_node *list, int wave, bool *ok);
void plan_build_waves(struct plan_bctx *c, const struct doc_node *waves, bool *ok);

/* plan_seal.c: hazards, SQL, checks, inverses and ids of a sound plan; on_failure's check. */
void plan_seal(struct plan_bctx *c, bool *ok);

/* plan_load without resolving a revert plan (plan_revert_from_dir reads its directory so). */
int plan_load_one(struct plan **out, const char *path, struct diags *d);

#endif
