-- restore_order() trusts the released rows of order_events to move stock,
-- so only the extension's own statements write them: a
-- role with every privilege on the table, short of owning it, cannot forge,
-- change or delete them, while the job and undo run as that role.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, status,
					payment_status, fulfillment_status, created_at) VALUES
	('00000000-0000-0000-0000-000000000001', 'A-1', '00000000-0000-0000-0000-0000000000c1',
	 '00000000-0000-0000-0000-0000000000a1', 'direct_buy', 2, 1, 'pending', 'pending', 'pending',
	 (now() AT TIME ZONE 'UTC') - interval '2 hours'),
	-- paid long ago: nothing the job released
	('00000000-0000-0000-0000-000000000002', 'A-2', '00000000-0000-0000-0000-0000000000c1',
	 '00000000-0000-0000-0000-0000000000a1', 'direct_buy', 3, 1, 'expired', 'cancelled', 'cancelled',
	 (now() AT TIME ZONE 'UTC') - interval '3 hours');

-- A role given everything on the extension's tables (a sloppy GRANT ALL).
CREATE ROLE regress_reo_greedy;
GRANT USAGE ON SCHEMA release_expired_orders TO regress_reo_greedy;
GRANT ALL ON ALL TABLES IN SCHEMA release_expired_orders TO regress_reo_greedy;
GRANT EXECUTE ON PROCEDURE public.release_expired_orders(integer, integer, jsonb) TO regress_reo_greedy;
GRANT EXECUTE ON FUNCTION release_expired_orders.purge_history(interval),
	release_expired_orders.restore_order(uuid) TO regress_reo_greedy;
GRANT SELECT, UPDATE ON orders, products, lottery_rounds TO regress_reo_greedy;
GRANT INSERT ON notifications TO regress_reo_greedy;
SET ROLE regress_reo_greedy;

-- The job writes its audit as this role.
CALL release_expired_orders(30, 100) \gset
SELECT order_number, outcome, stock_delta FROM release_expired_orders.order_events ORDER BY id;

-- A forged release of A-2, which restore_order() would trust to take stock:
-- refused.
INSERT INTO release_expired_orders.order_events (run_id, order_id, order_number, quantity,
	outcome, prev_status, prev_payment_status, prev_fulfillment_status, stock_delta)
VALUES (1, '00000000-0000-0000-0000-000000000002', 'A-2', 3, 'released',
		'paid', 'paid', 'completed', 3);
-- Changing or deleting the real ones: refused.
UPDATE release_expired_orders.order_events SET stock_delta = 9;
DELETE FROM release_expired_orders.order_events;
TRUNCATE release_expired_orders.order_events;
SELECT count(*) AS events, sum(stock_delta) AS stock_delta FROM release_expired_orders.order_events;

-- A-2 was never released by the job: undo refuses, stock is untouched.
SELECT * FROM release_expired_orders.restore_order('00000000-0000-0000-0000-000000000002');
SELECT stock FROM products;

-- The real release is undone by the same role, which writes its restored row.
SELECT stock_taken FROM release_expired_orders.restore_order('00000000-0000-0000-0000-000000000001');
SELECT order_number, outcome, stock_delta FROM release_expired_orders.order_events ORDER BY id;
SELECT stock FROM products;
RESET ROLE;

-- The table's owner may still correct history by hand.
UPDATE release_expired_orders.order_events SET message = 'checked' WHERE outcome = 'restored';
SELECT count(*) AS checked FROM release_expired_orders.order_events WHERE message = 'checked';

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
REVOKE ALL ON SCHEMA public FROM regress_reo_greedy;
DROP ROLE regress_reo_greedy;
