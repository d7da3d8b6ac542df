#!/usr/bin/env bash
# Shared setup of the executor's integration tests (tests/integration/test_apply_*.sh):
# a throwaway PostgreSQL 15 cluster, a fresh database per case, the
# taskslapsctl binary, and helpers to run it, query, and wait for a state.
#
#   . "$root/tests/lib/apply_env.sh"
#   env_start                       # cluster + work dir; torn down by an EXIT trap
#   newdb case1                     # CURDB=case1 (created), CONNINFO for it
#   q "SELECT 1"                    # one query on CURDB, unaligned tuples only
#   plan "$W/p/0001-x.yaml" <<'EOF' # writes a plan file (directories made)
#   ...
#   EOF
#   run_ctl apply "$W/p"            # sets RC, OUT, ERR
#   start_bg NAME CMD...            # background process; its pid in BG_PID, logs in $W/NAME.*
#   wait_for "SQL returning t" 10   # polls; returns 1 on timeout
#   assert_finish
#
# TASKSLAPSCTL (the binary) defaults to build/taskslapsctl of the source tree;
# psql is the one in TS_PG_BIN, called directly (not Debian's wrapper).
# TS_KEEP_W=DIR: the work directory ($W: logs, repositories) is copied to DIR
# before it is removed, to look at after a run.

# RC OUT ERR BG_PID BG_RC are results for the sourcing test.
# shellcheck disable=SC2034
set -u
_apply_env_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/lib/pg.sh
. "$_apply_env_root/tests/lib/pg.sh"
# shellcheck source=tests/lib/assert.sh
. "$_apply_env_root/tests/lib/assert.sh"

TASKSLAPSCTL=${TASKSLAPSCTL:-$_apply_env_root/build/taskslapsctl}
PSQL=$TS_PG_BIN/psql
export NO_COLOR=1
# No colour, no terminal: the output is read by the test.
unset TASKSLAPS_DB TASKSLAPS_SOCKET

CURDB=
CONNINFO=
W=
_env_pgdir=
_env_bg_pids=()
_env_t0=$(date +%s.%N)

_env_cleanup() {
    local pid
    # Only the processes this test started, by pid.
    for pid in "${_env_bg_pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null
    done
    for pid in "${_env_bg_pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
    [ -z "$_env_pgdir" ] || pg_stop "$_env_pgdir"
    [ -z "$W" ] || { [ -n "${TS_KEEP_W:-}" ] && cp -r "$W" "$TS_KEEP_W"; rm -rf -- "$W"; }
}

# env_start: start the cluster and make the work directory $W.
env_start() {
    if [ ! -x "$TASKSLAPSCTL" ]; then
        echo "taskslapsctl not found at $TASKSLAPSCTL (build first, or set TASKSLAPSCTL)" >&2
        exit 1
    fi
    W=$(mktemp -d)
    _env_pgdir=$(mktemp -d)
    trap _env_cleanup EXIT
    trap 'exit 130' INT TERM
    pg_start "$_env_pgdir" || {
        echo "could not start PostgreSQL" >&2
        exit 1
    }
}

# newdb NAME: create database NAME and make it the current one.
newdb() {
    pg_createdb "$1" || {
        echo "could not create database $1" >&2
        exit 1
    }
    CURDB=$1
    CONNINFO=$(pg_conninfo "$1")
}

# q SQL [PSQL ARGS...]: run SQL on the current database; prints the rows.
q() {
    local sql=$1
    shift
    "$PSQL" -X -At -v ON_ERROR_STOP=1 -d "$CURDB" "$@" -c "$sql"
}

# qdb DB SQL: the same on another database.
qdb() {
    "$PSQL" -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# assert_sql DESC EXPECTED SQL
assert_sql() {
    assert_eq "$1" "$2" "$(q "$3" 2>&1)"
}

# plan PATH: write stdin to PATH, making its directory.
plan() {
    mkdir -p "$(dirname "$1")"
    cat >"$1"
}

# run_ctl ARGS...: taskslapsctl --db CONNINFO ARGS...; sets RC, OUT, ERR.
run_ctl() {
    "$TASKSLAPSCTL" --db "$CONNINFO" "$@" >"$W/.out" 2>"$W/.err"
    RC=$?
    OUT=$(cat "$W/.out")
    ERR=$(cat "$W/.err")
    if [ -n "${TS_VERBOSE:-}" ] && [ -n "$ERR" ]; then
        printf '     (stderr of %s: %s)\n' "$1" "$(_assert_short "$ERR")"
    fi
    return 0
}

# start_bg NAME CMD...: run CMD in the background, stdout in $W/NAME.out and
# stderr in $W/NAME.err; BG_PID is its pid (the command itself, not a subshell).
start_bg() {
    local name=$1
    shift
    "$@" >"$W/$name.out" 2>"$W/$name.err" &
    BG_PID=$!
    _env_bg_pids+=("$BG_PID")
}

# start_ctl_bg NAME ARGS...: taskslapsctl --db CONNINFO ARGS... in the background.
start_ctl_bg() {
    local name=$1
    shift
    start_bg "$name" "$TASKSLAPSCTL" --db "$CONNINFO" "$@"
}

# wait_bg PID [TIMEOUT]: wait for a background process (at most TIMEOUT
# seconds, default 60, then it is killed); its exit status in BG_RC.
wait_bg() {
    local pid=$1 timeout=${2:-60} i
    for ((i = 0; i < timeout * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        BG_RC=timeout
        return 1
    fi
    wait "$pid"
    BG_RC=$?
    return 0
}

# alive PID: whether the process is still running.
alive() {
    kill -0 "$1" 2>/dev/null
}

# wait_for SQL [TIMEOUT [PID]]: poll SQL on the current database until it
# returns t (TIMEOUT seconds, default 30). With PID, give up early when that
# process has ended. Returns 0 when it held, 1 otherwise.
wait_for() {
    local sql=$1 timeout=${2:-30} pid=${3:-} end
    end=$(($(date +%s%N) / 1000000 + timeout * 1000))
    while :; do
        [ "$(q "$sql" 2>/dev/null)" = t ] && return 0
        [ -z "$pid" ] || alive "$pid" || {
            [ "$(q "$sql" 2>/dev/null)" = t ] && return 0
            return 1
        }
        [ "$(($(date +%s%N) / 1000000))" -lt "$end" ] || return 1
        sleep 0.03
    done
}

# wait_file FILE TEXT [TIMEOUT]: poll until FILE contains TEXT.
wait_file() {
    local file=$1 text=$2 timeout=${3:-30} i
    for ((i = 0; i < timeout * 20; i++)); do
        grep -qF -- "$text" "$file" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# ms_now: milliseconds since the epoch.
ms_now() {
    echo $(($(date +%s%N) / 1000000))
}

# events_of PLAN: "type" lines of the plan's events, oldest first.
events_of() {
    q "SELECT type FROM taskslaps.events WHERE plan_id = '$1' ORDER BY id"
}

# env_finish: runtime and the summary line; exits with the result.
env_finish() {
    local t1
    t1=$(date +%s.%N)
    awk -v a="$_env_t0" -v b="$t1" 'BEGIN { printf "runtime %.1f s\n", b - a }'
    assert_finish
    exit $?
}
