-- The statuses, type and payment_method of orders may be text, varchar,
-- bpchar, a domain or an enum (and order_number any of those): the job
-- compares and assigns in the column's own type, with and without payment
-- windows.  A type it cannot use is still an error naming the column.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

CREATE TYPE order_status AS ENUM ('pending', 'paid', 'expired', 'cancelled', 'completed');
CREATE TYPE order_type AS ENUM ('lottery_win', 'direct_buy', 'recharge');
CREATE DOMAIN pay_method AS text CHECK (VALUE <> '');
DROP INDEX orders_status_created_at_idx;
ALTER TABLE orders
	ALTER COLUMN status DROP DEFAULT,
	ALTER COLUMN status TYPE order_status USING status::order_status,
	ALTER COLUMN status SET DEFAULT 'pending',
	ALTER COLUMN payment_status TYPE char(12),
	ALTER COLUMN fulfillment_status DROP DEFAULT,
	ALTER COLUMN fulfillment_status TYPE order_status USING fulfillment_status::order_status,
	ALTER COLUMN fulfillment_status SET DEFAULT 'pending',
	ALTER COLUMN type TYPE order_type USING type::order_type,
	ALTER COLUMN payment_method TYPE pay_method,
	ALTER COLUMN order_number TYPE char(10);
CREATE INDEX ON orders (created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO orders (id, order_number, user_id, product_id, type, payment_method, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, 'ORD-' || n,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   t::order_type, m, 1, 1, (now() AT TIME ZONE 'UTC') - a * interval '1 minute'
FROM (VALUES (1, 'direct_buy', NULL, 90), (2, 'recharge', 'card', 20), (3, 'recharge', 'bank', 20),
			 (4, 'lottery_win', 'card', 10)) AS v (n, t, m, a);

-- Without windows: only ORD-1 is older than 30 minutes.
SELECT order_number, window_minutes FROM release_expired_orders.preview(30, 100) ORDER BY 1;
-- With windows: recharges expire after 15 minutes, but not by bank.
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 15), ('recharge', 'bank', 1440);
SELECT order_number, window_minutes FROM release_expired_orders.preview(30, 100) ORDER BY 1;
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb -> 'summary' ->> 'successful' AS successful,
	   :'summary'::jsonb -> 'summary' ->> 'failed' AS failed;
SELECT order_number, status, payment_status, fulfillment_status FROM orders ORDER BY 1;
SELECT order_number, outcome, stock_delta FROM release_expired_orders.order_events ORDER BY 1;
SELECT stock FROM products;
SELECT release_expired_orders.oldest_deadline() IS NOT NULL AS has_deadline;

-- A type the job cannot use: an error naming the column, nothing changed.
ALTER TABLE orders ADD COLUMN status2 integer;
ALTER TABLE orders RENAME COLUMN status TO status_old;
ALTER TABLE orders RENAME COLUMN status2 TO status;
CALL release_expired_orders(30, 100);

-- An enum status without a label the job writes: an error naming it.
ALTER TABLE orders DROP COLUMN status;
ALTER TABLE orders RENAME COLUMN status_old TO status;
CREATE TYPE short_status AS ENUM ('pending', 'paid');
DROP INDEX orders_created_at_id_idx;
ALTER TABLE orders ALTER COLUMN fulfillment_status DROP DEFAULT,
	ALTER COLUMN fulfillment_status TYPE short_status USING 'pending';
CALL release_expired_orders(30, 100);

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP TYPE order_status, order_type, short_status;
DROP DOMAIN pay_method;
