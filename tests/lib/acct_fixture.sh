#!/usr/bin/env bash
# The acct fixture of the rollback and revert tests (test_apply_rollback.sh,
# test_apply_revert.sh), sourced after apply_env.sh: a table with one bad
# row, a fingerprint of the schema's shape, and the expand and validate
# waves both tests build their plans from.
SETUP="
CREATE TABLE acct (id bigint PRIMARY KEY, v int NOT NULL, nick text, bal int NOT NULL,
                   upd int NOT NULL DEFAULT 0);
INSERT INTO acct SELECT g, g, 'n' || g, g % 100, 0 FROM generate_series(1, 2000) g;
UPDATE acct SET v = -1 WHERE id = 7;
-- Counts every update of every row: a batch applied twice shows as 2.
CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    NEW.upd := OLD.upd + 1;
    RETURN NEW;
END
\$\$;
CREATE TRIGGER acct_count_update BEFORE UPDATE ON acct FOR EACH ROW EXECUTE FUNCTION count_update();"

# The schema's shape: relations, columns (type, NOT NULL, default),
# constraints (definition, validated), indexes of public.
FINGERPRINT="
SELECT md5(coalesce(string_agg(x, E'\n' ORDER BY x), '')) FROM (
  SELECT 'rel ' || c.oid::regclass::text || ' ' || c.relkind::text
    FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'col ' || c.oid::regclass::text || '.' || a.attname || ' ' || a.attnum || ' '
         || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' '
         || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'con ' || k.conrelid::regclass::text || ' ' || k.conname || ' '
         || pg_get_constraintdef(k.oid) || ' ' || k.convalidated
    FROM pg_constraint k WHERE k.connamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'idx ' || pg_get_indexdef(i.indexrelid) || ' ' || i.indisvalid
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE c.relnamespace = 'public'::regnamespace
) f(x)"
fingerprint() {
    local fp
    fp=$(q "$FINGERPRINT" 2>&1)
    [[ $fp =~ ^[0-9a-f]{32}$ ]] || fail "the fingerprint query works" "$fp"
    printf '%s' "$fp"
}
rows_of() {
    q "SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM (SELECT id, v, nick, bal FROM acct) t"
}
# setup_db NAME: a fresh database with acct (one bad row: id 7 has v = -1).
setup_db() {
    newdb "$1"
    q "$SETUP" >/dev/null || {
        echo "setup of $1 failed" >&2
        exit 1
    }
}

EXPAND='  - name: expand
    steps:
      - { op: add_column, table: acct, name: score, type: int }
      - { op: add_index_concurrently, table: acct, name: acct_nick_idx, columns: [nick] }
      - { op: add_check_not_valid, table: acct, name: acct_v_pos, check: "v >= 0" }'
VALIDATE='  - name: validate
    steps:
      - { op: set_not_null, table: acct, column: nick }
      - { op: validate_constraint, table: acct, name: acct_v_pos }'
