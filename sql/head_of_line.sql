-- A head of orders that the application refuses to cancel never stops the
-- job: failing orders get a retry backoff and do not use up
-- batch_limit, so the orders behind them are released at the normal rate;
-- orders vetoed by a BEFORE trigger returning NULL are recorded as vetoed;
-- health() reports them as poison orders, critical past alert_after.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
SHOW release_expired_orders.retry_backoff;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 0);

-- The application refuses to cancel the orders H1..H5 (the five oldest).
CREATE FUNCTION refuse_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.order_number LIKE 'H%' AND NEW.status = 'expired' THEN
		RAISE EXCEPTION 'order % is disputed', NEW.order_number USING ERRCODE = 'P0001';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER refuse_head BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION refuse_head();

-- H1..H5 oldest, then R1..R8, each of quantity 1 of product a1.
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-0000000001' || lpad(n::text, 2, '0'))::uuid,
	   CASE WHEN n <= 5 THEN 'H' || n ELSE 'R' || (n - 5) END,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   'direct_buy', 1, 1.00, (now() AT TIME ZONE 'UTC') - (200 - n) * interval '1 minute'
FROM generate_series(1, 13) AS n;

-- Run 1, batch_limit 5: the five failures do not use up the budget, R1..R5
-- behind them are released in the same run.
CALL release_expired_orders(30, 5) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS successful,
	   (:'summary'::jsonb)->'summary'->>'failed' AS failed;
SELECT order_number, status FROM orders ORDER BY created_at;
SELECT stock FROM products;
SELECT found, released, failed, vetoed, outcome FROM release_expired_orders.runs ORDER BY id;
SELECT order_number, outcome, sqlstate, message, stock_delta
FROM release_expired_orders.order_events WHERE outcome = 'failed' ORDER BY order_number;

-- Run 2: the failed ones are in their backoff and not tried again; the rest
-- (R6..R8) are released.
CALL release_expired_orders(30, 5) \gset
SELECT order_number, status FROM orders ORDER BY created_at;
SELECT stock FROM products;
SELECT found, released, failed, vetoed, outcome FROM release_expired_orders.runs ORDER BY id;
SELECT order_number, count(*) FILTER (WHERE outcome = 'failed') AS failed_events,
	   count(*) FILTER (WHERE outcome = 'released') AS released_events
FROM release_expired_orders.order_events GROUP BY order_number ORDER BY order_number;

-- Vetoed orders: a BEFORE trigger that returns NULL for V1..V3, older than
-- everything else; W1..W3 behind them.
DROP TRIGGER refuse_head ON orders;
CREATE FUNCTION veto_v() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.order_number LIKE 'V%' AND NEW.status = 'expired' THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER veto_v BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION veto_v();
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-0000000002' || lpad(n::text, 2, '0'))::uuid,
	   CASE WHEN n <= 3 THEN 'V' || n ELSE 'W' || (n - 3) END,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   'direct_buy', 1, 1.00, (now() AT TIME ZONE 'UTC') - (500 - n) * interval '1 minute'
FROM generate_series(1, 6) AS n;

-- Run 3, batch_limit 3: V1..V3 vetoed (not released, nothing moved), W1..W3
-- released; the run is partial, not success with 0 released.
CALL release_expired_orders(30, 3) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS successful;
SELECT order_number, status, payment_status FROM orders WHERE order_number ~ '^[VW]' ORDER BY order_number;
SELECT stock FROM products;
SELECT found, released, failed, vetoed, outcome FROM release_expired_orders.runs ORDER BY id DESC LIMIT 1;
SELECT order_number, outcome, sqlstate, stock_delta, message
FROM release_expired_orders.order_events WHERE order_number ~ '^[VW]' ORDER BY order_number, outcome;

-- health(): no order has 3 consecutive attempts yet.
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'poison_orders';

-- Two more runs that retry at once (retry_backoff 0): the vetoed ones are
-- vetoed in 3 runs; H1..H5, whose trigger is gone, are retried and released
-- behind them, 3 per run.
SET release_expired_orders.retry_backoff = 0;
CALL release_expired_orders(30, 3) \gset
CALL release_expired_orders(30, 3) \gset
SELECT found, released, failed, vetoed, outcome FROM release_expired_orders.runs ORDER BY id DESC LIMIT 2;
SELECT order_number, string_agg(outcome, ',' ORDER BY id) AS outcomes
FROM release_expired_orders.order_events WHERE order_number ~ '^[HV]'
GROUP BY order_number ORDER BY order_number;
SET release_expired_orders.alert_after = '30min';
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'poison_orders';

-- They have held their stock for an hour: critical.
UPDATE release_expired_orders.order_events SET created_at = created_at - interval '61 minutes'
WHERE outcome = 'vetoed';
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'poison_orders';

-- Once the application lets them go, they are released and no longer poison.
DROP TRIGGER veto_v ON orders;
CALL release_expired_orders(30, 100) \gset
SELECT count(*) FILTER (WHERE status = 'expired') AS expired, count(*) AS orders FROM orders;
SELECT stock FROM products;
SELECT order_number, outcome FROM release_expired_orders.order_events
WHERE order_number LIKE 'V%' AND outcome = 'released' ORDER BY order_number;
SELECT status FROM release_expired_orders.health() WHERE "check" = 'poison_orders';

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP FUNCTION refuse_head(), veto_v();
