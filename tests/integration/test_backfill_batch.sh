#!/usr/bin/env bash
# A backfill batch is one statement: it takes the next batch_size keys,
# updates the rows among them that the author's WHERE selects, and moves the
# checkpoint past the last key even when the WHERE skipped every row of the
# batch. A composite key, whole batches skipped, the empty tail of a range
# that is a multiple of batch_size, a resume from a composite checkpoint, and
# the statement's own names refused in an author's SQL.
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
# 31 batches of 100 keys and one of 50, each one statement on the table
assert_eq "32 batches, each one statement" 32 "$(grep -c 'WITH taskslaps_batch_hi AS' <<<"$log")"
assert_eq "no key query of its own" 0 "$(grep 'OFFSET' <<<"$log" | grep -vc 'taskslaps_batch_')"
assert_eq "besides the batches, only the upper key at the start reads the table" 1 \
    "$(grep -E 'FROM "t"|UPDATE "t"' <<<"$log" | grep -vc 'taskslaps_batch_')"
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
section "the batch statement's own names in the author's SQL"
newdb names
q "CREATE TABLE t (id bigint PRIMARY KEY, v int);
   CREATE TABLE taskslaps_batch_keys (id bigint);
   INSERT INTO t SELECT g, NULL FROM generate_series(1, 50) g;" >/dev/null
plan "$W/names/0001-fill.yaml" <<'YAML'
title: fill v
reason: test
steps:
  - op: backfill_sql
    sql: UPDATE t SET v = 1 WHERE id NOT IN (SELECT id FROM taskslaps_batch_keys)
    limits: { rows_per_second: 0, batch_size: 10 }
YAML
run_ctl apply "$W/names"
assert_rc "apply fails" 1 "$RC" "$ERR"
assert_contains "and says why" "uses that name for its own parts" "$ERR"
assert_sql "no row changed, the checkpoint did not move" "0||0" \
    "SELECT (SELECT count(*) FROM t WHERE v IS NOT NULL), (SELECT last_key::text FROM taskslaps.backfill_progress), (SELECT rows_done FROM taskslaps.backfill_progress)"
env_finish
