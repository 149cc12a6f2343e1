-- A trigger on lottery_rounds or products that skips the counter update
-- (a BEFORE trigger returning NULL): the audit tells what was really
-- written, the skip is an anomaly row, and restore_order() never moves a
-- counter the release did not move.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

INSERT INTO products (id, stock) VALUES
	('00000000-0000-0000-0000-0000000000a1', 10),
	('00000000-0000-0000-0000-0000000000a2', 5);
INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 100, 50, 'active'),
	('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-0000000000a2', 100, 20, 'active');

CREATE FUNCTION skip_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RETURN NULL;
END $$;

-- Rounds: the application freezes round b1's counters.
CREATE TRIGGER freeze_rounds BEFORE UPDATE ON lottery_rounds FOR EACH ROW EXECUTE FUNCTION skip_update();
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-000000000001', 'R-1', '00000000-0000-0000-0000-0000000000c1',
	 '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 'lottery_win', 2, 1, (now() AT TIME ZONE 'UTC') - interval '2 hours');
CALL release_expired_orders(30, 100) \gset
SELECT order_number, status FROM orders ORDER BY order_number;
SELECT stock FROM products WHERE id = '00000000-0000-0000-0000-0000000000a1';
SELECT sold_shares FROM lottery_rounds WHERE id = '00000000-0000-0000-0000-0000000000b1';
SELECT order_number, outcome, stock_delta, shares_delta, round_id
FROM release_expired_orders.order_events ORDER BY id;
SELECT found, released, failed, outcome FROM release_expired_orders.runs ORDER BY id;

-- Undo, with the trigger gone: stock is taken again, shares are not
-- counted again (50 stays 50).
DROP TRIGGER freeze_rounds ON lottery_rounds;
SELECT order_number, status, stock_taken, shares_counted
FROM release_expired_orders.restore_order('00000000-0000-0000-0000-000000000001');
SELECT stock FROM products WHERE id = '00000000-0000-0000-0000-0000000000a1';
SELECT sold_shares FROM lottery_rounds WHERE id = '00000000-0000-0000-0000-0000000000b1';
SELECT order_number, outcome, stock_delta, shares_delta
FROM release_expired_orders.order_events WHERE outcome = 'restored';
-- (the restored order is kept out of the next runs)
UPDATE orders SET created_at = (now() AT TIME ZONE 'UTC') + interval '1 hour' WHERE order_number = 'R-1';

-- Products: the application freezes product a2's stock.
CREATE TRIGGER freeze_products BEFORE UPDATE ON products FOR EACH ROW EXECUTE FUNCTION skip_update();
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-000000000002', 'P-1', '00000000-0000-0000-0000-0000000000c1',
	 '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000b2', 'lottery_win', 3, 1, (now() AT TIME ZONE 'UTC') - interval '2 hours');
CALL release_expired_orders(30, 100) \gset
SELECT order_number, status FROM orders ORDER BY order_number;
SELECT stock FROM products WHERE id = '00000000-0000-0000-0000-0000000000a2';
SELECT sold_shares FROM lottery_rounds WHERE id = '00000000-0000-0000-0000-0000000000b2';
SELECT order_number, outcome, stock_delta, shares_delta, product_id
FROM release_expired_orders.order_events WHERE order_number = 'P-1' ORDER BY id;
DROP TRIGGER freeze_products ON products;
SELECT order_number, status, stock_taken, shares_counted
FROM release_expired_orders.restore_order('00000000-0000-0000-0000-000000000002');
SELECT stock FROM products WHERE id = '00000000-0000-0000-0000-0000000000a2';
SELECT sold_shares FROM lottery_rounds WHERE id = '00000000-0000-0000-0000-0000000000b2';
SELECT order_number, outcome, stock_delta, shares_delta
FROM release_expired_orders.order_events WHERE outcome = 'restored' ORDER BY id;

-- A trigger that skips only some rows of a chunk: two orders of round b1
-- and one of b2, b1 frozen; each order's audit says what its own round got.
UPDATE orders SET created_at = (now() AT TIME ZONE 'UTC') + interval '1 hour';
CREATE FUNCTION freeze_b1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.id = '00000000-0000-0000-0000-0000000000b1' THEN RETURN NULL; END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER freeze_b1 BEFORE UPDATE ON lottery_rounds FOR EACH ROW EXECUTE FUNCTION freeze_b1();
INSERT INTO orders (id, order_number, user_id, round_id, type, quantity, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-000000000003', 'M-1', '00000000-0000-0000-0000-0000000000c1',
	 '00000000-0000-0000-0000-0000000000b1', 'lottery_win', 1, 1, (now() AT TIME ZONE 'UTC') - interval '3 hours'),
	('00000000-0000-0000-0000-000000000004', 'M-2', '00000000-0000-0000-0000-0000000000c1',
	 '00000000-0000-0000-0000-0000000000b1', 'lottery_win', 4, 1, (now() AT TIME ZONE 'UTC') - interval '2 hours'),
	('00000000-0000-0000-0000-000000000005', 'M-3', '00000000-0000-0000-0000-0000000000c1',
	 '00000000-0000-0000-0000-0000000000b2', 'lottery_win', 6, 1, (now() AT TIME ZONE 'UTC') - interval '1 hour');
CALL release_expired_orders(30, 100) \gset
SELECT id, sold_shares FROM lottery_rounds ORDER BY id;
SELECT order_number, outcome, stock_delta, shares_delta
FROM release_expired_orders.order_events WHERE order_number LIKE 'M-%' ORDER BY order_number, outcome;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP FUNCTION skip_update(), freeze_b1();
