--
-- Kept plans follow the growth of a partitioned orders table too: its
-- partitions hold the rows (the parent has no storage), and a session that
-- planned while they were small must not read them sequentially once they
-- have grown.  As kept_plans, with orders partitioned by created_at.
--
\set SHOW_CONTEXT never
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
\set app_ts timestamptz
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/shop_growth.sql
\set ECHO all
-- The same orders table, partitioned by created_at.
DROP TABLE orders;
CREATE TABLE orders (
	id uuid NOT NULL, legacy_ref text, order_number varchar(50) NOT NULL, user_id uuid NOT NULL,
	channel varchar(20) DEFAULT 'web', product_id uuid, round_id uuid, type varchar(20) NOT NULL,
	quantity integer NOT NULL DEFAULT 1, unit_price numeric(10,2), total_amount numeric(10,2) NOT NULL,
	status varchar(20) DEFAULT 'pending', payment_status varchar(20) DEFAULT 'pending',
	payment_method varchar(30), fulfillment_status varchar(20) DEFAULT 'pending', notes text,
	created_at timestamptz DEFAULT now(), updated_at timestamptz,
	PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE orders_old PARTITION OF orders FOR VALUES FROM (MINVALUE) TO ('2000-01-01');
CREATE TABLE orders_cur PARTITION OF orders FOR VALUES FROM ('2000-01-01') TO (MAXVALUE);
CREATE INDEX orders_release_candidates_idx ON orders (type, created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
CREATE INDEX orders_release_plain_idx ON orders (created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
ALTER TABLE orders_old SET (autovacuum_enabled = off);
ALTER TABLE orders_cur SET (autovacuum_enabled = off);
ALTER TABLE products SET (autovacuum_enabled = off);
ALTER TABLE release_expired_orders.order_events SET (autovacuum_enabled = off);
INSERT INTO products (id, stock)
SELECT ('a0000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 0 FROM generate_series(1, 2000) i;
-- A young shop: twenty orders of twenty types, one a minute.
SELECT young_shop();
ANALYZE orders;
INSERT INTO release_expired_orders.payment_windows
SELECT 't' || i, NULL, 4320 FROM generate_series(0, 19) i;

-- Sequential scans of the partition that holds the orders, since a call of
-- scans() (those of the empty orders_old read nothing).
CREATE FUNCTION scans() RETURNS bigint LANGUAGE sql AS $$
	SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'orders_cur'
$$;

-- The setup can make it happen: a generic plan made now for reading an
-- order by key scans the partition sequentially, and goes on doing so after
-- the growth below.
SET plan_cache_mode = force_generic_plan;
PREPARE by_key(uuid) AS SELECT * FROM orders WHERE id = $1 AND created_at > '2001-01-01';
EXPLAIN (COSTS OFF) EXECUTE by_key('00000000-0000-0000-0000-000000000000');

-- The session runs the job while the shop is young, with windows; one
-- run releases the order of the 4-minute window.
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
UPDATE release_expired_orders.payment_windows SET timeout_minutes = 4 WHERE order_type = 't5';
CALL release_expired_orders(4320, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS released_young;
UPDATE release_expired_orders.payment_windows SET timeout_minutes = 4320;

-- The shop grows: 40,000 orders, all but the last 200 paid.
SELECT grow_shop();
EXPLAIN (COSTS OFF) EXECUTE by_key('00000000-0000-0000-0000-000000000000');
RESET plan_cache_mode;

-- The same session: windows of 1 minute, a run that releases.
UPDATE release_expired_orders.payment_windows SET timeout_minutes = 1;
BEGIN;
SELECT scans() AS before \gset
CALL release_expired_orders(4320, 1000) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS released, scans() - :before AS seq_scans;
ROLLBACK;

DEALLOCATE by_key;
DROP FUNCTION scans();
DROP FUNCTION young_shop(), grow_shop();
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
