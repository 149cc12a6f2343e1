-- Security (README), search_path: a role that can CREATE in public plants look-alikes
-- of every function, aggregate and operator the engine uses, a table named
-- like a catalog, a pg_temp function, and a schema of its own with
-- look-alike application tables placed first in the caller's search_path.
-- The job, run by the superuser with search_path "public, pg_catalog" and
-- by the job role with search_path "evil, public", gives exactly the results
-- of a control run on an identical copy of the data made before anything
-- was planted, and never calls a planted object.
\set ECHO none
\i test/fixtures/app_schema.sql
CREATE SCHEMA ctl;
SET search_path = ctl;
\i test/fixtures/app_schema.sql
RESET search_path;
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

-- Every call of a planted object is recorded here (anyone may insert).
CREATE TABLE planted_calls (what text, called_by name DEFAULT current_user);
GRANT INSERT ON planted_calls TO PUBLIC;

-- Orders covering every release rule, the same in public and in ctl.
CREATE FUNCTION fill(nsp text, first int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format($f$
	INSERT INTO %1$I.products (id, stock) VALUES
		(('00000000-0000-0000-0000-00000000%2$s0a1')::uuid, 10),
		(('00000000-0000-0000-0000-00000000%2$s0a2')::uuid, 0);
	INSERT INTO %1$I.lottery_rounds (id, product_id, total_shares, sold_shares, status) VALUES
		(('00000000-0000-0000-0000-00000000%2$s0b1')::uuid, '00000000-0000-0000-0000-0000000000a1', 100, 10, 'active'),
		(('00000000-0000-0000-0000-00000000%2$s0b2')::uuid, '00000000-0000-0000-0000-0000000000a2', 10, 2, 'full');
	INSERT INTO %1$I.orders (id, order_number, user_id, product_id, round_id, type, quantity,
							 total_amount, status, payment_status, fulfillment_status, notes, created_at)
	SELECT ('00000000-0000-0000-0000-00000000%2$s' || lpad(n::text, 3, '0'))::uuid,
		   'ORD-%2$s-' || n, ('00000000-0000-0000-0000-0000000000c' || (n %% 3))::uuid,
		   ('00000000-0000-0000-0000-00000000%2$s' || p)::uuid,
		   ('00000000-0000-0000-0000-00000000%2$s' || r)::uuid, 'direct_buy', q, 10.00,
		   s, ps, 'pending', nt, (now() AT TIME ZONE 'UTC') - age * interval '1 minute'
	FROM (VALUES
		(1, 90, '0a1', NULL, 2, 'pending', 'pending', NULL),
		(2, 85, '0a1', '0b1', 3, 'pending', 'pending', 'note'),
		(3, 80, '0a2', '0b2', 4, 'pending', 'pending', NULL),
		(4, 75, '0a2', '0b2', 1, 'pending', 'pending', NULL),
		(5, 70, '0ff', '0bf', 1, 'pending', 'pending', NULL),
		(6, 65, NULL, NULL, 1, 'pending', 'pending', NULL),
		(7, 60, '0a1', NULL, 0, 'pending', 'pending', NULL),
		(8, 55, '0a1', '0b1', -1, 'pending', 'pending', NULL),
		(9, 50, '0a1', NULL, 1, 'pending', 'paid', NULL),
		(10, 45, '0a1', NULL, 1, 'cancelled', 'pending', NULL),
		(11, 10, '0a1', '0b1', 1, 'pending', 'pending', NULL)
	) AS v(n, age, p, r, q, s, ps, nt)$f$, nsp, first);
END $$;
SELECT fill('public', 1), fill('ctl', 1);

-- What is compared: everything but the times of the run.
CREATE FUNCTION state(nsp text) RETURNS TABLE (tbl text, r text) LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE format($f$
	SELECT 'orders', concat_ws(' ', id, order_number, status, payment_status, fulfillment_status,
		   quantity, regexp_replace(notes, '\d{4}-\d\d-\d\dT[0-9:.]+Z', 'T'), updated_at IS NOT NULL)
	FROM %1$I.orders
	UNION ALL SELECT 'products', concat_ws(' ', id, stock, updated_at IS NOT NULL) FROM %1$I.products
	UNION ALL SELECT 'rounds', concat_ws(' ', id, sold_shares, status, updated_at IS NOT NULL)
	FROM %1$I.lottery_rounds
	UNION ALL SELECT 'notifications', concat_ws(' ', user_id, type, content, status, sent_at IS NOT NULL)
	FROM %1$I.notifications$f$, nsp);
END $$;
CREATE FUNCTION events(run bigint) RETURNS TABLE (r text) LANGUAGE sql AS $$
	SELECT concat_ws(' ', order_id, order_number, user_id, product_id, round_id, quantity, outcome,
					 prev_status, prev_payment_status, prev_fulfillment_status, stock_delta,
					 shares_delta, sqlstate, message)
	FROM release_expired_orders.order_events WHERE run_id = run
$$;
-- Rows in one and not the other, both ways; empty when identical.
CREATE FUNCTION differences(run_a bigint, run_b bigint) RETURNS TABLE (side text, tbl text, r text)
LANGUAGE sql AS $$
	(SELECT 'control only', * FROM state('ctl') EXCEPT ALL SELECT 'control only', * FROM state('public'))
	UNION ALL
	(SELECT 'planted only', * FROM state('public') EXCEPT ALL SELECT 'planted only', * FROM state('ctl'))
	UNION ALL
	(SELECT 'control only', 'events', * FROM events(run_a) EXCEPT ALL SELECT 'control only', 'events', * FROM events(run_b))
	UNION ALL
	(SELECT 'planted only', 'events', * FROM events(run_b) EXCEPT ALL SELECT 'planted only', 'events', * FROM events(run_a))
	ORDER BY 1, 2, 3
$$;

-- The control run, on ctl, before anything is planted.
SET release_expired_orders.app_schema = ctl;
CALL release_expired_orders(30, 100, NULL) \gset control_
RESET release_expired_orders.app_schema;

-- The attacker: may CREATE in public, and owns a schema of its own.
CREATE ROLE regress_reo_evil;
GRANT CREATE ON SCHEMA public TO regress_reo_evil;
CREATE SCHEMA evil AUTHORIZATION regress_reo_evil;
SET ROLE regress_reo_evil;
CREATE FUNCTION public.planted(what text) RETURNS void LANGUAGE sql
	SET search_path = pg_catalog AS $$ INSERT INTO public.planted_calls (what) VALUES (what) $$;
-- Functions the engine calls, with the engine's argument types; each one
-- records the call, then behaves like the original so that a call would not
-- show up as a failure.
CREATE FUNCTION public.concat(text, text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('concat(text,text)'); RETURN $1 || $2; END $$;
CREATE FUNCTION public.concat(text, uuid, text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('concat(text,uuid,text)'); RETURN $1 || $2 || $3; END $$;
CREATE FUNCTION public.concat(text, uuid) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('concat(text,uuid)'); RETURN $1 || $2; END $$;
CREATE FUNCTION public.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('gen_random_uuid()'); RETURN pg_catalog.gen_random_uuid(); END $$;
CREATE FUNCTION public.int4(bigint) RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('int4(bigint)'); RETURN $1::integer; END $$;
CREATE FUNCTION public.int4(numeric) RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('int4(numeric)'); RETURN $1::integer; END $$;
CREATE FUNCTION public.oid(bigint) RETURNS oid LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('oid(bigint)'); RETURN $1::oid; END $$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('now()'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION public.evil_sum(bigint, integer) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('sum(integer)'); RETURN coalesce($1, 0) + $2; END $$;
CREATE AGGREGATE public.sum(integer) (SFUNC = public.evil_sum, STYPE = bigint);
CREATE FUNCTION public.evil_count(bigint) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('count(*)'); RETURN $1 + 1; END $$;
CREATE AGGREGATE public.count(*) (SFUNC = public.evil_count, STYPE = bigint, INITCOND = '0');
-- Operators: the exact types the engine compares, so that they would win
-- over pg_catalog's (which needs a coercion, or comes later in the path).
-- An operator on (varchar, unknown) cannot be created: no SQL or PL/pgSQL
-- function may take an argument of type unknown.
CREATE FUNCTION public.evil_eq_vv(varchar, varchar) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('=(varchar,varchar)'); RETURN $1::text = $2::text; END $$;
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.evil_eq_vv);
CREATE FUNCTION public.evil_eq_vt(varchar, text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('=(varchar,text)'); RETURN $1::text = $2; END $$;
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = text, FUNCTION = public.evil_eq_vt);
CREATE FUNCTION public.evil_eq_tt(text, text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('=(text,text)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_eq_tt);
CREATE FUNCTION public.evil_eq_uu(uuid, uuid) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('=(uuid,uuid)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = public.evil_eq_uu);
CREATE FUNCTION public.evil_eq_oo(oid, oid) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('=(oid,oid)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.evil_eq_oo);
CREATE FUNCTION public.evil_eq_ii(integer, integer) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('=(int,int)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.evil_eq_ii);
CREATE FUNCTION public.evil_lt_ts(timestamp, timestamp) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('<(timestamp,timestamp)'); RETURN $1 OPERATOR(pg_catalog.<) $2; END $$;
CREATE OPERATOR public.< (LEFTARG = timestamp, RIGHTARG = timestamp, FUNCTION = public.evil_lt_ts);
CREATE FUNCTION public.evil_ge_ts(timestamp, timestamp) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('>=(timestamp,timestamp)'); RETURN $1 OPERATOR(pg_catalog.>=) $2; END $$;
CREATE OPERATOR public.>= (LEFTARG = timestamp, RIGHTARG = timestamp, FUNCTION = public.evil_ge_ts);
CREATE FUNCTION public.evil_gt_ts(timestamp, timestamp) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('>(timestamp,timestamp)'); RETURN $1 OPERATOR(pg_catalog.>) $2; END $$;
CREATE OPERATOR public.> (LEFTARG = timestamp, RIGHTARG = timestamp, FUNCTION = public.evil_gt_ts);
CREATE FUNCTION public.evil_gt_ii(integer, integer) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('>(int,int)'); RETURN $1 OPERATOR(pg_catalog.>) $2; END $$;
CREATE OPERATOR public.> (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.evil_gt_ii);
CREATE FUNCTION public.evil_le_ii(integer, integer) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('<=(int,int)'); RETURN $1 OPERATOR(pg_catalog.<=) $2; END $$;
CREATE OPERATOR public.<= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.evil_le_ii);
CREATE FUNCTION public.evil_plus(integer, bigint) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('+(int,bigint)'); RETURN $1 OPERATOR(pg_catalog.+) $2; END $$;
CREATE OPERATOR public.+ (LEFTARG = integer, RIGHTARG = bigint, FUNCTION = public.evil_plus);
CREATE FUNCTION public.evil_minus(integer, bigint) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('-(int,bigint)'); RETURN $1 OPERATOR(pg_catalog.-) $2; END $$;
CREATE OPERATOR public.- (LEFTARG = integer, RIGHTARG = bigint, FUNCTION = public.evil_minus);
CREATE FUNCTION public.evil_minus8(bigint, bigint) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('-(bigint,bigint)'); RETURN $1 OPERATOR(pg_catalog.-) $2; END $$;
CREATE OPERATOR public.- (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.evil_minus8);
CREATE FUNCTION public.evil_mod(bigint, bigint) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('%(bigint,bigint)'); RETURN $1 OPERATOR(pg_catalog.%) $2; END $$;
CREATE OPERATOR public.% (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.evil_mod);
CREATE FUNCTION public.evil_cat_tu(text, uuid) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('||(text,uuid)'); RETURN $1 || $2; END $$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = uuid, FUNCTION = public.evil_cat_tu);
CREATE FUNCTION public.evil_cat_tt(text, text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('||(text,text)'); RETURN $1 OPERATOR(pg_catalog.||) $2; END $$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_cat_tt);
-- A table named like a catalog view the engine reads.
CREATE TABLE public.pg_locks (locktype text, database oid, classid oid, objid oid, objsubid int2);
-- Look-alike application tables, first in the job role's search_path.
SET search_path = evil;
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
CREATE TABLE evil.pg_locks (LIKE public.pg_locks);
RESET search_path;
SELECT fill('evil', 9);
CREATE FUNCTION evil.planted_trigger() RETURNS trigger LANGUAGE plpgsql
	AS $$ BEGIN PERFORM public.planted(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ' written'); RETURN NULL; END $$;
CREATE TRIGGER planted AFTER INSERT OR UPDATE OR DELETE ON evil.notifications
	FOR EACH STATEMENT EXECUTE FUNCTION evil.planted_trigger();
CREATE TRIGGER planted AFTER INSERT OR UPDATE OR DELETE ON evil.orders
	FOR EACH STATEMENT EXECUTE FUNCTION evil.planted_trigger();
RESET ROLE;
SELECT count(*) AS planted_calls_while_planting FROM planted_calls;
TRUNCATE planted_calls;

-- A pg_temp function in the superuser's own session (never resolved
-- without an explicit pg_temp. qualification).
\c -
CREATE FUNCTION pg_temp.concat(text, text) RETURNS text LANGUAGE plpgsql
	AS $$ BEGIN PERFORM public.planted('pg_temp.concat(text,text)'); RETURN $1 OPERATOR(pg_catalog.||) $2; END $$;
CREATE FUNCTION pg_temp.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql
	AS $$ BEGIN PERFORM public.planted('pg_temp.gen_random_uuid()'); RETURN pg_catalog.gen_random_uuid(); END $$;

-- The planted objects are there for whoever looks them up by name.
SET search_path = public, pg_catalog;
SELECT concat('a'::text, 'b'::text) AS concat_is_planted, 'x'::varchar = 'x' AS eq_is_planted;
SELECT count(*) AS planted_calls_by_the_check FROM planted_calls;
TRUNCATE planted_calls;

-- Run 1: the superuser, search_path "public, pg_catalog", in a backend
-- that prepares its statements with everything planted.
CALL public.release_expired_orders(30, 100, NULL) \gset planted_
SELECT * FROM differences(((:'control_summary'::jsonb)->'summary'->>'runId')::bigint,
						  ((:'planted_summary'::jsonb)->'summary'->>'runId')::bigint);
SELECT * FROM planted_calls;
SELECT (:'planted_summary'::jsonb)->'summary'->>'successful' AS released,
	   (:'planted_summary'::jsonb)->'summary'->>'failed' AS failed;
RESET search_path;

-- Run 2: the job role, search_path "evil, public", on new orders (added to
-- both copies; the control runs first, before the job role's run).
CREATE ROLE regress_reo_job;
GRANT EXECUTE ON PROCEDURE public.release_expired_orders(integer, integer, jsonb) TO regress_reo_job;
GRANT USAGE ON SCHEMA release_expired_orders, evil TO regress_reo_job;
GRANT SELECT, INSERT, UPDATE ON release_expired_orders.runs TO regress_reo_job;
GRANT SELECT, INSERT ON release_expired_orders.order_events TO regress_reo_job;
GRANT EXECUTE ON FUNCTION release_expired_orders.purge_history(interval) TO regress_reo_job;
GRANT SELECT, UPDATE ON public.orders, public.products, public.lottery_rounds TO regress_reo_job;
GRANT INSERT ON public.notifications TO regress_reo_job;
SET ROLE regress_reo_evil;
GRANT ALL ON ALL TABLES IN SCHEMA evil TO regress_reo_job;
RESET ROLE;
DELETE FROM public.orders; DELETE FROM public.products; DELETE FROM public.lottery_rounds;
DELETE FROM ctl.orders; DELETE FROM ctl.products; DELETE FROM ctl.lottery_rounds;
DELETE FROM public.notifications; DELETE FROM ctl.notifications;
SELECT fill('public', 2), fill('ctl', 2);
SET release_expired_orders.app_schema = ctl;
CALL release_expired_orders(30, 100, NULL) \gset control_
RESET release_expired_orders.app_schema;
\c -
SET ROLE regress_reo_job;
SET search_path = evil, public;
CALL public.release_expired_orders(30, 100, NULL) \gset planted_
RESET search_path;
RESET ROLE;
SELECT * FROM differences(((:'control_summary'::jsonb)->'summary'->>'runId')::bigint,
						  ((:'planted_summary'::jsonb)->'summary'->>'runId')::bigint);
SELECT * FROM planted_calls;
SELECT (:'planted_summary'::jsonb)->'summary'->>'successful' AS released,
	   (:'planted_summary'::jsonb)->'summary'->>'failed' AS failed;
SELECT count(*) AS evil_notifications,
	   (SELECT count(*) FROM evil.orders WHERE status OPERATOR(pg_catalog.=) 'pending') AS evil_orders_pending
FROM evil.notifications;

-- Installing the extension with everything planted is safe too: no
-- object of the extension (routine, view, column default, constraint,
-- trigger, index) depends on a function or operator outside pg_catalog and
-- the extension (references to pg_catalog's are not recorded), and a run
-- afterwards calls nothing planted.
DROP EXTENSION release_expired_orders;
SET ROLE regress_reo_evil;
CREATE FUNCTION public.pg_backend_pid() RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog
	AS $$ BEGIN PERFORM public.planted('pg_backend_pid()'); RETURN pg_catalog.pg_backend_pid(); END $$;
RESET ROLE;
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
WITH members AS (
	SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'release_expired_orders'
	  AND d.deptype = 'e'
), parts AS (
	SELECT classid, objid FROM members
	UNION
	SELECT d.classid, d.objid FROM pg_depend d JOIN members m
	  ON d.refclassid = m.classid AND d.refobjid = m.objid AND d.deptype IN ('a', 'i')
)
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object,
	   pg_describe_object(d.refclassid, d.refobjid, 0) AS depends_on
FROM pg_depend d JOIN parts p ON d.classid = p.classid AND d.objid = p.objid
WHERE d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
  AND NOT EXISTS (SELECT FROM members m WHERE m.classid = d.refclassid AND m.objid = d.refobjid)
ORDER BY 1, 2;
SELECT fill('public', 3);
SET search_path = public, pg_catalog;
CALL public.release_expired_orders(30, 100, NULL) \gset planted_
RESET search_path;
SELECT (:'planted_summary'::jsonb)->'summary'->>'successful' AS released;
SELECT count(*) AS planted_calls_by_install_and_run FROM planted_calls;

-- The extension's other routines, called with the planted objects first in
-- the caller's path (this test's own queries qualify what they use).
SET search_path = public, pg_catalog;
SELECT pg_catalog.count(*) AS would_release FROM release_expired_orders.preview(30, 1000);
SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 AS health_checked FROM release_expired_orders.health();
SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 AS stats_read FROM release_expired_orders.stats;
SELECT r.order_number, r.status, r.stock_taken
FROM public.orders o, release_expired_orders.restore_order(o.id) r
WHERE o.order_number OPERATOR(pg_catalog.=) 'ORD-3-1';
SELECT release_expired_orders.purge_history('0 seconds') OPERATOR(pg_catalog.>=) 0 AS purged;
RESET search_path;
SELECT count(*) AS planted_calls_by_other_routines FROM planted_calls;
-- The extension's SQL-language routines pin their search_path (C routines
-- qualify every name in their statements), but restore_order(): like the
-- procedure, it keeps the caller's path for the application's writes (for
-- the application's triggers), qualifies every name in them, and pins the
-- path itself for its own statements; it called nothing planted above.
SELECT p.oid::regprocedure AS routine_without_pinned_search_path
FROM pg_depend d
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'release_expired_orders'
JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
JOIN pg_language l ON l.oid = p.prolang
WHERE d.deptype = 'e' AND l.lanname <> 'c'
  AND p.oid <> 'release_expired_orders.restore_order(uuid)'::regprocedure
  AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%');

-- What the caller's search_path does decide: which procedure an unqualified
-- CALL means.  A schema earlier in the path wins (so the scheduled command
-- is schema-qualified), and an overload created in the procedure's own
-- schema makes even the qualified name ambiguous: the job then fails every
-- time, never running the planted code.  Only roles that may CREATE in the
-- schema of the procedure can do this (README: keep CREATE on it for
-- trusted roles; PostgreSQL 15 grants PUBLIC no CREATE on public).
SET ROLE regress_reo_evil;
CREATE PROCEDURE evil.release_expired_orders(timeout_minutes integer DEFAULT NULL,
	batch_limit integer DEFAULT NULL, INOUT summary jsonb DEFAULT NULL)
	LANGUAGE plpgsql AS $$ BEGIN PERFORM public.planted('evil.release_expired_orders'); END $$;
CREATE PROCEDURE public.release_expired_orders()
	LANGUAGE plpgsql AS $$ BEGIN PERFORM public.planted('public.release_expired_orders()'); END $$;
RESET ROLE;
SET search_path = evil, public;
CALL release_expired_orders();
CALL release_expired_orders(30);
RESET search_path;
CALL release_expired_orders();
CALL public.release_expired_orders();
SELECT * FROM planted_calls;

-- Clean up.
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications, planted_calls;
DROP TABLE ctl.orders, ctl.products, ctl.lottery_rounds, ctl.notifications;
DROP SCHEMA ctl;
DROP FUNCTION fill(text, int), state(text), events(bigint), differences(bigint, bigint);
DROP OWNED BY regress_reo_evil, regress_reo_job;
DROP ROLE regress_reo_evil, regress_reo_job;
