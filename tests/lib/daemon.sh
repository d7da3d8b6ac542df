#!/usr/bin/env bash
# Shared setup of the daemon's integration tests (tests/integration/test_daemon_*.sh).
# On top of tests/lib/apply_env.sh (a throwaway PostgreSQL cluster, the work
# directory $W, newdb/q/start_bg/wait_for and the assertions) it adds bare
# migrations repositories to push plans to, taskslapsd instances with a fake
# NOTIFY_SOCKET, and polling of `taskslapsctl status --json` with python3.
#
#   . "$here/../lib/daemon.sh"
#   daemon_env_start                       # cluster + $W; daemons killed, cluster stopped on exit
#   newdb d1                               # CURDB, CONNINFO
#   repo_new origin [BRANCH...]            # $W/origin.git (bare, main + BRANCHes), clone $W/origin.wt
#   put_plan origin main dev@example.com 0001-x.yaml <<'EOF'   # commit, push; COMMIT is its sha
#   ...
#   EOF
#   wait_note "$W/origin.git" t1 "$COMMIT" "Status: applied"    # note_of prints the note
#   daemon_conf t1 "$W/origin.git" 'poll_interval: 60'         # $W/t1.yaml (database $CONNINFO)
#   daemon_start t1                        # waits for READY=1; DPID; log $W/t1.log, sd_notify $W/t1.notify
#   assert_status "applied" t1 'pst("0001-x") == "applied"' 30
#   ctl t1 status --json                   # RC OUT ERR
#   bump origin t1 [BRANCH]                # a commit touching no plan; waits for t1's pass over it
#   table_plan t > plan.yaml               # a one-step plan creating table t
#   daemon_stop t1                         # SIGTERM, waits; DRC exit status; sanitizer reports fail
#   env_finish
#
# Status predicates are Python expressions over `s` (the status document) with
# the helpers plan(ID) (the plan's entry, {} if absent) and pst(ID) (its status).
#
# Binaries: TASKSLAPSD, TASKSLAPSCTL and TS_NOTIFY_LISTEN (ctest sets them;
# by hand they default to the build/ tree). Point them at a sanitizer build
# to run the same tests under ASan.

# DPID DRC COMMIT are results for the sourcing test.
# shellcheck disable=SC2034
_daemon_lib_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$_daemon_lib_root/tests/lib/apply_env.sh"

TASKSLAPSD=${TASKSLAPSD:-$_daemon_lib_root/build/taskslapsd}
TS_NOTIFY_LISTEN=${TS_NOTIFY_LISTEN:-$_daemon_lib_root/build/tests/ts-notify-listen}
# the daemon must not think it runs under systemd's journal
unset JOURNAL_STREAM NOTIFY_SOCKET LISTEN_FDS LISTEN_PID WATCHDOG_USEC

declare -A _daemon_pid=()      # name -> pid of the running taskslapsd
declare -A _daemon_listener=() # name -> pid of its ts-notify-listen
declare -A _daemon_mark=()     # name -> lines of NAME.notify before the last start
DPID=
DRC=
COMMIT=

# daemon_env_start: env_start, plus a check of the daemon's binaries.
daemon_env_start() {
    local b
    for b in "$TASKSLAPSD" "$TS_NOTIFY_LISTEN"; do
        if [ ! -x "$b" ]; then
            echo "$b not found (build first, or set TASKSLAPSD / TS_NOTIFY_LISTEN)" >&2
            exit 1
        fi
    done
    command -v python3 >/dev/null || {
        echo "python3 is needed to read status --json" >&2
        exit 1
    }
    env_start
}

# ---------------------------------------------------------------- git side

# git_as NAME AUTHOR_EMAIL ARGS...: git in the clone of repository NAME as that author.
git_as() {
    local name=$1 email=$2
    shift 2
    git -C "$W/$name.wt" -c user.name="${email%%@*}" -c user.email="$email" \
        -c commit.gpgsign=false -c core.hooksPath=/dev/null "$@"
}

# repo_new NAME [BRANCH...]: a bare repository $W/NAME.git whose branch main
# (and each BRANCH, from the same first commit) holds an empty migrations
# directory (a README), and a working clone in $W/NAME.wt.
repo_new() {
    local name=$1 b
    shift
    git init -q --bare -b main "$W/$name.git" || exit 1
    git init -q -b main "$W/$name.wt" || exit 1
    git -C "$W/$name.wt" remote add origin "$W/$name.git"
    mkdir -p "$W/$name.wt/migrations"
    echo "# migration plans" >"$W/$name.wt/migrations/README.md"
    git_as "$name" admin@example.com add -A &&
        git_as "$name" admin@example.com commit -qm "Start the migrations directory" &&
        git_as "$name" admin@example.com push -q origin main || exit 1
    for b in "$@"; do
        git_as "$name" admin@example.com push -q origin "main:$b" || exit 1
    done
}

# put_plan NAME BRANCH AUTHOR_EMAIL FILE [MESSAGE]: writes stdin to
# migrations/FILE on BRANCH of repository NAME, commits as AUTHOR_EMAIL and
# pushes. COMMIT is the new commit. Returns non-zero when the push failed.
put_plan() {
    local name=$1 branch=$2 email=$3 file=$4 msg=${5:-"Add $4"}
    repo_checkout "$name" "$branch" || return 1
    cat >"$W/$name.wt/migrations/$file"
    git_as "$name" "$email" add -A &&
        git_as "$name" "$email" commit -qm "$msg" &&
        git_as "$name" "$email" push -q origin "$branch" || {
        echo "put_plan: could not push $file to $branch" >&2
        return 1
    }
    COMMIT=$(git -C "$W/$name.wt" rev-parse HEAD)
}

# repo_checkout NAME BRANCH: the clone of NAME on BRANCH as the remote has it.
repo_checkout() {
    local name=$1 branch=$2 cur
    cur=$(git -C "$W/$name.wt" symbolic-ref --short HEAD 2>/dev/null)
    [ "$cur" = "$branch" ] && return 0
    git -C "$W/$name.wt" fetch -q origin &&
        git -C "$W/$name.wt" checkout -q -B "$branch" "origin/$branch"
}

# note_of REPO_DIR TARGET COMMIT: the note taskslapsd wrote on COMMIT.
note_of() {
    git -C "$1" log -1 --format=%N --notes="taskslaps/$2" "$3" 2>/dev/null
}

# wait_note REPO_DIR TARGET COMMIT TEXT [TIMEOUT]: waits until the note on
# COMMIT contains TEXT (notes are written after the status is published).
wait_note() {
    local end
    end=$(($(ms_now) + ${5:-10} * 1000))
    while :; do
        case "$(note_of "$1" "$2" "$3")" in *"$4"*) return 0 ;; esac
        [ "$(ms_now)" -lt "$end" ] || return 1
        sleep 0.05
    done
}

# ---------------------------------------------------------------- daemons

# daemon_conf NAME REPOSITORY [KEY: VALUE...]: writes $W/NAME.yaml for the
# current database (CONNINFO); each KEY: VALUE line replaces the default of
# that top-level key (or adds it). Target NAME, socket $W/NAME.sock, state
# $W/NAME.state, branch main (protected), poll_interval 60.
daemon_conf() {
    local name=$1 repo=$2 l
    shift 2
    mkdir -p "$W/$name.state"
    cat >"$W/$name.yaml" <<EOF
target: $name
repository: $repo
branch: main
migrations_dir: migrations
state_dir: $W/$name.state
protected_branches: [main]
database: "$CONNINFO"
poll_interval: 60
control_socket: $W/$name.sock
EOF
    for l in "$@"; do
        sed -i "/^${l%%:*}:/d" "$W/$name.yaml"
        printf '%s\n' "$l" >>"$W/$name.yaml"
    done
}

# daemon_start NAME [TIMEOUT]: taskslapsd --config $W/NAME.yaml in the
# background with NOTIFY_SOCKET at a ts-notify-listen socket (messages in
# $W/NAME.notify, appended across restarts); its stderr is appended to
# $W/NAME.log. Waits for READY=1. DPID is its pid. Returns 1 (and fails an
# assertion) when it does not get ready.
daemon_start() {
    local name=$1 timeout=${2:-30} i
    if [ -z "${_daemon_listener[$name]:-}" ]; then
        rm -f "$W/$name.nsock"
        "$TS_NOTIFY_LISTEN" "$W/$name.nsock" "$W/$name.notify" &
        _daemon_listener[$name]=$!
        _env_bg_pids+=("$!")
        for ((i = 0; i < 200; i++)); do
            [ -S "$W/$name.nsock" ] && break
            sleep 0.01
        done
    fi
    touch "$W/$name.notify"
    notify_mark "$name"
    printf '=== taskslapsd started by %s at %s\n' "$(basename "$0")" "$(date +%T.%N)" >>"$W/$name.log"
    NOTIFY_SOCKET=$W/$name.nsock "$TASKSLAPSD" --config "$W/$name.yaml" >>"$W/$name.log" 2>&1 &
    DPID=$!
    _daemon_pid[$name]=$DPID
    _env_bg_pids+=("$DPID")
    if ! wait_notify "$name" READY=1 "$timeout"; then
        fail "$name: taskslapsd became ready" "log: $(tail -n 20 "$W/$name.log")"
        return 1
    fi
}

# wait_notify NAME TEXT [TIMEOUT]: waits until a sd_notify message sent since
# the last start (or mark) of NAME begins with TEXT.
wait_notify() {
    local name=$1 text=$2 timeout=${3:-30} end
    end=$(($(ms_now) + timeout * 1000))
    while [ "$(ms_now)" -lt "$end" ]; do
        notify_since "$name" | grep -q -- "^$text" && return 0
        if ! alive "${_daemon_pid[$name]}"; then
            notify_since "$name" | grep -q -- "^$text"
            return $?
        fi
        sleep 0.02
    done
    return 1
}

# notify_mark NAME: later wait_notify and notify_since calls see only the
# messages sent from now on (say, before a SIGHUP).
notify_mark() {
    _daemon_mark[$1]=$(wc -l <"$W/$1.notify")
}

# notify_since NAME: the sd_notify messages since the last start (or mark) of NAME.
notify_since() {
    tail -n +"$((${_daemon_mark[$1]:-0} + 1))" "$W/$1.notify" 2>/dev/null
}

# daemon_stop NAME [SIGNAL [TIMEOUT]]: sends SIGNAL (TERM) and waits for the
# daemon to exit (TIMEOUT seconds, default 60, then SIGKILL). DRC is its exit
# status. A sanitizer report in its log fails an assertion.
daemon_stop() {
    local name=$1 sig=${2:-TERM} timeout=${3:-60} pid
    pid=${_daemon_pid[$name]:-}
    [ -n "$pid" ] || { DRC=none; return 1; }
    kill -s "$sig" "$pid" 2>/dev/null
    # (no "Killed" job notice from bash)
    wait_bg "$pid" "$timeout" 2>/dev/null
    DRC=$BG_RC
    unset "_daemon_pid[$name]"
    [ "$sig" = KILL ] || sanitizer_check "$name"
}

# daemon_kill NAME: SIGKILL, reaped.
daemon_kill() {
    daemon_stop "$1" KILL 10
}

# daemon_pid NAME
daemon_pid() {
    echo "${_daemon_pid[$1]:-}"
}

# sanitizer_check NAME: no AddressSanitizer/LeakSanitizer report in $W/NAME.log.
sanitizer_check() {
    if grep -qE 'ERROR: (Address|Leak|Undefined.*)Sanitizer|runtime error:' "$W/$1.log" 2>/dev/null; then
        fail "$1: no sanitizer report in the daemon's log" \
            "$(grep -E -A 30 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$W/$1.log" | head -n 40)"
        return 1
    fi
}

# ctl NAME ARGS...: taskslapsctl --socket $W/NAME.sock ARGS...; sets RC, OUT, ERR.
ctl() {
    local name=$1
    shift
    "$TASKSLAPSCTL" --socket "$W/$name.sock" "$@" >"$W/.ctl.out" 2>"$W/.ctl.err"
    RC=$?
    OUT=$(cat "$W/.ctl.out")
    ERR=$(cat "$W/.ctl.err")
}

# wait_status NAME EXPR [TIMEOUT [INTERVAL_MS]]: polls `taskslapsctl status
# --json` until the Python expression EXPR holds (TIMEOUT seconds, default
# 30; every INTERVAL_MS, default 50). The last document read is left in
# $W/.status.json. Returns 0 when it held, 1 on timeout.
wait_status() {
    python3 - "$TASKSLAPSCTL" "$W/$1.sock" "$2" "${3:-30}" "${4:-50}" "$W/.status.json" <<'PY'
import json, subprocess, sys, time

ctl, sock, expr, timeout, interval, last_path = sys.argv[1:7]
code = compile(expr, "<predicate>", "eval")
end = time.monotonic() + float(timeout)
last = None
while True:
    p = subprocess.run([ctl, "--socket", sock, "status", "--json"], capture_output=True, text=True)
    try:
        s = json.loads(p.stdout)
    except ValueError:
        s = None
    if s is not None:
        last = s
        def plan(pid, s=s):
            return next((x for x in s.get("plans") or [] if x.get("plan_id") == pid), {})
        def pst(pid):
            return plan(pid).get("status")
        try:
            if eval(code, {"s": s, "plan": plan, "pst": pst}):
                break
        except Exception:
            pass
    if time.monotonic() >= end:
        with open(last_path, "w") as f:
            json.dump(last, f)
        sys.exit(1)
    time.sleep(float(interval) / 1000)
with open(last_path, "w") as f:
    json.dump(last, f)
PY
}

# assert_status DESC NAME EXPR [TIMEOUT]: wait_status as an assertion; on
# failure it shows the last status document.
assert_status() {
    if wait_status "$2" "$3" "${4:-30}"; then
        pass "$1"
    else
        fail "$1" "status never satisfied: $3" \
            "last status: $(_status_brief)" \
            "log: $(tail -n 8 "$W/$2.log" 2>/dev/null | tr '\n' '|')"
        return 1
    fi
}

# status_py NAME EXPR: prints EXPR evaluated over the current status document
# (a string as is, anything else as JSON); empty when the daemon does not answer.
status_py() {
    "$TASKSLAPSCTL" --socket "$W/$1.sock" status --json 2>/dev/null | python3 -c '
import json, sys
try:
    s = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
def plan(pid):
    return next((x for x in s.get("plans") or [] if x.get("plan_id") == pid), {})
def pst(pid):
    return plan(pid).get("status")
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v))' "$2"
}

_status_brief() {
    python3 -c '
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except Exception:
    print("(none)"); sys.exit(0)
if s is None:
    print("(the daemon did not answer)"); sys.exit(0)
keep = {k: s.get(k) for k in ("state", "health", "sync", "database", "running", "last_error", "last_result")}
keep["plans"] = [(p.get("plan_id"), p.get("status"), p.get("message", "")[:200]) for p in s.get("plans") or []]
print(json.dumps(keep))' "$W/.status.json"
}

# advisory_locks: advisory locks held in the cluster right now.
advisory_locks() {
    "$PSQL" -X -At -d postgres -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
}

# bump REPO TARGET [BRANCH]: a commit on BRANCH (main) that touches no plan;
# waits until a pass of TARGET has read it and published its result.
bump() {
    local name=$1 target=$2 branch=${3:-main} c
    repo_checkout "$name" "$branch" || return 1
    date +%s%N >>"$W/$name.wt/README.md"
    git_as "$name" admin@example.com add -A &&
        git_as "$name" admin@example.com commit -qm "Touch the README" &&
        git_as "$name" admin@example.com push -q origin "$branch" || return 1
    c=$(git -C "$W/$name.wt" rev-parse HEAD)
    wait_status "$target" "s.get('last_attempted_commit') == '$c'" 30
}

# table_plan NAME: a plan that creates table NAME.
table_plan() {
    cat <<EOF
title: Table $1
reason: the application needs it
steps:
  - { op: create_table, table: $1, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
}
