#!/usr/bin/env bash
# Integration test of the operator's side of the executor: drift and
# accept-drift, fix-forward of a failed step, abort (SIGINT) and resume of a
# throttled backfill, `events --follow`, and what a taskslaps_reader login
# may and may not do.
#
#   bash tests/integration/test_apply_misc.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

###########################################################################
section "drift"
newdb drift
q "CREATE TABLE t (id int PRIMARY KEY, v int);
   INSERT INTO t SELECT g, g FROM generate_series(1, 100) g;" >/dev/null
P=$W/drift
plan "$P/0001-cols.yaml" <<'EOF'
id: 0001-cols
title: Two columns
reason: integration test
steps:
  - { op: add_column, table: t, name: a, type: int }
  - { op: add_column, table: t, name: b, type: int }
EOF
plan "$P/0003-next.yaml" <<'EOF'
id: 0003-next
title: The plan after
reason: integration test
steps:
  - { op: add_column, table: t, name: after_drift, type: int }
EOF
run_ctl apply "$P/0001-cols.yaml"
assert_rc "first apply exits 0" 0 "$RC" "$ERR"
checksum1=$(q "SELECT checksum FROM taskslaps.plans WHERE plan_id = '0001-cols'")
ledger1=$(q "SELECT count(*) FROM taskslaps.step_ledger")
# Edit an applied step: b becomes c.
sed -i 's/name: b, type: int/name: c, type: bigint/' "$P/0001-cols.yaml"
run_ctl apply "$P"
assert_rc "apply of the edited plan exits 1" 1 "$RC" "$ERR"
assert_contains "stderr says drift" "0001-cols drift" "$ERR"
assert_contains "stderr says how to resolve it" "accept-drift 0001-cols" "$ERR"
assert_contains "stderr names the edited step" "add_column expand #1" "$ERR"
assert_sql "plans.status drift, old checksum kept" "drift|$checksum1" \
    "SELECT status, checksum FROM taskslaps.plans WHERE plan_id = '0001-cols'"
assert_sql "a plan.drift event" "1" "SELECT count(*) FROM taskslaps.events WHERE plan_id = '0001-cols' AND type = 'plan.drift'"
assert_sql "nothing of the edited plan ran" "0|$ledger1" \
    "SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'c'),
            (SELECT count(*) FROM taskslaps.step_ledger)"
assert_sql "the plan after it waits" "0|0" \
    "SELECT (SELECT count(*) FROM taskslaps.plans WHERE plan_id = '0003-next'),
            (SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'after_drift')"
run_ctl apply "$P"
assert_rc "apply again: still drift (exit 1)" 1 "$RC" "$ERR"
assert_sql "still one plan.drift event (not repeated)" "1" \
    "SELECT count(*) FROM taskslaps.events WHERE plan_id = '0001-cols' AND type = 'plan.drift'"
run_ctl accept-drift 0001-cols "$P/0001-cols.yaml"
assert_rc "accept-drift PLAN FILE exits 0" 0 "$RC" "$ERR"
assert_contains "accept-drift says nothing ran" "nothing was run" "$OUT"
checksum2=$(q "SELECT checksum FROM taskslaps.plans WHERE plan_id = '0001-cols'")
assert_ne "accept-drift recorded a new checksum" "$checksum1" "$checksum2"
assert_sql "accept-drift: status applied" "applied" "SELECT status FROM taskslaps.plans WHERE plan_id = '0001-cols'"
run_ctl apply "$P"
assert_rc "apply after accept-drift exits 0" 0 "$RC" "$ERR"
assert_sql "the edited step did not run" "0" \
    "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'c'"
assert_sql "no step.start for 0001-cols after the accept" "0" \
    "SELECT count(*) FROM taskslaps.events WHERE plan_id = '0001-cols' AND type = 'step.start'
        AND id > (SELECT max(id) FROM taskslaps.events WHERE type = 'plan.drift')"
assert_sql "the plan after it ran" "1|applied" \
    "SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'after_drift'),
            (SELECT status FROM taskslaps.plans WHERE plan_id = '0003-next')"
run_ctl accept-drift no-such-plan "$P"
assert_rc "accept-drift of an unknown plan exits 2" 2 "$RC" "$ERR"

# Restoring the file instead: drift of a plan whose file comes back is over.
cp "$P/0003-next.yaml" "$W/0003-next.orig"
sed -i 's/name: after_drift/name: after_drift2/' "$P/0003-next.yaml"
run_ctl apply "$P"
assert_rc "second drift exits 1" 1 "$RC" "$ERR"
cp "$W/0003-next.orig" "$P/0003-next.yaml"
run_ctl apply "$P"
assert_rc "file restored: apply exits 0" 0 "$RC" "$ERR"
assert_sql "file restored: status applied again" "applied" "SELECT status FROM taskslaps.plans WHERE plan_id = '0003-next'"

# An edit that adds steps, accepted: the checksum is recorded, and the added
# steps, which never ran, stay pending and run on the next apply; the plan is
# not applied before they have. An edited step beside them does not run.
plan "$P/0004-grow.yaml" <<'EOF'
id: 0004-grow
title: One column, then more
reason: integration test
steps:
  - { op: add_column, table: t, name: g1, type: int }
EOF
run_ctl apply "$P"
assert_rc "grow: first apply exits 0" 0 "$RC" "$ERR"
cat >"$P/0004-grow.yaml" <<'EOF'
id: 0004-grow
title: One column, then more
reason: integration test
steps:
  - { op: add_column, table: t, name: g1_edited, type: int }
  - { op: add_column, table: t, name: g2, type: int }
  - { op: add_column, table: t, name: g3, type: int }
EOF
run_ctl apply "$P"
assert_rc "grow: the edit is drift (exit 1)" 1 "$RC" "$ERR"
run_ctl accept-drift 0004-grow "$P/0004-grow.yaml"
assert_rc "grow: accept-drift exits 0" 0 "$RC" "$ERR"
assert_contains "grow: accept-drift says two steps run next" "2 steps that never ran are pending" "$OUT"
assert_sql "grow: the plan is pending with the new checksum, not applied" "pending|t" \
    "SELECT status, completed_at IS NULL FROM taskslaps.plans WHERE plan_id = '0004-grow'"
assert_sql "grow: the edited step is recorded as accepted" "accepted|0" \
    "SELECT outcome, step_index FROM taskslaps.step_ledger WHERE plan_id = '0004-grow' AND outcome <> 'applied'"
run_ctl apply "$P"
assert_rc "grow: apply after accept-drift exits 0" 0 "$RC" "$ERR"
assert_sql "grow: the added steps ran, the edited one did not" "0|1|1" \
    "SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'g1_edited'),
            (SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'g2'),
            (SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'g3')"
assert_sql "grow: now applied, four ledger rows" "applied|4" \
    "SELECT status, (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0004-grow')
       FROM taskslaps.plans WHERE plan_id = '0004-grow'"

###########################################################################
# Two targets on one database with a plan of the same id and content: the
# ledger is kept per target, so neither skips the other's steps.
section "two targets share a plan"
newdb twotargets
P=$W/twotargets
plan "$P/0001-shared.yaml" <<'EOF'
id: 0001-shared
title: A table both targets want
reason: integration test
steps:
  - op: create_table
    table: shared
    columns: [{ name: id, type: int, nullable: false }]
    primary_key: [id]
EOF
"$TASKSLAPSCTL" --db "$CONNINFO" --target alpha apply "$P" >"$W/.out" 2>"$W/.err"
assert_rc "target alpha applies the plan" 0 "$?" "$(cat "$W/.err")"
"$TASKSLAPSCTL" --db "$CONNINFO" --target beta apply "$P" >"$W/.out" 2>"$W/.err"
assert_rc "target beta applies the same plan" 0 "$?" "$(cat "$W/.err")"
assert_sql "each target has its own ledger row for the step" "alpha|applied
beta|already_present" \
    "SELECT target, outcome FROM taskslaps.step_ledger WHERE plan_id = '0001-shared' ORDER BY target"
assert_sql "beta did not skip alpha's step" "0" \
    "SELECT count(*) FROM taskslaps.events WHERE target = 'beta' AND type = 'step.skipped'"

###########################################################################
# A re-run with nothing to do reads what is applied in one query, not three
# queries a plan: counted in the server's log of this database's statements.
section "no-op re-run: one query for the applied plans"
newdb noop
q "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); CREATE TABLE c (id int PRIMARY KEY);" >/dev/null
for t in a b c; do
    plan "$W/noop/0001-$t.yaml" <<EOF
id: 0001-$t
title: Column x on $t
reason: integration test
steps:
  - { op: add_column, table: $t, name: x, type: int }
EOF
done
run_ctl apply "$W/noop"
assert_rc "no-op: first run applies" 0 "$RC" "$ERR"
q "ALTER DATABASE noop SET log_statement = 'all'" >/dev/null
log_lines=$(wc -l <"$_env_pgdir/log")
run_ctl apply "$W/noop"
assert_rc "no-op: second run exit 0" 0 "$RC" "$ERR"
assert_contains "no-op: second run says all applied" "3 of 3 plans applied or already applied" "$OUT"
noop_log=$(tail -n +"$((log_lines + 1))" "$_env_pgdir/log" | grep '@noop ')
assert_eq "no-op: the applied plans read in one statement" 1 \
    "$(grep -c "FROM taskslaps.plans WHERE target = \$1 AND status = 'applied'" <<<"$noop_log")"
assert_eq "no-op: no plan's state read one by one" 0 "$(grep -c 'taskslaps.step_ledger' <<<"$noop_log")"
q "ALTER DATABASE noop RESET log_statement" >/dev/null
# An applied plan edited since: the prefetched checksum differs, so it is read and found in drift.
sed -i 's/name: x, type: int/name: x, type: bigint/' "$W/noop/0001-b.yaml"
run_ctl apply "$W/noop"
assert_rc "no-op: an edited applied plan is still drift" 1 "$RC" "$ERR"
assert_contains "no-op: ... named" "plan 0001-b was edited after step" "$ERR"

###########################################################################
section "fix-forward of a failed step"
newdb fix
q "CREATE TABLE t (id int PRIMARY KEY, v int);" >/dev/null
plan "$W/fix/0001-fix.yaml" <<'EOF'
id: 0001-fix
title: The second step is wrong at first
reason: integration test
steps:
  - { op: add_column, table: t, name: a, type: int }
  - { op: sql, sql: "ALTER TABLE t ADD COLUMN b int REFERENCES no_such_table (id)" }
EOF
plan "$W/fix/0002-later.yaml" <<'EOF'
id: 0002-later
title: Waits for the fix
reason: integration test
steps:
  - { op: add_column, table: t, name: later, type: int }
EOF
run_ctl apply "$W/fix"
assert_rc "failing plan: exit 1" 1 "$RC" "$ERR"
assert_contains "failing plan: SQLSTATE 42P01" "SQLSTATE 42P01" "$ERR"
assert_sql "failing plan: failed, step 1 in the ledger, later plan not run" "failed|1|0" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0001-fix'),
            (SELECT count(*) FROM taskslaps.step_ledger),
            (SELECT count(*) FROM taskslaps.plans WHERE plan_id = '0002-later')"
sed -i 's/REFERENCES no_such_table (id)/CHECK (b > 0)/' "$W/fix/0001-fix.yaml"
run_ctl apply "$W/fix"
assert_rc "fixed plan: exit 0" 0 "$RC" "$ERR"
assert_sql "fixed plan: applied, both steps in the ledger, step 1 skipped" "applied|2|1" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0001-fix'),
            (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0001-fix'),
            (SELECT count(*) FROM taskslaps.events WHERE plan_id = '0001-fix' AND type = 'step.skipped')"
assert_sql "fixed plan: the new statement ran" "1" \
    "SELECT count(*) FROM pg_constraint WHERE conrelid = 't'::regclass AND contype = 'c'"
assert_sql "the later plan ran too" "applied" "SELECT status FROM taskslaps.plans WHERE plan_id = '0002-later'"

###########################################################################
# taskslaps prepares its own statements once per connection; a step's SQL
# that deallocates them must not break that step or the ones after it.
section "a step that runs DEALLOCATE ALL"
newdb dealloc
q "CREATE TABLE t (id int PRIMARY KEY);" >/dev/null
plan "$W/dealloc/0001-dealloc.yaml" <<'EOF'
id: 0001-dealloc
title: Deallocates every prepared statement of the session
reason: integration test
steps:
  - { op: add_column, table: t, name: a, type: int }
  - { op: sql, sql: "DEALLOCATE ALL" }
  - { op: add_column, table: t, name: b, type: int }
EOF
plan "$W/dealloc/0002-after.yaml" <<'EOF'
id: 0002-after
title: Runs after it
reason: integration test
steps:
  - { op: add_column, table: t, name: c, type: int }
EOF
run_ctl apply "$W/dealloc"
assert_rc "DEALLOCATE ALL in a step: exit 0" 0 "$RC" "$ERR"
assert_sql "DEALLOCATE ALL in a step: every step in the ledger, both plans applied" "4|2" \
    "SELECT (SELECT count(*) FROM taskslaps.step_ledger),
            (SELECT count(*) FROM taskslaps.plans WHERE status = 'applied')"
assert_sql "DEALLOCATE ALL in a step: every event recorded (the plans' start, ok; 4 steps' start, ok)" "2|2|4|4" \
    "SELECT count(*) FILTER (WHERE type = 'plan.start'), count(*) FILTER (WHERE type = 'plan.ok'),
            count(*) FILTER (WHERE type = 'step.start'), count(*) FILTER (WHERE type = 'step.ok')
       FROM taskslaps.events"

# The same when the step then fails: its failure is recorded all the same
# (status failed, step.error and plan.failed), whether a postcheck fails or
# the SQL itself raises after deallocating.
plan "$W/dealloc2/0001-dealloc-fails.yaml" <<'EOF'
id: 0003-dealloc-fails
title: Deallocates, then its postcheck fails
reason: integration test
steps:
  - { op: sql, sql: "DEALLOCATE ALL", lock_class_max: AccessShareLock, postchecks: ["false"] }
EOF
run_ctl apply "$W/dealloc2"
assert_rc "DEALLOCATE ALL, then a failing postcheck: exit 1" 1 "$RC" "$ERR"
assert_sql "... the plan is failed and its failure recorded" "failed|1|1" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0003-dealloc-fails'),
            (SELECT count(*) FROM taskslaps.events WHERE plan_id = '0003-dealloc-fails' AND type = 'step.error'),
            (SELECT count(*) FROM taskslaps.events WHERE plan_id = '0003-dealloc-fails' AND type = 'plan.failed')"
plan "$W/dealloc3/0001-dealloc-raises.yaml" <<'EOF'
id: 0004-dealloc-raises
title: Deallocates, then raises
reason: integration test
steps:
  - op: sql
    sql: "DO $$BEGIN EXECUTE 'DEALLOCATE ALL'; RAISE EXCEPTION 'boom'; END$$"
    lock_class_max: AccessShareLock
EOF
run_ctl apply "$W/dealloc3"
assert_rc "DEALLOCATE ALL, then an error: exit 1" 1 "$RC" "$ERR"
assert_contains "... with the error" "boom" "$ERR"
assert_sql "... the plan is failed and its failure recorded" "failed|1|1" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0004-dealloc-raises'),
            (SELECT count(*) FROM taskslaps.events WHERE plan_id = '0004-dealloc-raises' AND type = 'step.error'),
            (SELECT count(*) FROM taskslaps.events WHERE plan_id = '0004-dealloc-raises' AND type = 'plan.failed')"

###########################################################################
# Events are written several rows to a statement (up to three as VALUES,
# more as arrays unnested in order): quotes, backslashes, braces, commas and
# the word NULL survive as they are, and the ids follow the order in which
# they happened.
section "events: exact text and order"
plan "$W/evtext/0001-evtext.yaml" <<'EOF'
id: 0001-evtext
title: 'Quotes " and \ backslashes, {braces}, commas, NULL'
reason: integration test
steps:
  - { op: sql, sql: "UPDATE t SET a = a WHERE 'x\"y\\z{,}' <> 'NULL'", lock_class_max: RowExclusiveLock }
EOF
run_ctl apply "$W/evtext"
assert_rc "events text: exit 0" 0 "$RC" "$ERR"
assert_sql "events text: plan.start message kept exactly" \
    '0001-evtext: Quotes " and \ backslashes, {braces}, commas, NULL (H2, 1 steps)' \
    "SELECT message FROM taskslaps.events WHERE plan_id = '0001-evtext' AND type = 'plan.start'"
assert_sql "events text: step.start message kept exactly" \
    "H2 sql: UPDATE t SET a = a WHERE 'x\"y\\z{,}' <> 'NULL'" \
    "SELECT message FROM taskslaps.events WHERE plan_id = '0001-evtext' AND type = 'step.start'"
assert_sql "events: in the order they happened, no NULL where a value was given" \
    "plan.start,wave.start,step.start,step.ok,wave.ok,plan.ok|0" \
    "SELECT string_agg(type, ',' ORDER BY id) FILTER (WHERE type NOT LIKE 'governor.%'),
            count(*) FILTER (WHERE target IS NULL OR plan_id IS NULL OR message IS NULL)
       FROM taskslaps.events WHERE plan_id = '0001-evtext'"
# Up to three events go as one INSERT ... VALUES, more as arrays: a plan
# resumed after its third step failed queues six before the step's commit
# (plan.start, wave.start, two step.skipped, the governor's first decision,
# step.start), carried into its transaction.
plan "$W/evmany/0002-evmany.yaml" <<'EOF'
id: 0002-evmany
title: 'Resumed: quotes " and \ backslashes, {braces}, commas, NULL'
reason: integration test
steps:
  - { op: add_column, table: t, name: evm1, type: int }
  - { op: add_column, table: t, name: evm2, type: int }
  - { op: add_column, table: evmany_later, name: evm3, type: int }
EOF
run_ctl apply "$W/evmany"
assert_rc "events, many at once: the first apply fails on its third step" 1 "$RC" "$ERR"
q "CREATE TABLE evmany_later (id int PRIMARY KEY)" >/dev/null
run_ctl apply "$W/evmany"
assert_rc "events, many at once: the resumed apply exits 0" 0 "$RC" "$ERR"
assert_sql "events, many at once: in the order they happened, each once" \
    "plan.start,wave.start,step.start,step.ok,step.start,step.ok,step.start,step.error,plan.failed,plan.start,wave.start,step.skipped,step.skipped,step.start,step.ok,wave.ok,plan.ok|0" \
    "SELECT string_agg(type, ',' ORDER BY id) FILTER (WHERE type NOT LIKE 'governor.%'),
            count(*) FILTER (WHERE target IS NULL OR plan_id IS NULL OR message IS NULL)
       FROM taskslaps.events WHERE plan_id = '0002-evmany'"
assert_sql "events, many at once: the text kept exactly" \
    '0002-evmany: Resumed: quotes " and \ backslashes, {braces}, commas, NULL (H1, 3 steps)|2|2' \
    "SELECT (SELECT message FROM taskslaps.events WHERE plan_id = '0002-evmany' AND type = 'plan.start'
              ORDER BY id DESC LIMIT 1),
            (SELECT count(*) FROM taskslaps.events WHERE plan_id = '0002-evmany' AND type = 'step.skipped'
                AND message = 'add_column: already in the ledger' AND wave = 'expand' AND step_sha IS NOT NULL),
            (SELECT count(DISTINCT step_sha) FROM taskslaps.events WHERE plan_id = '0002-evmany' AND type = 'step.skipped')"

###########################################################################
# The install is skipped when the schema's comment says it is this binary's;
# install-schema always runs it, which repairs a helper edited by hand.
section "schema install: skipped when current, forced by install-schema"
assert_match "the schema carries its version and digest" "^taskslaps schema [0-9]+ sha256:[0-9a-f]{64}$" \
    "$(q "SELECT obj_description('taskslaps'::regnamespace, 'pg_namespace')")"
q "CREATE OR REPLACE FUNCTION taskslaps.view_exists(name text) RETURNS boolean LANGUAGE sql AS 'SELECT true'" >/dev/null
plan "$W/dealloc/0003-third.yaml" <<'EOF'
id: 0003-third
title: One more
reason: integration test
steps:
  - { op: add_column, table: t, name: d, type: int }
EOF
run_ctl apply "$W/dealloc"
assert_rc "apply with a current schema: exit 0" 0 "$RC" "$ERR"
assert_sql "apply left the hand-edited helper alone (install skipped)" "SELECT true|t" \
    "SELECT p.prosrc, taskslaps.view_exists('t') FROM pg_proc p WHERE p.oid = 'taskslaps.view_exists'::regproc"
run_ctl install-schema
assert_rc "install-schema: exit 0" 0 "$RC" "$ERR"
assert_sql "install-schema restored the helper" "f|f" \
    "SELECT p.prosrc = 'SELECT true', taskslaps.view_exists('t') FROM pg_proc p WHERE p.oid = 'taskslaps.view_exists'::regproc"
q "COMMENT ON SCHEMA taskslaps IS 'taskslaps schema 0 sha256:old'" >/dev/null
q "CREATE OR REPLACE FUNCTION taskslaps.view_exists(name text) RETURNS boolean LANGUAGE sql AS 'SELECT true'" >/dev/null
run_ctl apply "$W/dealloc"
assert_rc "apply over another version's schema: exit 0" 0 "$RC" "$ERR"
assert_sql "apply installed the schema when its comment differed" "f|f" \
    "SELECT p.prosrc = 'SELECT true', taskslaps.view_exists('t') FROM pg_proc p WHERE p.oid = 'taskslaps.view_exists'::regproc"

# A lock the install needs is waited for 5 s at most: a reader's open
# transaction on taskslaps.events (ACCESS SHARE) against an install that
# must replace events' CHECK (ACCESS EXCLUSIVE). The install fails whole and
# says why; without the limit it would wait for the reader, and every
# session writing events would queue behind it.
q "COMMENT ON CONSTRAINT events_type_check ON taskslaps.events IS 'taskslaps: CHECK (an older list)'" >/dev/null
start_bg reader "$PSQL" -X -At -v ON_ERROR_STOP=1 -d "$CURDB" \
    -c "BEGIN" -c "SELECT count(*) FROM taskslaps.events" -c "SELECT pg_sleep(300)"
reader_pid=$BG_PID
for ((i = 0; i < 600; i++)); do
    [ "$(q "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
        WHERE l.relation = 'taskslaps.events'::regclass AND l.mode = 'AccessShareLock'
          AND a.query LIKE '%pg_sleep(300)%' AND a.pid <> pg_backend_pid()")" = 1 ] && break
    sleep 0.05
done
run_ctl install-schema
assert_rc "install-schema behind a reader's lock: exit 1" 1 "$RC" "$ERR"
assert_contains "... it says the lock was not had in time" "lock timeout" "$ERR"
assert_contains "... and what that means" "another session held a lock the install needs for more than 5s; nothing was changed" "$ERR"
assert_sql "... nothing was changed: the constraint's comment is the old one" "taskslaps: CHECK (an older list)" \
    "SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conname = 'events_type_check'"
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$reader_pid" 2>/dev/null
run_ctl install-schema
assert_rc "install-schema once the reader is gone: exit 0" 0 "$RC" "$ERR"
assert_sql "... the constraint replaced" "t" \
    "SELECT obj_description(oid, 'pg_constraint') LIKE 'taskslaps: CHECK (type = ANY (taskslaps.event_types())) words: %'
       FROM pg_constraint WHERE conname = 'events_type_check'"

###########################################################################
section "abort and resume"
newdb abort
q "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL DEFAULT 0, upd int NOT NULL DEFAULT 0);
   INSERT INTO t (id) SELECT g FROM generate_series(1, 2000) g;
   CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN NEW.upd := OLD.upd + 1; RETURN NEW; END \$\$;
   CREATE TRIGGER t_count BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION count_update();" >/dev/null
plan "$W/abort/0001-slow.yaml" <<'EOF'
id: 0001-slow
title: A throttled backfill to abort
reason: integration test
waves:
  - name: backfill
    limits: { batch_size: 100, rows_per_second: 1000 }
    steps:
      - { op: backfill_sql, sql: "UPDATE t SET v = v + 1" }
EOF
start_ctl_bg abort1 apply "$W/abort"
APPLY=$BG_PID
wait_for "SELECT EXISTS (SELECT 1 FROM taskslaps.backfill_progress WHERE rows_done >= 300)" 30 "$APPLY" ||
    fail "the backfill got going" "$(cat "$W/abort1.err")"
kill -INT "$APPLY"
wait_bg "$APPLY" 30
assert_rc "SIGINT: apply exits 1" 1 "$BG_RC" "$(cat "$W/abort1.err")"
assert_contains "SIGINT: says aborted" "0001-slow aborted" "$(cat "$W/abort1.err")"
assert_sql "plan status aborted" "aborted" "SELECT status FROM taskslaps.plans"
assert_sql "a plan.aborted event" "1" "SELECT count(*) FROM taskslaps.events WHERE type = 'plan.aborted'"
assert_sql "no step.error for an abort" "0" "SELECT count(*) FROM taskslaps.events WHERE type = 'step.error'"
done_at_abort=$(q "SELECT rows_done FROM taskslaps.backfill_progress")
assert_sql "checkpoint kept, mid-range" "t" \
    "SELECT last_key IS NOT NULL AND rows_done BETWEEN 300 AND 1900 FROM taskslaps.backfill_progress"
assert_sql "rows up to the checkpoint updated once, the rest not at all" "0" \
    "SELECT count(*) FROM t WHERE upd <> CASE WHEN id <= (SELECT (last_key->>0)::int FROM taskslaps.backfill_progress) THEN 1 ELSE 0 END"
assert_sql "no ledger row" "0" "SELECT count(*) FROM taskslaps.step_ledger"
assert_sql "no advisory lock left" "0" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
run_ctl apply "$W/abort"
assert_rc "apply of an aborted plan exits 1" 1 "$RC" "$ERR"
assert_contains "apply of an aborted plan points to resume" "taskslapsctl resume 0001-slow" "$ERR"
assert_sql "still aborted, checkpoint untouched" "aborted|$done_at_abort" \
    "SELECT (SELECT status FROM taskslaps.plans), (SELECT rows_done FROM taskslaps.backfill_progress)"
run_ctl resume 0001-slow
assert_rc "resume exits 0" 0 "$RC" "$ERR"
assert_sql "resume: pending" "pending" "SELECT status FROM taskslaps.plans"
run_ctl resume 0001-slow
assert_rc "resume of a pending plan exits 1" 1 "$RC" "$ERR"
run_ctl apply "$W/abort"
assert_rc "apply after resume exits 0" 0 "$RC" "$ERR"
assert_sql "resumed from the checkpoint" "1" \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'step.progress' AND message LIKE 'resuming the backfill from its checkpoint: $done_at_abort rows done%'"
assert_sql "every row updated exactly once" "2000|0" \
    "SELECT count(*) FILTER (WHERE upd = 1 AND v = 1), count(*) FILTER (WHERE upd <> 1) FROM t"
assert_sql "plan applied, one ledger row" "applied|1" \
    "SELECT (SELECT status FROM taskslaps.plans), (SELECT count(*) FROM taskslaps.step_ledger)"

###########################################################################
section "events --follow"
newdb follow
q "CREATE TABLE t (id int PRIMARY KEY);" >/dev/null
run_ctl install-schema
assert_rc "install-schema" 0 "$RC" "$ERR"
start_ctl_bg follow events --follow
FOLLOW=$BG_PID
wait_for "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query = 'LISTEN taskslaps_events')" 20 "$FOLLOW" ||
    fail "events --follow listens" "$(cat "$W/follow.err")"
plan "$W/follow/0001-f.yaml" <<'EOF'
id: 0001-followed
title: Watched
reason: integration test
steps:
  - { op: add_column, table: t, name: a, type: int }
EOF
run_ctl apply "$W/follow"
assert_rc "apply exits 0" 0 "$RC" "$ERR"
if wait_file "$W/follow.out" "plan.ok" 20; then
    pass "events --follow printed plan.ok"
else
    fail "events --follow printed plan.ok" "$(cat "$W/follow.out" "$W/follow.err")"
fi
out=$(cat "$W/follow.out")
assert_contains "follow: step.ok of the plan" "step.ok" "$out"
assert_contains "follow: the plan id" "0001-followed" "$out"
assert_eq "follow: each event once, in order" \
    "plan.start wave.start governor.healthy step.start step.ok wave.ok plan.ok" \
    "$(awk '{ print $4 }' "$W/follow.out" | tr '\n' ' ' | sed 's/ $//')"
kill -TERM "$FOLLOW"
wait_bg "$FOLLOW" 10
assert_rc "events --follow stops on SIGTERM with exit 0" 0 "$BG_RC" "$(cat "$W/follow.err")"
run_ctl events --plan 0001-followed
assert_rc "events --plan exits 0" 0 "$RC" "$ERR"
assert_eq "events --plan lists the plan's 7 events (with the governor's first decision)" 7 "$(grep -c '0001-followed' <<<"$OUT")"
run_ctl history
assert_rc "history exits 0" 0 "$RC" "$ERR"
assert_match "history shows the plan applied" "0001-followed +applied" "$OUT"

###########################################################################
section "reader role"
q "CREATE ROLE ts_reader LOGIN IN ROLE taskslaps_reader;
   SELECT taskslaps.ensure_target_reader('default');
   GRANT taskslaps_reader_default TO ts_reader;" >/dev/null
rq() { "$PSQL" -X -At -v ON_ERROR_STOP=1 -d "$CURDB" -U ts_reader -c "$1" 2>&1; }
assert_eq "reader can SELECT events" "$(q "SELECT count(*) FROM taskslaps.events")" \
    "$(rq "SELECT count(*) FROM taskslaps.events")"
assert_eq "reader can SELECT plans" "0001-followed|applied" "$(rq "SELECT plan_id, status FROM taskslaps.plans")"
assert_eq "reader can SELECT step_ledger" "1" "$(rq "SELECT count(*) FROM taskslaps.step_ledger")"
out=$(rq "INSERT INTO taskslaps.step_ledger (step_sha, target, plan_id, wave, step_index, op, hazard)
          VALUES ('forged', 'default', '0001-followed', 'expand', 9, 'sql', 'H3')")
assert_contains "reader cannot INSERT into step_ledger" "permission denied" "$out"
out=$(rq "DELETE FROM taskslaps.events")
assert_contains "reader cannot DELETE events" "permission denied" "$out"
out=$(rq "UPDATE taskslaps.plans SET status = 'pending'")
assert_contains "reader cannot UPDATE plans" "permission denied" "$out"
out=$(rq "SELECT * FROM taskslaps.backfill_progress")
assert_contains "reader cannot read backfill_progress" "permission denied" "$out"
assert_sql "the ledger is unchanged" "1" "SELECT count(*) FROM taskslaps.step_ledger"
# taskslapsctl events/history as the reader.
"$TASKSLAPSCTL" --db "$(pg_conninfo "$CURDB" ts_reader)" events >"$W/r.out" 2>"$W/r.err"
assert_rc "events as the reader exits 0" 0 "$?" "$(cat "$W/r.err")"
assert_contains "events as the reader shows plan.ok" "plan.ok" "$(cat "$W/r.out")"
# Nothing to do: the reader may confirm it (the schema is current, so no
# install is attempted), and writes nothing.
"$TASKSLAPSCTL" --db "$(pg_conninfo "$CURDB" ts_reader)" apply "$W/follow" >"$W/r.out" 2>"$W/r.err"
assert_rc "apply as the reader of applied plans: exit 0" 0 "$?" "$(cat "$W/r.err")"
assert_contains "... says they are applied" "1 of 1 plan applied or already applied" "$(cat "$W/r.out")"
# Something to do: refused, and nothing changes.
plan "$W/follow/0002-more.yaml" <<'EOF'
id: 0002-more
title: Needs a writer
reason: integration test
steps:
  - { op: add_column, table: t, name: more, type: int }
EOF
"$TASKSLAPSCTL" --db "$(pg_conninfo "$CURDB" ts_reader)" apply "$W/follow" >"$W/r.out" 2>"$W/r.err"
assert_rc "apply of a new plan as the reader fails" 1 "$?" "$(cat "$W/r.err")"
assert_contains "... with permission denied" "permission denied" "$(cat "$W/r.err")"
assert_sql "... and changed nothing" "1|7|" \
    "SELECT (SELECT count(*) FROM taskslaps.step_ledger), (SELECT count(*) FROM taskslaps.events),
            (SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'more')"

env_finish
