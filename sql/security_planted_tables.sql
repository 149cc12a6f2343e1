-- Security (README), planted tables: the notifications table is optional, so an
-- application without one leaves its name free in the application's
-- schema.  A role that can CREATE there creates it, with a trigger and a
-- column default of its own.  When the job then runs (as pg_cron runs it,
-- as the superuser that scheduled it), it refuses a table that the owner
-- of orders (or a superuser) does not own, before writing anything: the
-- planted code never runs with the job's privileges.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
DROP TABLE notifications;
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
CREATE TABLE planted_calls (what text, called_by name, superuser boolean);
GRANT INSERT ON planted_calls TO PUBLIC;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'ORD-1', '00000000-0000-0000-0000-0000000000c1',
		'00000000-0000-0000-0000-0000000000a1', 'direct_buy', 2, 10.00,
		(now() AT TIME ZONE 'UTC') - interval '1 hour');

CREATE ROLE regress_reo_evil;
GRANT CREATE ON SCHEMA public TO regress_reo_evil;
SET ROLE regress_reo_evil;
CREATE FUNCTION public.planted_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.planted_calls
	VALUES (TG_NAME, current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user));
	RETURN NEW;
END $$;
CREATE FUNCTION public.planted_default() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.planted_calls
	VALUES ('column default', current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user));
	RETURN 'web';
END $$;
CREATE TABLE public.notifications (
	id uuid PRIMARY KEY,
	user_id uuid NOT NULL,
	channel text DEFAULT public.planted_default(),
	type varchar(50) NOT NULL,
	content text NOT NULL,
	status varchar(20) DEFAULT 'pending',
	sent_at timestamp(3),
	created_at timestamp(3)
);
CREATE TRIGGER planted BEFORE INSERT ON public.notifications
	FOR EACH ROW EXECUTE FUNCTION public.planted_trigger();
RESET ROLE;

DO $$
DECLARE
	summary jsonb;
BEGIN
	CALL public.release_expired_orders(30, 100, summary);
	RAISE NOTICE 'success %: %', summary->>'success', summary->>'message';
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE 'ERROR %: %', SQLSTATE, SQLERRM;
END $$;
SELECT order_number, status FROM orders;
-- The call failed with 42501 naming public.notifications; the order stays
-- pending, nothing planted ran, and nothing was written into the table.
SELECT what, called_by, superuser FROM planted_calls ORDER BY what;
SELECT type, content FROM public.notifications ORDER BY content;

-- Clean up.
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, planted_calls;
DROP OWNED BY regress_reo_evil;
DROP ROLE regress_reo_evil;
