#!/usr/bin/env bash
# Integration test of the backfill under load: the health governor sees many
# active sessions and degrades (an event with its metrics), and a backfill
# under a steady stream of inserts ends, because its key range is fixed when
# it starts.
#
#   bash tests/integration/test_apply_governor.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

###########################################################################
section "governor: many active sessions degrade the run"
SLEEPERS=60
newdb gov
q "CREATE TABLE g (id int PRIMARY KEY, v int);
   INSERT INTO g SELECT i, 0 FROM generate_series(1, 3000) i;" >/dev/null
run_ctl install-schema
assert_rc "install-schema" 0 "$RC" "$ERR"
plan "$W/gov/0001-gov.yaml" <<'EOF'
id: 0001-gov
title: A backfill on a busy database
reason: integration test
waves:
  - name: backfill
    limits: { batch_size: 200, rows_per_second: 2000 }
    steps:
      - { op: backfill_sql, sql: "UPDATE g SET v = v + 1" }
EOF
sleepers=()
for ((i = 0; i < SLEEPERS; i++)); do
    start_bg "sleeper$i" "$PSQL" -X -q -d "$CURDB" -c "SELECT pg_sleep(60) /* taskslaps-test-sleeper */"
    sleepers+=("$BG_PID")
done
if wait_for "SELECT count(*) >= $SLEEPERS FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%taskslaps-test-sleeper%'
              AND pid <> pg_backend_pid()" 30; then
    pass "$SLEEPERS sessions are active"
else
    fail "$SLEEPERS sessions are active" "$(q "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%taskslaps-test-sleeper%'")"
fi
start_ctl_bg gov apply "$W/gov"
APPLY=$BG_PID
wait_for "SELECT EXISTS (SELECT 1 FROM taskslaps.events WHERE type = 'governor.degraded')" 30 "$APPLY" ||
    fail "the governor degraded while the sessions were active" "$(cat "$W/gov.out" "$W/gov.err")"
# The load goes away: the governor recovers within the same run.
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%taskslaps-test-sleeper%' AND pid <> pg_backend_pid()" >/dev/null
for pid in "${sleepers[@]}"; do wait_bg "$pid" 20; done
assert_sql "the sleepers are gone" "0" \
    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%taskslaps-test-sleeper%' AND pid <> pg_backend_pid()"
wait_bg "$APPLY" 60
assert_rc "apply under load exits 0" 0 "$BG_RC" "$(cat "$W/gov.err")"
assert_contains "apply output shows governor.degraded" "governor.degraded" "$(cat "$W/gov.out")"
assert_sql "a governor.degraded event with metrics" "t" \
    "SELECT EXISTS (SELECT 1 FROM taskslaps.events WHERE type = 'governor.degraded'
        AND (metrics->>'active')::int > 50 AND metrics ? 'lock_waiters' AND metrics ? 'replication_lag_ms'
        AND metrics ? 'recent_errors' AND metrics ? 'factor' AND message LIKE '%active sessions > 50%')"
assert_sql "the events belong to the plan" "0001-gov" \
    "SELECT string_agg(DISTINCT plan_id, ',') FROM taskslaps.events WHERE type LIKE 'governor.%'"
assert_sql "no critical decision (60 < 150 active)" "0" \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'governor.critical'"
assert_sql "governor.healthy after the load went away" "t" \
    "SELECT EXISTS (SELECT 1 FROM taskslaps.events WHERE type = 'governor.healthy'
        AND id > (SELECT min(id) FROM taskslaps.events WHERE type = 'governor.degraded')
        AND (metrics->>'active')::int <= 50)"
assert_sql "the backfill ran at a reduced share of its rate for a while" "t" \
    "SELECT bool_or((metrics->>'governor_factor')::numeric < 1) FROM taskslaps.events
      WHERE type = 'step.progress' AND plan_id = '0001-gov' AND metrics IS NOT NULL"
assert_sql "every row updated once" "3000" "SELECT count(*) FROM g WHERE v = 1"
assert_sql "plan applied" "applied" "SELECT status FROM taskslaps.plans"

###########################################################################
section "backfill under a steady stream of inserts"
newdb stream
q "CREATE TABLE s (id bigserial PRIMARY KEY, v int, touched boolean NOT NULL DEFAULT false);
   INSERT INTO s (v) SELECT i FROM generate_series(1, 5000) i;" >/dev/null
run_ctl install-schema
plan "$W/stream/0001-stream.yaml" <<'EOF'
id: 0001-stream
title: A backfill slower than the inserts
reason: integration test
waves:
  - name: backfill
    limits: { batch_size: 250, rows_per_second: 5000 }
    steps:
      - { op: backfill_sql, sql: "UPDATE s SET touched = true" }
EOF
# shellcheck disable=SC2317  # run by start_bg
inserter() {
    while [ ! -e "$W/stop-inserter" ]; do
        "$PSQL" -X -q -d "$CURDB" -c "INSERT INTO s (v) SELECT i FROM generate_series(1, 200) i" || return 1
    done
}
rm -f "$W/stop-inserter"
start_bg inserter inserter
INSERTER=$BG_PID
wait_for "SELECT count(*) > 5400 FROM s" 20 || fail "the inserter runs" "$(cat "$W/inserter.err")"
start_ctl_bg stream apply "$W/stream"
APPLY=$BG_PID
if wait_bg "$APPLY" 60; then
    assert_rc "the backfill under inserts ends, apply exits 0" 0 "$BG_RC" "$(cat "$W/stream.err")"
else
    fail "the backfill under inserts ends within 60 s"
fi
inserted_meanwhile=$(q "SELECT count(*) FROM s WHERE id > (SELECT (upper_key->>0)::bigint FROM taskslaps.backfill_progress)")
touch "$W/stop-inserter"
wait_bg "$INSERTER" 20
assert_rc "the inserter ran without error" 0 "$BG_RC" "$(cat "$W/inserter.err")"
[ -z "${TS_VERBOSE:-}" ] || echo "     upper key $(q "SELECT upper_key FROM taskslaps.backfill_progress"); rows inserted past it while it ran: $inserted_meanwhile"
assert_ge "rows were inserted past the range while the backfill ran" 1000 "$inserted_meanwhile"
assert_sql "every row up to the fixed upper key was updated" "0" \
    "SELECT count(*) FROM s WHERE NOT touched AND id <= (SELECT (upper_key->>0)::bigint FROM taskslaps.backfill_progress)"
assert_sql "no row past the upper key was touched" "0" \
    "SELECT count(*) FROM s WHERE touched AND id > (SELECT (upper_key->>0)::bigint FROM taskslaps.backfill_progress)"
assert_sql "the upper key was fixed at the start (at least the initial rows)" "t" \
    "SELECT (upper_key->>0)::bigint >= 5400 AND last_key = upper_key FROM taskslaps.backfill_progress"
assert_sql "ledger: the backfill once, rows_affected = the range" "1|t" \
    "SELECT count(*), bool_and(rows_affected = (SELECT count(*) FROM s WHERE touched)) FROM taskslaps.step_ledger"
assert_sql "plan applied" "applied" "SELECT status FROM taskslaps.plans"

env_finish
