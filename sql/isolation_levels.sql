-- Every transaction the job starts runs at READ COMMITTED whatever
-- default_transaction_isolation says; a CALL inside a REPEATABLE READ or
-- SERIALIZABLE transaction block is refused.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'I-' || n,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   'direct_buy', 1, 1.00, (now() AT TIME ZONE 'UTC') - (100 - n) * interval '1 minute'
FROM generate_series(1, 6) AS n;

-- The application's trigger records the isolation level it runs at.
CREATE TABLE seen (order_number text, isolation text);
CREATE FUNCTION record_isolation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO seen VALUES (NEW.order_number, current_setting('transaction_isolation'));
	RETURN NEW;
END $$;
CREATE TRIGGER record_isolation BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION record_isolation();

-- A serializable default (as ALTER DATABASE/ROLE ... SET would give): a
-- plain CALL works, and its transactions are READ COMMITTED.
SET default_transaction_isolation = 'serializable';
SET release_expired_orders.chunk_size = 2;
CALL release_expired_orders(30, 3) \gset
SELECT (:'summary'::jsonb)->>'success' AS success,
	   (:'summary'::jsonb)->'summary'->>'successful' AS successful;
SELECT order_number, isolation FROM seen ORDER BY order_number;
SELECT found, released, failed, outcome, atomic FROM release_expired_orders.runs ORDER BY id;
-- The session's own default is untouched.
SHOW default_transaction_isolation;
SHOW transaction_isolation;

-- repeatable read as the default, too.
SET default_transaction_isolation = 'repeatable read';
CALL release_expired_orders(30, 1) \gset
SELECT order_number, isolation FROM seen ORDER BY order_number;
SHOW transaction_isolation;

-- Inside a REPEATABLE READ or SERIALIZABLE block: refused, nothing changes.
RESET default_transaction_isolation;
DELETE FROM seen;
\set VERBOSITY sqlstate
BEGIN ISOLATION LEVEL REPEATABLE READ;
CALL release_expired_orders(30, 100);
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
CALL release_expired_orders(30, 100);
ROLLBACK;
-- The same with the default at serializable and a plain BEGIN.
SET default_transaction_isolation = 'serializable';
BEGIN;
CALL release_expired_orders(30, 100);
ROLLBACK;
\set VERBOSITY default
BEGIN ISOLATION LEVEL REPEATABLE READ;
CALL release_expired_orders(30, 100);
ROLLBACK;
SELECT count(*) AS still_pending FROM orders WHERE status = 'pending';
SELECT count(*) AS runs FROM release_expired_orders.runs;
SELECT count(*) AS triggered FROM seen;

-- An explicit READ COMMITTED block works in the caller's transaction.
BEGIN ISOLATION LEVEL READ COMMITTED;
CALL release_expired_orders(30, 100) \gset
COMMIT;
SELECT order_number, isolation FROM seen ORDER BY order_number;
SELECT order_number, status FROM orders ORDER BY order_number;
SELECT stock FROM products;
SELECT found, released, failed, outcome, atomic FROM release_expired_orders.runs ORDER BY id;
RESET default_transaction_isolation;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications, seen;
DROP FUNCTION record_isolation();
