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
