-- The audit says what really moved on products and lottery_rounds, and
-- undo takes back only that: a BEFORE trigger that moves a counter by more
-- than asked, or the wrong way, and an AFTER trigger that writes the row
-- again (a cap on stock), are audited as they moved.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

-- Product a1 gets one unit more than given back; round b1 one share less;
-- product a2 is capped at 12 by an AFTER trigger.
CREATE FUNCTION bonus_stock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id = '00000000-0000-0000-0000-0000000000a1' THEN
		NEW.stock := NEW.stock + 1;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER bonus_stock BEFORE UPDATE OF stock ON products
	FOR EACH ROW EXECUTE FUNCTION bonus_stock();
CREATE FUNCTION extra_share() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.sold_shares := NEW.sold_shares - 1;
	RETURN NEW;
END $$;
CREATE TRIGGER extra_share BEFORE UPDATE OF sold_shares ON lottery_rounds
	FOR EACH ROW EXECUTE FUNCTION extra_share();
CREATE FUNCTION cap_stock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.stock > 12 THEN
		UPDATE products SET stock = 12 WHERE id = NEW.id;
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER cap_stock AFTER UPDATE OF stock ON products
	FOR EACH ROW WHEN (NEW.id = '00000000-0000-0000-0000-0000000000a2') EXECUTE FUNCTION cap_stock();

INSERT INTO products (id, stock) VALUES
	('00000000-0000-0000-0000-0000000000a1', 10), ('00000000-0000-0000-0000-0000000000a2', 10);
INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 100, 50, 'active');
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount, created_at)
VALUES
	('00000000-0000-0000-0000-000000000001', 'ORD-1', '00000000-0000-0000-0000-0000000000c1',
	 '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1',
	 'lottery_win', 5, 1, (now() AT TIME ZONE 'UTC') - interval '3 hours'),
	('00000000-0000-0000-0000-000000000002', 'ORD-2', '00000000-0000-0000-0000-0000000000c1',
	 '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1',
	 'lottery_win', 2, 1, (now() AT TIME ZONE 'UTC') - interval '2 hours'),
	('00000000-0000-0000-0000-000000000003', 'ORD-3', '00000000-0000-0000-0000-0000000000c1',
	 '00000000-0000-0000-0000-0000000000a2', NULL, 'direct_buy', 5, 1,
	 (now() AT TIME ZONE 'UTC') - interval '1 hour');

CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb -> 'summary' ->> 'successful' AS successful;
-- What moved, and what the audit says, per counter.
SELECT p.id, p.stock - 10 AS moved,
	   (SELECT sum(e.stock_delta) FROM release_expired_orders.order_events e WHERE e.product_id = p.id) AS audited
FROM products p ORDER BY p.id;
SELECT 50 - r.sold_shares AS shares_moved,
	   -(SELECT sum(e.shares_delta) FROM release_expired_orders.order_events e WHERE e.round_id = r.id) AS audited
FROM lottery_rounds r;
SELECT order_number, outcome, stock_delta, shares_delta
FROM release_expired_orders.order_events ORDER BY order_number, id;

-- Undo of ORD-2 with the triggers still there: it takes back what the
-- release moved (3 units, 3 shares), the triggers move their extra, and the
-- restored row says what really moved.
SELECT stock_taken, shares_counted FROM release_expired_orders.restore_order('00000000-0000-0000-0000-000000000002');
SELECT outcome, stock_delta, shares_delta FROM release_expired_orders.order_events
WHERE order_number = 'ORD-2' AND outcome = 'restored';
-- The rest with the triggers gone: each undo takes back what its release moved.
DROP TRIGGER bonus_stock ON products;
DROP TRIGGER extra_share ON lottery_rounds;
DROP TRIGGER cap_stock ON products;
SELECT order_number, (release_expired_orders.restore_order(id)).stock_taken FROM orders
WHERE order_number <> 'ORD-2' ORDER BY 1;
-- Over releases and undos, every counter moved by what the audit says.
SELECT p.id, p.stock - 10 AS moved,
	   (SELECT sum(e.stock_delta) FROM release_expired_orders.order_events e WHERE e.product_id = p.id) AS audited
FROM products p ORDER BY p.id;
SELECT r.sold_shares - 50 AS shares_moved,
	   (SELECT sum(e.shares_delta) FROM release_expired_orders.order_events e WHERE e.round_id = r.id) AS audited
FROM lottery_rounds r;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP FUNCTION bonus_stock(), extra_share(), cap_stock();
