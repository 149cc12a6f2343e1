-- The audit guard lets the extension write its released rows only in its
-- own audit statements: the application's triggers, which run inside the
-- release, cannot forge a released row (that restore_order() would trust
-- to move stock), even when their role may insert into the audit table;
-- and a statement of the extension nested in such a trigger (preview(),
-- oldest_deadline()) does not switch the guard off for the statement
-- around it.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
SET release_expired_orders.retry_backoff = 0;

-- The application's owner also runs the job, with the README's grants.
CREATE ROLE regress_reo_app;
GRANT CREATE ON SCHEMA public TO regress_reo_app;
ALTER TABLE orders OWNER TO regress_reo_app;
ALTER TABLE products OWNER TO regress_reo_app;
ALTER TABLE lottery_rounds OWNER TO regress_reo_app;
ALTER TABLE notifications OWNER TO regress_reo_app;
GRANT EXECUTE ON PROCEDURE public.release_expired_orders(integer, integer, jsonb) TO regress_reo_app;
GRANT USAGE ON SCHEMA release_expired_orders TO regress_reo_app;
GRANT SELECT, INSERT, UPDATE ON release_expired_orders.runs TO regress_reo_app;
GRANT SELECT, INSERT ON release_expired_orders.order_events TO regress_reo_app;
GRANT EXECUTE ON FUNCTION release_expired_orders.purge_history(interval) TO regress_reo_app;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, 'ORD-' || n,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   'direct_buy', 1, 1, (now() AT TIME ZONE 'UTC') - (100 - n) * interval '1 minute'
FROM generate_series(1, 3) n;
-- Paid long ago; never released.
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount,
					payment_status, created_at)
VALUES ('00000000-0000-0000-0000-000000000009', 'PAID', '00000000-0000-0000-0000-0000000000c1',
		'00000000-0000-0000-0000-0000000000a1', 'direct_buy', 5, 1, 'paid',
		(now() AT TIME ZONE 'UTC') - interval '1 day');

SET ROLE regress_reo_app;
-- ORD-1: the trigger forges a released row for PAID; ORD-2: it asks the
-- extension for the next deadline in the middle of the release.
CREATE FUNCTION app_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.order_number = 'ORD-1' THEN
		INSERT INTO release_expired_orders.order_events (run_id, order_id, order_number, quantity,
			product_id, outcome, prev_status, prev_payment_status, prev_fulfillment_status, stock_delta)
		VALUES (0, '00000000-0000-0000-0000-000000000009', 'PAID', 5,
				'00000000-0000-0000-0000-0000000000a1', 'released', 'pending', 'pending', 'pending', 5);
	ELSIF NEW.order_number = 'ORD-2' THEN
		PERFORM release_expired_orders.oldest_deadline();
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER app_rules BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION app_rules();

CALL release_expired_orders(30, 100) \gset
RESET ROLE;
SELECT :'summary'::jsonb -> 'summary' ->> 'successful' AS successful,
	   :'summary'::jsonb -> 'summary' ->> 'failed' AS failed;
SELECT order_number, status FROM orders ORDER BY 1;
-- No forged row; ORD-1 failed with the guard's error.
SELECT order_number, outcome, sqlstate FROM release_expired_orders.order_events ORDER BY 1, 2;
SELECT stock FROM products;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP FUNCTION app_rules();
REVOKE CREATE ON SCHEMA public FROM regress_reo_app;
DROP ROLE regress_reo_app;
