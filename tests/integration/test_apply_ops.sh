#!/usr/bin/env bash
# Integration test of the executor, every op for real: `taskslapsctl --db
# apply` against a throwaway PostgreSQL 15, each effect checked in the
# catalog, the ledger and the events; re-runs skip everything; objects made
# by hand are adopted as already_present.
#
#   bash tests/integration/test_apply_ops.sh   (TS_VERBOSE=1 prints passes;
#   TASKSLAPSCTL=path/to/taskslapsctl to test another build)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

newdb ops
q "
CREATE TABLE account (id bigint PRIMARY KEY, email text, team_id int, legacy text, score int);
INSERT INTO account SELECT g, 'u' || g || '@example.com', g % 5, 'old', g FROM generate_series(1, 200) g;
CREATE TABLE team (id int PRIMARY KEY, name text);
INSERT INTO team SELECT g, 'team ' || g FROM generate_series(0, 4) g;
CREATE TABLE scratch (id int);
CREATE INDEX account_legacy_idx ON account (legacy);" >/dev/null

P=$W/plans
plan "$P/0001-expand.yaml" <<'EOF'
id: 0001-expand
title: Every expand op
reason: integration test
waves:
  - name: expand
    steps:
      - op: create_table
        table: audit_log
        columns:
          - { name: id, type: bigint, nullable: false }
          - { name: note, type: text }
          - { name: at, type: timestamptz, nullable: false, default: "2024-01-01" }
        primary_key: [id]
      - { op: add_column, table: account, name: nickname, type: text }
      - { op: add_column, table: account, name: active, type: boolean, nullable: false, default: true }
      - { op: add_column, table: account, name: balance, type: "numeric(12,2)", default: 0 }
      - { op: add_index_concurrently, table: account, name: account_email_idx, columns: [email], unique: true }
      - op: add_index_concurrently
        table: account
        name: account_team_idx
        columns: [team_id, id]
        where: team_id IS NOT NULL
      - op: add_foreign_key_not_valid
        table: account
        name: account_team_fk
        columns: [team_id]
        ref_table: team
        ref_columns: [id]
        on_delete: SET NULL
      - { op: add_check_not_valid, table: account, name: account_score_pos, check: score > 0 }
      - { op: create_view, name: account_emails, sql: "SELECT id, email FROM account" }
EOF
plan "$P/0002-fill.yaml" <<'EOF'
id: 0002-fill
title: Backfill, validate, not null
reason: integration test
waves:
  - name: backfill
    limits: { batch_size: 30, rows_per_second: 0 }
    steps:
      - op: backfill_sql
        sql: UPDATE account SET nickname = 'n' || id WHERE nickname IS NULL
        postchecks: ["NOT EXISTS (SELECT 1 FROM account WHERE nickname IS NULL)"]
  - name: validate
    steps:
      - { op: validate_constraint, table: account, name: account_team_fk }
      - { op: validate_constraint, table: account, name: account_score_pos }
      - { op: set_not_null, table: account, column: nickname }
EOF
plan "$P/0003-contract.json" <<'EOF'
{
  "id": "0003-contract",
  "title": "Every contract op",
  "reason": "integration test",
  "steps": [
    { "op": "drop_index_concurrently", "name": "account_legacy_idx" },
    { "op": "drop_column", "table": "account", "name": "legacy" },
    { "op": "drop_table", "table": "scratch" },
    { "op": "rename_column", "table": "account", "from": "email", "to": "email_address" },
    { "op": "rename_table", "from": "team", "to": "squad" },
    { "op": "sql", "sql": "COMMENT ON TABLE account IS 'one row per account'",
      "lock_class_max": "ShareUpdateExclusiveLock" }
  ]
}
EOF

###########################################################################
section "expand"
run_ctl apply "$P/0001-expand.yaml"
assert_rc "apply 0001 exits 0" 0 "$RC" "$ERR"
assert_contains "apply prints plan.ok" "plan.ok" "$OUT"
assert_contains "apply prints the summary" "1 of 1 plan applied or already applied" "$OUT"
assert_sql "create_table: table exists" "r" "SELECT relkind FROM pg_class WHERE oid = 'audit_log'::regclass"
assert_sql "create_table: primary key on id" "p|{1}" \
    "SELECT contype, conkey FROM pg_constraint WHERE conrelid = 'audit_log'::regclass AND contype = 'p'"
assert_sql "create_table: columns, types, NOT NULL, default" \
    "id|bigint|t|
note|text|f|
at|timestamp with time zone|t|'2024-01-01 00:00:00+00'::timestamp with time zone" \
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), '')
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = 'audit_log'::regclass AND a.attnum > 0 ORDER BY a.attnum" \
    -c "SET timezone = 'UTC'"
assert_sql "add_column: nickname text nullable" "text|f" \
    "SELECT format_type(atttypid, atttypmod), attnotnull FROM pg_attribute WHERE attrelid = 'account'::regclass AND attname = 'nickname'"
assert_sql "add_column: active boolean NOT NULL DEFAULT true, filled" "boolean|t|200" \
    "SELECT format_type(atttypid, atttypmod), attnotnull, (SELECT count(*) FROM account WHERE active)
       FROM pg_attribute WHERE attrelid = 'account'::regclass AND attname = 'active'"
assert_sql "add_column: numeric(12,2) default 0" "numeric(12,2)|0.00" \
    "SELECT format_type(atttypid, atttypmod), (SELECT max(balance) FROM account)
       FROM pg_attribute WHERE attrelid = 'account'::regclass AND attname = 'balance'"
assert_sql "add_index_concurrently: unique index exists and is valid" "t|t|t|account" \
    "SELECT i.indisvalid, i.indisready, i.indisunique, i.indrelid::regclass FROM pg_index i WHERE i.indexrelid = 'account_email_idx'::regclass"
assert_sql "add_index_concurrently: partial index on (team_id, id), valid" \
    "t|CREATE INDEX account_team_idx ON public.account USING btree (team_id, id) WHERE (team_id IS NOT NULL)" \
    "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indexrelid = 'account_team_idx'::regclass"
assert_sql "add_foreign_key_not_valid: exists, NOT VALID, ON DELETE SET NULL" "f|f|n|team" \
    "SELECT contype, convalidated, confdeltype, confrelid::regclass FROM pg_constraint WHERE conname = 'account_team_fk'"
assert_sql "add_check_not_valid: exists, NOT VALID" "c|f|CHECK ((score > 0)) NOT VALID" \
    "SELECT contype, convalidated, pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'account_score_pos'"
assert_sql "create_view: view exists and reads" "v|200" \
    "SELECT relkind, (SELECT count(*) FROM account_emails) FROM pg_class WHERE oid = 'account_emails'::regclass"
assert_sql "ledger: one applied row per step of 0001" "9|9|9|0" \
    "SELECT count(*), count(DISTINCT step_sha), count(*) FILTER (WHERE outcome = 'applied'),
            count(*) FILTER (WHERE outcome <> 'applied') FROM taskslaps.step_ledger WHERE plan_id = '0001-expand'"
assert_sql "ledger: steps by wave and index" \
    "expand|0|create_table|H1
expand|1|add_column|H1
expand|2|add_column|H2
expand|3|add_column|H1
expand|4|add_index_concurrently|H1
expand|5|add_index_concurrently|H1
expand|6|add_foreign_key_not_valid|H1
expand|7|add_check_not_valid|H1
expand|8|create_view|H0" \
    "SELECT wave, step_index, op, hazard FROM taskslaps.step_ledger WHERE plan_id = '0001-expand' ORDER BY step_index"
assert_sql "ledger: applied_by, target, time" "taskslapsctl apply|default|t" \
    "SELECT DISTINCT applied_by, target, execution_time_ms >= 0 FROM taskslaps.step_ledger WHERE plan_id = '0001-expand'"
assert_sql "plans: 0001 applied, H2, completed" "applied|H2|t|t" \
    "SELECT status, max_hazard, completed_at IS NOT NULL, checksum ~ '^[0-9a-f]{64}$' FROM taskslaps.plans WHERE plan_id = '0001-expand'"
assert_eq "events of 0001" \
    "plan.start wave.start governor.healthy $(printf 'step.start step.ok %.0s' 1 2 3 4 5 6 7 8 9)wave.ok plan.ok" \
    "$(events_of 0001-expand | tr '\n' ' ' | sed 's/ $//')"
assert_sql "step.ok events carry metrics" "9" \
    "SELECT count(*) FROM taskslaps.events WHERE plan_id = '0001-expand' AND type = 'step.ok'
        AND metrics ? 'execution_time_ms' AND metrics->>'outcome' = 'applied'"

###########################################################################
section "backfill and validate"
run_ctl apply "$P"
assert_rc "apply DIR (0002, 0003) exits 0" 0 "$RC" "$ERR"
assert_contains "apply DIR summary" "3 of 3 plans applied or already applied" "$OUT"
assert_sql "backfill_sql: every row filled once" "200|0" \
    "SELECT count(*) FILTER (WHERE nickname = 'n' || id), count(*) FILTER (WHERE nickname IS DISTINCT FROM 'n' || id) FROM account"
assert_sql "backfill_sql: ledger rows_affected 200" "200|applied|backfill" \
    "SELECT rows_affected, outcome, wave FROM taskslaps.step_ledger WHERE plan_id = '0002-fill' AND op = 'backfill_sql'"
assert_sql "backfill_sql: checkpoint at the end" "[\"200\"]|[\"200\"]" \
    "SELECT last_key::text, upper_key::text FROM taskslaps.backfill_progress"
assert_sql "validate_constraint: foreign key validated" "t" \
    "SELECT convalidated FROM pg_constraint WHERE conname = 'account_team_fk'"
assert_sql "validate_constraint: check validated" "t" \
    "SELECT convalidated FROM pg_constraint WHERE conname = 'account_score_pos'"
assert_sql "set_not_null: nickname NOT NULL" "t" \
    "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'account'::regclass AND attname = 'nickname'"
assert_sql "ledger: 4 applied rows for 0002" "4|4" \
    "SELECT count(*), count(*) FILTER (WHERE outcome = 'applied') FROM taskslaps.step_ledger WHERE plan_id = '0002-fill'"

###########################################################################
section "contract"
assert_sql "drop_index_concurrently: index gone" "" "SELECT to_regclass('account_legacy_idx')"
assert_sql "drop_column: legacy gone" "0" \
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 'account'::regclass AND attname = 'legacy' AND NOT attisdropped"
assert_sql "drop_table: scratch gone" "" "SELECT to_regclass('scratch')"
assert_sql "rename_column: email -> email_address" "email_address" \
    "SELECT string_agg(attname, ',') FROM pg_attribute WHERE attrelid = 'account'::regclass AND attname LIKE 'email%' AND NOT attisdropped"
assert_sql "rename_table: team -> squad" "|squad" "SELECT to_regclass('team'), to_regclass('squad')"
assert_sql "sql: comment set" "one row per account" "SELECT obj_description('account'::regclass, 'pg_class')"
assert_sql "renamed objects keep their data and keys" "200|5|t" \
    "SELECT (SELECT count(email_address) FROM account), (SELECT count(*) FROM squad),
            (SELECT convalidated FROM pg_constraint WHERE conname = 'account_team_fk' AND confrelid = 'squad'::regclass)"
assert_sql "ledger: 6 applied rows for 0003, in order" \
    "0|drop_index_concurrently
1|drop_column
2|drop_table
3|rename_column
4|rename_table
5|sql" \
    "SELECT step_index, op FROM taskslaps.step_ledger WHERE plan_id = '0003-contract' AND outcome = 'applied' ORDER BY step_index"
assert_sql "plans: all three applied" "0001-expand|applied
0002-fill|applied
0003-contract|applied" "SELECT plan_id, status FROM taskslaps.plans ORDER BY plan_id"
assert_sql "no INVALID index anywhere" "0" "SELECT count(*) FROM pg_index WHERE NOT indisvalid"
assert_sql "no advisory lock left" "0" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"

###########################################################################
section "re-run skips everything"
ledger_before=$(q "SELECT count(*) FROM taskslaps.step_ledger")
starts_before=$(q "SELECT count(*) FROM taskslaps.events WHERE type = 'step.start'")
events_before=$(q "SELECT count(*) FROM taskslaps.events")
run_ctl apply "$P"
assert_rc "re-run exits 0" 0 "$RC" "$ERR"
assert_contains "re-run summary" "3 of 3 plans applied or already applied" "$OUT"
assert_not_contains "re-run starts no step" "step.start" "$OUT"
assert_sql "re-run adds no ledger row" "$ledger_before" "SELECT count(*) FROM taskslaps.step_ledger"
assert_sql "re-run records no step.start" "$starts_before" "SELECT count(*) FROM taskslaps.events WHERE type = 'step.start'"
assert_sql "re-run records no event at all" "$events_before" "SELECT count(*) FROM taskslaps.events"
run_ctl apply "$P/0003-contract.json" "$P/0001-expand.yaml"
assert_rc "re-run of single files exits 0" 0 "$RC" "$ERR"
assert_sql "still no new ledger row" "$ledger_before" "SELECT count(*) FROM taskslaps.step_ledger"

# A plan whose status is not 'applied' (say, failed and resumed) walks its
# steps again: those in the ledger are skipped, with an event, not re-run.
q "UPDATE taskslaps.plans SET status = 'pending' WHERE plan_id = '0003-contract'" >/dev/null
run_ctl apply "$P"
assert_rc "re-walk of a pending plan exits 0" 0 "$RC" "$ERR"
assert_sql "re-walk: every step skipped" "6|0" \
    "SELECT count(*) FILTER (WHERE type = 'step.skipped'), count(*) FILTER (WHERE type = 'step.start')
       FROM taskslaps.events WHERE plan_id = '0003-contract' AND id > $events_before"
assert_sql "re-walk adds no ledger row" "$ledger_before" "SELECT count(*) FROM taskslaps.step_ledger"
assert_sql "re-walk: plan applied again" "applied" "SELECT status FROM taskslaps.plans WHERE plan_id = '0003-contract'"

###########################################################################
section "already_present"
q "ALTER TABLE account ADD COLUMN hand_made text;
   CREATE INDEX account_score_idx ON account (score);
   CREATE TABLE hand_table (id int PRIMARY KEY);" >/dev/null
plan "$P/0004-adopt.yaml" <<'EOF'
id: 0004-adopt
title: Objects someone already made by hand
reason: integration test
steps:
  - { op: add_column, table: account, name: hand_made, type: text }
  - { op: add_index_concurrently, table: account, name: account_score_idx, columns: [score] }
  - { op: create_table, table: hand_table, columns: [{ name: id, type: int }], primary_key: [id] }
  - { op: add_column, table: account, name: really_new, type: int }
EOF
run_ctl apply "$P"
assert_rc "apply with hand-made objects exits 0" 0 "$RC" "$ERR"
assert_sql "ledger: three adopted, one applied" "0|add_column|already_present
1|add_index_concurrently|already_present
2|create_table|already_present
3|add_column|applied" \
    "SELECT step_index, op, outcome FROM taskslaps.step_ledger WHERE plan_id = '0004-adopt' ORDER BY step_index"
assert_sql "events: step.already_present x3, no step.error" "3|0|1" \
    "SELECT count(*) FILTER (WHERE type = 'step.already_present'), count(*) FILTER (WHERE type = 'step.error'),
            count(*) FILTER (WHERE type = 'plan.ok') FROM taskslaps.events WHERE plan_id = '0004-adopt'"
assert_sql "the new column was added" "1" \
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 'account'::regclass AND attname = 'really_new'"
assert_sql "plan 0004 applied" "applied" "SELECT status FROM taskslaps.plans WHERE plan_id = '0004-adopt'"

# Adopted only when the column is there as the step would make it: type (as
# format_type gives it, so int is integer), nullability and default.
q "ALTER TABLE account ADD COLUMN hand_int integer;
   ALTER TABLE account ADD COLUMN hand_money numeric(12,2) DEFAULT 0;
   ALTER TABLE account ADD COLUMN hand_name varchar(20) NOT NULL DEFAULT 'x';
   CREATE TABLE hand_table2 (id int PRIMARY KEY, note text);" >/dev/null
plan "$P/0006-adopt-same.yaml" <<'EOF'
id: 0006-adopt-same
title: Hand-made columns that are what the steps say
reason: integration test
steps:
  - { op: add_column, table: account, name: hand_int, type: int }
  - { op: add_column, table: account, name: hand_money, type: "numeric(12, 2)", default: 0 }
  - { op: add_column, table: account, name: hand_name, type: "varchar(20)", nullable: false, default: x }
  - { op: create_table, table: hand_table2, columns: [{ name: id, type: integer }, { name: note, type: text }], primary_key: [id] }
EOF
run_ctl apply "$P"
assert_rc "hand-made columns of the same type, nullability and default: exit 0" 0 "$RC" "$ERR"
assert_sql "they are adopted" "4" \
    "SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0006-adopt-same' AND outcome = 'already_present'"
assert_sql "the comparison's probe leaves no table behind" "0" \
    "SELECT count(*) FROM pg_class WHERE relname = 'taskslaps_present_probe'"

# differ NAME YAML-STEP WANT...: the step is not adopted, the plan fails with
# each WANT in the message, and nothing is recorded.
differ() {
    local name=$1 step=$2 want
    shift 2
    plan "$W/differ-$name/0001-$name.yaml" <<EOF
id: 0007-differ-$name
title: A hand-made object that is not what the step says
reason: integration test
steps:
  - $step
EOF
    run_ctl apply "$W/differ-$name"
    assert_rc "$name: not adopted, exit 1" 1 "$RC" "$ERR"
    assert_contains "$name: says why" "not adopted as already present" "$ERR"
    for want in "$@"; do
        assert_contains "$name: names the difference ($want)" "$want" "$ERR"
    done
    assert_sql "$name: no ledger row, plan failed" "0|failed" \
        "SELECT (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0007-differ-$name'),
                (SELECT status FROM taskslaps.plans WHERE plan_id = '0007-differ-$name')"
}
# the issue's case: an integer column without default is not numeric(12,2) default 0
differ score '{ op: add_column, table: account, name: score, type: "numeric(12,2)", default: 0 }' \
    "column account.score differs: type numeric(12,2) in the step, integer in the database, default 0 in the step, none in the database"
assert_sql "score is still an integer without default" "integer|" \
    "SELECT format_type(atttypid, atttypmod), pg_get_expr(adbin, adrelid) FROM pg_attribute
       LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
      WHERE attrelid = 'account'::regclass AND attname = 'score'"
differ typmod '{ op: add_column, table: account, name: hand_money, type: "numeric(12,3)", default: 0 }' \
    "type numeric(12,3) in the step, numeric(12,2) in the database"
differ varchar '{ op: add_column, table: account, name: hand_name, type: text, nullable: false, default: x }' \
    "type text in the step, character varying(20) in the database" \
    "default 'x'::text in the step, 'x'::character varying in the database"
differ nullable '{ op: add_column, table: account, name: hand_name, type: "varchar(20)", default: x }' \
    "nullable in the step, NOT NULL in the database"
differ default '{ op: add_column, table: account, name: hand_money, type: "numeric(12,2)", default: 1 }' \
    "default 1 in the step, 0 in the database"
differ nodefault '{ op: add_column, table: account, name: hand_money, type: "numeric(12,2)" }' \
    "default none in the step, 0 in the database"
differ table '{ op: create_table, table: hand_table2, columns: [{ name: id, type: bigint }, { name: note, type: text }], primary_key: [id] }' \
    "column hand_table2.id differs: type bigint in the step, integer in the database"
differ badtype '{ op: add_column, table: account, name: hand_int, type: no_such_type }' \
    "cannot be compared" "no_such_type"
# serial: the integer type, NOT NULL, and a sequence's nextval() as the default
q "CREATE TABLE ser_t (id int, hand_serial serial, plain_int int NOT NULL DEFAULT 0);" >/dev/null
plan "$W/serial/0001-serial.yaml" <<'EOF'
id: 0008-serial
title: A hand-made serial column
reason: integration test
steps:
  - { op: add_column, table: ser_t, name: hand_serial, type: serial }
EOF
run_ctl apply "$W/serial"
assert_rc "a serial column made by hand is adopted" 0 "$RC" "$ERR"
differ serial '{ op: add_column, table: ser_t, name: plain_int, type: serial }' \
    "column ser_t.plain_int differs: default nextval() of a sequence in the step (serial), 0 in the database"
# the dry run cannot create the probe (READ ONLY): it says what it did not compare
plan "$W/dry/0001-dry.yaml" <<'EOF'
id: 0009-dry
title: A dry run over a hand-made column
reason: integration test
steps:
  - { op: add_column, table: account, name: hand_int, type: bigint }
EOF
run_ctl apply --dry-run "$W/dry"
assert_contains "dry run: already_present, with what is compared only when applied" \
    "type, nullability and default are the step's (compared when applied)" "$OUT$ERR"

# A step whose prechecks fail and whose postchecks do not hold either is a failure.
plan "$W/bad/0001-missing.yaml" <<'EOF'
id: 0005-missing-table
title: add_column on a table that does not exist
reason: integration test
steps:
  - { op: add_column, table: no_such_table, name: c, type: int }
EOF
run_ctl apply "$W/bad"
assert_rc "precheck failure exits 1" 1 "$RC" "$ERR"
assert_contains "precheck failure is named" "precheck failed: taskslaps.table_exists('no_such_table')" "$ERR"
assert_sql "precheck failure: no ledger row, plan failed" "0|failed" \
    "SELECT (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0005-missing-table'),
            (SELECT status FROM taskslaps.plans WHERE plan_id = '0005-missing-table')"

env_finish
