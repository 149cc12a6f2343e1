-- Security (README), default privileges: the role that installs the extension may
-- have default privileges that grant what it creates to other roles.
-- Supabase's postgres role has one for functions in public
-- (ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO
-- anon, authenticated, service_role); other setups grant new schemas,
-- tables or functions everywhere.  The install script takes back every
-- grant they made on the extension's objects.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
CREATE ROLE regress_reo_anon;
CREATE ROLE regress_reo_evil;
CREATE TABLE planted_calls (what text, called_by name);
GRANT INSERT ON planted_calls TO PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO regress_reo_anon;
ALTER DEFAULT PRIVILEGES GRANT ALL ON SCHEMAS TO regress_reo_evil;
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

-- Privileges on the extension's objects held by roles other than the
-- owner: none (the README lists the grants to give).
SELECT pg_describe_object(d.classid, d.objid, 0) AS object, r.rolname AS grantee,
	   string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS privileges
FROM pg_depend d
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'release_expired_orders'
LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
LEFT JOIN pg_namespace n ON d.classid = 'pg_namespace'::regclass AND n.oid = d.objid,
	 aclexplode(coalesce(p.proacl, c.relacl, n.nspacl)) a
JOIN pg_roles r ON r.oid = a.grantee
WHERE d.deptype = 'e' AND a.grantee <> coalesce(p.proowner, c.relowner, n.nspowner)
  AND r.rolname LIKE 'regress_reo_%'
GROUP BY 1, 2 ORDER BY 2, 1;

-- Supabase's case: anon may not CALL the procedure.
SET ROLE regress_reo_anon;
DO $$
DECLARE
	summary jsonb;
BEGIN
	CALL public.release_expired_orders(30, 100, summary);
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE '%: %', SQLSTATE, SQLERRM;
END $$;
RESET ROLE;

-- The other case: a role that was granted CREATE on new schemas tries to
-- plant, in the extension's schema, an overload of a helper that the
-- SECURITY DEFINER purge_history() calls; it may not create it there (and
-- purge_history() passes exactly typed arguments besides).
SET ROLE regress_reo_evil;
CREATE FUNCTION release_expired_orders.setting_int(name text, unit text, default_value integer)
RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.planted_calls VALUES ('setting_int(text,text,integer)', current_user);
	RETURN default_value;
END $$;
RESET ROLE;
CALL release_expired_orders(30, 100, NULL) \gset
-- Nothing planted ran.
SELECT what, called_by, count(*) AS calls FROM planted_calls GROUP BY 1, 2;

-- Clean up.
DROP EXTENSION release_expired_orders CASCADE;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON FUNCTIONS FROM regress_reo_anon;
ALTER DEFAULT PRIVILEGES REVOKE ALL ON SCHEMAS FROM regress_reo_evil;
DROP TABLE orders, products, lottery_rounds, notifications, planted_calls;
DROP OWNED BY regress_reo_anon, regress_reo_evil;
DROP ROLE regress_reo_anon, regress_reo_evil;
