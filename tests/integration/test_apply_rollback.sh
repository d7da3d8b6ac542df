#!/usr/bin/env bash
# Integration test of a plan's on_failure, on PostgreSQL 15: a validate wave
# fails on a real bad row (a CHECK added NOT VALID in expand that one row
# breaks), and the executor undoes what the plan completed. For each mode the
# schema's fingerprint must end at the right boundary (stop: where it failed;
# rollback_wave: the end of expand, as an expand-only plan leaves it;
# rollback_plan: as before the plan), with the rollback's events, the ledger
# rows of the inverses (outcome undone) and the plan failed with "rolled back
# to" in its message; a step adopted as already present is kept. Then: a
# range with an irreversible step is refused before anything runs; a
# rollback whose own inverse fails stops with both errors; a SIGKILL in the
# middle of a rollback (a batched revert_sql, paced) resumes where it stopped
# and undoes no row twice.
#
#   bash tests/integration/test_apply_rollback.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

# shellcheck source=tests/lib/acct_fixture.sh
. "$here/../lib/acct_fixture.sh"

# rb_plan DIR MODE: the plan with on_failure: MODE (none when MODE is "-").
rb_plan() {
    {
        echo "id: 0001-rb"
        echo "title: a check that one row breaks"
        echo "reason: rollback test"
        [ "$2" = - ] || echo "on_failure: $2"
        echo "waves:"
        echo "$EXPAND"
        echo "$VALIDATE"
    } | plan "$1/0001-rb.yaml"
}

# The fingerprints of the two boundaries, from databases made the same way.
setup_db before
fp_before=$(fingerprint)
rows_before=$(rows_of)
{
    printf '%s\n' "id: 0001-rb" "title: expand only" "reason: the boundary" "waves:"
    echo "$EXPAND"
} | plan "$W/expand/0001-rb.yaml"
run_ctl apply "$W/expand"
assert_eq "the expand-only plan applies" 0 "$RC"
fp_expand=$(fingerprint)
assert_ne "expand changes the fingerprint" "$fp_before" "$fp_expand"

section "on_failure: stop (the default) undoes nothing"
setup_db stop
rb_plan "$W/stop" -
run_ctl apply "$W/stop"
assert_ne "apply fails" 0 "$RC"
assert_contains "the error is the failing validation" "acct_v_pos" "$OUT$ERR"
assert_not_contains "nothing is rolled back" "rolled back to" "$OUT$ERR"
assert_sql "the plan is failed" failed "SELECT status FROM taskslaps.plans"
assert_sql "the completed steps stay in the ledger" "4 0" \
    "SELECT count(*) FILTER (WHERE outcome = 'applied') || ' ' || count(*) FILTER (WHERE outcome = 'undone') FROM taskslaps.step_ledger"
assert_sql "no rollback event" 0 "SELECT count(*) FROM taskslaps.events WHERE type LIKE 'rollback.%'"
assert_sql "the column is NOT NULL still" t "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'acct'::regclass AND attname = 'nick'"

section "on_failure: rollback_wave"
setup_db wave
rb_plan "$W/wave" rollback_wave
run_ctl apply "$W/wave"
assert_ne "apply fails" 0 "$RC"
assert_contains "the message says where it stands" "rolled back to the start of the validate wave (1 step undone)" "$OUT$ERR"
assert_contains "the message keeps the first error" "acct_v_pos" "$OUT$ERR"
assert_eq "the schema is at the end of expand" "$fp_expand" "$(fingerprint)"
assert_sql "the plan is failed" failed "SELECT status FROM taskslaps.plans"
assert_sql "its last event says rolled back" "plan.failed|true" \
    "SELECT type || '|' || (message LIKE '%rolled back to the start of the validate wave%') FROM taskslaps.events WHERE type LIKE 'plan.%' ORDER BY id DESC LIMIT 1"
assert_eq "the rollback's events" "rollback.start rollback.step rollback.ok" \
    "$(q "SELECT string_agg(type, ' ' ORDER BY id) FROM taskslaps.events WHERE type LIKE 'rollback.%'")"
assert_sql "ledger: expand applied, set_not_null replaced by its inverse" "applied 3, undone 1 drop_not_null" \
    "SELECT 'applied ' || count(*) FILTER (WHERE outcome = 'applied') || ', undone ' || count(*) FILTER (WHERE outcome = 'undone') || ' ' || string_agg(op, ',') FILTER (WHERE outcome = 'undone') FROM taskslaps.step_ledger"
inv_sha=$("$TASKSLAPSCTL" plan --json "$W/wave/0001-rb.yaml" | python3 -c "
import json, sys
p = json.load(sys.stdin)[0]
print(p['waves'][1]['steps'][0]['inverse']['step_sha'])")
assert_sql "the inverse's row has its own step_sha and timing" "true true" \
    "SELECT (step_sha = '$inv_sha') || ' ' || (execution_time_ms IS NOT NULL) FROM taskslaps.step_ledger WHERE outcome = 'undone'"
assert_sql "plan --json shows on_failure" rollback_wave \
    "SELECT '$("$TASKSLAPSCTL" plan --json "$W/wave/0001-rb.yaml" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['on_failure'])")'"
# the bad row fixed, the plan runs again: the undone step runs again, the rest is skipped
q "UPDATE acct SET v = 7 WHERE id = 7" >/dev/null
run_ctl apply "$W/wave"
assert_eq "after the fix the plan applies" 0 "$RC"
assert_sql "the undone step ran again" t "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'acct'::regclass AND attname = 'nick'"
assert_sql "the plan is applied" applied "SELECT status FROM taskslaps.plans"

section "on_failure: rollback_plan"
setup_db whole
rb_plan "$W/whole" rollback_plan
run_ctl apply "$W/whole"
assert_ne "apply fails" 0 "$RC"
assert_contains "the message says where it stands" "rolled back to the start of the plan (4 steps undone)" "$OUT$ERR"
assert_eq "the schema is as before the plan" "$fp_before" "$(fingerprint)"
assert_eq "the rows are as before the plan" "$rows_before" "$(rows_of)"
assert_sql "the plan is failed with the note" "failed" "SELECT status FROM taskslaps.plans"
assert_sql "the plan.failed event says it" t \
    "SELECT message LIKE '%rolled back to the start of the plan%' FROM taskslaps.events WHERE type = 'plan.failed'"
assert_eq "the rollback's events" "rollback.start rollback.step rollback.step rollback.step rollback.step rollback.ok" \
    "$(q "SELECT string_agg(type, ' ' ORDER BY id) FROM taskslaps.events WHERE type LIKE 'rollback.%'")"
assert_sql "only inverses are left in the ledger, last step first" "drop_not_null,drop_constraint,drop_index_concurrently,drop_column" \
    "SELECT string_agg(op, ',' ORDER BY applied_at, execution_time_ms) FROM taskslaps.step_ledger WHERE outcome = 'undone'"
assert_sql "no forward row is left" 0 "SELECT count(*) FROM taskslaps.step_ledger WHERE outcome <> 'undone'"

section "a backfill undone by rollback_plan fills its column again when the plan runs again"
setup_db refill
# one row breaks the validate wave (a NULL nick), none breaks the backfill
q "UPDATE acct SET v = 7, nick = NULL WHERE id = 7" >/dev/null
plan "$W/refill/0001-refill.yaml" <<'EOF'
id: 0001-refill
title: a column, its backfill, and a NOT NULL one row breaks
reason: rollback test
on_failure: rollback_plan
waves:
  - name: expand
    steps:
      - { op: add_column, table: acct, name: score, type: int }
  - name: backfill
    limits: { batch_size: 500, rows_per_second: 0 }
    steps:
      - { op: backfill_sql, sql: "UPDATE acct SET score = bal" }
  - name: validate
    steps:
      - { op: set_not_null, table: acct, column: nick }
EOF
run_ctl apply "$W/refill"
assert_ne "apply fails and rolls back" 0 "$RC"
assert_contains "to the start of the plan" "rolled back to the start of the plan (1 step undone)" "$OUT$ERR"
assert_sql "the backfill's checkpoint went with its ledger row" 0 \
    "SELECT count(*) FROM taskslaps.backfill_progress"
q "UPDATE acct SET nick = 'n7' WHERE id = 7" >/dev/null
run_ctl apply "$W/refill"
assert_rc "after the fix the plan applies" 0 "$RC" "$ERR"
assert_sql "the re-added column is filled again, every row" "2000|0" \
    "SELECT count(*) FILTER (WHERE score = bal), count(*) FILTER (WHERE score IS NULL) FROM acct"

section "rollback_plan keeps a step adopted as already present"
setup_db adopt
q "ALTER TABLE acct ADD COLUMN score int" >/dev/null
fp0=$(fingerprint)
rb_plan "$W/adopt" rollback_plan
run_ctl apply "$W/adopt"
assert_ne "apply fails" 0 "$RC"
assert_contains "three steps undone, the adopted one kept" "rolled back to the start of the plan (3 steps undone)" "$OUT$ERR"
assert_eq "the schema is as before the plan, the column that was there included" "$fp0" "$(fingerprint)"
assert_sql "the rollback says it kept it" 1 \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'rollback.step' AND message LIKE 'add_column%kept%already present%'"
assert_sql "its ledger row stays" already_present "SELECT outcome FROM taskslaps.step_ledger WHERE op = 'add_column'"

section "an irreversible step in the range is refused before anything runs"
setup_db irrev
fp0=$(fingerprint)
plan "$W/irrev/0001-irrev.yaml" <<'EOF'
title: drops in the middle
reason: rollback test
on_failure: rollback_plan
waves:
  - name: expand
    steps:
      - { op: add_column, table: acct, name: score, type: int }
      - { op: sql, sql: "ALTER TABLE acct ADD COLUMN extra int" }
  - name: contract
    steps:
      - { op: drop_column, table: acct, name: bal }
      - { op: drop_column, table: acct, name: nick }
EOF
run_ctl lint "$W/irrev"
assert_ne "lint refuses it" 0 "$RC"
assert_contains "lint names the sql step" "0001-irrev.yaml:8:9: error: sql: on_failure: rollback_plan (line 3) may have to undo this step" "$OUT$ERR"
assert_contains "lint names the first drop_column" "0001-irrev.yaml:11:9: error: drop_column: on_failure: rollback_plan" "$OUT$ERR"
assert_not_contains "the last step can never be undone: not named" "0001-irrev.yaml:12:" "$OUT$ERR"
run_ctl apply "$W/irrev"
assert_ne "apply refuses it" 0 "$RC"
assert_eq "nothing changed" "$fp0" "$(fingerprint)"
assert_sql "nothing in the ledger" 0 "SELECT count(*) FROM taskslaps.step_ledger"
sed -i 's/rollback_plan/rollback_wave/' "$W/irrev/0001-irrev.yaml"
run_ctl lint "$W/irrev"
assert_contains "rollback_wave: the drop_column that is not the last of its wave is named" "0001-irrev.yaml:11:9: error: drop_column: on_failure: rollback_wave" "$OUT$ERR"
assert_not_contains "rollback_wave: the sql step ends its wave: never undone" "0001-irrev.yaml:8:" "$OUT$ERR"
assert_not_contains "rollback_wave: the add_column is reversible" "0001-irrev.yaml:7:" "$OUT$ERR"
sed -i 's/^on_failure: rollback_wave/on_failure: sometimes/' "$W/irrev/0001-irrev.yaml"
run_ctl lint "$W/irrev"
assert_contains "an unknown value is a clear error" "0001-irrev.yaml:3:13: error: on_failure: expected stop, rollback_wave or rollback_plan" "$OUT$ERR"
# A plan whose backfill is undone in paced batches (about 2 s), so a
# rollback can be caught in the middle.
slow_plan() {
    plan "$1/0001-slow.yaml" <<'EOF'
title: a backfill with its revert, then a check that one row breaks
reason: rollback test
on_failure: rollback_plan
waves:
  - name: expand
    steps:
      - { op: add_column, table: acct, name: score, type: int }
      - { op: add_check_not_valid, table: acct, name: acct_v_pos, check: "v >= 0" }
  - name: backfill
    limits: { batch_size: 100, rows_per_second: 1000 }
    steps:
      - op: backfill_sql
        sql: "UPDATE acct SET bal = bal + 1000000 WHERE v >= 0"
        revert_sql: "UPDATE acct SET bal = bal - 1000000 WHERE bal >= 1000000"
  - name: validate
    steps:
      - { op: validate_constraint, table: acct, name: acct_v_pos }
EOF
}
slow_inverse() {
    "$TASKSLAPSCTL" plan --json "$1/0001-slow.yaml" | python3 -c "
import json, sys
p = json.load(sys.stdin)[0]
print(p['waves'][1]['steps'][0]['inverse']['step_sha'])"
}

section "a SIGKILL in the middle of a rollback: it resumes, nothing undone twice"
setup_db crash
fp0=$(fingerprint)
slow_plan "$W/crash"
binv=$(slow_inverse "$W/crash")
start_ctl_bg crash1 apply "$W/crash"
pid=$BG_PID
if wait_for "SELECT EXISTS (SELECT 1 FROM taskslaps.backfill_progress WHERE step_sha = '$binv' AND rows_done > 0)" 60 "$pid"; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pass "the run is killed in the middle of the revert"
else
    fail "the run is killed in the middle of the revert" "$(cat "$W/crash1.err")"
fi
done_at_kill=$(q "SELECT rows_done FROM taskslaps.backfill_progress WHERE step_sha = '$binv'")
assert_sql "the revert was not finished" t "SELECT $done_at_kill < 1999"
assert_sql "the plan is left running" running "SELECT status FROM taskslaps.plans"
run_ctl apply "$W/crash"
assert_ne "the second run fails (the plan still fails)" 0 "$RC"
assert_contains "it finished the rollback" "rolled back to the start of the plan" "$OUT$ERR"
assert_contains "with the first error" "acct_v_pos" "$OUT$ERR"
assert_eq "the schema is as before the plan" "$fp0" "$(fingerprint)"
assert_eq "the rows are as before the plan" "$rows_before" "$(rows_of)"
assert_sql "each row was updated once forward and once back, no more" "2|1999" \
    "SELECT max(upd) || '|' || count(*) FILTER (WHERE upd = 2) FROM acct"
assert_sql "the bad row was never touched" 0 "SELECT upd FROM acct WHERE id = 7"
assert_sql "the forward steps were not run again" 1 \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'step.error'"
assert_sql "the second run resumed the rollback" "t" \
    "SELECT EXISTS (SELECT 1 FROM taskslaps.events WHERE type = 'rollback.start' AND message LIKE '%interrupted rollback goes on%')"
assert_sql "each inverse is in the ledger once" "3|3" \
    "SELECT count(*) || '|' || count(DISTINCT step_sha) FROM taskslaps.step_ledger WHERE outcome = 'undone'"
assert_sql "the plan is failed" failed "SELECT status FROM taskslaps.plans"

section "a rollback that fails itself stops with both errors"
setup_db rbfail
slow_plan "$W/rbfail"
binv=$(slow_inverse "$W/rbfail")
start_ctl_bg rbfail1 apply "$W/rbfail"
pid=$BG_PID
if wait_for "SELECT EXISTS (SELECT 1 FROM taskslaps.backfill_progress WHERE step_sha = '$binv' AND rows_done > 0)" 60 "$pid"; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pass "the run is stopped in the middle of the revert"
else
    fail "the run is stopped in the middle of the revert" "$(cat "$W/rbfail1.err")"
fi
# someone drops the column by hand: the revert cannot go on
q "ALTER TABLE acct DROP COLUMN bal" >/dev/null
run_ctl apply "$W/rbfail"
assert_ne "apply fails" 0 "$RC"
assert_contains "the first error is there" "acct_v_pos" "$OUT$ERR"
assert_contains "the rollback's error is there" "rollback to the start of the plan failed at backfill_sql" "$OUT$ERR"
assert_contains "with its cause" '"bal"' "$OUT$ERR"
assert_sql "rollback.failed is recorded with both errors" t \
    "SELECT message LIKE '%acct_v_pos%' AND message LIKE '%\"bal\"%' FROM taskslaps.events WHERE type = 'rollback.failed'"
assert_sql "the plan is failed" failed "SELECT status FROM taskslaps.plans"
assert_sql "nothing after the failed inverse is undone" "0|3" \
    "SELECT count(*) FILTER (WHERE outcome = 'undone') || '|' || count(*) FILTER (WHERE outcome = 'applied') FROM taskslaps.step_ledger"
assert_sql "the CHECK is still there" t "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'acct_v_pos')"
assert_sql "the column added in expand is still there" t \
    "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'acct'::regclass AND attname = 'score' AND NOT attisdropped)"

env_finish
