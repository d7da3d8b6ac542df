-- taskslaps state schema, part 2: the check helpers and the events NOTIFY.
--
-- The helpers back the computed prechecks and postchecks of plan steps, e.g.
--   taskslaps.table_exists('employee') AND NOT taskslaps.column_exists('employee', 'coffee_dependency')
-- They take names exactly as the planner writes them: a plain identifier
-- [A-Za-z_][A-Za-z0-9_]* or schema.name. Each part is matched case-sensitively
-- (as if it were double-quoted: "MixedCase" is not "mixedcase"), and an
-- unqualified name resolves through the CALLER's search_path, the same way the
-- step's own statement will. So they are SECURITY INVOKER and do not pin
-- search_path; that is why every builtin and operator in their bodies is
-- written pg_catalog-qualified. They answer false, never raise, for a missing
-- schema, relation, column, index or constraint, or a name that is not a
-- plain identifier.

SET LOCAL search_path = pg_catalog, pg_temp;
-- Re-runs are the normal case; their "already exists, skipping" notices are noise.
SET LOCAL client_min_messages = warning;

-- The ones that read a catalog (relation_kind, column_is, index_valid,
-- constraint_is) are PL/pgSQL: PostgreSQL cannot inline a SQL function with
-- a FROM in its body, so as SQL functions they were planned again at every
-- call; PL/pgSQL keeps each statement's plan for the session (and drops it
-- when search_path changes). The others are one expression each, written as
-- SQL functions with a RETURN body: PostgreSQL inlines those into the query
-- that calls them (a step's guard, its postchecks, the proof's lookups), so
-- they cost no call of their own. A RETURN body is read when the function
-- is created, so the names in it are bound then, whatever the caller's
-- search_path; the relation names they are given still resolve through it.
-- It also records a dependency on the helpers it calls: a later version
-- that changes the signature or the result type of relation_kind,
-- column_is or constraint_is must DROP the helpers that call it first
-- (CREATE OR REPLACE keeps them as long as neither changes).

-- NAME -> regclass, or NULL when it does not resolve or is not a plain name.
CREATE OR REPLACE FUNCTION taskslaps.lookup_relation(name text)
RETURNS pg_catalog.regclass
LANGUAGE sql STABLE SECURITY INVOKER PARALLEL SAFE
RETURN CASE
    WHEN lookup_relation.name OPERATOR(pg_catalog.~) '^[A-Za-z_][A-Za-z0-9_]{0,62}$'
        THEN pg_catalog.to_regclass(pg_catalog.quote_ident(lookup_relation.name))
    WHEN lookup_relation.name OPERATOR(pg_catalog.~)
             '^[A-Za-z_][A-Za-z0-9_]{0,62}[.][A-Za-z_][A-Za-z0-9_]{0,62}$'
        THEN pg_catalog.to_regclass(pg_catalog.concat(
                 pg_catalog.quote_ident(pg_catalog.split_part(lookup_relation.name, '.', 1)), '.',
                 pg_catalog.quote_ident(pg_catalog.split_part(lookup_relation.name, '.', 2))))
END;

-- The relkind of NAME, or NULL.
CREATE OR REPLACE FUNCTION taskslaps.relation_kind(name text)
RETURNS "char"
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE
AS $fn$
DECLARE
    r pg_catalog.regclass := taskslaps.lookup_relation(relation_kind.name);
BEGIN
    IF r IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT c.relkind FROM pg_catalog.pg_class c
             WHERE c.oid OPERATOR(pg_catalog.=) r);
END
$fn$;

-- Ordinary or partitioned table.
CREATE OR REPLACE FUNCTION taskslaps.table_exists(name text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER PARALLEL SAFE
RETURN coalesce(taskslaps.relation_kind(table_exists.name) OPERATOR(pg_catalog.=) ANY
                    ('{r,p}'::"char"[]), false);

-- View or materialized view.
CREATE OR REPLACE FUNCTION taskslaps.view_exists(name text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER PARALLEL SAFE
RETURN coalesce(taskslaps.relation_kind(view_exists.name) OPERATOR(pg_catalog.=) ANY
                    ('{v,m}'::"char"[]), false);

-- A live (not dropped, not system) column of a table, view or foreign table,
-- that is NOT NULL when NOT_NULL is true. COL is compared exactly, so it is
-- case-sensitive like the table name.
CREATE OR REPLACE FUNCTION taskslaps.column_is(tbl text, col text, not_null boolean)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE
AS $fn$
DECLARE
    r pg_catalog.regclass := taskslaps.lookup_relation(column_is.tbl);
BEGIN
    IF r IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (
        SELECT 1 FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
         WHERE c.oid OPERATOR(pg_catalog.=) r
           AND c.relkind OPERATOR(pg_catalog.<>) 'i'
           AND c.relkind OPERATOR(pg_catalog.<>) 'I'
           AND a.attname OPERATOR(pg_catalog.=) column_is.col
           AND a.attnum OPERATOR(pg_catalog.>) 0
           AND NOT a.attisdropped
           AND (a.attnotnull OR NOT column_is.not_null));
END
$fn$;

CREATE OR REPLACE FUNCTION taskslaps.column_exists(tbl text, col text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER PARALLEL SAFE
RETURN taskslaps.column_is(column_exists.tbl, column_exists.col, false);

-- The column exists and is NOT NULL.
CREATE OR REPLACE FUNCTION taskslaps.column_not_null(tbl text, col text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER PARALLEL SAFE
RETURN taskslaps.column_is(column_not_null.tbl, column_not_null.col, true);

-- An index (plain or partitioned), valid or not. Indexes live in their
-- table's schema, so a qualified NAME uses that schema.
CREATE OR REPLACE FUNCTION taskslaps.index_exists(name text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER PARALLEL SAFE
RETURN coalesce(taskslaps.relation_kind(index_exists.name) OPERATOR(pg_catalog.=) ANY
                    ('{i,I}'::"char"[]), false);

-- The index exists and is usable: a CREATE INDEX CONCURRENTLY that failed or
-- was killed leaves it INVALID (indisvalid false), to be dropped and rebuilt.
CREATE OR REPLACE FUNCTION taskslaps.index_valid(name text)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE
AS $fn$
DECLARE
    r pg_catalog.regclass := taskslaps.lookup_relation(index_valid.name);
BEGIN
    IF r IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (
        SELECT 1 FROM pg_catalog.pg_index i
         WHERE i.indexrelid OPERATOR(pg_catalog.=) r
           AND i.indisvalid
           AND i.indisready);
END
$fn$;

-- A constraint named NAME on table TBL (CHECK, FOREIGN KEY, UNIQUE, PRIMARY
-- KEY, EXCLUDE), validated or NOT VALID; only a validated one when VALIDATED.
CREATE OR REPLACE FUNCTION taskslaps.constraint_is(tbl text, name text, validated boolean)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY INVOKER PARALLEL SAFE
AS $fn$
DECLARE
    r pg_catalog.regclass := taskslaps.lookup_relation(constraint_is.tbl);
BEGIN
    IF r IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (
        SELECT 1 FROM pg_catalog.pg_constraint k
         WHERE k.conrelid OPERATOR(pg_catalog.=) r
           AND k.conname OPERATOR(pg_catalog.=) constraint_is.name
           AND (k.convalidated OR NOT constraint_is.validated));
END
$fn$;

CREATE OR REPLACE FUNCTION taskslaps.constraint_exists(tbl text, name text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER PARALLEL SAFE
RETURN taskslaps.constraint_is(constraint_exists.tbl, constraint_exists.name, false);

-- The constraint exists and has been validated (not NOT VALID any more).
CREATE OR REPLACE FUNCTION taskslaps.constraint_valid(tbl text, name text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER PARALLEL SAFE
RETURN taskslaps.constraint_is(constraint_valid.tbl, constraint_valid.name, true);

---------------------------------------------------------------------------
-- NOTIFY taskslaps_events with each new event's identity (id, target, type,
-- plan_id) as JSON, so `taskslapsctl events --follow` and other clients
-- need not poll. Only the identity: any role that can connect may LISTEN,
-- and neither GRANTs nor row-level security apply to notifications, so the
-- message and metrics (statements, error messages that may quote data) are
-- read from taskslaps.events, where they do apply. The target and plan id
-- are cut to 400 characters each (then "truncated": true), which keeps the
-- payload far below PostgreSQL's 8000-byte limit. Listeners receive it at
-- COMMIT of the inserting transaction. It runs once an event: like the
-- helpers above it does not pin search_path (a SET clause on a function
-- costs a configuration change at every call), so every name in it is
-- pg_catalog-qualified.
CREATE OR REPLACE FUNCTION taskslaps.events_notify()
RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
AS $fn$
DECLARE
    max_chars constant int := 400;
    payload   pg_catalog.jsonb;
BEGIN
    payload := pg_catalog.jsonb_build_object('id', NEW.id,
                   'target', pg_catalog.left(NEW.target, max_chars), 'type', NEW.type,
                   'plan_id', pg_catalog.left(NEW.plan_id, max_chars));
    IF pg_catalog.char_length(NEW.target) OPERATOR(pg_catalog.>) max_chars
       OR pg_catalog.char_length(NEW.plan_id) OPERATOR(pg_catalog.>) max_chars THEN
        payload := payload OPERATOR(pg_catalog.||) '{"truncated": true}'::pg_catalog.jsonb;
    END IF;
    PERFORM pg_catalog.pg_notify('taskslaps_events', payload::pg_catalog.text);
    RETURN NULL;
END
$fn$;

-- CREATE OR REPLACE TRIGGER needs PostgreSQL 14; check the catalog instead.
DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'taskslaps.events'::regclass
                      AND tgname = 'events_notify' AND NOT tgisinternal) THEN
        CREATE TRIGGER events_notify
            AFTER INSERT ON taskslaps.events
            FOR EACH ROW EXECUTE FUNCTION taskslaps.events_notify();
    END IF;
END
$do$;

INSERT INTO taskslaps.schema_version (version) VALUES (2) ON CONFLICT DO NOTHING;
