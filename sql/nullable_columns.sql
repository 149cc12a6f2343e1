-- Any column the job reads may be nullable unless the catalog says NOT
-- NULL: an order without an order number, a user, a quantity, or with NULL
-- statuses is released, failed or left alone like any other, and nothing
-- reads a NULL as a value (a NULL order number of a failing order used to
-- crash the server).
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
SET release_expired_orders.retry_backoff = 0;
ALTER TABLE orders ALTER COLUMN order_number DROP NOT NULL,
	ALTER COLUMN user_id DROP NOT NULL, ALTER COLUMN quantity DROP NOT NULL;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 100, 50, 'active');
-- The application refuses to cancel order 2, which has no order number.
CREATE FUNCTION refuse_2() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id = '00000000-0000-0000-0000-000000000002' THEN
		RAISE EXCEPTION 'order % is under review', NEW.id USING ERRCODE = 'P0001';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER refuse_2 BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION refuse_2();
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount, created_at)
VALUES
	('00000000-0000-0000-0000-000000000001', NULL, NULL, '00000000-0000-0000-0000-0000000000a1',
	 '00000000-0000-0000-0000-0000000000b1', 'lottery_win', 2, 1, (now() AT TIME ZONE 'UTC') - interval '90 minutes'),
	('00000000-0000-0000-0000-000000000002', NULL, NULL, '00000000-0000-0000-0000-0000000000a1',
	 NULL, 'direct_buy', 3, 1, (now() AT TIME ZONE 'UTC') - interval '80 minutes'),
	('00000000-0000-0000-0000-000000000003', 'ORD-3', '00000000-0000-0000-0000-0000000000c1',
	 '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 'lottery_win', NULL, 1,
	 (now() AT TIME ZONE 'UTC') - interval '70 minutes');
-- An order whose statuses are NULL is not pending: never released.
INSERT INTO orders (id, order_number, user_id, type, total_amount, status, payment_status, fulfillment_status, created_at)
VALUES ('00000000-0000-0000-0000-000000000004', 'ORD-4', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1,
		NULL, NULL, NULL, (now() AT TIME ZONE 'UTC') - interval '60 minutes');

CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb -> 'summary' ->> 'successful' AS successful,
	   :'summary'::jsonb -> 'summary' ->> 'failed' AS failed,
	   :'summary'::jsonb -> 'errors' AS errors;
SELECT id, order_number, status, payment_status FROM orders ORDER BY id;
SELECT stock FROM products;
SELECT sold_shares FROM lottery_rounds;
SELECT order_id, order_number, user_id, quantity, outcome, sqlstate, stock_delta, shares_delta
FROM release_expired_orders.order_events ORDER BY order_id, outcome;
SELECT found, released, failed, outcome FROM release_expired_orders.runs;
-- A bystander: the server did not restart.
SELECT 1 AS still_connected;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP FUNCTION refuse_2();
