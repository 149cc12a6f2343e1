-- The compatibility notifications never block a release,
-- also when the chunk holds a poison order: a CHECK on notifications that
-- fails for every row, and one order that a trigger refuses.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
SET release_expired_orders.retry_backoff = 0;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
CREATE FUNCTION pg_temp.add_orders(prefix text, n integer) RETURNS void LANGUAGE sql AS $$
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	SELECT gen_random_uuid(), prefix || i, '00000000-0000-0000-0000-0000000000c1',
		   '00000000-0000-0000-0000-0000000000a1', 'direct_buy', 1, 1.00,
		   (now() AT TIME ZONE 'UTC') - (100 - i) * interval '1 minute'
	FROM generate_series(1, n) AS i
$$;

ALTER TABLE notifications ADD CONSTRAINT no_audit CHECK (type <> 'system_audit');
-- The others are released, the poison order fails alone (with its own
-- SQLSTATE), its failure notification is skipped too, with a WARNING.
CREATE FUNCTION refuse_x2() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.order_number = 'X-2' AND NEW.status = 'expired' THEN
		RAISE EXCEPTION 'order % is under review', NEW.order_number USING ERRCODE = 'P0001';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER refuse_x2 BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION refuse_x2();
SELECT pg_temp.add_orders('X-', 4);
CALL release_expired_orders(30, 100) \gset
SELECT order_number, status FROM orders WHERE order_number LIKE 'X-%' ORDER BY order_number;
SELECT stock FROM products;
SELECT count(*) AS notifications FROM notifications;
SELECT found, released, failed, outcome FROM release_expired_orders.runs ORDER BY id DESC LIMIT 1;
SELECT order_number, outcome, sqlstate FROM release_expired_orders.order_events
WHERE order_number LIKE 'X-%' ORDER BY order_number, outcome;

SELECT status FROM release_expired_orders.health() WHERE "check" = 'notifications';

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP FUNCTION refuse_x2();
