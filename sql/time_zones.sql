-- created_at without time zone holds UTC wall-clock time and is read in
-- release_expired_orders.naive_time_zone whatever the session's TimeZone;
-- timestamptz columns are compared as they are.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

-- A server in UTC+5: an order 20 minutes old stays, one 40 minutes old goes.
SET TimeZone = 'Asia/Dushanbe';
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-000000000001', 'AGE-20', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, (now() AT TIME ZONE 'UTC') - interval '20 minutes'),
	('00000000-0000-0000-0000-000000000002', 'AGE-40', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, (now() AT TIME ZONE 'UTC') - interval '40 minutes');
CALL release_expired_orders(30, 100) \gset
SELECT order_number, status,
	   updated_at BETWEEN (now() AT TIME ZONE 'UTC') - interval '1 minute' AND (now() AT TIME ZONE 'UTC') + interval '1 minute' AS updated_in_utc
FROM orders ORDER BY order_number;
SELECT abs(extract(epoch FROM sent_at - (now() AT TIME ZONE 'UTC'))) < 60 AS sent_in_utc
FROM notifications WHERE content LIKE '%order_released%';

-- An application that stores local wall-clock time says so.
SET release_expired_orders.naive_time_zone = 'Asia/Dushanbe';
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-000000000003', 'LOCAL-20', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, (now() AT TIME ZONE 'Asia/Dushanbe') - interval '20 minutes'),
	('00000000-0000-0000-0000-000000000004', 'LOCAL-40', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, (now() AT TIME ZONE 'Asia/Dushanbe') - interval '40 minutes');
CALL release_expired_orders(30, 100) \gset
SELECT order_number, status,
	   abs(extract(epoch FROM updated_at - (now() AT TIME ZONE 'Asia/Dushanbe'))) < 60 AS updated_in_local
FROM orders ORDER BY order_number;
RESET release_expired_orders.naive_time_zone;

-- timestamptz columns: detected from the catalog, no conversion.
DROP TABLE orders, products, lottery_rounds, notifications;
\set app_ts timestamptz
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'created_at';
INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 1);
INSERT INTO orders (id, order_number, user_id, product_id, type, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-000000000001', 'TZ-20', '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1', 'direct_buy', 1, now() - interval '20 minutes'),
	('00000000-0000-0000-0000-000000000002', 'TZ-40', '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1', 'direct_buy', 1, now() - interval '40 minutes');
CALL release_expired_orders(30, 100) \gset
SELECT order_number, status, updated_at BETWEEN now() - interval '1 minute' AND now() + interval '1 minute' AS updated_now
FROM orders ORDER BY order_number;
SELECT stock, updated_at BETWEEN now() - interval '1 minute' AND now() + interval '1 minute' AS updated_now FROM products;
SELECT count(*) AS notified FROM notifications
WHERE sent_at BETWEEN now() - interval '1 minute' AND now() + interval '1 minute';

RESET TimeZone;
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
