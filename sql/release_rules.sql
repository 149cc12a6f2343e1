-- The release rules (README, Releasing an order) on one mixed set of orders: what is
-- expired, every column written, counters, audit rows, notifications and
-- the summary.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

INSERT INTO products (id, stock, status) VALUES
	('00000000-0000-0000-0000-0000000000a1', 10, 'on_sale'),
	('00000000-0000-0000-0000-0000000000a2', 5, 'on_sale');
INSERT INTO lottery_rounds (id, product_id, round_number, total_shares, sold_shares, status) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 1, 100, 10, 'active'),
	('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-0000000000a2', 1, 10, 1, 'full');

-- number, age in minutes, product, round, quantity, statuses, notes
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity,
					total_amount, status, payment_status, fulfillment_status, notes, created_at)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid,
	   'ORD-' || n, ('00000000-0000-0000-0000-0000000000c' || (n % 3))::uuid,
	   p::uuid, r::uuid, t, q, 10.00, s, ps, fs, notes,
	   (now() AT TIME ZONE 'UTC') - age * interval '1 minute'
FROM (VALUES
	(1, 90, '00000000-0000-0000-0000-0000000000a1', NULL, 'direct_buy', 2, 'pending', 'pending', 'pending', NULL),
	(2, 80, '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 'lottery_win', 3, 'pending', 'pending', 'pending', NULL),
	(3, 10, '00000000-0000-0000-0000-0000000000a1', NULL, 'direct_buy', 1, 'pending', 'pending', 'pending', NULL),
	(4, 70, '00000000-0000-0000-0000-0000000000a1', NULL, 'direct_buy', 1, 'pending', 'paid', 'completed', NULL),
	(5, 70, '00000000-0000-0000-0000-0000000000a1', NULL, 'direct_buy', 1, 'cancelled', 'pending', 'pending', NULL),
	(6, 60, '00000000-0000-0000-0000-0000000000a2', NULL, 'direct_buy', 0, 'pending', 'pending', 'pending', NULL),
	(7, 50, '00000000-0000-0000-0000-0000000000ff', NULL, 'direct_buy', 4, 'pending', 'pending', 'pending', NULL),
	(8, 45, '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000bf', 'lottery_win', 1, 'pending', 'pending', 'pending', NULL),
	(9, 40, '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000b2', 'lottery_win', 3, 'pending', 'pending', 'pending', NULL),
	(10, 35, NULL, NULL, 'recharge', 1, 'pending', 'pending', 'pending', 'paid by card'),
	(11, 31, '00000000-0000-0000-0000-0000000000a2', NULL, 'resale_purchase', -2, 'pending', 'pending', 'pending', NULL)
) AS v(n, age, p, r, t, q, s, ps, fs, notes);

-- The summary is shaped like the old function's response; the time-dependent
-- fields are checked, then left out of the output.
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb #- '{summary,timestamp}' #- '{summary,processingTimeMs}' #- '{summary,runId}' AS summary,
	   (:'summary'::jsonb)->'summary'->>'timestamp' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$' AS timestamp_ok,
	   ((:'summary'::jsonb)->'summary'->>'runId')::bigint = (SELECT max(id) FROM release_expired_orders.runs) AS run_id_ok,
	   ((:'summary'::jsonb)->'summary'->>'processingTimeMs')::int >= 0 AS time_ok;

-- Which orders were released, and every column written.
SELECT order_number, status, payment_status, fulfillment_status,
	   notes ~ E'^(paid by card)?\n\\[系统\\] 订单超时已过期 - \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$' AS notes_ok,
	   updated_at IS NOT NULL AND updated_at BETWEEN (now() AT TIME ZONE 'UTC') - interval '1 minute'
											  AND (now() AT TIME ZONE 'UTC') + interval '1 minute' AS updated_now
FROM orders ORDER BY created_at;

-- Stock back for positive quantities only; shares back, clamped at 0;
-- the round's status is not changed.
SELECT id, stock, updated_at IS NOT NULL AS touched FROM products ORDER BY id;
SELECT id, sold_shares, status, updated_at IS NOT NULL AS touched FROM lottery_rounds ORDER BY id;

-- One audit row per released order, and one per anomaly.
SELECT order_number, outcome, quantity, stock_delta, shares_delta,
	   prev_status, prev_payment_status, prev_fulfillment_status, message
FROM release_expired_orders.order_events ORDER BY order_number, outcome;

-- The run row.
SELECT timeout_minutes, batch_limit, found, released, failed, outcome, error,
	   run_by = current_user AS run_by_me, ended_at >= started_at AS ended,
	   cutoff < started_at - interval '29 minutes' AS cutoff_ok
FROM release_expired_orders.runs;

-- The application's notifications: one per released order, one per run.
SELECT n.user_id = o.user_id AS user_ok, n.type, n.status, n.sent_at IS NOT NULL AS sent,
	   n.content = '过期订单清理: order_released_successfully - 订单: ' || o.id AS content_ok
FROM notifications n JOIN orders o ON n.content LIKE '%' || o.id
ORDER BY o.created_at;
SELECT user_id, type, status, content FROM notifications
WHERE content NOT LIKE '%order_released_successfully%';

-- Running again releases nothing new and moves nothing.
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb #- '{summary,timestamp}' #- '{summary,processingTimeMs}' #- '{summary,runId}' AS summary;
SELECT sum(stock) AS stock, (SELECT sum(sold_shares) FROM lottery_rounds) AS shares,
	   (SELECT count(*) FROM release_expired_orders.order_events) AS events,
	   (SELECT count(*) FROM notifications) AS notifications,
	   (SELECT count(*) FROM release_expired_orders.runs) AS runs
FROM products;

-- A run that released nothing writes no batch notification.
SELECT count(*) AS batch_notifications FROM notifications WHERE content LIKE '%batch_processing_completed%';

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
