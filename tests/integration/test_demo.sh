#!/usr/bin/env bash
# The README's demo, shortened (2,000 employees, unthrottled backfills), end
# to end, so it cannot rot: every example plan applied by the prod daemon, the
# H3 plan blocked on the chaos branch, a failed plan reverted to expand by a
# pushed revert file and fixed forward, the broken plan noted as invalid, the
# notes and the audit tables shown, and nothing left running afterwards.
set -uo pipefail
. "$(dirname "$0")/../lib/assert.sh"

top=${TS_SRC_DIR:?TS_SRC_DIR is set by ctest}
out=$(mktemp)
# the demo's directories in one of this run's own, so that another run of
# the demo on the machine (another checkout's tests) is not taken for ours
base=$(mktemp -d)
chmod 755 "$base"
trap 'rm -f "$out"; rm -rf "$base"' EXIT

section "scripts/demo.sh --employees 2000 --fast"
TS_BUILD_DIR=${TS_BUILD_DIR:?} TS_DEMO_TMPDIR=$base NO_COLOR=1 timeout 600 bash "$top/scripts/demo.sh" \
	--employees 2000 --fast >"$out" 2>&1
rc=$?
assert_rc "the demo succeeds" 0 "$rc" "$(tail -20 "$out")"
text=$(tr -d '\000' <"$out")
for p in "$top"/examples/plans/*; do
	id=$(basename "${p%.*}")
	assert_match "prod applied $id" "\\[H[0-3]\\] $id +applied" "$text"
done
assert_match "the plan that fails on the bad row is reverted to expand" "\\[H[0-3]\\] 0012-email-domain +reverted to expand" "$text"
assert_match "its revert is applied" "\\[H3\\] 0013-revert-email-domain +applied" "$text"
assert_match "the fix forward is applied" "\\[H[0-3]\\] 0014-email-domain-fixed +applied" "$text"
assert_contains "plan shows what the revert undoes" "undoes backfill_sql (line 22, backfill wave" "$text"
assert_contains "the revert's note" "taskslaps prod: applied 0013-revert-email-domain H3" "$text"
assert_match "chaos blocks the H3 plan" "0002-foreign-keys +blocked" "$text"
assert_contains "the broken plan gets an invalid note" "taskslaps prod: invalid" "$text"
assert_contains "the invalid note has file:line:col" "migrations/0020-typo-in-op.yaml:9:15: error" "$text"
assert_contains "notes are shown with git log" "taskslaps prod: applied 0001-coffee-dependency H2 2/2 steps" "$text"
assert_contains "the audit tables are queried" "plan.ok" "$text"
assert_match "it ends with taskslapsctl status" "== taskslapsctl status" "$(tail -60 "$out")"
left=$(pgrep -f "taskslapsd --config $base/taskslaps-demo" || true)
assert_eq "no daemon left running" "" "$left"
assert_eq "no demo directory left behind" "" "$(ls -d "$base"/taskslaps-demo* 2>/dev/null || true)"
assert_finish
