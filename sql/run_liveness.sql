-- A run is alive while the backend it names (pid and start time) exists;
-- no lock another role could take decides it.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

SELECT backend_start AS my_start FROM pg_stat_activity WHERE pid = pg_backend_pid() \gset

-- The liveness test itself.
SELECT release_expired_orders.run_is_alive(pg_backend_pid(), :'my_start') AS me,
	   release_expired_orders.run_is_alive(pg_backend_pid(), :'my_start'::timestamptz - interval '1 second') AS my_pid_reused,
	   release_expired_orders.run_is_alive(0, :'my_start') AS no_such_pid;

-- Runs left "running": one by a backend that is gone, one by a backend
-- whose pid was reused since, one by 1.0 (no backend_start), one by this
-- backend (alive).
INSERT INTO release_expired_orders.runs (started_at, timeout_minutes, batch_limit, chunk_size, cutoff, atomic, backend_pid, backend_start)
VALUES (now() - interval '1 hour', 30, 100, 1000, now(), false, 0, now() - interval '2 hours'),
	   (now() - interval '1 hour', 30, 100, 1000, now(), false, pg_backend_pid(), :'my_start'::timestamptz - interval '1 day'),
	   (now() - interval '1 hour', 30, 100, 1000, now(), false, pg_backend_pid(), NULL),
	   (now() - interval '1 hour', 30, 100, 1000, now(), false, pg_backend_pid(), :'my_start');
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'consecutive_failed_runs';

-- Advisory locks on the keys 1.0 used for its liveness (1919250176, run id)
-- and on any other key do not concern the job.
SELECT count(pg_advisory_lock(1919250176, i)) AS locked FROM generate_series(1, 20) AS i;
SELECT count(pg_advisory_lock(i)) AS locked FROM generate_series(1, 20) AS i;
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-000000000001', 'L-1', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, (now() AT TIME ZONE 'UTC') - interval '1 hour');
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS successful;
SELECT status FROM orders;
SELECT pg_advisory_unlock_all();

-- The next run marked the dead ones interrupted; this backend's stays
-- running; the run itself has this backend's pid and start.
SELECT id, outcome, error FROM release_expired_orders.runs ORDER BY id;
SELECT backend_pid = pg_backend_pid() AS my_pid, backend_start = :'my_start' AS my_start
FROM release_expired_orders.runs WHERE id = 5;
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'consecutive_failed_runs';

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
