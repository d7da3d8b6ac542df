#!/usr/bin/env bash
# Integration test of `taskslapsctl lint --jobs N`: the output (stdout and
# stderr) and the exit status are byte for byte the same for 1 thread and for
# several, on a directory that mixes clean plans, findings, plans blocked in
# chaos mode, invalid YAML and JSON, and duplicate ids (the first file in
# the directory's order keeps the id, whichever thread read it first); in
# text and --json, in both modes, and with directories and files mixed on
# the command line. Needs no database.
#
#   TASKSLAPSCTL=build/taskslapsctl bash tests/integration/test_lint_jobs.sh
#   (TS_VERBOSE=1 prints passes; ctest sets TASKSLAPSCTL and TS_SRC_DIR)

set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${TS_SRC_DIR:-$(cd "$here/../.." && pwd)}
ctl=${TASKSLAPSCTL:-$src/build/taskslapsctl}
if [ ! -x "$ctl" ]; then
    echo "test_lint_jobs: no taskslapsctl at $ctl (set TASKSLAPSCTL)" >&2
    exit 2
fi

# shellcheck source=tests/lib/assert.sh
. "$here/../lib/assert.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dir=$tmp/migrations
mkdir -p "$dir"

# 400 plans; every 7th has a finding, every 11th is H3 (blocked in chaos
# mode), every 13th is invalid YAML, every 17th is an invalid JSON plan,
# every 19th repeats the id of the plan before it, every 23rd has an unknown op.
for ((i = 1; i <= 400; i++)); do
    id=$(printf '%04d-p%d' "$i" "$i")
    f=$dir/$id.yaml
    if ((i % 13 == 0)); then
        printf 'title: t\nreason: r\nsteps: [\n' >"$f"
    elif ((i % 17 == 0)); then
        rm -f "$f"
        printf '{ "title": "t", "reason": "r", "steps": [ { "op": "drop_table", "table": "a b" } ] }\n' \
            >"$dir/$id.json"
    elif ((i % 23 == 0)); then
        printf 'title: t\nreason: r\nsteps:\n  - { op: add_colum, table: t%d, name: c, type: text }\n' "$i" >"$f"
    elif ((i % 11 == 0)); then
        printf 'title: t\nreason: r\nsteps:\n  - { op: drop_column, table: t%d, name: c }\n' "$i" >"$f"
    elif ((i % 7 == 0)); then
        printf 'title: t\nreason: r\nsteps:\n  - op: sql\n    sql: ALTER TABLE t%d DROP CONSTRAINT c\n' "$i" >"$f"
    elif ((i % 19 == 0)); then
        printf 'id: %04d-p%d\ntitle: t\nreason: r\nsteps:\n  - { op: add_column, table: t%d, name: c, type: integer }\n' \
            "$((i - 1))" "$((i - 1))" "$i" >"$f"
    else
        printf 'title: t%d\nreason: r\nsteps:\n  - { op: add_column, table: t%d, name: c, type: integer }\n  - { op: add_index_concurrently, table: t%d, name: t%d_c, columns: [c] }\n' \
            "$i" "$i" "$i" "$i" >"$f"
    fi
done
cp "$src"/examples/plans/* "$tmp/" 2>/dev/null

# run_all NAME ARGS...: lint ARGS with --jobs 1 (the reference), then 2, 3,
# 8 and the default; each output and exit status must equal the reference.
run_all() {
    local name=$1 j out rc ref refrc
    shift
    ref=$("$ctl" lint --jobs 1 "$@" 2>&1)
    refrc=$?
    for j in 2 3 8 default; do
        if [ "$j" = default ]; then
            out=$("$ctl" lint "$@" 2>&1)
        else
            out=$("$ctl" lint -j "$j" "$@" 2>&1)
        fi
        rc=$?
        assert_eq "$name: exit status with --jobs $j" "$refrc" "$rc"
        if [ "$out" = "$ref" ]; then
            pass "$name: output with --jobs $j is the same as with 1"
        else
            fail "$name: output with --jobs $j differs from --jobs 1" \
                "$(diff <(printf '%s\n' "$ref") <(printf '%s\n' "$out") | head -n 10)"
        fi
    done
    REF=$ref REFRC=$refrc
}

run_all "text" "$dir"
assert_eq "text: invalid plans exit 2" 2 "$REFRC"
case "$REF" in
*"duplicate plan id '0018-p18': $dir/0018-p18.yaml has it already"*) pass "text: the duplicate is reported against the first file" ;;
*) fail "text: the duplicate is reported against the first file" ;;
esac
case "$REF" in
*"400 plans (protected mode): "*) pass "text: every plan counted" ;;
*) fail "text: every plan counted" "$(printf '%s' "$REF" | tail -n 1)" ;;
esac
run_all "chaos" --mode chaos "$dir"
run_all "json" --json "$dir"
run_all "json chaos" --json --mode chaos "$dir"
run_all "directories and files" "$tmp/0001-coffee-dependency.yaml" "$dir" "$src/examples/plans" \
    "$dir/0019-p19.yaml"
run_all "clean examples" "$src/examples/plans"
assert_eq "clean examples exit 0" 0 "$REFRC"

out=$("$ctl" lint --jobs 0 "$dir" 2>&1)
assert_eq "--jobs 0 is a usage error" 2 "$?"
case "$out" in
*"--jobs: expected a number from 1 to 256, found '0'"*) pass "--jobs 0 is explained" ;;
*) fail "--jobs 0 is explained" "$out" ;;
esac
"$ctl" lint --jobs x "$dir" >/dev/null 2>&1
assert_eq "--jobs x is a usage error" 2 "$?"

# The threads are really there: --jobs N starts N-1 helper threads (clone
# with CLONE_THREAD, as strace sees it), --jobs 1 none. Identical output
# alone would also hold for a lint that ignored --jobs.
threads() {
    strace -f -qq -e trace=clone,clone3 -o "$tmp/strace.out" "$ctl" lint --jobs "$1" "$dir" >/dev/null 2>&1
    grep -c CLONE_THREAD "$tmp/strace.out"
}
if command -v strace >/dev/null; then
    assert_eq "--jobs 3 starts 2 helper threads" 2 "$(threads 3)"
    assert_eq "--jobs 1 starts none" 0 "$(threads 1)"
else
    fail "strace is needed to count the threads (scripts/deps.sh installs it)"
fi

assert_finish
