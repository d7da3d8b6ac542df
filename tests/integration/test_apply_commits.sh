#!/usr/bin/env bash
# Integration test of what a plan costs in commits: a one-step plan is one
# writing transaction (its `running` status, its events, the statement, the
# ledger row and its `applied` status commit together), a plan of n
# transactional steps n; a failed step leaves nothing of itself applied and
# its failure recorded after the rollback.
#
# Writing transactions are counted as transaction ids handed out (read from
# another database: pg_snapshot_xmax of a snapshot, which takes none), all
# commits as pg_stat_database.xact_commit of the plan's database once the
# runner's sessions have ended (each flushes its counters as it exits).
# Autovacuum is off: an ANALYZE would take transaction ids of its own.
#
#   bash tests/integration/test_apply_commits.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TS_PG_CONF="autovacuum = off"
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

# The next transaction id, read from the postgres database (takes none).
next_xid() {
	qdb postgres "SELECT pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())"
}

# The commits of database $CURDB, once no session of it is left.
commits_of() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(qdb postgres "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = '$CURDB'")" = 0 ] && break
		sleep 0.05
	done
	qdb postgres "SELECT pg_catalog.pg_stat_clear_snapshot(); SELECT xact_commit FROM pg_catalog.pg_stat_database WHERE datname = '$CURDB'" | tail -n 1
}

# measure DIR: apply DIR; XIDS and COMMITS get what the run cost.
measure() {
	local x0 c0
	c0=$(commits_of)
	x0=$(next_xid)
	run_ctl apply "$1" --quiet
	XIDS=$(($(next_xid) - x0))
	COMMITS=$(($(commits_of) - c0))
}

###########################################################################
section "one-step plan: one writing transaction"
newdb commits
q "CREATE TABLE t1 (id int PRIMARY KEY); CREATE TABLE t2 (id int PRIMARY KEY);
   CREATE TABLE t3 (id int PRIMARY KEY); CREATE TABLE t4 (id int PRIMARY KEY)" >/dev/null
P=$W/p
plan "$P/0001-warm.yaml" <<'EOF'
id: 0001-warm
title: The first plan (installs the schema)
reason: integration test
steps:
  - { op: add_column, table: t1, name: a, type: int }
EOF
run_ctl apply "$P"
assert_rc "first apply exits 0" 0 "$RC" "$ERR"
measure "$P"
assert_rc "no-op apply exits 0" 0 "$RC" "$ERR"
assert_eq "a no-op apply writes nothing" 0 "$XIDS"
base=$COMMITS
plan "$P/0002-one.yaml" <<'EOF'
id: 0002-one
title: One step
reason: integration test
steps:
  - { op: add_column, table: t2, name: a, type: int }
EOF
measure "$P"
assert_rc "apply of a one-step plan exits 0" 0 "$RC" "$ERR"
printf '     one-step plan: %s writing transaction(s), %s commits (no-op apply: %s)\n' \
	"$XIDS" "$((COMMITS - base))" "$base"
assert_eq "a one-step plan is one writing transaction" 1 "$XIDS"
# the run's one read of the plans the database knows (the first plan to run
# needs it), the governor's probe (one round trip), the step
assert_eq "a one-step plan costs three commits in all" 3 "$((COMMITS - base))"
assert_sql "the plan is applied, the step in the ledger" "applied|1" \
	"SELECT status, (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0002-one')
	   FROM taskslaps.plans WHERE plan_id = '0002-one'"
assert_eq "its events, in order" "plan.start
wave.start
governor.healthy
step.start
step.ok
wave.ok
plan.ok" "$(events_of 0002-one)"
assert_sql "the events and the ledger row have the step's transaction" "1" \
	"SELECT count(DISTINCT xmin::text) FROM (SELECT xmin FROM taskslaps.events WHERE plan_id = '0002-one'
	   UNION ALL SELECT xmin FROM taskslaps.step_ledger WHERE plan_id = '0002-one'
	   UNION ALL SELECT xmin FROM taskslaps.plans WHERE plan_id = '0002-one') x"

###########################################################################
section "plan of three transactional steps: three writing transactions"
plan "$P/0003-three.yaml" <<'EOF'
id: 0003-three
title: Three steps
reason: integration test
steps:
  - { op: add_column, table: t3, name: a, type: int }
  - { op: add_column, table: t3, name: b, type: int }
  - { op: add_column, table: t3, name: c, type: int }
EOF
measure "$P"
assert_rc "apply of a three-step plan exits 0" 0 "$RC" "$ERR"
printf '     three-step plan: %s writing transaction(s)\n' "$XIDS"
assert_eq "three steps, three writing transactions" 3 "$XIDS"
assert_eq "its events, in order" "plan.start
wave.start
governor.healthy
step.start
step.ok
step.start
step.ok
step.start
step.ok
wave.ok
plan.ok" "$(events_of 0003-three)"

###########################################################################
section "a failed step: rolled back, its failure recorded"
q "CREATE TABLE f (id int PRIMARY KEY)" >/dev/null
F=$W/f
plan "$F/0001-fails.yaml" <<'EOF'
id: 0001-fails
title: A step that fails
reason: integration test
steps:
  - { op: sql, sql: "INSERT INTO f VALUES (1), (1)", lock_class_max: RowExclusiveLock }
EOF
measure "$F"
assert_rc "apply of the failing plan exits 1" 1 "$RC" "$ERR"
assert_contains "stderr says why" "duplicate key" "$ERR"
assert_sql "nothing of the step applied" "0" "SELECT count(*) FROM f"
assert_sql "no ledger row" "0" "SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0001-fails'"
assert_sql "the plan is failed" "failed" "SELECT status FROM taskslaps.plans WHERE plan_id = '0001-fails'"
assert_eq "its events, in order, after the rollback" "plan.start
wave.start
governor.healthy
step.start
step.error
plan.failed" "$(events_of 0001-fails)"
assert_sql "the failure names the statement's error" "1" \
	"SELECT count(*) FROM taskslaps.events WHERE plan_id = '0001-fails' AND type = 'plan.failed'
	   AND message LIKE '%duplicate key%' AND message LIKE '%23505%'"

plan "$F/0002-half.yaml" <<'EOF'
id: 0002-half
title: The second step fails
reason: integration test
steps:
  - { op: add_column, table: t4, name: a, type: int }
  - { op: sql, sql: "INSERT INTO t4 (id) VALUES (1), (1)", lock_class_max: RowExclusiveLock }
EOF
rm "$F/0001-fails.yaml"
run_ctl apply "$F"
assert_rc "apply of the half-failing plan exits 1" 1 "$RC" "$ERR"
assert_sql "the first step applied and in the ledger, the second neither" "1|1|0" \
	"SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = 't4'::regclass AND attname = 'a'),
	        (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0002-half'),
	        (SELECT count(*) FROM t4)"
assert_sql "the plan is failed" "failed" "SELECT status FROM taskslaps.plans WHERE plan_id = '0002-half'"
assert_eq "its events, in order" "plan.start
wave.start
governor.healthy
step.start
step.ok
wave.ok
wave.start
step.start
step.error
plan.failed" "$(events_of 0002-half)"
# Fixed: the failed step runs again, alone.
sed -i 's/VALUES (1), (1)/VALUES (1), (2)/' "$F/0002-half.yaml"
run_ctl apply "$F"
assert_rc "fixed, the apply exits 0" 0 "$RC" "$ERR"
assert_sql "both steps in the ledger, the rows there" "applied|2|2" \
	"SELECT status, (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0002-half'),
	        (SELECT count(*) FROM t4) FROM taskslaps.plans WHERE plan_id = '0002-half'"

###########################################################################
section "a COMMIT that fails: what went with it is recorded after the rollback"
q "CREATE TABLE par (id int PRIMARY KEY);
   CREATE TABLE ch (pid int REFERENCES par DEFERRABLE INITIALLY DEFERRED)" >/dev/null
D=$W/d
plan "$D/0001-deferred.yaml" <<'EOF'
id: 0001-deferred
title: A step whose COMMIT fails
reason: integration test
steps:
  - { op: sql, sql: "INSERT INTO ch VALUES (42)", lock_class_max: RowExclusiveLock }
EOF
run_ctl apply "$D"
assert_rc "apply exits 1" 1 "$RC" "$ERR"
assert_contains "stderr says why" "foreign key" "$ERR"
assert_sql "nothing of the step applied, no ledger row" "0|0" \
	"SELECT (SELECT count(*) FROM ch),
	        (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0001-deferred')"
assert_sql "the plan is failed" "failed" "SELECT status FROM taskslaps.plans WHERE plan_id = '0001-deferred'"
assert_eq "its events, in order: no step.ok, no plan.ok" "plan.start
wave.start
governor.healthy
step.start
step.error
plan.failed" "$(events_of 0001-deferred)"

env_finish
