#!/usr/bin/env bash
# Restart torture: PostgreSQL stopped and started again at random moments
# while taskslapsd applies a long run.
#
# The same ten plans and demo database as torture_daemon_kill.sh (examples/
# plans 0001-0009 unthrottled and tests/torture/plans/0010, 100,000
# employees). After an uninterrupted reference run, each run starts one
# daemon on a fresh copy of the database and, at random moments (a random
# time, or a random step boundary plus a random delay), stops the server —
# alternately `pg_ctl stop -m fast` (sessions terminated, transactions rolled
# back) and `-m immediate` (a crash: recovery at the next start, an index
# build in flight left INVALID) — keeps it down for a random while, and starts
# it again. The daemon must stay up, say so in its status (database not
# connected, state reconnecting, health degraded), reconnect with its backoff
# (starting over at each outage: within 10 s of the server being back) and
# finish; then it is stopped with SIGTERM (exit 0) and the database must
# match the reference exactly: catalog, data checksums (with the update
# counter of tests/torture/lib.sh), every step once in the ledger, no
# INVALID index, no advisory lock, no failed step, notes "applied".
#
#   bash tests/torture/torture_pg_restart.sh          short: 6 restarts, 3 per run
#   bash tests/torture/torture_pg_restart.sh --long   long: 60 restarts, 5 per run
#                                                     (or TS_TORTURE_LONG=1)
# Options: --seed N (or TS_TORTURE_SEED) replays the random choices; -v
# prints passes. Knobs: TS_TORTURE_RESTARTS, TS_TORTURE_RESTARTS_PER_RUN,
# TS_TORTURE_EMPLOYEES (default 100000).

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/torture/lib.sh
. "$here/lib.sh"
torture_init "$@"

EMPLOYEES=${TS_TORTURE_EMPLOYEES:-100000}
if [ "$TORTURE_LONG" = 1 ]; then
    RESTARTS=${TS_TORTURE_RESTARTS:-60}
    RPR=${TS_TORTURE_RESTARTS_PER_RUN:-5}
else
    RESTARTS=${TS_TORTURE_RESTARTS:-6}
    RPR=${TS_TORTURE_RESTARTS_PER_RUN:-3}
fi
SYNC_TIMEOUT=600

# pg_down MODE: stop the server (fast or immediate).
pg_down() {
    _pg_as_owner "$TS_PG_BIN/pg_ctl" -D "$TS_PG_DIR/data" -m "$1" -w -t 60 stop >/dev/null 2>>"$W/pg_ctl.err"
}

# pg_up: start it again (same port, same socket directory).
pg_up() {
    _pg_as_owner "$TS_PG_BIN/pg_ctl" -D "$TS_PG_DIR/data" -l "$TS_PG_DIR/log" -w -t 120 start \
        >/dev/null 2>>"$W/pg_ctl.err"
}

torture_start
seo_setup "$EMPLOYEES"
reference_run "$SYNC_TIMEOUT"

restarts=0
runs=0
runs_matched=0
restarts_matched=0
seen_reconnecting=0
worst_recover=0
worst_back=0
declare -A phases=()
mode_n=0
while [ "$restarts" -lt "$RESTARTS" ]; do
    runs=$((runs + 1))
    target=t$runs
    section "run $runs"
    clone_db "$target" tmpl
    daemon_conf "$target" "$target" "$W/origin.git"
    daemon_start "$target"
    pid=$DPID
    run_restarts=0
    run_phases=()
    for ((k = 0; k < RPR && restarts < RESTARTS; k++)); do
        # wait until the daemon is connected (and working) again
        wait_status "$target" '.database.connected == true and .state != "reconnecting"' "$SYNC_TIMEOUT" "$pid"
        kill_point "$target" "$pid"
        if ! alive "$pid"; then
            wait "$pid"
            fail "daemon $target died (exit $?)" "$(tail -n 20 "$W/$target.log")"
            break 2
        fi
        if [ "$(status_field "$target" '.sync == "in_sync" and .state == "idle"')" = true ]; then
            break # finished before this point: the run ends here
        fi
        mode_n=$((mode_n + 1))
        mode=fast
        [ $((mode_n % 2)) -eq 1 ] || mode=immediate
        # what it was doing, read just before the stop (the events table is gone meanwhile)
        phase=$(run_phase "$target")
        if ! pg_down "$mode"; then
            fail "pg_ctl stop -m $mode" "$(tail -n 5 "$W/pg_ctl.err")"
            break 2
        fi
        t_down=$(ms_now)
        restarts=$((restarts + 1))
        run_restarts=$((run_restarts + 1))
        run_phases+=("$mode $phase")
        kind=${phase%% (*}
        phases[$kind]=$((${phases[$kind]:-0} + 1))
        sleep_ms "$((200 + $(rand 1500)))"
        # while the server is down the daemon answers from memory and says so
        if [ "$(status_field "$target" '.database.connected == false and .state == "reconnecting" and .health == "degraded"')" = true ]; then
            seen_reconnecting=$((seen_reconnecting + 1))
        fi
        if ! pg_up; then
            fail "pg_ctl start" "$(tail -n 5 "$W/pg_ctl.err")" "$(tail -n 20 "$TS_PG_DIR/log")"
            break 2
        fi
        t_up=$(ms_now)
        if wait_status "$target" '.database.connected == true and .state != "reconnecting"' 120 "$pid"; then
            recover=$(($(ms_now) - t_down))
            [ "$recover" -le "$worst_recover" ] || worst_recover=$recover
            back=$(($(ms_now) - t_up))
            [ "$back" -le "$worst_back" ] || worst_back=$back
            pass "restart $restarts ($mode, $phase): the daemon reconnected"
            # the backoff starts over with each outage (1, 2, 4 s ...): it does not
            # go on doubling from the outages before in the same run
            assert_le "restart $restarts: reconnected within 10 s of the server being back" 10000 "$back"
        else
            fail "restart $restarts ($mode, $phase): the daemon reconnected" \
                "$(status_json "$target" | head -c 1000)" "$(tail -n 10 "$W/$target.log")"
        fi
    done
    if ! wait_in_sync "$target" "$SYNC_TIMEOUT" "$pid"; then
        fail "run $runs reaches in sync after $run_restarts restarts" \
            "$(status_json "$target" | head -c 1500)" "$(tail -n 20 "$W/$target.log")"
        daemon_kill "$pid"
        break
    fi
    daemon_term "$pid"
    assert_eq "run $runs: the daemon exits 0 on SIGTERM" 0 "$DRC"
    check_run "run $runs" "$target" "restarts: ${run_phases[*]}"
    runs_matched=$((runs_matched + RUN_OK))
    [ "$RUN_OK" = 0 ] || restarts_matched=$((restarts_matched + run_restarts))
    note "run $runs: $run_restarts restart(s) [$(IFS=';'; echo "${run_phases[*]}")] -> $([ "$RUN_OK" = 1 ] && echo matched || echo MISMATCH)"
    [ "$runs" -lt $((RESTARTS * 3)) ] || break
done

section summary
echo "restart points: $(for p in "${!phases[@]}"; do printf '%s x%s; ' "$p" "${phases[$p]}"; done)"
echo "status said 'reconnecting' (database not connected, health degraded) during $seen_reconnecting/$restarts outages"
echo "slowest reconnect: $((worst_recover / 1000)).$((worst_recover % 1000 / 100)) s from the stop (outage included), $((worst_back / 1000)).$((worst_back % 1000 / 100)) s after the server was back"
echo "$restarts_matched/$restarts restart points matched the reference ($runs_matched/$runs runs)"
assert_eq "every restart landed and every run matched" "$RESTARTS/$RESTARTS" "$restarts_matched/$restarts"
assert_ge "the status showed the outage at least once" 1 "$seen_reconnecting"
env_finish
