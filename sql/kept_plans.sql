--
-- A session keeps its plans (the deadline worker, a pooled connection).
-- Plans kept while the application's tables were small must not go on
-- reading them sequentially once they have grown, even where nothing
-- analyzes them (autovacuum off on them): a sequential scan of orders for
-- each order looked up by key.  One session runs the job while the shop has
-- twenty orders and two products, then after it has grown to 40,000 orders
-- and 2,000 products, without an ANALYZE in between.
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
ALTER TABLE orders SET (autovacuum_enabled = off);
ALTER TABLE products SET (autovacuum_enabled = off);
ALTER TABLE release_expired_orders.order_events SET (autovacuum_enabled = off);
CREATE INDEX orders_release_candidates_idx ON orders (type, created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
CREATE INDEX orders_release_plain_idx ON orders (created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
INSERT INTO products (id, stock)
SELECT ('a0000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 0 FROM generate_series(1, 2) i;
-- A young shop: twenty orders of twenty types, one a minute.
SELECT young_shop();
ANALYZE orders;
ANALYZE products;

-- The sequential scans of the tables the job looks up by key, so far in
-- this transaction and those whose counts are not yet reported; and those
-- since a call of scans().
CREATE FUNCTION scans() RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_object_agg(relname, seq_scan) FROM pg_stat_xact_user_tables
	WHERE relname IN ('orders', 'order_events')
$$;
CREATE FUNCTION seq_scans_since(before jsonb) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(key || ' ' || (value::bigint - (before->>key)::bigint), ', ' ORDER BY key),
					'none')
	FROM jsonb_each_text(scans()) WHERE value::bigint > (before->>key)::bigint
$$;

-- The setup can make it happen: a generic plan made now for reading an
-- order by key scans orders sequentially, and goes on doing so after the
-- growth below (and again after the table is emptied and regrown).
SET plan_cache_mode = force_generic_plan;
PREPARE by_key(uuid) AS SELECT * FROM orders WHERE id = $1;
EXPLAIN (COSTS OFF) EXECUTE by_key('00000000-0000-0000-0000-000000000000');

-- The session runs the job while the shop is young: without windows (runs
-- that find nothing, then one that releases ten orders), and with windows.
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(10, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS released_young;
INSERT INTO release_expired_orders.payment_windows
SELECT 't' || i, NULL, 4320 FROM generate_series(0, 19) i;
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
UPDATE release_expired_orders.payment_windows SET timeout_minutes = 4 WHERE order_type = 't5';
CALL release_expired_orders(4320, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS released_young_windowed;
UPDATE release_expired_orders.payment_windows SET timeout_minutes = 4320;

-- The shop grows: 40,000 orders over the last four days, of 2,000 products;
-- a paid order keeps status 'pending'; all but the last 200 are paid.
INSERT INTO products (id, stock)
SELECT ('a0000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 0 FROM generate_series(3, 2000) i;
SELECT grow_shop();
INSERT INTO release_expired_orders.order_events (order_id, outcome, created_at)
SELECT o.id, 'failed', now() - interval '1 day' FROM orders o WHERE o.payment_status = 'paid' LIMIT 20000;
EXPLAIN (COSTS OFF) EXECUTE by_key('00000000-0000-0000-0000-000000000000');
RESET plan_cache_mode;

-- The same session: with windows, a run that finds nothing and one that
-- releases (windows of 1 minute: the 203 pending orders older than that).
BEGIN;
SELECT scans() AS before \gset
CALL release_expired_orders(4320, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, seq_scans_since(:'before');
ROLLBACK;
UPDATE release_expired_orders.payment_windows SET timeout_minutes = 1;
BEGIN;
SELECT scans() AS before \gset
CALL release_expired_orders(4320, 1000) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS released, seq_scans_since(:'before');
ROLLBACK;
BEGIN;
SELECT scans() AS before \gset
SELECT count(*) AS due, (SELECT seq_scans_since(:'before')) FROM release_expired_orders.preview();
ROLLBACK;
-- Without windows, likewise.
DELETE FROM release_expired_orders.payment_windows;
BEGIN;
SELECT scans() AS before \gset
CALL release_expired_orders(4320, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, seq_scans_since(:'before');
ROLLBACK;
BEGIN;
SELECT scans() AS before \gset
CALL release_expired_orders(1, 1000) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS released, seq_scans_since(:'before');
ROLLBACK;

-- The shop is emptied (TRUNCATE invalidates the plans, which the next runs
-- make again for a page), analyzed while small, and grows back to its
-- former size: the plans made for the page must not stay.
TRUNCATE orders;
SELECT young_shop();
ANALYZE orders;
INSERT INTO release_expired_orders.payment_windows
SELECT 't' || i, NULL, 4320 FROM generate_series(0, 19) i;
CALL release_expired_orders(4320, 100) \gset
CALL release_expired_orders(4320, 100) \gset
EXPLAIN (COSTS OFF) EXECUTE by_key('00000000-0000-0000-0000-000000000000');
SELECT grow_shop();
UPDATE release_expired_orders.payment_windows SET timeout_minutes = 1;
BEGIN;
SELECT scans() AS before \gset
CALL release_expired_orders(4320, 1000) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS released, seq_scans_since(:'before');
ROLLBACK;

DEALLOCATE by_key;
DROP FUNCTION scans(), seq_scans_since(jsonb);
DROP FUNCTION young_shop(), grow_shop();
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
