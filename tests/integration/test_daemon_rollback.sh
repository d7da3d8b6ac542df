#!/usr/bin/env bash
# Integration test of on_failure in taskslapsd: a plan with on_failure:
# rollback_plan whose validate wave fails on a bad row is undone by the
# daemon's executor; the plan is failed, the catalog is as before, and the
# git note says "rolled back to the start of the plan".
#
#   bash tests/integration/test_daemon_rollback.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/daemon.sh
. "$here/../lib/daemon.sh"
daemon_env_start

section "rollback_plan in the daemon"
newdb rb1
q "CREATE TABLE acct (id bigint PRIMARY KEY, v int NOT NULL);
   INSERT INTO acct SELECT g, g FROM generate_series(1, 100) g;
   UPDATE acct SET v = -1 WHERE id = 7" >/dev/null
catalog="SELECT string_agg(attname || ':' || attnotnull, ',' ORDER BY attnum) || '|' ||
  (SELECT count(*) FROM pg_constraint WHERE conrelid = 'acct'::regclass AND contype = 'c')
  FROM pg_attribute WHERE attrelid = 'acct'::regclass AND attnum > 0 AND NOT attisdropped"
before=$(q "$catalog")
repo_new origin main
put_plan origin main dev@example.com 0001-rb.yaml <<'EOF'
title: a check that one row breaks
reason: rollback test
on_failure: rollback_plan
waves:
  - name: expand
    steps:
      - { op: add_column, table: acct, name: score, type: int }
      - { op: add_check_not_valid, table: acct, name: acct_v_pos, check: "v >= 0" }
  - name: validate
    steps:
      - { op: validate_constraint, table: acct, name: acct_v_pos }
EOF
C1=$COMMIT
daemon_conf rb "$W/origin.git" 'branch: main'
daemon_start rb || exit 1
assert_status "the plan is failed" rb "pst('0001-rb') == 'failed'"
assert_eq "the catalog is as before the plan" "$before" "$(q "$catalog")"
assert_sql "the rollback is recorded" "rollback.start rollback.step rollback.step rollback.ok" \
    "SELECT string_agg(type, ' ' ORDER BY id) FROM taskslaps.events WHERE type LIKE 'rollback.%'"
if wait_note "$W/origin.git" rb "$C1" "Status: failed"; then
    pass "the note says failed"
else
    fail "the note says failed" "$(note_of "$W/origin.git" rb "$C1")"
fi
assert_contains "the note says where the database stands" "rolled back to the start of the plan (2 steps undone)" \
    "$(note_of "$W/origin.git" rb "$C1")"
daemon_stop rb
assert_eq "the daemon exits 0" 0 "$DRC"

env_finish
