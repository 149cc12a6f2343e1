-- Inside the caller's transaction block (BEGIN; CALL ...; COMMIT) the job
-- checks constraints at the end of each statement, as in a plain CALL: the
-- application's code runs in a security-restricted operation, which cannot
-- queue a deferred trigger, so a DEFERRABLE INITIALLY DEFERRED constraint
-- trigger fires at once and fails only its own order.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

CREATE FUNCTION check_later() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.order_number = 'ORD-2' THEN
		RAISE EXCEPTION 'order % may not expire', NEW.order_number USING ERRCODE = 'check_violation';
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER check_later AFTER UPDATE ON orders
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_later();
INSERT INTO orders (id, order_number, user_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, 'ORD-' || n,
	   '00000000-0000-0000-0000-0000000000c1', 'direct_buy', 1, 1,
	   (now() AT TIME ZONE 'UTC') - (100 - n) * interval '1 minute'
FROM generate_series(1, 3) n;

BEGIN;
CALL release_expired_orders(30, 100) \gset
COMMIT;
SELECT :'summary'::jsonb -> 'summary' ->> 'successful' AS successful,
	   :'summary'::jsonb -> 'summary' ->> 'failed' AS failed;
SELECT order_number, status FROM orders ORDER BY 1;
SELECT order_number, outcome, sqlstate FROM release_expired_orders.order_events ORDER BY 1;

-- The caller's own deferred constraints are left as they are: a foreign key
-- the caller satisfies only before its COMMIT neither fails the CALL nor
-- becomes immediate.
CREATE TABLE parent (id integer PRIMARY KEY);
CREATE TABLE child (parent_id integer REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
UPDATE orders SET status = 'pending', payment_status = 'pending', fulfillment_status = 'pending'
WHERE order_number = 'ORD-1';
BEGIN;
INSERT INTO child VALUES (1);
CALL release_expired_orders(30, 100) \gset
INSERT INTO child VALUES (2);
INSERT INTO parent VALUES (1), (2);
COMMIT;
SELECT :'summary'::jsonb -> 'summary' ->> 'successful' AS successful;
SELECT count(*) AS children FROM child;

DROP TABLE child, parent;

-- A trigger of the application that writes to another of its tables, whose
-- constraint is deferred.  Inside a transaction block that constraint is the
-- caller's (the job makes only those of orders, products, lottery_rounds and
-- notifications immediate, as above): the orders fail, each saying why, and
-- nothing else changes.  SET CONSTRAINTS ... IMMEDIATE before the CALL, or a
-- CALL outside a transaction block, releases them.
CREATE TABLE order_log (order_id uuid REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
						what text);
CREATE FUNCTION log_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.order_log VALUES (NEW.id, NEW.status);
	RETURN NULL;
END $$;
CREATE TRIGGER log_it AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION log_it();
INSERT INTO orders (id, order_number, user_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, 'ORD-' || n,
	   '00000000-0000-0000-0000-0000000000c1', 'direct_buy', 1, 1,
	   (now() AT TIME ZONE 'UTC') - interval '2 hours'
FROM generate_series(7, 8) n;
BEGIN;
CALL release_expired_orders(30, 100) \gset
COMMIT;
SELECT o.order_number, o.status, e.outcome, e.sqlstate, e.message
FROM orders o JOIN release_expired_orders.order_events e ON e.order_id = o.id
WHERE o.order_number IN ('ORD-7', 'ORD-8') ORDER BY 1;
SELECT count(*) AS logged FROM order_log;
INSERT INTO orders (id, order_number, user_id, type, quantity, total_amount, created_at)
VALUES ('00000000-0000-0000-0000-000000000009', 'ORD-9', '00000000-0000-0000-0000-0000000000c1',
		'direct_buy', 1, 1, (now() AT TIME ZONE 'UTC') - interval '2 hours');
BEGIN;
SET CONSTRAINTS order_log_order_id_fkey IMMEDIATE;
CALL release_expired_orders(30, 100) \gset
COMMIT;
SELECT order_number, status FROM orders WHERE order_number = 'ORD-9';
SELECT count(*) AS logged FROM order_log;
DROP TRIGGER log_it ON orders;
DROP TABLE order_log;
DROP FUNCTION log_it();
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP FUNCTION check_later();
