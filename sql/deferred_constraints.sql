-- An error that would surface only at COMMIT (a DEFERRABLE INITIALLY
-- DEFERRED constraint trigger) fails its own order like any other error
--: the others are released and the run is partial, not
-- failed or interrupted.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
SET release_expired_orders.retry_backoff = 0;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 100, 50, 'active');

-- The application checks at commit that a cancelled order of D-2 is never
-- written (a deferred constraint trigger).
CREATE FUNCTION check_d2() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.order_number = 'D-2' AND NEW.status = 'expired' THEN
		RAISE EXCEPTION 'order % must not be cancelled', NEW.order_number
			USING ERRCODE = '23514';
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER check_d2 AFTER UPDATE ON orders
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_d2();

INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'D-' || n,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   '00000000-0000-0000-0000-0000000000b1', 'lottery_win', 2, 1.00,
	   (now() AT TIME ZONE 'UTC') - (100 - n) * interval '1 minute'
FROM generate_series(1, 4) AS n;

-- A plain CALL (it commits, as pg_cron runs it).
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS successful,
	   (:'summary'::jsonb)->'summary'->>'failed' AS failed,
	   (:'summary'::jsonb)->'errors' AS errors;
SELECT order_number, status, payment_status, fulfillment_status FROM orders ORDER BY order_number;
SELECT stock FROM products;
SELECT sold_shares FROM lottery_rounds;
SELECT order_number, outcome, sqlstate, message, stock_delta, shares_delta
FROM release_expired_orders.order_events ORDER BY order_number, outcome;
SELECT found, released, failed, outcome, error FROM release_expired_orders.runs;
SELECT status FROM release_expired_orders.health() WHERE "check" = 'consecutive_failed_runs';

-- The next run fails it again alone; then, without the constraint, releases it.
CALL release_expired_orders(30, 100) \gset
SELECT found, released, failed, outcome, error FROM release_expired_orders.runs ORDER BY id;
DROP TRIGGER check_d2 ON orders;
CALL release_expired_orders(30, 100) \gset
SELECT order_number, status FROM orders ORDER BY order_number;
SELECT stock FROM products;
SELECT sold_shares FROM lottery_rounds;
SELECT found, released, failed, outcome FROM release_expired_orders.runs ORDER BY id;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP FUNCTION check_d2();
