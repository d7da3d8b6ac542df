-- The S.E.O. demo organisation: the starting schema that examples/plans/
-- migrates, plan by plan, in file-name order.
--
--   psql -X -v ON_ERROR_STOP=1 -d DB -f examples/seo/schema.sql
--   psql -X -v ON_ERROR_STOP=1 -d DB -v employees=200000 -f examples/seo/seed.sql
--
-- It is the schema of a company that grew without a DBA: no foreign keys yet
-- (0002 adds them), e-mail addresses that legacy imports left empty (0004
-- makes the column NOT NULL), and leftovers of an old badge system and an
-- event archive that nobody reads any more (0009 drops them).

CREATE TABLE team (
    id   bigint PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE employee (
    id                bigint PRIMARY KEY,
    name              text NOT NULL,
    email             text,                 -- NULL for some imported rows
    team_id           bigint,               -- refers to team.id, unchecked
    hired_at          timestamptz NOT NULL DEFAULT now(),
    legacy_badge_code text                  -- the badge system retired in 2021
);

CREATE INDEX employee_legacy_badge_code_idx ON employee (legacy_badge_code);

CREATE TABLE engagement_event (
    id          bigserial PRIMARY KEY,
    employee_id bigint NOT NULL,            -- refers to employee.id, unchecked
    kind        text NOT NULL,              -- free text: 'survey', 'kudos', ...
    score       integer NOT NULL,           -- 0..100
    at          timestamptz NOT NULL DEFAULT now()
);

-- Events before 2020, moved out by a one-off job and never read since.
CREATE TABLE engagement_event_archive (
    id          bigint PRIMARY KEY,
    employee_id bigint NOT NULL,
    kind        text NOT NULL,
    score       integer NOT NULL,
    at          timestamptz NOT NULL
);
