/* The governor's seed thresholds (docs/contract.md §5): pure, shared by the daemon's config reader.
 */
#include "exec/exec.h"

void
governor_config_default(struct governor_config *g)
{
	g->degraded_active = 50;
	g->critical_active = 150;
	g->degraded_errors = 5;
	g->degraded_lock_waiters = 10;
	g->critical_lock_waiters = 50;
	g->degraded_lag_ms = 5000;
	g->critical_lag_ms = 60000;
	g->degraded_wal_ready = 16;
	g->degraded_xact_s = 60;
	g->critical_xact_s = 600;
	g->probe_interval_ms = 1000;
}
