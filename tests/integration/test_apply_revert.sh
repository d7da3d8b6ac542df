#!/usr/bin/env bash
# Integration test of revert plans, on PostgreSQL 15: a plan file with
# `revert: <plan_id>` (and `to_wave:`) undoes the reverted plan's applied
# steps after that wave, last first, through `taskslapsctl apply`. A whole
# plan reverted leaves the schema's fingerprint (and the rows) as before the
# plan; a failed plan reverted to expand is at the end of expand, and the
# plans after it run; a range with an irreversible step is refused with
# each one named and nothing changed; a SIGKILL in the middle of a revert
# (a batched revert_sql, paced) resumes where it stopped and undoes no row
# twice; a revert on a chaos branch is blocked; --dry-run shows its steps.
#
#   bash tests/integration/test_apply_revert.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

# shellcheck source=tests/lib/acct_fixture.sh
. "$here/../lib/acct_fixture.sh"

# good_plan DIR: a plan of every wave that applies (no row breaks it), with a
# paced backfill undone by its revert_sql.
good_plan() {
    plan "$1/0001-good.yaml" <<'EOF'
title: a column, an index, a check, a backfill and a NOT NULL
reason: revert test
waves:
  - name: expand
    steps:
      - { op: add_column, table: acct, name: score, type: int }
      - { op: add_index_concurrently, table: acct, name: acct_nick_idx, columns: [nick] }
      - { op: add_check_not_valid, table: acct, name: acct_bal_pos, check: "bal >= 0" }
  - name: backfill
    limits: { batch_size: 100, rows_per_second: 1000 }
    steps:
      - op: backfill_sql
        sql: "UPDATE acct SET bal = bal + 1000000 WHERE v >= 0"
        revert_sql: "UPDATE acct SET bal = bal - 1000000 WHERE bal >= 1000000"
  - name: validate
    steps:
      - { op: validate_constraint, table: acct, name: acct_bal_pos }
      - { op: set_not_null, table: acct, column: nick }
EOF
}
revert_file() { # DIR NAME TARGET [TO_WAVE]
    {
        echo "title: undo $3"
        echo "reason: revert test"
        echo "revert: $3"
        [ -z "${4:-}" ] || echo "to_wave: $4"
    } | plan "$1/$2.yaml"
}

section "a whole plan reverted: the schema and the rows are as before it"
setup_db whole
fp0=$(fingerprint)
rows0=$(rows_of)
good_plan "$W/whole"
run_ctl apply "$W/whole"
assert_rc "the plan applies" 0 "$RC" "$ERR"
assert_ne "it changed the schema" "$fp0" "$(fingerprint)"
revert_file "$W/whole" 0002-undo 0001-good
run_ctl plan "$W/whole/0002-undo.yaml"
assert_rc "plan shows the revert" 0 "$RC" "$ERR"
assert_contains "plan names the reverted plan" "revert:   0001-good" "$OUT"
assert_contains "plan shows the last step undone first" "undoes set_not_null (line 18, validate wave" "$OUT"
assert_contains "plan says what has nothing to undo" "kept:     validate_constraint" "$OUT"
assert_eq "plan --json: the inverses, last first" "drop_not_null backfill_sql drop_constraint drop_index_concurrently drop_column" \
    "$("$TASKSLAPSCTL" plan --json "$W/whole/0002-undo.yaml" | python3 -c "
import json, sys
p = json.load(sys.stdin)[0]
print(p['max_hazard'], p['revert']['status_after'], file=sys.stderr)
print(' '.join(s['op'] for w in p['waves'] for s in w['steps']))")"
run_ctl apply "$W/whole"
assert_rc "apply runs the revert" 0 "$RC" "$ERR"
assert_eq "the schema is as before the plan" "$fp0" "$(fingerprint)"
assert_eq "the rows are as before the plan" "$rows0" "$(rows_of)"
assert_sql "the reverted plan is reverted, the revert applied" "0001-good reverted|0002-undo applied" \
    "SELECT string_agg(plan_id || ' ' || status, '|' ORDER BY plan_id) FROM taskslaps.plans"
assert_sql "the inverses are the revert's ledger rows, with their own timing" "5|5|0002-undo" \
    "SELECT count(*) || '|' || count(execution_time_ms) || '|' || string_agg(DISTINCT plan_id, ',') FROM taskslaps.step_ledger WHERE outcome = 'undone'"
assert_sql "no undone forward step is left in the ledger" "validate_constraint" \
    "SELECT string_agg(op, ',') FROM taskslaps.step_ledger WHERE plan_id = '0001-good'"
assert_sql "a plan.reverted event" 1 "SELECT count(*) FROM taskslaps.events WHERE type = 'plan.reverted' AND plan_id = '0001-good'"
run_ctl apply --dry-run "$W/whole"
assert_contains "--dry-run says the reverted plan does not run again" "dry run: 0001-good is reverted: it does not run again" "$OUT"
starts=$(q "SELECT count(*) FROM taskslaps.events WHERE type = 'step.start'")
run_ctl apply "$W/whole"
assert_rc "apply again" 0 "$RC" "$ERR"
assert_sql "the reverted plan does not re-apply by itself" "$starts" "SELECT count(*) FROM taskslaps.events WHERE type = 'step.start'"
assert_eq "the schema is still as before the plan" "$fp0" "$(fingerprint)"
sed -i 's/revert test$/revert test, edited/' "$W/whole/0001-good.yaml"
run_ctl apply "$W/whole"
assert_ne "an edit of the reverted plan is drift" 0 "$RC"
assert_contains "it says drift" "drift" "$OUT$ERR"
run_ctl accept-drift 0001-good "$W/whole"
assert_ne "accept-drift of the reverted plan is refused" 0 "$RC"
assert_contains "it says why" "was reverted by a revert plan" "$ERR"
assert_sql "nothing ran" "$starts" "SELECT count(*) FROM taskslaps.events WHERE type = 'step.start'"
sed -i 's/revert test, edited$/revert test/' "$W/whole/0001-good.yaml"
printf 'to_wave: expand\n' >>"$W/whole/0002-undo.yaml"
run_ctl accept-drift 0002-undo "$W/whole"
assert_ne "accept-drift of an edited revert plan is refused" 0 "$RC"
assert_contains "it says why" "is a revert plan: an edit of it is not accepted" "$ERR"
assert_sql "the revert plan's row is unchanged" "applied" "SELECT status FROM taskslaps.plans WHERE plan_id = '0002-undo'"

section "a failed plan reverted to expand; the plans after it run"
setup_db failed
{
    printf '%s\n' "id: 0001-rb" "title: expand only" "reason: the boundary" "waves:"
    echo "$EXPAND"
} | plan "$W/expand/0001-rb.yaml"
run_ctl apply "$W/expand"
fp_expand=$(fingerprint)
setup_db failed2
{
    printf '%s\n' "id: 0001-rb" "title: a check that one row breaks" "reason: revert test" "waves:"
    echo "$EXPAND"
    echo "$VALIDATE"
} | plan "$W/failed/0001-rb.yaml"
run_ctl apply "$W/failed"
assert_ne "the plan fails on the bad row" 0 "$RC"
assert_sql "it is failed" failed "SELECT status FROM taskslaps.plans"
revert_file "$W/failed" 0002-undo 0001-rb expand
plan "$W/failed/0003-after.yaml" <<'EOF'
title: a plan after the revert
reason: revert test
steps:
  - { op: add_column, table: acct, name: note, type: text }
EOF
run_ctl apply --dry-run "$W/failed"
assert_contains "--dry-run shows the revert's step" "undoes set_not_null (line 12, validate wave" "$OUT"
assert_contains "--dry-run says the revert's step would run" '"op":"drop_not_null","hazard":"H1","state":"would_run"' \
    "$(printf '%s' "${OUT#*0002-undo  undo}" | tr -d ' \t\n')"
run_ctl apply "$W/failed"
assert_rc "apply: the revert runs although the failed plan stops the line" 0 "$RC" "$ERR"
assert_contains "it says so" "0002-undo reverts 0001-rb, which stops the line" "$OUT"
assert_sql "statuses" "0001-rb reverted to expand|0002-undo applied|0003-after applied" \
    "SELECT string_agg(plan_id || ' ' || status, '|' ORDER BY plan_id) FROM taskslaps.plans"
q "ALTER TABLE acct DROP COLUMN note" >/dev/null
assert_eq "the schema is at the end of expand (and the later plan's column)" "$fp_expand" "$(fingerprint)"
assert_sql "only the step that ran is undone" "drop_not_null" \
    "SELECT string_agg(op, ',') FROM taskslaps.step_ledger WHERE outcome = 'undone'"

section "a range with an irreversible step is refused, each named, nothing changed"
setup_db irrev
plan "$W/irrev/0001-drops.yaml" <<'EOF'
title: drops
reason: revert test
waves:
  - name: expand
    steps:
      - { op: add_column, table: acct, name: score, type: int }
  - name: contract
    steps:
      - { op: drop_column, table: acct, name: upd }
      - { op: sql, sql: "ALTER TABLE acct ADD COLUMN extra int" }
EOF
run_ctl apply "$W/irrev"
assert_rc "the plan applies" 0 "$RC" "$ERR"
fp1=$(fingerprint)
revert_file "$W/irrev" 0002-undo 0001-drops
run_ctl lint "$W/irrev"
assert_ne "lint refuses the revert" 0 "$RC"
assert_contains "lint names the drop_column" "0002-undo.yaml:3:9: error: revert: drop_column at $W/irrev/0001-drops.yaml:9:9" "$OUT$ERR"
assert_contains "lint names the sql step" "0002-undo.yaml:3:9: error: revert: sql at $W/irrev/0001-drops.yaml:10:9" "$OUT$ERR"
run_ctl apply "$W/irrev"
assert_ne "apply refuses it" 0 "$RC"
assert_contains "as invalid" "0002-undo.yaml is invalid" "$ERR"
assert_eq "nothing changed" "$fp1" "$(fingerprint)"
assert_sql "no inverse in the ledger" 0 "SELECT count(*) FROM taskslaps.step_ledger WHERE outcome = 'undone'"
revert_file "$W/irrev" 0002-undo 0001-drops expand
run_ctl lint "$W/irrev"
assert_ne "to_wave: expand still has them in its range" 0 "$RC"
revert_file "$W/irrev" 0002-undo 0001-drops contract
run_ctl lint "$W/irrev"
assert_contains "to_wave: contract: nothing to undo" "0002-undo.yaml:4:10: error: to_wave: nothing to undo after wave contract" "$OUT$ERR"

section "a revert on a chaos branch is blocked"
setup_db chaos
plan "$W/chaos/0001-col.yaml" <<'EOF'
title: a column
reason: revert test
steps:
  - { op: add_column, table: acct, name: score, type: int }
EOF
run_ctl apply --mode chaos "$W/chaos"
assert_rc "the plan applies in chaos mode" 0 "$RC" "$ERR"
revert_file "$W/chaos" 0002-undo 0001-col
run_ctl lint --mode chaos "$W/chaos"
assert_contains "lint --mode chaos says it is blocked" "H3 plan on a chaos (unprotected) branch" "$OUT$ERR"
run_ctl apply --mode chaos "$W/chaos"
assert_ne "apply --mode chaos does not run it" 0 "$RC"
assert_sql "it is blocked" "0001-col applied|0002-undo blocked" \
    "SELECT string_agg(plan_id || ' ' || status, '|' ORDER BY plan_id) FROM taskslaps.plans"
assert_sql "the column is still there" t \
    "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'acct'::regclass AND attname = 'score' AND NOT attisdropped)"

section "a SIGKILL in the middle of a revert: it resumes, nothing undone twice"
setup_db crash
rows0=$(rows_of)
good_plan "$W/crash"
# slower, so the kill lands in the middle even on a loaded machine (about 7 s each way)
sed -i 's/batch_size: 100, rows_per_second: 1000/batch_size: 50, rows_per_second: 300/' "$W/crash/0001-good.yaml"
run_ctl apply "$W/crash"
assert_rc "the plan applies" 0 "$RC" "$ERR"
revert_file "$W/crash" 0002-undo 0001-good
binv=$("$TASKSLAPSCTL" plan --json "$W/crash/0002-undo.yaml" | python3 -c "
import json, sys
p = json.load(sys.stdin)[0]
print([s for s in p['waves'][0]['steps'] if s['op'] == 'backfill_sql'][0]['step_sha'])")
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
assert_sql "the revert plan is left running" running "SELECT status FROM taskslaps.plans WHERE plan_id = '0002-undo'"
assert_sql "its first inverse is in the ledger" 1 "SELECT count(*) FROM taskslaps.step_ledger WHERE outcome = 'undone'"
run_ctl apply "$W/crash"
assert_rc "the second run finishes the revert" 0 "$RC" "$ERR"
assert_eq "the rows are as before the plan" "$rows0" "$(rows_of)"
assert_sql "each row was updated once forward and once back, no more" "2|1999" \
    "SELECT max(upd) || '|' || count(*) FILTER (WHERE upd = 2) FROM acct"
assert_sql "the first inverse was not run again" 1 \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'step.skipped' AND message LIKE '%already in the ledger%'"
assert_sql "each inverse is in the ledger once" "5|5" \
    "SELECT count(*) || '|' || count(DISTINCT step_sha) FROM taskslaps.step_ledger WHERE outcome = 'undone'"
assert_sql "statuses" "0001-good reverted|0002-undo applied" \
    "SELECT string_agg(plan_id || ' ' || status, '|' ORDER BY plan_id) FROM taskslaps.plans"

env_finish
