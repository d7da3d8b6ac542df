#!/usr/bin/env bash
# Integration test of what the executor costs in commits and round trips
# (docs/design.md, "Round trips"): a one-step plan that the database knows
# nothing of is one commit and two round trips, its state not read; the run
# reads what the database knows of its plans once; the governor's probe is
# one round trip; a backfill batch is two round trips. And the guards that
# let a round trip carry what follows a decision: a precheck that is not
# true stops the statement sent after it, and a checkpoint that moved under
# a batch stops its COMMIT.
#
# Commits: pg_stat_database.xact_commit of the plan's database once the
# runner's sessions have ended. Statements: the server log
# (log_statement = all for that database). Round trips: the client's
# sendto(2) calls under strace (each round trip is one write of its
# pipeline); that part is skipped when strace is missing.
#
#   bash tests/integration/test_apply_trips.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TS_PG_CONF="autovacuum = off"
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

have_strace=0
command -v strace >/dev/null && strace -f -o /dev/null true 2>/dev/null && have_strace=1

lines() { wc -l <"$_env_pgdir/log"; }
# since LINE: the server log's lines of the current database after line LINE
since() { tail -n +"$(($1 + 1))" "$_env_pgdir/log" | grep "@$CURDB " || true; }
count() { grep -c -- "$1" <<<"$2" || true; }

# The commits of the current database, once no session of it is left.
commits_of() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(qdb postgres "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = '$CURDB'")" = 0 ] && break
		sleep 0.05
	done
	qdb postgres "SELECT pg_catalog.pg_stat_clear_snapshot(); SELECT xact_commit FROM pg_catalog.pg_stat_database WHERE datname = '$CURDB'" | tail -n 1
}

# measure DIR: apply DIR (under strace when there is one); COMMITS, SENDS
# (sendto calls of the client, 0 without strace), LOG (its statements).
measure() {
	local c0 l0
	c0=$(commits_of)
	l0=$(lines)
	if [ "$have_strace" = 1 ]; then
		# LeakSanitizer cannot run under ptrace; the other sections check leaks
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
			strace -f -e trace=sendto -o "$W/strace" "$TASKSLAPSCTL" --db "$CONNINFO" apply "$1" \
			--quiet >"$W/.out" 2>"$W/.err"
		RC=$?
		SENDS=$(grep -c 'sendto(' "$W/strace")
	else
		"$TASKSLAPSCTL" --db "$CONNINFO" apply "$1" --quiet >"$W/.out" 2>"$W/.err"
		RC=$?
		SENDS=0
	fi
	ERR=$(cat "$W/.err")
	COMMITS=$(($(commits_of) - c0))
	LOG=$(since "$l0")
}

PROBE='pg_stat_progress_vacuum'
KNOWN='SELECT DISTINCT plan_id FROM taskslaps.step_ledger'
STATE='SELECT checksum, status FROM taskslaps.plans'

one_step() { # FILE ID TABLE
	plan "$1" <<EOF
id: $2
title: Column a on $3
reason: integration test
steps:
  - { op: add_column, table: $3, name: a, type: int }
EOF
}

###########################################################################
section "five one-step plans: a commit and two round trips each"
newdb trips
q "CREATE TABLE w (id int PRIMARY KEY); CREATE TABLE t1 (id int PRIMARY KEY);
   CREATE TABLE t2 (id int PRIMARY KEY); CREATE TABLE t3 (id int PRIMARY KEY);
   CREATE TABLE t4 (id int PRIMARY KEY); CREATE TABLE t5 (id int PRIMARY KEY)" >/dev/null
P=$W/p
one_step "$P/0000-warm.yaml" 0000-warm w
run_ctl apply "$P"
assert_rc "first apply (installs the schema) exits 0" 0 "$RC" "$ERR"
q "ALTER DATABASE trips SET log_statement = 'all'" >/dev/null
measure "$P"
assert_rc "no-op apply exits 0" 0 "$RC" "$ERR"
base_commits=$COMMITS base_sends=$SENDS
assert_eq "a no-op apply reads nothing of the plans but the applied ones" 0 \
	"$(count "$KNOWN" "$LOG")"
for i in 1 2 3 4 5; do
	one_step "$P/000$i-a.yaml" "000$i-a" "t$i"
done
measure "$P"
assert_rc "apply of five one-step plans exits 0" 0 "$RC" "$ERR"
assert_sql "all five applied, each with its completion time" "5" \
	"SELECT count(*) FROM taskslaps.plans WHERE status = 'applied' AND completed_at IS NOT NULL
	   AND plan_id LIKE '000_-a'"
probes=$(count "$PROBE" "$LOG")
printf '     five one-step plans: %s commits over a no-op apply, %s governor probe(s)\n' \
	"$((COMMITS - base_commits))" "$probes"
assert_eq "no plan's state is read one by one" 0 "$(count "$STATE" "$LOG")"
# The five steps' checks, their names lifted out as parameters, are one text
# each for the guard and the postchecks, prepared once and executed five times.
guards=$(grep -o 'execute [a-z_0-9]*: SELECT CASE WHEN (taskslaps.table_exists($1::pg_catalog.text)' <<<"$LOG" || true)
assert_eq "the guard over the prechecks ran prepared, names as parameters, five times" 5 \
	"$(grep -c 'execute taskslaps_' <<<"$guards" || true)"
assert_eq "under one prepared name" 1 "$(sort -u <<<"$guards" | grep -c . || true)"
assert_eq "the postchecks likewise" 1 \
	"$(grep -o 'execute taskslaps_[0-9]*: SELECT (taskslaps.column_exists($1::pg_catalog.text, $2::pg_catalog.text)' <<<"$LOG" | sort -u | grep -c . || true)"
assert_eq "no check sent with a name written in it" 0 "$(count "taskslaps.table_exists('t" "$LOG")"
# A step's events, those queued before it (plan.start, wave.start,
# step.start) and its three at the end, go as one INSERT ... VALUES each;
# more than three queued rows go as arrays: a queue that also holds a
# governor event (the run's first decision, or a change).
govs=$(q "SELECT count(*) FROM taskslaps.events WHERE type LIKE 'governor.%' AND plan_id LIKE '000_-a'")
ev_values=$(grep -c 'INSERT INTO taskslaps.events (target, plan_id, wave, step_sha, type, message, metrics) VALUES' <<<"$LOG" || true)
ev_arrays=$(grep -c 'INSERT INTO taskslaps.events (target, plan_id, wave, step_sha, type, message, metrics) SELECT' <<<"$LOG" || true)
printf '     events INSERTs: %s as VALUES, %s as arrays\n' "$ev_values" "$ev_arrays"
assert_eq "two events INSERTs a plan, as VALUES but where a governor event makes four rows" \
	"$((10 - govs))|$govs" "$ev_values|$ev_arrays"
assert_eq "what the database knows of the plans is read once" 1 "$(count "$KNOWN" "$LOG")"
assert_eq "every commit is accounted for: a plan's step, the run's read, each probe" \
	"$((5 + 1 + probes))" "$((COMMITS - base_commits))"
if [ "$have_strace" = 1 ]; then
	printf '     round trips over a no-op apply: %s\n' "$((SENDS - base_sends))"
	assert_eq "two round trips a plan, one for the run's read, one a probe" \
		"$((2 * 5 + 1 + probes))" "$((SENDS - base_sends))"
else
	printf '     (no strace: round trips not counted)\n'
fi

###########################################################################
section "a precheck that is not true: the statement sent after it does not run"
# The column is already there (prechecks false, postchecks hold): adopted,
# and the pipelined ADD COLUMN never reached the table.
q "CREATE TABLE pre (id int PRIMARY KEY, a int)" >/dev/null
one_step "$P/0006-pre.yaml" 0006-pre pre
l0=$(lines)
run_ctl apply "$P"
assert_rc "apply exits 0" 0 "$RC" "$ERR"
LOG=$(since "$l0")
assert_sql "the step is adopted as already present" "already_present" \
	"SELECT outcome FROM taskslaps.step_ledger WHERE plan_id = '0006-pre'"
assert_eq "the guarded prechecks raised once" 1 "$(count 'ERROR: .*a check is not true' "$LOG")"
assert_eq "the ALTER TABLE was never run" 0 "$(count 'ALTER TABLE "pre"' "$LOG")"
# A table that is gone: the step fails on its precheck, nothing else ran.
one_step "$P/0007-gone.yaml" 0007-gone no_such_table
run_ctl apply "$P"
assert_rc "apply of a plan on a missing table exits 1" 1 "$RC" "$ERR"
assert_contains "it names the precheck" "precheck failed" "$ERR"
assert_sql "no ledger row" "0" "SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0007-gone'"
rm "$P/0007-gone.yaml"

###########################################################################
section "a one-step plan that waits for a lock shows as running meanwhile"
# Its `running` status would commit with `applied`, so it is not written
# then; an attempt that does not commit writes it before the backoff.
q "CREATE TABLE busy (id int PRIMARY KEY)" >/dev/null
plan "$P/0008-busy.yaml" <<'EOF'
id: 0008-busy
title: Column a on busy
reason: integration test
waves:
  - name: expand
    limits: { max_lock_ms: 50 }
    steps:
      - { op: add_column, table: busy, name: a, type: int }
EOF
start_bg holder "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$CURDB" \
	-c "BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE; SELECT pg_sleep(60); COMMIT;"
HOLDER=$BG_PID
wait_for "SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.relation = 'busy'::regclass
            AND l.granted AND l.pid <> pg_backend_pid())" 10 ||
	fail "the holder got its lock" "$(cat "$W/holder.err")"
start_ctl_bg apply apply "$P" --lock-retries 100
APPLY=$BG_PID
wait_for "SELECT EXISTS (SELECT 1 FROM taskslaps.plans WHERE plan_id = '0008-busy' AND status = 'running')" 20
assert_rc "the plan is running while it waits for its lock" 0 "$?"
assert_sql "its step is not in the ledger yet" "0" \
	"SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0008-busy'"
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE busy%' AND pid <> pg_backend_pid()" >/dev/null
wait_bg "$HOLDER" 20
wait_bg "$APPLY" 60
assert_rc "then the apply exits 0" 0 "$BG_RC"
assert_sql "the plan is applied" "applied" "SELECT status FROM taskslaps.plans WHERE plan_id = '0008-busy'"

###########################################################################
section "a backfill batch: two round trips"
newdb bf
q "CREATE TABLE w (id int PRIMARY KEY);
   CREATE TABLE b1 (id bigint PRIMARY KEY, c int); CREATE TABLE b2 (id bigint PRIMARY KEY, c int);
   INSERT INTO b1 SELECT g, NULL FROM generate_series(1, 2000) g;
   INSERT INTO b2 SELECT g, NULL FROM generate_series(1, 2000) g; ANALYZE b1; ANALYZE b2" >/dev/null
B=$W/b
one_step "$B/0000-warm.yaml" 0000-warm w
run_ctl apply "$B"
assert_rc "first apply exits 0" 0 "$RC" "$ERR"
q "ALTER DATABASE bf SET log_statement = 'all'" >/dev/null
backfill() { # FILE ID TABLE BATCH
	plan "$1" <<EOF
id: $2
title: fill $3.c
reason: integration test
steps:
  - op: backfill_sql
    sql: UPDATE $3 SET c = id % 7
    limits: { rows_per_second: 0, batch_size: $4 }
EOF
}
backfill "$B/0001-b1.yaml" 0001-b1 b1 100 # 20 batches
measure "$B"
assert_rc "the backfill of 20 batches exits 0" 0 "$RC" "$ERR"
s20=$SENDS p20=$(count "$PROBE" "$LOG") c20=$(count 'taskslaps_batch_hi' "$LOG")
backfill "$B/0002-b2.yaml" 0002-b2 b2 200 # 10 batches
measure "$B"
assert_rc "the backfill of 10 batches exits 0" 0 "$RC" "$ERR"
s10=$SENDS p10=$(count "$PROBE" "$LOG") c10=$(count 'taskslaps_batch_hi' "$LOG")
assert_sql "every row filled" "0" \
	"SELECT (SELECT count(*) FROM b1 WHERE c IS DISTINCT FROM id % 7) + (SELECT count(*) FROM b2 WHERE c IS DISTINCT FROM id % 7)"
# the last batch finds the range's end: 21 and 11 batch statements
assert_eq "one batch statement a batch (20 and 10, and the empty tail)" "21 11" "$c20 $c10"
if [ "$have_strace" = 1 ]; then
	per=$((((s20 - p20) - (s10 - p10)) / 10))
	printf '     round trips: %s and %s (probes %s and %s): %s a batch\n' "$s20" "$s10" "$p20" "$p10" "$per"
	assert_eq "two round trips a batch" 2 "$per"
	assert_eq "... exactly" 0 "$((((s20 - p20) - (s10 - p10)) % 10))"
else
	printf '     (no strace: round trips not counted)\n'
fi

###########################################################################
section "a checkpoint that moved under a batch: rolled back, not committed"
# A trigger moves the checkpoint inside the batch's own transaction, as
# another runner's batch would have: the checkpoint's guard raises, COMMIT
# (in the same round trip) does not run, and nothing of the batch stays.
q "CREATE TABLE mv (id bigint PRIMARY KEY, c int);
   INSERT INTO mv SELECT g, NULL FROM generate_series(1, 300) g; ANALYZE mv;
   CREATE FUNCTION move_checkpoint() RETURNS trigger LANGUAGE plpgsql AS
     \$\$ BEGIN
          UPDATE taskslaps.backfill_progress SET last_key = '[\"999\"]'::jsonb;
          RETURN NEW;
        END \$\$;
   CREATE TRIGGER mv_move BEFORE UPDATE ON mv FOR EACH STATEMENT EXECUTE FUNCTION move_checkpoint();" >/dev/null
backfill "$B/0003-mv.yaml" 0003-mv mv 100
run_ctl apply "$B"
assert_rc "apply exits 1" 1 "$RC" "$ERR"
assert_contains "it says the checkpoint moved" "the checkpoint moved under this batch" "$ERR"
assert_sql "no row of the batch was kept" "0" "SELECT count(*) FROM mv WHERE c IS NOT NULL"
assert_sql "the checkpoint is where the backfill began" "none|0" \
	"SELECT coalesce(last_key::text, 'none'), rows_done FROM taskslaps.backfill_progress
	   WHERE step_sha IN (SELECT step_sha FROM taskslaps.events WHERE plan_id = '0003-mv')"
assert_sql "no ledger row" "0" "SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0003-mv'"

env_finish
