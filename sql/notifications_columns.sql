-- The compatibility notifications never block a release:
-- what cannot be written is skipped with a WARNING and reported by health().
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
SET release_expired_orders.retry_backoff = 0;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
CREATE FUNCTION pg_temp.add_orders(prefix text, n integer) RETURNS void LANGUAGE sql AS $$
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	SELECT gen_random_uuid(), prefix || i, '00000000-0000-0000-0000-0000000000c1',
		   '00000000-0000-0000-0000-0000000000a1', 'direct_buy', 1, 1.00,
		   (now() AT TIME ZONE 'UTC') - (100 - i) * interval '1 minute'
	FROM generate_series(1, n) AS i
$$;
SELECT status FROM release_expired_orders.health() WHERE "check" = 'notifications';

-- An extra NOT NULL column without a default: detected before the run.
ALTER TABLE notifications ADD COLUMN tenant_id uuid NOT NULL;
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'notifications';
SELECT pg_temp.add_orders('N-', 3);
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->>'success' AS success,
	   (:'summary'::jsonb)->'summary'->>'successful' AS successful;
SELECT order_number, status FROM orders ORDER BY order_number;
SELECT stock FROM products;
SELECT count(*) AS notifications FROM notifications;
SELECT found, released, failed, outcome FROM release_expired_orders.runs ORDER BY id;
SELECT count(*) FILTER (WHERE outcome = 'released') AS released_events FROM release_expired_orders.order_events;
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'notifications';

-- A CHECK constraint that refuses every notification: found only when
-- writing; the run still releases, with a WARNING.
ALTER TABLE notifications DROP COLUMN tenant_id;
ALTER TABLE notifications ADD CONSTRAINT no_audit CHECK (type <> 'system_audit');
SELECT pg_temp.add_orders('C-', 3);
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS successful;
SELECT order_number, status FROM orders WHERE order_number LIKE 'C-%' ORDER BY order_number;
SELECT stock FROM products;
SELECT count(*) AS notifications FROM notifications;
SELECT found, released, failed, outcome, warnings FROM release_expired_orders.runs ORDER BY id DESC LIMIT 1;
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'notifications';

-- Once the table accepts them again, they are written.
ALTER TABLE notifications DROP CONSTRAINT no_audit;
CALL release_expired_orders(30, 100) \gset
SELECT found, released, failed, outcome, warnings FROM release_expired_orders.runs ORDER BY id DESC LIMIT 1;
SELECT pg_temp.add_orders('Y-', 2);
CALL release_expired_orders(30, 100) \gset
SELECT found, released, failed, outcome, warnings FROM release_expired_orders.runs ORDER BY id DESC LIMIT 1;
SELECT regexp_replace(content, ' - 订单: .*', '') AS kind, count(*)
FROM notifications GROUP BY 1 ORDER BY 1;
SELECT status FROM release_expired_orders.health() WHERE "check" = 'notifications';

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
