--
-- The stats view (README, Monitoring): per hour and per day (in the session's
-- TimeZone), how often the job ran, what it found, released and failed,
-- and its average, 95th percentile and longest duration.
--
-- (without pg_cron it warns that the job is not scheduled: see scheduling)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
SET client_min_messages = warning;
CREATE SCHEMA stats_app;
SET search_path = stats_app, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
RESET client_min_messages;
SET release_expired_orders.app_schema = stats_app;

INSERT INTO release_expired_orders.runs (started_at, ended_at, duration_ms, timeout_minutes,
	batch_limit, chunk_size, cutoff, atomic, found, released, failed, outcome, error)
SELECT t.started::timestamptz, t.started::timestamptz + t.ms * interval '1 ms', t.ms, 30, 100, 1000,
	   t.started::timestamptz - interval '30 minutes', false, t.found, t.released, t.failed, t.outcome,
	   CASE WHEN t.outcome = 'failed' THEN 'boom' END
FROM (VALUES
	('2026-03-01 10:00:00+00', 100, 10, 10, 0, 'success'),
	('2026-03-01 10:10:00+00', 300, 5, 4, 1, 'partial'),
	('2026-03-01 10:20:00+00', 200, 0, 0, 0, 'success'),
	('2026-03-01 10:30:00+00', 50, 0, 0, 0, 'failed'),
	('2026-03-01 11:00:00+00', 1000, 100, 100, 0, 'success'),
	('2026-03-01 23:50:00+00', 400, 1, 1, 0, 'success'),
	('2026-03-02 00:00:00+00', 600, 2, 2, 0, 'success')
) t (started, ms, found, released, failed, outcome);
-- An interrupted run has no end and no duration.
INSERT INTO release_expired_orders.runs (started_at, timeout_minutes, batch_limit, chunk_size,
	cutoff, atomic, found, released, outcome)
VALUES ('2026-03-02 00:10:00+00', 30, 100, 1000, '2026-03-01 23:40:00+00', false, 3, 2, 'interrupted');

SET TimeZone = 'UTC';
SELECT * FROM release_expired_orders.stats ORDER BY period, period_start;
-- Days follow the session's TimeZone: in UTC+5 the last three runs share a day.
SET TimeZone = 'Asia/Dushanbe';
SELECT period_start, runs, failed_runs, released FROM release_expired_orders.stats
 WHERE period = 'day' ORDER BY period_start;
RESET TimeZone;

-- A real run is counted too (with a retention that keeps the runs above:
-- every run purges history older than history_retention).
SET release_expired_orders.history_retention = '3650d';
CALL release_expired_orders() \gset
RESET release_expired_orders.history_retention;
SELECT sum(runs) AS runs FROM release_expired_orders.stats WHERE period = 'day';
SELECT sum(runs) AS runs FROM release_expired_orders.stats WHERE period = 'hour';

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA stats_app CASCADE;
DROP EXTENSION release_expired_orders;
