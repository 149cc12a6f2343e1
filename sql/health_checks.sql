--
-- health() calls its checks in turn, one function each:
-- health_<check>() returns alone the row health() has for that check.  Each
-- is called here alone, on a state where it is ok and on one where it is
-- not (health and health_schedule go through every state of each check).
--
\set SHOW_CONTEXT never
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron it warns that the job is not scheduled: see scheduling)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
CREATE ROLE regress_reo_checks;
GRANT USAGE ON SCHEMA release_expired_orders TO regress_reo_checks;

-- health() is its checks, in this order: each of its rows is what the
-- function named after the check returns alone.
CREATE FUNCTION pg_temp.alone(name text) RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE format('SELECT * FROM release_expired_orders.%I()', 'health_' || name);
END $$;
CREATE TEMP VIEW health_vs_alone AS
SELECT h.n, h."check", h.status,
	   (SELECT count(*) FROM pg_temp.alone(h."check")) AS rows_alone,
	   (SELECT a = (h."check", h.status, h.detail) FROM pg_temp.alone(h."check") a) AS same_alone
  FROM release_expired_orders.health() WITH ORDINALITY h ("check", status, detail, n);
SELECT * FROM health_vs_alone ORDER BY n;
-- ... and every check function of the schema is in health().
SELECT p.oid::regprocedure AS check_function_not_in_health
  FROM pg_proc p
 WHERE p.pronamespace = 'release_expired_orders'::regnamespace AND p.proname LIKE 'health\_%'
   AND substr(p.proname, 8) NOT IN (SELECT "check" FROM release_expired_orders.health());
-- They are declared as health() is: the same columns, read-only, run as
-- their caller with a pinned search_path, executable by PUBLIC.
SELECT pg_get_function_result(p.oid) AS result, p.provolatile AS volatility,
	   p.prosecdef AS security_definer, p.proconfig,
	   has_function_privilege('public', p.oid, 'EXECUTE') AS public_executes,
	   count(*) AS functions
  FROM pg_proc p
 WHERE p.pronamespace = 'release_expired_orders'::regnamespace
   AND (p.proname = 'health' OR p.proname LIKE 'health\_%')
 GROUP BY 1, 2, 3, 4, 5;

-- A finished run, as the job records one.
CREATE PROCEDURE pg_temp.add_run(outcome text, minutes_ago integer, ms double precision DEFAULT 100,
								 warnings text DEFAULT NULL)
LANGUAGE sql AS $$
	INSERT INTO release_expired_orders.runs (started_at, ended_at, duration_ms, timeout_minutes,
		batch_limit, chunk_size, cutoff, atomic, outcome, error, warnings)
	VALUES (now() - make_interval(mins => minutes_ago),
		now() - make_interval(mins => minutes_ago) + ms * interval '1 ms', ms,
		30, 100, 1000, now() - make_interval(mins => minutes_ago + 30), false, outcome,
		CASE WHEN outcome = 'failed' THEN 'boom' END, warnings) $$;

--
-- consecutive_failed_runs
--
SELECT * FROM release_expired_orders.health_consecutive_failed_runs();
CALL pg_temp.add_run('failed', 30);
CALL pg_temp.add_run('failed', 20);
CALL pg_temp.add_run('failed', 10);
SELECT * FROM release_expired_orders.health_consecutive_failed_runs();
-- A check that cannot run says so, alone as within health().
SET ROLE regress_reo_checks;
SELECT * FROM release_expired_orders.health_consecutive_failed_runs();
RESET ROLE;

--
-- last_success
--
SELECT * FROM release_expired_orders.health_last_success();
CALL pg_temp.add_run('success', 5);
SELECT * FROM release_expired_orders.health_last_success();

--
-- slow_run
--
SELECT * FROM release_expired_orders.health_slow_run();
SET release_expired_orders.slow_run_ms = 50;
SELECT * FROM release_expired_orders.health_slow_run();
RESET release_expired_orders.slow_run_ms;

--
-- notifications
--
SELECT * FROM release_expired_orders.health_notifications();
CALL pg_temp.add_run('success', 4, warnings => 'release_expired_orders does not write the application''s notifications: permission denied for table notifications');
SELECT * FROM release_expired_orders.health_notifications();

--
-- poison_orders: P1 is pending and was vetoed in three runs, the first
-- 30 minutes ago.
--
SELECT * FROM release_expired_orders.health_poison_orders();
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
VALUES ('c0000000-0000-0000-0000-000000000001', 'P1', 'd0000000-0000-0000-0000-000000000001',
		'recharge', 10, now() AT TIME ZONE 'UTC');
INSERT INTO release_expired_orders.order_events (run_id, created_at, order_id, order_number, outcome)
SELECT r, now() - (40 - 10 * r) * interval '1 minute', 'c0000000-0000-0000-0000-000000000001', 'P1', 'vetoed'
  FROM generate_series(1, 3) r;
SET release_expired_orders.alert_after = '1h';
SELECT * FROM release_expired_orders.health_poison_orders();
RESET release_expired_orders.alert_after;
SELECT * FROM release_expired_orders.health_poison_orders();
UPDATE orders SET payment_status = 'paid' WHERE order_number = 'P1';
SELECT * FROM release_expired_orders.health_poison_orders();

--
-- backlog: B1 expired 90 minutes ago (with the 30 min timeout); the 30
-- seconds keep the minutes whole whatever created_at's rounding.
--
SELECT * FROM release_expired_orders.health_backlog();
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
VALUES ('c0000000-0000-0000-0000-000000000002', 'B1', 'd0000000-0000-0000-0000-000000000001',
		'recharge', 10, (now() AT TIME ZONE 'UTC') - interval '2 hours 30 seconds');
SELECT * FROM release_expired_orders.health_backlog();

--
-- candidate_index
--
SELECT * FROM release_expired_orders.health_candidate_index();
CREATE INDEX orders_release_candidates_idx ON orders (created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
SELECT * FROM release_expired_orders.health_candidate_index();

--
-- row_level_security, for the caller here (no pg_cron job); the name of
-- the superuser running the tests is masked.
--
SELECT status, replace(detail, session_user, '<superuser>') AS detail
  FROM release_expired_orders.health_row_level_security();
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
SET ROLE regress_reo_checks;
-- job_status() is not granted to PUBLIC: the check cannot run.
SELECT * FROM release_expired_orders.health_row_level_security();
RESET ROLE;
GRANT EXECUTE ON FUNCTION release_expired_orders.job_status() TO regress_reo_checks;
SET ROLE regress_reo_checks;
SELECT * FROM release_expired_orders.health_row_level_security();
RESET ROLE;
ALTER TABLE orders DISABLE ROW LEVEL SECURITY;
REVOKE EXECUTE ON FUNCTION release_expired_orders.job_status() FROM regress_reo_checks;

--
-- cron_job: with pg_cron, in a transaction that is rolled back, so that
-- pg_cron never runs the job.
--
SELECT * FROM release_expired_orders.health_cron_job();
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION pg_cron;
RESET client_min_messages;
SELECT * FROM release_expired_orders.health_cron_job();
SELECT release_expired_orders.schedule() IS NOT NULL AS scheduled;
SELECT * FROM release_expired_orders.health_cron_job();
ROLLBACK;

--
-- worker: no deadline worker is configured on the test server (test/t
-- covers a configured one); the check cannot run without worker_status().
--
SELECT * FROM release_expired_orders.health_worker();
BEGIN;
REVOKE EXECUTE ON FUNCTION release_expired_orders.worker_status() FROM PUBLIC;
SET LOCAL ROLE regress_reo_checks;
SELECT * FROM release_expired_orders.health_worker();
ROLLBACK;

-- health() is still its checks when some are not ok.
SELECT * FROM health_vs_alone ORDER BY n;

DROP VIEW health_vs_alone;
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP ROLE regress_reo_checks;
