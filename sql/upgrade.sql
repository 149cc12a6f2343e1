-- ALTER EXTENSION ... UPDATE from 1.0, through 1.1 to 1.2, gives exactly the
-- objects, definitions, privileges and dump marks of a fresh installation
-- of the current version, compared in the catalog; and it keeps the
-- history, the settings and the grants it had (an upgrade script never
-- revokes anything).
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;

-- What an installation is made of, one row per aspect of each object.
CREATE TEMP VIEW installation AS
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'release_expired_orders'),
members AS (
	SELECT d.classid, d.objid FROM pg_depend d, ext
	WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
tables AS (
	SELECT c.oid FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
	WHERE c.relkind IN ('r', 'p'))
SELECT pg_describe_object(m.classid, m.objid, 0) AS object, 'member' AS aspect,
	   coalesce(obj_description(m.objid, (SELECT relname FROM pg_class WHERE oid = m.classid)), '') AS value
FROM members m
UNION ALL
SELECT p.oid::regprocedure::text, 'definition',
	   CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) END
		   || ' acl ' || coalesce(p.proacl::text, 'default')
FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
UNION ALL
SELECT c.oid::regclass::text, 'relation',
	   c.relkind::text || ' acl ' || coalesce(c.relacl::text, 'default')
		   || coalesce(' view ' || pg_get_viewdef(c.oid), '')
FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
UNION ALL
SELECT a.attrelid::regclass::text, 'column ' || a.attnum,
	   a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		   || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
		   || CASE WHEN a.attidentity::text <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
FROM tables t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
UNION ALL
SELECT co.conrelid::regclass::text, 'constraint ' || co.conname, pg_get_constraintdef(co.oid)
FROM tables t JOIN pg_constraint co ON co.conrelid = t.oid
UNION ALL
SELECT i.indrelid::regclass::text, 'index ' || i.indexrelid::regclass, pg_get_indexdef(i.indexrelid)
FROM tables t JOIN pg_index i ON i.indrelid = t.oid
UNION ALL
SELECT tg.tgrelid::regclass::text, 'trigger ' || tg.tgname, pg_get_triggerdef(tg.oid)
FROM tables t JOIN pg_trigger tg ON tg.tgrelid = t.oid AND NOT tg.tgisinternal
UNION ALL
SELECT 'extension', 'dumped with pg_dump', c.relname::text
FROM pg_extension e JOIN pg_class c ON c.oid = ANY (e.extconfig)
WHERE e.extname = 'release_expired_orders'
UNION ALL
SELECT 'schema release_expired_orders', 'acl', coalesce(nspacl::text, 'default')
FROM pg_namespace WHERE nspname = 'release_expired_orders';

-- A 1.0 installation with some history and a role's grant, then upgraded.
CREATE ROLE regress_reo_payments;
CREATE EXTENSION release_expired_orders VERSION '1.0';
GRANT EXECUTE ON FUNCTION release_expired_orders.restore_order(uuid) TO regress_reo_payments;
INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 1);
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'U-1', '00000000-0000-0000-0000-0000000000c1',
		'00000000-0000-0000-0000-0000000000a1', 'direct_buy', 2, 1, (now() AT TIME ZONE 'UTC') - interval '2 hours');
RESET client_min_messages;
-- The library releases on the 1.0 SQL objects, recording the release as
-- 1.0 did (test objects_1_0): a release the upgrade must keep and undo.
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb #>> '{summary,successful}' AS released_on_1_0;
SELECT prosrc AS symbol_1_0 FROM pg_proc
 WHERE oid = 'public.release_expired_orders(integer, integer, jsonb)'::regprocedure;
SET client_min_messages = error;
ALTER EXTENSION release_expired_orders UPDATE TO '1.1';
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'release_expired_orders';
-- The 1.1 procedure names a C symbol the 1.0 library does not have, so a
-- session that still runs the 1.0 library after the update gets "could not
-- find function" instead of a release that ignores payment windows.
SELECT prosrc AS symbol_1_1 FROM pg_proc
 WHERE oid = 'public.release_expired_orders(integer, integer, jsonb)'::regprocedure;
-- The library serves 1.1's objects as 1.1 did (they have no restores table).
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb #>> '{summary,outcome}' AS outcome_on_1_1;
-- The history is kept, and undo of a release made by 1.0 works.
SELECT count(*) AS runs FROM release_expired_orders.runs;
SELECT order_number, outcome, stock_delta FROM release_expired_orders.order_events;
SELECT stock_taken FROM release_expired_orders.restore_order('00000000-0000-0000-0000-000000000001');
SELECT stock FROM products;

-- On to 1.2, with grants on a routine that 1.2 changes and on one it
-- leaves alone.
GRANT EXECUTE ON FUNCTION release_expired_orders.restore_order(uuid) TO regress_reo_payments;
GRANT EXECUTE ON FUNCTION release_expired_orders.purge_history(interval) TO regress_reo_payments;
SET client_min_messages = error;
ALTER EXTENSION release_expired_orders UPDATE;
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'release_expired_orders';
-- The grants are kept.
SELECT p.oid::regprocedure AS routine,
	   has_function_privilege('regress_reo_payments', p.oid, 'EXECUTE') AS payments_executes
  FROM pg_proc p
 WHERE p.oid IN ('release_expired_orders.restore_order(uuid)'::regprocedure,
				 'release_expired_orders.purge_history(interval)'::regprocedure)
 ORDER BY 1;
SELECT count(*) AS runs FROM release_expired_orders.runs;
SET client_min_messages = error;
-- (the role's grants are kept by the upgrade; a fresh install has none)
REVOKE EXECUTE ON FUNCTION release_expired_orders.restore_order(uuid) FROM regress_reo_payments;
REVOKE EXECUTE ON FUNCTION release_expired_orders.purge_history(interval) FROM regress_reo_payments;
CREATE TEMP TABLE upgraded AS SELECT * FROM installation;
DROP EXTENSION release_expired_orders;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
CREATE TEMP TABLE fresh AS SELECT * FROM installation;

-- Rows on one side only: none.
SELECT count(*) > 100 AS many_aspects_compared FROM fresh;
(SELECT 'upgraded only' AS side, * FROM upgraded EXCEPT SELECT 'upgraded only', * FROM fresh)
UNION ALL
(SELECT 'fresh only', * FROM fresh EXCEPT SELECT 'fresh only', * FROM upgraded)
ORDER BY 2, 3, 1;

-- From 1.0 as ALTER EXTENSION ... UPDATE goes by default (the shortest
-- path, the direct script), with the grants the README gives the job's
-- own role (Security): every one is kept, and the catalog is that of a
-- fresh installation given the same grants.
SET client_min_messages = error;
DROP EXTENSION release_expired_orders;
CREATE ROLE regress_reo_job;
CREATE TEMP VIEW job_grants AS
SELECT has_schema_privilege('regress_reo_job', 'release_expired_orders', 'USAGE') AS schema_usage,
	   has_function_privilege('regress_reo_job', 'public.release_expired_orders(integer, integer, jsonb)', 'EXECUTE') AS calls,
	   -- (a list of privileges is true when any one is held: one at a time)
	   has_table_privilege('regress_reo_job', 'release_expired_orders.runs', 'SELECT')
		 AND has_table_privilege('regress_reo_job', 'release_expired_orders.runs', 'INSERT')
		 AND has_table_privilege('regress_reo_job', 'release_expired_orders.runs', 'UPDATE') AS runs,
	   has_table_privilege('regress_reo_job', 'release_expired_orders.order_events', 'SELECT')
		 AND has_table_privilege('regress_reo_job', 'release_expired_orders.order_events', 'INSERT') AS events,
	   has_function_privilege('regress_reo_job', 'release_expired_orders.purge_history(interval)', 'EXECUTE') AS purges;
CREATE FUNCTION pg_temp.grant_job() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	GRANT EXECUTE ON PROCEDURE public.release_expired_orders(integer, integer, jsonb) TO regress_reo_job;
	GRANT USAGE ON SCHEMA release_expired_orders TO regress_reo_job;
	GRANT SELECT, INSERT, UPDATE ON release_expired_orders.runs TO regress_reo_job;
	GRANT SELECT, INSERT ON release_expired_orders.order_events TO regress_reo_job;
	GRANT EXECUTE ON FUNCTION release_expired_orders.purge_history(interval) TO regress_reo_job;
END $$;
CREATE EXTENSION release_expired_orders VERSION '1.0';
SELECT pg_temp.grant_job();
SELECT * FROM job_grants;
ALTER EXTENSION release_expired_orders UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'release_expired_orders';
SELECT * FROM job_grants;
CREATE TEMP TABLE upgraded_direct AS SELECT * FROM installation;
DROP EXTENSION release_expired_orders;
CREATE EXTENSION release_expired_orders;
SELECT pg_temp.grant_job();
CREATE TEMP TABLE fresh_granted AS SELECT * FROM installation;
RESET client_min_messages;
(SELECT 'upgraded only' AS side, * FROM upgraded_direct EXCEPT SELECT 'upgraded only', * FROM fresh_granted)
UNION ALL
(SELECT 'fresh only', * FROM fresh_granted EXCEPT SELECT 'fresh only', * FROM upgraded_direct)
ORDER BY 2, 3, 1;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP ROLE regress_reo_payments, regress_reo_job;
