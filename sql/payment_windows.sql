--
-- Payment windows (README, Payment windows): a window per order type and payment method,
-- the most specific row winning, NULL minutes meaning never; orders no row
-- matches keep timeout_minutes.  Deadlines are created_at plus the window,
-- candidates come oldest deadline first, preview() shows both, and the
-- summary and run row say which windows applied.
--
\set SHOW_CONTEXT never
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
SET client_min_messages = warning;
CREATE SCHEMA windows_app;
SET search_path = windows_app, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
RESET client_min_messages;
SET release_expired_orders.app_schema = windows_app;

-- Ages are whole minutes plus 30 s.
CREATE FUNCTION pg_temp.ago(minutes integer) RETURNS timestamp
LANGUAGE sql RETURN (now() AT TIME ZONE 'UTC') - make_interval(mins => minutes, secs => 30);
CREATE OR REPLACE FUNCTION pg_temp.place(num text, kind text, method text, minutes integer)
RETURNS void LANGUAGE sql AS $$
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount,
						payment_method, created_at)
	VALUES (gen_random_uuid(), num, 'd0000000-0000-0000-0000-000000000001',
			'a0000000-0000-0000-0000-000000000001', kind, 1, 10, method, pg_temp.ago(minutes))
$$;
INSERT INTO products (id, stock) VALUES ('a0000000-0000-0000-0000-000000000001', 0);

-- Bad rows are refused by named constraints, and nothing is changed.
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 0);
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 525601);
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, -15);
INSERT INTO release_expired_orders.payment_windows VALUES ('', NULL, 15);
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', '', 15);
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 15), ('recharge', NULL, 20);
SELECT count(*) AS rows_after_refusals FROM release_expired_orders.payment_windows;
-- The bounds themselves are accepted.
INSERT INTO release_expired_orders.payment_windows VALUES ('a', NULL, 1), ('b', NULL, 525600);
DELETE FROM release_expired_orders.payment_windows;

-- No rows: every order has timeout_minutes, as in 1.0; the summary has no
-- "windows" and preview shows the one window.
SELECT pg_temp.place('L45', 'lottery_win', NULL, 45);
SELECT p.order_number, window_minutes,
	   deadline = (o.created_at AT TIME ZONE 'UTC') + interval '30 minutes' AS deadline_ok
  FROM release_expired_orders.preview() p JOIN orders o ON o.id = p.order_id;
DELETE FROM orders;

-- The application's promise: a recharge is cancelled after 15 minutes, a
-- direct purchase after 60, a resale never; everything else keeps 30.
INSERT INTO release_expired_orders.payment_windows VALUES
	('recharge', NULL, 15), ('direct_buy', NULL, 60), ('resale', NULL, NULL);
SELECT pg_temp.place('R20', 'recharge', NULL, 20),		-- due 5 min ago
	   pg_temp.place('R10', 'recharge', NULL, 10),		-- due in 5 min
	   pg_temp.place('D71', 'direct_buy', NULL, 71),	-- due 11 min ago
	   pg_temp.place('D40', 'direct_buy', NULL, 40),	-- the default would release it
	   pg_temp.place('S999', 'resale', NULL, 999),		-- never
	   pg_temp.place('L45', 'lottery_win', NULL, 45),	-- no row: 30, due 15 min ago
	   pg_temp.place('L20', 'lottery_win', NULL, 20);	-- no row: due in 10 min

-- Oldest deadline first, each with its window; deadline = created_at + window.
SELECT p.order_number, window_minutes,
	   deadline = (o.created_at AT TIME ZONE 'UTC') + make_interval(mins => window_minutes)
		   AS deadline_ok,
	   floor(extract(epoch FROM now() - deadline) / 60) AS overdue_minutes
  FROM release_expired_orders.preview() p JOIN orders o ON o.id = p.order_id;
-- The argument is the window of orders no row matches (lottery_win).
SELECT order_number, window_minutes FROM release_expired_orders.preview(10);
-- batch_limit takes the oldest deadlines.
SELECT order_number FROM release_expired_orders.preview(NULL, 2);

-- The CALL releases exactly what preview shows, and says which windows applied.
CREATE TEMP TABLE previewed AS SELECT order_id FROM release_expired_orders.preview();
CALL release_expired_orders() \gset
SELECT :'summary'::jsonb #> '{summary,windows}' AS summary_windows,
	   :'summary'::jsonb #>> '{summary,successful}' AS released;
SELECT r.windows = (:'summary'::jsonb #> '{summary,windows}') AS run_row_windows,
	   r.scheduler, r.timeout_minutes
  FROM release_expired_orders.runs r
 WHERE r.id = (:'summary'::jsonb #>> '{summary,runId}')::bigint;
SELECT array_agg(o.order_number ORDER BY o.order_number) AS released,
	   (SELECT array_agg(o2.order_number ORDER BY o2.order_number) FROM previewed p
		  JOIN orders o2 ON o2.id = p.order_id) AS previewed
  FROM orders o WHERE o.status = 'expired';
SELECT order_number, status FROM orders WHERE status = 'pending' ORDER BY order_number;

-- An order without a type (where the column allows it) has the default window.
DELETE FROM orders;
ALTER TABLE orders ALTER COLUMN type DROP NOT NULL;
SELECT pg_temp.place('N40', NULL, NULL, 40), pg_temp.place('N20', NULL, NULL, 20);
SELECT order_number, window_minutes FROM release_expired_orders.preview();
DELETE FROM orders;
ALTER TABLE orders ALTER COLUMN type SET NOT NULL;

-- A payment method's window beats its type's; the rest of the type keeps
-- the type's window; a method's NULL means never.
DELETE FROM orders;
INSERT INTO release_expired_orders.payment_windows VALUES
	('recharge', 'card', 5), ('direct_buy', 'bank_transfer', 1440),
	('lottery_win', 'voucher', NULL);
SELECT pg_temp.place('RC7', 'recharge', 'card', 7),				-- card: 5, due
	   pg_temp.place('RB7', 'recharge', 'bank_transfer', 7),	-- type: 15, not due
	   pg_temp.place('RN20', 'recharge', NULL, 20),				-- type: 15, due
	   pg_temp.place('DB70', 'direct_buy', 'bank_transfer', 70),	-- a day: not due
	   pg_temp.place('DC70', 'direct_buy', 'card', 70),			-- type: 60, due
	   pg_temp.place('LV45', 'lottery_win', 'voucher', 45),		-- never
	   pg_temp.place('LC45', 'lottery_win', 'card', 45);		-- no type row: 30, due
SELECT order_number, window_minutes FROM release_expired_orders.preview();
CALL release_expired_orders() \gset
SELECT array_agg(order_number ORDER BY order_number) AS released
  FROM orders WHERE status = 'expired';
SELECT jsonb_array_length(:'summary'::jsonb #> '{summary,windows}') AS windows_in_summary;

-- The scan stays index-driven: with the index health() recommends when
-- windows are in force, a look that finds one due order reads a handful of
-- rows, however many orders wait inside their window or never expire.
DELETE FROM orders;
INSERT INTO orders (id, order_number, user_id, type, total_amount, payment_method, created_at)
SELECT gen_random_uuid(), kind || i, 'd0000000-0000-0000-0000-000000000001', kind, 10,
	   CASE WHEN i % 2 = 0 THEN 'card' END,
	   CASE kind WHEN 'recharge' THEN pg_temp.ago(1) ELSE pg_temp.ago(999) END
  FROM generate_series(1, 3000) i, unnest('{recharge,resale}'::text[]) kind;
SELECT pg_temp.place('DUE', 'recharge', NULL, 20);
ANALYZE orders;
CREATE FUNCTION pg_temp.rows_read() RETURNS bigint LANGUAGE sql
RETURN pg_stat_get_xact_tuples_fetched('orders'::regclass)
	 + pg_stat_get_xact_tuples_returned('orders'::regclass);
-- health() asks for that index, and takes it; with windows per payment
-- method, one without the method is not enough (it names the one to make
-- and the one to drop).
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'candidate_index';
CREATE INDEX orders_window_candidates_idx ON orders (type, created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'candidate_index';
DROP INDEX orders_window_candidates_idx;
CREATE INDEX orders_window_candidates_idx ON orders (type, created_at, id) INCLUDE (payment_method)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
SELECT status, detail FROM release_expired_orders.health() WHERE "check" = 'candidate_index';
BEGIN;
SELECT pg_temp.rows_read() AS before \gset
SELECT order_number FROM release_expired_orders.preview();
SELECT pg_temp.rows_read() - :before < 50 AS reads_a_handful;
COMMIT;
DROP INDEX orders_window_candidates_idx;
BEGIN;
SELECT pg_temp.rows_read() AS before \gset
SELECT order_number FROM release_expired_orders.preview();
SELECT pg_temp.rows_read() - :before < 50 AS reads_a_handful_without_the_index;
COMMIT;

-- Windows match types and methods exactly.  Under a nondeterministic
-- collation on orders.type, 'Recharge' and 'recharge' would be one type:
-- an order of one released under the other's window, and found twice.
-- The job, preview() and oldest_deadline() refuse such a column while
-- windows are in force, and change nothing.
DELETE FROM orders;
CREATE TEMP TABLE saved_windows AS SELECT * FROM release_expired_orders.payment_windows;
DELETE FROM release_expired_orders.payment_windows;
CREATE COLLATION windows_app.case_insensitive (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
ALTER TABLE orders ALTER COLUMN type TYPE varchar(20) COLLATE windows_app.case_insensitive;
INSERT INTO release_expired_orders.payment_windows VALUES ('Recharge', NULL, 10), ('recharge', NULL, 60);
SELECT pg_temp.place('R20', 'recharge', NULL, 20);
CALL release_expired_orders();
\echo :LAST_ERROR_SQLSTATE
SELECT order_number FROM release_expired_orders.preview();
SELECT release_expired_orders.oldest_deadline();
SELECT count(*) AS released FROM orders WHERE status = 'expired';
-- Without windows the collation does not matter.
DELETE FROM release_expired_orders.payment_windows;
CALL release_expired_orders(30, 100) \gset
SELECT :'summary'::jsonb #>> '{summary,outcome}' AS outcome;
ALTER TABLE orders ALTER COLUMN type TYPE varchar(20) COLLATE "default";
DROP COLLATION windows_app.case_insensitive;
INSERT INTO release_expired_orders.payment_windows SELECT * FROM saved_windows;
DROP TABLE saved_windows;

-- Without a payment_method column, a method's row cannot apply: it is
-- ignored, with a warning, in the run row's warnings too.
DELETE FROM orders;
ALTER TABLE orders DROP COLUMN payment_method;
CREATE OR REPLACE FUNCTION pg_temp.place(num text, kind text, method text, minutes integer)
RETURNS void LANGUAGE sql AS $$
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	VALUES (gen_random_uuid(), num, 'd0000000-0000-0000-0000-000000000001',
			'a0000000-0000-0000-0000-000000000001', kind, 1, 10, pg_temp.ago(minutes))
$$;
SELECT pg_temp.place('RN20', 'recharge', NULL, 20), pg_temp.place('RC7', 'recharge', NULL, 7);
SELECT order_number, window_minutes FROM release_expired_orders.preview();
CALL release_expired_orders() \gset
SELECT warnings FROM release_expired_orders.runs
 WHERE id = (:'summary'::jsonb #>> '{summary,runId}')::bigint;
SELECT :'summary'::jsonb #> '{summary,windows}' AS summary_windows;

-- Without a type column no window applies: all are ignored, with a warning.
DELETE FROM orders;
ALTER TABLE orders DROP COLUMN type;
INSERT INTO orders (id, order_number, user_id, total_amount, created_at) VALUES
	(gen_random_uuid(), 'N20', 'd0000000-0000-0000-0000-000000000001', 10, pg_temp.ago(20)),
	(gen_random_uuid(), 'N40', 'd0000000-0000-0000-0000-000000000001', 10, pg_temp.ago(40));
SELECT order_number, window_minutes FROM release_expired_orders.preview();
CALL release_expired_orders() \gset
SELECT :'summary'::jsonb #>> '{summary,successful}' AS released,
	   :'summary'::jsonb #> '{summary,windows}' AS summary_windows;

DROP FUNCTION pg_temp.rows_read();
DROP SCHEMA windows_app CASCADE;
DROP EXTENSION release_expired_orders;
