-- Hostile and odd input: every argument and setting at its bounds, past
-- them, NULL and absurd; an application schema whose name has quotes,
-- spaces, dots and a semicolon; settings set before the library is
-- loaded; and data the application never should have written.  Refused
-- input is a clear error with nothing changed; odd data has one defined
-- behaviour and no counter ever moves wrongly.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;

INSERT INTO products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 10);
INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'ORD-1', '00000000-0000-0000-0000-0000000000c1',
		'00000000-0000-0000-0000-0000000000a1', 'direct_buy', 1, 10.00,
		(now() AT TIME ZONE 'UTC') - interval '1 hour');

-- A digest of everything the job could write.
CREATE FUNCTION digest() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(concat_ws(',', id, status, payment_status, fulfillment_status, notes, updated_at), ';' ORDER BY id) FROM orders),
		(SELECT string_agg(concat_ws(',', id, stock, updated_at), ';' ORDER BY id) FROM products),
		(SELECT string_agg(concat_ws(',', id, sold_shares, updated_at), ';' ORDER BY id) FROM lottery_rounds),
		(SELECT count(*) FROM notifications),
		(SELECT count(*) FROM release_expired_orders.runs),
		(SELECT count(*) FROM release_expired_orders.order_events)))
$$;
SELECT digest() AS before \gset

-- 1. Arguments: in range 1..525600 and 1..1000000, NULL for the setting.
-- Each call runs in a transaction that is rolled back; "ok" lists what
-- it released.
CREATE FUNCTION try_call(t int, b int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	summary jsonb;
BEGIN
	CALL public.release_expired_orders(t, b, summary);
	RAISE EXCEPTION USING ERRCODE = 'RO001', MESSAGE =
		format('ok, released %s, timeoutMinutes %s', summary->'summary'->>'successful',
			   summary->'summary'->>'timeoutMinutes');
EXCEPTION WHEN OTHERS THEN
	RETURN CASE WHEN SQLSTATE = 'RO001' THEN SQLERRM ELSE SQLSTATE || ': ' || SQLERRM END;
END $$;
SELECT t AS timeout_minutes, b AS batch_limit, try_call(t, b) AS result
FROM (VALUES (1, 1), (525600, 1000000), (NULL, NULL), (30, NULL), (NULL, 1),
			 (0, 100), (-1, 100), (525601, 100), (2147483647, 100), (-2147483648, 100),
			 (30, 0), (30, -1), (30, 1000001), (30, 2147483647), (0, 0)) AS v(t, b);
SELECT digest() = :'before' AS nothing_changed;

-- 2. Settings: the same ranges, and chunk_size 1..100000, lock_timeout
-- 1ms..1h, a time zone PostgreSQL knows, a schema name of 1..63 bytes.
CREATE FUNCTION try_set(name text, value text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('release_expired_orders.' || name, value, true);
	RETURN 'accepted: ' || current_setting('release_expired_orders.' || name);
EXCEPTION WHEN OTHERS THEN
	-- Without the range of a range error: PostgreSQL 17 and later print it
	-- with the setting's unit, "(1 ms .. 3600000 ms)".  The accepted and
	-- refused values above and below each bound show the range.
	RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, ' \([^()]* \.\. [^()]*\)$', '');
END $$;
SELECT name, value, try_set(name, value) AS result
FROM (VALUES ('timeout_minutes', '0'), ('timeout_minutes', '-1'), ('timeout_minutes', '525600'),
			 ('timeout_minutes', '525601'), ('timeout_minutes', '2147483647'),
			 ('timeout_minutes', '2147483648'), ('timeout_minutes', '30.5'), ('timeout_minutes', ''),
			 ('batch_limit', '0'), ('batch_limit', '1000000'), ('batch_limit', '1000001'),
			 ('chunk_size', '0'), ('chunk_size', '1'), ('chunk_size', '100000'), ('chunk_size', '100001'),
			 ('lock_timeout', '0'), ('lock_timeout', '1ms'), ('lock_timeout', '-1'),
			 ('lock_timeout', '1h'), ('lock_timeout', '61min'), ('lock_timeout', '5 parsecs'),
			 ('naive_time_zone', 'Mars/Olympus'), ('naive_time_zone', ''),
			 ('naive_time_zone', 'Asia/Dushanbe'), ('naive_time_zone', 'utc'),
			 ('naive_time_zone', '../../../../etc/passwd'),
			 ('app_schema', ''), ('app_schema', repeat('s', 63)), ('app_schema', repeat('s', 64)),
			 ('app_schema', 'public; DROP TABLE orders'), ('write_notifications', 'maybe'))
	 AS v(name, value);
SELECT digest() = :'before' AS nothing_changed;

-- A setting the call cannot use is refused when the call reads it.
BEGIN;
SET LOCAL release_expired_orders.app_schema = 'public; DROP TABLE orders';
CALL release_expired_orders(30, 100);
ROLLBACK;
BEGIN;
SET LOCAL release_expired_orders.app_schema = 'no such "schema".really';
CALL release_expired_orders(30, 100);
ROLLBACK;
SELECT digest() = :'before' AS nothing_changed;

-- 3. An application schema whose name has quotes, spaces, dots and a
-- semicolon works like any other.
CREATE SCHEMA "we""ird. sch;ema";
SET search_path = "we""ird. sch;ema";
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
RESET search_path;
INSERT INTO "we""ird. sch;ema".products (id, stock) VALUES ('00000000-0000-0000-0000-0000000000a1', 1);
INSERT INTO "we""ird. sch;ema".orders (id, order_number, user_id, product_id, type, quantity,
									   total_amount, created_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'W-1', '00000000-0000-0000-0000-0000000000c1',
		'00000000-0000-0000-0000-0000000000a1', 'direct_buy', 2, 10.00,
		(now() AT TIME ZONE 'UTC') - interval '1 hour');
SET release_expired_orders.app_schema = 'we"ird. sch;ema';
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS released;
RESET release_expired_orders.app_schema;
SELECT o.order_number, o.status, p.stock, n.content
FROM "we""ird. sch;ema".orders o JOIN "we""ird. sch;ema".products p ON p.id = o.product_id
JOIN "we""ird. sch;ema".notifications n ON n.content LIKE '%order_released%';
-- public was not touched.
SELECT order_number, status FROM orders;
DROP TABLE "we""ird. sch;ema".orders, "we""ird. sch;ema".products,
	"we""ird. sch;ema".lottery_rounds, "we""ird. sch;ema".notifications;
DROP SCHEMA "we""ird. sch;ema";
DELETE FROM release_expired_orders.order_events;
DELETE FROM release_expired_orders.runs;
SELECT digest() = :'before' AS nothing_changed;

-- 4. Settings SET before the library is loaded are placeholders, which
-- PostgreSQL does not check; when the library loads it only warns about an
-- invalid one and keeps the default.  Today the call refuses to run until
-- the setting is assigned a valid value.
\c -
SET release_expired_orders.naive_time_zone = 'Mars/Olympus';
SET release_expired_orders.chunk_size = 0;
SET release_expired_orders.timeout_minutes = 'thirty';
CALL release_expired_orders(30, 100);
\echo :LAST_ERROR_SQLSTATE
SHOW release_expired_orders.naive_time_zone;
SHOW release_expired_orders.chunk_size;
SELECT digest() = :'before' AS nothing_changed;
-- Each is refused until it is set again.
SET release_expired_orders.timeout_minutes = 30;
CALL release_expired_orders(30, 100);
\echo :LAST_ERROR_SQLSTATE
SET release_expired_orders.chunk_size = 1000;
CALL release_expired_orders(30, 100);
\echo :LAST_ERROR_SQLSTATE
RESET release_expired_orders.naive_time_zone;
BEGIN;
CALL release_expired_orders(NULL, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->>'successful' AS released;
ROLLBACK;
SELECT digest() = :'before' AS nothing_changed;
RESET ALL;
DELETE FROM orders;
DELETE FROM products;

-- 5. Data the application never should have written.  The orders table
-- here lacks the application's NOT NULL on quantity.  Each row says what
-- it tests; the age is in minutes, the timeout is 30.
ALTER TABLE orders ALTER COLUMN quantity DROP NOT NULL;
INSERT INTO products (id, stock) VALUES
	('00000000-0000-0000-0000-0000000000a1', 10),
	('00000000-0000-0000-0000-0000000000a2', 100),
	('00000000-0000-0000-0000-0000000000a3', NULL),
	('00000000-0000-0000-0000-0000000000a4', 2147483646),
	('00000000-0000-0000-0000-0000000000a5', -4);
INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 100, 50, 'active'),
	('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-0000000000a2', 100, 20, 'full'),
	('00000000-0000-0000-0000-0000000000b3', '00000000-0000-0000-0000-0000000000a1', 100, NULL, 'active'),
	('00000000-0000-0000-0000-0000000000b4', '00000000-0000-0000-0000-0000000000a1', 100, -5, 'active'),
	('00000000-0000-0000-0000-0000000000b5', '00000000-0000-0000-0000-0000000000a1', 100, 2, 'drawing'),
	('00000000-0000-0000-0000-0000000000b6', '00000000-0000-0000-0000-0000000000a5', 100, 2147483647, 'active');
CREATE TABLE odd (n int, what text, age text, product text, round text, quantity int,
				  status text, payment_status text, fulfillment_status text, number text);
INSERT INTO odd VALUES
	(1, 'NULL quantity', '90 min', 'a1', 'b1', NULL, 'pending', 'pending', 'pending', NULL),
	(2, 'negative quantity', '89 min', 'a1', 'b1', -3, 'pending', 'pending', 'pending', NULL),
	(3, 'status Pending', '88 min', 'a1', NULL, 1, 'Pending', 'pending', 'pending', NULL),
	(4, 'status with a trailing space', '87 min', 'a1', NULL, 1, 'pending ', 'pending', 'pending', NULL),
	(5, 'payment_status PENDING', '86 min', 'a1', NULL, 1, 'pending', 'PENDING', 'pending', NULL),
	(6, 'created in the future', '-60 min', 'a1', NULL, 1, 'pending', 'pending', 'pending', NULL),
	(7, 'created_at NULL', NULL, 'a1', NULL, 1, 'pending', 'pending', 'pending', NULL),
	(8, 'created_at -infinity', '-infinity', 'a2', NULL, 1, 'pending', 'pending', 'pending', NULL),
	(9, 'created_at infinity', 'infinity', 'a2', NULL, 1, 'pending', 'pending', 'pending', NULL),
	(10, 'same product and round (1 of 3)', '80 min', 'a2', 'b2', 2, 'pending', 'pending', 'pending', NULL),
	(11, 'same product and round (2 of 3)', '79 min', 'a2', 'b2', 3, 'pending', 'pending', 'pending', NULL),
	(12, 'same product and round (3 of 3)', '78 min', 'a2', 'b2', 4, 'pending', 'pending', 'pending', NULL),
	(13, 'product that does not exist', '77 min', 'ff', NULL, 1, 'pending', 'pending', 'pending', NULL),
	(14, 'round that does not exist', '76 min', NULL, 'bf', 1, 'pending', 'pending', 'pending', NULL),
	(15, 'product with NULL stock', '75 min', 'a3', NULL, 2, 'pending', 'pending', 'pending', NULL),
	(16, 'round with NULL sold_shares', '74 min', NULL, 'b3', 1, 'pending', 'pending', 'pending', NULL),
	(17, 'round with negative sold_shares', '73 min', NULL, 'b4', 1, 'pending', 'pending', 'pending', NULL),
	(18, 'round with 2 sold, returns 2 (older)', '72 min', NULL, 'b5', 2, 'pending', 'pending', 'pending', NULL),
	(19, 'round with 2 sold, returns 3 (newer)', '71 min', NULL, 'b5', 3, 'pending', 'pending', 'pending', NULL),
	(20, 'stock would overflow integer', '70 min', 'a4', NULL, 5, 'pending', 'pending', 'pending',
		 E'ORD-20 "quoted" \\back\\slash\nnew line 订单 \u0001'),
	(21, 'quantity 2147483647', '69 min', 'a1', NULL, 2147483647, 'pending', 'pending', 'pending', NULL),
	(22, 'status NULL', '68 min', 'a1', NULL, 1, NULL, 'pending', 'pending', NULL),
	(23, 'fulfillment_status NULL', '67 min', 'a1', NULL, 1, 'pending', 'pending', NULL, NULL),
	(24, 'no product, no round', '66 min', NULL, NULL, 1, 'pending', 'pending', 'pending', NULL),
	(25, 'negative stock; round at INT_MAX', '65 min', 'a5', 'b6', 1, 'pending', 'pending', 'pending', NULL),
	(26, 'paid, status still pending', '64 min', 'a1', NULL, 1, 'pending', 'paid', 'pending', NULL);
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount,
					status, payment_status, fulfillment_status, notes, created_at)
SELECT ('00000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid,
	   coalesce(number, 'ORD-' || n), '00000000-0000-0000-0000-0000000000c1',
	   ('00000000-0000-0000-0000-0000000000' || product)::uuid,
	   ('00000000-0000-0000-0000-0000000000' || round)::uuid, 'direct_buy', quantity, 1.00,
	   status, payment_status, fulfillment_status, what,
	   CASE WHEN age = '-infinity' THEN '-infinity'::timestamp
			WHEN age = 'infinity' THEN 'infinity'::timestamp
			ELSE (now() AT TIME ZONE 'UTC') - age::interval END
FROM odd;
CREATE TABLE counters_before AS
SELECT id, stock AS value FROM products UNION ALL SELECT id, sold_shares FROM lottery_rounds;

CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->'totalFound' AS found,
	   (:'summary'::jsonb)->'summary'->'successful' AS released,
	   (:'summary'::jsonb)->'summary'->'failed' AS failed,
	   (:'summary'::jsonb)->'summary'->'outcome' AS outcome;
-- The failed orders as the summary lists them (the order number with
-- quotes, a backslash, a newline and a control character comes back intact).
SELECT e->>'orderNumber' = o.order_number AS number_intact, o.notes AS what, e->>'error' AS error
FROM jsonb_array_elements((:'summary'::jsonb)->'errors') e
JOIN orders o ON o.id = (e->>'orderId')::uuid ORDER BY o.created_at;
SELECT order_number, sqlstate, message FROM release_expired_orders.order_events
WHERE outcome = 'failed' ORDER BY order_id;

-- What happened to each order.
SELECT odd.what, o.status, o.payment_status, o.fulfillment_status,
	   CASE WHEN o.notes = odd.what THEN 'unchanged'
			WHEN o.notes ~ ('^' || regexp_replace(odd.what, '([()])', '\\\1', 'g')
							|| E'\n\\[系统\\] 订单超时已过期 - \\d{4}-\\d\\d-\\d\\dT[0-9:.]{12}Z$')
			THEN 'appended' END AS notes,
	   (SELECT string_agg(format('%s %s/%s', ev.outcome, ev.stock_delta, ev.shares_delta), ', '
						  ORDER BY ev.outcome)
		FROM release_expired_orders.order_events ev WHERE ev.order_id = o.id) AS audit
FROM orders o JOIN odd ON odd.n = substr(o.id::text, 35)::int ORDER BY odd.n;

-- Counters: before, after, and the sum of the deltas audited for them.
SELECT c.id, c.value AS before, coalesce(p.stock, r.sold_shares) AS after,
	   (SELECT sum(CASE WHEN p.id IS NOT NULL THEN ev.stock_delta ELSE ev.shares_delta END)
		FROM release_expired_orders.order_events ev
		WHERE ev.product_id = c.id AND p.id IS NOT NULL OR ev.round_id = c.id AND r.id IS NOT NULL)
	   AS audited_delta
FROM counters_before c LEFT JOIN products p ON p.id = c.id LEFT JOIN lottery_rounds r ON r.id = c.id
ORDER BY c.id;
-- Every counter moved by exactly what its audit rows say (a NULL counter
-- counts as 0 when something is returned to it).
SELECT c.id AS counter_moved_wrongly
FROM counters_before c LEFT JOIN products p ON p.id = c.id LEFT JOIN lottery_rounds r ON r.id = c.id
WHERE coalesce(coalesce(p.stock, r.sold_shares), 0) - coalesce(c.value, 0) <>
	  coalesce((SELECT sum(CASE WHEN p.id IS NOT NULL THEN ev.stock_delta ELSE ev.shares_delta END)
				FROM release_expired_orders.order_events ev
				WHERE ev.product_id = c.id AND p.id IS NOT NULL OR ev.round_id = c.id AND r.id IS NOT NULL), 0);

-- The next run retries the two failed orders; they fail again and nothing
-- else moves.
CALL release_expired_orders(30, 100) \gset
SELECT (:'summary'::jsonb)->'summary'->'totalFound' AS found,
	   (:'summary'::jsonb)->'summary'->'successful' AS released,
	   (:'summary'::jsonb)->'summary'->'failed' AS failed;
SELECT id, stock FROM products ORDER BY id;
SELECT id, sold_shares FROM lottery_rounds ORDER BY id;

-- 6. The extension accepts order_number as text (or a longer varchar), and
-- its audit table keeps order_number as text: an order number of 60
-- characters is released like any other.
DELETE FROM orders;
ALTER TABLE orders ALTER COLUMN order_number TYPE text;
INSERT INTO orders (id, order_number, user_id, type, quantity, total_amount, created_at)
VALUES ('00000000-0000-0000-0000-000000000101', repeat('N', 60), '00000000-0000-0000-0000-0000000000c1',
		'direct_buy', 1, 1.00, (now() AT TIME ZONE 'UTC') - interval '2 hours'),
	   ('00000000-0000-0000-0000-000000000102', 'ORD-102', '00000000-0000-0000-0000-0000000000c1',
		'direct_buy', 1, 1.00, (now() AT TIME ZONE 'UTC') - interval '1 hour');
\set VERBOSITY terse
CALL release_expired_orders(30, 100) \gset
\set VERBOSITY default
SELECT length(order_number) AS number_length, status FROM orders ORDER BY created_at;
SELECT outcome, error FROM release_expired_orders.runs ORDER BY id DESC LIMIT 1;

-- Clean up.
DROP FUNCTION digest(), try_call(int, int), try_set(text, text);
DROP TABLE odd, counters_before;
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
