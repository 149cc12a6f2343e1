-- A database whose extension objects are still 1.0's keeps releasing under
-- this library, until ALTER EXTENSION UPDATE: a package replaces the one
-- library of every database of the cluster at once.  The run row and the
-- audit are written in 1.0's columns and outcomes, a run is marked alive
-- as 1.0 marked it (so that 1.0's health() and a backend still running the
-- 1.0 library read it), and 1.0 has no payment windows nor retry backoff.
-- The released row carries what its order really moved, as 1.0's own
-- restore_order() reads it, and the job role needs only the grants 1.0's
-- README gave.  (Before this, the CALL failed: "release_expired_orders 1.0
-- is installed ...".)
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = warning;
CREATE EXTENSION release_expired_orders VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'release_expired_orders';

-- Two products; a trigger skips every stock update of the second, and says
-- whether the run that calls it is marked alive as 1.0 marked it.
INSERT INTO products (id, stock) VALUES
	('00000000-0000-0000-0000-0000000000a1', 0),
	('00000000-0000-0000-0000-0000000000a2', 0);
CREATE FUNCTION keep_stock() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN
	RAISE NOTICE 'the running run is marked alive for 1.0: %', EXISTS (
		SELECT FROM pg_locks l JOIN release_expired_orders.runs r
			ON l.objid = r.id AND r.outcome = 'running' AND r.id > 2
		 WHERE l.locktype = 'advisory' AND l.classid = 1919250176
		   AND l.objsubid = 2 AND l.pid = pg_backend_pid() AND l.granted);
	RETURN NULL;
END$$;
CREATE TRIGGER keep_stock BEFORE UPDATE ON products FOR EACH ROW
	WHEN (OLD.id = '00000000-0000-0000-0000-0000000000a2') EXECUTE FUNCTION keep_stock();
-- A round with 1 share sold: an order of 3 gives back only 1 (clamped).
INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 10, 1, 'active');
-- A trigger keeps the order VETO pending (it returns OLD).
CREATE FUNCTION veto() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN RETURN OLD; END$$;
CREATE TRIGGER veto BEFORE UPDATE ON orders FOR EACH ROW
	WHEN (OLD.order_number = 'VETO') EXECUTE FUNCTION veto();
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, num, '00000000-0000-0000-0000-0000000000c1',
	   ('00000000-0000-0000-0000-0000000000' || p)::uuid, ('00000000-0000-0000-0000-0000000000' || r)::uuid,
	   'direct_buy', q, 1, (now() AT TIME ZONE 'UTC') - age
  FROM (VALUES (1, 'OLD', 'a1', NULL, 2, interval '2 hours'),
			   (2, 'YOUNG', 'a1', NULL, 5, interval '10 minutes'),
			   (3, 'VETO', 'a1', NULL, 7, interval '3 hours'),
			   (4, 'SKIPPED', 'a2', NULL, 3, interval '4 hours'),
			   (5, 'CLAMPED', NULL, 'b1', 3, interval '5 hours')) o (n, num, p, r, q, age);

-- The job role with exactly the grants of 1.0's README (order_events: INSERT).
CREATE ROLE regress_reo_job10;
GRANT EXECUTE ON PROCEDURE public.release_expired_orders(integer, integer, jsonb) TO regress_reo_job10;
GRANT USAGE ON SCHEMA release_expired_orders TO regress_reo_job10;
GRANT SELECT, INSERT, UPDATE ON release_expired_orders.runs TO regress_reo_job10;
GRANT INSERT ON release_expired_orders.order_events TO regress_reo_job10;
GRANT EXECUTE ON FUNCTION release_expired_orders.purge_history(interval) TO regress_reo_job10;
GRANT SELECT, UPDATE ON public.orders, public.products, public.lottery_rounds TO regress_reo_job10;
GRANT INSERT ON public.notifications TO regress_reo_job10;

-- A run whose backend is gone (no lock), and one this session marks alive
-- with 1.0's session advisory lock, keyed on the run id.
INSERT INTO release_expired_orders.runs (started_at, timeout_minutes, batch_limit, chunk_size,
	cutoff, atomic, backend_pid)
VALUES (now(), 30, 10, 10, now(), true, pg_backend_pid()),
	   (now(), 30, 10, 10, now(), true, pg_backend_pid());
SELECT pg_advisory_lock(1919250176, 2);

SET client_min_messages = notice;
SET ROLE regress_reo_job10;
CALL release_expired_orders(30, 100) \gset
RESET ROLE;
SET client_min_messages = warning;
SELECT s->>'totalFound' AS found, s->>'successful' AS released, s->>'failed' AS failed,
	   s->>'vetoed' AS vetoed, s->>'outcome' AS outcome
  FROM (SELECT :'summary'::jsonb -> 'summary' AS s) x;
SELECT order_number, status, payment_status FROM orders ORDER BY order_number;
SELECT id::text, stock FROM products ORDER BY id;
SELECT sold_shares FROM lottery_rounds;
-- The audit in 1.0's form: each released row with what its order really
-- moved (no stock for the skipped update, one share for the clamped
-- round), a row of 1.0's outcomes saying why (the skipped stock as
-- product_not_found), the veto as failed with SQLSTATE 27000 (triggered
-- data change violation).
SELECT o.order_number, e.outcome, e.stock_delta, e.shares_delta, e.sqlstate, e.message
  FROM release_expired_orders.order_events e JOIN orders o ON o.id = e.order_id
 ORDER BY e.id;
-- The dead run is interrupted, the live one still running; the new run
-- counts its veto as failed.
SELECT id, outcome, found, released, failed FROM release_expired_orders.runs ORDER BY id;
-- The run's own lock is gone with the run.
SELECT count(*) AS run_locks_left FROM pg_locks
 WHERE locktype = 'advisory' AND classid = 1919250176 AND objid <> 2;
SELECT pg_advisory_unlock(1919250176, 2);

-- 1.0's restore_order() undoes what the releases really moved: no stock
-- for the skipped update, one share for the clamped round.
SELECT order_number, stock_taken, shares_counted
  FROM release_expired_orders.restore_order('00000000-0000-0000-0000-000000000004');
SELECT order_number, stock_taken, shares_counted
  FROM release_expired_orders.restore_order('00000000-0000-0000-0000-000000000005');
SELECT id::text, stock FROM products ORDER BY id;
SELECT sold_shares FROM lottery_rounds;
UPDATE orders SET payment_status = 'paid' WHERE order_number IN ('SKIPPED', 'CLAMPED');

-- A second run: 1.0 had no retry backoff, so the vetoed order is tried,
-- and audited, again.
SET ROLE regress_reo_job10;
CALL release_expired_orders(30, 100) \gset
RESET ROLE;
SELECT :'summary'::jsonb #>> '{summary,totalFound}' AS found_again;
SELECT count(*) AS veto_rows FROM release_expired_orders.order_events e
  JOIN orders o ON o.id = e.order_id WHERE o.order_number = 'VETO';

-- ALTER EXTENSION UPDATE keeps the history; the next run is 1.2's.
ALTER EXTENSION release_expired_orders UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'release_expired_orders';
UPDATE orders SET created_at = created_at - interval '1 hour' WHERE order_number = 'YOUNG';
-- 1.2 reads order_events for its retry backoff: the job role needs SELECT
-- on it from now on (README, Upgrading), and is told so before any write.
SET ROLE regress_reo_job10;
CALL release_expired_orders(30, 100);
RESET ROLE;
GRANT SELECT ON release_expired_orders.order_events TO regress_reo_job10;
SET ROLE regress_reo_job10;
CALL release_expired_orders(30, 100) \gset
RESET ROLE;
SELECT :'summary'::jsonb #>> '{summary,outcome}' AS outcome_after_update;
SELECT id, outcome, found, released, failed, vetoed, scheduler
  FROM release_expired_orders.runs ORDER BY id;
SELECT stock_taken FROM release_expired_orders.restore_order('00000000-0000-0000-0000-000000000001');
SELECT id::text, stock FROM products ORDER BY id;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP FUNCTION keep_stock(), veto();
DROP OWNED BY regress_reo_job10;
DROP ROLE regress_reo_job10;
