-- Bad arguments, bad settings and an application schema the job cannot work
-- with: a clear error (SQLSTATE, the thing named, a hint) and nothing changed.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
LOAD 'release_expired_orders';
INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 1);
INSERT INTO orders (id, order_number, user_id, product_id, type, total_amount, created_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'ORD-1', '00000000-0000-0000-0000-0000000000c1',
		'00000000-0000-0000-0000-0000000000a1', 'direct_buy', 1, (now() AT TIME ZONE 'UTC') - interval '1 hour');

-- Arguments outside 1..525600 and 1..1000000.
CALL release_expired_orders(0, 100);
\echo :LAST_ERROR_SQLSTATE
CALL release_expired_orders(-5, 100);
\echo :LAST_ERROR_SQLSTATE
CALL release_expired_orders(525601, 100);
\echo :LAST_ERROR_SQLSTATE
CALL release_expired_orders(30, 0);
\echo :LAST_ERROR_SQLSTATE
CALL release_expired_orders(30, 1000001);
\echo :LAST_ERROR_SQLSTATE
CALL release_expired_orders(2147483647, -2147483648);
\echo :LAST_ERROR_SQLSTATE

-- Settings outside their ranges, or unusable.
SET release_expired_orders.timeout_minutes = 0;
\echo :LAST_ERROR_SQLSTATE
SET release_expired_orders.batch_limit = 1000001;
\echo :LAST_ERROR_SQLSTATE
SET release_expired_orders.chunk_size = 0;
\echo :LAST_ERROR_SQLSTATE
-- PostgreSQL 17 and later print the range of a setting with a unit with
-- that unit, "(1 ms .. 3600000 ms)": the message is shown without the range.
DO $$ BEGIN SET release_expired_orders.lock_timeout = 0;
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE '%: %', SQLSTATE, regexp_replace(SQLERRM, ' \([^()]* \.\. [^()]*\)$', '');
END $$;
SET release_expired_orders.naive_time_zone = 'Mars/Olympus';
\echo :LAST_ERROR_SQLSTATE
SET release_expired_orders.app_schema = '';
\echo :LAST_ERROR_SQLSTATE
SET release_expired_orders.no_such_setting = 1;
\echo :LAST_ERROR_SQLSTATE

-- An application schema that does not exist.
SET release_expired_orders.app_schema = 'shop';
CALL release_expired_orders(30, 100);
\echo :LAST_ERROR_SQLSTATE
RESET release_expired_orders.app_schema;

-- A missing table, a missing column, a column of the wrong type.
ALTER TABLE lottery_rounds RENAME TO rounds;
CALL release_expired_orders(30, 100);
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE rounds RENAME TO lottery_rounds;
ALTER TABLE orders RENAME COLUMN notes TO remarks;
CALL release_expired_orders(30, 100);
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE orders RENAME COLUMN remarks TO notes;
ALTER TABLE products ALTER COLUMN stock TYPE bigint;
CALL release_expired_orders(30, 100);
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE products ALTER COLUMN stock TYPE integer;
ALTER TABLE orders ALTER COLUMN created_at TYPE text;
CALL release_expired_orders(30, 100);
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE orders ALTER COLUMN created_at TYPE timestamp(3) USING created_at::timestamp(3);

-- A notifications table is optional; one that lacks a column is an error.
ALTER TABLE notifications DROP COLUMN sent_at;
CALL release_expired_orders(30, 100);
\echo :LAST_ERROR_SQLSTATE
SET release_expired_orders.write_notifications = off;
BEGIN;
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->'successful' AS successful, (SELECT count(*) FROM notifications) AS notifications;
ROLLBACK;
RESET release_expired_orders.write_notifications;

-- Nothing was changed by any of the refused calls.
SELECT order_number, status, notes FROM orders;
SELECT stock FROM products;
SELECT count(*) AS runs FROM release_expired_orders.runs;
SELECT count(*) AS events FROM release_expired_orders.order_events;

-- A role without the grant cannot run the job.
CREATE ROLE reo_nobody;
SET ROLE reo_nobody;
CALL release_expired_orders(30, 100);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE reo_nobody;

-- A value SET before the library is loaded would only draw a warning from
-- PostgreSQL and leave the default in force: the job refuses to run on it.
\c
SET release_expired_orders.timeout_minutes = 0;
CALL release_expired_orders(NULL, 100);
\echo :LAST_ERROR_SQLSTATE
SET release_expired_orders.timeout_minutes = 600;
SET release_expired_orders.write_notifications = off;
CALL release_expired_orders(NULL, 100) \gset
SELECT timeout_minutes, released FROM release_expired_orders.runs;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
