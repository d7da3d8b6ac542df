-- Deterministic data for the S.E.O. demo schema (examples/seo/schema.sql):
-- the same rows on every run, for a given size.
--
--   psql -X -v ON_ERROR_STOP=1 -d DB -f examples/seo/seed.sql                  (200,000 employees)
--   psql -X -v ON_ERROR_STOP=1 -d DB -v employees=1000 -f examples/seo/seed.sql
--
-- Makes :employees employees in :employees/50 teams, 1 to 5 engagement
-- events each (3 on average), and an archive of old events for every tenth
-- employee. Every 50th employee has no e-mail address and every 97th no
-- team, as the legacy imports left them; plan 0004 fills the addresses in.

\if :{?employees}
\else
\set employees 200000
\endif

SELECT greatest(:employees / 50, 1) AS teams \gset

BEGIN;

INSERT INTO team (id, name)
SELECT t,
       (ARRAY['Search', 'Content', 'Links', 'Analytics', 'Growth', 'Local', 'Platform',
              'Insights'])[1 + t % 8] || ' ' || t
  FROM generate_series(1, :teams) AS t;

INSERT INTO employee (id, name, email, team_id, hired_at, legacy_badge_code)
SELECT i,
       (ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken',
              'Margaret', 'Dennis', 'Radia', 'John', 'Hedy', 'Tim', 'Sophie', 'Linus'])[1 + i % 16]
       || ' ' ||
       (ARRAY['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen',
              'Thompson', 'Hamilton', 'Ritchie', 'Perlman', 'Backus', 'Lamarr', 'Berners-Lee',
              'Wilson', 'Torvalds'])[1 + (i / 16) % 16],
       CASE WHEN i % 50 = 0 THEN NULL ELSE 'employee' || i || '@seo.example' END,
       CASE WHEN i % 97 = 0 THEN NULL ELSE 1 + i % :teams END,
       timestamptz '2012-01-01 09:00+00' + (i % 4380) * interval '1 day',
       CASE WHEN i % 3 = 0 THEN 'B' || lpad(i::text, 8, '0') END
  FROM generate_series(1, :employees) AS i;

-- 1 + i % 5 events per employee, spread over 2024.
INSERT INTO engagement_event (employee_id, kind, score, at)
SELECT i,
       (ARRAY['survey', 'kudos', 'one_on_one', 'pulse', 'offsite'])[1 + (i + k) % 5],
       (i * 37 + k * 11) % 101,
       timestamptz '2024-01-01 00:00+00'
           + ((i * 7 + k * 13) % 366) * interval '1 day'
           + ((i * 31 + k) % 86400) * interval '1 second'
  FROM generate_series(1, :employees) AS i,
       generate_series(1, 1 + i % 5) AS k
 ORDER BY i, k;

INSERT INTO engagement_event_archive (id, employee_id, kind, score, at)
SELECT i * 10 + k, i,
       (ARRAY['survey', 'kudos', 'one_on_one'])[1 + (i + k) % 3],
       (i * 13 + k * 7) % 101,
       timestamptz '2018-01-01 00:00+00' + ((i + k * 17) % 730) * interval '1 day'
  FROM generate_series(10, :employees, 10) AS i,
       generate_series(1, 3) AS k;

COMMIT;

ANALYZE team, employee, engagement_event, engagement_event_archive;
