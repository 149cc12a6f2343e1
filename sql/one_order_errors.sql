-- An error raised while releasing one order, of any SQLSTATE class, fails
-- that order (audited with its SQLSTATE, backed off) and no other: a
-- trigger that calls a dropped function only for lottery orders (class 42)
-- or raises a "cancel" of its own (class 57) does not end the run, and the
-- orders behind it are released.  Notifications that cannot be written, for
-- any error, are skipped, never the release.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 100, 50, 'active');
CREATE FUNCTION lottery_hook(uuid) RETURNS void LANGUAGE sql AS 'SELECT';
GRANT EXECUTE ON FUNCTION lottery_hook(uuid) TO PUBLIC;
CREATE FUNCTION app_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.type = 'lottery_win' THEN
		PERFORM lottery_hook(NEW.id);
	ELSIF NEW.order_number = 'ORD-3' THEN
		RAISE EXCEPTION 'not now' USING ERRCODE = 'query_canceled';
	ELSIF NEW.order_number = 'ORD-4' THEN
		RAISE EXCEPTION 'no memory for you' USING ERRCODE = 'out_of_memory';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER app_rules BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION app_rules();
DROP FUNCTION lottery_hook(uuid);
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, 'ORD-' || n,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   CASE WHEN t = 'lottery_win' THEN '00000000-0000-0000-0000-0000000000b1' END::uuid, t, 1, 1,
	   (now() AT TIME ZONE 'UTC') - (100 - n) * interval '1 minute'
FROM (VALUES (1, 'lottery_win'), (2, 'direct_buy'), (3, 'direct_buy'), (4, 'direct_buy'),
			 (5, 'lottery_win'), (6, 'direct_buy')) AS v (n, t);
-- The tables belong to a role that is not a superuser; a trigger on
-- notifications refuses every row with a serialization failure, an error
-- that says nothing about the order: the notifications are skipped, never
-- the release.  (Row-level security forced on the owner's notifications
-- would not stop them: the job writes them as the owner, without it.)
CREATE ROLE regress_reo_app;
ALTER TABLE orders OWNER TO regress_reo_app;
ALTER TABLE products OWNER TO regress_reo_app;
ALTER TABLE lottery_rounds OWNER TO regress_reo_app;
ALTER TABLE notifications OWNER TO regress_reo_app;
ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications FORCE ROW LEVEL SECURITY;
CREATE FUNCTION refuse_notification() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'notifications are being migrated' USING ERRCODE = 'serialization_failure';
END $$;
CREATE TRIGGER refuse_notification BEFORE INSERT ON notifications
	FOR EACH ROW EXECUTE FUNCTION refuse_notification();

CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb -> 'summary' ->> 'successful' AS successful,
	   :'summary'::jsonb -> 'summary' ->> 'failed' AS failed,
	   :'summary'::jsonb -> 'summary' ->> 'outcome' AS outcome;
SELECT order_number, status FROM orders ORDER BY order_number;
SELECT order_number, outcome, sqlstate FROM release_expired_orders.order_events ORDER BY order_number;
SELECT stock FROM products;
SELECT outcome, warnings FROM release_expired_orders.runs;
SELECT count(*) AS notifications FROM notifications;
-- The failed orders wait out their backoff: the next run finds nothing.
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb -> 'summary' ->> 'totalFound' AS found_again;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP FUNCTION app_rules(), refuse_notification();
DROP ROLE regress_reo_app;
