-- batch_limit and oldest first; a plain CALL commits every chunk_size orders,
-- a CALL inside a transaction block works in the caller's transaction.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 0);

-- Which top-level transaction released each order.
CREATE TABLE released_in (order_number text, xid xid8);
CREATE FUNCTION note_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.status = 'expired' THEN
		INSERT INTO released_in VALUES (NEW.order_number, pg_current_xact_id());
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER note_xid AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION note_xid();

-- Seven expired orders, ORD-1 the oldest; two share a created_at, so the id
-- breaks the tie.
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'ORD-' || n,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   'direct_buy', 1, 1.00,
	   date_trunc('minute', now() AT TIME ZONE 'UTC') - (100 - least(n, 6)) * interval '1 minute'
FROM generate_series(1, 7) n;

-- batch_limit 2 takes the two oldest.
CALL release_expired_orders(30, 2) \gset
SELECT (:'summary'::jsonb)->'summary'->'successful' AS successful;
SELECT order_number FROM orders WHERE status = 'expired' ORDER BY order_number;

-- Inside a transaction block: no commit of its own, and a rollback undoes it.
TRUNCATE released_in;
BEGIN;
CALL release_expired_orders(30, 2) \gset
SELECT order_number FROM orders WHERE status = 'expired' ORDER BY order_number;
SELECT count(DISTINCT xid) AS transactions FROM released_in;
ROLLBACK;
SELECT order_number FROM orders WHERE status = 'expired' ORDER BY order_number;
SELECT count(*) AS runs FROM release_expired_orders.runs;

-- A plain CALL commits every chunk_size orders: 5 orders in chunks of 2 are
-- released by 3 transactions; ORD-6 and ORD-7 (same created_at) in id order.
SET release_expired_orders.chunk_size = 2;
TRUNCATE released_in;
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->'successful' AS successful;
SELECT order_number, dense_rank() OVER (ORDER BY xid) AS transaction
FROM released_in ORDER BY xid, order_number;
SELECT stock FROM products;
SELECT found, released, failed, outcome, chunk_size, atomic FROM release_expired_orders.runs ORDER BY id;
RESET release_expired_orders.chunk_size;

-- The settings are used when the arguments are NULL.
SET release_expired_orders.timeout_minutes = 5;
SET release_expired_orders.batch_limit = 3;
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-0000000001' || lpad(n::text, 2, '0'))::uuid, 'NEW-' || n,
	   '00000000-0000-0000-0000-0000000000c1', 'recharge', 1.00,
	   (now() AT TIME ZONE 'UTC') - interval '10 minutes'
FROM generate_series(1, 4) n;
CALL release_expired_orders() \gset
SELECT timeout_minutes, batch_limit, released FROM release_expired_orders.runs ORDER BY id DESC LIMIT 1;
CALL release_expired_orders(NULL, NULL) \gset
SELECT timeout_minutes, batch_limit, released FROM release_expired_orders.runs ORDER BY id DESC LIMIT 1;
RESET release_expired_orders.timeout_minutes;
RESET release_expired_orders.batch_limit;

-- A run that finds nothing has written only its own row, and its commit
-- does not wait for the WAL flush (an idle run every minute then costs no
-- fsync); a run that released orders waits for it.  Right after each
-- commit, the WAL flushed so far falls short of what was inserted only in
-- the first case.  The WAL writer (or another session) may flush or insert
-- meanwhile, so one of five tries decides.
DO $$
DECLARE
	idle_unflushed int := 0;
	released_flushed int := 0;
	summary jsonb;
BEGIN
	FOR i IN 1..5 LOOP
		CALL release_expired_orders(30, 100, summary);
		COMMIT;
		IF pg_current_wal_flush_lsn() < pg_current_wal_insert_lsn() THEN
			idle_unflushed := idle_unflushed + 1;
		END IF;
	END LOOP;
	FOR i IN 1..5 LOOP
		INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
		VALUES (gen_random_uuid(), 'LSN-' || i, '00000000-0000-0000-0000-0000000000c1',
				'recharge', 1.00, (now() AT TIME ZONE 'UTC') - interval '1 hour');
		COMMIT;
		CALL release_expired_orders(30, 100, summary);
		COMMIT;
		IF pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn() THEN
			released_flushed := released_flushed + 1;
		END IF;
	END LOOP;
	RAISE NOTICE 'idle run left its commit unflushed: %; a release flushed its commit: %',
		idle_unflushed > 0, released_flushed > 0;
END $$;
SELECT count(*) AS released FROM orders WHERE order_number LIKE 'LSN-%' AND status = 'expired';

-- A long run's memory does not grow with its chunks: what the session
-- keeps once a run is over (its caches and plans) is the same after 10
-- chunks and after 40.
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
SELECT gen_random_uuid(), 'MEM-' || n, '00000000-0000-0000-0000-0000000000c1',
	   'recharge', 1.00, (now() AT TIME ZONE 'UTC') - interval '1 hour'
FROM generate_series(1, 60) n;
\c
SET client_min_messages = warning;
SET release_expired_orders.chunk_size = 1;
CALL release_expired_orders(30, 10) \gset
SELECT sum(used_bytes) AS after_10 FROM pg_backend_memory_contexts \gset
CALL release_expired_orders(30, 40) \gset
SELECT sum(used_bytes) AS after_50 FROM pg_backend_memory_contexts \gset
SELECT :after_50 - :after_10 < 1024 AS kept_memory_flat,
	   (SELECT count(*) FROM orders WHERE order_number LIKE 'MEM-%' AND status = 'expired') AS released;
-- The release statement keeps one generic plan instead of being planned
-- for every chunk (a custom plan is not kept once it has run).
SELECT count(*) AS release_plans_kept FROM pg_backend_memory_contexts
 WHERE name = 'CachedPlan' AND ident LIKE 'WITH released AS (%';
RESET release_expired_orders.chunk_size;
RESET client_min_messages;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications, released_in;
DROP FUNCTION note_xid();
