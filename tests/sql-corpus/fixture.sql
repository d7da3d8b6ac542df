-- The database every statement of the corpus runs against (see README.md).
-- tests/integration/test_sql_trace.sh loads it once into a template database
-- and gives each statement a fresh copy (CREATE DATABASE ... TEMPLATE). The
-- roles ts_trace_owner and ts_trace_reader are made by the test, cluster-wide.
-- Small on purpose: enough rows that a rewrite or a scan is real, few enough
-- that a copy takes milliseconds.

CREATE SCHEMA archive;

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');

CREATE TABLE customers (
	id bigint PRIMARY KEY,
	name text NOT NULL,
	email text,
	code varchar(10),
	mood mood
);
INSERT INTO customers
SELECT g, 'customer ' || g, 'c' || g || '@example.org', 'k' || g, 'ok'
FROM generate_series(1, 1000) g;
-- unique, not yet a constraint: for ADD CONSTRAINT ... UNIQUE USING INDEX
CREATE UNIQUE INDEX customers_email_uidx ON customers (email);

CREATE TABLE orders (
	id bigint PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES customers (id),
	amount integer NOT NULL DEFAULT 0,
	qty integer,
	status text,
	note varchar(10),
	legacy text,
	created_at timestamptz
);
INSERT INTO orders
SELECT g, 1 + g % 1000, g % 500, 1 + g % 7, (ARRAY['new', 'paid', 'sent'])[1 + g % 3],
       'n' || g % 100, 'old', '2024-01-01'::timestamptz + g * interval '1 minute'
FROM generate_series(1, 5000) g;
CREATE INDEX orders_status_idx ON orders (status);
ALTER TABLE orders ADD CONSTRAINT orders_amount_nonneg CHECK (amount >= 0);
-- NOT VALID, for VALIDATE CONSTRAINT (every row satisfies them)
ALTER TABLE orders ADD CONSTRAINT orders_qty_pos CHECK (qty > 0) NOT VALID;
ALTER TABLE orders ADD CONSTRAINT orders_customer_nv_fk
	FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;

CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RETURN NEW;
END
$$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
CREATE FUNCTION double_it(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';

CREATE VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 100;
CREATE MATERIALIZED VIEW order_totals AS
	SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id;
CREATE UNIQUE INDEX order_totals_customer_idx ON order_totals (customer_id);

-- partitioned, with a spare table to attach
CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, kind text) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO events SELECT g, '2024-01-01'::date + g % 700, 'k' || g % 5 FROM generate_series(1, 2000) g;
CREATE TABLE events_2026 (id bigint NOT NULL, at date NOT NULL, kind text);
INSERT INTO events_2026 SELECT g, '2026-01-01'::date + g % 300, 'k' FROM generate_series(1, 300) g;

-- no primary key yet; a unique index on a NOT NULL column for PRIMARY KEY USING INDEX
CREATE TABLE tags (id integer NOT NULL, label text);
INSERT INTO tags SELECT g, 'tag ' || g FROM generate_series(1, 200) g;
CREATE UNIQUE INDEX tags_id_uidx ON tags (id);

-- no primary key; to be truncated, dropped, renamed, moved
CREATE TABLE scratch (id integer NOT NULL, v text);
INSERT INTO scratch SELECT g, 'v' || g FROM generate_series(1, 500) g;

CREATE UNLOGGED TABLE cache (k text PRIMARY KEY, v text);
INSERT INTO cache SELECT 'k' || g, 'v' || g FROM generate_series(1, 200) g;
-- the one table a bare CLUSTER reorders
ALTER TABLE cache CLUSTER ON cache_pkey;

CREATE SEQUENCE invoice_no;

VACUUM ANALYZE;
