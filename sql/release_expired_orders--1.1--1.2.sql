-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION release_expired_orders UPDATE TO '1.2'" to load this file. \quit

-- Upgrade from 1.1, written by hand: only what 1.2 changes.  It never
-- revokes a privilege: the grants an operator gave on the extension's
-- objects stay as they are (sql/upgrade.sql checks it).
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- purge_history() decides by its caller's current user and by the exact
-- time it deletes up to, and deletes as the extension's owner: in C, run
-- as its caller (CREATE OR REPLACE keeps its grants and comment).
CREATE OR REPLACE FUNCTION release_expired_orders.purge_history(older_than interval DEFAULT NULL)
RETURNS bigint LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'reo_purge_history';

-- The backend restoring pg_dump output into this database, recorded by the
-- install script in a restore: no release while it restores.  Not dumped.
CREATE TABLE release_expired_orders.restores (
	backend_pid integer NOT NULL,
	backend_start timestamptz NOT NULL,
	login_role oid NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE release_expired_orders.restores IS
	'The backend restoring pg_dump output into this database: no release while it restores';

-- The pid of a backend restoring pg_dump output into this database, or
-- NULL: while there is one, nothing is released (see restores).
CREATE FUNCTION release_expired_orders.restoring_backend()
RETURNS integer LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'reo_restoring_backend';

-- The end of a restore that did not load the data (a schema-only dump, a
-- restore abandoned halfway), or of a CREATE EXTENSION taken for a
-- restore: forget it, and give the history's sequence its position back.
CREATE FUNCTION release_expired_orders.restore_finished()
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM release_expired_orders.restores;
	IF (SELECT s.last_value FROM release_expired_orders.runs_id_seq s) = 9223372036854775000 THEN
		PERFORM pg_catalog.setval('release_expired_orders.runs_id_seq',
			coalesce((SELECT max(r.id) FROM release_expired_orders.runs r), 1),
			EXISTS (SELECT FROM release_expired_orders.runs));
	END IF;
END
$$;
REVOKE ALL ON FUNCTION release_expired_orders.restore_finished() FROM PUBLIC;

-- The metrics view: an order whose created_at is -infinity no longer makes
-- oldest_overdue_seconds fail.
-- Numbers for dashboards (SPEC 14): one row per metric, with its
-- Prometheus type and help, for sql_exporter or postgres_exporter's custom
-- queries.  oldest_overdue_seconds is the one to alert on.  Totals are over
-- the history kept (history_retention).  It reads the run rows and one
-- index probe per order type, so it is cheap enough to scrape every 15 s.
CREATE OR REPLACE VIEW release_expired_orders.metrics AS
WITH totals AS (
	SELECT pg_catalog.count(*) AS runs,
		   pg_catalog.count(*) FILTER (WHERE r.outcome IN ('failed', 'interrupted')) AS failed_runs,
		   COALESCE(pg_catalog.sum(r.released), 0) AS released,
		   COALESCE(pg_catalog.sum(r.failed), 0) AS failed,
		   COALESCE(pg_catalog.sum(r.vetoed), 0) AS vetoed,
		   pg_catalog.max(r.ended_at) FILTER (WHERE r.outcome IN ('success', 'partial')) AS last_success
	FROM release_expired_orders.runs r),
last_run AS (
	SELECT (SELECT r.duration_ms FROM release_expired_orders.runs r
			WHERE r.outcome <> 'running' ORDER BY r.id DESC LIMIT 1) AS duration_ms),
due AS (SELECT release_expired_orders.oldest_deadline() AS oldest),
-- the deadline worker serving this database, if one is configured for it
worker AS (
	SELECT pg_catalog.count(*) > 0 AS configured, pg_catalog.max(w.pid) AS pid,
		   pg_catalog.max(w.last_lag_ms) AS lag_ms
	FROM release_expired_orders.worker_status() w
	WHERE w.database = pg_catalog.current_database())
SELECT m.metric, m.value, m.type, m.help
FROM totals t, last_run l, due d, worker w
CROSS JOIN LATERAL (VALUES
	-- by epochs: an order created at -infinity is overdue without end
	('oldest_overdue_seconds',
	 COALESCE(GREATEST(0, pg_catalog.date_part('epoch', pg_catalog.now())
						  - pg_catalog.date_part('epoch', d.oldest)), 0),
	 'gauge', 'How long the oldest order still pending is past its deadline (0: none is overdue)'),
	('seconds_since_last_success', pg_catalog.date_part('epoch', pg_catalog.now() - t.last_success),
	 'gauge', 'Seconds since the last run that finished (success or partial); NULL: none kept'),
	('released_total', t.released::double precision, 'counter', 'Orders released by the runs kept'),
	('failed_total', t.failed::double precision, 'counter', 'Orders that failed to be released, by the runs kept'),
	('vetoed_total', t.vetoed::double precision, 'counter', 'Orders the application vetoed, by the runs kept'),
	('runs_total', t.runs::double precision, 'counter', 'Runs kept'),
	('failed_runs_total', t.failed_runs::double precision, 'counter', 'Runs kept that failed or were interrupted'),
	('last_run_duration_seconds', l.duration_ms / 1000, 'gauge', 'Duration of the last finished run'),
	('worker_running', CASE WHEN w.configured THEN (w.pid IS NOT NULL)::integer END::double precision,
	 'gauge', 'Whether the deadline worker serving this database runs (1) or not (0); NULL: none configured'),
	('worker_lag_seconds', w.lag_ms / 1000, 'gauge',
	 'How late after the deadline it slept for the worker last woke; NULL: no worker or no such wake')
) m (metric, value, type, help);
