#!/usr/bin/env bash
# A backfill batch is two statements in one transaction: its keys take the
# next batch_size keys and keep the last in a transaction-local setting, the
# author's UPDATE updates the rows up to it that its WHERE selects (counted
# by its command tag), and the checkpoint moves past the last key even when
# the WHERE skipped every row of the batch. A composite key, whole batches
# skipped, the empty tail of a range that is a multiple of batch_size, a
# resume from a composite checkpoint, the statements' own setting refused in
# an author's SQL; batches commit with synchronous_commit off and the step's
# ledger row with it on, and a crash of the server mid-backfill loses whole
# batches only, which the next run redoes.
#
#   bash tests/integration/test_backfill_batch.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

# since LINE DB: the server log's lines of database DB after line LINE
since() { tail -n +"$(($1 + 1))" "$_env_pgdir/log" | grep "@$2 "; }
lines() { wc -l <"$_env_pgdir/log"; }

# A table keyed by (a, b): a from 1 to 1050, three b each (k0, k1, k2),
# 3,150 rows; a trigger counts each row's updates, and refuses to update
# the rows whose a is in fail_at.
composite() {
    q "CREATE TABLE t (a int, b text, v int, n int NOT NULL DEFAULT 0, PRIMARY KEY (a, b));
       CREATE TABLE fail_at (a int);
       INSERT INTO t (a, b) SELECT g / 3, 'k' || g % 3 FROM generate_series(3, 3152) g;
       CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS
         \$\$ BEGIN
              IF EXISTS (SELECT 1 FROM fail_at WHERE fail_at.a = NEW.a) THEN
                RAISE EXCEPTION 'refused at %', NEW.a;
              END IF;
              NEW.n := OLD.n + 1; RETURN NEW;
            END \$\$;
       CREATE TRIGGER t_count BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION count_update();
       ANALYZE t;" >/dev/null
}
# a < 200 or a > 900: 1,047 rows; batches 7 to 27 (of 32) select none of theirs
plan "$W/comp/0001-fill.yaml" <<'YAML'
title: fill v at both ends
reason: test
steps:
  - op: backfill_sql
    sql: UPDATE t SET v = a * 10 WHERE a < 200 OR a > 900
    limits: { rows_per_second: 0, batch_size: 100 }
YAML
# selected rows updated: count, fewest and most updates; rows not selected but touched
ONCE="SELECT count(*) FILTER (WHERE v = a * 10), min(n) FILTER (WHERE a < 200 OR a > 900),
        max(n) FILTER (WHERE a < 200 OR a > 900),
        count(*) FILTER (WHERE a BETWEEN 200 AND 900 AND (v IS NOT NULL OR n <> 0)) FROM t"

###########################################################################
section "composite key, a WHERE that skips rows and whole batches"
newdb comp
composite
q "ALTER DATABASE comp SET log_statement = 'all'" >/dev/null
from=$(lines)
run_ctl apply "$W/comp"
assert_rc "apply succeeds" 0 "$RC" "$ERR"
log=$(since "$from" comp)
assert_sql "the selected rows are updated once each, the others not at all" "1047|1|1|0" "$ONCE"
assert_sql "the checkpoint walked every key, to the last" '["1050", "k2"]|["1050", "k2"]|3150' \
    "SELECT last_key::text, upper_key::text, rows_done FROM taskslaps.backfill_progress"
assert_sql "step.ok: rows updated and keys walked" "1047|3150" \
    "SELECT metrics->>'rows_affected', metrics->>'rows_walked' FROM taskslaps.events WHERE type = 'step.ok'"
# 31 batches of 100 keys and one of 50, each its keys and its UPDATE
assert_eq "32 batches, each one statement of keys" 32 \
    "$(grep -c 'taskslaps_batch_set AS MATERIALIZED' <<<"$log")"
assert_eq "... and one UPDATE bounded by the setting they keep" 32 \
    "$(grep 'UPDATE "t" SET' <<<"$log" | grep -c "current_setting('taskslaps.batch_hi')")"
assert_eq "no RETURNING" 0 "$(grep 'UPDATE "t" SET' <<<"$log" | grep -c 'RETURNING')"
assert_eq "no key query of its own" 0 "$(grep 'OFFSET' <<<"$log" | grep -vc 'taskslaps_batch_')"
assert_eq "besides the batches, only the upper key at the start reads the table" 1 \
    "$(grep -E 'FROM "t"|UPDATE "t"' <<<"$log" | grep -v 'taskslaps_batch_hi' | grep -vc 'taskslaps.batch_hi')"
assert_eq "one checkpoint per batch" 32 \
    "$(grep -c 'UPDATE taskslaps.backfill_progress SET last_key' <<<"$log")"
q "ALTER DATABASE comp RESET log_statement" >/dev/null

###########################################################################
section "a range that is a multiple of batch_size ends with an empty batch"
newdb even
q "CREATE TABLE t (id bigint PRIMARY KEY, v int);
   INSERT INTO t SELECT g, NULL FROM generate_series(1, 200) g;
   ALTER DATABASE even SET log_statement = 'all'" >/dev/null
plan "$W/even/0001-fill.yaml" <<'YAML'
title: fill v
reason: test
steps:
  - op: backfill_sql
    sql: UPDATE t SET v = id WHERE v IS NULL
    limits: { rows_per_second: 0, batch_size: 100 }
YAML
from=$(lines)
run_ctl apply "$W/even"
assert_rc "apply succeeds" 0 "$RC" "$ERR"
assert_sql "every row" "200" "SELECT count(*) FROM t WHERE v = id"
assert_sql "the checkpoint" '["200"]|200' "SELECT last_key::text, rows_done FROM taskslaps.backfill_progress"
assert_eq "two full batches and an empty one" 3 \
    "$(since "$from" even | grep -c 'WITH taskslaps_batch_hi AS')"

###########################################################################
section "a composite checkpoint: a failed batch rolls back, the next run resumes after it"
newdb resume
composite
q "INSERT INTO fail_at VALUES (950)" >/dev/null
run_ctl apply "$W/comp"
assert_rc "the batch with a = 950 fails" 1 "$RC" "$ERR"
assert_contains "... and says why" "refused at 950" "$ERR"
# (950, k0) is key 2,848: batch 29; batch 28 ended at key 2,800, (934, k0)
assert_sql "the checkpoint is batch 28's last key" '["934", "k0"]|2800' \
    "SELECT last_key::text, rows_done FROM taskslaps.backfill_progress"
assert_sql "no row after it was touched" "0" "SELECT count(*) FROM t WHERE (a, b) > (934, 'k0') AND n <> 0"
q "DELETE FROM fail_at" >/dev/null
run_ctl apply "$W/comp"
assert_rc "the second run succeeds" 0 "$RC" "$ERR"
assert_sql "... resuming from the checkpoint" "1" \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'step.progress' AND message LIKE 'resuming the backfill from its checkpoint: 2800 rows done%'"
assert_sql "every selected row updated exactly once across both runs, no other" "1047|1|1|0" "$ONCE"
assert_sql "the checkpoint covers every key" '["1050", "k2"]|3150' \
    "SELECT last_key::text, rows_done FROM taskslaps.backfill_progress"

###########################################################################
section "the batch's own setting in the author's SQL"
newdb names
q "CREATE TABLE t (id bigint PRIMARY KEY, v int);
   INSERT INTO t SELECT g, NULL FROM generate_series(1, 50) g;" >/dev/null
plan "$W/names/0001-fill.yaml" <<'YAML'
title: fill v
reason: test
steps:
  - op: backfill_sql
    sql: "UPDATE t SET v = 1 WHERE current_setting('taskslaps.batch_hi', true) IS NOT NULL"
    limits: { rows_per_second: 0, batch_size: 10 }
YAML
# refused when the plan is read (lint says so too), before any batch
run_ctl apply "$W/names"
assert_rc "apply says the plan is invalid (exit 2)" 2 "$RC" "$ERR"
assert_contains "and says why, where" "0001-fill.yaml:5:10: error: sql: the UPDATE names the setting taskslaps.batch_hi" "$ERR"
assert_sql "no row changed, no checkpoint" "0|0" \
    "SELECT (SELECT count(*) FROM t WHERE v IS NOT NULL), (SELECT count(*) FROM taskslaps.backfill_progress)"
run_ctl lint "$W/names"
assert_rc "lint says invalid" 2 "$RC" "$ERR"
assert_contains "lint says why" "names the setting taskslaps.batch_hi" "$OUT$ERR"

###########################################################################
section "batches commit without waiting for their WAL flush; the step's ledger row waits"
newdb sync
run_ctl install-schema
assert_rc "the schema installs" 0 "$RC" "$ERR"
# What each row's update, each checkpoint and the ledger row saw of
# synchronous_commit; rows with id % 4 = 0 are not selected.
q "CREATE TABLE t (id bigint PRIMARY KEY, v int);
   INSERT INTO t SELECT g, NULL FROM generate_series(1, 250) g;
   CREATE TABLE seen (what text, setting text);
   CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS
     \$\$ BEGIN
          INSERT INTO public.seen VALUES (TG_ARGV[0], current_setting('synchronous_commit'));
          RETURN NEW;
        END \$\$;
   CREATE TRIGGER t_note BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION note('row');
   CREATE TRIGGER p_note AFTER UPDATE ON taskslaps.backfill_progress FOR EACH ROW
     EXECUTE FUNCTION note('checkpoint');
   CREATE TRIGGER l_note AFTER INSERT ON taskslaps.step_ledger FOR EACH ROW
     EXECUTE FUNCTION note('ledger');" >/dev/null
plan "$W/sync/0001-fill.yaml" <<'YAML'
title: fill v
reason: test
steps:
  - op: backfill_sql
    sql: UPDATE t SET v = id WHERE id % 4 <> 0
    limits: { rows_per_second: 0, batch_size: 100 }
YAML
run_ctl apply "$W/sync"
assert_rc "apply succeeds" 0 "$RC" "$ERR"
assert_sql "each row updated in a batch with synchronous_commit off" "row|off|188" \
    "SELECT what, string_agg(DISTINCT setting, ','), count(*) FROM seen WHERE what = 'row' GROUP BY what"
assert_sql "... and each checkpoint, in the same transaction" "checkpoint|off|3" \
    "SELECT what, string_agg(DISTINCT setting, ','), count(*) FROM seen WHERE what = 'checkpoint' GROUP BY what"
assert_sql "the ledger row with it on" "ledger|on|1" \
    "SELECT what, string_agg(DISTINCT setting, ','), count(*) FROM seen WHERE what = 'ledger' GROUP BY what"
assert_sql "the rows updated are the UPDATEs' (188 of 250 walked)" "188|250" \
    "SELECT metrics->>'rows_affected', metrics->>'rows_walked' FROM taskslaps.events WHERE type = 'step.ok'"
assert_sql "the database's own setting is untouched" "on" "SHOW synchronous_commit"

###########################################################################
section "a crash of the server mid-backfill: whole batches lost at most, redone once"
# The server stops at once (no flush of the WAL not yet written) while the
# backfill runs; what survives is whole batches with their checkpoint, and
# the next run finishes every row exactly once.
newdb crash
q "CREATE TABLE big (id bigint PRIMARY KEY, v int, n int NOT NULL DEFAULT 0);
   INSERT INTO big (id) SELECT g FROM generate_series(1, 20000) g;
   CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS
     \$\$ BEGIN NEW.n := OLD.n + 1; RETURN NEW; END \$\$;
   CREATE TRIGGER big_count BEFORE UPDATE ON big FOR EACH ROW EXECUTE FUNCTION count_update();
   ANALYZE big;" >/dev/null
plan "$W/crash/0001-fill.yaml" <<'YAML'
title: fill v
reason: test
steps:
  - op: backfill_sql
    sql: UPDATE big SET v = id
    limits: { rows_per_second: 4000, batch_size: 100 }
YAML
start_ctl_bg crash apply "$W/crash"
crash_pid=$BG_PID
if wait_for "SELECT EXISTS (SELECT 1 FROM taskslaps.backfill_progress WHERE rows_done >= 3000)" 60 "$crash_pid"; then
    _pg_as_owner "$TS_PG_BIN/pg_ctl" -D "$_env_pgdir/data" -m immediate -w -t 20 stop >/dev/null 2>&1
    wait_bg "$crash_pid" 60
    assert_eq "the apply fails with the server gone" 1 "$BG_RC"
    _pg_as_owner "$TS_PG_BIN/pg_ctl" -D "$_env_pgdir/data" -l "$_env_pgdir/log" -w -t 30 start >/dev/null 2>&1
    assert_sql "after the crash, the rows updated are exactly those up to the checkpoint" "t|0" \
        "SELECT count(*) FILTER (WHERE n = 1) = p.rows_done AND
                coalesce(max(id) FILTER (WHERE n = 1), 0) = coalesce((p.last_key->>0)::bigint, 0),
                count(*) FILTER (WHERE n > 1)
           FROM big, taskslaps.backfill_progress p GROUP BY p.rows_done, p.last_key"
    assert_sql "... and the backfill had not ended" "t" \
        "SELECT rows_done < 20000 FROM taskslaps.backfill_progress"
    run_ctl apply "$W/crash"
    assert_rc "the next run succeeds" 0 "$RC" "$ERR"
    assert_sql "every row updated exactly once across both runs" "20000|1|1" \
        "SELECT count(*) FILTER (WHERE v = id), min(n), max(n) FROM big"
    assert_sql "the checkpoint covers every key" '["20000"]|20000' \
        "SELECT last_key::text, rows_done FROM taskslaps.backfill_progress"
else
    fail "the backfill did not reach 3,000 rows" "$(cat "$W/crash.err")"
fi
###########################################################################
section "keys whose text the database's settings would bend"
# DateStyle Postgres prints a summer timestamptz of Europe/Dublin as "... IST",
# which reads back an hour off; extra_float_digits 0 prints close floats alike.
# The executor sets the text forms its keys travel in: every row once, no loop.
newdb styles
q "ALTER DATABASE styles SET DateStyle = 'Postgres, DMY';
   ALTER DATABASE styles SET TimeZone = 'Europe/Dublin';
   ALTER DATABASE styles SET extra_float_digits = 0" >/dev/null
q "CREATE TABLE ts (k timestamptz PRIMARY KEY, v int);
   INSERT INTO ts SELECT timestamptz '2024-07-01 12:00:00+00' + g * interval '1 minute', NULL
     FROM generate_series(1, 300) g;
   CREATE TABLE fl (k float8 PRIMARY KEY, v int);
   INSERT INTO fl SELECT 1 + g * 4.44e-16::float8, NULL FROM generate_series(1, 50) g" >/dev/null
assert_eq "the database prints them bent (an hour off; two floats alike)" "t|t|t" \
    "$(q "SELECT (SELECT min(k)::text FROM ts) LIKE '% IST',
                 (SELECT (min(k)::text)::timestamptz <> min(k) FROM ts),
                 (SELECT count(DISTINCT k::text) < count(*) FROM fl)")"
plan "$W/styles/0001-ts.yaml" <<'YAML'
title: fill ts
reason: test
steps:
  - op: backfill_sql
    sql: "UPDATE ts SET v = coalesce(v, 0) + 1"
    limits: { rows_per_second: 0, batch_size: 20 }
YAML
plan "$W/styles/0002-fl.yaml" <<'YAML'
title: fill fl
reason: test
steps:
  - op: backfill_sql
    sql: "UPDATE fl SET v = coalesce(v, 0) + 1"
    limits: { rows_per_second: 0, batch_size: 7 }
YAML
RC=0
timeout 60 "$TASKSLAPSCTL" --db "$CONNINFO" apply "$W/styles" >"$W/styles.out" 2>"$W/styles.err" || RC=$?
assert_rc "both backfills finish" 0 "$RC" "$(cat "$W/styles.err")"
assert_sql "every timestamptz row updated once" "300|0" \
    "SELECT count(*) FILTER (WHERE v = 1), count(*) FILTER (WHERE v IS DISTINCT FROM 1) FROM ts"
assert_sql "every float row updated once" "50|0" \
    "SELECT count(*) FILTER (WHERE v = 1), count(*) FILTER (WHERE v IS DISTINCT FROM 1) FROM fl"
assert_sql "the keys walked are the rows" "300 50" \
    "SELECT string_agg(rows_done::text, ' ' ORDER BY rows_done DESC) FROM taskslaps.backfill_progress"

env_finish
