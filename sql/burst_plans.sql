--
-- A burst: a backlog of orders sharing one deadline, drained by one session
-- that keeps its plans (the deadline worker).  Its own writes grow
-- order_events by a row per order while it drains, which changes what the
-- kept plans cost.  Neither the cost of a chunk nor that of a run may grow
-- with the backlog: (1) one long run makes its plans again as order_events
-- grows, instead of probing it by a sequential scan for each candidate;
-- (2) once order_events is large, each run still reads the candidates in
-- created_at order through the index that leads with the type, not every
-- pending order through the application's (status, created_at) index and
-- a sort.
--
\set SHOW_CONTEXT never
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
CREATE INDEX orders_release_candidates_idx ON orders (type, created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 1);
INSERT INTO products (id, stock)
SELECT ('a0000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 0 FROM generate_series(1, 10) i;
-- 10,000 orders that fell due at the same moment; order_events is empty
-- and analyzed so (as autovacuum leaves a new database).
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
SELECT gen_random_uuid(), 'B-' || i, gen_random_uuid(),
	   ('a0000000-0000-0000-0000-' || lpad((1 + i % 10)::text, 12, '0'))::uuid,
	   'recharge', 1, 10, (now() AT TIME ZONE 'UTC') - interval '2 minutes'
FROM generate_series(1, 10000) i;
ANALYZE orders;
ANALYZE products;
ANALYZE release_expired_orders.order_events;

-- What this session read since a call of reads() (counts not yet reported
-- included): sequential scans of order_events, and rows of orders fetched
-- by an index scan.
CREATE FUNCTION reads(OUT events_seq_scans bigint, OUT orders_idx_fetched bigint) LANGUAGE sql AS $$
	SELECT (SELECT seq_scan FROM pg_stat_xact_user_tables
			WHERE relid = 'release_expired_orders.order_events'::regclass),
		   (SELECT idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relid = 'orders'::regclass)
$$;

-- (1) A fresh session, one run of 3,000 orders in chunks of 100: the plans
-- made at its first chunk probe the empty order_events sequentially; made
-- again as it grows, most of the 3,000 probes are index scans.
\c
SET release_expired_orders.chunk_size = 100;
BEGIN;
SELECT * FROM reads() \gset before_
CALL release_expired_orders(NULL, 3000) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS released,
	   events_seq_scans - :before_events_seq_scans < 1000 AS events_probed_by_index
  FROM reads();
COMMIT;

-- (2) The same session, runs of 100 with order_events at 3,000 rows and
-- analyzed: each run fetches a few rows of orders per order it releases,
-- not the 7,000 still pending.
ANALYZE release_expired_orders.order_events;
CALL release_expired_orders(NULL, 100) \gset
BEGIN;
SELECT * FROM reads() \gset before_
CALL release_expired_orders(NULL, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS released,
	   orders_idx_fetched - :before_orders_idx_fetched < 1000 AS reads_candidates_only
  FROM reads();
COMMIT;
SELECT count(*) AS still_pending FROM orders WHERE status = 'pending';
SELECT sum(stock) AS given_back FROM products;

DROP FUNCTION reads();
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
