-- Every SQL-callable routine of the extension, given NULL for any of its
-- arguments (and for all of them), returns or raises an error: it never
-- crashes the server.  Run as a superuser and as a role with only USAGE on
-- the extension's schema, such as a monitoring role.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
CREATE ROLE regress_reo_monitor;
GRANT USAGE ON SCHEMA release_expired_orders TO regress_reo_monitor;

-- The calls: for each routine, all arguments NULL, then each argument NULL
-- in turn with ordinary values for the others.
CREATE TEMP TABLE calls AS
WITH routines AS (
	SELECT p.oid, p.prokind, p.oid::regproc::text AS name,
		   p.proargtypes::oid[] AS types
	FROM pg_depend d
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'release_expired_orders'
	JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
	WHERE d.deptype = 'e' AND p.prorettype <> 'trigger'::regtype
	  AND p.prorettype <> 'event_trigger'::regtype),
cases AS (
	SELECT r.*, 0 AS only_null FROM routines r
	UNION ALL
	SELECT r.*, i FROM routines r, generate_series(1, cardinality(r.types)) i)
SELECT c.oid::regprocedure::text AS routine, c.only_null,
	   CASE c.prokind WHEN 'p' THEN 'CALL ' ELSE 'SELECT * FROM ' END || c.name || '('
	   || coalesce((SELECT string_agg(CASE WHEN c.only_null IN (0, u.i) THEN 'NULL'
										   ELSE CASE format_type(u.t, NULL)
												WHEN 'integer' THEN '1' WHEN 'text' THEN '''x'''
												WHEN 'name' THEN '''x''' WHEN 'boolean' THEN 'true'
												WHEN 'interval' THEN '''1 day'''
												WHEN 'uuid' THEN '''00000000-0000-0000-0000-000000000000'''
												WHEN 'jsonb' THEN '''{}'''
												ELSE 'now()' END END
									  || '::' || format_type(u.t, NULL), ', ' ORDER BY u.i)
				FROM unnest(c.types) WITH ORDINALITY u(t, i)), '') || ')' AS stmt
FROM cases c;
GRANT SELECT ON calls TO regress_reo_monitor;
SELECT count(*) > 40 AS many_calls FROM calls;

CREATE FUNCTION try_call(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END $$;

-- As a superuser, in a transaction rolled back (schedule() and the job
-- would otherwise change things).  What each call did, by SQLSTATE class.
BEGIN;
SET LOCAL client_min_messages = error;
CREATE TEMP TABLE outcome_superuser AS
SELECT routine, only_null, try_call(stmt) AS outcome FROM calls;
COMMIT;
SELECT CASE WHEN outcome = 'ok' THEN 'ok' ELSE left(outcome, 2) || 'xxx' END AS outcome_class,
	   count(*) > 0 AS some
FROM outcome_superuser GROUP BY 1 ORDER BY 1;
-- Still connected: the server did not crash.
SELECT 1 AS still_connected;

-- As the monitoring role: refused or answered, never a crash.
SET ROLE regress_reo_monitor;
BEGIN;
SET LOCAL client_min_messages = error;
SELECT count(*) > 40 AS calls_made, count(*) FILTER (WHERE o IS NULL) AS no_answer
FROM (SELECT try_call(stmt) AS o FROM calls) s;
ROLLBACK;
RESET ROLE;
SELECT 1 AS still_connected;

DROP FUNCTION try_call(text);
DROP TABLE calls, outcome_superuser;
-- add_wake_trigger() was called: its trigger depends on the extension.
DROP TRIGGER release_expired_orders_wake ON orders;
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP ROLE regress_reo_monitor;
