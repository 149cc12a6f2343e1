--
-- health() (README, Monitoring): one row per check, each driven here into each of its
-- states with fabricated runs and audit rows, real runs, an index, row-level
-- security and pg_cron jobs.
--
\set SHOW_CONTEXT never
-- (without pg_cron it warns that the job is not scheduled: see scheduling)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
SET client_min_messages = warning;
CREATE SCHEMA health_app;
SET search_path = health_app, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
RESET client_min_messages;
-- Failed orders are retried at every run (poison_orders counts runs).
SET release_expired_orders.retry_backoff = 0;
SET release_expired_orders.app_schema = health_app;

CREATE FUNCTION pg_temp.fake_run(outcome text, minutes_ago integer DEFAULT 5,
								 ms double precision DEFAULT 100, error text DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
	INSERT INTO release_expired_orders.runs (started_at, ended_at, duration_ms, timeout_minutes,
		batch_limit, chunk_size, cutoff, atomic, outcome, error)
	VALUES (now() - make_interval(mins => minutes_ago),
		CASE WHEN outcome NOT IN ('running', 'interrupted')
			 THEN now() - make_interval(mins => minutes_ago) + ms * interval '1 ms' END,
		CASE WHEN outcome NOT IN ('running', 'interrupted') THEN ms END,
		30, 100, 1000, now() - make_interval(mins => minutes_ago + 30), false, outcome, error)
	RETURNING id $$;
-- One check; the name of the superuser running the tests is masked.
CREATE FUNCTION pg_temp.check(name text) RETURNS TABLE (status text, detail text)
LANGUAGE sql AS $$
	SELECT h.status, replace(h.detail, session_user, '<superuser>')
	  FROM release_expired_orders.health() h WHERE h."check" = name $$;

-- A fresh install: every check in one go.
SELECT "check", status, replace(detail, session_user, '<superuser>') AS detail
  FROM release_expired_orders.health();

--
-- consecutive_failed_runs: failed and interrupted runs, and runs still
-- "running" whose backend is gone, since the last successful one.
--
SELECT pg_temp.fake_run('success', 60) IS NOT NULL AS added;
SELECT * FROM pg_temp.check('consecutive_failed_runs');
SELECT pg_temp.fake_run('failed', 50, error => 'relation "health_app.orders" does not exist') IS NOT NULL AS added;
SELECT * FROM pg_temp.check('consecutive_failed_runs');
SELECT pg_temp.fake_run('interrupted', 40) IS NOT NULL AS added;
SELECT pg_temp.fake_run('running', 30) AS running_run \gset
-- Its backend (this one: pid and start time) is alive: not counted.
UPDATE release_expired_orders.runs SET backend_pid = pg_backend_pid(),
	backend_start = (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())
WHERE id = :running_run;
SELECT * FROM pg_temp.check('consecutive_failed_runs');
-- Its backend is gone (the same pid, started at another time): counted,
-- and the streak is critical at 3.
UPDATE release_expired_orders.runs SET backend_start = backend_start - interval '1 hour'
WHERE id = :running_run;
SELECT * FROM pg_temp.check('consecutive_failed_runs');
-- A partial run (some orders failed, the rest released) ends the streak.
SELECT pg_temp.fake_run('partial', 20) IS NOT NULL AS added;
SELECT * FROM pg_temp.check('consecutive_failed_runs');

--
-- slow_run: the last finished run against slow_run_ms.
--
SELECT pg_temp.fake_run('success', 10, 1500) IS NOT NULL AS added;
SET release_expired_orders.slow_run_ms = '1s';
SELECT * FROM pg_temp.check('slow_run');
SET release_expired_orders.slow_run_ms = 2000;
SELECT * FROM pg_temp.check('slow_run');
RESET release_expired_orders.slow_run_ms;

--
-- last_success: a successful or partial run within alert_after.
--
DELETE FROM release_expired_orders.runs;
SELECT * FROM pg_temp.check('last_success');
SELECT pg_temp.fake_run('failed', 5, error => 'boom') IS NOT NULL AS added;
SELECT * FROM pg_temp.check('last_success');
SELECT pg_temp.fake_run('success', 61, 30000) IS NOT NULL AS added;
SELECT * FROM pg_temp.check('last_success');
SET release_expired_orders.alert_after = '2h';
SELECT * FROM pg_temp.check('last_success');
RESET release_expired_orders.alert_after;
SELECT pg_temp.fake_run('partial', 15) IS NOT NULL AS added;
SELECT * FROM pg_temp.check('last_success');

--
-- backlog: expired orders still waiting; a warning once the oldest has
-- waited past its expiry for longer than alert_after.
--
INSERT INTO products (id, name, stock) VALUES ('a0000000-0000-0000-0000-000000000001', 'A', 5);
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount,
					payment_status, created_at)
VALUES
 ('c0000000-0000-0000-0000-000000000001', 'B1', 'd0000000-0000-0000-0000-000000000001',
  'a0000000-0000-0000-0000-000000000001', 'direct_buy', 1, 10, 'pending',
  (now() AT TIME ZONE 'UTC') - interval '35 minutes 30 seconds'),
 ('c0000000-0000-0000-0000-000000000002', 'B2', 'd0000000-0000-0000-0000-000000000001',
  'a0000000-0000-0000-0000-000000000001', 'direct_buy', 1, 10, 'paid',
  (now() AT TIME ZONE 'UTC') - interval '3 hours'),
 ('c0000000-0000-0000-0000-000000000003', 'B3', 'd0000000-0000-0000-0000-000000000001',
  'a0000000-0000-0000-0000-000000000001', 'direct_buy', 1, 10, 'pending',
  (now() AT TIME ZONE 'UTC') - interval '10 minutes');
SELECT * FROM pg_temp.check('backlog');
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
VALUES ('c0000000-0000-0000-0000-000000000004', 'B4', 'd0000000-0000-0000-0000-000000000001',
		'a0000000-0000-0000-0000-000000000001', 'direct_buy', 1, 10,
		(now() AT TIME ZONE 'UTC') - interval '75 minutes 30 seconds');
SELECT * FROM pg_temp.check('backlog');
-- Naive created_at is UTC wall-clock time whatever the session's TimeZone.
SET TimeZone = 'Asia/Dushanbe';
SELECT * FROM pg_temp.check('backlog');
RESET TimeZone;
-- timestamptz created_at is compared as is.
ALTER TABLE orders ALTER COLUMN created_at TYPE timestamptz USING created_at AT TIME ZONE 'UTC';
SELECT * FROM pg_temp.check('backlog');
ALTER TABLE orders ALTER COLUMN created_at TYPE timestamp(3) USING created_at AT TIME ZONE 'UTC';
SET release_expired_orders.timeout_minutes = 120;
SELECT * FROM pg_temp.check('backlog');
RESET release_expired_orders.timeout_minutes;
-- A check that cannot run says so, and the others still report.
SET release_expired_orders.app_schema = health_missing;
SELECT "check", status, detail FROM release_expired_orders.health()
 WHERE "check" IN ('backlog', 'poison_orders', 'candidate_index', 'consecutive_failed_runs');
SET release_expired_orders.app_schema = health_app;

--
-- poison_orders: still pending, and failed in each of their last three or
-- more attempts.  B1 fails for real, in three runs.
--
CREATE FUNCTION refuse_b1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.order_number = 'B1' AND NEW.status = 'expired' THEN
		RAISE EXCEPTION 'order B1 is locked by the payment provider';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER refuse_b1 BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION refuse_b1();
CALL release_expired_orders() \gset
CALL release_expired_orders() \gset
SELECT * FROM pg_temp.check('poison_orders');
CALL release_expired_orders() \gset
SELECT * FROM pg_temp.check('poison_orders');
SELECT outcome, count(*) FROM release_expired_orders.runs GROUP BY 1 ORDER BY 1;
SELECT * FROM pg_temp.check('consecutive_failed_runs');
-- Orders that failed three times but were released since, or paid, or
-- failed only twice since a restore, are not listed.
INSERT INTO release_expired_orders.order_events (run_id, order_id, order_number, outcome)
SELECT r, ('e0000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'Q' || n, o
  FROM (VALUES (10, 1, 'failed'), (11, 1, 'failed'), (12, 1, 'failed'), (13, 1, 'released'),
			   (10, 2, 'failed'), (11, 2, 'failed'), (12, 2, 'failed'),
			   (10, 3, 'failed'), (11, 3, 'failed'), (12, 3, 'released'), (NULL, 3, 'restored'),
			   (13, 3, 'failed'), (14, 3, 'failed'),
			   (10, 4, 'failed'), (11, 4, 'failed'), (12, 4, 'failed'), (13, 4, 'failed')) v (r, n, o);
INSERT INTO orders (id, order_number, user_id, type, total_amount, payment_status, created_at)
SELECT ('e0000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'Q' || n, 'd0000000-0000-0000-0000-000000000001',
	   'direct_buy', 10, CASE WHEN n = 2 THEN 'paid' ELSE 'pending' END,
	   (now() AT TIME ZONE 'UTC') - interval '2 hours'
  FROM generate_series(1, 4) n;
UPDATE orders SET status = 'expired', payment_status = 'cancelled', fulfillment_status = 'cancelled'
 WHERE order_number = 'Q1';
SELECT * FROM pg_temp.check('poison_orders');
-- Once the cause is gone, the next run releases B1 (and Q4): both drop off.
DROP TRIGGER refuse_b1 ON orders;
CALL release_expired_orders() \gset
SELECT * FROM pg_temp.check('poison_orders');
DELETE FROM orders WHERE order_number LIKE 'Q%';

--
-- candidate_index: an index that lets the scan skip paid orders.
--
SELECT * FROM pg_temp.check('candidate_index');
CREATE INDEX orders_release_candidates_idx ON orders (created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
SELECT * FROM pg_temp.check('candidate_index');
-- What a failed CREATE INDEX CONCURRENTLY leaves behind does not count.
UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'orders_release_candidates_idx'::regclass;
SELECT * FROM pg_temp.check('candidate_index');
DROP INDEX orders_release_candidates_idx;
-- A predicate on two of the three statuses is not enough; the three
-- statuses as leading columns, in any order, then created_at, are.
CREATE INDEX orders_two_idx ON orders (created_at) WHERE status = 'pending' AND payment_status = 'pending';
SELECT status FROM pg_temp.check('candidate_index');
CREATE INDEX orders_statuses_idx ON orders (payment_status, status, fulfillment_status, created_at);
SELECT * FROM pg_temp.check('candidate_index');
DROP INDEX orders_two_idx, orders_statuses_idx;
-- A partitioned orders table, with a partition that is partitioned again:
-- CREATE INDEX CONCURRENTLY is refused on a partitioned table, so the
-- advice is a statement per table, each of which runs (here one by one,
-- as printed), and then the check is ok.
CREATE SCHEMA health_parts;
CREATE TABLE health_parts.orders (LIKE orders INCLUDING DEFAULTS) PARTITION BY RANGE (created_at);
CREATE TABLE health_parts.orders_old PARTITION OF health_parts.orders
	FOR VALUES FROM (MINVALUE) TO ('2025-01-01');
CREATE TABLE health_parts.orders_new PARTITION OF health_parts.orders
	FOR VALUES FROM ('2025-01-01') TO (MAXVALUE) PARTITION BY LIST (type);
CREATE TABLE health_parts.orders_new_lottery PARTITION OF health_parts.orders_new
	FOR VALUES IN ('lottery_win');
CREATE TABLE health_parts.orders_new_other PARTITION OF health_parts.orders_new DEFAULT;
SET release_expired_orders.app_schema = health_parts;
SELECT * FROM pg_temp.check('candidate_index');
SELECT unnest(string_to_array(substring(detail FROM 'run each of these statements on its own: (.*)$'), '; '))
  FROM pg_temp.check('candidate_index') \gexec
SELECT * FROM pg_temp.check('candidate_index');
SET release_expired_orders.app_schema = health_app;
DROP SCHEMA health_parts CASCADE;

--
-- row_level_security: policies that would hide rows from the role running
-- the job (here the caller: no pg_cron job), unless it owns the table
-- without FORCE, or has BYPASSRLS.  A superuser always bypasses.
--
CREATE ROLE regress_reo_runner;
GRANT USAGE ON SCHEMA release_expired_orders, health_app TO regress_reo_runner;
GRANT SELECT ON ALL TABLES IN SCHEMA release_expired_orders, health_app TO regress_reo_runner;
GRANT EXECUTE ON FUNCTION release_expired_orders.job_status() TO regress_reo_runner;
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE lottery_rounds ENABLE ROW LEVEL SECURITY;
SELECT status FROM pg_temp.check('row_level_security');
SET ROLE regress_reo_runner;
SELECT * FROM pg_temp.check('row_level_security');
RESET ROLE;
ALTER ROLE regress_reo_runner BYPASSRLS;
SET ROLE regress_reo_runner;
SELECT * FROM pg_temp.check('row_level_security');
RESET ROLE;
ALTER ROLE regress_reo_runner NOBYPASSRLS;
ALTER TABLE lottery_rounds DISABLE ROW LEVEL SECURITY;
ALTER TABLE orders OWNER TO regress_reo_runner;
SET ROLE regress_reo_runner;
SELECT * FROM pg_temp.check('row_level_security');
RESET ROLE;
ALTER TABLE orders FORCE ROW LEVEL SECURITY;
SET ROLE regress_reo_runner;
SELECT * FROM pg_temp.check('row_level_security');
RESET ROLE;
ALTER TABLE orders NO FORCE ROW LEVEL SECURITY;
ALTER TABLE orders DISABLE ROW LEVEL SECURITY;
ALTER TABLE orders OWNER TO CURRENT_USER;

--
-- cron_job, and the role that runs it.  In a transaction that is rolled
-- back, so that pg_cron never runs the job.
--
SELECT * FROM pg_temp.check('cron_job');
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION pg_cron;
RESET client_min_messages;
SELECT * FROM pg_temp.check('cron_job');
GRANT USAGE ON SCHEMA cron TO regress_reo_runner;
GRANT EXECUTE ON FUNCTION release_expired_orders.schedule(text, integer, integer) TO regress_reo_runner;
SET ROLE regress_reo_runner;
SELECT release_expired_orders.schedule() IS NOT NULL AS scheduled;
RESET ROLE;
SELECT * FROM pg_temp.check('cron_job');
-- The job's role, not the caller, is the one row-level security matters to.
ALTER TABLE products ENABLE ROW LEVEL SECURITY;
SELECT * FROM pg_temp.check('row_level_security');
ALTER TABLE products DISABLE ROW LEVEL SECURITY;
-- Its latest run failed.
INSERT INTO cron.job_run_details (jobid, runid, database, username, command, status, return_message,
								  start_time, end_time)
SELECT jobid, 1, current_database(), username, command, 'failed',
	   'ERROR:  permission denied for table orders', now() - interval '1 minute', now()
  FROM cron.job;
SELECT * FROM pg_temp.check('cron_job');
DELETE FROM cron.job_run_details;
-- A second job of the same name, by another role.
SELECT cron.schedule('release-expired-orders_invoke', '*/10 * * * *', 'CALL public.release_expired_orders()')
	IS NOT NULL AS scheduled;
SELECT * FROM pg_temp.check('cron_job');
SELECT cron.unschedule('release-expired-orders_invoke');
-- Inactive.
SELECT cron.alter_job(jobid, active => false) FROM cron.job;
SELECT * FROM pg_temp.check('cron_job');
SELECT release_expired_orders.unschedule();
SELECT * FROM pg_temp.check('cron_job');
ROLLBACK;

-- Every function of the extension pins its search_path, but
-- restore_order(), which pins it for its own statements and keeps the
-- caller's for the application's writes (see restore_order).
SELECT p.oid::regprocedure AS function, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'release_expired_orders'::regnamespace
   AND p.proconfig IS DISTINCT FROM '{"search_path=pg_catalog, pg_temp"}'
   AND p.oid <> 'release_expired_orders.restore_order(uuid)'::regprocedure
   AND p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c')
 ORDER BY 1::text;

-- A session that has not loaded the library yet (no CALL so far): the
-- settings are read from their placeholders, in their units.
\c -
SELECT count(*) AS settings_defined FROM pg_settings WHERE name LIKE 'release_expired_orders.%';
SET release_expired_orders.slow_run_ms = '2min';
SET release_expired_orders.alert_after = '2h';
SET release_expired_orders.purge_limit = 5;
SELECT release_expired_orders.setting('slow_run_ms') AS slow_run_ms,
	   release_expired_orders.setting('alert_after') AS alert_after,
	   release_expired_orders.setting('purge_limit') AS purge_limit,
	   release_expired_orders.setting('history_retention') AS history_retention;
-- A value PostgreSQL refused when the library loaded is an error, not the
-- default.
\c -
SET release_expired_orders.slow_run_ms = 'fast';
SELECT release_expired_orders.setting('slow_run_ms');
RESET ALL;

-- standard_conforming_strings off, in a session that has not planned
-- health()'s statements yet: its regular expressions are parsed in the
-- caller's session, with that setting.
\c -
SET standard_conforming_strings = off;
SET release_expired_orders.app_schema = health_app;
SELECT status FROM release_expired_orders.health() WHERE "check" = 'candidate_index';
CREATE INDEX orders_release_candidates_idx ON health_app.orders (created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'candidate_index';
DROP INDEX health_app.orders_release_candidates_idx;
RESET ALL;

REVOKE ALL ON SCHEMA release_expired_orders, health_app FROM regress_reo_runner;
REVOKE ALL ON ALL TABLES IN SCHEMA release_expired_orders, health_app FROM regress_reo_runner;
REVOKE ALL ON FUNCTION release_expired_orders.job_status() FROM regress_reo_runner;
DROP ROLE regress_reo_runner;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA health_app CASCADE;
DROP EXTENSION release_expired_orders;
