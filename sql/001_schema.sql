-- taskslaps state schema, part 1: tables, indexes and CHECK constraints.
--
-- The files in sql/ are run in file-name order inside ONE transaction, by the
-- daemon at start and by `taskslapsctl install-schema`. Every statement is
-- idempotent: running the set again, or on a database installed by an older
-- version, converges on the same objects. New columns of later versions are
-- added with ALTER TABLE ... ADD COLUMN IF NOT EXISTS below the CREATE TABLE.

-- Serialize concurrent installers (two daemons starting together, or a daemon
-- and install-schema): without this, two CREATE TABLE IF NOT EXISTS can race
-- and one fails on a catalog unique index. The key is the ASCII of "tsinstal";
-- it must differ from the daemon's runner lock. Released at COMMIT/ROLLBACK.
SELECT pg_catalog.pg_advisory_xact_lock(8391166453825692012);

-- Resolve every name of this transaction from pg_catalog only, so no object in
-- the installer's search_path can stand in for a builtin. SET LOCAL ends with
-- the transaction; every taskslaps object below is schema-qualified.
SET LOCAL search_path = pg_catalog, pg_temp;
-- Re-runs are the normal case; their "already exists, skipping" notices are noise.
SET LOCAL client_min_messages = warning;

CREATE SCHEMA IF NOT EXISTS taskslaps;
COMMENT ON SCHEMA taskslaps IS 'taskslaps: migration ledger, plan status and audit events';

CREATE TABLE IF NOT EXISTS taskslaps.schema_version (
    version    int PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Install-time helper: make CHECK constraint CONNAME on TBL be exactly EXPR.
-- The expression's source is kept as the constraint's comment (with WORDS,
-- when given: the list a constraint takes from a function, see below); when
-- a later version edits EXPR or the words (say, a new event type) the
-- constraint is replaced, which checks every row, and when nothing changed
-- nothing is locked or re-validated.
CREATE OR REPLACE FUNCTION taskslaps._install_constraint(tbl regclass, conname text, expr text,
                                                         words text[])
RETURNS void
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    tag     text := 'taskslaps: CHECK (' || expr || ')'
                    || coalesce(' words: ' || array_to_string(words, ', '), '');
    present boolean;
    old_tag text;
BEGIN
    SELECT true, obj_description(c.oid, 'pg_constraint')
      INTO present, old_tag
      FROM pg_constraint c
     WHERE c.conrelid = tbl AND c.conname = _install_constraint.conname;
    IF present AND old_tag IS NOT DISTINCT FROM tag THEN
        RETURN;
    END IF;
    IF present THEN
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, conname);
    END IF;
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%s)', tbl, conname, expr);
    EXECUTE format('COMMENT ON CONSTRAINT %I ON %s IS %L', conname, tbl, tag);
END
$fn$;

-- The same without words (its own name: an older version's installer
-- replaces this one, and an overload would make its calls ambiguous).
CREATE OR REPLACE FUNCTION taskslaps._install_check(tbl regclass, conname text, expr text)
RETURNS void
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM taskslaps._install_constraint(tbl, conname, expr, NULL);
END
$fn$;

-- Same idea for row-level security policies (used by 003_roles.sql).
-- DEFINITION is everything after "CREATE POLICY name ON table".
CREATE OR REPLACE FUNCTION taskslaps._install_policy(tbl regclass, polname text, definition text)
RETURNS void
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    tag     text := 'taskslaps: ' || definition;
    present boolean;
    old_tag text;
BEGIN
    SELECT true, obj_description(p.oid, 'pg_policy')
      INTO present, old_tag
      FROM pg_policy p
     WHERE p.polrelid = tbl AND p.polname = _install_policy.polname;
    IF present AND old_tag IS NOT DISTINCT FROM tag THEN
        RETURN;
    END IF;
    IF present THEN
        EXECUTE format('DROP POLICY %I ON %s', polname, tbl);
    END IF;
    EXECUTE format('CREATE POLICY %I ON %s %s', polname, tbl, definition);
    EXECUTE format('COMMENT ON POLICY %I ON %s IS %L', polname, tbl, tag);
END
$fn$;

-- Installer-only helpers: nobody else may call them.
REVOKE ALL ON FUNCTION taskslaps._install_check(regclass, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION taskslaps._install_constraint(regclass, text, text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION taskslaps._install_policy(regclass, text, text) FROM PUBLIC;

-- The words the CHECK constraints below allow, one function a list. A
-- constraint "col IN (...)" is read from its stored form at every INSERT or
-- UPDATE of its table (several KB for the event types, some 15 microseconds
-- a statement, paid by every step's events); "col = ANY (f())" with f an
-- IMMUTABLE function of no arguments is evaluated once a statement, from
-- PL/pgSQL's compiled body, kept for the session. The constraint's comment
-- records the words (_install_constraint's WORDS), so an install that changes
-- them, a later version adding one or an older one installed again without
-- it, replaces the constraint and so checks every row: an install that
-- would leave a row outside its list fails, as with an IN list. Anybody may
-- call them (granted explicitly, whatever the database's default
-- privileges): whoever writes the tables needs to.
CREATE OR REPLACE FUNCTION taskslaps.plan_statuses()
RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
AS $fn$
BEGIN
    RETURN ARRAY['pending', 'running', 'applied', 'failed', 'blocked', 'drift',
                 'rate_limited', 'aborted', 'invalid', 'reverted', 'reverted to expand',
                 'reverted to backfill', 'reverted to validate'];
END
$fn$;

CREATE OR REPLACE FUNCTION taskslaps.hazard_classes()
RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
AS $fn$
BEGIN
    RETURN ARRAY['H0', 'H1', 'H2', 'H3'];
END
$fn$;

-- 'undone': the row of an inverse that a rollback ran (its own step_sha); the
-- row of the step it undid is removed in the same transaction.
CREATE OR REPLACE FUNCTION taskslaps.step_outcomes()
RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
AS $fn$
BEGIN
    RETURN ARRAY['applied', 'already_present', 'undone', 'accepted'];
END
$fn$;

CREATE OR REPLACE FUNCTION taskslaps.wave_names()
RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
AS $fn$
BEGIN
    RETURN ARRAY['expand', 'backfill', 'validate', 'contract'];
END
$fn$;

CREATE OR REPLACE FUNCTION taskslaps.event_types()
RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
AS $fn$
BEGIN
    RETURN ARRAY['plan.start', 'plan.ok', 'plan.failed', 'plan.blocked', 'plan.drift',
                 'plan.rate_limited', 'plan.aborted', 'plan.out_of_order', 'plan.invalid',
                 'plan.interrupted', 'plan.reverted',
                 'wave.start', 'wave.ok',
                 'step.start', 'step.ok', 'step.skipped', 'step.already_present',
                 'step.retry', 'step.error', 'step.progress',
                 'governor.degraded', 'governor.critical', 'governor.healthy',
                 'rollback.start', 'rollback.step', 'rollback.ok', 'rollback.failed',
                 'notes.repaired'];
END
$fn$;

GRANT EXECUTE ON FUNCTION taskslaps.plan_statuses(), taskslaps.hazard_classes(),
    taskslaps.step_outcomes(), taskslaps.wave_names(), taskslaps.event_types() TO PUBLIC;

---------------------------------------------------------------------------
-- plans: one row per plan and target; the status the git notes project.
CREATE TABLE IF NOT EXISTS taskslaps.plans (
    target       text        NOT NULL,
    plan_id      text        NOT NULL,
    checksum     text,                       -- NULL while the plan is invalid
    hash_version int         NOT NULL DEFAULT 1,
    file_path    text,
    commit_sha   text,
    author       text,
    status       text        NOT NULL DEFAULT 'pending',
    max_hazard   text,                       -- 'H0'..'H3'
    first_seen   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (target, plan_id)
);
COMMENT ON TABLE taskslaps.plans IS 'taskslaps: status of each plan per target';

SELECT taskslaps._install_constraint('taskslaps.plans', 'plans_status_check',
    $$status = ANY (taskslaps.plan_statuses())$$,
    taskslaps.plan_statuses());
SELECT taskslaps._install_constraint('taskslaps.plans', 'plans_max_hazard_check',
    $$max_hazard = ANY (taskslaps.hazard_classes())$$,
    taskslaps.hazard_classes());

---------------------------------------------------------------------------
-- step_ledger: the idempotency ledger. A step whose step_sha is here for its
-- target never runs again on that target (keyed per target: see 004). Written in the same transaction as the step (or right after a
-- non-transactional step such as CREATE INDEX CONCURRENTLY). Outcome
-- 'accepted': a step edited after it ran, whose edit an operator accepted
-- with accept-drift; the edited form itself never ran.
CREATE TABLE IF NOT EXISTS taskslaps.step_ledger (
    step_sha          text        NOT NULL,
    target            text        NOT NULL,
    plan_id           text        NOT NULL,
    wave              text        NOT NULL,
    step_index        int         NOT NULL,
    op                text        NOT NULL,
    hazard            text        NOT NULL,
    commit_sha        text,
    applied_by        text        NOT NULL DEFAULT current_user,
    applied_at        timestamptz NOT NULL DEFAULT now(),
    execution_time_ms bigint,
    rows_affected     bigint,
    outcome           text        NOT NULL DEFAULT 'applied',
    PRIMARY KEY (target, step_sha)
);
COMMENT ON TABLE taskslaps.step_ledger IS 'taskslaps: steps applied (or adopted as already present)';

CREATE INDEX IF NOT EXISTS step_ledger_target_plan_idx
    ON taskslaps.step_ledger (target, plan_id);

SELECT taskslaps._install_constraint('taskslaps.step_ledger', 'step_ledger_outcome_check',
    $$outcome = ANY (taskslaps.step_outcomes())$$,
    taskslaps.step_outcomes());
SELECT taskslaps._install_constraint('taskslaps.step_ledger', 'step_ledger_hazard_check',
    $$hazard = ANY (taskslaps.hazard_classes())$$,
    taskslaps.hazard_classes());
SELECT taskslaps._install_constraint('taskslaps.step_ledger', 'step_ledger_wave_check',
    $$wave = ANY (taskslaps.wave_names())$$,
    taskslaps.wave_names());

---------------------------------------------------------------------------
-- backfill_progress: the checkpoint of a batched backfill, updated in the
-- same transaction as each batch, so a killed run resumes after the last
-- committed batch and never redoes one. Keys are JSON arrays of the primary
-- key column values as text, in key column order.
CREATE TABLE IF NOT EXISTS taskslaps.backfill_progress (
    step_sha   text        NOT NULL,
    target     text        NOT NULL,
    last_key   jsonb,                        -- NULL before the first batch
    rows_done  bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, step_sha)
);
-- The key range is fixed when the backfill starts; a resumed run must reuse
-- that upper bound rather than the table's current largest key.
ALTER TABLE taskslaps.backfill_progress ADD COLUMN IF NOT EXISTS upper_key jsonb;
ALTER TABLE taskslaps.backfill_progress ADD COLUMN IF NOT EXISTS started_at timestamptz NOT NULL DEFAULT now();
COMMENT ON TABLE taskslaps.backfill_progress IS 'taskslaps: resumable checkpoints of batched backfills';

SELECT taskslaps._install_check('taskslaps.backfill_progress', 'backfill_progress_last_key_check',
    $$last_key IS NULL OR jsonb_typeof(last_key) = 'array'$$);
SELECT taskslaps._install_check('taskslaps.backfill_progress', 'backfill_progress_upper_key_check',
    $$upper_key IS NULL OR jsonb_typeof(upper_key) = 'array'$$);

---------------------------------------------------------------------------
-- events: the audit trail; each insert is also announced by NOTIFY with
-- its identity only (see 002).
-- clock_timestamp() so events of one long transaction keep their real order.
CREATE TABLE IF NOT EXISTS taskslaps.events (
    id       bigserial   PRIMARY KEY,
    target   text        NOT NULL,
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    plan_id  text,
    wave     text,
    step_sha text,
    type     text        NOT NULL,
    message  text,
    metrics  jsonb
);
COMMENT ON TABLE taskslaps.events IS 'taskslaps: audit events, each announced (identity only) by NOTIFY taskslaps_events';

CREATE INDEX IF NOT EXISTS events_target_id_idx
    ON taskslaps.events (target, id);
CREATE INDEX IF NOT EXISTS events_target_plan_id_idx
    ON taskslaps.events (target, plan_id, id);

SELECT taskslaps._install_constraint('taskslaps.events', 'events_type_check',
    $$type = ANY (taskslaps.event_types())$$,
    taskslaps.event_types());

INSERT INTO taskslaps.schema_version (version) VALUES (1) ON CONFLICT DO NOTHING;
