#!/usr/bin/env bash
# Assertions for the shell tests, with a pass/fail counter.
#
#   . tests/lib/assert.sh
#   assert_eq "two plus two" 4 "$((2 + 2))"
#   assert_contains "greets" "hello" "$out"
#   assert_rc "apply succeeds" 0 "$rc"
#   ...
#   assert_finish            # prints "N passed, N failed"; returns 1 on any failure
#
# Failures are always printed (with what was expected and what was found);
# passes only with TS_VERBOSE=1. section "NAME" prints a heading with
# TS_VERBOSE=1 and prefixes later failure lines with NAME.

TS_ASSERT_PASSED=0
TS_ASSERT_FAILED=0
TS_ASSERT_SECTION=

section() {
    TS_ASSERT_SECTION=$1
    [ -z "${TS_VERBOSE:-}" ] || printf '== %s\n' "$1"
}

pass() {
    TS_ASSERT_PASSED=$((TS_ASSERT_PASSED + 1))
    [ -z "${TS_VERBOSE:-}" ] || printf 'ok   %s\n' "$1"
}

# fail DESC [DETAIL...]
fail() {
    TS_ASSERT_FAILED=$((TS_ASSERT_FAILED + 1))
    printf 'FAIL %s%s\n' "${TS_ASSERT_SECTION:+[$TS_ASSERT_SECTION] }" "$1"
    shift
    local line
    for line in "$@"; do
        printf '     %s\n' "$line"
    done
}

# _assert_short TEXT: TEXT cut to a readable length for a failure message.
_assert_short() {
    local s=$1
    if [ "${#s}" -gt 1500 ]; then
        printf '%s... (%d bytes)' "${s:0:1500}" "${#s}"
    else
        printf '%s' "$s"
    fi
}

# assert_eq DESC EXPECTED ACTUAL
assert_eq() {
    if [ "$2" = "$3" ]; then
        pass "$1"
    else
        fail "$1" "expected: $(_assert_short "$2")" "actual:   $(_assert_short "$3")"
        return 1
    fi
}

# assert_ne DESC UNEXPECTED ACTUAL
assert_ne() {
    if [ "$2" != "$3" ]; then
        pass "$1"
    else
        fail "$1" "expected anything but: $(_assert_short "$2")"
        return 1
    fi
}

# assert_contains DESC NEEDLE HAYSTACK
assert_contains() {
    case "$3" in
    *"$2"*) pass "$1" ;;
    *)
        fail "$1" "expected to contain: $2" "actual: $(_assert_short "$3")"
        return 1
        ;;
    esac
}

# assert_not_contains DESC NEEDLE HAYSTACK
assert_not_contains() {
    case "$3" in
    *"$2"*)
        fail "$1" "expected not to contain: $2" "actual: $(_assert_short "$3")"
        return 1
        ;;
    *) pass "$1" ;;
    esac
}

# assert_match DESC ERE HAYSTACK
assert_match() {
    if printf '%s' "$3" | grep -qE -- "$2"; then
        pass "$1"
    else
        fail "$1" "expected to match: $2" "actual: $(_assert_short "$3")"
        return 1
    fi
}

# assert_rc DESC EXPECTED_RC ACTUAL_RC [CONTEXT...]: CONTEXT (say, the
# command's stderr) is printed only on failure.
assert_rc() {
    if [ "$2" = "$3" ]; then
        pass "$1"
    else
        local desc=$1 want=$2 got=$3
        shift 3
        local ctx=()
        local c
        for c in "$@"; do ctx+=("$(_assert_short "$c")"); done
        fail "$desc" "expected exit status $want, got $got" "${ctx[@]}"
        return 1
    fi
}

# assert_le DESC LIMIT ACTUAL: integer ACTUAL <= LIMIT
assert_le() {
    if [[ "$3" =~ ^-?[0-9]+$ ]] && [ "$3" -le "$2" ]; then
        pass "$1"
    else
        fail "$1" "expected at most $2, got '$3'"
        return 1
    fi
}

# assert_ge DESC MIN ACTUAL: integer ACTUAL >= MIN
assert_ge() {
    if [[ "$3" =~ ^-?[0-9]+$ ]] && [ "$3" -ge "$2" ]; then
        pass "$1"
    else
        fail "$1" "expected at least $2, got '$3'"
        return 1
    fi
}

# assert_ok DESC CMD...: CMD exits 0
assert_ok() {
    local desc=$1 out rc
    shift
    out=$("$@" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        pass "$desc"
    else
        fail "$desc" "command failed ($rc): $*" "$(_assert_short "$out")"
        return 1
    fi
}

# assert_finish: the summary line; returns non-zero when anything failed.
assert_finish() {
    printf '%d passed, %d failed\n' "$TS_ASSERT_PASSED" "$TS_ASSERT_FAILED"
    [ "$TS_ASSERT_FAILED" -eq 0 ] && [ "$TS_ASSERT_PASSED" -gt 0 ]
}
