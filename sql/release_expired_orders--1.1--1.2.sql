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
