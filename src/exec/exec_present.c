/*
 * Before a step is adopted as already_present: is what it makes there as it
 * would make it? Its postchecks say that a column exists; here its type (as
 * PostgreSQL formats it, so `int` and `integer` are one type), its
 * nullability and its default are compared with those of the step's own
 * definition as the server reads it.
 *
 * The server reads that definition the only way that is faithful to what
 * ADD COLUMN would store: it creates it. A temporary table with one column
 * per column of the step, written as the step writes it, is created inside
 * a savepoint (or a transaction of its own when none is open) and rolled
 * back at once; format_type() and pg_get_expr() of its columns are then
 * compared, as text, with the same of the real ones. So numeric(12,2)
 * against numeric(12,3), varchar(20) against text, a default 0 against no
 * default, are all told apart, and no parser of types or expressions is
 * written here.
 */
#include "sql/sql_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exec/exec_int.h"
#include "util/alloc.h"
#include "util/strbuf.h"

/* What a serial pseudo-type is: its integer type (the column also gets NOT NULL and a sequence). */
static const char *
serial_base(const char *type)
{
	static const char *const map[][2] = {
		{ "serial", "integer" }, { "serial4", "integer" },	{ "bigserial", "bigint" },
		{ "serial8", "bigint" }, { "smallserial", "smallint" }, { "serial2", "smallint" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++)
		if (strcasecmp(type, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

/* One column as the step defines it. */
struct want_col {
	const char *name;
	const char *type;
	bool not_null;
	const struct plan_const *def;
};

/* The column's SQL definition in the probe table, as the planner writes it (types are checked
 * words). */
static int
probe_column(PGconn *conn, struct strbuf *sb, size_t i, const struct want_col *c)
{
	const char *base = serial_base(c->type);
	char *lit;

	/* a serial's sequence would not be the real one's: its default is checked apart */
	sb_printf(sb, "%sc%zu %s", i ? ", " : "", i, base ? base : c->type);
	if (c->not_null || base)
		sb_puts(sb, " NOT NULL");
	if (base)
		return 0;
	switch (c->def->kind) {
	case CONST_NONE: break;
	case CONST_NULL: sb_puts(sb, " DEFAULT NULL"); break;
	case CONST_BOOL:
		sb_puts(sb, c->def->text[0] == 't' ? " DEFAULT true" : " DEFAULT false");
		break;
	case CONST_NUMBER: sb_printf(sb, " DEFAULT %s", c->def->text); break;
	case CONST_STRING:
		lit = PQescapeLiteral(conn, c->def->text, strlen(c->def->text));
		if (!lit)
			return -1;
		sb_printf(sb, " DEFAULT %s", lit);
		PQfreemem(lit);
		break;
	case CONST_SQL:
		/* an expression the planner's parser read as one value */
		sb_printf(sb, " DEFAULT (%s\n)", c->def->text);
		break;
	}
	return 0;
}

/* Parse what we generate: one CREATE TEMPORARY TABLE of the probe, n columns. */
static bool
probe_reads_back(const char *sql, size_t n)
{
	struct sql_tree t;
	struct sql_msg m;
	const Node *q;
	const CreateStmt *c;
	bool ok;

	q = sql_parse_one(&t, sql, &m);
	c = q && IsA(q, CreateStmt) ? (const CreateStmt *)q : NULL;
	ok = c && sql_rangevar_is(c->relation, "taskslaps_present_probe") &&
	     c->relation->relpersistence == 't' /* temporary */ &&
	     (size_t)list_length(c->tableElts) == n && !c->inhRelations && !c->constraints;
	for (size_t i = 0; ok && i < n; i++)
		ok = IsA(list_nth(c->tableElts, (int)i), ColumnDef);
	sql_tree_free(&t);
	return ok;
}

/*
 * Per column of $2 (names, in the order of the probe's columns): the
 * probe's type, NOT NULL and default, whether the real column exists, and
 * its type, NOT NULL, default, identity and generated flags.
 */
#define SQL_PRESENT_COMPARE                                                                        \
	"SELECT pg_catalog.format_type(w.atttypid, w.atttypmod), w.attnotnull, "                   \
	"pg_catalog.pg_get_expr(wd.adbin, wd.adrelid), h.attnum IS NOT NULL, "                     \
	"pg_catalog.format_type(h.atttypid, h.atttypmod), h.attnotnull, "                          \
	"pg_catalog.pg_get_expr(hd.adbin, hd.adrelid), h.attidentity, h.attgenerated "             \
	"FROM pg_catalog.unnest($2::text[]) WITH ORDINALITY AS x(col, i) "                         \
	"JOIN pg_catalog.pg_attribute w ON w.attrelid OPERATOR(pg_catalog.=) "                     \
	"pg_catalog.to_regclass('pg_temp.taskslaps_present_probe') "                               \
	"AND w.attnum OPERATOR(pg_catalog.=) x.i "                                                 \
	"LEFT JOIN pg_catalog.pg_attrdef wd ON wd.adrelid OPERATOR(pg_catalog.=) w.attrelid "      \
	"AND wd.adnum OPERATOR(pg_catalog.=) w.attnum "                                            \
	"LEFT JOIN pg_catalog.pg_attribute h ON h.attrelid OPERATOR(pg_catalog.=) "                \
	"taskslaps.lookup_relation($1) AND h.attname OPERATOR(pg_catalog.=) x.col "                \
	"AND h.attnum OPERATOR(pg_catalog.>) 0 AND NOT h.attisdropped "                            \
	"LEFT JOIN pg_catalog.pg_attrdef hd ON hd.adrelid OPERATOR(pg_catalog.=) h.attrelid "      \
	"AND hd.adnum OPERATOR(pg_catalog.=) h.attnum "                                            \
	"ORDER BY x.i"

/* Appends how column c differs from row k of res (the compare query), or nothing when it does not.
 */
static void
describe(struct strbuf *sb, const char *table, const struct want_col *c, const PGresult *res, int k)
{
	const char *wtype = PQgetvalue(res, k, 0), *htype = PQgetvalue(res, k, 4);
	bool wnn = PQgetvalue(res, k, 1)[0] == 't', hnn = PQgetvalue(res, k, 5)[0] == 't';
	const char *wdef = PQgetisnull(res, k, 2) ? NULL : PQgetvalue(res, k, 2);
	const char *hdef = PQgetisnull(res, k, 6) ? NULL : PQgetvalue(res, k, 6);
	const char *ident = PQgetvalue(res, k, 7), *gen = PQgetvalue(res, k, 8);
	struct strbuf d = STRBUF_INIT;

	if (PQgetvalue(res, k, 3)[0] != 't') {
		sb_printf(sb, "%scolumn %s.%s is missing", sb->len ? "; " : "", table, c->name);
		return;
	}
	if (strcmp(wtype, htype) != 0)
		sb_printf(&d, "%stype %s in the step, %s in the database", d.len ? ", " : "", wtype,
			  htype);
	if (wnn != hnn)
		sb_printf(&d, "%s%s in the step, %s in the database", d.len ? ", " : "",
			  wnn ? "NOT NULL" : "nullable", hnn ? "NOT NULL" : "nullable");
	if (ident[0] || gen[0]) {
		sb_printf(&d, "%sthe database's is %s", d.len ? ", " : "",
			  ident[0] ? "an identity column" : "a generated column");
	} else if (serial_base(c->type)) {
		if (!hdef || strncmp(hdef, "nextval(", 8) != 0)
			sb_printf(&d,
				  "%sdefault nextval() of a sequence in the step (%s), %s in the "
				  "database",
				  d.len ? ", " : "", c->type, hdef ? hdef : "none");
	} else if ((wdef == NULL) != (hdef == NULL) || (wdef && strcmp(wdef, hdef) != 0)) {
		sb_printf(&d, "%sdefault %s in the step, %s in the database", d.len ? ", " : "",
			  wdef ? wdef : "none", hdef ? hdef : "none");
	}
	if (d.len)
		sb_printf(sb, "%scolumn %s.%s differs: %s", sb->len ? "; " : "", table, c->name,
			  sb_str(&d));
	sb_free(&d);
}

int
exec_present_compare(struct step_run *r, char **why, struct db_error *err)
{
	const struct plan_step *s = r->s;
	struct want_col *cols;
	size_t n = 0;
	PGconn *conn = r->ex->db->conn;
	bool in_tx = PQtransactionStatus(conn) == PQTRANS_INTRANS;
	struct strbuf create = STRBUF_INIT, names = STRBUF_INIT, out = STRBUF_INIT;
	struct db_stmt st[5];
	const char *params[2];
	size_t ns = 0, failed = 0, icmp;
	int rc = 0;

	*why = NULL;
	if (s->op == OP_ADD_COLUMN) {
		cols = xcalloc(1, sizeof(*cols));
		cols[n++] = (struct want_col){ s->name, s->type, !s->nullable, &s->def };
	} else if (s->op == OP_CREATE_TABLE && s->ncoldefs) {
		cols = xcalloc(s->ncoldefs, sizeof(*cols));
		for (size_t i = 0; i < s->ncoldefs; i++) {
			const struct plan_coldef *c = &s->coldefs[i];
			bool pk = false;

			/* a primary key's columns are NOT NULL whatever the column says */
			for (size_t k = 0; k < s->primary_key.n; k++)
				pk |= strcmp(s->primary_key.v[k], c->name) == 0;
			cols[n++] =
			    (struct want_col){ c->name, c->type, !c->nullable || pk, &c->def };
		}
	} else {
		return 0; /* nothing but existence to compare */
	}

	sb_puts(&create, "CREATE TEMPORARY TABLE taskslaps_present_probe (");
	sb_putc(&names, '{');
	for (size_t i = 0; i < n; i++) {
		if (probe_column(conn, &create, i, &cols[i]) < 0) {
			snprintf(err->message, sizeof(err->message), "%s", PQerrorMessage(conn));
			err->sqlstate[0] = '\0';
			rc = -1;
			goto out;
		}
		/* names are checked identifiers: no quote or backslash to escape */
		sb_printf(&names, "%s\"%s\"", i ? "," : "", cols[i].name);
	}
	sb_putc(&create, ')');
	sb_putc(&names, '}');
	if (!probe_reads_back(sb_str(&create), n)) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message),
			 "the probe table's statement does not read back as one CREATE TEMPORARY "
			 "TABLE of %zu columns",
			 n);
		rc = -1;
		goto out;
	}
	params[0] = s->table;
	params[1] = sb_str(&names);

	st[ns++] = (struct db_stmt){ .sql = in_tx ? "SAVEPOINT taskslaps_present" : "BEGIN",
				     .fixed = true };
	st[ns++] = (struct db_stmt){ .sql = sb_str(&create) };
	icmp = ns;
	st[ns++] = (struct db_stmt){ .sql = SQL_PRESENT_COMPARE, .nparams = 2, .params = params };
	st[ns++] =
	    (struct db_stmt){ .sql = in_tx ? "ROLLBACK TO SAVEPOINT taskslaps_present" : "ROLLBACK",
			      .fixed = true };
	if (in_tx)
		st[ns++] =
		    (struct db_stmt){ .sql = "RELEASE SAVEPOINT taskslaps_present", .fixed = true };
	if (db_batch(r->ex->db, st, ns, err, &failed) < 0) {
		struct db_error ignore;

		for (size_t i = 0; i < ns; i++)
			PQclear(st[i].res);
		if (err->conn_lost || !db_ok(r->ex->db) || failed < 1 || failed > icmp) {
			rc = -1;
			goto out;
		}
		/* the server could not read the step's own definition: it cannot be this column */
		if (in_tx) {
			(void)db_cmd(r->ex->db, &ignore, "ROLLBACK TO SAVEPOINT taskslaps_present");
			(void)db_cmd(r->ex->db, &ignore, "RELEASE SAVEPOINT taskslaps_present");
		} else {
			(void)db_cmd(r->ex->db, &ignore, "ROLLBACK");
		}
		*why = xasprintf("the step's column definition cannot be compared with the "
				 "database's: %s",
				 err->message);
		goto out;
	}
	if ((size_t)PQntuples(st[icmp].res) != n) { /* cannot happen: one probe column per column */
		sb_printf(&out, "the comparison gave %d rows for %zu columns",
			  PQntuples(st[icmp].res), n);
	} else {
		for (size_t k = 0; k < n; k++)
			describe(&out, s->table, &cols[k], st[icmp].res, (int)k);
	}
	for (size_t i = 0; i < ns; i++)
		PQclear(st[i].res);
	if (out.len)
		*why = sb_detach(&out);
out:
	free(cols);
	sb_free(&create);
	sb_free(&names);
	sb_free(&out);
	return rc;
}
