-- The fingerprint of a database after a torture run (tests/torture/lib.sh:
-- fingerprint DB). Every line is sorted text that must be identical between
-- a run that was interrupted and the uninterrupted reference:
--   catalog   tables, columns (type, nullability, default), indexes
--             (definition, indisvalid, indisready), constraints (definition,
--             convalidated), views, triggers; outside the taskslaps schema
--   data      row count and md5 of every user table's rows in primary key order
--   ledger    each step of taskslaps.step_ledger with the number of its rows
--   plans     each plan's recorded status
--   backfill  whether each backfill checkpoint reached its upper key
-- No OIDs, times or pids: only what the plans decide.
\pset footer off
SELECT line FROM (
    SELECT format('table %s.%s kind=%s', n.nspname, c.relname, c.relkind) AS line
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'taskslaps')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
    UNION ALL
    SELECT format('column %s.%s.%s %s %s default=%s', n.nspname, c.relname, a.attname,
                  format_type(a.atttypid, a.atttypmod),
                  CASE WHEN a.attnotnull THEN 'not-null' ELSE 'null' END,
                  coalesce(pg_get_expr(d.adbin, d.adrelid), '-'))
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'taskslaps')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
    UNION ALL
    SELECT format('index %s.%s valid=%s ready=%s: %s', n.nspname, ic.relname, i.indisvalid,
                  i.indisready, pg_get_indexdef(i.indexrelid))
      FROM pg_index i
      JOIN pg_class ic ON ic.oid = i.indexrelid
      JOIN pg_namespace n ON n.oid = ic.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'taskslaps')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
    UNION ALL
    SELECT format('constraint %s.%s on %s type=%s validated=%s: %s', n.nspname, con.conname,
                  con.conrelid::regclass, con.contype, con.convalidated,
                  pg_get_constraintdef(con.oid))
      FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'taskslaps')
    UNION ALL
    SELECT format('view %s.%s: %s', schemaname, viewname, regexp_replace(definition, '\s+', ' ', 'g'))
      FROM pg_views
     WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'taskslaps')
    UNION ALL
    SELECT format('trigger %s on %s enabled=%s: %s', t.tgname, t.tgrelid::regclass, t.tgenabled,
                  pg_get_triggerdef(t.oid))
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT t.tgisinternal AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'taskslaps')
    UNION ALL
    SELECT format('ledger %s %s #%s %s x%s', plan_id, wave, step_index, op, count(*))
      FROM taskslaps.step_ledger GROUP BY plan_id, wave, step_index, op
    UNION ALL
    SELECT format('plan %s %s', plan_id, status) FROM taskslaps.plans
    UNION ALL
    SELECT format('backfill %s complete=%s', l.plan_id, b.last_key = b.upper_key)
      FROM taskslaps.backfill_progress b LEFT JOIN taskslaps.step_ledger l USING (step_sha)
) s ORDER BY line COLLATE "C";

-- One query per user table: its row count and the md5 of its rows in key order.
SELECT format('SELECT %L || '' rows='' || count(*) || '' md5='' || coalesce(md5(string_agg(t::text, E''\n'' ORDER BY %s)), ''-'') FROM %I.%I t',
              'data ' || n.nspname || '.' || c.relname,
              coalesce((SELECT string_agg(format('t.%I', a.attname), ', ' ORDER BY array_position(i.indkey::int2[], a.attnum))
                          FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                         WHERE i.indrelid = c.oid AND i.indisprimary), 't::text'),
              n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'taskslaps')
   AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
 ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"
\gexec
