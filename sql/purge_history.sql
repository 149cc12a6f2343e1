--
-- History does not grow for ever: purge_history() deletes finished runs,
-- audit rows and this job's pg_cron run details older than the retention,
-- at most purge_limit rows of each table per call, oldest first; every run
-- of the job calls it.  It deletes as the extension's owner so that the
-- job's role needs only EXECUTE on it, which PUBLIC does not have.
--
\set SHOW_CONTEXT never
-- (without pg_cron it warns that the job is not scheduled: see scheduling)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
SET client_min_messages = warning;
CREATE SCHEMA purge_app;
SET search_path = purge_app, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
RESET client_min_messages;
SET release_expired_orders.app_schema = purge_app;

-- Runs and audit rows of known age, in days.
CREATE FUNCTION pg_temp.fake_run(days integer, outcome text DEFAULT 'success') RETURNS bigint
LANGUAGE sql AS $$
	INSERT INTO release_expired_orders.runs (started_at, ended_at, duration_ms, timeout_minutes,
		batch_limit, chunk_size, cutoff, atomic, outcome)
	VALUES (now() - make_interval(days => days), now() - make_interval(days => days) + interval '1 second',
		1000, 30, 100, 1000, now() - make_interval(days => days, mins => 30), false, outcome)
	RETURNING id $$;
CREATE FUNCTION pg_temp.fake_event(days integer, run bigint) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO release_expired_orders.order_events (run_id, created_at, order_id, order_number, outcome)
	VALUES (run, now() - make_interval(days => days), gen_random_uuid(), 'H' || days, 'released') $$;
CREATE VIEW history AS
SELECT 'run' AS kind, extract(day FROM now() - started_at)::integer AS age_days, outcome AS what
  FROM release_expired_orders.runs
UNION ALL
SELECT 'event', extract(day FROM now() - created_at)::integer, order_number
  FROM release_expired_orders.order_events;

SELECT count(*) AS added FROM unnest(ARRAY[45, 44, 43, 42, 41, 10, 1]) d,
	LATERAL pg_temp.fake_event(d, pg_temp.fake_run(d));
-- A run still marked running stays, however old.
SELECT pg_temp.fake_run(50, 'running') IS NOT NULL AS added;
SELECT pg_temp.fake_run(46, 'interrupted') IS NOT NULL AS added;

-- purge_limit bounds each table: the two oldest finished runs and the two
-- oldest audit rows go.
SET release_expired_orders.purge_limit = 2;
SELECT release_expired_orders.purge_history() AS deleted;
SELECT * FROM history ORDER BY kind, age_days DESC;
-- The default retention is history_retention (30 days).
RESET release_expired_orders.purge_limit;
SELECT release_expired_orders.purge_history() AS deleted;
SELECT * FROM history ORDER BY kind, age_days DESC;
-- A shorter retention, from the setting (units as PostgreSQL takes them)
-- and from the argument.
SET release_expired_orders.history_retention = '7d';
SELECT release_expired_orders.purge_history() AS deleted;
RESET release_expired_orders.history_retention;
SELECT release_expired_orders.purge_history('12 hours') AS deleted;
SELECT * FROM history ORDER BY kind, age_days DESC;
SELECT release_expired_orders.purge_history('-1 day');
\echo :LAST_ERROR_SQLSTATE
SET release_expired_orders.purge_limit = 0;
SELECT release_expired_orders.purge_history('0') AS deleted;
RESET release_expired_orders.purge_limit;

-- Every run purges: old history goes with the next CALL, within purge_limit
-- (the CALL first marks the old run still "running" as interrupted).
SELECT count(*) AS added FROM generate_series(35, 31, -1) d,
	LATERAL pg_temp.fake_event(d, pg_temp.fake_run(d));
SET release_expired_orders.purge_limit = 3;
CALL release_expired_orders() \gset
SELECT * FROM history ORDER BY kind, age_days DESC;
CALL release_expired_orders() \gset
SELECT * FROM history ORDER BY kind, age_days DESC;
RESET release_expired_orders.purge_limit;
-- A run calls purge_history() only once some history is older than the
-- retention by more than an hour (a 24th of it, if that is less), so that
-- with a job every minute one run in sixty pays for it: history 30 minutes
-- past the retention stays, 90 minutes past it goes.
INSERT INTO release_expired_orders.runs (started_at, ended_at, duration_ms, timeout_minutes,
	batch_limit, chunk_size, cutoff, atomic, outcome)
VALUES (now() - interval '30 days 30 minutes', now() - interval '30 days 30 minutes', 1000, 30,
	100, 1000, now() - interval '30 days 60 minutes', false, 'success');
CALL release_expired_orders() \gset
SELECT count(*) AS kept FROM release_expired_orders.runs WHERE started_at < now() - interval '30 days';
UPDATE release_expired_orders.runs SET started_at = started_at - interval '1 hour'
WHERE started_at < now() - interval '30 days';
CALL release_expired_orders() \gset
SELECT count(*) AS kept FROM release_expired_orders.runs WHERE started_at < now() - interval '30 days';

-- The job's role needs EXECUTE only; without it, no purge.
CREATE ROLE regress_reo_purger;
GRANT USAGE ON SCHEMA release_expired_orders TO regress_reo_purger;
SELECT count(*) AS added FROM pg_temp.fake_event(40, pg_temp.fake_run(40));
SET ROLE regress_reo_purger;
SELECT release_expired_orders.purge_history();
RESET ROLE;
GRANT EXECUTE ON FUNCTION release_expired_orders.purge_history(interval) TO regress_reo_purger;
SET ROLE regress_reo_purger;
SELECT release_expired_orders.purge_history() AS deleted;
DELETE FROM release_expired_orders.runs;
RESET ROLE;

-- The guard decides by the current user, not by the login: a superuser's
-- session after SET ROLE, and a SECURITY DEFINER function of that role
-- (the deadline worker runs the job the same way, logged in as the
-- bootstrap superuser), purge nothing newer than the retention.
SELECT count(*) AS added FROM pg_temp.fake_event(10, pg_temp.fake_run(10));
SET ROLE regress_reo_purger;
SELECT release_expired_orders.purge_history('1 day');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
CREATE FUNCTION purge_app.purge_as_purger(older_than interval) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS 'SELECT release_expired_orders.purge_history(older_than)';
ALTER FUNCTION purge_app.purge_as_purger(interval) OWNER TO regress_reo_purger;
SELECT purge_app.purge_as_purger('1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM history ORDER BY kind, age_days DESC;
-- And by the exact time it deletes up to: an interval that compares as 30
-- days but reaches into the future ('-120 mons 3630 days', now() less it
-- is about three weeks ahead) is refused, for everyone.
SET ROLE regress_reo_purger;
SELECT release_expired_orders.purge_history('-120 mons 3630 days');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT release_expired_orders.purge_history('-120 mons 3630 days');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM history ORDER BY kind, age_days DESC;
-- The owner of the extension may purge newer history.
SELECT release_expired_orders.purge_history('1 day') AS deleted;
DROP FUNCTION purge_app.purge_as_purger(interval);
REVOKE ALL ON SCHEMA release_expired_orders FROM regress_reo_purger;
REVOKE ALL ON FUNCTION release_expired_orders.purge_history(interval) FROM regress_reo_purger;
DROP ROLE regress_reo_purger;

-- pg_cron's run details: this job's old rows go (by job name, and rows of
-- earlier jobs that called the procedure), other jobs' stay.  In a
-- transaction that is rolled back, so that pg_cron never runs the job.
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION pg_cron;
RESET client_min_messages;
SELECT release_expired_orders.schedule() AS jobid \gset
SELECT cron.schedule('other-job', '0 0 31 2 *', 'SELECT 1') AS other_jobid \gset
INSERT INTO cron.job_run_details (jobid, runid, database, username, command, status, start_time, end_time)
VALUES
 (:jobid, 1, current_database(), current_user, 'CALL public.release_expired_orders()', 'succeeded',
  now() - interval '40 days', now() - interval '40 days'),
 (:jobid, 2, current_database(), current_user, 'CALL public.release_expired_orders()', 'failed',
  now() - interval '39 days', now() - interval '39 days'),
 (:jobid, 3, current_database(), current_user, 'CALL public.release_expired_orders()', 'succeeded',
  now() - interval '1 day', now() - interval '1 day'),
 (:other_jobid, 4, current_database(), current_user, 'SELECT 1', 'succeeded',
  now() - interval '40 days', now() - interval '40 days'),
 (:jobid + 1000, 5, current_database(), current_user, 'CALL "public".release_expired_orders(batch_limit => 10)',
  'succeeded', now() - interval '40 days', now() - interval '40 days'),
 (:jobid + 1000, 6, 'another_db', current_user, 'CALL public.release_expired_orders()', 'succeeded',
  now() - interval '40 days', now() - interval '40 days');
-- Whatever standard_conforming_strings says: the regular expression that
-- finds the procedure's CALL is parsed in the caller's session.
SET LOCAL standard_conforming_strings = off;
SELECT release_expired_orders.purge_history() AS deleted;
SELECT runid, command, database FROM cron.job_run_details ORDER BY runid;
-- A run, which purges at its end, warns of nothing either.
CALL release_expired_orders() \gset
ROLLBACK;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA purge_app CASCADE;
DROP EXTENSION release_expired_orders;
