-- Demo: 1,000 orders of a marketplace, some of them unpaid for too long.
\set QUIET on
\pset footer off
\i test/fixtures/app_schema.sql

INSERT INTO products (id, name, stock, status)
SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(p), 12, '0'))::uuid, 'product ' || p, 100, 'on_sale'
FROM generate_series(1, 20) p;
INSERT INTO lottery_rounds (id, product_id, round_number, total_shares, sold_shares, status)
SELECT ('00000000-0000-0000-0001-' || lpad(to_hex(r), 12, '0'))::uuid,
	   ('00000000-0000-0000-0000-' || lpad(to_hex(r), 12, '0'))::uuid, 1, 500, 120, 'active'
FROM generate_series(1, 5) r;
-- Every 10th order is unpaid and older than 30 minutes; others are paid,
-- recent or closed.
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity,
					total_amount, status, payment_status, fulfillment_status, created_at)
SELECT gen_random_uuid(), 'ORD-' || lpad(i::text, 5, '0'), gen_random_uuid(),
	   ('00000000-0000-0000-0000-' || lpad(to_hex(1 + i % 20), 12, '0'))::uuid,
	   CASE WHEN i % 20 < 5 THEN ('00000000-0000-0000-0001-' || lpad(to_hex(1 + i % 20), 12, '0'))::uuid END,
	   CASE WHEN i % 20 < 5 THEN 'lottery_win' ELSE 'direct_buy' END,
	   1 + i % 3, 9.90,
	   CASE WHEN i % 10 = 3 THEN 'completed' ELSE 'pending' END,
	   CASE WHEN i % 10 IN (0, 5) THEN 'pending' WHEN i % 10 = 3 THEN 'paid' ELSE 'paid' END,
	   CASE WHEN i % 10 IN (0, 5) THEN 'pending' ELSE 'completed' END,
	   (now() AT TIME ZONE 'UTC') - CASE WHEN i % 10 = 5 THEN interval '5 minutes'
										ELSE (30 + i % 600) * interval '1 minute' END
FROM generate_series(1, 1000) i;

CREATE EXTENSION pg_cron;
\set QUIET off
CREATE EXTENSION release_expired_orders;
\set QUIET on
CREATE INDEX CONCURRENTLY orders_release_candidates_idx ON orders (created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';

\echo
\echo '== Before: orders by state, stock and shares'
SELECT status, payment_status, fulfillment_status,
	   count(*) FILTER (WHERE created_at < (now() AT TIME ZONE 'UTC') - interval '30 minutes') AS older_than_30_min,
	   count(*) AS orders
FROM orders GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT sum(stock) AS total_stock, (SELECT sum(sold_shares) FROM lottery_rounds) AS total_sold_shares FROM products;

\echo '== The job pg_cron runs every 10 minutes'
SELECT jobname, schedule, command, active FROM cron.job;

\echo '== CALL release_expired_orders(30, 100000)'
\set QUIET off
CALL release_expired_orders(30, 100000);
\set QUIET on

\echo '== After'
SELECT status, payment_status, fulfillment_status, count(*) AS orders
FROM orders GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT sum(stock) AS total_stock, (SELECT sum(sold_shares) FROM lottery_rounds) AS total_sold_shares FROM products;
\echo '== The run, and the audit trail'
SELECT id, found, released, failed, outcome, round(duration_ms::numeric, 1) AS duration_ms, run_by
FROM release_expired_orders.runs;
SELECT outcome, count(*), sum(stock_delta) AS stock_returned, -sum(shares_delta) AS shares_returned
FROM release_expired_orders.order_events GROUP BY outcome ORDER BY outcome;
SELECT order_number, status, notes FROM orders WHERE status = 'expired' ORDER BY created_at LIMIT 3;
SELECT type, count(*) FROM notifications GROUP BY type;
\echo '== What an operator watches: SELECT * FROM release_expired_orders.health()'
SELECT "check", status, detail FROM release_expired_orders.health();

\echo
\echo '== Payment windows and the deadline worker, in database shop'
\echo '   The application tells a customer who tops up their wallet that the order is'
\echo '   cancelled after 15 minutes.  The deadline worker of shop (shared_preload_libraries;'
\echo '   worker_database = shop leaves the first database to pg_cron) releases each order'
\echo '   at its own deadline.'
CREATE DATABASE shop;
\c shop
\i test/fixtures/app_schema.sql
SET client_min_messages = warning;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
CREATE INDEX orders_release_candidates_idx ON orders (type, created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
\set QUIET off
INSERT INTO release_expired_orders.payment_windows (order_type, payment_method, timeout_minutes)
VALUES ('recharge', NULL, 15);
\set QUIET on
-- Two orders of 20 minutes ago: the recharge is due (15), the purchase not (30).
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at) VALUES
	(gen_random_uuid(), 'RCH-20MIN', gen_random_uuid(), 'recharge', 50, (now() AT TIME ZONE 'UTC') - interval '20 minutes'),
	(gen_random_uuid(), 'BUY-20MIN', gen_random_uuid(), 'direct_buy', 50, (now() AT TIME ZONE 'UTC') - interval '20 minutes');
\echo '== preview(): each order with its window and deadline'
SELECT order_number, window_minutes, deadline, age FROM release_expired_orders.preview();
-- Wait until the worker serves shop (the launcher starts it once CREATE
-- EXTENSION has committed), then place a recharge whose deadline is 3
-- seconds away.  A real order placed now is due in 15 minutes, which the
-- worker's sleep already covers; this one is back-dated, so the demo wakes
-- the worker to look again (the next poll, within a second, would find it
-- too).
DO $$
BEGIN
	FOR i IN 1..150 LOOP
		EXIT WHEN EXISTS (SELECT FROM release_expired_orders.worker_status()
						  WHERE pid IS NOT NULL AND last_wake IS NOT NULL);
		PERFORM pg_sleep(0.2);
	END LOOP;
END $$;
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
VALUES (gen_random_uuid(), 'RCH-NOW', gen_random_uuid(), 'recharge', 30,
		(clock_timestamp() AT TIME ZONE 'UTC') - interval '15 minutes' + interval '3 seconds');
SELECT release_expired_orders.wake_worker() AS worker_woken \gset
SELECT pg_sleep(4.5) IS NULL AS slept \gset
\echo '== What the worker did: each order released after its deadline, never before'
\echo '   (RCH-20MIN was placed 5 minutes past its deadline, and released when the worker served shop)'
SELECT o.order_number, o.status, d.deadline, e.created_at AS released_at,
	   round(pg_catalog.date_part('epoch', r.ended_at - d.deadline)::numeric * 1000) AS ms_after_deadline,
	   r.scheduler
  FROM orders o
 CROSS JOIN LATERAL (SELECT (o.created_at AT TIME ZONE 'UTC')
		+ make_interval(mins => coalesce((SELECT w.timeout_minutes FROM release_expired_orders.payment_windows w
										  WHERE w.order_type = o.type), 30)) AS deadline) d
  LEFT JOIN release_expired_orders.order_events e ON e.order_id = o.id AND e.outcome = 'released'
  LEFT JOIN release_expired_orders.runs r ON r.id = e.run_id
 ORDER BY o.order_number;
SELECT pid IS NOT NULL AS worker_running, database, role, round(last_lag_ms::numeric, 1) AS last_lag_ms
  FROM release_expired_orders.worker_status();
\echo '== Metrics for dashboards: SELECT metric, value FROM release_expired_orders.metrics'
SELECT metric, round(value::numeric, 3) AS value FROM release_expired_orders.metrics ORDER BY metric;
