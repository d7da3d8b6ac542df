#!/usr/bin/env bash
# Integration test of the systemd unit systemd/taskslaps@.service: an
# instance of it (ExecStart pointing at the built daemon) passes
# `systemd-analyze verify`, and `systemd-analyze security --offline=yes`
# rates its exposure 2.0 or lower. Skipped when systemd-analyze is absent.
#
#   bash tests/integration/test_daemon_systemd.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/lib/assert.sh
. "$root/tests/lib/assert.sh"

TASKSLAPSD=${TASKSLAPSD:-$root/build/taskslapsd}
MAX_EXPOSURE=2.0

if ! command -v systemd-analyze >/dev/null; then
    echo "systemd-analyze not found: skipped"
    exit 0
fi
if [ ! -x "$TASKSLAPSD" ]; then
    echo "taskslapsd not found at $TASKSLAPSD (build first, or set TASKSLAPSD)" >&2
    exit 1
fi
T=$(mktemp -d)
trap 'rm -rf -- "$T"' EXIT

unit=$T/taskslaps@test.service
sed "s|^ExecStart=[^ ]*|ExecStart=$TASKSLAPSD|" "$root/systemd/taskslaps@.service" >"$unit"
assert_contains "ExecStart points at the built daemon" "ExecStart=$TASKSLAPSD --config /etc/taskslaps/%i.yaml" "$(cat "$unit")"

section "verify"
out=$(cd "$T" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no "$unit" 2>&1)
assert_rc "systemd-analyze verify passes" 0 "$?" "$out"
assert_not_contains "no complaint about the unit" "taskslaps@test.service:" "$out"

section "security"
out=$(cd "$T" && SYSTEMD_COLORS=0 systemd-analyze security --offline=yes --no-pager "$unit" 2>&1)
assert_rc "systemd-analyze security runs" 0 "$?" "$out"
level=$(sed -n 's/.*Overall exposure level for taskslaps@test\.service: \([0-9.]*\).*/\1/p' <<<"$out")
[ -z "${TS_VERBOSE:-}" ] || echo "     exposure level $level"
assert_match "an exposure level is printed" '^[0-9]+\.[0-9]+$' "$level"
assert_eq "exposure $level is at most $MAX_EXPOSURE" yes \
    "$(awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { print (l != "" && l + 0 <= m + 0) ? "yes" : "no" }')"

assert_finish
