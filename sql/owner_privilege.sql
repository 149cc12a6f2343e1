-- The job never runs the application's code with more privilege than the
-- owner of the application's tables has: a superuser (or any role) runs
-- the job, and the application's triggers run as the owner of orders, in a
-- security-restricted operation, as VACUUM runs index functions.  A
-- trigger that tries to make its owner a superuser fails its own order.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
CREATE ROLE regress_reo_app;
GRANT CREATE ON SCHEMA public TO regress_reo_app;
ALTER TABLE orders OWNER TO regress_reo_app;
ALTER TABLE products OWNER TO regress_reo_app;
ALTER TABLE lottery_rounds OWNER TO regress_reo_app;
ALTER TABLE notifications OWNER TO regress_reo_app;
SET release_expired_orders.retry_backoff = 0;

CREATE TABLE seen (what text, current_role_name name, restricted boolean);
ALTER TABLE seen OWNER TO regress_reo_app;
SET ROLE regress_reo_app;
-- The owner's trigger: it notes who it runs as, and tries to escalate on
-- one order.
CREATE FUNCTION app_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO seen VALUES (TG_TABLE_NAME || ' ' || TG_WHEN, current_user, NULL);
	IF TG_TABLE_NAME = 'orders' THEN
		IF NEW.order_number = 'ORD-2' THEN
			EXECUTE 'ALTER ROLE regress_reo_app SUPERUSER';
		END IF;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER app_rules BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION app_rules();
CREATE TRIGGER app_rules AFTER UPDATE ON products FOR EACH ROW EXECUTE FUNCTION app_rules();
CREATE TRIGGER app_rules BEFORE INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION app_rules();
RESET ROLE;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, 'ORD-' || n,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   'direct_buy', 1, 1, (now() AT TIME ZONE 'UTC') - (100 - n) * interval '1 minute'
FROM generate_series(1, 3) n;

-- A superuser runs the job.
SELECT current_user = 'regress_reo_app' AS job_runs_as_owner;
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb -> 'summary' ->> 'successful' AS successful,
	   :'summary'::jsonb -> 'summary' ->> 'failed' AS failed;
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'regress_reo_app';
SELECT order_number, status FROM orders ORDER BY 1;
SELECT order_number, outcome, sqlstate FROM release_expired_orders.order_events
WHERE outcome <> 'released' ORDER BY 1;
-- Every piece of the application's code ran as the owner.
SELECT what, current_role_name, count(*) FROM seen GROUP BY 1, 2 ORDER BY 1, 2;
-- The session's own role is back after the run.
SELECT current_user <> 'regress_reo_app' AS back_to_own_role;

-- A setting the application's code changes is undone after the job's
-- statement, as VACUUM undoes what index functions set.  The same trigger,
-- fired by the session's own UPDATE, leaves it set.
SET ROLE regress_reo_app;
CREATE FUNCTION set_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('reo_test.mark', 'set by a trigger', false);
	RETURN NEW;
END $$;
CREATE TRIGGER set_mark BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION set_mark();
RESET ROLE;
UPDATE orders SET notes = notes WHERE order_number = 'ORD-1';
SELECT coalesce(nullif(current_setting('reo_test.mark', true), ''), 'unset') AS after_own_update;
SELECT set_config('reo_test.mark', '', false) IS NOT NULL AS reset;
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
VALUES ('00000000-0000-0000-0000-000000000009', 'ORD-9', '00000000-0000-0000-0000-0000000000c1',
		'00000000-0000-0000-0000-0000000000a1', 'direct_buy', 1, 1,
		(now() AT TIME ZONE 'UTC') - interval '2 hours');
CALL release_expired_orders(30, 100) \gset
SELECT status FROM orders WHERE order_number = 'ORD-9';
SELECT coalesce(nullif(current_setting('reo_test.mark', true), ''), 'unset') AS after_job;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications, seen;
DROP FUNCTION app_rules(), set_mark();
REVOKE CREATE ON SCHEMA public FROM regress_reo_app;
DROP ROLE regress_reo_app;
