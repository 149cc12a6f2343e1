-- created_at may be NULL, -infinity, infinity, or anywhere in its type's
-- range.  -infinity is due, infinity and NULL never; no function, view or
-- look errors because of them, and the metrics show the -infinity order as
-- overdue without end.  With and without payment windows.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
ALTER TABLE orders ALTER COLUMN created_at DROP DEFAULT;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, num,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1', t, 1, 1, c
FROM (VALUES (1, 'PAST-INF', 'direct_buy', '-infinity'::timestamp),
			 (2, 'FUTURE-INF', 'direct_buy', 'infinity'),
			 (3, 'NULL-TIME', 'direct_buy', NULL),
			 (4, 'TOP-OF-RANGE', 'direct_buy', '294276-12-31 23:59:59.999'),
			 (5, 'BOTTOM', 'recharge', '4713-11-24 00:00:00 BC'),
			 (6, 'TOP-RECHARGE', 'recharge', '294276-12-31 23:59:59.999')) AS v (n, num, t, c);

-- Every way to look at them, without windows, then with windows.
SELECT order_number, age IS NULL AS no_age, deadline = '-infinity' AS minus_infinity,
	   deadline < now() AS due
FROM release_expired_orders.preview(30, 100) ORDER BY order_number;
SELECT release_expired_orders.oldest_deadline();
SELECT value FROM release_expired_orders.metrics WHERE metric = 'oldest_overdue_seconds';
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 15);
SELECT order_number, age IS NULL AS no_age, window_minutes, deadline = '-infinity' AS minus_infinity,
	   deadline < now() AS due
FROM release_expired_orders.preview(30, 100) ORDER BY order_number;
SELECT release_expired_orders.oldest_deadline();
SELECT value FROM release_expired_orders.metrics WHERE metric = 'oldest_overdue_seconds';
SELECT "check", status, detail LIKE 'check failed%' AS check_failed
FROM release_expired_orders.health() WHERE "check" = 'backlog';

-- The job releases the two that are due, and nothing else.
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb -> 'summary' ->> 'successful' AS successful;
SELECT order_number, status FROM orders ORDER BY order_number;
-- What is left has no deadline (NULL, with windows and without): created at
-- infinity, or so late that no deadline is finite; also under a window
-- that never expires.
SELECT release_expired_orders.oldest_deadline();
UPDATE release_expired_orders.payment_windows SET timeout_minutes = NULL;
SELECT release_expired_orders.oldest_deadline();
DELETE FROM release_expired_orders.payment_windows;
SELECT release_expired_orders.oldest_deadline();
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb -> 'summary' ->> 'totalFound' AS found_without_windows;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
