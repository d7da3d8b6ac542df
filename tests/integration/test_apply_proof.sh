#!/usr/bin/env bash
# A backfill batch is held to its step's lock_class_max (RowExclusiveLock)
# like any other step: a trigger that locks another table harder makes the
# batch roll back with the evidence, the checkpoint and the rows unchanged.
#
#   bash tests/integration/test_apply_proof.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

###########################################################################
section "a backfill batch that locks harder than promised"
newdb proof
q "CREATE TABLE t (id bigint PRIMARY KEY, v int);
   CREATE TABLE audit (n int);
   INSERT INTO t SELECT g, NULL FROM generate_series(1, 500) g;
   CREATE FUNCTION lock_audit() RETURNS trigger LANGUAGE plpgsql AS
     \$\$ BEGIN LOCK TABLE audit IN ACCESS EXCLUSIVE MODE; RETURN NEW; END \$\$;
   CREATE TRIGGER t_lock BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION lock_audit();" >/dev/null
plan "$W/p/0001-fill.yaml" <<'EOF'
title: fill v
reason: test
steps:
  - op: backfill_sql
    sql: UPDATE t SET v = 1 WHERE v IS NULL
    limits: { rows_per_second: 0, batch_size: 100 }
EOF
run_ctl apply "$W/p"
assert_rc "apply fails" 1 "$RC" "$ERR"
assert_contains "the evidence names the lock" "AccessExclusiveLock on audit" "$ERR"
assert_contains "... and the promise" "lock_class_max is RowExclusiveLock" "$ERR"
assert_sql "no row was updated" "0" "SELECT count(*) FROM t WHERE v IS NOT NULL"
assert_sql "the checkpoint did not move" "|0" \
    "SELECT coalesce(last_key::text, ''), rows_done FROM taskslaps.backfill_progress"
assert_sql "the plan failed" "failed" "SELECT status FROM taskslaps.plans"
assert_sql "no ledger row" "0" "SELECT count(*) FROM taskslaps.step_ledger"

###########################################################################
section "the same backfill without the trigger"
q "DROP TRIGGER t_lock ON t" >/dev/null
run_ctl apply "$W/p"
assert_rc "apply succeeds" 0 "$RC" "$ERR"
assert_sql "every row updated" "500" "SELECT count(*) FROM t WHERE v = 1"
env_finish
