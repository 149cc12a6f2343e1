--
-- A run that finds nothing (README, Performance): most runs of a job scheduled every
-- minute, each in a fresh session under pg_cron.  Without payment windows
-- it first asks for the oldest pending order created before now less the
-- timeout, and prepares the candidate scan only when there is one.  With
-- windows the scan itself goes type by type and skips a type whose oldest
-- order is not due; it never keeps a due order back.
--
\set SHOW_CONTEXT never
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
\set app_ts timestamptz
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
INSERT INTO products (id, stock) VALUES ('a0000000-0000-0000-0000-000000000001', 0);
CREATE FUNCTION place(num text, kind text, minutes integer) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	VALUES (gen_random_uuid(), num, 'd0000000-0000-0000-0000-000000000001',
			'a0000000-0000-0000-0000-000000000001', kind, 1, 10,
			now() - make_interval(mins => minutes, secs => 30))
$$;
-- Which of the job's statements this session has prepared (their plans
-- are kept in contexts named after the statement's text).
CREATE VIEW prepared AS
SELECT count(*) FILTER (WHERE ident LIKE 'SELECT o.created_at FROM %.orders o WHERE%LIMIT 1') AS probe,
	   count(*) FILTER (WHERE ident LIKE 'SELECT o.id, o.order_number%FROM %.orders o WHERE%SKIP LOCKED'
						  OR ident LIKE 'WITH RECURSIVE types (type, oldest, oldest_id)%') AS scan
  FROM pg_backend_memory_contexts WHERE name = 'CachedPlanSource';

-- Nothing due (an order 10 minutes old, the timeout 30): the fresh session
-- probes and does not prepare the scan.
SELECT place('N10', 'recharge', 10);
\c
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, * FROM prepared;

-- Something due: the scan runs and releases it.
SELECT place('N40', 'recharge', 40);
\c
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, * FROM prepared;
SELECT order_number, status FROM orders ORDER BY order_number;

-- With payment windows there is no probe: a recharge of 20 minutes is due
-- under its 15-minute window although the timeout is 30.
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 15), ('direct_buy', NULL, 60);
SELECT place('R20', 'recharge', 20), place('D45', 'direct_buy', 45);
\c
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, * FROM prepared;
SELECT order_number, status FROM orders ORDER BY order_number;
-- The direct purchase, 45 minutes old under its 60-minute window, is not
-- due: the scan finds nothing.
\c
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, * FROM prepared;

-- With windows and created_at without time zone, likewise: the scan runs,
-- each window's bound converted to wall-clock time on its own, and finds
-- nothing.
CREATE SCHEMA naive_app;
SET search_path = naive_app, public;
\set app_ts 'timestamp(3)'
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
RESET search_path;
INSERT INTO naive_app.orders (id, order_number, user_id, type, total_amount, created_at)
VALUES (gen_random_uuid(), 'NAIVE5', 'd0000000-0000-0000-0000-000000000001', 'recharge', 10,
		(now() AT TIME ZONE 'UTC') - interval '5 minutes');
\c
SET release_expired_orders.app_schema = naive_app;
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, * FROM prepared;
RESET release_expired_orders.app_schema;
DROP SCHEMA naive_app CASCADE;

DROP VIEW prepared;
DROP FUNCTION place(text, text, integer);
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
