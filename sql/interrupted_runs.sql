-- A run whose backend died reads "interrupted" from the next run on; a run
-- whose backend is alive (the same pid and start time) stays "running"; a
-- reused pid, or an advisory lock anyone can take, does not keep it alive.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

-- Three runs left "running": 1001 by a backend that is gone, 1002 by this
-- backend (its pid and start time), 1003 by a backend with this backend's
-- pid but another start time (a pid reused), while this session holds
-- advisory locks on every key the 1.0 liveness mark used.
INSERT INTO release_expired_orders.runs
	(id, started_at, timeout_minutes, batch_limit, chunk_size, cutoff, atomic, backend_pid, backend_start)
OVERRIDING SYSTEM VALUE
SELECT v.id, now(), 30, 100, 1000, now(), false, v.pid, v.started
FROM (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()) a,
	 LATERAL (VALUES (1001, 0, a.backend_start),
					 (1002, pg_backend_pid(), a.backend_start),
					 (1003, pg_backend_pid(), a.backend_start - interval '1 hour')) v (id, pid, started);
SELECT pg_advisory_lock(1919250176, 1002), pg_advisory_lock(1919250176, 1003);

CALL release_expired_orders(30, 100) \gset
SELECT id, outcome, error FROM release_expired_orders.runs WHERE id > 1000 ORDER BY id;

-- health() counts the interrupted runs as failed ones, not the live one (the
-- three have the highest ids, so they read as the latest runs).
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'consecutive_failed_runs';

SELECT pg_advisory_unlock_all();
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
