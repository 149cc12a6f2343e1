--
-- Faults are isolated to their orders (README, Faults): an integer overflow of
-- products.stock, a CHECK constraint on products and a trigger raising for
-- one order each roll back that order's writes only; it stays pending, is
-- counted failed and recorded with its SQLSTATE and message, the others are
-- released, every run retries it, and once the cause is gone it is released.
-- A cancel (statement_timeout) is not a fault of one order: it ends the run.
--
\set VERBOSITY terse
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
CREATE SCHEMA faults;
SET search_path = faults, public;
\i test/fixtures/app_schema.sql
RESET client_min_messages;
-- Retry a failed order at every run (the default backoff is tested in
-- retry_backoff).
SET release_expired_orders.retry_backoff = 0;
SET release_expired_orders.app_schema = faults;

INSERT INTO products (id, name, stock) VALUES
	('11111111-0000-0000-0000-000000000001', 'plain', 10),
	('11111111-0000-0000-0000-000000000002', 'near_max', 2147483646),
	('11111111-0000-0000-0000-000000000003', 'capped', 99);
INSERT INTO lottery_rounds (id, product_id, round_number, total_shares, sold_shares, status)
VALUES ('22222222-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 1, 100, 50, 'active');
ALTER TABLE products ADD CONSTRAINT products_capped CHECK (name <> 'capped' OR stock <= 100);
CREATE FUNCTION frozen_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.order_number = 'F5' AND NEW.status = 'expired' THEN
		RAISE EXCEPTION 'order F5 is frozen by the application';
	END IF;
	RETURN NEW;
END$$;
CREATE TRIGGER frozen_order BEFORE UPDATE ON orders
	FOR EACH ROW EXECUTE FUNCTION frozen_order();

-- F2 overflows near_max, F4 breaks the CHECK of capped, F5 meets the
-- trigger; F1, F3 and F6 are fine.  All expired, oldest first.
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount, created_at)
SELECT ('33333333-0000-0000-0000-00000000000' || n)::uuid, 'F' || n,
	'44444444-0000-0000-0000-000000000001', ('11111111-0000-0000-0000-00000000000' || p)::uuid,
	CASE WHEN p = 1 THEN '22222222-0000-0000-0000-000000000001'::uuid END,
	'lottery_win', q, 10.00,
	(now() AT TIME ZONE 'UTC') - interval '3 hours' + n * interval '1 minute'
  FROM (VALUES (1, 1, 1), (2, 2, 2), (3, 1, 1), (4, 3, 2), (5, 1, 1), (6, 1, 1)) AS v(n, p, q);

CREATE VIEW order_state AS
	SELECT o.order_number, o.status, o.payment_status, p.name AS product, p.stock,
		(SELECT count(*) FROM release_expired_orders.order_events e
		  WHERE e.order_id = o.id AND e.outcome = 'released') AS released_events,
		(SELECT count(*) FROM release_expired_orders.order_events e
		  WHERE e.order_id = o.id AND e.outcome = 'failed') AS failed_events
	  FROM orders o LEFT JOIN products p ON p.id = o.product_id;
CREATE VIEW failures AS
	SELECT e.run_id, e.order_number, e.sqlstate, e.message
	  FROM release_expired_orders.order_events e WHERE e.outcome = 'failed';

-- One run: three released, three failed, each with its own reason.
CALL release_expired_orders(30, 100) \gset
SELECT s->'summary'->>'totalFound' AS found, s->'summary'->>'successful' AS released,
	s->'summary'->>'failed' AS failed, s->'summary'->>'outcome' AS outcome
  FROM (SELECT :'summary'::jsonb AS s) x;
SELECT e->>'orderNumber' AS order_number, e->>'error' AS error
  FROM jsonb_array_elements(:'summary'::jsonb->'errors') e ORDER BY 1;
SELECT * FROM order_state ORDER BY order_number;
SELECT sold_shares FROM lottery_rounds;		-- 50 - 3
SELECT order_number, sqlstate, message FROM failures ORDER BY order_number;
SELECT count(*) AS failure_notifications FROM notifications
 WHERE user_id = '00000000-0000-0000-0000-000000000000'
   AND content LIKE '%order_release_failed%';
SELECT found, released, failed, outcome FROM release_expired_orders.runs ORDER BY id;

-- The next run retries them, and they fail again, each for the same reason.
CALL release_expired_orders(30, 100) \gset
SELECT s->'summary'->>'totalFound' AS found, s->'summary'->>'successful' AS released,
	s->'summary'->>'failed' AS failed, s->'summary'->>'outcome' AS outcome
  FROM (SELECT :'summary'::jsonb AS s) x;
SELECT run_id, order_number, sqlstate FROM failures ORDER BY run_id, order_number;

-- Remove the causes: the next run releases them.
DROP TRIGGER frozen_order ON orders;
ALTER TABLE products DROP CONSTRAINT products_capped;
UPDATE products SET stock = 0 WHERE name = 'near_max';
CALL release_expired_orders(30, 100) \gset
SELECT s->'summary'->>'successful' AS released, s->'summary'->>'failed' AS failed
  FROM (SELECT :'summary'::jsonb AS s) x;
SELECT * FROM order_state ORDER BY order_number;

--
-- statement_timeout cancels the whole CALL (57014): the chunks committed
-- before it stay, the order being released is not marked failed but stays
-- pending with the rest, the run row reads 'failed' with the error, and
-- the error reaches the caller.  The next run carries on.
--
CREATE FUNCTION slow_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.order_number = 'T3' THEN
		PERFORM pg_sleep(30);
	END IF;
	RETURN NEW;
END$$;
CREATE TRIGGER slow_order BEFORE UPDATE ON orders
	FOR EACH ROW EXECUTE FUNCTION slow_order();
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
SELECT ('55555555-0000-0000-0000-00000000000' || n)::uuid, 'T' || n,
	'44444444-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001',
	'direct_buy', 1, 10.00,
	(now() AT TIME ZONE 'UTC') - interval '2 hours' + n * interval '1 minute'
  FROM generate_series(1, 4) n;
SET release_expired_orders.chunk_size = 1;
SET statement_timeout = '1500ms';
CALL release_expired_orders(30, 100);
RESET statement_timeout;
SELECT * FROM order_state WHERE order_number LIKE 'T%' ORDER BY order_number;
SELECT found, released, failed, outcome, error
  FROM release_expired_orders.runs ORDER BY id DESC LIMIT 1;
DROP TRIGGER slow_order ON orders;
CALL release_expired_orders(30, 100) \gset
SELECT s->'summary'->>'successful' AS released, s->'summary'->>'failed' AS failed
  FROM (SELECT :'summary'::jsonb AS s) x;
SELECT count(*) AS pending FROM orders WHERE status = 'pending';
SELECT outcome, count(*) FROM release_expired_orders.runs GROUP BY 1 ORDER BY 1;

SET client_min_messages = error;
DROP SCHEMA faults CASCADE;
DROP EXTENSION release_expired_orders;
