-- Row-level security forced on the owner's own tables (a multi-tenant
-- application whose policies read a setting the job never sets) hides no
-- row from the statements that release: they run as the owner of orders
-- without the forced policies, as PostgreSQL's foreign-key checks do.  The
-- stock comes back, and no order is taken for vetoed.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
CREATE ROLE regress_reo_tenant_owner;
ALTER TABLE orders OWNER TO regress_reo_tenant_owner;
ALTER TABLE products OWNER TO regress_reo_tenant_owner;
ALTER TABLE lottery_rounds OWNER TO regress_reo_tenant_owner;
ALTER TABLE notifications OWNER TO regress_reo_tenant_owner;
ALTER TABLE orders ADD COLUMN tenant text DEFAULT 'shop1';
ALTER TABLE products ADD COLUMN tenant text DEFAULT 'shop1';
ALTER TABLE orders ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE products ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_only ON orders USING (tenant = current_setting('app.tenant', true));
CREATE POLICY tenant_only ON products USING (tenant = current_setting('app.tenant', true));

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, 'ORD-' || n,
	   '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1',
	   'direct_buy', 3, 1, (now() AT TIME ZONE 'UTC') - (100 - n) * interval '1 minute'
FROM generate_series(1, 2) n;

-- A superuser runs the job (pg_cron's default).
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb ->> 'message' AS message;
SELECT order_number, status FROM orders ORDER BY 1;
SELECT stock FROM products;
SELECT order_number, outcome, stock_delta FROM release_expired_orders.order_events ORDER BY 1;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
DROP ROLE regress_reo_tenant_owner;
