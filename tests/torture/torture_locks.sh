#!/usr/bin/env bash
# Lock contention torture: taskslapsd applies lock-taking steps while a
# session holds a conflicting lock for a random time and an application
# keeps reading and writing.
#
# Each round pushes one plan with a step that needs a strong lock, with
# max_lock_ms 100, while
#  - a blocker session holds a lock that conflicts with the step for a random
#    300-2500 ms (a long reader's ACCESS SHARE against ADD COLUMN or ADD
#    CONSTRAINT, an open write transaction's ROW EXCLUSIVE against ADD FOREIGN
#    KEY, a row lock against a backfill batch, SHARE UPDATE EXCLUSIVE against
#    VALIDATE CONSTRAINT), and
#  - an application-like load (pgbench, 4 clients, 200 transactions/s: a
#    SELECT by key and an UPDATE by key, on rows the blocker does not touch)
#    measures each of its own statements.
# The step queues behind the blocker, gives up after max_lock_ms (the queue
# behind it clears), retries with backoff and succeeds once the blocker is
# gone. Reported per round and overall: the worst wait of an application
# statement (which must stay under max_lock_ms plus a margin, 150 ms, for
# scheduling noise on a loaded CI machine) and the retries the step needed
# (its step.retry events). Every plan must end applied.
#
#   bash tests/torture/torture_locks.sh          short: 3 rounds (add_column, foreign key, backfill)
#   bash tests/torture/torture_locks.sh --long   long: 12 rounds (two of each of six kinds)
#                                                (or TS_TORTURE_LONG=1)
# Options: --seed N (or TS_TORTURE_SEED); -v prints passes. Knob:
# TS_TORTURE_LOCK_MARGIN_MS (default 150).

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/torture/lib.sh
. "$here/lib.sh"
torture_init "$@"

if [ "$TORTURE_LONG" = 1 ]; then ROUNDS=12; else ROUNDS=3; fi
MAX_LOCK_MS=100
MARGIN_MS=${TS_TORTURE_LOCK_MARGIN_MS:-150}
PGBENCH=$TS_PG_BIN/pgbench
WAIT=180

torture_start
newdb fl
q "CREATE TABLE branch (id int PRIMARY KEY, name text NOT NULL);
   INSERT INTO branch SELECT g, 'branch ' || g FROM generate_series(1, 50) g;
   CREATE TABLE acct (id bigint PRIMARY KEY, branch_id int NOT NULL, balance bigint NOT NULL DEFAULT 0, note text);
   INSERT INTO acct SELECT g, 1 + g % 50, 0, NULL FROM generate_series(1, 50000) g;" >/dev/null &&
    q "VACUUM ANALYZE branch, acct" >/dev/null || { echo "setup failed" >&2; exit 1; }
make_repo "$W/origin.git"
TIP=$(git -C "$W/origin.git" rev-parse main)
daemon_conf l fl "$W/origin.git"
daemon_start l
LPID=$DPID
wait_in_sync l "$WAIT" "$LPID" || { fail "the daemon starts" "$(tail -n 10 "$W/l.log")"; env_finish; }

# The application: ids above 1000 only (the blocker's row lock is on 700).
cat >"$W/app_read.sql" <<'EOF'
\set id random(1001, 50000)
SELECT balance FROM acct WHERE id = :id;
EOF
cat >"$W/app_write.sql" <<'EOF'
\set id random(1001, 50000)
UPDATE acct SET balance = balance + 1 WHERE id = :id;
EOF

kinds=(add_column foreign_key backfill check rename validate)
worst_all=0
worst_kind=
retries_all=0
rounds_ok=0
for ((r = 1; r <= ROUNDS; r++)); do
    kind=${kinds[$(((r - 1) % ${#kinds[@]}))]}
    id=$(printf '%04d-lock-round-%s' "$r" "$kind")
    hold=$((300 + $(rand 2200)))
    section "round $r ($kind)"
    case $kind in
    add_column)
        lockmode="ACCESS SHARE"
        blocker="BEGIN; LOCK TABLE acct IN ACCESS SHARE MODE; SELECT pg_sleep($hold / 1000.0); COMMIT;"
        step="op: add_column, table: acct, name: c_$r, type: int"
        ;;
    foreign_key)
        lockmode="ROW EXCLUSIVE"
        blocker="BEGIN; UPDATE acct SET note = 'held' WHERE id = 1; SELECT pg_sleep($hold / 1000.0); COMMIT;"
        step="op: add_foreign_key_not_valid, table: acct, name: acct_branch_fk_$r, columns: [branch_id], ref_table: branch, ref_columns: [id]"
        ;;
    backfill)
        lockmode="row lock"
        blocker="BEGIN; SELECT id FROM acct WHERE id = 700 FOR UPDATE; SELECT pg_sleep($hold / 1000.0); COMMIT;"
        step="op: backfill_sql, sql: \"UPDATE acct SET note = 'round $r'\""
        ;;
    check)
        lockmode="ACCESS SHARE"
        blocker="BEGIN; LOCK TABLE acct IN ACCESS SHARE MODE; SELECT pg_sleep($hold / 1000.0); COMMIT;"
        step="op: add_check_not_valid, table: acct, name: acct_balance_check_$r, check: \"balance > -1000000000\""
        ;;
    rename)
        lockmode="ACCESS SHARE"
        blocker="BEGIN; LOCK TABLE acct IN ACCESS SHARE MODE; SELECT pg_sleep($hold / 1000.0); COMMIT;"
        step="op: rename_column, table: acct, from: c_$((r - 4)), to: c_$((r - 4))_renamed"
        ;;
    validate)
        lockmode="SHARE UPDATE EXCLUSIVE"
        blocker="BEGIN; LOCK TABLE acct IN SHARE UPDATE EXCLUSIVE MODE; SELECT pg_sleep($hold / 1000.0); COMMIT;"
        step="op: validate_constraint, table: acct, name: acct_balance_check_$((r - 2))"
        ;;
    esac
    plan "$W/plans/$id.yaml" <<EOF
id: $id
title: Lock round $r ($kind)
reason: torture test of lock waits under an application load
steps:
  - { $step, limits: { max_lock_ms: $MAX_LOCK_MS, batch_size: 500, rows_per_second: 0 } }
EOF

    # the application, for the whole round
    rm -f "$W"/app.*
    "$PGBENCH" -n -c 4 -j 1 -R 200 -T $((hold / 1000 + 8)) -f "$W/app_read.sql" -f "$W/app_write.sql" \
        -l --log-prefix="$W/app" fl >"$W/pgbench.out" 2>&1 &
    BENCH=$!
    _env_bg_pids+=("$BENCH")
    sleep 0.5
    # the blocker, granted before the plan is pushed
    start_bg "blocker$r" "$PSQL" -X -q -d fl -v ON_ERROR_STOP=1 -c "SET application_name = 'blocker'" -c "$blocker"
    BLOCKER=$BG_PID
    CURDB=fl
    wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'blocker' AND query LIKE '%pg_sleep%' AND state = 'active')" 10
    t_push=$(ms_now)
    TIP=$(push_plan "$W/plans/$id.yaml")
    if wait_in_sync l "$WAIT" "$LPID"; then
        pass "round $r: plan applied"
    else
        fail "round $r: plan applied" "$(status_json l | head -c 1500)" "$(tail -n 10 "$W/l.log")"
    fi
    t_done=$(($(ms_now) - t_push))
    wait_bg "$BLOCKER" 30
    wait "$BENCH" 2>/dev/null
    bench_rc=$?
    assert_eq "round $r: the application ran without errors" 0 "$bench_rc" "$(tail -n 5 "$W/pgbench.out")"
    # the statement's own time: latency from its scheduled start minus the schedule lag
    read -r n worst_r worst_w < <(cat "$W"/app.* 2>/dev/null | awk '
        { t = ($3 - $7) / 1000; n++
          if ($4 == 0 && t > r) r = t
          if ($4 == 1 && t > w) w = t }
        END { printf "%d %d %d\n", n, r, w }')
    worst=$worst_r
    [ "$worst_w" -le "$worst" ] || worst=$worst_w
    retries=$(q "SELECT count(*) FROM taskslaps.events WHERE type = 'step.retry' AND plan_id = '$id'")
    status=$(q "SELECT status FROM taskslaps.plans WHERE plan_id = '$id'")
    note "round $r: $kind vs $lockmode held $hold ms: $retries retries, applied after $t_done ms; app: $n statements, worst read ${worst_r} ms, worst write ${worst_w} ms"
    assert_eq "round $r: plan $id applied" applied "$status"
    assert_ge "round $r: the application was measured" 100 "$n"
    assert_le "round $r: worst application wait within max_lock_ms + ${MARGIN_MS} ms" $((MAX_LOCK_MS + MARGIN_MS)) "$worst"
    [ "$status" != applied ] || rounds_ok=$((rounds_ok + 1))
    if [ "$worst" -gt "$worst_all" ]; then
        worst_all=$worst
        worst_kind="round $r, $kind"
    fi
    retries_all=$((retries_all + retries))
done

section summary
assert_ge "the steps needed retries (the blockers were in the way)" "$ROUNDS" "$retries_all"
assert_eq "every plan applied" "$ROUNDS" "$rounds_ok"
assert_sql "no failed step" 0 "SELECT count(*) FROM taskslaps.events WHERE type IN ('step.error', 'plan.failed')"
daemon_term "$LPID"
assert_eq "the daemon exits 0 on SIGTERM" 0 "$DRC"
echo "worst application wait: $worst_all ms ($worst_kind; max_lock_ms $MAX_LOCK_MS, bound $((MAX_LOCK_MS + MARGIN_MS)) ms)"
echo "retries the steps needed: $retries_all in $ROUNDS rounds"
env_finish
