--
-- A run, a look or a scrape that finds nothing reads orders only through
-- the recommended index, whatever the statistics say.  The data is shaped
-- like the application's: a paid order keeps status 'pending' (only its
-- payment status moves), so the three statuses and created_at are far from
-- independent, and statistics taken before the payments believe every
-- order is still pending.  First the setup is shown to turn the former
-- probe (EXISTS) into a sequential scan; then the job's statements are
-- counted in pg_stat_xact_user_tables, inside one transaction each.
--
\set SHOW_CONTEXT never
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
\set app_ts timestamptz
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
ALTER TABLE orders SET (autovacuum_enabled = off);
INSERT INTO products (id, stock) VALUES ('a0000000-0000-0000-0000-000000000001', 0);
-- 40,000 orders, one a minute until now, 400 types, all pending at first
-- (as placed).
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
SELECT gen_random_uuid(), 'O' || i, 'd0000000-0000-0000-0000-000000000001',
	   'a0000000-0000-0000-0000-000000000001', 't' || (i % 400), 1, 10,
	   now() - (40000 - i) * interval '1 minute'
FROM generate_series(1, 40000) i;
CREATE INDEX orders_release_candidates_idx ON orders (created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
-- Stale statistics: taken while every order was pending ...
ANALYZE orders;
-- ... then customers paid all but those of the last 110 minutes.
UPDATE orders SET payment_status = 'paid' WHERE created_at < now() - interval '110 minutes';

-- How this transaction read orders so far.
CREATE FUNCTION reads(OUT seq_scans bigint, OUT index_scans boolean) LANGUAGE sql AS $$
	SELECT seq_scan, idx_scan > 0 FROM pg_stat_xact_user_tables WHERE relid = 'orders'::regclass
$$;
-- Whether the plan of a statement scans orders sequentially.
CREATE FUNCTION seq_scan_plan(query text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	line text;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN ' || query LOOP
		IF line LIKE '%Seq Scan on orders%' THEN
			RETURN true;
		END IF;
	END LOOP;
	RETURN false;
END $$;

-- The setup can make it happen: with these statistics, the former probe is
-- a sequential scan of orders.
SELECT seq_scan_plan($$SELECT EXISTS (SELECT FROM orders o WHERE o.status = 'pending'
	AND o.payment_status = 'pending' AND o.fulfillment_status = 'pending'
	AND o.created_at < now() - interval '1440 minutes')$$) AS former_probe_seq_scan;

-- Stale statistics, nothing due (the timeout 1440 minutes, for the CALL and
-- as the setting that oldest_deadline(), preview() and the metrics use): in
-- a fresh session each reads orders by index only.
\c
SET release_expired_orders.timeout_minutes = 1440;
BEGIN;
CALL release_expired_orders(1440, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, * FROM reads();
ROLLBACK;
BEGIN;
SELECT release_expired_orders.oldest_deadline() > now() AS not_yet_due, * FROM reads();
ROLLBACK;
BEGIN;
SELECT count(*) AS due, (SELECT row(r.*) FROM reads() r) AS reads FROM release_expired_orders.preview();
ROLLBACK;
BEGIN;
SELECT value AS overdue, (SELECT row(r.*) FROM reads() r) AS reads
  FROM release_expired_orders.metrics WHERE metric = 'oldest_overdue_seconds';
ROLLBACK;

-- Fresh statistics, likewise.
VACUUM ANALYZE orders;
\c
SET release_expired_orders.timeout_minutes = 1440;
BEGIN;
CALL release_expired_orders(1440, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, * FROM reads();
ROLLBACK;
BEGIN;
SELECT release_expired_orders.oldest_deadline() > now() AS not_yet_due, * FROM reads();
ROLLBACK;

-- The same orders due (timeout 60 minutes): still by index, and released.
\c
SET release_expired_orders.timeout_minutes = 1440;
BEGIN;
CALL release_expired_orders(60, 1000) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, * FROM reads();
ROLLBACK;

-- With payment windows, the index that leads with the type: one probe per
-- type, with stale statistics (taken before the payments) and fresh ones.
-- The 15-minute window of t300 makes its order of 100 minutes ago due; the
-- 3-day window of t0 keeps its orders waiting.
DROP INDEX orders_release_candidates_idx;
UPDATE orders SET payment_status = 'pending';
CREATE INDEX orders_release_candidates_idx ON orders (type, created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
ANALYZE orders;
UPDATE orders SET payment_status = 'paid' WHERE created_at < now() - interval '110 minutes';
INSERT INTO release_expired_orders.payment_windows VALUES ('t0', NULL, 4320), ('t300', NULL, 15);
SELECT seq_scan_plan($$SELECT EXISTS (SELECT FROM orders o WHERE o.status = 'pending'
	AND o.payment_status = 'pending' AND o.fulfillment_status = 'pending'
	AND o.created_at < now() - interval '1440 minutes')$$) AS former_probe_seq_scan;
\c
SET release_expired_orders.timeout_minutes = 1440;
BEGIN;
CALL release_expired_orders(1440, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, * FROM reads();
ROLLBACK;
BEGIN;
SELECT release_expired_orders.oldest_deadline() > now() AS not_yet_due, * FROM reads();
ROLLBACK;
BEGIN;
SELECT count(*) AS due, (SELECT row(r.*) FROM reads() r) AS reads FROM release_expired_orders.preview();
ROLLBACK;
VACUUM ANALYZE orders;
\c
SET release_expired_orders.timeout_minutes = 1440;
BEGIN;
CALL release_expired_orders(1440, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, * FROM reads();
ROLLBACK;
BEGIN;
SELECT count(*) AS due, (SELECT row(r.*) FROM reads() r) AS reads FROM release_expired_orders.preview();
ROLLBACK;

-- A window per payment method: the rest of type t1 (1 day) is scanned
-- within its type, past 3,000 bank transfers that never expire.  With the
-- method in the index (INCLUDE, as health() prints it then) the scan steps
-- over them in the index alone; without it, it reads each of them from the
-- table (the setup can make it happen).
DELETE FROM release_expired_orders.payment_windows;
INSERT INTO release_expired_orders.payment_windows VALUES ('t1', 'bank_transfer', NULL), ('t1', NULL, 1440);
INSERT INTO orders (id, order_number, user_id, product_id, type, payment_method, quantity, total_amount, created_at)
SELECT gen_random_uuid(), 'B' || i, 'd0000000-0000-0000-0000-000000000001',
	   'a0000000-0000-0000-0000-000000000001', 't1', 'bank_transfer', 1, 10,
	   now() - interval '30 days' + i * interval '10 minutes'
FROM generate_series(1, 3000) i;
INSERT INTO orders (id, order_number, user_id, product_id, type, payment_method, quantity, total_amount, created_at)
VALUES (gen_random_uuid(), 'CARD', 'd0000000-0000-0000-0000-000000000001',
		'a0000000-0000-0000-0000-000000000001', 't1', 'card', 1, 10, now() - interval '10 minutes');
VACUUM ANALYZE orders;
CREATE FUNCTION heap_fetches() RETURNS bigint LANGUAGE sql AS $$
	SELECT idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relid = 'orders'::regclass
$$;
\c
SET release_expired_orders.timeout_minutes = 1440;
BEGIN;
SELECT heap_fetches() AS before \gset
SELECT release_expired_orders.oldest_deadline() > now() AS not_yet_due,
	   heap_fetches() - :before >= 3000 AS read_each_bank_transfer;
ROLLBACK;
DROP INDEX orders_release_candidates_idx;
CREATE INDEX orders_release_candidates_idx ON orders (type, created_at, id) INCLUDE (payment_method)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
VACUUM ANALYZE orders;
\c
SET release_expired_orders.timeout_minutes = 1440;
BEGIN;
SELECT heap_fetches() AS before \gset
SELECT release_expired_orders.oldest_deadline() > now() AS not_yet_due,
	   heap_fetches() - :before < 100 AS few_heap_fetches;
ROLLBACK;
BEGIN;
SELECT heap_fetches() AS before \gset
CALL release_expired_orders(1440, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'totalFound' AS found, heap_fetches() - :before < 100 AS few_heap_fetches;
ROLLBACK;
SELECT "check", status FROM release_expired_orders.health() WHERE "check" = 'candidate_index';

-- The next deadline costs one index probe per kind: a window per method on
-- every pending type makes two kinds of each (the method, and the rest of
-- the type), each probed once, after one probe per type to find the types
-- (and two for orders without a type).  The probe of a kind also gives its
-- deadline past held-back orders when none is held back.
INSERT INTO release_expired_orders.payment_windows
SELECT DISTINCT type, 'bank_transfer', 4320 FROM orders
 WHERE type <> 't1' AND status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
CREATE FUNCTION index_probes() RETURNS bigint LANGUAGE sql AS $$
	SELECT idx_scan FROM pg_stat_xact_user_tables WHERE relid = 'orders'::regclass
$$;
\c
SET release_expired_orders.timeout_minutes = 1440;
BEGIN;
SELECT count(DISTINCT type) AS pending_types FROM orders
 WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending' \gset
SELECT index_probes() AS before \gset
SELECT release_expired_orders.oldest_deadline() > now() AS not_yet_due,
	   :pending_types > 100 AS many_types,
	   index_probes() - :before <= 3 * :pending_types + 3 AS one_probe_per_kind;
ROLLBACK;
DROP FUNCTION index_probes();

DROP FUNCTION heap_fetches();
DROP FUNCTION reads(), seq_scan_plan(text);
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
