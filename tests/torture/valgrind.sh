#!/usr/bin/env bash
# Valgrind memcheck of taskslaps (opt-in; not part of ctest):
#
#   bash tests/torture/valgrind.sh            everything below
#   bash tests/torture/valgrind.sh --no-unit  skip the unit tests (the slow part)
#
#  1. every unit test executable (unit.*),
#  2. taskslapsctl plan/lint of examples/plans,
#  3. `taskslapsctl apply examples/plans` against the demo database (this and
#     the socket verbs below run taskslapsctl-full, which taskslapsctl
#     executes for them, directly),
#  4. one daemon pass, `taskslapsd --once`, following a bare repository of
#     examples/plans on a second copy of the demo database,
#  5. a daemon with its control socket: applies a plan pushed while it runs,
#     answers status/events/history/reconcile, stops on SIGTERM,
# each under valgrind --leak-check=full --error-exitcode=1, with
# tests/torture/valgrind.supp (suppressions for libgit2, OpenSSL and libpq
# internals only; each entry says why). It prints one line per program and a
# summary: errors, and bytes definitely, indirectly and possibly lost; it
# exits 1 on any error or leak.
#
# It builds its own unsanitized Debug tree (TS_VALGRIND_BUILD, default
# build/valgrind; valgrind cannot run AddressSanitizer binaries) and installs
# valgrind with apt-get when it is missing. Logs: $TS_VALGRIND_LOGS (default
# a temporary directory, kept and printed when something was found).

set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
unit=1
while [ $# -gt 0 ]; do
    case "$1" in
    --no-unit) unit=0 ;;
    -h | --help)
        sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "valgrind.sh: unknown option $1" >&2
        exit 2
        ;;
    esac
    shift
done

if ! command -v valgrind >/dev/null; then
    echo "installing valgrind"
    { apt-get update -q && apt-get install -y -q valgrind; } >/dev/null || {
        echo "valgrind.sh: cannot install valgrind" >&2
        exit 1
    }
fi

build=${TS_VALGRIND_BUILD:-$root/build/valgrind}
echo "building an unsanitized Debug tree in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DTS_SANITIZE=OFF -DTS_FUZZ=OFF >/dev/null &&
    cmake --build "$build" -j"$(nproc)" >"$build.log" 2>&1 || {
    tail -n 30 "$build.log"
    echo "valgrind.sh: build failed" >&2
    exit 1
}

export TASKSLAPSCTL=$build/taskslapsctl TASKSLAPSD=$build/taskslapsd
# The verbs that talk to a database or a daemon run in taskslapsctl-full
# (taskslapsctl executes it): checked directly, since memcheck stops at exec.
CTL_FULL=$build/taskslapsctl-full
# shellcheck source=tests/torture/lib.sh
. "$here/lib.sh"
torture_init --seed "${TS_TORTURE_SEED:-1}"
LOGS=${TS_VALGRIND_LOGS:-$(mktemp -d /tmp/taskslaps-valgrind.XXXXXX)}
mkdir -p "$LOGS"
# shellcheck disable=SC2054 # the commas are valgrind's
VG=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1 --num-callers=30
    --track-origins=yes --suppressions="$here/valgrind.supp" --gen-suppressions=all)

total_err=0
total_def=0
total_ind=0
total_pos=0
programs=0
bad=()

# summarise NAME LOGFILE...: one line from valgrind's summaries; adds to the totals.
summarise() {
    local name=$1 e d i p s
    shift
    read -r e d i p s < <(cat "$@" 2>/dev/null | awk '
        /ERROR SUMMARY:/ { e += $4; s++ }
        /definitely lost:/ { gsub(",", "", $4); d += $4 }
        /indirectly lost:/ { gsub(",", "", $4); i += $4 }
        /possibly lost:/ { gsub(",", "", $4); p += $4 }
        END { printf "%d %d %d %d %d\n", e, d, i, p, s }')
    if [ "$s" -eq 0 ]; then
        bad+=("$name (no valgrind summary)")
        printf '  %-44s no valgrind summary in %s\n' "$name" "$*"
        return
    fi
    programs=$((programs + 1))
    total_err=$((total_err + e))
    total_def=$((total_def + d))
    total_ind=$((total_ind + i))
    total_pos=$((total_pos + p))
    if [ "$e" -gt 0 ] || [ "$d" -gt 0 ] || [ "$i" -gt 0 ] || [ "$p" -gt 0 ]; then
        bad+=("$name")
        printf '  %-44s %d errors, lost %d/%d/%d bytes (definitely/indirectly/possibly)  <- %s\n' "$name" "$e" "$d" "$i" "$p" "$*"
    else
        printf '  %-44s 0 errors, 0 bytes lost\n' "$name"
    fi
}

# vg NAME ARGS...: runs ARGS under valgrind (not its children: git, ssh-keygen), log per process.
vg() {
    local name=$1
    shift
    "${VG[@]}" --trace-children=no --log-file="$LOGS/$name.%p.log" "$@"
}

torture_start

if [ "$unit" = 1 ]; then
    echo "1. unit tests"
    for t in "$build"/tests/unit.*; do
        [ -x "$t" ] || continue
        n=$(basename "$t")
        (cd "$build/tests" && TS_SRC_DIR=$root vg "$n" "$t" >"$LOGS/$n.out" 2>&1)
        rc=$?
        [ "$rc" -eq 0 ] || echo "  $n exited $rc (see $LOGS/$n.out)"
        [ "$rc" -eq 0 ] || bad+=("$n (exit $rc)")
        summarise "$n" "$LOGS/$n".*.log
    done
fi

echo "2. taskslapsctl plan and lint"
vg ctl-plan "$TASKSLAPSCTL" plan --json "$root"/examples/plans/* >/dev/null 2>"$LOGS/ctl-plan.err" || bad+=("ctl-plan (exit $?)")
summarise "taskslapsctl plan --json" "$LOGS"/ctl-plan.*.log
vg ctl-lint "$TASKSLAPSCTL" lint "$root/examples/plans" >/dev/null 2>"$LOGS/ctl-lint.err" || bad+=("ctl-lint (exit $?)")
summarise "taskslapsctl lint" "$LOGS"/ctl-lint.*.log
vg ctl-lint-broken "$TASKSLAPSCTL" lint "$root/examples/plans-broken" >/dev/null 2>&1
[ $? -eq 2 ] || bad+=("ctl-lint-broken (exit not 2)")
summarise "taskslapsctl lint (broken plans)" "$LOGS"/ctl-lint-broken.*.log

echo "3. taskslapsctl apply"
seo_template tmpl 1000
clone_db apply tmpl
vg ctl-apply "$CTL_FULL" --db "$CONNINFO" apply "$root/examples/plans" >"$LOGS/ctl-apply.out" 2>&1 ||
    bad+=("ctl-apply (exit $?)")
assert_sql "apply: every plan applied" 9 "SELECT count(*) FROM taskslaps.plans WHERE status = 'applied'"
summarise "taskslapsctl apply examples/plans" "$LOGS"/ctl-apply.*.log
vg ctl-history "$CTL_FULL" --db "$CONNINFO" history >/dev/null 2>&1 || bad+=("ctl-history (exit $?)")
summarise "taskslapsctl history" "$LOGS"/ctl-history.*.log
vg ctl-events "$CTL_FULL" --db "$CONNINFO" events >/dev/null 2>&1 || bad+=("ctl-events (exit $?)")
summarise "taskslapsctl events" "$LOGS"/ctl-events.*.log

echo "4. taskslapsd --once"
clone_db once tmpl
make_repo "$W/origin.git" "$root/examples/plans"
daemon_conf once once "$W/origin.git"
vg daemon-once "$TASKSLAPSD" --config "$W/once.yaml" --once >"$LOGS/daemon-once.out" 2>&1
rc=$?
assert_eq "taskslapsd --once exits 0 (in sync)" 0 "$rc"
[ "$rc" -eq 0 ] || bad+=("taskslapsd --once (exit $rc)")
assert_sql "--once: every plan applied" 9 "SELECT count(*) FROM taskslaps.plans WHERE status = 'applied'"
summarise "taskslapsd --once" "$LOGS"/daemon-once.*.log

echo "5. taskslapsd with its control socket"
clone_db live tmpl
mkdir -p "$W/first"
cp "$root"/examples/plans/000[1-3]* "$W/first/"
CLONE=$W/clone.live make_repo "$W/live.git" "$W/first"
daemon_conf live live "$W/live.git"
# not through vg (a function would run in a subshell): $! must be valgrind itself
"${VG[@]}" --log-file="$LOGS/daemon-live.%p.log" "$TASKSLAPSD" --config "$W/live.yaml" >"$LOGS/daemon-live.out" 2>&1 &
LIVE=$!
_env_bg_pids+=("$LIVE")
TIP=$(git -C "$W/live.git" rev-parse main)
wait_in_sync live 300 "$LIVE" || fail "the daemon under valgrind reaches in sync" "$(tail -n 5 "$LOGS/daemon-live.out")"
TIP=$(CLONE=$W/clone.live push_plan "$root"/examples/plans/000[4-9]*)
wait_in_sync live 300 "$LIVE" || fail "a push is applied under valgrind" "$(tail -n 5 "$LOGS/daemon-live.out")"
for cmd in "status" "status --json" "history" "events" "reconcile"; do
    # shellcheck disable=SC2086
    vg "ctl-${cmd// /-}" "$CTL_FULL" --socket "$W/live.sock" $cmd >/dev/null 2>&1 || bad+=("ctl $cmd (exit $?)")
    summarise "taskslapsctl $cmd (socket)" "$LOGS/ctl-${cmd// /-}".*.log
done
daemon_term "$LIVE" 120
assert_eq "the daemon under valgrind exits 0 on SIGTERM" 0 "$DRC"
[ "$DRC" = 0 ] || bad+=("taskslapsd (exit $DRC)")
summarise "taskslapsd (socket, push, SIGTERM)" "$LOGS"/daemon-live.*.log

echo
echo "valgrind: $programs programs, $total_err errors, definitely lost $total_def bytes, indirectly lost $total_ind bytes, possibly lost $total_pos bytes"
if [ "${#bad[@]}" -gt 0 ]; then
    fail "valgrind found nothing" "${bad[@]}" "logs: $LOGS"
else
    pass "valgrind found nothing"
    [ -n "${TS_VALGRIND_LOGS:-}" ] || rm -rf "$LOGS"
fi
env_finish
