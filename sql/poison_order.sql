-- One bad order never blocks the rest: its writes are rolled back, it stays
-- pending, it is counted failed and recorded with its SQLSTATE and message,
-- and every later run retries it.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
-- Retry a failed order at every run (the default backoff is tested in
-- retry_backoff).
SET release_expired_orders.retry_backoff = 0;

INSERT INTO products (id, stock) VALUES
	('00000000-0000-0000-0000-0000000000a1', 10),
	('00000000-0000-0000-0000-0000000000a2', 4);
INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 100, 50, 'active');
-- The application allows at most 5 units of product a2 in stock.
ALTER TABLE products ADD CONSTRAINT stock_cap CHECK (id <> '00000000-0000-0000-0000-0000000000a2' OR stock <= 5);

-- An application trigger that refuses one order.
CREATE FUNCTION refuse_ord_2() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.order_number = 'ORD-2' AND NEW.status = 'expired' THEN
		RAISE EXCEPTION 'order % is under review', NEW.order_number
			USING ERRCODE = 'P0001';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER refuse_ord_2 BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION refuse_ord_2();

INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'ORD-' || n,
	   '00000000-0000-0000-0000-0000000000c1', p::uuid, r::uuid, 'lottery_win', q, 1.00,
	   (now() AT TIME ZONE 'UTC') - (100 - n) * interval '1 minute'
FROM (VALUES
	(1, '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 2),
	(2, '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 3),
	(3, '00000000-0000-0000-0000-0000000000a2', NULL, 1),
	(4, '00000000-0000-0000-0000-0000000000a2', NULL, 1),
	(5, '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 4)
) AS v(n, p, r, q);

CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb #- '{summary,timestamp}' #- '{summary,processingTimeMs}' #- '{summary,runId}' AS summary;

-- ORD-2 (trigger) and ORD-4 (the CHECK after ORD-3 filled the cap) stay
-- pending and moved nothing; the rest were released.
SELECT order_number, status, payment_status, notes IS NULL AS notes_untouched FROM orders ORDER BY order_number;
SELECT id, stock FROM products ORDER BY id;
SELECT sold_shares FROM lottery_rounds;
SELECT order_number, outcome, sqlstate, message, stock_delta, shares_delta
FROM release_expired_orders.order_events ORDER BY order_number, outcome;
SELECT user_id, content FROM notifications WHERE content LIKE '%failed%' ORDER BY content;
SELECT found, released, failed, outcome, error FROM release_expired_orders.runs;

-- The next run retries them, and they fail again without harming anything.
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'failed' AS failed, (:'summary'::jsonb)->'summary'->>'successful' AS successful;
SELECT found, released, failed, outcome FROM release_expired_orders.runs ORDER BY id;
SELECT id, stock FROM products ORDER BY id;

-- Once the cause is gone, the next run releases them.
DROP TRIGGER refuse_ord_2 ON orders;
ALTER TABLE products DROP CONSTRAINT stock_cap;
CALL release_expired_orders(30, 100) \gset
SELECT order_number, status FROM orders ORDER BY order_number;
SELECT id, stock FROM products ORDER BY id;
SELECT sold_shares FROM lottery_rounds;
SELECT found, released, failed, outcome FROM release_expired_orders.runs ORDER BY id;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP FUNCTION refuse_ord_2();
