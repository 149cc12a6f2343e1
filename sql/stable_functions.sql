-- preview() and oldest_deadline() are STABLE: they read with the snapshot
-- of the statement that calls them, as a STABLE function must, and never
-- see what that statement itself has written so far.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

-- The statement inserts a due order, then asks: neither sees it.
WITH placed AS (
	INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
	VALUES ('00000000-0000-0000-0000-000000000001', 'ORD-1', '00000000-0000-0000-0000-0000000000c1',
			'recharge', 1, (now() AT TIME ZONE 'UTC') - interval '2 hours')
	RETURNING id)
SELECT (SELECT count(*) FROM placed) AS placed,
	   (SELECT count(*) FROM release_expired_orders.preview(30, 100)) AS previewed,
	   (SELECT release_expired_orders.oldest_deadline()) AS oldest_deadline;
-- The next statement sees it.
SELECT count(*) AS previewed FROM release_expired_orders.preview(30, 100);
SELECT release_expired_orders.oldest_deadline() IS NOT NULL AS has_deadline;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
