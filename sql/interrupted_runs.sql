-- A run whose backend died reads "interrupted" from the next run on; a run
-- whose backend is alive (it holds its advisory lock) stays "running"; a
-- lock on a dead run's key taken by another backend does not keep it alive.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

-- Three runs left "running": 1001 by a backend that is gone, 1002 by this
-- backend holding its liveness lock, 1003 by a backend that is gone while
-- this one holds a lock with 1003's key.
INSERT INTO release_expired_orders.runs
	(id, started_at, timeout_minutes, batch_limit, chunk_size, cutoff, atomic, backend_pid)
OVERRIDING SYSTEM VALUE
VALUES (1001, now(), 30, 100, 1000, now(), false, 0),
	   (1002, now(), 30, 100, 1000, now(), false, pg_backend_pid()),
	   (1003, now(), 30, 100, 1000, now(), false, 0);
SELECT pg_advisory_lock(1919250176, 1002), pg_advisory_lock(1919250176, 1003);

CALL release_expired_orders(30, 100) \gset
SELECT id, outcome, error FROM release_expired_orders.runs WHERE id > 1000 ORDER BY id;

-- health() counts the interrupted runs as failed ones, not the live one (the
-- three have the highest ids, so they read as the latest runs).
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'consecutive_failed_runs';

SELECT pg_advisory_unlock_all();
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
