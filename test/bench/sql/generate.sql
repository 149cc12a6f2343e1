-- Benchmark data set, built set-based in the current database (a template).
-- psql variables: n (orders), idle (0: 10% of orders expired and pending;
-- 1: the same orders already released, so that a run finds nothing),
-- notes_rows (pre-existing notifications), and optionally
--   types (default 0): order types 't0001'.. besides the application's five
--          (lottery_win, direct_buy, recharge, resale, resale_purchase);
--          half of the orders take one of them, skewed to the first ones,
--          and each gets payment windows (below);
--   waiting (default 0; only with types): percent of orders pending inside
--          a long payment window, so that no run may take them.
-- With the defaults the data is what it always was (same seed, same rows).
--
-- Orders i = 1..n, created in order of i over 90 days ending two days ago:
--   i % 10 = 0                 expired: status/payment/fulfillment pending (10%)
--   i % 100 in (1, 2)          recent pending: created within the last 20 minutes (2%)
--   other i % 100 < 50         paid: status still 'pending', payment 'paid' (43%)
--   i % 100 >= 100 - waiting   waiting (when types > 0), taken from the closed ones
--   the rest                   closed: completed, cancelled or expired earlier (45%)
-- The benchmark uses timeout_minutes = 1440, so the recent ones stay
-- unexpired for a day however long the run takes.  Ids are md5('o' || i),
-- md5('p' || j) and md5('r' || r), so that pgbench scripts can name rows.
--
-- A paid order keeps status 'pending': the application's payment code
-- (reportyao/luckymart-tj, app/api/payment/recharge/route.ts,
-- handlePaymentSuccess) sets only payment_status = 'paid' and
-- fulfillment_status = 'completed', guarded by payment_status = 'pending',
-- and never touches status (its default, 'pending').  So paid orders here
-- are pending/paid/completed.
--
-- Payment windows (types > 0), by the type's number k, (k - 1) % 4:
--   0  3 days, any method
--   1  7 days for 'bank_transfer', 2 days for any other method
--   2  never expires for 'bank_transfer', 1 day for any other method
--   3  no row: the timeout (1440 minutes in the benchmark)
-- Waiting orders are spread over the first three kinds, skewed to popular
-- types: kind 0 created within the last day, kind 1 (bank transfer) within
-- the last 5 days, kind 2 (bank transfer, never expires) over the whole 90
-- days, so that old never-due orders sit at the head of created_at.  None is
-- due for at least a day.  The application's own types get no window.
\set ON_ERROR_STOP 1
\if :{?types}
\else
\set types 0
\endif
\if :{?waiting}
\else
\set waiting 0
\endif
SET client_min_messages = warning;
SET maintenance_work_mem = '512MB';
\ir ../../fixtures/app_schema.sql
-- Load without indexes, then build exactly the application's ones.
ALTER TABLE orders DROP CONSTRAINT orders_pkey, DROP CONSTRAINT orders_order_number_key;
DROP INDEX orders_status_created_at_idx;
ALTER TABLE notifications DROP CONSTRAINT notifications_pkey;

SELECT setseed(0.42) \gset
CREATE TEMP TABLE release_expired_orders_windows_tmp (order_type text, payment_method text, timeout_minutes int);
CREATE TEMP TABLE gen_now AS SELECT (now() AT TIME ZONE 'UTC')::timestamp(3) AS ts;

INSERT INTO products (id, name, price, stock, status, created_at, updated_at)
SELECT md5('p' || j)::uuid, 'product ' || j, (10 + j % 90)::numeric(10,2),
	1000 + floor(random() * 9000)::int, 'active', g.ts - interval '120 days', g.ts - interval '120 days'
FROM generate_series(1, 10000) j, gen_now g;

-- A round of the popular product (r * 7) % 10000 + 1; sold_shares set below.
INSERT INTO lottery_rounds (id, product_id, round_number, total_shares, price_per_share,
	sold_shares, status, draw_at, updated_at)
SELECT md5('r' || r)::uuid, md5('p' || ((r * 7) % 10000 + 1))::uuid, r, 1000, 1.00, 0,
	'active', g.ts + interval '7 days', g.ts - interval '120 days'
FROM generate_series(1, 2000) r, gen_now g;

INSERT INTO orders (id, legacy_ref, order_number, user_id, channel, product_id, round_id,
	type, quantity, unit_price, total_amount, status, payment_status, payment_method,
	fulfillment_status, notes, created_at, updated_at)
SELECT md5('o' || i)::uuid, NULL, 'ORD' || lpad(i::text, 10, '0'),
	md5('u' || (1 + floor(ru * 200000)::int))::uuid,
	CASE WHEN i % 3 = 0 THEN 'app' ELSE 'web' END,
	CASE WHEN typ = 'recharge' THEN NULL
		WHEN typ = 'lottery_win' THEN md5('p' || ((rr * 7) % 10000 + 1))::uuid
		ELSE md5('p' || pj)::uuid END,
	CASE WHEN typ = 'lottery_win' THEN md5('r' || rr)::uuid END,
	typ, q, 10.00, q * 10.00,
	CASE kind WHEN 'closed' THEN (CASE WHEN rc < 0.7 THEN 'completed' WHEN rc < 0.9 THEN 'cancelled' ELSE 'expired' END)
		WHEN 'expired' THEN (CASE WHEN :idle = 1 THEN 'expired' ELSE 'pending' END)
		ELSE 'pending' END,
	CASE kind WHEN 'paid' THEN 'paid' WHEN 'recent' THEN 'pending' WHEN 'waiting' THEN 'pending'
		WHEN 'expired' THEN (CASE WHEN :idle = 1 THEN 'cancelled' ELSE 'pending' END)
		ELSE (CASE WHEN rc < 0.7 THEN 'paid' ELSE 'cancelled' END) END,
	CASE WHEN kind = 'waiting' THEN (CASE WHEN wk = 0 THEN 'card' ELSE 'bank_transfer' END)
		WHEN kind = 'paid' OR (kind = 'closed' AND rc < 0.7) THEN 'card' END,
	CASE kind WHEN 'paid' THEN 'completed' WHEN 'recent' THEN 'pending' WHEN 'waiting' THEN 'pending'
		WHEN 'expired' THEN (CASE WHEN :idle = 1 THEN 'cancelled' ELSE 'pending' END)
		ELSE (CASE WHEN rc < 0.7 THEN 'completed' ELSE 'cancelled' END) END,
	NULL, created, created
FROM (
	SELECT i, kind, ru, rc, pj, rr, q, wk,
		CASE WHEN kind = 'waiting' THEN 't' || lpad((4 * floor((:types / 4) * rx ^ 3)::int + wk + 1)::text, 4, '0')
			WHEN :types > 0 AND rx < 0.5 THEN 't' || lpad((1 + floor(:types * rx2 ^ 3)::int)::text, 4, '0')
			WHEN rt < 0.30 THEN 'lottery_win' WHEN rt < 0.65 THEN 'direct_buy'
			WHEN rt < 0.75 THEN 'recharge' WHEN rt < 0.85 THEN 'resale'
			ELSE 'resale_purchase' END AS typ,
		CASE WHEN kind = 'recent' THEN g.ts - random() * interval '20 minutes'
			WHEN kind = 'waiting' AND wk = 0 THEN g.ts - rx2 * interval '1 day'
			WHEN kind = 'waiting' AND wk = 1 THEN g.ts - rx2 * interval '5 days'
			ELSE g.ts - interval '2 days' - (:n - i) * (interval '90 days' / :n) END AS created
	FROM (
		SELECT i,
			CASE WHEN i % 10 = 0 THEN 'expired' WHEN i % 100 IN (1, 2) THEN 'recent'
				WHEN i % 100 < 50 THEN 'paid'
				WHEN :types >= 4 AND i % 100 >= 100 - :waiting THEN 'waiting'
				ELSE 'closed' END AS kind,
			random() AS ru, random() AS rc, random() AS rt,
			1 + floor(10000 * random() ^ 3)::int AS pj,	-- skewed to popular products
			1 + floor(2000 * random() ^ 3)::int AS rr,	-- and rounds
			1 + floor(5 * random() ^ 2)::int AS q,
			-- only with types: the defaults draw exactly the numbers they always did
			CASE WHEN :types > 0 THEN random() END AS rx,
			CASE WHEN :types > 0 THEN random() END AS rx2,
			i % 3 AS wk	-- a waiting order's kind of window
		FROM generate_series(1, :n) i
	) s, gen_now g
) t;

-- Payment windows of the extra types (see above).
INSERT INTO release_expired_orders_windows_tmp (order_type, payment_method, timeout_minutes)
SELECT 't' || lpad(k::text, 4, '0'), m, w
FROM generate_series(1, :types) k,
	LATERAL (VALUES (0, NULL, 3 * 1440), (1, 'bank_transfer', 7 * 1440), (1, NULL, 2 * 1440),
					(2, 'bank_transfer', NULL), (2, NULL, 1440)) v(c, m, w)
WHERE (k - 1) % 4 = v.c;

-- Rounds sold what their live orders bought, plus room.
UPDATE lottery_rounds r SET sold_shares = s.sold, total_shares = s.sold + 1000
FROM (SELECT round_id, sum(quantity)::int AS sold FROM orders
	  WHERE round_id IS NOT NULL AND status IN ('pending', 'completed')
	  GROUP BY round_id) s
WHERE r.id = s.round_id;

INSERT INTO notifications (id, user_id, channel, type, content, status, sent_at, created_at)
SELECT md5('n' || k)::uuid, md5('u' || (1 + k % 200000))::uuid, 'push', 'order_paid',
	'订单已支付', 'sent', g.ts - interval '1 day', g.ts - interval '1 day'
FROM generate_series(1, :notes_rows) k, gen_now g;

ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id),
	ADD CONSTRAINT orders_order_number_key UNIQUE (order_number);
CREATE INDEX orders_status_created_at_idx ON orders (status, created_at);
ALTER TABLE notifications ADD CONSTRAINT notifications_pkey PRIMARY KEY (id);

-- (its warning that pg_cron is not installed here is expected)
SET client_min_messages = error;
CREATE EXTENSION IF NOT EXISTS release_expired_orders;
SET client_min_messages = warning;
INSERT INTO release_expired_orders.payment_windows (order_type, payment_method, timeout_minutes)
SELECT order_type, payment_method, timeout_minutes FROM release_expired_orders_windows_tmp;
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
VACUUM (FREEZE, ANALYZE);
