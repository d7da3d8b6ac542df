#!/usr/bin/env bash
# The documentation against the code: every verb of taskslapsctl's verb table
# (src/ctl/main.c) has an entry in man/taskslapsctl.1 and appears in
# README.md, with every option its usage line names; every configuration key
# the daemon accepts (src/daemon/config.c) has an entry in
# man/taskslaps.yaml.5; every op (the op table, src/plan/plan_ops.c) has an entry in
# man/taskslaps-plan.5 and a row in README.md; every option of taskslapsd is
# in man/taskslapsd.8; `taskslapsctl VERB --help` exits 0 for every verb; the
# man pages render without warnings (when groff is installed); the relative
# links of README.md, CONTRIBUTING.md and docs/*.md point at files that exist.
# Needs no database.
#
#   TASKSLAPSCTL=build/taskslapsctl bash tests/integration/test_docs.sh
#   (TS_VERBOSE=1 prints passes; ctest sets TASKSLAPSCTL and TS_SRC_DIR)

set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${TS_SRC_DIR:-$(cd "$here/../.." && pwd)}
ctl=${TASKSLAPSCTL:-$src/build/taskslapsctl}
daemon=${TASKSLAPSD:-}
if [ ! -x "$ctl" ]; then
    echo "test_docs: no taskslapsctl at $ctl (set TASKSLAPSCTL)" >&2
    exit 2
fi

passed=0
failed=0
pass() {
    passed=$((passed + 1))
    [ -z "${TS_VERBOSE:-}" ] || printf 'ok   %s\n' "$1"
}
fail() {
    failed=$((failed + 1))
    printf 'FAIL %s\n' "$1"
    [ $# -lt 2 ] || printf '     %s\n' "${@:2}"
}
# check DESC COMMAND...: passes when the command succeeds.
check() {
    local desc=$1
    shift
    if "$@"; then pass "$desc"; else fail "$desc"; fi
}

# A man page's source with roff's \- as a plain -, so names can be searched.
man_text() {
    sed 's/\\-/-/g' "$src/man/$1"
}
# has_entry PAGE NAME: the page has a line ".B NAME" or ".BR NAME ..." (an entry).
has_entry() {
    man_text "$1" | grep -qE "^\.BR? $2( |\$)"
}
# in_readme NAME: README.md names it in code: `NAME` or `NAME ...`.
in_readme() {
    grep -qE "\`$1([ \`]|\$)" "$src/README.md"
}

for f in README.md man/taskslapsctl.1 man/taskslapsd.8 man/taskslaps.yaml.5 \
    man/taskslaps-plan.5; do
    if [ ! -f "$src/$f" ]; then
        fail "$f exists"
        echo "$passed passed, $failed failed"
        exit 1
    fi
done

# --- verbs ----------------------------------------------------------------
mapfile -t verbs < <(grep -oE '\{ "[a-z][a-z-]*", cmd_[a-z_]+' "$src/src/ctl/main.c" |
    sed -E 's/^\{ "([^"]+)".*/\1/')
if [ "${#verbs[@]}" -ge 8 ]; then
    pass "verbs found in src/ctl/main.c (${#verbs[@]})"
else
    fail "verbs found in src/ctl/main.c" "found: ${verbs[*]:-none}"
fi
for v in "${verbs[@]}"; do
    check "taskslapsctl.1 has an entry for $v" has_entry taskslapsctl.1 "$v"
    check "README.md names verb $v" in_readme "$v"
    out=$("$ctl" "$v" --help 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "taskslapsctl $v --help exits 0"
    else
        fail "taskslapsctl $v --help exits 0" "exit $rc: $(printf '%s' "$out" | head -3)"
    fi
    # every option the usage line names is documented
    usage=$(printf '%s\n' "$out" | grep -m1 '^usage:')
    for opt in $(printf '%s\n' "$usage" | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
        if man_text taskslapsctl.1 | grep -qF -- "$opt"; then
            pass "taskslapsctl.1 documents $v $opt"
        else
            fail "taskslapsctl.1 documents $v $opt" "usage: $usage"
        fi
    done
done
for opt in --socket --target --db --version --help; do
    check "taskslapsctl.1 documents the global option $opt" \
        grep -qF -- "$opt" <(man_text taskslapsctl.1)
done
for env in TASKSLAPS_SOCKET TASKSLAPS_DB NO_COLOR; do
    check "taskslapsctl.1 documents \$$env" has_entry taskslapsctl.1 "$env"
done

# --- configuration keys -----------------------------------------------------
mapfile -t keys < <(grep -oE 'strcmp\((k|v->keys\[j\]->str), "[a-z_]+"\)' \
    "$src/src/daemon/config.c" | sed -E 's/.*"([a-z_]+)"\)$/\1/' | sort -u)
if [ "${#keys[@]}" -ge 20 ]; then
    pass "configuration keys found in src/daemon/config.c (${#keys[@]})"
else
    fail "configuration keys found in src/daemon/config.c" "found: ${keys[*]:-none}"
fi
for k in "${keys[@]}"; do
    check "taskslaps.yaml.5 has an entry for $k" has_entry taskslaps.yaml.5 "$k"
done

# --- ops ---------------------------------------------------------------------
# the ops a plan may name: the entries of the op table with .plannable = true
mapfile -t ops < <(awk '/plan_optable\[OP__ALL\] = \{/ { t = 1 } t && /^};/ { t = 0 }
    t && match($0, /\.name = "[a-z_]+"/) { n = substr($0, RSTART + 9, RLENGTH - 10) }
    t && /\.plannable = true/ { print n }' "$src/src/plan/plan_ops.c")
if [ "${#ops[@]}" -ge 15 ]; then
    pass "ops found in src/plan/plan_ops.c (${#ops[@]})"
else
    fail "ops found in src/plan/plan_ops.c" "found: ${ops[*]:-none}"
fi
for o in "${ops[@]}"; do
    check "taskslaps-plan.5 has an entry for $o" has_entry taskslaps-plan.5 "$o"
    check "README.md names op $o" in_readme "$o"
done

# --- the daemon's options ------------------------------------------------------
mapfile -t dopts < <(sed -n '/static const struct option opts\[\]/,/};/p' \
    "$src/src/daemon/main.c" | grep -oE '\{ "[a-z-]+"' | sed -E 's/\{ "(.*)"/\1/')
if [ "${#dopts[@]}" -ge 3 ]; then
    pass "taskslapsd options found in src/daemon/main.c (${#dopts[@]})"
else
    fail "taskslapsd options found in src/daemon/main.c" "found: ${dopts[*]:-none}"
fi
for o in "${dopts[@]}"; do
    check "taskslapsd.8 documents --$o" grep -qF -- "--$o" <(man_text taskslapsd.8)
done
for s in SIGHUP SIGTERM SIGINT READY=1 STATUS= WATCHDOG=1 RELOADING=1 STOPPING=1; do
    check "taskslapsd.8 documents $s" grep -qF -- "$s" "$src/man/taskslapsd.8"
done
if [ -n "$daemon" ] && [ -x "$daemon" ]; then
    if "$daemon" --help >/dev/null 2>&1; then
        pass "taskslapsd --help exits 0"
    else
        fail "taskslapsd --help exits 0"
    fi
fi

# --- rendering -------------------------------------------------------------------
if command -v groff >/dev/null 2>&1; then
    for page in "$src"/man/*.[0-9]; do
        warn=$(groff -man -Tutf8 -ww "$page" 2>&1 >/dev/null)
        if [ -z "$warn" ]; then
            pass "groff renders ${page##*/} without warnings"
        else
            fail "groff renders ${page##*/} without warnings" "$(printf '%s' "$warn" | head -5)"
        fi
    done
else
    echo "test_docs: groff is not installed: the man pages' rendering is not checked"
fi

# --- links -------------------------------------------------------------------------
for md in "$src"/README.md "$src"/CONTRIBUTING.md "$src"/docs/*.md; do
    [ -f "$md" ] || continue
    dir=$(dirname "$md")
    # [text](target): relative targets only, without their #fragment
    for t in $(grep -oE '\]\([^)#[:space:]]+(#[^)]*)?\)' "$md" | sed -E 's/^\]\(([^)#]*).*/\1/' |
        grep -vE '^(https?|mailto):' | sort -u); do
        if [ -e "$dir/$t" ]; then
            pass "${md#"$src"/} links to $t"
        else
            fail "${md#"$src"/} links to $t (no such file)"
        fi
    done
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
