-- taskslaps state schema, part 3: privileges, the reader roles and
-- row-level security.
--
-- The role that runs the install (the daemon's role) owns everything and is
-- not subject to row-level security (it is ENABLEd, not FORCEd).
-- taskslaps_reader may read plans, step_ledger and events and nothing else.
-- Where several targets share a database, a reader sees the rows of target T
-- only when it is also a member of taskslaps_reader_T; those per-target roles
-- are made by taskslaps.ensure_target_reader(T).

SET LOCAL search_path = pg_catalog, pg_temp;
-- Re-runs are the normal case; their "already exists, skipping" notices are noise.
SET LOCAL client_min_messages = warning;

-- Roles are cluster-wide and need CREATEROLE. An installer without it still
-- gets a working schema; the reader role is then the DBA's job.
DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'taskslaps_reader') THEN
        BEGIN
            CREATE ROLE taskslaps_reader NOLOGIN;
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE WARNING 'taskslaps: role taskslaps_reader not created: %', SQLERRM
                    USING HINT = 'Create it as a role with CREATEROLE (CREATE ROLE taskslaps_reader NOLOGIN) and install again.';
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's installer created it meanwhile
        END;
    END IF;
END
$do$;

-- Nothing in the schema is anybody's but the owner's, unless granted below.
REVOKE ALL ON SCHEMA taskslaps FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA taskslaps FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA taskslaps FROM PUBLIC;

-- Readers: USAGE on the schema and SELECT on exactly three tables. Revoke
-- first so a hand-made extra grant does not survive a re-install. The check
-- helpers stay executable by PUBLIC (functions' default); they only read the
-- catalogs with the caller's rights.
DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'taskslaps_reader') THEN
        RETURN;
    END IF;
    REVOKE ALL ON ALL TABLES IN SCHEMA taskslaps FROM taskslaps_reader;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA taskslaps FROM taskslaps_reader;
    GRANT USAGE ON SCHEMA taskslaps TO taskslaps_reader;
    GRANT SELECT ON taskslaps.plans, taskslaps.step_ledger, taskslaps.events TO taskslaps_reader;
END
$do$;

-- Row-level security on the three readable tables. Only touched when not
-- yet enabled: ALTER TABLE takes an ACCESS EXCLUSIVE lock, which a restart
-- of the daemon should not need on every run.
--
-- The policy admits a row of target T when the reader is a member of
-- taskslaps_reader_T. It looks the role up with to_regrole (NULL, so the row
-- is hidden, when there is no such role): pg_has_role() by name would raise
-- "role does not exist" for any target without a reader role and make the
-- whole query fail. quote_ident keeps the lookup exact (no case folding).
DO $do$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['plans', 'step_ledger', 'events'] LOOP
        IF NOT (SELECT c.relrowsecurity FROM pg_class c
                 WHERE c.oid = format('taskslaps.%I', t)::regclass) THEN
            EXECUTE format('ALTER TABLE taskslaps.%I ENABLE ROW LEVEL SECURITY', t);
        END IF;
        -- Without the role there is no policy: non-owners then see no rows.
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'taskslaps_reader') THEN
            PERFORM taskslaps._install_policy(format('taskslaps.%I', t)::regclass, 'reader_by_target',
                $$FOR SELECT TO taskslaps_reader USING (
                    pg_catalog.pg_has_role(CURRENT_USER,
                        pg_catalog.to_regrole(pg_catalog.quote_ident('taskslaps_reader_' || target))::oid,
                        'MEMBER'))$$);
        END IF;
    END LOOP;
END
$do$;

-- taskslaps.ensure_target_reader('prod') creates the NOLOGIN role
-- taskslaps_reader_prod, member of taskslaps_reader, if missing, and returns
-- its name; grant that role to the people who may read target prod's rows.
-- SECURITY DEFINER so the daemon (owner of this function) can create it with
-- its own CREATEROLE; search_path is pinned and the target is checked against
-- a strict pattern before it becomes part of a role name.
CREATE OR REPLACE FUNCTION taskslaps.ensure_target_reader(target text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    role_name text;
BEGIN
    IF target IS NULL OR target !~ '^[a-z][a-z0-9_]{0,40}$' THEN
        RAISE EXCEPTION 'taskslaps: invalid target name %', coalesce(quote_literal(target), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A target name matches ^[a-z][a-z0-9_]{0,40}$.';
    END IF;
    role_name := 'taskslaps_reader_' || target;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN IN ROLE taskslaps_reader', role_name);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- a concurrent call created it
        END;
    END IF;
    -- A role of that name made by hand may lack the membership.
    IF NOT pg_has_role(role_name, 'taskslaps_reader', 'MEMBER') THEN
        EXECUTE format('GRANT taskslaps_reader TO %I', role_name);
    END IF;
    RETURN role_name;
END
$fn$;

-- It creates roles with the owner's rights: only the owner may call it.
REVOKE ALL ON FUNCTION taskslaps.ensure_target_reader(text) FROM PUBLIC;

INSERT INTO taskslaps.schema_version (version) VALUES (3) ON CONFLICT DO NOTHING;
