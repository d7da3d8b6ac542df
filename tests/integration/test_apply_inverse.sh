#!/usr/bin/env bash
# Integration test of the inverses the planner computes, on PostgreSQL 15: for
# every reversible op, `taskslapsctl apply` runs the forward step, then the
# inverse that `taskslapsctl plan --json` shows for it is run by hand with
# psql: its prechecks must hold, its statement runs (in a transaction with the
# locks it took compared to its lock_class_max, or alone when it must run
# outside one), its postchecks must hold; then the schema's fingerprint must
# be the one from before the forward step. A whole plan is reverted too, its
# inverses in reverse order. The executor does not run inverses yet: psql
# stands in for it, running a batched inverse as one UPDATE.
#
#   bash tests/integration/test_apply_inverse.sh   (TS_VERBOSE=1 prints passes;
#   TASKSLAPSCTL=path/to/taskslapsctl to test another build)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

newdb inv
q "
CREATE SCHEMA app;
CREATE TABLE app.account (id bigint PRIMARY KEY, email text, team_id int, score int DEFAULT 1,
                          nick text);
INSERT INTO app.account SELECT g, 'u' || g || '@example.com', g % 5, g, 'n' || g
  FROM generate_series(1, 300) g;
CREATE TABLE app.team (id int PRIMARY KEY, name text);
INSERT INTO app.team SELECT g, 'team ' || g FROM generate_series(0, 4) g;
CREATE TABLE plain (id int PRIMARY KEY, v text);
INSERT INTO plain VALUES (1, 'a'), (2, NULL);" >/dev/null

# The schema's shape: relations, columns (type, NOT NULL, default), constraints
# (definition, validated), indexes (definition, valid) and views of app and public.
FINGERPRINT="
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname IN ('app', 'public'))
SELECT md5(coalesce(string_agg(x, E'\n' ORDER BY x), '')) FROM (
  SELECT 'rel ' || c.oid::regclass::text || ' ' || c.relkind::text || c.relpersistence::text
    FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns)
  UNION ALL
  SELECT 'col ' || c.oid::regclass::text || '.' || a.attname || ' ' || a.attnum || ' '
         || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' '
         || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace IN (SELECT oid FROM ns) AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'con ' || k.conrelid::regclass::text || ' ' || k.conname || ' '
         || pg_get_constraintdef(k.oid) || ' ' || k.convalidated
    FROM pg_constraint k WHERE k.connamespace IN (SELECT oid FROM ns)
  UNION ALL
  SELECT 'idx ' || pg_get_indexdef(i.indexrelid) || ' ' || i.indisvalid || i.indisready
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE c.relnamespace IN (SELECT oid FROM ns)
  UNION ALL
  SELECT 'view ' || schemaname || '.' || viewname || ' ' || definition
    FROM pg_views WHERE schemaname IN ('app', 'public')
) f(x)"
# fingerprint: prints it; a query that fails is a failure, never a match.
fingerprint() {
    local fp
    fp=$(q "$FINGERPRINT" 2>&1)
    [[ $fp =~ ^[0-9a-f]{32}$ ]] || fail "the fingerprint query works" "$fp"
    printf '%s' "$fp"
}
# rows_of TABLE: the rows of a table, as one hash.
rows_of() {
    local h
    h=$(q "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM $1 t" 2>&1)
    [[ $h =~ ^[0-9a-f]{32}$ ]] || fail "the rows of $1 can be read" "$h"
    printf '%s' "$h"
}

# PostgreSQL's table lock modes, weakest first: rank of a pg_locks mode.
LOCK_RANKS="(VALUES ('AccessShareLock', 1), ('RowShareLock', 2), ('RowExclusiveLock', 3),
  ('ShareUpdateExclusiveLock', 4), ('ShareLock', 5), ('ShareRowExclusiveLock', 6),
  ('ExclusiveLock', 7), ('AccessExclusiveLock', 8)) m(mode, rank)"

# undo_list FILE: the undo of every step of the plan in FILE, in the order a
# revert runs them (last wave first, last step first), one directory each
# under $W/undo/N with files undo, reason, op, exec, sql, lock, hazard, pre, post
# (checks NUL-separated). Prints the number of steps.
undo_list() {
    rm -rf "$W/undo"
    mkdir -p "$W/undo"
    "$TASKSLAPSCTL" plan --json "$1" >"$W/plan.json" || {
        echo "plan --json $1 failed" >&2
        return 1
    }
    python3 - "$W/plan.json" "$W/undo" <<'EOF'
import json, os, sys
plan = json.load(open(sys.argv[1]))[0]
steps = [s for w in plan['waves'] for s in w['steps']]
for n, s in enumerate(reversed(steps)):
    d = os.path.join(sys.argv[2], str(n))
    os.makedirs(d)
    def put(name, text):
        with open(os.path.join(d, name), 'w') as f:
            f.write(text)
    put('undo', s['undo'])
    put('fwd', s['op'])
    put('reason', s.get('undo_reason', ''))
    inv = s.get('inverse')
    if inv:
        put('op', inv['op'])
        put('exec', inv['exec'])
        put('sql', inv['sql'])
        put('hazard', inv['hazard'])
        put('lock', inv['obligations']['lock_class_max'])
        put('pre', ''.join(c + '\0' for c in inv['obligations']['prechecks']))
        put('post', ''.join(c + '\0' for c in inv['obligations']['postchecks']))
print(len(steps))
EOF
}

# checks_hold FILE: whether every check (NUL-separated in FILE) is true now.
checks_hold() {
    local c sql=
    while IFS= read -r -d '' c; do
        sql+="${sql:+ AND }($c)"
    done <"$1"
    [ -z "$sql" ] && return 0
    [ "$(q "SELECT $sql" 2>&1)" = t ]
}

# run_inverse DIR DESC: the inverse in DIR as the executor would run it:
# prechecks, the statement, the proof of its lock, postchecks.
run_inverse() {
    local d=$1 desc=$2 sql exec lock oids got
    sql=$(cat "$d/sql")
    exec=$(cat "$d/exec")
    lock=$(cat "$d/lock")
    if checks_hold "$d/pre"; then
        pass "$desc: its prechecks hold"
    else
        fail "$desc: its prechecks hold" "$(tr '\0' '\n' <"$d/pre")"
    fi
    if [ "$exec" = outside_transaction ]; then
        if out=$(q "$sql" 2>&1); then
            pass "$desc: $(cat "$d/op") runs outside a transaction"
        else
            fail "$desc: $(cat "$d/op") runs outside a transaction" "$sql" "$out"
        fi
    else
        # the relations that exist before it: the ones its lock_class_max is about
        oids=$(q "SELECT coalesce(string_agg(oid::text, ','), '0') FROM pg_class
                   WHERE relnamespace IN ('app'::regnamespace, 'public'::regnamespace)")
        got=$(printf '%s\n' "BEGIN;" "$sql;" \
            "SELECT coalesce(max(m.rank), 0) || ' ' || coalesce(string_agg(DISTINCT l.mode, ','), '')
               FROM pg_locks l JOIN $LOCK_RANKS ON m.mode = l.mode
              WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
                AND l.relation IN ($oids);" "COMMIT;" |
            "$PSQL" -X -At -q -v ON_ERROR_STOP=1 -d "$CURDB" 2>&1)
        if [ $? -ne 0 ]; then
            fail "$desc: $(cat "$d/op") runs in a transaction" "$sql" "$got"
        else
            pass "$desc: $(cat "$d/op") runs in a transaction"
            local want
            want=$(q "SELECT rank FROM $LOCK_RANKS WHERE mode = '$lock'")
            if [ -n "$want" ] && [ "${got%% *}" -le "$want" ]; then
                pass "$desc: it held no lock stronger than $lock (${got#* })"
            else
                fail "$desc: it held no lock stronger than $lock" "held: ${got#* }"
            fi
        fi
    fi
    if checks_hold "$d/post"; then
        pass "$desc: its postchecks hold"
    else
        fail "$desc: its postchecks hold" "$(tr '\0' '\n' <"$d/post")"
    fi
}

# revert_case NAME PLANFILE [TABLE]: apply the plan (one or more steps), then
# run the inverse of each step in reverse order; the fingerprint (and the rows
# of TABLE) must be back to what they were.
P=$W/plans
revert_case() {
    local name=$1 file=$2 table=${3:-} fp0 fp1 rows0= n i u
    section "$name"
    fp0=$(fingerprint)
    [ -z "$table" ] || rows0=$(rows_of "$table")
    run_ctl apply "$file"
    assert_rc "$name: the forward plan applies" 0 "$RC" "$ERR"
    fp1=$(fingerprint)
    if [ -z "$table" ]; then
        assert_ne "$name: the forward plan changed the schema" "$fp0" "$fp1"
    else
        assert_ne "$name: the forward plan changed the rows of $table" "$rows0" "$(rows_of "$table")"
    fi
    n=$(undo_list "$file") || {
        fail "$name: plan --json lists the undo of every step"
        return
    }
    for ((i = 0; i < n; i++)); do
        u=$(cat "$W/undo/$i/undo")
        case "$u" in
        inverse) run_inverse "$W/undo/$i" "$name: undo of $(cat "$W/undo/$i/fwd")" ;;
        nothing) pass "$name: $(cat "$W/undo/$i/fwd") has nothing to undo" ;;
        *) fail "$name: $(cat "$W/undo/$i/fwd") is reversible" "undo: $u: $(cat "$W/undo/$i/reason")" ;;
        esac
    done
    assert_eq "$name: the fingerprint after the inverses is the one before" "$fp0" "$(fingerprint)"
    [ -z "$table" ] || assert_eq "$name: the rows of $table are back" "$rows0" "$(rows_of "$table")"
}

###########################################################################
plan "$P/0001-add-column.yaml" <<'EOF'
title: add_column, nullable and NOT NULL with a default
reason: inverse test
steps:
  - { op: add_column, table: app.account, name: nickname, type: "character varying(40)" }
  - { op: add_column, table: app.account, name: active, type: boolean, nullable: false, default: true }
EOF
revert_case add_column "$P/0001-add-column.yaml"

plan "$P/0002-create-table.yaml" <<'EOF'
title: create_table with a primary key
reason: inverse test
steps:
  - op: create_table
    table: app.audit_log
    columns:
      - { name: id, type: bigint, nullable: false }
      - { name: note, type: text, default: "none" }
    primary_key: [id]
EOF
revert_case create_table "$P/0002-create-table.yaml"

plan "$P/0003-create-view.yaml" <<'EOF'
title: create_view
reason: inverse test
steps:
  - { op: create_view, name: app.account_emails, sql: "SELECT id, email FROM app.account" }
EOF
revert_case create_view "$P/0003-create-view.yaml"

plan "$P/0004-index.yaml" <<'EOF'
title: add_index_concurrently, unique and partial
reason: inverse test
steps:
  - { op: add_index_concurrently, table: app.account, name: account_email_idx, columns: [email], unique: true }
  - { op: add_index_concurrently, table: app.account, name: account_team_idx, columns: [team_id], where: "team_id > 0" }
EOF
revert_case add_index_concurrently "$P/0004-index.yaml"

plan "$P/0005-fk.yaml" <<'EOF'
title: add_foreign_key_not_valid
reason: inverse test
steps:
  - op: add_foreign_key_not_valid
    table: app.account
    name: account_team_fk
    columns: [team_id]
    ref_table: app.team
    ref_columns: [id]
    on_delete: SET NULL
EOF
revert_case add_foreign_key_not_valid "$P/0005-fk.yaml"

plan "$P/0006-check.yaml" <<'EOF'
title: add_check_not_valid
reason: inverse test
steps:
  - { op: add_check_not_valid, table: app.account, name: account_score_pos, check: "score > 0" }
EOF
revert_case add_check_not_valid "$P/0006-check.yaml"

plan "$P/0007-not-null.yaml" <<'EOF'
title: set_not_null
reason: inverse test
steps:
  - { op: set_not_null, table: app.account, column: email }
EOF
revert_case set_not_null "$P/0007-not-null.yaml"

plan "$P/0008-rename-column.yaml" <<'EOF'
title: rename_column
reason: inverse test
steps:
  - { op: rename_column, table: app.account, from: nick, to: handle }
EOF
revert_case rename_column "$P/0008-rename-column.yaml"

plan "$P/0009-rename-table.yaml" <<'EOF'
title: rename_table, in its schema and in public
reason: inverse test
steps:
  - { op: rename_table, from: app.team, to: squad }
  - { op: rename_table, from: plain, to: simple }
EOF
revert_case rename_table "$P/0009-rename-table.yaml"

plan "$P/0010-backfill.yaml" <<'EOF'
title: backfill_sql with revert_sql
reason: inverse test
waves:
  - name: backfill
    limits: { batch_size: 40, rows_per_second: 0 }
    steps:
      - op: backfill_sql
        sql: UPDATE app.account SET nick = upper(nick) WHERE nick LIKE 'n%'
        revert_sql: UPDATE app.account SET nick = lower(nick) WHERE nick LIKE 'N%'
EOF
revert_case "backfill_sql revert_sql" "$P/0010-backfill.yaml" app.account

plan "$P/0011-sql.yaml" <<'EOF'
title: sql with revert_sql, in and outside a transaction
reason: inverse test
steps:
  - op: sql
    sql: ALTER TABLE app.account ALTER COLUMN score SET DEFAULT 7
    revert_sql: ALTER TABLE app.account ALTER COLUMN score SET DEFAULT 1
  - op: sql
    sql: CREATE INDEX CONCURRENTLY account_score_idx ON app.account (score)
    revert_sql: DROP INDEX CONCURRENTLY app.account_score_idx
EOF
revert_case "sql revert_sql" "$P/0011-sql.yaml"

# A whole plan, reverted: the inverses in reverse order; validate has nothing
# to undo, and the backfill's data goes with the column the plan added.
plan "$P/0012-whole.yaml" <<'EOF'
title: every wave, reverted
reason: inverse test
waves:
  - name: expand
    steps:
      - { op: add_column, table: app.account, name: level, type: int }
      - { op: add_check_not_valid, table: app.account, name: account_level_not_null, check: "level IS NOT NULL" }
      - op: create_table
        table: app.level
        columns: [{ name: id, type: int, nullable: false }]
        primary_key: [id]
      - { op: create_view, name: app.levels, sql: "SELECT id, level FROM app.account" }
  - name: backfill
    limits: { rows_per_second: 0 }
    steps:
      - { op: backfill_sql, sql: "UPDATE app.account SET level = 1 WHERE level IS NULL" }
  - name: validate
    steps:
      - { op: validate_constraint, table: app.account, name: account_level_not_null }
      - { op: set_not_null, table: app.account, column: level }
EOF
revert_case "a whole plan" "$P/0012-whole.yaml"
assert_contains "a whole plan: the backfill's data goes with its column" \
    "data left as is: harmless, the inverse of the add_column at line 6 drops the column it filled" \
    "$(cat "$W"/undo/*/reason)"

###########################################################################
section "plan shows the undo"
out=$("$TASKSLAPSCTL" plan "$P/0012-whole.yaml" 2>&1)
assert_contains "plan: the inverse of add_column, with its badge and statement" \
    'undo: [H3] drop_column' "$out"
assert_contains "plan: the inverse's statement" \
    'ALTER TABLE "app"."account" DROP COLUMN "level"' "$out"
assert_contains "plan: the inverse's lock" "lock <= AccessExclusiveLock" "$out"
assert_contains "plan: the inverse's prechecks" \
    "pre:  taskslaps.column_exists('app.account', 'level')" "$out"
assert_contains "plan: validate has nothing to undo" "undo: nothing to undo: validating" "$out"
assert_contains "plan: drop_not_null undoes set_not_null" \
    'ALTER TABLE "app"."account" ALTER COLUMN "level" DROP NOT NULL' "$out"
out=$("$TASKSLAPSCTL" plan "$P/0011-sql.yaml" 2>&1)
assert_contains "plan: a revert_sql outside a transaction says so" \
    "lock <= ShareUpdateExclusiveLock, outside a transaction" "$out"
plan "$W/irrev.yaml" <<'EOF'
title: irreversible
reason: inverse test
steps:
  - { op: drop_column, table: app.account, name: nick }
  - { op: sql, sql: "ANALYZE app.account" }
EOF
out=$("$TASKSLAPSCTL" plan "$W/irrev.yaml" 2>&1)
assert_contains "plan: drop_column is irreversible, and why" \
    "undo: irreversible: the column and its data are gone" "$out"
assert_contains "plan: sql without revert_sql is irreversible" \
    "undo: irreversible: an sql step is undone only by its revert_sql" "$out"
out=$("$TASKSLAPSCTL" plan --json "$W/irrev.yaml" 2>&1)
assert_eq "plan --json: undo and undo_reason of each step" \
    "irreversible|irreversible: the column and its data are gone
irreversible|irreversible: an sql step is undone only by its revert_sql, and it has none" \
    "$(printf '%s' "$out" | python3 -c '
import json, sys
for w in json.load(sys.stdin)[0]["waves"]:
    for s in w["steps"]:
        print(s["undo"] + "|" + s["undo_reason"] + ("|inverse" if "inverse" in s else ""))')"
plan "$W/bad.yaml" <<'EOF'
title: a revert_sql that is no UPDATE
reason: inverse test
steps:
  - op: backfill_sql
    sql: UPDATE app.account SET score = 0
    revert_sql: DELETE FROM app.account
EOF
out=$("$TASKSLAPSCTL" plan "$W/bad.yaml" 2>&1)
rc=$?
assert_rc "plan: a bad revert_sql makes the plan invalid" 2 "$rc" "$out"
assert_contains "plan: the bad revert_sql's file:line:column" \
    "bad.yaml:6:17: error: revert_sql: expected a single UPDATE statement" "$out"

env_finish
