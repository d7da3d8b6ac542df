#!/usr/bin/env bash
# Integration test of a CONCURRENTLY step that finds the INVALID index of an
# earlier build in its way: when another session holds a lock on the table,
# the drop of that index times out and the step says "busy" (retried, then
# failed with PostgreSQL's own SQLSTATE 55P03); when another session is
# still building the index, the step says "busy" too, and no SQLSTATE is
# made up for it. Once the other session is gone, the step goes through.
#
#   bash tests/integration/test_apply_busy.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

MAX_LOCK_MS=100

newdb busy
q "CREATE TABLE t (id bigint PRIMARY KEY, v int);
   INSERT INTO t SELECT g, g % 10 FROM generate_series(1, 1000) g;" >/dev/null
run_ctl install-schema
assert_rc "install-schema" 0 "$RC" "$ERR"

# The events of plan 0001-index since its last plan.start.
SINCE_START="plan_id = '0001-index' AND id > (SELECT max(id) FROM taskslaps.events
               WHERE plan_id = '0001-index' AND type = 'plan.start')"

###########################################################################
section "an INVALID index whose drop is busy: a lock held on the table"
# A unique build over duplicates fails and leaves its index INVALID.
q "CREATE UNIQUE INDEX CONCURRENTLY t_v_idx ON t (v)" >/dev/null 2>&1
assert_sql "the failed build left an INVALID index" "t" \
    "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass"
plan "$W/p1/0001-index.yaml" <<PLAN
id: 0001-index
title: index on v
reason: integration test
waves:
  - name: expand
    limits: { max_lock_ms: $MAX_LOCK_MS }
    steps:
      - { op: add_index_concurrently, table: t, name: t_v_idx, columns: [v] }
PLAN
# DROP INDEX CONCURRENTLY needs SHARE UPDATE EXCLUSIVE on the table: hold it.
start_bg holder "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$CURDB" \
    -c "BEGIN; LOCK TABLE t IN SHARE UPDATE EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;"
HOLDER=$BG_PID
wait_for "SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.relation = 't'::regclass
            AND l.mode = 'ShareUpdateExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid())" 10 ||
    fail "the holder got its lock" "$(cat "$W/holder.err")"
t0=$(ms_now)
run_ctl apply --lock-retries 1 "$W/p1"
t1=$(ms_now)
assert_rc "apply exits 1" 1 "$RC" "$ERR"
assert_le "gave up promptly, without waiting for the holder (ms)" 10000 $((t1 - t0))
assert_contains "the failure says busy, and what waited" \
    "busy after 1 retry: lock not granted within $MAX_LOCK_MS ms (dropping the INVALID index t_v_idx:" "$ERR"
assert_contains "the SQLSTATE is PostgreSQL's lock timeout" "(SQLSTATE 55P03)" "$ERR"
assert_sql "one step.retry that says busy, one plan.failed" "1|1" \
    "SELECT count(*) FILTER (WHERE type = 'step.retry' AND message LIKE
              'add_index_concurrently: busy: lock not granted within $MAX_LOCK_MS ms (dropping the INVALID index t_v_idx:%'),
            count(*) FILTER (WHERE type = 'plan.failed' AND message LIKE 'busy after 1 retry:%')
       FROM taskslaps.events WHERE $SINCE_START"
assert_sql "the INVALID index is still there, nothing in the ledger" "t|0" \
    "SELECT (SELECT NOT indisvalid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass),
            (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0001-index')"
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE t%' AND pid <> pg_backend_pid()" >/dev/null
wait_bg "$HOLDER" 20

###########################################################################
section "an INVALID index that another session is still building"
q "DROP INDEX t_v_idx" >/dev/null
# A writer the other build must wait for, so that it is caught in the middle.
start_bg writer "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$CURDB" \
    -c "BEGIN; LOCK TABLE t IN ROW EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT;"
WRITER=$BG_PID
wait_for "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.relation = 't'::regclass
            AND l.mode = 'RowExclusiveLock' AND l.granted AND a.query LIKE 'BEGIN; LOCK TABLE t%')" 10 ||
    fail "the writer got its lock" "$(cat "$W/writer.err")"
start_bg builder "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$CURDB" -c "CREATE INDEX CONCURRENTLY t_v_idx ON t (v)"
BUILDER=$BG_PID
wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p JOIN pg_class c ON c.oid = p.index_relid
            WHERE c.relname = 't_v_idx')" 10 ||
    fail "the other build started" "$(cat "$W/builder.err")"
run_ctl resume 0001-index
assert_rc "resume the failed plan" 0 "$RC" "$ERR"
t0=$(ms_now)
run_ctl apply --lock-retries 1 "$W/p1"
t1=$(ms_now)
assert_rc "apply exits 1" 1 "$RC" "$ERR"
assert_le "gave up promptly, without waiting for the build (ms)" 10000 $((t1 - t0))
assert_contains "the failure says busy, and why" \
    "busy after 1 retry: index t_v_idx is INVALID because another session (pid" "$ERR"
assert_not_contains "no SQLSTATE is made up for it" "SQLSTATE" "$ERR"
assert_sql "its step.retry says busy; its step.error and plan.failed carry no SQLSTATE" "1|1|1" \
    "SELECT count(*) FILTER (WHERE type = 'step.retry' AND message LIKE
              'add_index_concurrently: busy: index t_v_idx is INVALID because another session%'),
            count(*) FILTER (WHERE type = 'step.error' AND message LIKE 'busy after 1 retry:%'
              AND message NOT LIKE '%SQLSTATE%'),
            count(*) FILTER (WHERE type = 'plan.failed' AND message LIKE 'busy after 1 retry:%'
              AND message NOT LIKE '%SQLSTATE%')
       FROM taskslaps.events WHERE $SINCE_START"
assert_sql "the other session's build was left alone" "t" \
    "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p JOIN pg_class c ON c.oid = p.index_relid
       WHERE c.relname = 't_v_idx')"

###########################################################################
section "once the other session is done, the step goes through"
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE t%' AND pid <> pg_backend_pid()" >/dev/null
wait_bg "$WRITER" 20
wait_bg "$BUILDER" 20
assert_eq "the other build finished" 0 "$BG_RC"
run_ctl resume 0001-index
assert_rc "resume" 0 "$RC" "$ERR"
run_ctl apply --lock-retries 1 "$W/p1"
assert_rc "apply exits 0" 0 "$RC" "$ERR"
assert_sql "applied, the index valid" "applied|t" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0001-index'),
            (SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass)"
env_finish
