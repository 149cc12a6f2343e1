-- Security and monitoring (README), row-level security: with policies that hide rows from the
-- role running the job (not the owner, no BYPASSRLS), the job must not
-- silently do less than asked: it refuses to run (42501, naming the table
-- and the role) before writing anything, since hidden orders would stay
-- pending uncounted and a hidden product or round would lose the stock or
-- shares of the orders released on it.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

INSERT INTO products (id, stock) VALUES
	('00000000-0000-0000-0000-0000000000a1', 10),
	('00000000-0000-0000-0000-0000000000a2', 10);
INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 100, 10, 'active');
-- Four expired orders of two users; ORD-4 is on product a2.
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity,
					total_amount, created_at)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'ORD-' || n,
	   ('00000000-0000-0000-0000-0000000000c' || (n % 2))::uuid,
	   CASE WHEN n = 4 THEN '00000000-0000-0000-0000-0000000000a2'
			ELSE '00000000-0000-0000-0000-0000000000a1' END::uuid,
	   CASE WHEN n = 4 THEN NULL ELSE '00000000-0000-0000-0000-0000000000b1' END::uuid,
	   'direct_buy', 1, 10.00, (now() AT TIME ZONE 'UTC') - (60 + n) * interval '1 minute'
FROM generate_series(1, 4) n;

CREATE ROLE regress_reo_job;
GRANT EXECUTE ON PROCEDURE public.release_expired_orders(integer, integer, jsonb) TO regress_reo_job;
GRANT USAGE ON SCHEMA release_expired_orders TO regress_reo_job;
GRANT SELECT, INSERT, UPDATE ON release_expired_orders.runs TO regress_reo_job;
GRANT SELECT, INSERT ON release_expired_orders.order_events TO regress_reo_job;
GRANT EXECUTE ON FUNCTION release_expired_orders.purge_history(interval) TO regress_reo_job;
GRANT SELECT, UPDATE ON orders, products, lottery_rounds TO regress_reo_job;
GRANT INSERT ON notifications TO regress_reo_job;

CREATE VIEW app_state AS
SELECT (SELECT string_agg(order_number || ':' || status, ' ' ORDER BY order_number) FROM orders) AS orders,
	   (SELECT string_agg(stock::text, ',' ORDER BY id) FROM products) AS stock,
	   (SELECT sum(sold_shares) FROM lottery_rounds) AS sold_shares;

-- Run the job as a role in a transaction that is rolled back; report what
-- it said and what it did (or its error) before the rollback.
CREATE FUNCTION job_as(role name, OUT result text, OUT orders text, OUT stock text,
					   OUT sold_shares bigint, OUT anomalies text)
LANGUAGE plpgsql AS $$
DECLARE
	summary jsonb;
BEGIN
	BEGIN
		EXECUTE format('SET LOCAL ROLE %I', role);
		CALL public.release_expired_orders(30, 100, summary);
		RESET ROLE;
		result := format('found %s, released %s, failed %s: %s', summary->'summary'->>'totalFound',
						 summary->'summary'->>'successful', summary->'summary'->>'failed',
						 summary->>'message');
		SELECT a.orders, a.stock, a.sold_shares INTO orders, stock, sold_shares FROM app_state a;
		SELECT string_agg(e.order_number || ' ' || e.outcome, ', ' ORDER BY e.order_number, e.outcome)
		INTO anomalies FROM release_expired_orders.order_events e WHERE e.outcome <> 'released';
		RAISE EXCEPTION USING ERRCODE = 'RO001';
	EXCEPTION
		WHEN SQLSTATE 'RO001' THEN NULL;
		WHEN OTHERS THEN
			result := format('ERROR %s: %s', SQLSTATE, SQLERRM);
			SELECT a.orders, a.stock, a.sold_shares INTO orders, stock, sold_shares FROM app_state a;
	END;
	RESET ROLE;
END $$;

-- 1. Policies on orders show the job role only user c1's orders.
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_sees_c1 ON orders TO regress_reo_job
	USING (user_id = '00000000-0000-0000-0000-0000000000c1');
-- Without the refusal ORD-1 and ORD-3 (user c1) would be released and
-- ORD-2 and ORD-4 would stay pending, counted nowhere.
SELECT * FROM job_as('regress_reo_job');

-- 2. A policy for SELECT only: the candidates are locked FOR UPDATE, which
-- needs an UPDATE policy too, so without the refusal the job would see
-- nothing at all and say "no expired orders to release".
DROP POLICY job_sees_c1 ON orders;
CREATE POLICY job_reads_all ON orders FOR SELECT TO regress_reo_job USING (true);
SELECT * FROM job_as('regress_reo_job');
DROP POLICY job_reads_all ON orders;
ALTER TABLE orders DISABLE ROW LEVEL SECURITY;

-- 3. Policies on products hide product a2: without the refusal ORD-4
-- would be released without its stock, audited as product_not_found
-- although the product exists.
ALTER TABLE products ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_sees_a1 ON products TO regress_reo_job
	USING (id = '00000000-0000-0000-0000-0000000000a1');
SELECT * FROM job_as('regress_reo_job');
DROP POLICY job_sees_a1 ON products;
ALTER TABLE products DISABLE ROW LEVEL SECURITY;

-- 4. The owner is not subject to its own policies unless they are forced;
-- a forced policy hides rows from the owner (here the superuser, which
-- bypasses row-level security anyway: the job runs).
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders FORCE ROW LEVEL SECURITY;
CREATE POLICY nobody ON orders USING (false);
SELECT * FROM job_as(current_user);
DROP POLICY nobody ON orders;
ALTER TABLE orders NO FORCE ROW LEVEL SECURITY;
ALTER TABLE orders DISABLE ROW LEVEL SECURITY;

-- 5. Row-level security on notifications, with no policy for the job's
-- role, hides nothing the job needs: the notifications are written as the
-- owner of orders, so the job runs, and health()'s rule finds no problem.
ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
SELECT * FROM job_as('regress_reo_job');
SELECT release_expired_orders.row_security_problem('regress_reo_job') AS health_problem;
ALTER TABLE notifications DISABLE ROW LEVEL SECURITY;

-- 6. With BYPASSRLS (Supabase's service_role has it) the job runs and
-- every order is released.
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
ALTER ROLE regress_reo_job BYPASSRLS;
SELECT * FROM job_as('regress_reo_job');

-- Clean up.
DROP FUNCTION job_as(name);
DROP VIEW app_state;
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP OWNED BY regress_reo_job;
DROP ROLE regress_reo_job;
