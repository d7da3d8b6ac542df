#!/usr/bin/env bash
# Integration test of the executor's failures: bad SQL in a step (its
# SQLSTATE shown, nothing half-applied, later plans wait), hostile
# identifiers and multi-statement SQL refused before reaching the database,
# obligation proofs (lock stronger than promised, table rewritten), and a
# backfill on a table without a primary key (also in --dry-run).
#
#   bash tests/integration/test_apply_errors.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

SETUP="
CREATE TABLE t (id bigint PRIMARY KEY, v int, note text);
INSERT INTO t SELECT g, g, 'row ' || g FROM generate_series(1, 300) g;"

# The shape of t, to see that nothing changed it.
shape() {
    q "SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum)
         FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped"
}
content() {
    q "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t"
}

###########################################################################
section "bad SQL fails its plan with the SQLSTATE"
newdb badsql
q "$SETUP" >/dev/null
P=$W/badsql
plan "$P/0001-two-steps.yaml" <<'EOF'
id: 0001-two-steps
title: The second step references a missing column
reason: integration test
steps:
  - { op: add_column, table: t, name: first_col, type: int }
  - op: sql
    sql: ALTER TABLE t ADD COLUMN half int, ADD CONSTRAINT t_missing CHECK (missing_col > 0)
EOF
plan "$P/0002-later.yaml" <<'EOF'
id: 0002-later
title: Must wait behind the failed plan
reason: integration test
steps:
  - { op: add_column, table: t, name: later_col, type: int }
EOF
run_ctl apply "$P"
assert_rc "apply exits 1" 1 "$RC" "$ERR"
assert_contains "stderr names the plan and outcome" "0001-two-steps failed" "$ERR"
assert_contains "stderr shows the SQLSTATE" "SQLSTATE 42703" "$ERR"
assert_contains "stderr shows the server's message" 'column "missing_col" does not exist' "$ERR"
assert_contains "output shows step.error" "step.error" "$OUT"
assert_contains "output shows plan.failed with the SQLSTATE" "SQLSTATE 42703" "$(grep plan.failed <<<"$OUT")"
assert_sql "plans: 0001 failed, 0002 never seen" "0001-two-steps|failed" \
    "SELECT plan_id, status FROM taskslaps.plans ORDER BY plan_id"
assert_sql "events: plan.failed and step.error carry SQLSTATE 42703" "2" \
    "SELECT count(*) FROM taskslaps.events WHERE plan_id = '0001-two-steps'
        AND type IN ('plan.failed', 'step.error') AND message LIKE '%SQLSTATE 42703%'"
assert_sql "events: plan.failed names the failing step" "t" \
    "SELECT step_sha = (SELECT step_sha FROM taskslaps.events WHERE type = 'step.start' AND plan_id = '0001-two-steps' ORDER BY id DESC LIMIT 1)
       FROM taskslaps.events WHERE type = 'plan.failed'"
assert_sql "first step committed (atomic steps)" "1" \
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'first_col'"
assert_sql "failing statement left no trace: no column 'half'" "0" \
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'half'"
assert_sql "failing statement left no trace: no constraint" "0" \
    "SELECT count(*) FROM pg_constraint WHERE conname = 't_missing'"
assert_sql "ledger: only the first step" "0|add_column|applied" \
    "SELECT step_index, op, outcome FROM taskslaps.step_ledger"
assert_sql "later plan did not run" "0" \
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'later_col'"
assert_sql "no events of the later plan" "0" "SELECT count(*) FROM taskslaps.events WHERE plan_id = '0002-later'"
# Again: the failed plan stays failed; the first step is skipped, the second fails again.
run_ctl apply "$P"
assert_rc "second apply exits 1 again" 1 "$RC" "$ERR"
assert_sql "second apply: first step skipped, second failed again" "1|2" \
    "SELECT count(*) FILTER (WHERE type = 'step.skipped'), count(*) FILTER (WHERE type = 'plan.failed')
       FROM taskslaps.events WHERE plan_id = '0001-two-steps'"
assert_sql "still one ledger row" "1" "SELECT count(*) FROM taskslaps.step_ledger"

###########################################################################
section "checks that raise an error"
newdb badcheck
q "$SETUP" >/dev/null
before=$(shape)
plan "$W/badpost/0001-post.yaml" <<'EOF'
id: 0001-post
title: A postcheck that errors rolls the step back
reason: integration test
steps:
  - op: add_column
    table: t
    name: new_col
    type: int
    postchecks: ["(SELECT no_such_column FROM t LIMIT 1) IS NULL"]
EOF
run_ctl apply "$W/badpost"
assert_rc "erroring postcheck: exit 1" 1 "$RC" "$ERR"
assert_contains "erroring postcheck: SQLSTATE shown" "SQLSTATE 42703" "$ERR"
assert_eq "erroring postcheck: the statement was rolled back" "$before" "$(shape)"
assert_sql "erroring postcheck: nothing in the ledger, plan failed" "0|failed" \
    "SELECT (SELECT count(*) FROM taskslaps.step_ledger), (SELECT status FROM taskslaps.plans)"

plan "$W/badpre/0001-pre.yaml" <<'EOF'
id: 0002-pre
title: A precheck that errors
reason: integration test
steps:
  - { op: add_column, table: t, name: new_col, type: int, prechecks: ["1 / (SELECT count(*) - count(*) FROM t) = 1"] }
EOF
run_ctl apply "$W/badpre"
assert_rc "erroring precheck: exit 1" 1 "$RC" "$ERR"
assert_contains "erroring precheck: SQLSTATE 22012" "SQLSTATE 22012" "$ERR"
assert_eq "erroring precheck: nothing changed" "$before" "$(shape)"
assert_sql "erroring precheck: step.error recorded" "1" \
    "SELECT count(*) FROM taskslaps.events WHERE plan_id = '0002-pre' AND type = 'step.error' AND message LIKE '%22012%'"

# A backfill whose third batch fails: the two committed batches stay (their
# checkpoint with them), the failing batch is rolled back entirely.
newdb badfill
q "$SETUP" >/dev/null
plan "$W/badfill/0001-fill.yaml" <<'EOF'
id: 0001-fill
title: A backfill that divides by zero at id 150
reason: integration test
waves:
  - name: backfill
    limits: { batch_size: 60, rows_per_second: 0 }
    steps:
      - { op: backfill_sql, sql: "UPDATE t SET v = 1000 / (id - 150)" }
EOF
run_ctl apply "$W/badfill"
assert_rc "failing backfill: exit 1" 1 "$RC" "$ERR"
assert_contains "failing backfill: SQLSTATE 22012" "SQLSTATE 22012" "$ERR"
assert_contains "failing backfill: says the checkpoint is kept" "checkpoint kept" "$ERR"
assert_sql "failing backfill: batches 1-2 applied, batch 3 rolled back" "120|0" \
    "SELECT count(*) FILTER (WHERE v = 1000 / (id - 150)), count(*) FILTER (WHERE id > 120 AND v <> id) FROM t WHERE id <> 150"
assert_sql "failing backfill: checkpoint after batch 2" '["120"]|120' \
    "SELECT last_key::text, rows_done FROM taskslaps.backfill_progress"
assert_sql "failing backfill: no ledger row" "0" "SELECT count(*) FROM taskslaps.step_ledger"

###########################################################################
section "refused before reaching the database"
newdb refuse
q "$SETUP" >/dev/null
before=$(shape)
before_data=$(content)
i=0
# Each: a plan whose one step must be refused by the planner.
while IFS= read -r step; do
    [ -n "$step" ] || continue
    i=$((i + 1))
    plan "$W/refuse$i/0001-hostile.yaml" <<EOF
id: hostile-$i
title: Hostile input $i
reason: integration test
steps:
  - $step
EOF
    run_ctl apply "$W/refuse$i"
    assert_rc "refused ($step): exit 2" 2 "$RC" "$ERR"
    assert_contains "refused ($step): file:line:column" "0001-hostile.yaml:5:" "$ERR"
    assert_sql "refused ($step): no event, no plan row" "0|0" \
        "SELECT (SELECT count(*) FROM taskslaps.events), (SELECT count(*) FROM taskslaps.plans)"
done <<'EOF'
{ op: add_column, table: 't"; DROP TABLE t; --', name: x, type: int }
{ op: add_column, table: t, name: 'x; DROP TABLE t', type: int }
{ op: add_column, table: t, name: "x\"y", type: int }
{ op: add_column, table: t, name: "café", type: int }
{ op: add_column, table: "tëst", name: x, type: int }
{ op: add_column, table: t, name: x, type: "int; DROP TABLE t" }
{ op: add_column, table: t, name: x, type: "int -- comment" }
{ op: add_column, table: t, name: x, type: "text COLLATE \"C\"" }
{ op: drop_column, table: t, name: "v\u00a0" }
{ op: rename_table, from: t, to: "t;x" }
{ op: add_index_concurrently, table: t, name: t_v_idx, columns: ["v); DROP TABLE t; --"] }
{ op: sql, sql: "ALTER TABLE t ADD COLUMN x int; DROP TABLE t" }
{ op: sql, sql: "SELECT 1; SELECT 2" }
{ op: backfill_sql, sql: "UPDATE t SET v = 0; DROP TABLE t" }
{ op: add_check_not_valid, table: t, name: t_chk, check: "v > 0); DROP TABLE t; --" }
{ op: create_view, name: v_t, sql: "SELECT 1; DROP TABLE t" }
EOF
assert_eq "refused plans left t's shape unchanged" "$before" "$(shape)"
assert_eq "refused plans left t's rows unchanged" "$before_data" "$(content)"
assert_sql "refused plans: nothing in the ledger" "0" "SELECT count(*) FROM taskslaps.step_ledger"

###########################################################################
section "obligation proofs"
newdb proofs
q "$SETUP" >/dev/null
# A function the planner cannot see into: what it runs is proved at run time.
q "CREATE FUNCTION run_ddl(text) RETURNS void LANGUAGE plpgsql AS \$\$ BEGIN EXECUTE \$1; END \$\$" >/dev/null
before=$(shape)
# The statement itself: the planner reads it and refuses the low promise.
plan "$W/lock0/0001-lock.yaml" <<'EOF'
id: 0001-lock
title: A sql step that promises less than its statement takes
reason: integration test
steps:
  - op: sql
    sql: ALTER TABLE t ADD COLUMN sneaky int
    lock_class_max: ShareUpdateExclusiveLock
EOF
run_ctl apply "$W/lock0"
assert_rc "lock promise below the parse tree's: invalid" 2 "$RC" "$ERR"
assert_contains "... naming both locks" \
    "lock_class_max: the statement takes AccessExclusiveLock (adds a column: ACCESS EXCLUSIVE for an instant, no rewrite), stronger than the ShareUpdateExclusiveLock promised" "$ERR"
plan "$W/lock/0001-lock.yaml" <<'EOF'
id: 0001-lock
title: A sql step that takes a stronger lock than it promised
reason: integration test
steps:
  - op: sql
    sql: SELECT run_ddl('ALTER TABLE t ADD COLUMN sneaky int')
    lock_class_max: ShareUpdateExclusiveLock
EOF
run_ctl apply "$W/lock"
assert_rc "lock obligation: exit 1" 1 "$RC" "$ERR"
assert_contains "lock obligation: violated" "obligation violated" "$ERR"
assert_contains "lock obligation: names the lock and relation" "took AccessExclusiveLock on t" "$ERR"
assert_contains "lock obligation: names the promise" "lock_class_max is ShareUpdateExclusiveLock" "$ERR"
assert_eq "lock obligation: rolled back (column absent)" "$before" "$(shape)"
assert_sql "lock obligation: no ledger row, plan failed, step.error" "0|failed|1" \
    "SELECT (SELECT count(*) FROM taskslaps.step_ledger), (SELECT status FROM taskslaps.plans WHERE plan_id = '0001-lock'),
            (SELECT count(*) FROM taskslaps.events WHERE type = 'step.error' AND message LIKE '%obligation violated%AccessExclusiveLock%')"

# A promise kept: the same statement with its true lock class passes.
plan "$W/lockok/0001-lock.yaml" <<'EOF'
id: 0002-lock-ok
title: The same statement, honestly declared
reason: integration test
steps:
  - { op: sql, sql: "ALTER TABLE t ADD COLUMN honest int", lock_class_max: ACCESS EXCLUSIVE }
  - { op: sql, sql: "UPDATE t SET honest = 1 WHERE id = 1", lock_class_max: RowExclusiveLock }
EOF
run_ctl apply "$W/lockok"
assert_rc "kept lock promise: exit 0" 0 "$RC" "$ERR"
assert_sql "kept lock promise: applied" "1" "SELECT count(*) FROM t WHERE honest = 1"

# The locks on a relation the step itself creates do not count (nobody else
# can see it before COMMIT); a strong lock on one that existed still does,
# in the same statement's step.
plan "$W/lockfresh/0001-fresh.yaml" <<'EOF'
id: 0004-lock-fresh
title: A new table's own AccessExclusiveLock is not a broken promise
reason: integration test
steps:
  - { op: sql, sql: "CREATE TABLE fresh (id int PRIMARY KEY)", lock_class_max: RowExclusiveLock }
EOF
run_ctl apply "$W/lockfresh"
assert_rc "lock on a new relation: exit 0" 0 "$RC" "$ERR"
assert_sql "lock on a new relation: table and its index created" "r|i" \
    "SELECT (SELECT relkind FROM pg_class WHERE oid = 'fresh'::regclass), (SELECT relkind FROM pg_class WHERE oid = 'fresh_pkey'::regclass)"
plan "$W/lockfresh2/0001-fresh.yaml" <<'EOF'
id: 0005-lock-fresh-and-old
title: A new table that references an old one locks the old one too
reason: integration test
steps:
  - { op: sql, sql: "SELECT run_ddl('CREATE TABLE fresh2 (id int REFERENCES fresh (id))')", lock_class_max: RowExclusiveLock }
EOF
run_ctl apply "$W/lockfresh2"
assert_rc "strong lock on an existing relation beside a new one: exit 1" 1 "$RC" "$ERR"
assert_contains "strong lock on an existing relation: names it" "ShareRowExclusiveLock on fresh," "$ERR"
assert_sql "strong lock on an existing relation: rolled back" "" "SELECT to_regclass('fresh2')"
before=$(shape)

relfile=$(q "SELECT relfilenode FROM pg_class WHERE oid = 't'::regclass")
plan "$W/rewrite/0001-rewrite.yaml" <<'EOF'
id: 0003-rewrite
title: add_column with a serial type rewrites the table
reason: integration test
steps:
  - { op: add_column, table: t, name: seq_col, type: bigserial }
EOF
run_ctl apply "$W/rewrite"
assert_rc "rewrite obligation: exit 1" 1 "$RC" "$ERR"
assert_contains "rewrite obligation: violated" "obligation violated" "$ERR"
assert_contains "rewrite obligation: rewrote table t" "rewrote table t" "$ERR"
assert_match "rewrite obligation: relfilenode evidence" "relfilenode $relfile -> [0-9]+" "$ERR"
assert_contains "rewrite obligation: rolled back" "rolled back" "$ERR"
assert_eq "rewrite obligation: column absent" "$before" "$(shape)"
assert_sql "rewrite obligation: relfilenode unchanged, no sequence left" "$relfile|" \
    "SELECT relfilenode, to_regclass('t_seq_col_seq') FROM pg_class WHERE oid = 't'::regclass"
assert_sql "rewrite obligation: no ledger row for it" "0" \
    "SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0003-rewrite'"
assert_sql "rewrite obligation: plan failed with the evidence in its event" "failed|1" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0003-rewrite'),
            (SELECT count(*) FROM taskslaps.events WHERE plan_id = '0003-rewrite' AND type = 'plan.failed' AND message LIKE '%relfilenode $relfile -> %')"

###########################################################################
section "a failed index build leaves no INVALID index"
newdb badindex
q "$SETUP
   INSERT INTO t VALUES (1001, 1, 'duplicate v');" >/dev/null
plan "$W/badindex/0001-uniq.yaml" <<'EOF'
id: 0001-uniq
title: A unique index on duplicate values
reason: integration test
steps:
  - { op: add_index_concurrently, table: t, name: t_v_uniq, columns: [v], unique: true }
EOF
run_ctl apply "$W/badindex"
assert_rc "duplicate values: exit 1" 1 "$RC" "$ERR"
assert_contains "duplicate values: SQLSTATE 23505" "SQLSTATE 23505" "$ERR"
assert_sql "duplicate values: the INVALID index was dropped" "|0" \
    "SELECT to_regclass('t_v_uniq'), (SELECT count(*) FROM pg_index WHERE NOT indisvalid)"
assert_sql "duplicate values: no ledger row" "0" "SELECT count(*) FROM taskslaps.step_ledger"
assert_sql "duplicate values: plan failed" "failed" \
    "SELECT status FROM taskslaps.plans WHERE plan_id = '0001-uniq'"

###########################################################################
section "statement timeout"
newdb stmt
q "$SETUP" >/dev/null
plan "$W/stmt/0001-slow.yaml" <<'EOF'
id: 0001-slow
title: A statement slower than its max_stmt_ms
reason: integration test
steps:
  - op: sql
    sql: UPDATE t SET v = v + 1 WHERE pg_sleep(1) IS NOT NULL AND id = 1
    limits: { max_stmt_ms: 200 }
EOF
run_ctl apply "$W/stmt"
assert_rc "statement timeout: exit 1" 1 "$RC" "$ERR"
assert_contains "statement timeout: SQLSTATE 57014" "SQLSTATE 57014" "$ERR"
assert_contains "statement timeout: says so" "statement timeout" "$ERR"
assert_sql "statement timeout: nothing applied" "1|0" \
    "SELECT (SELECT v FROM t WHERE id = 1), (SELECT count(*) FROM taskslaps.step_ledger)"
assert_sql "statement timeout: no retry (only lock timeouts are retried)" "0" \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'step.retry'"

###########################################################################
section "policy: chaos mode blocks H3"
newdb chaos
q "$SETUP" >/dev/null
before=$(shape)
plan "$W/chaos/0001-h1.yaml" <<'EOF'
id: 0001-h1
title: Additive only
reason: integration test
steps:
  - { op: add_column, table: t, name: fine, type: int }
EOF
plan "$W/chaos/0002-h3.yaml" <<'EOF'
id: 0002-h3
title: Destructive
reason: integration test
steps:
  - { op: add_column, table: t, name: also_fine, type: int }
  - { op: drop_column, table: t, name: note }
EOF
plan "$W/chaos/0003-after.yaml" <<'EOF'
id: 0003-after
title: Behind the blocked plan
reason: integration test
steps:
  - { op: add_column, table: t, name: after, type: int }
EOF
run_ctl apply --mode chaos "$W/chaos"
assert_rc "chaos: exit 1" 1 "$RC" "$ERR"
assert_contains "chaos: the H3 plan is blocked" "0002-h3 blocked" "$ERR"
assert_sql "chaos: statuses" "0001-h1|applied
0002-h3|blocked" "SELECT plan_id, status FROM taskslaps.plans ORDER BY plan_id"
assert_sql "chaos: a plan.blocked event, no step of the blocked plan started" "1|0" \
    "SELECT count(*) FILTER (WHERE type = 'plan.blocked'), count(*) FILTER (WHERE type = 'step.start')
       FROM taskslaps.events WHERE plan_id = '0002-h3'"
assert_sql "chaos: nothing of the blocked plan or after it ran" "fine" \
    "SELECT string_agg(attname, ',') FROM pg_attribute WHERE attrelid = 't'::regclass
        AND attname IN ('fine', 'also_fine', 'after') AND NOT attisdropped"

###########################################################################
section "backfill without a primary key"
newdb nopk
q "CREATE TABLE nopk (a int, b int); INSERT INTO nopk SELECT g, NULL FROM generate_series(1, 50) g;" >/dev/null
plan "$W/nopk/0001-nopk.yaml" <<'EOF'
id: 0001-nopk
title: Backfill of a table without a primary key
reason: integration test
steps:
  - { op: add_column, table: nopk, name: c, type: int }
  - { op: backfill_sql, sql: "UPDATE nopk SET b = a" }
EOF
# A dry run on a database that never saw taskslaps changes nothing and says why it cannot check.
run_ctl apply --dry-run "$W/nopk"
assert_rc "dry run without the schema: exit 1" 1 "$RC" "$ERR"
assert_contains "dry run without the schema: says to install it" "install-schema" "$OUT$ERR"
assert_sql "dry run without the schema: schema not created" "" "SELECT to_regnamespace('taskslaps')"
run_ctl install-schema
assert_rc "install-schema exits 0" 0 "$RC" "$ERR"
run_ctl apply --dry-run "$W/nopk"
assert_rc "dry run: exit 1" 1 "$RC" "$ERR"
assert_contains "dry run: reports no_primary_key" '"state":	"no_primary_key"' "$OUT"
assert_contains "dry run: says why" "table nopk has no primary key" "$OUT"
assert_contains "dry run: the add_column would run" '"state":	"would_run"' "$OUT"
assert_sql "dry run: nothing changed" "0|0|0|0|50" \
    "SELECT (SELECT count(*) FROM taskslaps.plans), (SELECT count(*) FROM taskslaps.events),
            (SELECT count(*) FROM taskslaps.step_ledger),
            (SELECT count(*) FROM pg_attribute WHERE attrelid = 'nopk'::regclass AND attname = 'c'),
            (SELECT count(*) FROM nopk WHERE b IS NULL)"
run_ctl apply "$W/nopk"
assert_rc "apply: exit 1" 1 "$RC" "$ERR"
assert_contains "apply: a clear message" "table nopk has no primary key" "$ERR"
assert_sql "apply: no row updated, backfill not in the ledger" "50|0|failed" \
    "SELECT (SELECT count(*) FROM nopk WHERE b IS NULL),
            (SELECT count(*) FROM taskslaps.step_ledger WHERE op = 'backfill_sql'),
            (SELECT status FROM taskslaps.plans)"
assert_sql "apply: no checkpoint made" "0" "SELECT count(*) FROM taskslaps.backfill_progress"

env_finish
