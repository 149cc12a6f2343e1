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
