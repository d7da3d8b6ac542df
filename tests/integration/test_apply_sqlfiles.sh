#!/usr/bin/env bash
# Plain .sql plans beside YAML ones, applied against PostgreSQL 15: every
# statement a step, CONCURRENTLY outside a transaction, the derived locks
# proved at run time, a reformatted file is no drift and an edited value is.
#
#   bash tests/integration/test_apply_sqlfiles.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

###########################################################################
section "a directory that mixes YAML and SQL"
newdb mixed
P=$W/mixed
plan "$P/0001-accounts.sql" <<'EOF'
-- title: Accounts
-- reason: sign-up needs them

CREATE TABLE accounts (id bigint PRIMARY KEY, email text);
INSERT INTO accounts SELECT g, 'User' || g || '@Example.test' FROM generate_series(1, 500) g;
CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);
COMMENT ON TABLE accounts IS 'one row per sign-up';
EOF
plan "$P/0002-nickname.yaml" <<'EOF'
title: Nicknames
reason: integration test
steps:
  - { op: add_column, table: accounts, name: nickname, type: text }
EOF
plan "$P/0003-lower.sql" <<'EOF'
UPDATE accounts SET email = lower(email) WHERE email <> lower(email);
ALTER TABLE accounts ADD CONSTRAINT email_lower CHECK (email = lower(email)) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT email_lower;
EOF
run_ctl lint "$P"
assert_rc "lint: the UPDATE is a finding" 1 "$RC" "$OUT"
assert_contains "lint: the rule and where" "0003-lower.sql:1:1: warning: sql: [S011 dml-in-sql-step]" "$OUT"
run_ctl apply "$P"
assert_rc "apply exits 0" 0 "$RC" "$ERR"
assert_sql "every plan applied" "0001-accounts applied|0002-nickname applied|0003-lower applied" \
    "SELECT string_agg(plan_id || ' ' || status, '|' ORDER BY plan_id) FROM taskslaps.plans"
assert_sql "one ledger row per statement and step" "8" "SELECT count(*) FROM taskslaps.step_ledger"
assert_sql "the index was built concurrently and is valid" "t" \
    "SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_email'::regclass"
assert_sql "the rows were lowered and the check validated" "0|t" \
    "SELECT (SELECT count(*) FROM accounts WHERE email <> lower(email)),
            (SELECT convalidated FROM pg_constraint WHERE conname = 'email_lower')"
assert_sql "the statements ran under their derived hazards" "H0|H1|H2|H3" \
    "SELECT string_agg(DISTINCT hazard, '|' ORDER BY hazard) FROM taskslaps.step_ledger"
checksum=$(q "SELECT checksum FROM taskslaps.plans WHERE plan_id = '0001-accounts'")

###########################################################################
section "a reformatted file is no drift; an edited value is"
cat >"$P/0001-accounts.sql" <<'EOF'
-- title: Accounts
-- reason: sign-up needs them
create table ACCOUNTS (
    id BIGINT primary key,  -- the key
    email TEXT
);
insert into accounts select g, 'User' || g || '@Example.test' from generate_series(1, 500) g;
CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);
/* what the table is */
COMMENT ON TABLE accounts IS 'one row per sign-up';
EOF
run_ctl apply "$P"
assert_rc "apply of the reformatted file exits 0" 0 "$RC" "$ERR"
assert_sql "same checksum, still applied, nothing ran again" "applied|$checksum|8" \
    "SELECT status, checksum, (SELECT count(*) FROM taskslaps.step_ledger) FROM taskslaps.plans WHERE plan_id = '0001-accounts'"
sed -i "s/'one row per sign-up'/'one row per account'/" "$P/0001-accounts.sql"
run_ctl apply "$P"
assert_rc "apply of the edited file exits 1" 1 "$RC" "$ERR"
assert_contains "the edit is drift" "0001-accounts drift" "$ERR"
assert_sql "the comment was not changed" "one row per sign-up" \
    "SELECT obj_description('accounts'::regclass, 'pg_class')"

###########################################################################
section "a derived promise is proved: a trigger that locks harder fails the step"
newdb proof
q "CREATE TABLE audit (n int);
   CREATE TABLE t (id int PRIMARY KEY, v int);
   INSERT INTO t VALUES (1, 1);
   CREATE FUNCTION lock_audit() RETURNS trigger LANGUAGE plpgsql AS
     \$\$ BEGIN LOCK TABLE audit IN ACCESS EXCLUSIVE MODE; RETURN NEW; END \$\$;
   CREATE TRIGGER t_lock BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION lock_audit();" >/dev/null
plan "$W/proof/0001-bump.sql" <<'EOF'
UPDATE t SET v = v + 1;
EOF
run_ctl apply "$W/proof"
assert_rc "apply fails" 1 "$RC" "$ERR"
assert_contains "the evidence names the lock on audit" "AccessExclusiveLock on audit" "$ERR"
assert_contains "... and the derived promise" "lock_class_max is RowExclusiveLock" "$ERR"
assert_sql "rolled back" "1" "SELECT v FROM t"
###########################################################################
section "a CREATE INDEX CONCURRENTLY killed half-way is rebuilt by the next run"
newdb cic
q "CREATE TABLE wide (id bigint NOT NULL, payload text NOT NULL);
   INSERT INTO wide SELECT g, md5(g::text) FROM generate_series(1, 200000) g;" >/dev/null
plan "$W/cic/0001-index.sql" <<'EOF'
CREATE INDEX CONCURRENTLY wide_payload_idx ON wide (payload, id);
EOF
# A writer the build must wait for, so that it is caught in the middle.
start_bg writer "$PSQL" -X -q -d "$CONNINFO" -c \
    "BEGIN; LOCK TABLE wide IN ROW EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;"
writer=$BG_PID
wait_for "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
          WHERE l.relation = 'wide'::regclass AND l.granted AND a.query LIKE 'BEGIN; LOCK TABLE wide%')" 10 ||
    fail "the writer did not take its lock"
start_ctl_bg apply1 apply "$W/cic"
apply1=$BG_PID
CIC="SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'
     AND application_name LIKE 'taskslaps:%' AND query LIKE 'CREATE INDEX CONCURRENTLY%'"
wait_for "SELECT EXISTS ($CIC)" 20 "$apply1" || fail "the build did not start"
cic=$(q "$CIC LIMIT 1")
kill -KILL "$apply1"
wait "$apply1" 2>/dev/null
# as if the server side died with it: the half-built index stays, INVALID
q "SELECT pg_terminate_backend($cic)" >/dev/null
wait_for "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $cic)" 10
assert_sql "the killed build left an INVALID index" "t" \
    "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = 'wide_payload_idx'::regclass"
wait_bg "$writer" 20
run_ctl apply "$W/cic"
assert_rc "the next run exits 0" 0 "$RC" "$ERR"
assert_sql "the index is valid now" "t" \
    "SELECT indisvalid FROM pg_index WHERE indexrelid = 'wide_payload_idx'::regclass"
assert_sql "it dropped the INVALID one and built it again" "1" \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'step.retry'
       AND message LIKE 'index wide_payload_idx is INVALID (left by an earlier build)%'"
assert_sql "one ledger row" "1" "SELECT count(*) FROM taskslaps.step_ledger"
env_finish
