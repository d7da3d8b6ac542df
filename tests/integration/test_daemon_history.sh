#!/usr/bin/env bash
# Integration test of taskslapsd: the line's history cannot be rewritten
# from git (docs/contract.md §4). A file that does not parse is recorded
# beside a plan's state, never over it: an applied plan pushed broken and
# then fixed with an extra step is drift (the extra step never runs); a
# drifted plan stays drift through a broken commit; an aborted plan stays
# aborted; an applied plan renamed is drift (the old id), not a new plan
# that runs again. One id in two formats does not flip the plan's row pass after
# pass. The chaos rate window counts plans when they ran, not when they were
# first seen. A revert of a plan whose file was edited after it ran is
# refused; a reverted plan removed and restored stays reverted; an idle
# daemon whose database was recreated reconciles it without a new commit;
# an invalid file with the id of a valid plan leaves that plan's row alone.
#
#   bash tests/integration/test_daemon_history.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/daemon.sh
. "$here/../lib/daemon.sh"
daemon_env_start

double_plan() {
    cat <<'EOF'
title: Double every balance
reason: the currency changed
steps:
  - { op: backfill_sql, sql: "UPDATE acct SET bal = bal * 2" }
EOF
}

# ------------------------------------------------------------------ 1
section "an applied plan pushed broken, then fixed with an extra step"
newdb h1
q "CREATE TABLE acct (id int PRIMARY KEY, bal int NOT NULL); INSERT INTO acct VALUES (1, 200)" >/dev/null
repo_new h
put_plan h main dev@example.com 0005-double.yaml < <(double_plan)
daemon_conf h "$W/h.git"
daemon_start h || exit 1
assert_status "the plan is applied" h "pst('0005-double') == 'applied' and s['sync'] == 'in_sync'"
assert_sql "balance doubled once" 400 "SELECT bal FROM acct"
printf 'title: [\n' >"$W/h.wt/migrations/0005-double.yaml"
git_as h dev@example.com add -A && git_as h dev@example.com commit -qm "Broken" &&
    git_as h dev@example.com push -q origin main
BROKEN=$(git -C "$W/h.wt" rev-parse HEAD)
assert_status "the file at the tip is invalid" h "s['tip'] == '$BROKEN' and pst('0005-double') == 'invalid'"
assert_sql "the plan's row still says applied" applied \
    "SELECT status FROM taskslaps.plans WHERE plan_id = '0005-double'"
{ double_plan; echo '  - { op: backfill_sql, sql: "UPDATE acct SET bal = bal + 1" }'; } \
    >"$W/h.wt/migrations/0005-double.yaml"
git_as h dev@example.com add -A && git_as h dev@example.com commit -qm "Fixed, and one more step" &&
    git_as h dev@example.com push -q origin main
FIXED=$(git -C "$W/h.wt" rev-parse HEAD)
assert_status "the edited plan is drift, not a plan to run" h \
    "s['tip'] == '$FIXED' and pst('0005-double') == 'drift' and s['drift'] == ['0005-double']"
assert_sql "the extra step never ran" 400 "SELECT bal FROM acct"
# from drift, a broken commit and the drifted content again: still drift
printf 'bogus: [\n' >"$W/h.wt/migrations/0005-double.yaml"
git_as h dev@example.com add -A && git_as h dev@example.com commit -qm "Broken again" &&
    git_as h dev@example.com push -q origin main
BROKEN=$(git -C "$W/h.wt" rev-parse HEAD)
assert_status "invalid at the tip" h "s['tip'] == '$BROKEN' and pst('0005-double') == 'invalid'"
assert_sql "the row says drift" drift "SELECT status FROM taskslaps.plans WHERE plan_id = '0005-double'"
{ double_plan; echo '  - { op: backfill_sql, sql: "UPDATE acct SET bal = bal + 1" }'; } \
    >"$W/h.wt/migrations/0005-double.yaml"
git_as h dev@example.com add -A && git_as h dev@example.com commit -qm "The drifted content again" &&
    git_as h dev@example.com push -q origin main
FIXED=$(git -C "$W/h.wt" rev-parse HEAD)
assert_status "still drift: only an operator leaves it" h \
    "s['tip'] == '$FIXED' and pst('0005-double') == 'drift'"
assert_sql "nothing ran" 400 "SELECT bal FROM acct"
double_plan >"$W/h.wt/migrations/0005-double.yaml"
git_as h dev@example.com add -A && git_as h dev@example.com commit -qm "Restored" &&
    git_as h dev@example.com push -q origin main
RESTORED=$(git -C "$W/h.wt" rev-parse HEAD)
assert_status "the restored file is applied again, in sync" h \
    "s['tip'] == '$RESTORED' and pst('0005-double') == 'applied' and s['sync'] == 'in_sync'"
assert_sql "and did not run again" 400 "SELECT bal FROM acct"
daemon_stop h
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 1b
section "an applied plan renamed is drift, not a new plan"
newdb m1
q "CREATE TABLE acct (id int PRIMARY KEY, bal int NOT NULL); INSERT INTO acct VALUES (1, 200)" >/dev/null
repo_new m
put_plan m main dev@example.com 0005-double.yaml < <(double_plan)
daemon_conf m "$W/m.git"
daemon_start m || exit 1
assert_status "the plan is applied" m "pst('0005-double') == 'applied'"
git -C "$W/m.wt" mv migrations/0005-double.yaml migrations/0006-double.yaml
git_as m dev@example.com commit -qm "Rename the plan" && git_as m dev@example.com push -q origin main
MOVED=$(git -C "$W/m.wt" rev-parse HEAD)
assert_status "the old id is drift, the new one waits" m \
    "s['tip'] == '$MOVED' and pst('0005-double') == 'drift' and pst('0006-double') == 'pending'"
assert_sql "the UPDATE did not run a second time" 400 "SELECT bal FROM acct"
assert_contains "status says how to go on" "accept-drift 0005-double" \
    "$(status_py m 'plan("0005-double").get("message", "")')"
daemon_stop m
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 2
section "one id in two formats"
newdb d1
repo_new d
put_plan d main dev@example.com 0099-x.json <<'EOF'
{ "title": "Table x", "reason": "the application needs it",
  "steps": [ { "op": "create_table", "table": "x",
               "columns": [ { "name": "id", "type": "int", "nullable": false } ],
               "primary_key": ["id"] } ] }
EOF
daemon_conf d "$W/d.git"
daemon_start d || exit 1
assert_status "the JSON plan is applied" d "pst('0099-x') == 'applied'"
cat >"$W/d.wt/migrations/0099-x.yaml" <<'EOF'
title: Table x again
reason: the same id in YAML
steps:
  - { op: create_table, table: x2, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
git_as d dev@example.com add -A && git_as d dev@example.com commit -qm "The same id in YAML" &&
    git_as d dev@example.com push -q origin main
DUP=$(git -C "$W/d.wt" rev-parse HEAD)
assert_status "the second file is invalid" d "s['tip'] == '$DUP' and s['sync'] == 'out_of_sync'"
bump d d && bump d d
assert_sql "the row stays applied; one plan.invalid event, one plan.ok, over three passes" "applied|1|1" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0099-x'),
            (SELECT count(*) FROM taskslaps.events WHERE type = 'plan.invalid' AND plan_id = '0099-x'),
            (SELECT count(*) FROM taskslaps.events WHERE type = 'plan.ok' AND plan_id = '0099-x')"
assert_contains "status says why" "duplicate plan id '0099-x'" "$(status_py d 'json.dumps(s["plans"])')"
assert_sql "the duplicate never ran" f "SELECT to_regclass('public.x2') IS NOT NULL"
daemon_stop d
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 3
section "the chaos rate window counts plans when they ran"
newdb r1
repo_new r play
daemon_conf r "$W/r.git" 'branch: play' 'protected_branches: [main]' \
    'chaos: { max_plans_per_author_per_day: 2 }'
daemon_start r || exit 1
for i in 1 2; do
    put_plan r play eve@example.com "000$i-t$i.yaml" <<EOF
title: Table $i
reason: more tables
steps:
  - { op: create_table, table: t$i, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
    assert_status "eve's plan $i is applied" r "pst('000$i-t$i') == 'applied'"
done
# both were first seen long ago (say, they waited), but they ran just now
q "UPDATE taskslaps.plans SET first_seen = now() - interval '25 hours'" >/dev/null
put_plan r play eve@example.com 0003-t3.yaml <<'EOF'
title: Table 3
reason: one too many
steps:
  - { op: create_table, table: t3, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
C3=$COMMIT
assert_status "eve's third plan in 24 h is rate limited" r \
    "s['tip'] == '$C3' and pst('0003-t3') == 'rate_limited'"
assert_sql "and did not run" f "SELECT to_regclass('public.t3') IS NOT NULL"
# the runs leave the window: the plan runs
q "UPDATE taskslaps.events SET at = at - interval '25 hours' WHERE plan_id IN ('0001-t1', '0002-t2')" >/dev/null
ctl r reconcile
assert_status "once the runs are 24 h old, it runs" r "pst('0003-t3') == 'applied'"
daemon_stop r
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 4
section "an operator's abort survives a broken commit"
newdb a1
q "CREATE TABLE big (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0);
   INSERT INTO big (id) SELECT g FROM generate_series(1, 20000) g" >/dev/null
repo_new a
bump_plan() {
    cat <<'EOF'
title: Bump every v
reason: a slow backfill to abort
waves:
  - name: backfill
    limits: { rows_per_second: 2000, batch_size: 200 }
    steps:
      - { op: backfill_sql, sql: "UPDATE big SET v = v + 1" }
EOF
}
put_plan a main dev@example.com 0001-bump.yaml < <(bump_plan)
daemon_conf a "$W/a.git"
daemon_start a || exit 1
assert_status "the backfill is running" a '(s.get("running") or {}).get("rows_done", 0) > 0'
ctl a abort
assert_rc "abort exits 0" 0 "$RC" "$ERR"
assert_status "the plan is aborted" a "pst('0001-bump') == 'aborted'"
done0=$(q "SELECT count(*) FROM big WHERE v = 1")
printf 'title: [\n' >"$W/a.wt/migrations/0001-bump.yaml"
git_as a dev@example.com add -A && git_as a dev@example.com commit -qm "Broken" &&
    git_as a dev@example.com push -q origin main
BROKEN=$(git -C "$W/a.wt" rev-parse HEAD)
assert_status "invalid at the tip" a "s['tip'] == '$BROKEN' and pst('0001-bump') == 'invalid'"
assert_sql "the row says aborted" aborted "SELECT status FROM taskslaps.plans WHERE plan_id = '0001-bump'"
bump_plan >"$W/a.wt/migrations/0001-bump.yaml"
git_as a dev@example.com add -A && git_as a dev@example.com commit -qm "The original again" &&
    git_as a dev@example.com push -q origin main
ORIG=$(git -C "$W/a.wt" rev-parse HEAD)
assert_status "still aborted: only resume leaves it" a "s['tip'] == '$ORIG' and pst('0001-bump') == 'aborted'"
assert_sql "no row moved" "$done0" "SELECT count(*) FROM big WHERE v = 1"
daemon_stop a
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 5
section "a revert of a failed plan whose file was edited is refused"
newdb e1
q "CREATE TABLE t (id bigint PRIMARY KEY, v int); INSERT INTO t VALUES (1, NULL)" >/dev/null
repo_new e
put_plan e main dev@example.com 0001-f.yaml <<'EOF'
title: F
reason: its validate wave fails on the NULL row
waves:
  - name: expand
    steps:
      - { op: add_column, table: t, name: x, type: int }
  - name: validate
    steps:
      - { op: set_not_null, table: t, column: v }
EOF
daemon_conf e "$W/e.git"
daemon_start e || exit 1
assert_status "F failed, its expand step applied" e "pst('0001-f') == 'failed'"
# one push: F's applied step edited (x -> y), and a revert of F
sed -i 's/name: x,/name: y,/' "$W/e.wt/migrations/0001-f.yaml"
cat >"$W/e.wt/migrations/0002-undo.yaml" <<'EOF'
title: Undo F
reason: F failed
revert: 0001-f
EOF
git_as e dev@example.com add -A && git_as e dev@example.com commit -qm "Edit F, revert F" &&
    git_as e dev@example.com push -q origin main
EDIT=$(git -C "$W/e.wt" rev-parse HEAD)
assert_status "the revert fails: it would undo what never ran" e \
    "s['tip'] == '$EDIT' and pst('0002-undo') == 'failed'"
assert_contains "it says why" "must be the one that ran" "$(status_py e 'plan("0002-undo").get("message", "")')"
assert_sql "F is not marked reverted; its column and its ledger row stay" "failed|t|1" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0001-f'),
            taskslaps.column_exists('t', 'x'),
            (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0001-f' AND outcome = 'applied')"
daemon_stop e
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 6
section "a reverted plan removed and restored does not run again"
newdb g1
q "CREATE TABLE t (id bigint PRIMARY KEY)" >/dev/null
repo_new g
put_plan g main dev@example.com 0001-a.yaml <<'EOF'
title: A
reason: a column
steps:
  - { op: add_column, table: t, name: x, type: int }
EOF
daemon_conf g "$W/g.git"
daemon_start g || exit 1
assert_status "A applied" g "pst('0001-a') == 'applied'"
put_plan g main dev@example.com 0002-undo-a.yaml <<'EOF'
title: Undo A
reason: not wanted after all
revert: 0001-a
EOF
assert_status "A reverted" g "pst('0001-a') == 'reverted' and pst('0002-undo-a') == 'applied'"
git_as g dev@example.com rm -q migrations/0001-a.yaml && git_as g dev@example.com commit -qm "Remove A" &&
    git_as g dev@example.com push -q origin main
GONE=$(git -C "$W/g.wt" rev-parse HEAD)
assert_status "its removal is drift at the tip" g "s['tip'] == '$GONE' and pst('0001-a') == 'drift'"
assert_sql "the row still says reverted" reverted "SELECT status FROM taskslaps.plans WHERE plan_id = '0001-a'"
git_as g dev@example.com revert --no-edit HEAD >/dev/null && git_as g dev@example.com push -q origin main
BACK=$(git -C "$W/g.wt" rev-parse HEAD)
assert_status "restored, it is reverted again and the line is in sync" g \
    "s['tip'] == '$BACK' and pst('0001-a') == 'reverted' and s['sync'] == 'in_sync'"
assert_sql "its undone step did not run again" f "SELECT taskslaps.column_exists('t', 'x')"
daemon_stop g
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 7
section "an idle daemon whose database was recreated applies again"
newdb k1
repo_new k
put_plan k main dev@example.com 0001-t.yaml < <(table_plan k)
daemon_conf k "$W/k.git" 'poll_interval: 1'
daemon_start k || exit 1
assert_status "applied and in sync" k "pst('0001-t') == 'applied' and s['sync'] == 'in_sync'"
"$PSQL" -X -At -d postgres -c "DROP DATABASE k1 WITH (FORCE)" >/dev/null &&
    "$PSQL" -X -At -d postgres -c "CREATE DATABASE k1" >/dev/null
if wait_for "SELECT to_regclass('public.k') IS NOT NULL AND EXISTS (SELECT 1 FROM taskslaps.plans
             WHERE plan_id = '0001-t' AND status = 'applied')" 30; then
    pass "the new database is reconciled without a new commit"
else
    fail "the new database is reconciled without a new commit" "$(tail -n 5 "$W/k.log")"
fi
daemon_stop k
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 8
section "a valid plan and an invalid file with its id: no flapping"
newdb s1
q "CREATE TABLE t (id int PRIMARY KEY, gone int)" >/dev/null
repo_new sh play
put_plan sh play dev@example.com 0007-x.json <<'EOF'
{ "title": "Drop a column", "reason": "H3 on a chaos branch",
  "steps": [ { "op": "drop_column", "table": "t", "name": "gone" } ] }
EOF
printf 'title: [\n' >"$W/sh.wt/migrations/0007-x.yaml"
git_as sh dev@example.com add -A && git_as sh dev@example.com commit -qm "A broken twin" &&
    git_as sh dev@example.com push -q origin play
daemon_conf sh "$W/sh.git" 'branch: play' 'protected_branches: [main]'
daemon_start sh || exit 1
assert_status "the H3 plan is blocked" sh "pst('0007-x') == 'blocked'"
bump sh sh play && bump sh sh play
assert_sql "the row stays blocked; one event of each kind over three passes" "blocked|1|1" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0007-x'),
            (SELECT count(*) FROM taskslaps.events WHERE type = 'plan.blocked' AND plan_id = '0007-x'),
            (SELECT count(*) FROM taskslaps.events WHERE type = 'plan.invalid' AND plan_id = '0007-x')"
assert_sql "the column is still there" t "SELECT taskslaps.column_exists('t', 'gone')"
daemon_stop sh
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 9
section "a refused plan edited by another author: its row names the commit and author of now"
newdb b1
q "CREATE TABLE t (id int PRIMARY KEY, gone int)" >/dev/null
repo_new bk play
put_plan bk play first@example.com 0008-y.json <<'EOF'
{ "title": "Drop a column", "reason": "H3 on a chaos branch",
  "steps": [ { "op": "drop_column", "table": "t", "name": "gone" } ] }
EOF
FIRST=$COMMIT
printf 'title: [\n' >"$W/bk.wt/migrations/0009-z.yaml"
git_as bk first@example.com add -A && git_as bk first@example.com commit -qm "A broken file" &&
    git_as bk first@example.com push -q origin play
BROKEN1=$(git -C "$W/bk.wt" rev-parse HEAD)
daemon_conf bk "$W/bk.git" 'branch: play' 'protected_branches: [main]'
daemon_start bk || exit 1
assert_status "the H3 plan is blocked, the broken file invalid" bk \
    "pst('0008-y') == 'blocked' and pst('0009-z') == 'invalid' and s['tip'] == '$BROKEN1'"
assert_sql "the rows name the first commits and author" "$FIRST|first@example.com|$BROKEN1|first@example.com" \
    "SELECT (SELECT commit_sha || '|' || author FROM taskslaps.plans WHERE plan_id = '0008-y') || '|' ||
            (SELECT commit_sha || '|' || author FROM taskslaps.plans WHERE plan_id = '0009-z')"
# another author edits the plan (still blocked) and brings the broken file
# back with the same bytes (removed, then added again: the same errors)
repo_checkout bk play
cat >"$W/bk.wt/migrations/0008-y.json" <<'EOF'
{ "title": "Drop a column, reworded", "reason": "H3 on a chaos branch",
  "steps": [ { "op": "drop_column", "table": "t", "name": "gone" } ] }
EOF
git -C "$W/bk.wt" rm -q migrations/0009-z.yaml
git_as bk second@example.com add -A && git_as bk second@example.com commit -qm "Reword, drop the file"
SECOND=$(git -C "$W/bk.wt" rev-parse HEAD)
printf 'title: [\n' >"$W/bk.wt/migrations/0009-z.yaml"
git_as bk second@example.com add -A && git_as bk second@example.com commit -qm "The file again" &&
    git_as bk second@example.com push -q origin play
BROKEN2=$(git -C "$W/bk.wt" rev-parse HEAD)
assert_status "still blocked and invalid, at the new tip" bk \
    "s['tip'] == '$BROKEN2' and pst('0008-y') == 'blocked' and pst('0009-z') == 'invalid'"
assert_sql "the rows name the commits and author of now" "$SECOND|second@example.com|$BROKEN2|second@example.com" \
    "SELECT (SELECT commit_sha || '|' || author FROM taskslaps.plans WHERE plan_id = '0008-y') || '|' ||
            (SELECT commit_sha || '|' || author FROM taskslaps.plans WHERE plan_id = '0009-z')"
case "$(note_of "$W/bk.git" bk "$SECOND")" in
*"blocked 0008-y"*) pass "the note on the new commit says blocked" ;;
*) fail "the note on the new commit says blocked" "$(note_of "$W/bk.git" bk "$SECOND")" ;;
esac
bump bk bk play
assert_sql "said once per commit: two blocked and two invalid events over three passes" "2|2" \
    "SELECT (SELECT count(*) FROM taskslaps.events WHERE type = 'plan.blocked' AND plan_id = '0008-y') || '|' ||
            (SELECT count(*) FROM taskslaps.events WHERE type = 'plan.invalid' AND plan_id = '0009-z')"
daemon_stop bk
assert_eq "exit 0" 0 "$DRC"

env_finish
