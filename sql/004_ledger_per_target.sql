-- taskslaps state schema, part 4: the ledger and the backfill checkpoints
-- are keyed per target.
--
-- Versions up to 3 keyed step_ledger and backfill_progress by step_sha
-- alone. A step_sha hashes the plan id, the wave, the index and the step,
-- not the target; so two targets on one database with a plan of the same id
-- and content shared ledger rows, and each skipped the other's steps (or
-- resumed the other's backfill). The key is now (target, step_sha). The
-- swap is guarded by a catalog check, so a re-install takes no lock.

SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL client_min_messages = warning;

DO $do$
DECLARE
    t    text;
    name text;
BEGIN
    FOREACH t IN ARRAY ARRAY['step_ledger', 'backfill_progress'] LOOP
        SELECT c.conname INTO name
          FROM pg_constraint c
         WHERE c.conrelid = format('taskslaps.%I', t)::regclass
           AND c.contype = 'p'
           AND c.conkey = ARRAY[(SELECT a.attnum FROM pg_attribute a
                                  WHERE a.attrelid = c.conrelid
                                    AND a.attname = 'step_sha')]::int2[];
        IF name IS NOT NULL THEN
            EXECUTE format('ALTER TABLE taskslaps.%I DROP CONSTRAINT %I', t, name);
            EXECUTE format('ALTER TABLE taskslaps.%I ADD CONSTRAINT %I PRIMARY KEY (target, step_sha)',
                           t, t || '_pkey');
        END IF;
    END LOOP;
END
$do$;

INSERT INTO taskslaps.schema_version (version) VALUES (4) ON CONFLICT DO NOTHING;
