#!/usr/bin/env bash
# Hostile plans applied in chaos mode against PostgreSQL: SQL fragments that
# try to leave their place in the statement, column clauses passed off as a
# type, a default that would be frozen, and checks that try to lift the
# rails. Each is refused before anything changes, or runs under the rails.
#
#   bash tests/integration/test_apply_hostile.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

# The table's columns and constraints, one line each, to compare before and after.
schema_of() {
    q "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
       FROM pg_attribute WHERE attrelid = '$1'::regclass AND attnum > 0 AND NOT attisdropped" &&
    q "SELECT count(*) FROM pg_constraint WHERE conrelid = '$1'::regclass" &&
    q "SELECT count(*) FROM pg_index WHERE indrelid = '$1'::regclass"
}

###########################################################################
section "a carriage return ends a -- comment: the check cannot add a DROP COLUMN"
newdb cr
q "CREATE TABLE employee (id int PRIMARY KEY, score int, c3 text)" >/dev/null
before=$(schema_of employee)
mkdir -p "$W/cr"
printf '%s\n' 'title: score not negative' 'reason: test' 'steps:' \
    '  - op: add_check_not_valid' '    table: employee' '    name: employee_score_nonneg' \
    '    check: "score >= 0 --\r) NOT VALID, DROP COLUMN c3, ADD CONSTRAINT employee_ok CHECK (true"' \
    >"$W/cr/0001-check.yaml"
run_ctl apply "$W/cr" --mode chaos
assert_rc "apply refuses the plan as invalid" 2 "$RC" "$ERR"
assert_contains "PostgreSQL's parser says why" 'check: syntax error at or near ")"' "$ERR$OUT"
assert_eq "the table is as it was (c3 still there, no constraint)" "$before" "$(schema_of employee)"
assert_sql "nothing in the ledger" "0" "SELECT count(*) FROM taskslaps.step_ledger"

###########################################################################
section "a carriage return in a backfill's WHERE cannot widen the batches"
newdb bf
q "CREATE TABLE bf (id bigint PRIMARY KEY, v int);
   INSERT INTO bf SELECT g, g FROM generate_series(1, 5000) g" >/dev/null
mkdir -p "$W/bf"
printf '%s\n' 'title: bump' 'reason: test' 'steps:' '  - op: backfill_sql' \
    '    sql: "UPDATE bf SET v = v + 1 WHERE v >= 0 --\r) OR (true"' \
    '    limits: { batch_size: 1000, rows_per_second: 0 }' >"$W/bf/0001-bump.yaml"
run_ctl apply "$W/bf" --mode chaos
assert_rc "apply refuses the plan as invalid" 2 "$RC" "$ERR"
assert_contains "at the WHERE's stray parenthesis" 'syntax error at or near ")"' "$ERR$OUT"
assert_sql "no row was updated" "12502500" "SELECT sum(v) FROM bf"

###########################################################################
section "a type is a type: column clauses are refused"
newdb types
q "CREATE TABLE employee (id int PRIMARY KEY)" >/dev/null
before=$(schema_of employee)
n=0
for t in "int UNIQUE" "serial4 primary key" "timestamptz DEFAULT current_timestamp" \
    "bigint GENERATED ALWAYS AS IDENTITY"; do
    n=$((n + 1))
    rm -rf "$W/types"
    plan "$W/types/000$n-col.yaml" <<EOF
title: add a column
reason: test
steps:
  - op: add_column
    table: employee
    name: c$n
    type: $t
EOF
    run_ctl apply "$W/types" --mode chaos
    assert_rc "'$t' is refused" 2 "$RC" "$ERR"
    assert_contains "'$t': the type is named as the fault" "type: " "$ERR$OUT"
done
assert_eq "the table is as it was" "$before" "$(schema_of employee)"

###########################################################################
section "default: now() would be frozen; default_sql: now() is evaluated"
newdb defaults
q "CREATE TABLE employee (id int PRIMARY KEY)" >/dev/null
plan "$W/def1/0001-col.yaml" <<'EOF'
title: hired at
reason: test
steps:
  - op: add_column
    table: employee
    name: hired_at
    type: timestamptz
    default: "now()"
EOF
run_ctl apply "$W/def1" --mode chaos
assert_rc "a string that looks evaluated is refused" 2 "$RC" "$ERR"
assert_contains "the fix is named" "default_sql" "$ERR$OUT"
assert_sql "no column" "0" \
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 'employee'::regclass AND attname = 'hired_at'"
plan "$W/def2/0001-col.yaml" <<'EOF'
title: hired at
reason: test
steps:
  - op: add_column
    table: employee
    name: hired_at
    type: timestamptz
    default_sql: now()
EOF
run_ctl apply "$W/def2" --mode chaos
assert_rc "default_sql: now() applies in chaos mode (stable: no rewrite)" 0 "$RC" "$ERR"
assert_sql "the default is the expression, not a frozen timestamp" "now()" \
    "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'employee'::regclass"

###########################################################################
section "a check cannot lift the rails"
newdb rails
q "CREATE TABLE employee (id int PRIMARY KEY);
   CREATE FUNCTION lift() RETURNS boolean LANGUAGE sql AS
     \$\$ SELECT pg_catalog.set_config('lock_timeout', '0', false) IS NOT NULL \$\$" >/dev/null
plan "$W/r1/0001-col.yaml" <<'EOF'
title: lift
reason: test
steps:
  - op: add_column
    table: employee
    name: a
    type: int
    prechecks: ["(SELECT pg_catalog.set_config('lock_timeout','0',false)) IS NOT NULL"]
EOF
run_ctl apply "$W/r1" --mode chaos
assert_rc "a check that calls set_config is refused at plan time" 2 "$RC" "$ERR"
assert_contains "... naming the function" "volatile function set_config()" "$ERR$OUT"

# A function of the database's own is not known offline: it runs, but inside a
# savepoint that is rolled back, and the timeouts are set again just before
# the statement. Held behind a lock, the step must give up after max_lock_ms.
start_bg holder "$PSQL" -X -q -d "$CONNINFO" -c \
    "BEGIN; LOCK TABLE employee IN ACCESS SHARE MODE; SELECT pg_sleep(60); COMMIT"
wait_for "SELECT count(*) > 0 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
          WHERE c.relname = 'employee' AND l.mode = 'AccessShareLock' AND l.pid <> pg_backend_pid()" 10 ||
    fail "the lock holder did not take its lock"
plan "$W/r2/0001-col.yaml" <<'EOF'
title: lift through a function
reason: test
steps:
  - op: add_column
    table: employee
    name: b
    type: int
    prechecks: ["lift()"]
    limits: { max_lock_ms: 50 }
EOF
run_ctl apply "$W/r2" --mode chaos --lock-retries 0
assert_rc "the step fails behind the lock instead of waiting" 1 "$RC" "$ERR"
assert_contains "... on its lock timeout" "lock not granted within 50 ms" "$ERR$OUT"
assert_sql "no column b" "0" \
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 'employee'::regclass AND attname = 'b'"
assert_sql "the holder still waits (the step did not outlast it)" "1" \
    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
   WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null

###########################################################################
# The runner's own statements use types and operators by plain name
# ($1::text[], =): a login whose search_path lists a schema before
# pg_catalog would let whoever creates objects there stand in for them (a
# domain named text with a CHECK that calls any function, as the runner).
# Such a session is refused before anything is read or written.
section "a search_path with a schema before pg_catalog is refused"
newdb sp
q "CREATE TABLE t (id int PRIMARY KEY)" >/dev/null
plan "$W/sp/0001-sp.yaml" <<'EOF'
id: 0001-sp
title: A column
reason: integration test
steps:
  - { op: add_column, table: t, name: c, type: int }
EOF
q "ALTER DATABASE sp SET search_path = public, pg_catalog" >/dev/null
run_ctl apply "$W/sp"
assert_rc "public before pg_catalog: apply exits 1" 1 "$RC" "$ERR"
assert_contains "... and says why" 'search_path puts schema "public" before pg_catalog' "$ERR"
assert_contains "... and what to do" "put pg_catalog first in the login's search_path" "$ERR"
assert_sql "... nothing was installed or applied" "f|f" \
    "SELECT to_regnamespace('taskslaps') IS NOT NULL,
            EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'c')"
q "ALTER DATABASE sp SET search_path = pg_catalog, public" >/dev/null
run_ctl apply "$W/sp"
assert_rc "pg_catalog first: apply exits 0" 0 "$RC" "$ERR"
q "ALTER DATABASE sp SET search_path = app, \"\$user\"" >/dev/null
plan "$W/sp/0002-sp.yaml" <<'EOF'
id: 0002-sp
title: Another column
reason: integration test
steps:
  - { op: add_column, table: public.t, name: d, type: int }
EOF
run_ctl apply "$W/sp"
assert_rc "pg_catalog left out (searched first): apply exits 0" 0 "$RC" "$ERR"
assert_sql "both applied" "2" "SELECT count(*) FROM taskslaps.plans WHERE status = 'applied'"
env_finish
