-- Security (README), privileges: nothing that writes is executable by PUBLIC, a role
-- without grants is refused with insufficient_privilege (42501), and a
-- dedicated job role with exactly the grants the README lists can run the
-- job; each of those grants is needed.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 100, 10, 'active');
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity,
					total_amount, created_at)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'ORD-' || n,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   '00000000-0000-0000-0000-0000000000b1', 'lottery_win', 2, 10.00,
	   (now() AT TIME ZONE 'UTC') - (60 + n) * interval '1 minute'
FROM generate_series(1, 3) n;

-- What the tables look like; printed again after every refused attempt.
CREATE VIEW app_state AS
SELECT (SELECT string_agg(order_number || ':' || status || '/' || payment_status || '/'
						  || fulfillment_status, ' ' ORDER BY order_number) FROM orders) AS orders,
	   (SELECT sum(stock) FROM products) AS stock,
	   (SELECT sum(sold_shares) FROM lottery_rounds) AS sold_shares,
	   (SELECT count(*) FROM notifications) AS notifications,
	   (SELECT count(*) FROM release_expired_orders.runs) AS runs,
	   (SELECT count(*) FROM release_expired_orders.order_events) AS events;
GRANT SELECT ON app_state TO PUBLIC;

-- 1. The catalog: no routine of the extension that can write (every
-- volatile one) is executable by PUBLIC, the extension's schema grants
-- PUBLIC nothing, and no table of the extension is writable by PUBLIC
-- (PUBLIC reads one: payment_windows, which every role running the job needs).
SELECT p.oid::regprocedure AS public_executes_volatile_routine
FROM pg_depend d
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'release_expired_orders'
JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
WHERE d.deptype = 'e' AND p.provolatile = 'v'
  AND EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
			  WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE');
SELECT count(*) > 0 AS has_routines
FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'release_expired_orders'
WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e';
SELECT n.nspname, a.privilege_type AS public_privilege
FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
WHERE n.nspname = 'release_expired_orders' AND a.grantee = 0;
SELECT c.oid::regclass AS relation, a.privilege_type AS public_privilege
FROM pg_depend d
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'release_expired_orders'
JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid,
	 aclexplode(coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
WHERE d.deptype = 'e' AND a.grantee = 0;
-- Nor is any SECURITY DEFINER routine: each runs with its owner's
-- privileges, so each is granted only to the roles that need it
-- (job_status() shows the pg_cron job, its command and role).
SELECT p.oid::regprocedure AS public_executes_security_definer
FROM pg_depend d
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'release_expired_orders'
JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
WHERE d.deptype = 'e' AND p.prosecdef
  AND EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
			  WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE');

-- 2. A role with no grants at all is refused by every routine of the
-- extension, whatever it is, with 42501 and before anything is written.
CREATE ROLE regress_reo_nobody;
SET ROLE regress_reo_nobody;
CALL release_expired_orders();
CALL public.release_expired_orders(30, 100, NULL);
RESET ROLE;
CREATE FUNCTION try_as(role name, routine regprocedure) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	stmt text;
	state text;
BEGIN
	SELECT CASE p.prokind WHEN 'p' THEN 'CALL ' ELSE 'SELECT ' END
		   || p.oid::regproc::text || '('
		   || coalesce((SELECT string_agg('NULL::' || format_type(t, NULL), ', ' ORDER BY i)
						FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS u(t, i)), '')
		   || ')'
	INTO stmt FROM pg_proc p WHERE p.oid = routine;
	EXECUTE format('SET LOCAL ROLE %I', role);
	BEGIN
		EXECUTE stmt;
		state := 'no error';
	EXCEPTION WHEN OTHERS THEN
		state := SQLSTATE;
	END;
	RESET ROLE;
	RETURN state;
END $$;
SELECT p.oid::regprocedure AS routine, try_as('regress_reo_nobody', p.oid) AS sqlstate
FROM pg_depend d
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'release_expired_orders'
JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
WHERE d.deptype = 'e' AND try_as('regress_reo_nobody', p.oid) <> '42501';
-- Even with USAGE on the extension's schema and SELECT on everything.
GRANT USAGE ON SCHEMA release_expired_orders TO regress_reo_nobody;
GRANT SELECT ON ALL TABLES IN SCHEMA release_expired_orders, public TO regress_reo_nobody;
SELECT p.oid::regprocedure AS routine, try_as('regress_reo_nobody', p.oid) AS sqlstate
FROM pg_depend d
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'release_expired_orders'
JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
WHERE d.deptype = 'e' AND p.provolatile = 'v' AND try_as('regress_reo_nobody', p.oid) <> '42501';
SELECT * FROM app_state;

-- 3. The dedicated job role: exactly these grants (README, Security).
CREATE ROLE regress_reo_job;
GRANT EXECUTE ON PROCEDURE public.release_expired_orders(integer, integer, jsonb) TO regress_reo_job;
GRANT USAGE ON SCHEMA release_expired_orders TO regress_reo_job;
GRANT SELECT, INSERT, UPDATE ON release_expired_orders.runs TO regress_reo_job;
GRANT SELECT, INSERT ON release_expired_orders.order_events TO regress_reo_job;
GRANT EXECUTE ON FUNCTION release_expired_orders.purge_history(interval) TO regress_reo_job;
GRANT USAGE ON SCHEMA public TO regress_reo_job;
GRANT SELECT, UPDATE ON public.orders, public.products, public.lottery_rounds TO regress_reo_job;
GRANT INSERT ON public.notifications TO regress_reo_job;

-- Each grant is needed: without it the job is refused and nothing is
-- released; without purge_history the job releases but warns that it
-- could not trim its history.  (In a transaction block
-- the job works in the caller's transaction, which is rolled back after
-- each attempt.)
CREATE TABLE job_grants (n int, object text, privilege text);
INSERT INTO job_grants VALUES
	(1, 'PROCEDURE public.release_expired_orders(integer, integer, jsonb)', 'EXECUTE'),
	(2, 'SCHEMA release_expired_orders', 'USAGE'),
	(3, 'release_expired_orders.runs', 'SELECT'),
	(4, 'release_expired_orders.runs', 'INSERT'),
	(5, 'release_expired_orders.runs', 'UPDATE'),
	(6, 'release_expired_orders.order_events', 'INSERT'),
	(7, 'public.orders', 'SELECT'),
	(8, 'public.orders', 'UPDATE'),
	(9, 'public.products', 'SELECT'),
	(10, 'public.products', 'UPDATE'),
	(11, 'public.lottery_rounds', 'SELECT'),
	(12, 'public.lottery_rounds', 'UPDATE'),
	(13, 'public.notifications', 'INSERT'),
	(14, 'FUNCTION release_expired_orders.purge_history(interval)', 'EXECUTE'),
	(15, 'release_expired_orders.order_events', 'SELECT');
CREATE FUNCTION job_without(n int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	g job_grants;
	summary jsonb;
	result text;
BEGIN
	SELECT * INTO g FROM job_grants WHERE job_grants.n = job_without.n;
	EXECUTE format('REVOKE %s ON %s FROM regress_reo_job', g.privilege, g.object);
	SET LOCAL ROLE regress_reo_job;
	-- Each case starts from the same orders: what a run did is rolled back.
	BEGIN
		CALL public.release_expired_orders(30, 100, summary);
		RAISE EXCEPTION USING ERRCODE = 'RBACK',
			MESSAGE = format('outcome %s, released %s, failed %s: %s',
							 summary->'summary'->>'outcome', summary->'summary'->>'successful',
							 summary->'summary'->>'failed', summary->'errors'->0->>'error');
	EXCEPTION WHEN OTHERS THEN
		result := CASE WHEN SQLSTATE = 'RBACK' THEN SQLERRM
				  ELSE format('ERROR %s: %s', SQLSTATE, SQLERRM) END;
	END;
	RESET ROLE;
	EXECUTE format('GRANT %s ON %s TO regress_reo_job', g.privilege, g.object);
	RETURN result;
END $$;
BEGIN;
SELECT n, privilege, object, job_without(n) AS without_it FROM job_grants ORDER BY n;
ROLLBACK;
SELECT * FROM app_state;

-- With all of them, a plain CALL (committing, as pg_cron runs it) releases.
SET ROLE regress_reo_job;
CALL release_expired_orders(30, 100, NULL) \gset
RESET ROLE;
SELECT (:'summary'::jsonb)->'summary'->>'outcome' AS outcome,
	   (:'summary'::jsonb)->'summary'->>'successful' AS released;
SELECT * FROM app_state;
SELECT run_by, outcome, released FROM release_expired_orders.runs;

-- 4. The tightest form: column privileges on the application's tables.
CREATE ROLE regress_reo_coljob;
GRANT EXECUTE ON PROCEDURE public.release_expired_orders(integer, integer, jsonb) TO regress_reo_coljob;
GRANT USAGE ON SCHEMA release_expired_orders TO regress_reo_coljob;
GRANT SELECT, INSERT, UPDATE ON release_expired_orders.runs TO regress_reo_coljob;
GRANT SELECT, INSERT ON release_expired_orders.order_events TO regress_reo_coljob;
GRANT EXECUTE ON FUNCTION release_expired_orders.purge_history(interval) TO regress_reo_coljob;
GRANT USAGE ON SCHEMA public TO regress_reo_coljob;
GRANT SELECT (id, order_number, user_id, product_id, round_id, quantity, status, payment_status,
			  fulfillment_status, notes, created_at),
	  UPDATE (status, payment_status, fulfillment_status, notes, updated_at)
	  ON public.orders TO regress_reo_coljob;
GRANT SELECT (id, stock), UPDATE (stock, updated_at) ON public.products TO regress_reo_coljob;
GRANT SELECT (id, sold_shares), UPDATE (sold_shares, updated_at) ON public.lottery_rounds TO regress_reo_coljob;
GRANT INSERT (id, user_id, type, content, status, sent_at, created_at) ON public.notifications
	TO regress_reo_coljob;
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity,
					total_amount, created_at)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'ORD-' || n,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   '00000000-0000-0000-0000-0000000000b1', 'lottery_win', 1, 10.00,
	   (now() AT TIME ZONE 'UTC') - (60 + n) * interval '1 minute'
FROM generate_series(4, 5) n;
SET ROLE regress_reo_coljob;
CALL release_expired_orders(30, 100, NULL) \gset
RESET ROLE;
SELECT (:'summary'::jsonb)->'summary'->>'outcome' AS outcome,
	   (:'summary'::jsonb)->'summary'->>'successful' AS released;
SELECT * FROM app_state;
-- With payment windows the job also reads orders.type and
-- orders.payment_method: without SELECT on them it is refused before it
-- writes anything (no run row), and with it the windowed run releases.
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity,
					total_amount, created_at)
VALUES ('00000000-0000-0000-0000-000000000006', 'ORD-6', '00000000-0000-0000-0000-0000000000c1',
		'00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 'recharge',
		1, 10.00, (now() AT TIME ZONE 'UTC') - interval '20 minutes');
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 15);
SELECT count(*) AS runs_before FROM release_expired_orders.runs \gset
SET ROLE regress_reo_coljob;
CALL release_expired_orders(30, 100, NULL);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) - :runs_before AS runs_written FROM release_expired_orders.runs;
GRANT SELECT (type, payment_method) ON public.orders TO regress_reo_coljob;
SET ROLE regress_reo_coljob;
CALL release_expired_orders(30, 100, NULL) \gset
RESET ROLE;
SELECT (:'summary'::jsonb)->'summary'->>'outcome' AS outcome,
	   (:'summary'::jsonb)->'summary'->>'successful' AS released;
DELETE FROM release_expired_orders.payment_windows;

\set SHOW_CONTEXT never
-- 5. purge_history() runs as its owner: the job's role may purge only what
-- the configured retention allows, whatever it passes or SETs, and nothing
-- is deleted when it is refused; the extension's owner (here a superuser)
-- may purge anything.  SET SESSION AUTHORIZATION makes the job's role the
-- session's, as a pg_cron job or a login of that role is.
CREATE VIEW finished_runs AS
SELECT count(*) AS runs, count(*) FILTER (WHERE started_at < now() - interval '35 days') AS over_35_days,
	   count(*) FILTER (WHERE started_at < now() - interval '8 days') AS over_8_days
FROM release_expired_orders.runs WHERE outcome <> 'running';
GRANT SELECT ON finished_runs TO PUBLIC;
INSERT INTO release_expired_orders.runs (started_at, ended_at, timeout_minutes, batch_limit,
	chunk_size, cutoff, atomic, outcome)
SELECT now() - d * interval '1 day', now() - d * interval '1 day', 30, 100, 1000,
	   now() - d * interval '1 day', false, 'success'
FROM (VALUES (10), (40)) v (d);
SELECT * FROM finished_runs;
\c -
SET SESSION AUTHORIZATION regress_reo_job;
SELECT * FROM finished_runs;
-- A SET of the session, before the library is loaded (a placeholder) or
-- after, is not the configured retention.
SET release_expired_orders.history_retention = '1min';
SELECT release_expired_orders.purge_history();
\echo :LAST_ERROR_SQLSTATE
CALL release_expired_orders(30, 100, NULL) \gset
RESET release_expired_orders.history_retention;
SELECT release_expired_orders.purge_history('0 seconds');
SELECT release_expired_orders.purge_history('29 days');
SELECT * FROM finished_runs;
-- What the retention allows is purged: the 40-day-old run.
SELECT release_expired_orders.purge_history() AS deleted;
SELECT release_expired_orders.purge_history('35 days') AS deleted;
RESET SESSION AUTHORIZATION;
SELECT * FROM finished_runs;
-- A retention configured for the database (or the role, or the server)
-- is what the job's role may purge down to.
DO $$ BEGIN
	EXECUTE format('ALTER DATABASE %I SET release_expired_orders.history_retention = ''7d''', current_database());
END $$;
\c -
SET SESSION AUTHORIZATION regress_reo_job;
SELECT release_expired_orders.purge_history('6 days');
SELECT release_expired_orders.purge_history() AS deleted;
RESET SESSION AUTHORIZATION;
SELECT * FROM finished_runs;
DO $$ BEGIN
	EXECUTE format('ALTER DATABASE %I RESET release_expired_orders.history_retention', current_database());
END $$;
\c -
-- The owner of the extension may purge anything.
SELECT release_expired_orders.purge_history('0 seconds') > 0 AS purged_by_owner;
SELECT * FROM finished_runs;

-- Clean up.
DROP VIEW finished_runs;
DROP FUNCTION try_as(name, regprocedure), job_without(int);
DROP TABLE job_grants;
DROP VIEW app_state;
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP OWNED BY regress_reo_nobody, regress_reo_job, regress_reo_coljob;
DROP ROLE regress_reo_nobody, regress_reo_job, regress_reo_coljob;
