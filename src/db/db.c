#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/strbuf.h"

static void
err_from_conn(struct db_error *err, PGconn *conn, const char *what)
{
	const char *m = conn ? PQerrorMessage(conn) : "out of memory";
	size_t n;

	memset(err, 0, sizeof(*err));
	snprintf(err->message, sizeof(err->message), "%s%s", what, m);
	n = strlen(err->message);
	while (n && (err->message[n - 1] == '\n' || err->message[n - 1] == ' '))
		err->message[--n] = '\0';
	err->conn_lost = !conn || PQstatus(conn) != CONNECTION_OK;
}

static void
err_from_result(struct db_error *err, PGconn *conn, const PGresult *res)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *d = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;

	if (!m) {
		err_from_conn(err, conn, "");
	} else {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message), "%s", m);
	}
	if (st)
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", st);
	if (d)
		snprintf(err->detail, sizeof(err->detail), "%s", d);
	err->conn_lost = PQstatus(conn) != CONNECTION_OK;
}

int
db_connect(struct db **out, const char *conninfo, const char *appname, struct db_error *err)
{
	const char *keys[] = { "dbname", "application_name", "connect_timeout", NULL };
	const char *vals[] = { conninfo, appname, "10", NULL };
	PGconn *conn;
	struct db *db;

	/* expand_dbname: conninfo's own keys win; ours fill what it leaves unset */
	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		err_from_conn(err, conn, "cannot connect to the database: ");
		PQfinish(conn);
		return -1;
	}
	db = xcalloc(1, sizeof(*db));
	db->conn = conn;
	db->cancel = PQgetCancel(conn);
	*out = db;
	return 0;
}

void
db_close(struct db *db)
{
	if (!db)
		return;
	if (db->cancel)
		PQfreeCancel(db->cancel);
	PQfinish(db->conn);
	free(db);
}

bool
db_ok(const struct db *db)
{
	return db && PQstatus(db->conn) == CONNECTION_OK;
}

void
db_cancel(struct db *db)
{
	char buf[256];

	if (db && db->cancel)
		(void)PQcancel(db->cancel, buf, sizeof(buf));
}

int
db_exec(struct db *db, PGresult **res, struct db_error *err, const char *sql, int nparams,
	const char *const *params)
{
	PGresult *r = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		err_from_result(err, db->conn, r);
		PQclear(r);
		return -1;
	}
	if (res)
		*res = r;
	else
		PQclear(r);
	return 0;
}

int
db_cmd(struct db *db, struct db_error *err, const char *sql)
{
	return db_exec(db, NULL, err, sql, 0, NULL);
}

int
db_bool(struct db *db, struct db_error *err, bool *out, const char *sql, int nparams,
	const char *const *params)
{
	PGresult *r;

	if (db_exec(db, &r, err, sql, nparams, params) < 0)
		return -1;
	*out = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return 0;
}

int
db_script(struct db *db, struct db_error *err, const char *sql)
{
	PGresult *r = PQexec(db->conn, sql);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
		err_from_result(err, db->conn, r);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

char *
db_conninfo_redact(const char *conninfo)
{
	PQconninfoOption *opts, *o;
	struct strbuf sb = STRBUF_INIT;
	char *errmsg = NULL;

	opts = PQconninfoParse(conninfo, &errmsg);
	if (!opts) {
		PQfreemem(errmsg);
		return xstrdup("(unparsable connection string)");
	}
	for (o = opts; o->keyword; o++) {
		if (!o->val || !o->val[0])
			continue;
		sb_printf(&sb, "%s%s=%s", sb.len ? " " : "", o->keyword,
			  strcmp(o->keyword, "password") == 0 ? "********" : o->val);
	}
	PQconninfoFree(opts);
	return sb_detach(&sb);
}
