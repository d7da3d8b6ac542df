/*
 * The health governor: before each step and between backfill batches it
 * reads the database's health and answers healthy (full rate), degraded
 * (halve the rate; recover additively) or critical (pause and re-probe).
 * Every change of state, and every halving, is an event with its metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec_int.h"

struct health {
	long active, waiters, wal_ready, vacuum;
	double lag_ms, xact_s;
	int errors;
};

static const char *const state_event[] = { "governor.healthy", "governor.degraded",
					   "governor.critical" };

void
governor_note_error(struct exec *ex)
{
	ex->err_times[ex->nerr++ % 16] = exec_now_ms();
}

static int
recent_errors(const struct exec *ex)
{
	int64_t now = exec_now_ms();
	int n = 0;

	for (unsigned i = 0; i < 16 && i < ex->nerr; i++)
		if (now - ex->err_times[i] < 5 * 60 * 1000)
			n++;
	return n;
}

#define SQL_PROBE                                                                                  \
	"SELECT (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE state = 'active' AND "     \
	"backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid()), (SELECT "        \
	"count(*) FROM pg_catalog.pg_locks WHERE NOT granted AND (database IS NULL OR database = " \
	"(SELECT oid FROM pg_catalog.pg_database WHERE datname = "                                 \
	"pg_catalog.current_database()))), (SELECT coalesce(max(extract(epoch FROM replay_lag)) "  \
	"* 1000, 0) FROM pg_catalog.pg_stat_replication), (SELECT count(*) FROM "                  \
	"pg_catalog.pg_stat_progress_vacuum v WHERE $1::text IS NOT NULL AND v.relid = "           \
	"taskslaps.lookup_relation($1)), (SELECT coalesce(max(extract(epoch FROM now() - "         \
	"a.xact_start)), 0) FROM pg_catalog.pg_stat_activity a JOIN pg_catalog.pg_locks l ON "     \
	"l.pid = a.pid WHERE $1::text IS NOT NULL AND l.locktype = 'relation' AND l.relation = "   \
	"taskslaps.lookup_relation($1) AND a.pid <> pg_catalog.pg_backend_pid())"

/* needs superuser or pg_monitor; without it that signal is simply not read */
#define SQL_ARCHIVE_READY                                                                          \
	"SELECT count(*) FROM pg_catalog.pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"

/*
 * One round trip: the signals, and the WAL waiting to be archived after them
 * in the same pipeline while that is allowed. A refusal of the second (no
 * pg_monitor) leaves the first's answer standing and stops asking.
 */
static int
probe(struct exec *ex, const char *table, struct health *h)
{
	const char *params[1] = { table };
	static const char *const none[1];
	struct db_stmt st[2] = {
		{ .sql = SQL_PROBE, .nparams = 1, .params = params, .fixed = true },
		{ .sql = SQL_ARCHIVE_READY, .params = none, .fixed = true },
	};
	size_t n = ex->gov.archive_ok ? 2 : 1, failed = 0;
	struct db_error err;
	PGresult *r;

	memset(h, 0, sizeof(*h));
	h->errors = recent_errors(ex);
	if (db_batch(ex->db, st, n, &err, &failed) < 0) {
		if (failed != 1 || err.conn_lost || !st[0].res) {
			PQclear(st[0].res);
			return -1;
		}
		ex->gov.archive_ok = false;
	}
	r = st[0].res;
	h->active = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	h->waiters = strtol(PQgetvalue(r, 0, 1), NULL, 10);
	h->lag_ms = strtod(PQgetvalue(r, 0, 2), NULL);
	h->vacuum = strtol(PQgetvalue(r, 0, 3), NULL, 10);
	h->xact_s = strtod(PQgetvalue(r, 0, 4), NULL);
	PQclear(r);
	if (st[1].res) {
		h->wal_ready = strtol(PQgetvalue(st[1].res, 0, 0), NULL, 10);
		PQclear(st[1].res);
	}
	return 0;
}

/* The reason for the verdict, or NULL when healthy. */
static const char *
judge(const struct governor_config *c, const struct health *h, enum governor_state *st)
{
	static char why[160];

	*st = GOV_CRITICAL;
	if (h->active > c->critical_active)
		return snprintf(why, sizeof(why), "%ld active sessions > %d", h->active,
				c->critical_active),
		       why;
	if (h->waiters > c->critical_lock_waiters)
		return snprintf(why, sizeof(why), "%ld lock waiters > %d", h->waiters,
				c->critical_lock_waiters),
		       why;
	if (h->lag_ms > (double)c->critical_lag_ms)
		return snprintf(why, sizeof(why), "replication lag %.0f ms > %lld", h->lag_ms,
				(long long)c->critical_lag_ms),
		       why;
	if (h->xact_s > (double)c->critical_xact_s)
		return snprintf(why, sizeof(why), "a transaction on the table is %.0f s old > %lld",
				h->xact_s, (long long)c->critical_xact_s),
		       why;
	*st = GOV_DEGRADED;
	if (h->active > c->degraded_active)
		return snprintf(why, sizeof(why), "%ld active sessions > %d", h->active,
				c->degraded_active),
		       why;
	if (h->errors > c->degraded_errors)
		return snprintf(why, sizeof(why), "%d step errors in 5 min > %d", h->errors,
				c->degraded_errors),
		       why;
	if (h->waiters > c->degraded_lock_waiters)
		return snprintf(why, sizeof(why), "%ld lock waiters > %d", h->waiters,
				c->degraded_lock_waiters),
		       why;
	if (h->lag_ms > (double)c->degraded_lag_ms)
		return snprintf(why, sizeof(why), "replication lag %.0f ms > %lld", h->lag_ms,
				(long long)c->degraded_lag_ms),
		       why;
	if (h->wal_ready > c->degraded_wal_ready)
		return snprintf(why, sizeof(why), "%ld WAL segments waiting to be archived > %d",
				h->wal_ready, c->degraded_wal_ready),
		       why;
	if (h->vacuum > 0)
		return snprintf(why, sizeof(why), "autovacuum is running on the table"), why;
	if (h->xact_s > (double)c->degraded_xact_s)
		return snprintf(why, sizeof(why), "a transaction on the table is %.0f s old > %lld",
				h->xact_s, (long long)c->degraded_xact_s),
		       why;
	*st = GOV_HEALTHY;
	return NULL;
}

enum governor_state
governor_check(struct exec *ex, const char *plan_id, const char *table)
{
	struct governor *g = &ex->gov;
	struct health h;
	enum governor_state st;
	const char *why;
	bool tell;

	g->last_probe_ms = exec_now_ms();
	if (probe(ex, table, &h) < 0)
		return g->state; /* a failed probe changes nothing; the step will see the error */
	why = judge(&ex->cfg.governor, &h, &st);
	snprintf(g->last_metrics, sizeof(g->last_metrics),
		 "{\"active\": %ld, \"lock_waiters\": %ld, \"recent_errors\": %d, "
		 "\"replication_lag_ms\": %.0f, \"wal_ready\": %ld, \"autovacuum\": %ld, "
		 "\"oldest_xact_on_table_s\": %.1f, \"factor\": %.3f}",
		 h.active, h.waiters, h.errors, h.lag_ms, h.wal_ready, h.vacuum, h.xact_s,
		 g->factor);
	/* the first decision of a run is told too, so the audit shows the governor was asked */
	tell = st != g->state || !g->decided;
	g->decided = true;
	switch (st) {
	case GOV_HEALTHY:
		/* additive recovery: a tenth of the rate back per healthy probe */
		g->factor = g->factor + 0.1 > 1.0 ? 1.0 : g->factor + 0.1;
		break;
	case GOV_DEGRADED:
		/* each halving is a decision worth an event; at the floor, only changes are */
		if (g->factor > 0.05) {
			g->factor = g->factor / 2 < 0.05 ? 0.05 : g->factor / 2;
			tell = true;
		}
		break;
	case GOV_CRITICAL: break;
	}
	g->state = st;
	if (tell)
		exec_event(ex, state_event[st], plan_id, NULL, NULL, g->last_metrics,
			   "governor: %s%s%s",
			   st == GOV_HEALTHY	? "healthy"
			   : st == GOV_DEGRADED ? "degraded"
						: "critical",
			   why ? ": " : "", why ? why : "");
	return st;
}

bool
governor_wait(struct exec *ex, const char *plan_id, const char *table)
{
	while (governor_check(ex, plan_id, table) == GOV_CRITICAL) {
		if (!exec_sleep(ex, ex->cfg.governor.probe_interval_ms))
			return false;
	}
	return !ex->abort_req;
}
