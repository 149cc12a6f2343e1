--
-- Scheduling with pg_cron: CREATE EXTENSION schedules the job when
-- pg_cron is in the database and says how to otherwise; schedule() and
-- unschedule() are idempotent and never leave two jobs; a bad cron
-- expression or a missing pg_cron is a clear error; the job's one
-- statement is a CALL of the procedure in the extension's schema.
-- Everything with pg_cron happens in a transaction that is rolled back, so
-- that pg_cron never runs a job of this test, and each such transaction
-- has a session of its own (pg_cron keeps the OID of its job table for the
-- life of a backend).
--
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE SCHEMA sched_app;
SET search_path = sched_app;
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
RESET search_path;
RESET client_min_messages;
ALTER DATABASE contrib_regression SET release_expired_orders.app_schema = sched_app;

-- Without pg_cron: a warning that says how to schedule the job (a NOTICE
-- would be hidden: CREATE EXTENSION shows its script's warnings only).
CREATE EXTENSION release_expired_orders;
SELECT release_expired_orders.schedule();
\echo :LAST_ERROR_SQLSTATE
-- Outside pg_cron's database the job is named after the database: the job
-- of each database scheduled from pg_cron's has a name of its own (pg_cron
-- 1.4 upserts on the name; test/t/021_second_database.pl runs the hint).
SELECT release_expired_orders.job_name();
SELECT release_expired_orders.unschedule();
DROP EXTENSION release_expired_orders;

\c -
\set SHOW_CONTEXT never
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION pg_cron;
RESET client_min_messages;
CREATE VIEW pg_temp.jobs AS
SELECT jobname, schedule, command, active, username = current_user AS mine,
	   database = current_database() AS here
  FROM cron.job ORDER BY jobid;

-- With pg_cron: CREATE EXTENSION schedules the job, every 10 minutes.
CREATE EXTENSION release_expired_orders;
SELECT * FROM pg_temp.jobs;
SELECT release_expired_orders.job_name();
SELECT jobid AS first_jobid FROM cron.job \gset
-- Again and again: still one job, the same.
SELECT release_expired_orders.schedule() = :first_jobid AS same_job;
DROP EXTENSION release_expired_orders;
CREATE EXTENSION release_expired_orders;
SELECT count(*) AS jobs, min(jobid) = :first_jobid AS same_job FROM cron.job;

-- The job's one statement runs as it is.
SELECT command FROM cron.job \gset
:command \gset
SELECT :'summary'::jsonb ->> 'success' AS job_command_ran;

-- Another schedule and arguments: the same job, changed.
SELECT release_expired_orders.schedule('*/5 * * * *', 15, 500) = :first_jobid AS same_job;
SELECT * FROM pg_temp.jobs;
SELECT release_expired_orders.schedule('0 * * * *', batch_limit => 1000) = :first_jobid AS same_job;
SELECT schedule, command FROM pg_temp.jobs;
SELECT release_expired_orders.schedule() = :first_jobid AS same_job;
SELECT schedule, command FROM pg_temp.jobs;

-- An interval schedule: pg_cron 1.5 and later run a job every 1 to 59
-- seconds, and schedule() takes '30 seconds' there; pg_cron 1.4 (extversion
-- '1.4-1' on Debian 12) takes the cron syntax only, and schedule() refuses
-- it with 22023 and says why.
SELECT (regexp_match(extversion, '^(\d+)\.(\d+)'))::int[] >= '{1,5}' AS cron_takes_seconds
  FROM pg_extension WHERE extname = 'pg_cron' \gset
CREATE FUNCTION pg_temp.try_schedule(cron text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	msg text;
	hint text;
BEGIN
	PERFORM release_expired_orders.schedule(cron);
	RETURN 'accepted, job schedule ' || (SELECT schedule FROM pg_temp.jobs);
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
	RETURN 'refused ' || SQLSTATE || ': ' || msg || ' (' || hint || ')';
END $$;
SAVEPOINT s;
SELECT CASE WHEN result = expected THEN 'as the installed pg_cron does' ELSE result END
	AS thirty_seconds
  FROM (SELECT pg_temp.try_schedule('30 seconds') AS result,
			   CASE WHEN :'cron_takes_seconds'::boolean THEN 'accepted, job schedule 30 seconds'
			   ELSE 'refused 22023: invalid cron schedule "30 seconds" (Use the five-field cron syntax (minute hour day-of-month month day-of-week, in GMT), for example ''*/10 * * * *'', or, with pg_cron 1.5 or later, an interval such as ''30 seconds''.)'
			   END AS expected) AS t;
ROLLBACK TO s;
-- Bad input: a clear error, and the job unchanged.
SELECT release_expired_orders.schedule('61 * * * *');
ROLLBACK TO s;
SELECT release_expired_orders.schedule(NULL);
ROLLBACK TO s;
SELECT release_expired_orders.schedule('*/10 * * * *', 0);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT release_expired_orders.schedule('*/10 * * * *', NULL, 1000001);
ROLLBACK TO s;
SELECT schedule, command, active FROM pg_temp.jobs;

-- An inactive job is started again.
SELECT cron.alter_job(jobid, active => false) FROM cron.job;
SELECT release_expired_orders.schedule() IS NOT NULL AS scheduled;
SELECT schedule, active FROM pg_temp.jobs;

-- The job runs as the role that scheduled it: once unscheduled, another
-- role may take it over.
CREATE ROLE regress_reo_scheduler;
GRANT USAGE ON SCHEMA cron, release_expired_orders TO regress_reo_scheduler;
GRANT EXECUTE ON FUNCTION release_expired_orders.schedule(text, integer, integer),
	release_expired_orders.unschedule(), release_expired_orders.job_status() TO regress_reo_scheduler;
SELECT release_expired_orders.unschedule();
SET ROLE regress_reo_scheduler;
SELECT release_expired_orders.schedule() IS NOT NULL AS scheduled;
RESET ROLE;
SELECT jobname, username FROM cron.job;
-- A job of the same name by another role would run alongside: refused.
SAVEPOINT s;
SELECT release_expired_orders.schedule();
ROLLBACK TO s;
-- A superuser's unschedule() removes it too, and a second one is a no-op.
SELECT release_expired_orders.unschedule();
SELECT release_expired_orders.unschedule();
SELECT count(*) AS jobs FROM cron.job;

-- Installing again with a job left over keeps that job as it is.
SELECT release_expired_orders.schedule('0 3 * * *') IS NOT NULL AS scheduled;
DROP EXTENSION release_expired_orders;
-- Forgetting to unschedule before DROP EXTENSION: the job fails, loudly.
SELECT command FROM cron.job \gset
SAVEPOINT s;
:command;
ROLLBACK TO s;
CREATE EXTENSION release_expired_orders;
SELECT schedule, command FROM pg_temp.jobs;

-- Installing again in another schema with the job left over: the job is
-- made to call the new procedure, with its schedule, arguments and role.
SELECT release_expired_orders.unschedule();
-- (pg_cron 1.5+ took a job id more above, for the interval schedule: the
-- ids below are the same on every version)
SELECT pg_catalog.setval('cron.jobid_seq', 8) AS last_jobid;
GRANT USAGE ON SCHEMA release_expired_orders TO regress_reo_scheduler;
GRANT EXECUTE ON FUNCTION release_expired_orders.schedule(text, integer, integer),
	release_expired_orders.job_status() TO regress_reo_scheduler;
SET ROLE regress_reo_scheduler;
SELECT release_expired_orders.schedule('0 3 * * *', 15) IS NOT NULL AS scheduled;
RESET ROLE;
DROP EXTENSION release_expired_orders;
CREATE SCHEMA extensions;
CREATE EXTENSION release_expired_orders SCHEMA extensions;
SELECT schedule, command, active, username FROM cron.job;
CREATE VIEW pg_temp.cron_check AS
SELECT status, regexp_replace(detail, '[0-9]+ as [a-z_0-9]+', 'N as R', 'g') AS detail
  FROM release_expired_orders.health() WHERE "check" = 'cron_job';
SELECT * FROM pg_temp.cron_check;

-- A job whose procedure does not exist is critical in health(), with the
-- statement that makes it call this installation's procedure.
SELECT cron.alter_job(jobid, command => 'CALL public.release_expired_orders(batch_limit => 7)')
  FROM cron.job;
SELECT * FROM pg_temp.cron_check;
SELECT regexp_replace(detail, '.*: ', '') AS repair FROM release_expired_orders.health()
 WHERE "check" = 'cron_job' \gset
:repair
SELECT command FROM pg_temp.jobs;
SELECT * FROM pg_temp.cron_check;
-- Another procedure that is gone: critical, and said at CREATE EXTENSION.
SELECT cron.alter_job(jobid, command => 'CALL ops."Nightly"(1)') FROM cron.job;
SELECT * FROM pg_temp.cron_check;
DROP VIEW pg_temp.cron_check;
DROP EXTENSION release_expired_orders;
CREATE EXTENSION release_expired_orders;
SELECT command FROM pg_temp.jobs;

-- With row_security off, as in a restore of pg_dump output (which brings
-- back the dumped job itself, after CREATE EXTENSION), or in a session of
-- pg_restore: nothing is scheduled, and a warning says what to do if this
-- is not a restore (test/t/030_dump_restore.pl does the restores).
SELECT release_expired_orders.unschedule();
DROP EXTENSION release_expired_orders;
SET LOCAL row_security = off;
CREATE EXTENSION release_expired_orders;
-- This session is taken for a restore: nothing is released in the
-- database until the restore has loaded the data (the dump sets the
-- history's sequence) and ended (test/t/031_restore_while_releasing.pl),
-- or restore_finished() says it was none.
SELECT release_expired_orders.restoring_backend() = pg_backend_pid() AS restoring;
\set VERBOSITY terse
CALL release_expired_orders() \gset
\set VERBOSITY default
SELECT :'summary'::jsonb #>> '{summary,outcome}' AS outcome, :'summary'::jsonb ->> 'message' AS message;
SELECT release_expired_orders.restore_finished();
SELECT release_expired_orders.restoring_backend() IS NULL AS not_restoring;
CALL release_expired_orders() \gset
SELECT :'summary'::jsonb #>> '{summary,outcome}' AS outcome, :'summary'::jsonb #>> '{summary,runId}' AS run_id;
RESET row_security;
DROP EXTENSION release_expired_orders;
SET LOCAL application_name = 'pg_restore';
CREATE EXTENSION release_expired_orders;
RESET application_name;
SELECT count(*) AS jobs FROM cron.job;
ROLLBACK;

-- The command follows the schema the procedure lives in.
\c -
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION pg_cron;
CREATE SCHEMA "Ops Jobs";
CREATE EXTENSION release_expired_orders SCHEMA "Ops Jobs";
RESET client_min_messages;
SELECT command FROM cron.job;
ROLLBACK;

-- runs.scheduler is pg_cron only when pg_cron runs the command: its
-- background worker, or the connection whose backend pg_cron recorded as
-- job_pid of a run in progress in cron.job_run_details (a table only
-- pg_cron writes).  A session that calls itself pg_cron is a plain CALL.
-- test/t/020_cron_fires.pl runs the job under pg_cron, in both modes.
\c -
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION pg_cron;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
SET LOCAL application_name = 'pg_cron';
CREATE TEMP VIEW last_run AS
SELECT scheduler FROM release_expired_orders.runs ORDER BY id DESC LIMIT 1;
CALL release_expired_orders() \gset
SELECT * FROM last_run;
-- A finished run of this backend, or a run in progress of another one, is
-- not this backend's.
INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status, start_time, end_time)
VALUES (1, 1, pg_backend_pid(), current_database(), current_user, 'CALL public.release_expired_orders()',
		'succeeded', now(), now()),
	   (1, 2, pg_backend_pid() + 1, current_database(), current_user, 'CALL public.release_expired_orders()',
		'running', now(), NULL);
CALL release_expired_orders() \gset
SELECT * FROM last_run;
-- As pg_cron records its connection, before it sends the command.
INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status)
VALUES (1, 3, pg_backend_pid(), current_database(), current_user, 'CALL public.release_expired_orders()',
		'sending');
CALL release_expired_orders() \gset
SELECT * FROM last_run;
ROLLBACK;

ALTER DATABASE contrib_regression RESET release_expired_orders.app_schema;
SET client_min_messages = warning;
DROP SCHEMA sched_app CASCADE;
