-- A BEFORE UPDATE trigger on orders may veto the release by returning
-- NULL, by returning OLD, or by writing the old statuses back into NEW: a
-- row that did not become expired/cancelled/cancelled is a veto (audited,
-- backed off, nothing given back), never a release.  What is given back is
-- what the locked row reserved before the update, whatever a trigger does
-- to NEW (zeroes the quantity, clears the product or the round).  An order
-- an AFTER trigger puts back to pending is a veto too.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 100, 50, 'active');
CREATE FUNCTION app_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	CASE NEW.order_number
	WHEN 'KEEP-OLD' THEN RETURN OLD;
	WHEN 'WRITE-BACK' THEN
		NEW.status := OLD.status;
		NEW.payment_status := OLD.payment_status;
		NEW.fulfillment_status := OLD.fulfillment_status;
	WHEN 'HALF-BACK' THEN
		NEW.payment_status := OLD.payment_status;
	WHEN 'ZERO-QTY' THEN
		NEW.quantity := 0;
	WHEN 'NO-PRODUCT' THEN
		NEW.product_id := NULL;
		NEW.round_id := NULL;
	ELSE
	END CASE;
	RETURN NEW;
END $$;
CREATE TRIGGER app_rules BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION app_rules();
-- An AFTER trigger that puts one order back to pending once it is expired.
CREATE FUNCTION put_back() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.order_number = 'AFTER-BACK' AND NEW.status = 'expired' THEN
		UPDATE orders SET status = 'pending', payment_status = 'pending',
			fulfillment_status = 'pending' WHERE id = NEW.id;
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER put_back AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION put_back();
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, num,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   '00000000-0000-0000-0000-0000000000b1', 'lottery_win', 2, 1,
	   (now() AT TIME ZONE 'UTC') - (100 - n) * interval '1 minute'
FROM (VALUES (1, 'KEEP-OLD'), (2, 'WRITE-BACK'), (3, 'HALF-BACK'), (4, 'ZERO-QTY'), (5, 'NO-PRODUCT'),
			 (6, 'AFTER-BACK'))
	AS v (n, num);

-- Three runs: the vetoed orders give nothing back, at no run; the two
-- released ones give back their 2 units and 2 shares each, once.
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb -> 'summary' ->> 'successful' AS successful;
SET release_expired_orders.retry_backoff = 0;
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb ->> 'message' AS second_run;
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb ->> 'message' AS third_run;
SELECT order_number, status, payment_status, fulfillment_status, quantity, product_id IS NULL AS no_product
FROM orders ORDER BY order_number;
SELECT stock FROM products;
SELECT sold_shares FROM lottery_rounds;
SELECT order_number, outcome, count(*), sum(stock_delta) AS stock, sum(shares_delta) AS shares
FROM release_expired_orders.order_events GROUP BY 1, 2 ORDER BY 1, 2;
SELECT found, released, failed, vetoed, outcome FROM release_expired_orders.runs ORDER BY id;
-- The audit's deltas say what really moved.
SELECT (SELECT stock FROM products) - 10 AS stock_moved,
	   (SELECT sum(stock_delta) FROM release_expired_orders.order_events) AS stock_audited,
	   50 - (SELECT sold_shares FROM lottery_rounds) AS shares_moved,
	   -(SELECT sum(shares_delta) FROM release_expired_orders.order_events) AS shares_audited;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP FUNCTION app_rules(), put_back();
