-- health()'s last_success check waits for twice the pg_cron job's interval,
-- from either form of schedule (cron lines, and pg_cron 1.5+'s intervals),
-- or for release_expired_orders.alert_after when that is set or the
-- schedule has no plain period (README, Monitoring).
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
SELECT s AS schedule, release_expired_orders.schedule_interval(s) AS every
FROM (VALUES ('30 seconds'), (' 1 second '), ('* * * * *'), ('*/10 * * * *'), ('*/5  *  * * *'),
			 ('15 * * * *'), ('0 */6 * * *'), ('30 3 * * *'), ('0 3 * * 1-5'), ('5,35 * * * *'),
			 ('1 minute'), ('')) v (s);
DROP EXTENSION release_expired_orders;

\c -
\set SHOW_CONTEXT never
BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION pg_cron;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
-- The last successful run ended 25 minutes ago.
INSERT INTO release_expired_orders.runs (started_at, ended_at, timeout_minutes, batch_limit,
	chunk_size, cutoff, atomic, outcome)
VALUES (now() - interval '25 minutes', now() - interval '25 minutes', 30, 100, 1000, now(), false, 'success');
CREATE TEMP VIEW last_success AS
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'last_success';
-- CREATE EXTENSION scheduled */10: 25 min is more than twice 10 min.
SELECT schedule FROM release_expired_orders.job_status();
SELECT * FROM last_success;
-- Hourly: within twice the interval.
SELECT release_expired_orders.schedule('0 * * * *') IS NOT NULL AS scheduled;
SELECT * FROM last_success;
-- An alert_after that is set wins over the schedule.
SET release_expired_orders.alert_after = '10min';
SELECT * FROM last_success;
RESET release_expired_orders.alert_after;
-- A schedule without a plain period: the default alert_after (20 min).
SELECT release_expired_orders.schedule('0 3 * * 1-5') IS NOT NULL AS scheduled;
SELECT * FROM last_success;
ROLLBACK;
