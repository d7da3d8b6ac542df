#!/usr/bin/env bash
# Integration test of revert plans in taskslapsd: a plan whose validate wave
# fails on a real bad row stops the line; a revert file pushed after it
# (to_wave: expand) runs although the failed plan stops the line, undoes the
# applied steps after expand, and leaves the failed plan "reverted to
# expand" and the revert "applied", each with its git note; the plan after
# it (a fix forward) then runs. status, history and the notes show it, and
# the reverted plan is not run again on later passes.
#
#   bash tests/integration/test_daemon_revert.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/daemon.sh
. "$here/../lib/daemon.sh"
daemon_env_start

section "a failed plan reverted to expand by a pushed revert file"
newdb rv1
q "CREATE TABLE acct (id bigint PRIMARY KEY, v int NOT NULL, bal int NOT NULL);
   INSERT INTO acct SELECT g, g, g FROM generate_series(1, 300) g;
   UPDATE acct SET v = -1 WHERE id = 7" >/dev/null
catalog="SELECT string_agg(attname || ':' || attnotnull, ',' ORDER BY attnum) || '|' ||
  (SELECT string_agg(conname || ':' || convalidated, ',' ORDER BY conname) FROM pg_constraint
    WHERE conrelid = 'acct'::regclass AND contype = 'c')
  FROM pg_attribute WHERE attrelid = 'acct'::regclass AND attnum > 0 AND NOT attisdropped"
repo_new origin main
put_plan origin main dev@example.com 0001-score.yaml <<'EOF'
title: a score for every account, and a check that one row breaks
reason: revert test
waves:
  - name: expand
    steps:
      - { op: add_column, table: acct, name: score, type: int }
      - { op: add_check_not_valid, table: acct, name: acct_v_pos, check: "v >= 0" }
  - name: backfill
    steps:
      - op: backfill_sql
        sql: "UPDATE acct SET score = bal WHERE score IS NULL AND v >= 0"
        revert_sql: "UPDATE acct SET score = NULL WHERE score IS NOT NULL"
  - name: validate
    steps:
      - { op: validate_constraint, table: acct, name: acct_v_pos }
EOF
C1=$COMMIT
daemon_conf rv "$W/origin.git" 'branch: main'
daemon_start rv || exit 1
assert_status "the plan is failed" rv "pst('0001-score') == 'failed'"
assert_sql "its backfill ran" 299 "SELECT count(score) FROM acct WHERE score = bal AND id <> 7"
expand_state="score:false|acct_v_pos:false"
assert_eq "the catalog: score and the unvalidated check" "$(q "$catalog" | sed 's/^.*,score/score/')" "$expand_state"

put_plan origin main dev@example.com 0002-undo-score.yaml "Revert 0001-score to expand" <<'EOF'
title: undo the score's backfill; keep the column and the check
reason: account 7 breaks the check; a fix forward follows
revert: 0001-score
to_wave: expand
EOF
C2=$COMMIT
assert_status "the revert is applied" rv "pst('0002-undo-score') == 'applied'"
assert_status "the failed plan is reverted to expand" rv "pst('0001-score') == 'reverted to expand'"
assert_eq "the catalog is at the end of expand" "$expand_state" "$(q "$catalog" | sed 's/^.*,score/score/')"
assert_sql "the backfill is undone" 0 "SELECT count(score) FROM acct"
assert_sql "the inverse is the revert's ledger row" "backfill_sql|0002-undo-score|undone" \
    "SELECT op || '|' || plan_id || '|' || outcome FROM taskslaps.step_ledger WHERE outcome = 'undone'"
assert_sql "the statuses in the database" "0001-score reverted to expand|0002-undo-score applied" \
    "SELECT string_agg(plan_id || ' ' || status, '|' ORDER BY plan_id) FROM taskslaps.plans"
if wait_note "$W/origin.git" rv "$C1" "Status: reverted to expand"; then
    pass "the reverted plan's note says reverted to expand"
else
    fail "the reverted plan's note says reverted to expand" "$(note_of "$W/origin.git" rv "$C1")"
fi
if wait_note "$W/origin.git" rv "$C2" "Plan: 0002-undo-score"; then
    pass "the revert plan has a note"
else
    fail "the revert plan has a note" "$(note_of "$W/origin.git" rv "$C2")"
fi
assert_contains "which says applied" "Status: applied" "$(note_of "$W/origin.git" rv "$C2" | grep -A1 'Plan: 0002-undo-score')"
ctl rv status
assert_contains "status shows the reverted plan" "reverted to expand" "$OUT"
ctl rv history
assert_contains "history shows it" "reverted to expand" "$OUT"
assert_sql "a plan.reverted event" 1 "SELECT count(*) FROM taskslaps.events WHERE type = 'plan.reverted' AND plan_id = '0001-score'"

section "the fix forward runs after it; the reverted plan never runs again"
errors=$(q "SELECT count(*) FROM taskslaps.events WHERE type = 'step.error'")
put_plan origin main dev@example.com 0003-fix-score.yaml <<'EOF'
title: fix account 7, fill the score, validate the check
reason: the fix forward of 0001-score
waves:
  - name: backfill
    steps:
      - { op: backfill_sql, sql: "UPDATE acct SET v = 0 WHERE v < 0" }
      - { op: backfill_sql, sql: "UPDATE acct SET score = bal WHERE score IS NULL" }
  - name: validate
    steps:
      - { op: validate_constraint, table: acct, name: acct_v_pos }
EOF
C3=$COMMIT
assert_status "the fix forward is applied" rv "pst('0003-fix-score') == 'applied'"
assert_status "in sync" rv "s.get('sync') == 'in_sync'"
assert_sql "the check is valid" "t" "SELECT convalidated FROM pg_constraint WHERE conname = 'acct_v_pos'"
assert_sql "every score is filled" 300 "SELECT count(score) FROM acct"
assert_sql "the reverted plan kept its status" "reverted to expand" "SELECT status FROM taskslaps.plans WHERE plan_id = '0001-score'"
assert_sql "the failed step never ran again" "$errors" "SELECT count(*) FROM taskslaps.events WHERE type = 'step.error'"
assert_sql "the reverted plan never started again" 1 "SELECT count(*) FROM taskslaps.events WHERE type = 'plan.start' AND plan_id = '0001-score'"
if wait_note "$W/origin.git" rv "$C3" "Status: applied"; then
    pass "the fix forward's note says applied"
else
    fail "the fix forward's note says applied" "$(note_of "$W/origin.git" rv "$C3")"
fi

section "an edit of the reverted plan is drift"
# (read whole before put_plan writes the same file: a pipe from sed raced the truncation)
edited=$(sed 's/^reason: revert test$/reason: revert test, edited/' "$W/origin.wt/migrations/0001-score.yaml")
put_plan origin main dev@example.com 0001-score.yaml "Edit the reverted plan" <<<"$edited"
assert_status "the reverted plan is in drift" rv "pst('0001-score') == 'drift'"
daemon_stop rv
assert_eq "the daemon exits 0" 0 "$DRC"

section "one push: a plan that fails, a plan after it, its revert, another plan"
newdb rv2
q "CREATE TABLE acct (id bigint PRIMARY KEY, v int NOT NULL);
   INSERT INTO acct SELECT g, g FROM generate_series(1, 100) g;
   UPDATE acct SET v = -1 WHERE id = 7" >/dev/null
repo_new origin2 main
m=$W/origin2.wt/migrations
cat >"$m/0001-check.yaml" <<'EOF'
title: a column and a check that one row breaks
reason: revert test
waves:
  - name: expand
    steps:
      - { op: add_column, table: acct, name: score, type: int }
      - { op: add_check_not_valid, table: acct, name: acct_v_pos, check: "v >= 0" }
  - name: validate
    steps:
      - { op: validate_constraint, table: acct, name: acct_v_pos }
EOF
cat >"$m/0002-between.yaml" <<'EOF'
title: a plan between the failing one and its revert
reason: revert test
steps:
  - { op: add_column, table: acct, name: note, type: text }
EOF
cat >"$m/0003-undo-check.yaml" <<'EOF'
title: undo 0001-check
reason: revert test
revert: 0001-check
EOF
cat >"$m/0004-after.yaml" <<'EOF'
title: a plan after the revert
reason: revert test
steps:
  - { op: add_column, table: acct, name: later, type: text }
EOF
git_as origin2 dev@example.com add -A &&
    git_as origin2 dev@example.com commit -qm "Four plans at once" &&
    git_as origin2 dev@example.com push -q origin main || exit 1
daemon_conf rv2 "$W/origin2.git" 'branch: main'
daemon_start rv2 || exit 1
assert_status "in sync after one pass" rv2 "s.get('sync') == 'in_sync'"
assert_sql "the failing plan is reverted, every other plan applied" \
    "0001-check reverted|0002-between applied|0003-undo-check applied|0004-after applied" \
    "SELECT string_agg(plan_id || ' ' || status, '|' ORDER BY plan_id) FROM taskslaps.plans"
assert_sql "the revert ran before the plan between, which ran before the one after" \
    "0001-check 0003-undo-check 0002-between 0004-after" \
    "SELECT string_agg(plan_id, ' ' ORDER BY id) FROM taskslaps.events WHERE type IN ('plan.failed', 'plan.ok')"
assert_sql "the columns: the reverted plan's is gone, the others are there" "id,v,note,later" \
    "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'acct'::regclass AND attnum > 0 AND NOT attisdropped"
daemon_stop rv2
assert_eq "the daemon exits 0" 0 "$DRC"

env_finish
