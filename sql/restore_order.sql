--
-- restore_order() undoes one release (README, Undo): from the release's audit
-- row, the order gets its statuses back, the stock returned is taken again
-- and the shares given back are counted again, or an error says which
-- condition failed and nothing changes.  Restoring twice, or restoring an
-- order the job never released, is an error; a restore writes its own
-- audit row; a restored order that expires again can be released and
-- restored again.
--
\set SHOW_CONTEXT never
-- (without pg_cron it warns that the job is not scheduled: see scheduling)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
SET client_min_messages = warning;
CREATE SCHEMA restore_app;
SET search_path = restore_app, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
RESET client_min_messages;
SET release_expired_orders.app_schema = restore_app;

INSERT INTO products (id, name, stock) VALUES
 ('a0000000-0000-0000-0000-00000000000a', 'A', 5),
 ('a0000000-0000-0000-0000-00000000000b', 'B', 5),
 ('a0000000-0000-0000-0000-00000000000c', 'C', 0),
 ('a0000000-0000-0000-0000-00000000000d', 'D', 5);
INSERT INTO lottery_rounds (id, product_id, round_number, total_shares, sold_shares, status) VALUES
 ('b0000000-0000-0000-0000-000000000001', 'a0000000-0000-0000-0000-00000000000a', 1, 10, 10, 'active'),
 ('b0000000-0000-0000-0000-000000000002', 'a0000000-0000-0000-0000-00000000000a', 2, 10, 4, 'active'),
 ('b0000000-0000-0000-0000-000000000003', 'a0000000-0000-0000-0000-00000000000a', 3, 10, 6, 'active'),
 ('b0000000-0000-0000-0000-000000000004', 'a0000000-0000-0000-0000-00000000000a', 4, 10, 1, 'active');
-- R1..R8 expired and pending; N1 pending but not expired.
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount,
					notes, created_at)
VALUES
 ('c0000000-0000-0000-0000-000000000001', 'R1', 'd0000000-0000-0000-0000-000000000001',
  'a0000000-0000-0000-0000-00000000000a', 'b0000000-0000-0000-0000-000000000001', 'lottery_win', 2, 20,
  'gift', (now() AT TIME ZONE 'UTC') - interval '2 hours'),
 ('c0000000-0000-0000-0000-000000000002', 'R2', 'd0000000-0000-0000-0000-000000000001',
  'a0000000-0000-0000-0000-00000000000b', NULL, 'direct_buy', 1, 10,
  NULL, (now() AT TIME ZONE 'UTC') - interval '2 hours'),
 ('c0000000-0000-0000-0000-000000000003', 'R3', 'd0000000-0000-0000-0000-000000000002',
  NULL, NULL, 'recharge', 1, 10, NULL, (now() AT TIME ZONE 'UTC') - interval '2 hours'),
 ('c0000000-0000-0000-0000-000000000004', 'R4', 'd0000000-0000-0000-0000-000000000002',
  'a0000000-0000-0000-0000-00000000000a', 'b0000000-0000-0000-0000-000000000002', 'lottery_win', 1, 10,
  NULL, (now() AT TIME ZONE 'UTC') - interval '2 hours'),
 ('c0000000-0000-0000-0000-000000000005', 'R5', 'd0000000-0000-0000-0000-000000000003',
  'a0000000-0000-0000-0000-00000000000c', NULL, 'direct_buy', 3, 30,
  NULL, (now() AT TIME ZONE 'UTC') - interval '2 hours'),
 ('c0000000-0000-0000-0000-000000000006', 'R6', 'd0000000-0000-0000-0000-000000000003',
  NULL, 'b0000000-0000-0000-0000-000000000003', 'lottery_win', 2, 20,
  NULL, (now() AT TIME ZONE 'UTC') - interval '2 hours'),
 ('c0000000-0000-0000-0000-000000000007', 'R7', 'd0000000-0000-0000-0000-000000000004',
  'a0000000-0000-0000-0000-00000000000d', NULL, 'direct_buy', 1, 10,
  NULL, (now() AT TIME ZONE 'UTC') - interval '2 hours'),
 ('c0000000-0000-0000-0000-000000000008', 'R8', 'd0000000-0000-0000-0000-000000000004',
  NULL, 'b0000000-0000-0000-0000-000000000004', 'lottery_win', 3, 30,
  NULL, (now() AT TIME ZONE 'UTC') - interval '2 hours'),
 ('c0000000-0000-0000-0000-000000000009', 'N1', 'd0000000-0000-0000-0000-000000000004',
  'a0000000-0000-0000-0000-00000000000a', NULL, 'direct_buy', 1, 10,
  NULL, (now() AT TIME ZONE 'UTC') - interval '5 minutes');

CREATE VIEW state AS
SELECT 'order ' || o.order_number AS what,
	   o.status || '/' || o.payment_status || '/' || o.fulfillment_status AS value
  FROM orders o
UNION ALL SELECT 'stock ' || p.name, p.stock::text FROM products p
UNION ALL SELECT 'round ' || r.round_number, r.sold_shares || ' of ' || r.total_shares || ' ' || r.status
  FROM lottery_rounds r;
CREATE VIEW audit AS
SELECT e.order_number, e.outcome, e.prev_status, e.prev_payment_status, e.prev_fulfillment_status,
	   e.stock_delta, e.shares_delta, e.run_id IS NULL AS by_hand
  FROM release_expired_orders.order_events e ORDER BY e.id;

CALL release_expired_orders() \gset
SELECT * FROM state ORDER BY what;
SELECT * FROM audit WHERE outcome <> 'released' OR order_number IN ('R1', 'R8');

-- R1: stock 2 taken again from A, 2 shares counted again in round 1.
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000001');
SELECT * FROM state WHERE what IN ('order R1', 'stock A', 'round 1');
SELECT notes ~ E'^gift\n\\[系统\\] 订单超时已过期 - .*\n\\[系统\\] 订单已恢复 - \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$'
		   AS notes_tell_both,
	   updated_at BETWEEN (now() AT TIME ZONE 'UTC') - interval '1 minute' AND (now() AT TIME ZONE 'UTC')
		   AS updated_at_in_utc
  FROM orders WHERE order_number = 'R1';
SELECT * FROM audit WHERE order_number = 'R1';
SELECT message LIKE 'release of run 1 undone by %' AS message_names_run_and_role
  FROM release_expired_orders.order_events WHERE order_number = 'R1' AND outcome = 'restored';

-- Twice is an error.
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000001');
\echo :LAST_ERROR_SQLSTATE

-- Not released by the job: a pending order, and an order that does not exist.
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000009');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-0000000000ff');
\echo :LAST_ERROR_SQLSTATE

-- R3 moved no counters: only its statuses come back.
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000003');

-- Each refusal names its reason and changes nothing.
SELECT * INTO TEMP before FROM state;
-- R2: the application changed the order after the release.
UPDATE orders SET status = 'refunded' WHERE order_number = 'R2';
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000002');
UPDATE orders SET status = 'expired' WHERE order_number = 'R2';
-- R4: its round is drawing, not active.
UPDATE lottery_rounds SET status = 'drawing' WHERE round_number = 2;
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000004');
UPDATE lottery_rounds SET status = 'active' WHERE round_number = 2;
-- R5: two of the three units returned were sold again.
UPDATE products SET stock = 1 WHERE name = 'C';
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000005');
UPDATE products SET stock = 3 WHERE name = 'C';
-- R6: the shares given back were sold again.
UPDATE lottery_rounds SET sold_shares = 9 WHERE round_number = 3;
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000006');
UPDATE lottery_rounds SET sold_shares = 4 WHERE round_number = 3;
-- R7: the product is gone.
DELETE FROM products WHERE name = 'D';
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000007');
INSERT INTO products (id, name, stock) VALUES ('a0000000-0000-0000-0000-00000000000d', 'D', 6);
SELECT s.what, b.value AS before, s.value AS after
  FROM state s FULL JOIN before b USING (what) WHERE s.value IS DISTINCT FROM b.value;
SELECT count(*) AS restored_rows FROM release_expired_orders.order_events WHERE outcome = 'restored';

-- Once the conditions hold again, each restores.
SELECT order_number, status, stock_taken, shares_counted FROM (VALUES
	('c0000000-0000-0000-0000-000000000002'::uuid), ('c0000000-0000-0000-0000-000000000004'),
	('c0000000-0000-0000-0000-000000000005'), ('c0000000-0000-0000-0000-000000000006'),
	('c0000000-0000-0000-0000-000000000007')) v (id),
	LATERAL release_expired_orders.restore_order(v.id) ORDER BY order_number;
-- R8's release was clamped at 0 shares sold (1 of its 3 was returned):
-- the restore counts 1 again, not 3.
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000008');
SELECT * FROM state ORDER BY what;

-- A restored order still unpaid expires again, and can be restored again.
CALL release_expired_orders() \gset
SELECT :'summary'::jsonb #> '{summary,successful}' AS released_again;
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000001');
SELECT outcome, stock_delta, shares_delta FROM audit WHERE order_number = 'R1';

-- timestamptz columns get now() as is.
UPDATE orders SET updated_at = NULL WHERE order_number = 'R3';
ALTER TABLE orders ALTER COLUMN updated_at TYPE timestamptz USING updated_at AT TIME ZONE 'UTC';
CALL release_expired_orders() \gset
SELECT * FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000003');
SELECT updated_at BETWEEN now() - interval '1 minute' AND now() AS updated_at_now
  FROM orders WHERE order_number = 'R3';

-- The application's own triggers run in the caller's search_path, as they
-- do for the release: this one names its audit table without a schema.
-- The caller's search_path is the same after the restore.
CREATE TABLE order_audit (order_number text, status text);
CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO order_audit VALUES (NEW.order_number, NEW.status);
	RETURN NEW;
END $$;
CREATE TRIGGER log_order AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION log_order();
CALL release_expired_orders() \gset
SELECT order_number, status, stock_taken, shares_counted
  FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000001');
SELECT * FROM order_audit WHERE order_number = 'R1';
SHOW search_path;
-- A refused restore leaves the caller's path too.
SELECT order_number FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000001');
SHOW search_path;
DROP TRIGGER log_order ON orders;
DROP FUNCTION log_order();
DROP TABLE order_audit;

-- The grants the README lists for the role that handles late payments are
-- enough.
CALL release_expired_orders() \gset
CREATE ROLE regress_reo_payments;
GRANT USAGE ON SCHEMA release_expired_orders, restore_app TO regress_reo_payments;
GRANT EXECUTE ON FUNCTION release_expired_orders.restore_order(uuid) TO regress_reo_payments;
GRANT SELECT, INSERT ON release_expired_orders.order_events TO regress_reo_payments;
GRANT SELECT, UPDATE ON orders, products, lottery_rounds TO regress_reo_payments;
SET ROLE regress_reo_payments;
SELECT order_number, status, stock_taken, shares_counted
  FROM release_expired_orders.restore_order('c0000000-0000-0000-0000-000000000001');
RESET ROLE;
REVOKE ALL ON SCHEMA release_expired_orders, restore_app FROM regress_reo_payments;
REVOKE ALL ON FUNCTION release_expired_orders.restore_order(uuid) FROM regress_reo_payments;
REVOKE ALL ON release_expired_orders.order_events FROM regress_reo_payments;
REVOKE ALL ON orders, products, lottery_rounds FROM regress_reo_payments;
DROP ROLE regress_reo_payments;

-- Nothing that writes is executable by PUBLIC.
CREATE ROLE regress_reo_nobody;
SELECT p.oid::regprocedure AS function,
	   has_function_privilege('regress_reo_nobody', p.oid, 'EXECUTE') AS public_may_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'release_expired_orders'::regnamespace
   AND p.proname IN ('restore_order', 'purge_history', 'schedule', 'unschedule')
 ORDER BY 1::text;
DROP ROLE regress_reo_nobody;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA restore_app CASCADE;
DROP EXTENSION release_expired_orders;
