#!/usr/bin/env bash
# Integration test of sql/: install (twice, concurrently, over an older
# version, without CREATEROLE), the check helpers, the events NOTIFY, and the
# reader roles with row-level security. Needs PostgreSQL 15 binaries; starts
# its own throwaway cluster.
#
#   bash tests/integration/test_schema.sh        (TS_VERBOSE=1 prints passes)

set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/lib/pg.sh
. "$root/tests/lib/pg.sh"

# shellcheck source=tests/lib/assert.sh
. "$here/../lib/assert.sh"
# expect_error DESC PATTERN CMD...: CMD must fail with PATTERN on stderr.
expect_error() {
    local desc=$1 pattern=$2 err rc
    shift 2
    err=$("$@" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -ne 0 ] && printf '%s' "$err" | grep -qiE -- "$pattern"; then
        pass "$desc"
    else
        fail "$desc" "expected failure matching: $pattern" "rc=$rc stderr: $err"
    fi
}

tmp=$(mktemp -d)
trap 'pg_stop "$tmp"' EXIT
pg_start "$tmp" || {
    echo "could not start PostgreSQL" >&2
    exit 1
}

sql_files=("$root"/sql/*.sql)
# install DB [USER [FILES...]]: run the sql/ files in order, in one transaction.
install() {
    local db=$1 user=${2:-postgres} args=() f
    shift 2 2>/dev/null || shift
    [ $# -gt 0 ] || set -- "${sql_files[@]}"
    for f; do args+=(-f "$f"); done
    pg_psql -1 -d "$db" -U "$user" "${args[@]}" >/dev/null
}
# q DB USER SQL: one value (or rows), unaligned, tuples only.
q() { pg_psql -d "$1" -U "$2" -Atc "$3"; }
dump() {
    "$TS_PG_BIN/pg_dump" -s -n taskslaps -d "$1" | grep -vE '^\\(un)?restrict '
}

# Versions every file must record: its numeric prefix.
expected_versions=$(for f in "${sql_files[@]}"; do
    b=$(basename "$f")
    echo $((10#${b%%_*}))
done | sort -n | paste -sd, -)

q postgres postgres "
    CREATE ROLE ts_owner LOGIN CREATEROLE;
    CREATE ROLE ts_plain LOGIN;
    CREATE ROLE ts_reader LOGIN;
    CREATE ROLE ts_reader_all_targets_none LOGIN;
    CREATE ROLE ts_stranger LOGIN;" >/dev/null
for db in tsdb olddb racedb; do pg_createdb "$db" ts_owner; done
pg_createdb plaindb ts_plain

###########################################################################
# 1. Installer without CREATEROLE, before taskslaps_reader exists: the schema
#    installs, the role is skipped with a warning.
err=$(install plaindb ts_plain 2>&1)
assert_eq "install without CREATEROLE succeeds" 0 $?
assert_contains "install without CREATEROLE warns" "role taskslaps_reader not created" "$err"
assert_eq "no taskslaps_reader role yet" 0 "$(q postgres postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'taskslaps_reader'")"
assert_eq "versions recorded (plain installer)" "$expected_versions" \
    "$(q plaindb ts_plain "SELECT string_agg(version::text, ',' ORDER BY version) FROM taskslaps.schema_version")"
assert_eq "RLS enabled even without reader role" 3 \
    "$(q plaindb ts_plain "SELECT count(*) FROM pg_class WHERE relnamespace = 'taskslaps'::regnamespace AND relrowsecurity")"

###########################################################################
# 2. Normal install by a CREATEROLE owner; again; compare the schema.
install tsdb ts_owner
assert_eq "first install" 0 $?
dump1=$(dump tsdb)
install tsdb ts_owner
assert_eq "second install (idempotent)" 0 $?
dump2=$(dump tsdb)
if [ "$dump1" = "$dump2" ]; then pass "schema unchanged by second install"; else
    fail "schema unchanged by second install" "$(diff <(echo "$dump1") <(echo "$dump2") | head -20)"
fi
assert_eq "versions recorded" "$expected_versions" \
    "$(q tsdb ts_owner "SELECT string_agg(version::text, ',' ORDER BY version) FROM taskslaps.schema_version")"
assert_eq "taskslaps_reader created NOLOGIN" "f" \
    "$(q postgres postgres "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'taskslaps_reader'")"
assert_eq "one notify trigger" 1 \
    "$(q tsdb ts_owner "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'taskslaps.events'::regclass AND NOT tgisinternal")"
assert_eq "owner owns the schema" ts_owner \
    "$(q tsdb ts_owner "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'taskslaps'")"

# Now that the role exists, re-installing the plain database grants to it.
install plaindb ts_plain 2>/dev/null
assert_eq "re-install (plain) grants to reader" "t" \
    "$(q plaindb ts_plain "SELECT has_table_privilege('taskslaps_reader', 'taskslaps.events', 'SELECT')")"

# An older database: only 001 ran (and has data), then the whole set.
install olddb ts_owner "${sql_files[0]}"
q olddb ts_owner "INSERT INTO taskslaps.plans (target, plan_id, checksum) VALUES ('a', 'p1', 'x')" >/dev/null
install olddb ts_owner
assert_eq "upgrade from version 1" 0 $?
dump3=$(dump olddb)
if [ "$dump1" = "$dump3" ]; then pass "upgraded schema equals fresh schema"; else
    fail "upgraded schema equals fresh schema" "$(diff <(echo "$dump1") <(echo "$dump3") | head -20)"
fi
assert_eq "data kept across upgrade" 1 "$(q olddb ts_owner "SELECT count(*) FROM taskslaps.plans")"
# A ledger of an older version allows outcomes applied and already_present
# only; the upgrade allows 'accepted' (a drifted step an operator accepted).
q olddb ts_owner "ALTER TABLE taskslaps.step_ledger DROP CONSTRAINT step_ledger_outcome_check;
    ALTER TABLE taskslaps.step_ledger ADD CONSTRAINT step_ledger_outcome_check
        CHECK (outcome IN ('applied', 'already_present'));
    COMMENT ON CONSTRAINT step_ledger_outcome_check ON taskslaps.step_ledger IS
        'taskslaps: CHECK (outcome IN (''applied'', ''already_present''))'" >/dev/null
install olddb ts_owner
assert_eq "the upgraded ledger takes outcome accepted" 1 \
    "$(q olddb ts_owner "INSERT INTO taskslaps.step_ledger (step_sha, target, plan_id, wave, step_index, op, hazard, outcome)
        VALUES ('s1', 'a', 'p1', 'expand', 0, 'add_column', 'H0', 'accepted') RETURNING 1")"

# A ledger of version 3 or older is keyed by step_sha alone; the upgrade
# keys it (and the backfill checkpoints) by target and step_sha, rows kept.
q olddb ts_owner "ALTER TABLE taskslaps.step_ledger DROP CONSTRAINT step_ledger_pkey;
    ALTER TABLE taskslaps.step_ledger ADD PRIMARY KEY (step_sha);
    ALTER TABLE taskslaps.backfill_progress DROP CONSTRAINT backfill_progress_pkey;
    ALTER TABLE taskslaps.backfill_progress ADD PRIMARY KEY (step_sha);
    DELETE FROM taskslaps.schema_version WHERE version >= 4" >/dev/null
install olddb ts_owner
assert_eq "upgrade from a ledger keyed by step_sha" 0 $?
assert_eq "both are keyed by target and step_sha" "backfill_progress|target,step_sha
step_ledger|target,step_sha" \
    "$(q olddb ts_owner "SELECT c.conrelid::regclass::text, string_agg(a.attname, ',' ORDER BY k.n)
        FROM pg_constraint c, unnest(c.conkey) WITH ORDINALITY k(attnum, n), pg_attribute a
        WHERE c.contype = 'p' AND c.connamespace = 'taskslaps'::regnamespace
          AND c.conrelid IN ('taskslaps.step_ledger'::regclass, 'taskslaps.backfill_progress'::regclass)
          AND a.attrelid = c.conrelid AND a.attnum = k.attnum
        GROUP BY 1 ORDER BY 1" | sed 's/^taskslaps\.//')"
assert_eq "the rows are kept, and another target may hold the same step" 2 \
    "$(q olddb ts_owner "INSERT INTO taskslaps.step_ledger (step_sha, target, plan_id, wave, step_index, op, hazard)
        VALUES ('s1', 'b', 'p1', 'expand', 0, 'add_column', 'H0');
        SELECT count(*) FROM taskslaps.step_ledger WHERE step_sha = 's1'" | tail -n 1)"
assert_eq "version 4 recorded" 4 "$(q olddb ts_owner "SELECT max(version) FROM taskslaps.schema_version")"
dump4=$(dump olddb)
if [ "$dump1" = "$dump4" ]; then pass "the re-keyed schema equals a fresh one"; else
    fail "the re-keyed schema equals a fresh one" "$(diff <(echo "$dump1") <(echo "$dump4") | head -20)"
fi

# A newer version's word list (its files: these with one more event type)
# and a row using the new word: installing this version again narrows the
# list, so it replaces the constraint, which finds the row; the install fails
# whole rather than leaving a row outside its CHECK (and a dump that would
# not restore). The constraint's comment records the words.
mkdir -p "$tmp/newer"
cp "${sql_files[@]}" "$tmp/newer/"
sed -i "s/'notes.repaired'\]/'notes.repaired', 'plan.newer']/" "$tmp/newer/001_schema.sql"
assert_eq "the newer files add a word" 1 "$(grep -c "'plan.newer'" "$tmp/newer/001_schema.sql")"
install olddb ts_owner "$tmp"/newer/*.sql
q olddb ts_owner "INSERT INTO taskslaps.events (target, type) VALUES ('a', 'plan.newer')" >/dev/null
assert_contains "the newer list's words are in the constraint's comment" "notes.repaired, plan.newer" \
    "$(q olddb ts_owner "SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conname = 'events_type_check'")"
expect_error "installing a narrower list over a row using the dropped word fails" "events_type_check" \
    install olddb ts_owner
assert_eq "... and changes nothing: the newer list and the row stay" "t|1" \
    "$(q olddb ts_owner "SELECT 'plan.newer' = ANY (taskslaps.event_types()),
        (SELECT count(*) FROM taskslaps.events WHERE type = 'plan.newer')")"
q olddb ts_owner "DELETE FROM taskslaps.events WHERE type = 'plan.newer'" >/dev/null
install olddb ts_owner
assert_eq "without the row, the install puts its own list back" "t|f" \
    "$(q olddb ts_owner "SELECT 'step.ok' = ANY (taskslaps.event_types()), 'plan.newer' = ANY (taskslaps.event_types())")"

# Whoever writes the tables calls the list functions (a CHECK runs them with
# the writer's rights): EXECUTE is granted to PUBLIC even where the
# database's default privileges take it away.
pg_createdb privdb ts_owner
q privdb ts_owner "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC" >/dev/null
install privdb ts_owner
assert_eq "list functions executable by anyone despite default privileges" "true|true|true|true|true" \
    "$(q privdb ts_owner "SELECT string_agg(has_function_privilege('ts_stranger', p.oid, 'EXECUTE')::text, '|' ORDER BY p.proname)
        FROM pg_proc p WHERE p.pronamespace = 'taskslaps'::regnamespace
         AND p.proname IN ('event_types', 'hazard_classes', 'plan_statuses', 'step_outcomes', 'wave_names')")"
assert_eq "... but not the installer's helpers" "f|f" \
    "$(q privdb ts_owner "SELECT has_function_privilege('ts_stranger', 'taskslaps._install_check(regclass, text, text)', 'EXECUTE'),
        has_function_privilege('ts_stranger', 'taskslaps._install_constraint(regclass, text, text, text[])', 'EXECUTE')")"

# Concurrent installs on a fresh database serialize on the advisory lock.
pids=()
for i in 1 2 3 4; do
    install racedb ts_owner 2>"$tmp/race.$i" &
    pids+=($!)
done
race_fail=0
for pid in "${pids[@]}"; do wait "$pid" || race_fail=$((race_fail + 1)); done
assert_eq "4 concurrent installs all succeed" 0 "$race_fail" || true
[ "$race_fail" -eq 0 ] || cat "$tmp"/race.* >&2

###########################################################################
# 3. Function properties.
assert_eq "helpers are STABLE SECURITY INVOKER with no pinned search_path" \
    "column_exists|s|f|
column_not_null|s|f|
constraint_exists|s|f|
constraint_valid|s|f|
index_exists|s|f|
index_valid|s|f|
lookup_relation|s|f|
table_exists|s|f|
view_exists|s|f|" \
    "$(q tsdb ts_owner "SELECT proname, provolatile, prosecdef, array_to_string(proconfig, ',')
                        FROM pg_proc WHERE pronamespace = 'taskslaps'::regnamespace
                         AND proname IN ('table_exists','view_exists','column_exists','column_not_null',
                                         'index_exists','index_valid','constraint_exists','constraint_valid',
                                         'lookup_relation')
                        ORDER BY proname")"
assert_eq "ensure_target_reader is SECURITY DEFINER with pinned search_path" \
    "t|search_path=pg_catalog, pg_temp" \
    "$(q tsdb ts_owner "SELECT prosecdef, array_to_string(proconfig, ',') FROM pg_proc
                        WHERE oid = 'taskslaps.ensure_target_reader(text)'::regprocedure")"

###########################################################################
# 4. The check helpers on real objects.
q tsdb ts_owner "
    CREATE SCHEMA app;
    CREATE TABLE public.employee (id int PRIMARY KEY, name text NOT NULL, coffee numeric, gone int);
    ALTER TABLE public.employee DROP COLUMN gone;
    CREATE TABLE public.\"MixedCase\" (\"Col\" int NOT NULL, lower_col int);
    CREATE TABLE app.things (id int, val int);
    INSERT INTO app.things VALUES (1, 1), (1, 2);
    CREATE TABLE public.parted (id int) PARTITION BY RANGE (id);
    CREATE VIEW public.v_emp AS SELECT * FROM public.employee;
    CREATE MATERIALIZED VIEW public.mv_emp AS SELECT id FROM public.employee;
    CREATE INDEX employee_name_idx ON public.employee (name);
    CREATE INDEX \"MixedIdx\" ON public.\"MixedCase\" (\"Col\");
    ALTER TABLE public.employee ADD CONSTRAINT employee_coffee_pos CHECK (coffee >= 0);
    ALTER TABLE public.employee ADD CONSTRAINT employee_coffee_nv CHECK (coffee < 100) NOT VALID;" >/dev/null
# Duplicate data: the concurrent unique build fails and leaves an INVALID index.
pg_psql -d tsdb -U ts_owner -c "CREATE UNIQUE INDEX CONCURRENTLY things_id_uq ON app.things (id)" >/dev/null 2>&1
assert_eq "CREATE UNIQUE INDEX CONCURRENTLY on duplicates left an index" 1 \
    "$(q tsdb ts_owner "SELECT count(*) FROM pg_class WHERE relname = 'things_id_uq'")"

# Each line: expected result, then the expression (search_path: default).
while IFS='|' read -r want expr; do
    [ -n "$want" ] || continue
    got=$(q tsdb ts_owner "SELECT $expr" 2>&1)
    assert_eq "$expr" "$want" "$got"
done <<'EOF'
t|taskslaps.table_exists('employee')
t|taskslaps.table_exists('public.employee')
f|taskslaps.table_exists('Employee')
f|taskslaps.table_exists('EMPLOYEE')
t|taskslaps.table_exists('MixedCase')
f|taskslaps.table_exists('mixedcase')
t|taskslaps.table_exists('public.MixedCase')
t|taskslaps.table_exists('app.things')
f|taskslaps.table_exists('things')
f|taskslaps.table_exists('nosuchschema.employee')
f|taskslaps.table_exists('no_such_table')
t|taskslaps.table_exists('parted')
f|taskslaps.table_exists('v_emp')
f|taskslaps.table_exists('employee_name_idx')
f|taskslaps.table_exists('"employee"')
f|taskslaps.table_exists('employee; DROP TABLE employee')
f|taskslaps.table_exists('a.b.c')
f|taskslaps.table_exists('')
f|taskslaps.table_exists(NULL)
f|taskslaps.table_exists('1employee')
t|taskslaps.view_exists('v_emp')
t|taskslaps.view_exists('public.mv_emp')
f|taskslaps.view_exists('employee')
f|taskslaps.view_exists('nosuchschema.v_emp')
t|taskslaps.column_exists('employee', 'name')
f|taskslaps.column_exists('employee', 'Name')
f|taskslaps.column_exists('employee', 'nope')
f|taskslaps.column_exists('employee', 'gone')
f|taskslaps.column_exists('employee', 'ctid')
t|taskslaps.column_exists('MixedCase', 'Col')
f|taskslaps.column_exists('MixedCase', 'col')
t|taskslaps.column_exists('app.things', 'val')
f|taskslaps.column_exists('nosuchschema.things', 'val')
f|taskslaps.column_exists('no_such_table', 'val')
f|taskslaps.column_exists('employee_name_idx', 'name')
t|taskslaps.column_exists('v_emp', 'coffee')
f|taskslaps.column_exists('employee', NULL)
t|taskslaps.column_not_null('employee', 'name')
t|taskslaps.column_not_null('employee', 'id')
f|taskslaps.column_not_null('employee', 'coffee')
f|taskslaps.column_not_null('employee', 'nope')
t|taskslaps.column_not_null('MixedCase', 'Col')
f|taskslaps.column_not_null('MixedCase', 'lower_col')
f|taskslaps.column_not_null('nosuchschema.employee', 'name')
t|taskslaps.index_exists('employee_name_idx')
t|taskslaps.index_exists('public.employee_name_idx')
t|taskslaps.index_valid('employee_name_idx')
t|taskslaps.index_exists('MixedIdx')
f|taskslaps.index_exists('mixedidx')
t|taskslaps.index_valid('MixedIdx')
f|taskslaps.index_exists('employee')
f|taskslaps.index_exists('no_such_idx')
f|taskslaps.index_exists('nosuchschema.employee_name_idx')
t|taskslaps.index_exists('app.things_id_uq')
f|taskslaps.index_valid('app.things_id_uq')
f|taskslaps.index_valid('no_such_idx')
f|taskslaps.index_valid('nosuchschema.things_id_uq')
t|taskslaps.index_exists('employee_pkey')
t|taskslaps.constraint_exists('employee', 'employee_pkey')
t|taskslaps.constraint_exists('employee', 'employee_coffee_pos')
t|taskslaps.constraint_valid('employee', 'employee_coffee_pos')
t|taskslaps.constraint_exists('public.employee', 'employee_coffee_nv')
f|taskslaps.constraint_valid('public.employee', 'employee_coffee_nv')
f|taskslaps.constraint_exists('employee', 'EMPLOYEE_PKEY')
f|taskslaps.constraint_exists('employee', 'nope')
f|taskslaps.constraint_valid('employee', 'nope')
f|taskslaps.constraint_exists('nosuchschema.employee', 'employee_pkey')
f|taskslaps.constraint_valid('no_such_table', 'employee_pkey')
EOF

# Unqualified names follow the caller's search_path.
assert_eq "table_exists('things') with search_path app" "t" \
    "$(q tsdb ts_owner "SET search_path = app; SELECT taskslaps.table_exists('things')")"
assert_eq "index_valid('things_id_uq') with search_path app" "f" \
    "$(q tsdb ts_owner "SET search_path = app; SELECT taskslaps.index_valid('things_id_uq')")"
assert_eq "table_exists('employee') with empty search_path" "f" \
    "$(q tsdb ts_owner "SET search_path = ''; SELECT taskslaps.table_exists('employee')")"
assert_eq "table_exists('public.employee') with empty search_path" "t" \
    "$(q tsdb ts_owner "SET search_path = ''; SELECT taskslaps.table_exists('public.employee')")"

###########################################################################
# 5. CHECK constraints of the state tables.
expect_error "events.type is checked" "events_type_check" \
    q tsdb ts_owner "INSERT INTO taskslaps.events (target, type) VALUES ('a', 'plan.bogus')"
expect_error "plans.status is checked" "plans_status_check" \
    q tsdb ts_owner "INSERT INTO taskslaps.plans (target, plan_id, status) VALUES ('a', 'p', 'done')"
assert_eq "plans.status accepts the statuses a revert plan leaves" "3" \
    "$(q tsdb ts_owner "WITH i AS (INSERT INTO taskslaps.plans (target, plan_id, status) VALUES
         ('rv', 'p1', 'reverted'), ('rv', 'p2', 'reverted to expand'), ('rv', 'p3', 'reverted to validate')
         RETURNING 1) SELECT count(*) FROM i")"
q tsdb ts_owner "DELETE FROM taskslaps.plans WHERE target = 'rv'" >/dev/null
expect_error "plans.status: a revert to contract leaves nothing undone" "plans_status_check" \
    q tsdb ts_owner "INSERT INTO taskslaps.plans (target, plan_id, status) VALUES ('a', 'p', 'reverted to contract')"
assert_eq "events.type accepts plan.reverted" "1" \
    "$(q tsdb ts_owner "WITH i AS (INSERT INTO taskslaps.events (target, type) VALUES ('rv', 'plan.reverted') RETURNING 1) SELECT count(*) FROM i")"
q tsdb ts_owner "DELETE FROM taskslaps.events WHERE target = 'rv'" >/dev/null
expect_error "step_ledger.outcome is checked" "step_ledger_outcome_check" \
    q tsdb ts_owner "INSERT INTO taskslaps.step_ledger (step_sha, target, plan_id, wave, step_index, op, hazard, outcome)
                     VALUES ('s', 'a', 'p', 'expand', 0, 'add_column', 'H1', 'maybe')"
expect_error "backfill_progress.last_key must be an array" "backfill_progress_last_key_check" \
    q tsdb ts_owner "INSERT INTO taskslaps.backfill_progress (step_sha, target, last_key) VALUES ('s', 'a', '{\"id\": 1}')"
assert_eq "event defaults" "t|t" \
    "$(q tsdb ts_owner "WITH e AS (INSERT INTO taskslaps.events (target, type) VALUES ('a', 'governor.healthy') RETURNING *)
                        SELECT id > 0, at IS NOT NULL FROM e")"

###########################################################################
# 6. NOTIFY: one session LISTENs, another inserts; psql reports the
#    notification after its next command.
ins="$TS_PG_BIN/psql -X -q -v ON_ERROR_STOP=1 -d tsdb -U ts_owner"
out=$(pg_psql -d tsdb -U ts_owner 2>&1 <<EOF
LISTEN taskslaps_events;
\\! $ins -c "INSERT INTO taskslaps.events (target, plan_id, type, message, metrics) VALUES ('a', 'p1', 'plan.start', 'hello notify', '{\"rows\": 3}')"
SELECT 1;
EOF
)
assert_contains "LISTEN session got the event" 'Asynchronous notification "taskslaps_events" with payload' "$out"
assert_contains "payload has the target" '"target": "a"' "$out"
assert_contains "payload has the type" '"type": "plan.start"' "$out"
assert_contains "payload has the plan" '"plan_id": "p1"' "$out"
assert_match "payload has the id" '"id": [0-9]+' "$out"
# any role that can connect may LISTEN: the text is read from the table, under its RLS
assert_not_contains "payload has no message" "hello notify" "$out"
assert_not_contains "payload has no metrics" '"metrics"' "$out"

out=$(pg_psql -d tsdb -U ts_owner 2>&1 <<EOF
LISTEN taskslaps_events;
INSERT INTO taskslaps.events (target, type, message, metrics) VALUES ('a', 'step.error', repeat('x', 20000), '{"kept": 1}');
INSERT INTO taskslaps.events (target, type, message) VALUES ('a', 'step.error', repeat('é"', 9000));
INSERT INTO taskslaps.events (target, type, metrics) VALUES ('a', 'step.progress', jsonb_build_object('blob', repeat('m', 9000)));
INSERT INTO taskslaps.events (target, plan_id, type) VALUES ('a', repeat('p', 9000), 'plan.start');
EOF
)
n=$(printf '%s\n' "$out" | grep -c 'Asynchronous notification "taskslaps_events"')
assert_eq "four events with long fields notified" 4 "$n"
assert_not_contains "no message in any payload" "xxxxxxxxxx" "$out"
assert_not_contains "... nor the metrics" "mmmmmmmmmm" "$out"
assert_eq "a long plan id is cut, and marked truncated" 1 "$(printf '%s\n' "$out" | grep -c '"truncated": true')"
maxlen=$(printf '%s\n' "$out" | grep 'Asynchronous notification' | awk '{ print length($0) }' | sort -n | tail -1)
if [ "${maxlen:-0}" -gt 0 ] && [ "$maxlen" -lt 1200 ]; then pass "notification lines stay short"; else
    fail "notification lines stay short" "longest line: $maxlen"
fi
assert_eq "full message kept in the table" 20000 \
    "$(q tsdb ts_owner "SELECT max(length(message)) FROM taskslaps.events WHERE type = 'step.error'")"

# The trigger does not pin search_path (a SET clause costs every event a
# configuration change): every name in it is pg_catalog-qualified, so an
# inserter whose search_path puts look-alikes (functions, operators) before
# pg_catalog runs none.
q tsdb ts_owner "CREATE SCHEMA lookalike;
    CREATE FUNCTION lookalike.left(text, integer) RETURNS text LANGUAGE sql AS \$\$SELECT 'forged'\$\$;
    CREATE FUNCTION lookalike.jsonb_build_object(text, bigint, text, text, text, text, text, text)
        RETURNS jsonb LANGUAGE sql AS \$\$SELECT '{\"forged\": true}'::pg_catalog.jsonb\$\$;
    CREATE FUNCTION lookalike.pg_notify(text, text) RETURNS void LANGUAGE sql AS \$\$SELECT\$\$;
    CREATE FUNCTION lookalike.char_length(text) RETURNS integer LANGUAGE sql AS \$\$SELECT 999\$\$;
    CREATE FUNCTION lookalike.gt(integer, integer) RETURNS boolean LANGUAGE sql AS \$\$SELECT true\$\$;
    CREATE OPERATOR lookalike.> (LEFTARG = integer, RIGHTARG = integer, FUNCTION = lookalike.gt);
    CREATE FUNCTION lookalike.cat(jsonb, jsonb) RETURNS jsonb LANGUAGE sql
        AS \$\$SELECT '{\"forged\": true}'::pg_catalog.jsonb\$\$;
    CREATE OPERATOR lookalike.|| (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = lookalike.cat)" >/dev/null
assert_eq "look-alikes of left, jsonb_build_object, pg_notify, char_length, > and ||" "6|2" \
    "$(q tsdb ts_owner "SELECT (SELECT count(*) FROM pg_proc WHERE pronamespace = 'lookalike'::regnamespace),
        (SELECT count(*) FROM pg_operator WHERE oprnamespace = 'lookalike'::regnamespace)")"
out=$(pg_psql -d tsdb -U ts_owner 2>&1 <<EOF
LISTEN taskslaps_events;
SET search_path = lookalike, pg_catalog;
INSERT INTO taskslaps.events (target, plan_id, type) VALUES ('a', 'p-look', 'plan.start');
INSERT INTO taskslaps.events (target, plan_id, type) VALUES ('a', 'p-look-' || repeat('x', 500), 'plan.start');
EOF
)
assert_contains "a look-alike search_path: the event is still notified" '"plan_id": "p-look"' "$out"
assert_not_contains "... by pg_catalog's functions and operators, not the look-alikes" "forged" "$out"
assert_eq "... the short one not marked truncated, the long one marked" 1 \
    "$(printf '%s\n' "$out" | grep -c '"truncated": true')"
q tsdb ts_owner "DROP SCHEMA lookalike CASCADE; DELETE FROM taskslaps.events WHERE plan_id LIKE 'p-look%'" >/dev/null
assert_eq "events_notify carries no SET clause" "" \
    "$(q tsdb ts_owner "SELECT proconfig FROM pg_proc WHERE oid = 'taskslaps.events_notify()'::regprocedure")"
# The CHECK constraints take their words from IMMUTABLE functions (evaluated
# once a statement, not read from the constraint's stored form each time).
assert_eq "the vocabulary functions are immutable" "event_types|i
hazard_classes|i
plan_statuses|i
step_outcomes|i
wave_names|i" \
    "$(q tsdb ts_owner "SELECT proname, provolatile FROM pg_proc WHERE pronamespace = 'taskslaps'::regnamespace
        AND proname IN ('event_types', 'hazard_classes', 'plan_statuses', 'step_outcomes', 'wave_names') ORDER BY 1")"
assert_eq "events.type's check reads event_types()" "CHECK ((type = ANY (taskslaps.event_types())))" \
    "$(q tsdb ts_owner "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'events_type_check'")"
expect_error "step_ledger.wave is checked" "step_ledger_wave_check" \
    q tsdb ts_owner "INSERT INTO taskslaps.step_ledger (step_sha, target, plan_id, wave, step_index, op, hazard)
                     VALUES ('s', 'a', 'p', 'cleanup', 0, 'add_column', 'H1')"
expect_error "step_ledger.hazard is checked" "step_ledger_hazard_check" \
    q tsdb ts_owner "INSERT INTO taskslaps.step_ledger (step_sha, target, plan_id, wave, step_index, op, hazard)
                     VALUES ('s', 'a', 'p', 'expand', 0, 'add_column', 'H4')"
expect_error "plans.max_hazard is checked" "plans_max_hazard_check" \
    q tsdb ts_owner "INSERT INTO taskslaps.plans (target, plan_id, max_hazard) VALUES ('a', 'p', 'h1')"

###########################################################################
# 7. Readers and row-level security.
assert_eq "ensure_target_reader('a')" taskslaps_reader_a "$(q tsdb ts_owner "SELECT taskslaps.ensure_target_reader('a')")"
assert_eq "ensure_target_reader('a') again" taskslaps_reader_a "$(q tsdb ts_owner "SELECT taskslaps.ensure_target_reader('a')")"
assert_eq "ensure_target_reader('b')" taskslaps_reader_b "$(q tsdb ts_owner "SELECT taskslaps.ensure_target_reader('b')")"
assert_eq "per-target role is NOLOGIN and in taskslaps_reader" "f|t" \
    "$(q postgres postgres "SELECT rolcanlogin, pg_has_role(oid, 'taskslaps_reader', 'MEMBER') FROM pg_roles WHERE rolname = 'taskslaps_reader_a'")"
for bad in "'Bad'" "'a-b'" "'a; DROP ROLE x'" "''" "NULL" "'1a'" "'$(printf 'a%.0s' $(seq 42))'"; do
    expect_error "ensure_target_reader($bad) refused" "invalid target name" \
        q tsdb ts_owner "SELECT taskslaps.ensure_target_reader($bad)"
done

q postgres postgres "GRANT taskslaps_reader, taskslaps_reader_a TO ts_reader;
                     GRANT taskslaps_reader TO ts_reader_all_targets_none;
                     GRANT CONNECT ON DATABASE tsdb TO ts_stranger" >/dev/null
q tsdb ts_owner "
    INSERT INTO taskslaps.events (target, type, message) VALUES
        ('a', 'plan.ok', 'for a'), ('b', 'plan.ok', 'for b'), ('b', 'plan.failed', 'for b'),
        ('c', 'plan.ok', 'target without a reader role'), ('Aa', 'plan.ok', 'odd target');
    INSERT INTO taskslaps.plans (target, plan_id, status) VALUES ('a', 'p1', 'applied'), ('b', 'p1', 'failed');
    INSERT INTO taskslaps.step_ledger (step_sha, target, plan_id, wave, step_index, op, hazard)
        VALUES ('sha-a', 'a', 'p1', 'expand', 0, 'add_column', 'H1'),
               ('sha-b', 'b', 'p1', 'expand', 0, 'add_column', 'H1');
    INSERT INTO taskslaps.backfill_progress (step_sha, target, last_key, rows_done)
        VALUES ('sha-a', 'a', '[\"42\"]', 42);" >/dev/null

na=$(q tsdb ts_owner "SELECT count(*) FROM taskslaps.events WHERE target = 'a'")
assert_eq "reader sees target a's events" "$na" "$(q tsdb ts_reader "SELECT count(*) FROM taskslaps.events WHERE target = 'a'")"
assert_eq "reader sees no events of target b" 0 "$(q tsdb ts_reader "SELECT count(*) FROM taskslaps.events WHERE target = 'b'")"
assert_eq "reader sees only target a in events" "a" "$(q tsdb ts_reader "SELECT string_agg(DISTINCT target, ',') FROM taskslaps.events")"
assert_eq "reader sees only target a in plans" "a" "$(q tsdb ts_reader "SELECT string_agg(target, ',') FROM taskslaps.plans")"
assert_eq "reader sees only target a in step_ledger" "sha-a" "$(q tsdb ts_reader "SELECT string_agg(step_sha, ',') FROM taskslaps.step_ledger")"
assert_eq "reader of no target sees nothing" 0 "$(q tsdb ts_reader_all_targets_none "SELECT count(*) FROM taskslaps.events")"
assert_eq "owner sees every target (RLS not forced)" "Aa,a,b,c" \
    "$(q tsdb ts_owner "SELECT string_agg(DISTINCT target, ',' ORDER BY target) FROM taskslaps.events")"
assert_eq "reader may call the check helpers" "t" "$(q tsdb ts_reader "SELECT taskslaps.table_exists('taskslaps.events')")"

expect_error "reader cannot INSERT into step_ledger" "permission denied" \
    q tsdb ts_reader "INSERT INTO taskslaps.step_ledger (step_sha, target, plan_id, wave, step_index, op, hazard)
                      VALUES ('x', 'a', 'p', 'expand', 0, 'sql', 'H3')"
expect_error "reader cannot UPDATE step_ledger" "permission denied" \
    q tsdb ts_reader "UPDATE taskslaps.step_ledger SET outcome = 'applied'"
expect_error "reader cannot DELETE from step_ledger" "permission denied" \
    q tsdb ts_reader "DELETE FROM taskslaps.step_ledger"
expect_error "reader cannot write events" "permission denied" \
    q tsdb ts_reader "INSERT INTO taskslaps.events (target, type) VALUES ('a', 'plan.ok')"
expect_error "reader cannot update plans" "permission denied" \
    q tsdb ts_reader "UPDATE taskslaps.plans SET status = 'applied'"
expect_error "reader cannot SELECT backfill_progress" "permission denied" \
    q tsdb ts_reader "SELECT * FROM taskslaps.backfill_progress"
expect_error "reader cannot INSERT into backfill_progress" "permission denied" \
    q tsdb ts_reader "INSERT INTO taskslaps.backfill_progress (step_sha, target) VALUES ('x', 'a')"
expect_error "reader cannot read schema_version" "permission denied" \
    q tsdb ts_reader "SELECT * FROM taskslaps.schema_version"
expect_error "reader cannot call ensure_target_reader" "permission denied" \
    q tsdb ts_reader "SELECT taskslaps.ensure_target_reader('z')"
expect_error "reader cannot TRUNCATE events" "permission denied" \
    q tsdb ts_reader "TRUNCATE taskslaps.events"
expect_error "non-reader cannot use the schema" "permission denied" \
    q tsdb ts_stranger "SELECT count(*) FROM taskslaps.events"

# Re-install with data present: nothing changes, no rows lost, grants kept.
before=$(q tsdb ts_owner "SELECT count(*) FROM taskslaps.events")
install tsdb ts_owner
assert_eq "re-install with data" 0 $?
assert_eq "events kept" "$before" "$(q tsdb ts_owner "SELECT count(*) FROM taskslaps.events")"
assert_eq "reader still sees target a only after re-install" "a" \
    "$(q tsdb ts_reader "SELECT string_agg(DISTINCT target, ',') FROM taskslaps.events")"
assert_eq "policy definitions unchanged" "3" \
    "$(q tsdb ts_owner "SELECT count(*) FROM pg_policy WHERE polname = 'reader_by_target'")"

assert_finish
