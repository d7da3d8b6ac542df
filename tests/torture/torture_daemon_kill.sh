#!/usr/bin/env bash
# Crash torture of taskslapsd: SIGKILL at random moments of a long run.
#
# Ten plans that cover every op (examples/plans 0001-0009 with their
# backfills unthrottled, and tests/torture/plans/0010, whose backfill is not
# idempotent) are pushed, one commit each, to a bare repository. A daemon
# applies them to the S.E.O. demo database (examples/seo, 100,000
# employees: CREATE INDEX CONCURRENTLY, backfills of 100,000 rows,
# validations, renames, drops). First an uninterrupted reference run on its
# own copy of the database; then runs on fresh copies in which the daemon is
# killed with SIGKILL (at a random time, or at a random step boundary plus a
# random delay) and restarted, a few times per run, until it reports in sync;
# then it is stopped with SIGTERM (exit 0). Each run must match the
# reference: the same catalog (tables, columns, indexes with indisvalid,
# constraints with convalidated), the same data checksums (the employee
# table carries an update counter kept by a trigger: a backfill batch applied
# twice would show), every step exactly once in the ledger, every backfill
# checkpoint complete; and no INVALID index, no advisory lock left after a
# kill or after the stop, no failed step, a git note "applied" for every plan.
#
#   bash tests/torture/torture_daemon_kill.sh          short: 10 kills, 3 per run
#   bash tests/torture/torture_daemon_kill.sh --long   long: 200 kills, 4 per run
#                                                      (or TS_TORTURE_LONG=1)
# Options: --seed N (or TS_TORTURE_SEED) replays the random choices; -v
# prints passes. Knobs: TS_TORTURE_KILLS, TS_TORTURE_KILLS_PER_RUN,
# TS_TORTURE_EMPLOYEES (default 100000).

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/torture/lib.sh
. "$here/lib.sh"
torture_init "$@"

EMPLOYEES=${TS_TORTURE_EMPLOYEES:-100000}
if [ "$TORTURE_LONG" = 1 ]; then
    KILLS=${TS_TORTURE_KILLS:-200}
    KPR=${TS_TORTURE_KILLS_PER_RUN:-4}
else
    KILLS=${TS_TORTURE_KILLS:-10}
    KPR=${TS_TORTURE_KILLS_PER_RUN:-3}
fi
SYNC_TIMEOUT=600

torture_start
seo_setup "$EMPLOYEES"
reference_run "$SYNC_TIMEOUT"

# ---------------------------------------------------------------- tortured runs
kills=0
runs=0
runs_matched=0
kills_matched=0
missed=0
declare -A phases=()
while [ "$kills" -lt "$KILLS" ]; do
    runs=$((runs + 1))
    target=t$runs
    section "run $runs"
    clone_db "$target" tmpl
    daemon_conf "$target" "$target" "$W/origin.git"
    run_kills=0
    run_phases=()
    finished=0
    for ((k = 0; k < KPR && kills < KILLS; k++)); do
        daemon_start "$target"
        pid=$DPID
        kill_point "$target" "$pid"
        if ! alive "$pid"; then
            wait "$pid"
            fail "daemon $target died by itself (exit $?)" "$(tail -n 20 "$W/$target.log")"
            break 2
        fi
        if [ "$(status_field "$target" '.sync == "in_sync" and .state == "idle"')" = true ]; then
            # finished before this kill point: the run ends here
            missed=$((missed + 1))
            daemon_term "$pid"
            finished=1
            break
        fi
        daemon_kill "$pid"
        kills=$((kills + 1))
        run_kills=$((run_kills + 1))
        phase=$(run_phase "$target")
        run_phases+=("$phase")
        kind=${phase%% (*}
        phases[$kind]=$((${phases[$kind]:-0} + 1))
        if wait_no_advisory "$target" 15; then
            pass "kill $kills ($phase): no advisory lock left"
        else
            fail "kill $kills ($phase): no advisory lock left" "$(advisory_locks "$target")"
        fi
    done
    if [ "$finished" = 0 ]; then
        # restart after the last kill and let it finish
        daemon_start "$target"
        pid=$DPID
        if ! wait_in_sync "$target" "$SYNC_TIMEOUT" "$pid"; then
            fail "run $runs reaches in sync after $run_kills kills" \
                "$(status_json "$target" | head -c 1500)" "$(tail -n 20 "$W/$target.log")"
            daemon_kill "$pid"
            break
        fi
        daemon_term "$pid"
    fi
    assert_eq "run $runs: the daemon exits 0 on SIGTERM" 0 "$DRC"
    check_run "run $runs" "$target" "kills: ${run_phases[*]}"
    runs_matched=$((runs_matched + RUN_OK))
    [ "$RUN_OK" = 0 ] || kills_matched=$((kills_matched + run_kills))
    note "run $runs: $run_kills kill(s) [$(IFS=';'; echo "${run_phases[*]}")] -> $([ "$RUN_OK" = 1 ] && echo matched || echo MISMATCH)"
    [ "$runs" -lt $((KILLS * 3)) ] || break
done

section summary
echo "kill points: $(for p in "${!phases[@]}"; do printf '%s x%s; ' "$p" "${phases[$p]}"; done)"
[ "$missed" -eq 0 ] || echo "($missed kill point(s) came after the run had finished; those runs ended there)"
echo "$kills_matched/$kills kill points matched the reference ($runs_matched/$runs runs)"
assert_eq "every kill landed and every run matched" "$KILLS/$KILLS" "$kills_matched/$kills"
env_finish
