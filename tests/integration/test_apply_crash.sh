#!/usr/bin/env bash
# Integration test of crash safety: `taskslapsctl apply` is killed with
# SIGKILL at random moments of a plan with a DDL step, a CREATE INDEX
# CONCURRENTLY on a 300,000-row table and a 100,000-row backfill, then run
# again until it completes. Afterwards: each step is in the ledger exactly
# once, a BEFORE UPDATE trigger counted exactly one update per row, no
# INVALID index is left and no advisory lock is held.
#
#   bash tests/integration/test_apply_crash.sh   (TS_VERBOSE=1 prints passes;
#   TS_CRASH_KILLS=N for more kills, default 6; TS_CRASH_SEED to replay)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

ROWS=100000
KILLS=${TS_CRASH_KILLS:-6}
seed=${TS_CRASH_SEED:-$$}
RANDOM=$seed
[ -z "${TS_VERBOSE:-}" ] || echo "seed $seed"

newdb crash
if ! q "
CREATE TABLE big (id bigint PRIMARY KEY, v int NOT NULL, upd int NOT NULL DEFAULT 0);
INSERT INTO big SELECT g, g, 0 FROM generate_series(1, $ROWS) g;
-- Counts every update of every row: a batch applied twice would show as 2.
CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    NEW.upd := OLD.upd + 1;
    RETURN NEW;
END
\$\$;
CREATE TRIGGER big_count_update BEFORE UPDATE ON big FOR EACH ROW EXECUTE FUNCTION count_update();
-- Large enough that building an index on it takes a moment (about 0.3 s here).
CREATE TABLE wide (id bigint NOT NULL, payload text NOT NULL);
INSERT INTO wide SELECT g, md5(g::text) || md5((-g)::text) FROM generate_series(1, 300000) g;" >/dev/null ||
    ! q "VACUUM ANALYZE big, wide" >/dev/null; then
    echo "setup failed" >&2
    exit 1
fi

P=$W/plans
plan "$P/0001-crash.yaml" <<'EOF'
id: 0001-crash
title: DDL, a concurrent index build and a large backfill
reason: crash test
waves:
  - name: expand
    steps:
      - { op: add_column, table: big, name: flag, type: int }
      - { op: add_index_concurrently, table: wide, name: wide_payload_idx, columns: [payload, id] }
  - name: backfill
    limits: { batch_size: 5000, rows_per_second: 0 }
    steps:
      - { op: backfill_sql, sql: "UPDATE big SET v = v + 1, flag = id % 7" }
EOF

rows_done() {
    local n
    n=$(q "SELECT coalesce((SELECT rows_done FROM taskslaps.backfill_progress), 0)" 2>/dev/null)
    echo "${n:-0}"
}

# The build's client backend (parallel workers show the same query: not them).
CIC_BACKEND="SELECT pid FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend'
              AND application_name LIKE 'taskslaps:%' AND query LIKE 'CREATE INDEX CONCURRENTLY%'"
BACKFILL_STARTED="SELECT EXISTS (SELECT 1 FROM taskslaps.backfill_progress)"
MET_GHOST="SELECT EXISTS (SELECT 1 FROM taskslaps.events WHERE type = 'step.retry' AND message LIKE '%still building it%')"

# writer SECONDS: a session that writes to wide (holds ROW EXCLUSIVE) for a
# while. Index builds wait for such sessions, as they do in production.
writer() {
    start_bg "writer$it" "$PSQL" -X -q -d "$CURDB" -c "BEGIN; LOCK TABLE wide IN ROW EXCLUSIVE MODE; SELECT pg_sleep($1); COMMIT;"
    WRITER=$BG_PID
    wait_for "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.relation = 'wide'::regclass
                AND l.granted AND a.query LIKE 'BEGIN; LOCK TABLE wide%')" 10
}

# When each run is killed:
#  1. during the index build, which waits for a writer; its backend is then
#     terminated too (as if the server side died): an INVALID index is left;
#  2. during the rebuild, with a writer started meanwhile so the build goes on
#     for a while: only the client dies, its backend finishes the build alone;
#  3. while it waits for that orphaned build (it must wait, not drop the
#     index under it);
#  4+. at random points of the backfill (or after a random delay near its end).
kills_done=0
kills_mid_index=0
kills_mid_backfill=0
kills_waiting_for_orphan=0
invalid_left=0
completed_early=0
ended_badly=()
orphan=0
for ((it = 1; it <= KILLS; it++)); do
    if [ "$(q "SELECT EXISTS (SELECT 1 FROM taskslaps.plans WHERE status = 'applied')" 2>/dev/null)" = t ]; then
        completed_early=1
        break
    fi
    WRITER=
    [ "$it" -ne 1 ] || writer 2
    start_ctl_bg "apply$it" apply "$P"
    pid=$BG_PID
    cic_pid=
    case $it in
    1 | 2)
        # the build, or (when an earlier run's backend finished it) the backfill
        wait_for "SELECT EXISTS ($CIC_BACKEND AND pid <> $orphan) OR ($BACKFILL_STARTED)" 30 "$pid"
        cic_pid=$(q "$CIC_BACKEND AND pid <> $orphan LIMIT 1")
        [ "$it" -ne 2 ] || [ -z "$cic_pid" ] || writer 2
        sleep "0.0$((RANDOM % 8))"
        what="during the index build"
        [ -n "$cic_pid" ] || what="at the start of the backfill"
        ;;
    3)
        wait_for "SELECT ($MET_GHOST) OR ($BACKFILL_STARTED)" 30 "$pid"
        sleep "0.0$((RANDOM % 8))"
        what="while it waits for the orphaned build"
        ;;
    *)
        now=$(rows_done)
        if [ "$now" -ge $((ROWS - 15000)) ]; then
            sleep "0.$(printf '%03d' $((RANDOM % 300)))"
            what="after a random delay"
        else
            target=$((now + 5000 + (RANDOM % 3) * 5000))
            wait_for "SELECT EXISTS (SELECT 1 FROM taskslaps.backfill_progress WHERE rows_done >= $target)" 60 "$pid"
            sleep "0.0$((RANDOM % 5))"
            what="in the backfill (after $target rows)"
        fi
        ;;
    esac
    if alive "$pid"; then
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null
        kills_done=$((kills_done + 1))
        if [ -n "$cic_pid" ] && [ "$(q "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $cic_pid AND state = 'active')")" = t ]; then
            kills_mid_index=$((kills_mid_index + 1))
            if [ "$it" -eq 1 ]; then
                q "SELECT pg_terminate_backend($cic_pid)" >/dev/null
                wait_for "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $cic_pid)" 10
                [ "$(q "SELECT taskslaps.index_exists('wide_payload_idx') AND NOT taskslaps.index_valid('wide_payload_idx')")" = t ] &&
                    invalid_left=1
            else
                orphan=$cic_pid
            fi
        fi
        if [ "$it" -eq 3 ] && [ "$(q "$MET_GHOST")" = t ]; then
            kills_waiting_for_orphan=1
        fi
        [ "$it" -ne 1 ] || wait_bg "$WRITER" 20
        done_now=$(rows_done)
        if [ "$done_now" -gt 0 ] && [ "$done_now" -lt "$ROWS" ]; then
            kills_mid_backfill=$((kills_mid_backfill + 1))
        fi
        [ -z "${TS_VERBOSE:-}" ] || echo "     kill $it $what: rows_done $done_now"
        # The runner lock's connection is idle, so its backend ends at once;
        # any advisory lock must be gone within moments.
        if wait_for "SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory')" 15; then
            pass "kill $it: advisory locks released after SIGKILL"
        else
            fail "kill $it: advisory locks released after SIGKILL" \
                "$(q "SELECT l.pid, l.mode, a.application_name, a.state, a.query FROM pg_locks l LEFT JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory'")"
        fi
    else
        wait_bg "$pid"
        [ "$BG_RC" -eq 0 ] || ended_badly+=("apply $it exited $BG_RC: $(tail -n 3 "$W/apply$it.err")")
        [ -z "${TS_VERBOSE:-}" ] || echo "     apply $it ended by itself (rc $BG_RC) before the kill"
    fi
done
assert_ge "at least 3 runs were killed" 3 "$kills_done"
assert_ge "kills landed mid-index-build" 2 "$kills_mid_index"
assert_eq "the killed build left an INVALID index" 1 "$invalid_left"
assert_eq "a run met the orphaned build and waited for it" 1 "$kills_waiting_for_orphan"
assert_ge "at least one kill landed mid-backfill" 1 "$kills_mid_backfill"
if [ "${#ended_badly[@]}" -eq 0 ]; then
    pass "no run that was not killed failed"
else
    fail "no run that was not killed failed" "${ended_badly[@]}"
fi

# Now let it finish (it may need to wait for a killed run's backend).
run_ctl apply "$P"
assert_rc "final apply exits 0" 0 "$RC" "$ERR" "$OUT"
assert_sql "plan applied" "applied" "SELECT status FROM taskslaps.plans WHERE plan_id = '0001-crash'"
assert_sql "each step exactly once in the ledger" "expand|0|add_column|1
expand|1|add_index_concurrently|1
backfill|0|backfill_sql|1" \
    "SELECT wave, step_index, op, count(*) FROM taskslaps.step_ledger WHERE plan_id = '0001-crash'
      GROUP BY 1, 2, 3 ORDER BY min(applied_at)"
assert_sql "every row updated exactly once" "$ROWS|0" \
    "SELECT count(*) FILTER (WHERE upd = 1 AND v = id + 1 AND flag = id % 7), count(*) FILTER (WHERE upd <> 1) FROM big"
assert_sql "the index exists and is valid" "t|t|wide" \
    "SELECT indisvalid, indisready, indrelid::regclass FROM pg_index WHERE indexrelid = 'wide_payload_idx'::regclass"
assert_sql "no INVALID index left" "0" "SELECT count(*) FROM pg_index WHERE NOT indisvalid OR NOT indisready"
assert_sql "the column exists once" "1" \
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'flag' AND NOT attisdropped"
assert_sql "the checkpoint covers the whole range" "[\"$ROWS\"]|[\"$ROWS\"]" \
    "SELECT last_key::text, upper_key::text FROM taskslaps.backfill_progress"
assert_sql "the INVALID index of the killed build was dropped and rebuilt" "t" \
    "SELECT EXISTS (SELECT 1 FROM taskslaps.events WHERE type = 'step.retry' AND message LIKE 'index wide_payload_idx is INVALID (left by an earlier build)%')"
assert_sql "the orphaned build's index was adopted, not built twice" "already_present" \
    "SELECT outcome FROM taskslaps.step_ledger WHERE op = 'add_index_concurrently'"
if [ "$kills_mid_backfill" -gt 0 ]; then
    assert_sql "a run resumed the backfill from its checkpoint" "t" \
        "SELECT EXISTS (SELECT 1 FROM taskslaps.events WHERE type = 'step.progress' AND message LIKE 'resuming the backfill%')"
fi
if wait_for "SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory')" 10; then
    pass "no advisory lock left after the last apply"
else
    fail "no advisory lock left after the last apply" "$(q "SELECT pid, mode FROM pg_locks WHERE locktype = 'advisory'")"
fi
# And once more: nothing to do.
ledger=$(q "SELECT count(*) FROM taskslaps.step_ledger")
run_ctl apply "$P"
assert_rc "apply after completion exits 0" 0 "$RC" "$ERR"
assert_sql "apply after completion changes nothing" "$ledger|$ROWS" \
    "SELECT (SELECT count(*) FROM taskslaps.step_ledger), (SELECT count(*) FROM big WHERE upd = 1)"
[ "$completed_early" -eq 0 ] || echo "note: the plan completed before all $KILLS kills (seed $seed)"

env_finish
