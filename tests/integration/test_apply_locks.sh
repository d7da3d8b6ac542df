#!/usr/bin/env bash
# Integration test of lock waits: a step that needs ACCESS EXCLUSIVE while
# another session holds a conflicting lock waits at most max_lock_ms per
# attempt, retries with backoff (step.retry events), succeeds once the lock
# is released, and never makes application queries wait longer than
# max_lock_ms; with its retries exhausted it fails with SQLSTATE 55P03 and
# applies nothing. And the runner lock: a second apply is standby.
#
#   bash tests/integration/test_apply_locks.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

MAX_LOCK_MS=100
MARGIN_MS=400

newdb locks
q "CREATE TABLE t (id bigint PRIMARY KEY, v int);
   INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;" >/dev/null
run_ctl install-schema
assert_rc "install-schema" 0 "$RC" "$ERR"

# hold_lock NAME SECONDS: a session that holds ACCESS SHARE on t for SECONDS.
hold_lock() {
    start_bg "$1" "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$CURDB" \
        -c "BEGIN; LOCK TABLE t IN ACCESS SHARE MODE; SELECT pg_sleep($2); COMMIT;"
    HOLDER=$BG_PID
    wait_for "SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.relation = 't'::regclass
                AND l.mode = 'AccessShareLock' AND l.granted AND l.pid <> pg_backend_pid())" 10
}

# reader: measures its own query latency on t until $W/stop-reader exists.
# shellcheck disable=SC2317  # run by start_bg
reader() {
    while [ ! -e "$W/stop-reader" ]; do
        "$PSQL" -X -At -d "$CURDB" -c '\timing on' -c 'SELECT count(*) FROM t' 2>&1 | grep '^Time:'
    done
}

###########################################################################
section "lock contention: retries, then success"
plan "$W/p1/0001-add.yaml" <<EOF
id: 0001-add
title: add_column on a table another session has locked
reason: integration test
waves:
  - name: expand
    limits: { max_lock_ms: $MAX_LOCK_MS }
    steps:
      - { op: add_column, table: t, name: added, type: int }
EOF
rm -f "$W/stop-reader"
start_bg reader reader
READER=$BG_PID
wait_file "$W/reader.out" "Time:" 10 || fail "the reader runs" "$(cat "$W/reader.err")"
hold_lock holder 2.5 || fail "the holder got its lock" "$(cat "$W/holder.err")"
t0=$(ms_now)
run_ctl apply --lock-retries 30 "$W/p1"
t1=$(ms_now)
touch "$W/stop-reader"
wait_bg "$READER" 20
wait_bg "$HOLDER" 20
assert_rc "the holder's transaction committed normally" 0 "$BG_RC" "$(cat "$W/holder.err")"
assert_rc "apply exits 0" 0 "$RC" "$ERR"
assert_ge "apply waited for the holder (ms)" 1500 $((t1 - t0))
retries=$(q "SELECT count(*) FROM taskslaps.events WHERE plan_id = '0001-add' AND type = 'step.retry'")
assert_ge "step.retry events happened" 2 "$retries"
assert_sql "step.retry events carry their attempt and backoff" "$retries" \
    "SELECT count(*) FROM taskslaps.events WHERE plan_id = '0001-add' AND type = 'step.retry'
        AND (metrics->>'attempt')::int >= 1 AND (metrics->>'backoff_ms')::int > 0 AND (metrics->>'lock_timeout_ms')::int = $MAX_LOCK_MS"
assert_contains "apply output shows the retries" "lock not granted within $MAX_LOCK_MS ms" "$OUT"
assert_sql "the step succeeded after the retries" "$((retries + 1))|applied" \
    "SELECT metrics->>'attempts', metrics->>'outcome' FROM taskslaps.events WHERE plan_id = '0001-add' AND type = 'step.ok'"
assert_sql "the column exists" "1" \
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'added'"
assert_sql "one ledger row" "1|applied" "SELECT count(*), max(outcome) FROM taskslaps.step_ledger"
samples=$(grep -c '^Time:' "$W/reader.out")
worst=$(awk '/^Time:/ { if ($2 > m) m = $2 } END { printf "%d", m }' "$W/reader.out")
[ -z "${TS_VERBOSE:-}" ] || echo "     reader: $samples queries, worst $worst ms; apply $((t1 - t0)) ms, $retries retries"
assert_ge "the reader ran throughout (queries)" 20 "$samples"
assert_le "the reader never waited longer than max_lock_ms + margin (ms)" $((MAX_LOCK_MS + MARGIN_MS)) "$worst"
# The ALTER's queued lock request does make readers wait, but only until its
# lock_timeout: that is what the bound above is about.
assert_ge "the reader did queue behind the ALTER at least once (ms)" 30 "$worst"

###########################################################################
section "lock contention: retries exhausted"
plan "$W/p2/0002-add.yaml" <<EOF
id: 0002-add
title: add_column that gives up
reason: integration test
waves:
  - name: expand
    limits: { max_lock_ms: $MAX_LOCK_MS }
    steps:
      - { op: add_column, table: t, name: never, type: int }
EOF
hold_lock holder2 30 || fail "the second holder got its lock" "$(cat "$W/holder2.err")"
t0=$(ms_now)
run_ctl apply --lock-retries 2 "$W/p2"
t1=$(ms_now)
assert_rc "apply exits 1" 1 "$RC" "$ERR"
assert_contains "fails with SQLSTATE 55P03 (stderr)" "55P03" "$ERR"
assert_contains "says nothing was applied" "nothing was applied" "$ERR"
assert_contains "says how many retries" "after 2 retries" "$ERR"
assert_le "gave up promptly (ms)" 10000 $((t1 - t0))
assert_sql "exactly 2 retries, then step.error and plan.failed with 55P03" "2|1|1" \
    "SELECT count(*) FILTER (WHERE type = 'step.retry'),
            count(*) FILTER (WHERE type = 'step.error' AND message LIKE '%SQLSTATE 55P03%'),
            count(*) FILTER (WHERE type = 'plan.failed' AND message LIKE '%SQLSTATE 55P03%')
       FROM taskslaps.events WHERE plan_id = '0002-add'"
assert_sql "nothing applied: no column, no ledger row, plan failed" "0|0|failed" \
    "SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'never'),
            (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0002-add'),
            (SELECT status FROM taskslaps.plans WHERE plan_id = '0002-add')"
assert_sql "no lock request of taskslaps left waiting" "0" \
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE NOT l.granted AND a.application_name LIKE 'taskslaps%'"
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE t%' AND pid <> pg_backend_pid()" >/dev/null
wait_bg "$HOLDER" 20
# Released: resume and it goes through at once.
run_ctl resume 0002-add
assert_rc "resume the failed plan" 0 "$RC" "$ERR"
run_ctl apply --lock-retries 2 "$W/p2"
assert_rc "apply after the holder is gone exits 0" 0 "$RC" "$ERR"
assert_sql "the column now exists" "1" \
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'never'"

###########################################################################
section "runner lock: a second apply is standby"
newdb runner
q "CREATE TABLE r (id int PRIMARY KEY, v int);
   INSERT INTO r SELECT g, 0 FROM generate_series(1, 3000) g;" >/dev/null
plan "$W/p3/0001-slow.yaml" <<'EOF'
id: 0001-slow
title: A slow, throttled backfill
reason: integration test
waves:
  - name: backfill
    limits: { batch_size: 100, rows_per_second: 1000 }
    steps:
      - { op: backfill_sql, sql: "UPDATE r SET v = v + 1" }
EOF
start_ctl_bg first apply "$W/p3"
FIRST=$BG_PID
wait_for "SELECT EXISTS (SELECT 1 FROM taskslaps.backfill_progress)" 30 "$FIRST" ||
    fail "the first apply started its backfill" "$(cat "$W/first.err")"
holder_pid=$(q "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")
t0=$(ms_now)
run_ctl apply --lock-wait 1 "$W/p3"
t1=$(ms_now)
assert_rc "second apply exits 1" 1 "$RC" "$ERR"
assert_contains "second apply says standby" "standby" "$ERR"
assert_contains "second apply names the holder's pid" "(pid $holder_pid)" "$ERR"
assert_ge "second apply waited --lock-wait (ms)" 1000 $((t1 - t0))
assert_le "second apply gave up soon after (ms)" 2500 $((t1 - t0))
assert_sql "the standby apply recorded nothing" "0" \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'plan.start' AND id > (SELECT min(id) FROM taskslaps.events WHERE type = 'plan.start')"
assert_ok "the first apply was still running" alive "$FIRST"
wait_bg "$FIRST" 60
assert_rc "the first apply completes" 0 "$BG_RC" "$(cat "$W/first.err")"
assert_sql "every row updated once" "3000" "SELECT count(*) FROM r WHERE v = 1"
run_ctl apply --lock-wait 1 "$W/p3"
assert_rc "after it, the runner lock is free again" 0 "$RC" "$ERR"

# Any session holding the runner lock (a daemon, say) makes apply standby.
start_bg locker "$PSQL" -X -q -d "$CURDB" -c "SELECT pg_advisory_lock(8391176379410834802), pg_sleep(30)"
LOCKER=$BG_PID
wait_for "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted)" 10
run_ctl apply --lock-wait 1 "$W/p3"
assert_rc "apply while a daemon holds the runner lock exits 1" 1 "$RC" "$ERR"
assert_contains "... and says standby" "standby" "$ERR"
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_advisory_lock%' AND pid <> pg_backend_pid()" >/dev/null
wait_bg "$LOCKER" 20
assert_sql "no advisory lock left" "0" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"

env_finish
