--
-- preview() is the dry run of the procedure (README, Reference): the orders the next
-- CALL releases, oldest first, with their age.  It agrees with the CALL
-- that follows, locks and writes nothing, checks its arguments as the
-- procedure does, reads a naive created_at in naive_time_zone whatever the
-- session's TimeZone, and follows the column's type.
--
\set SHOW_CONTEXT never
-- (without pg_cron it warns that the job is not scheduled: see scheduling)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
SET client_min_messages = warning;
CREATE SCHEMA preview_naive;
SET search_path = preview_naive, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
RESET client_min_messages;
SET release_expired_orders.app_schema = preview_naive;

-- Ages are whole minutes plus 30 s, so that flooring them is stable.
CREATE FUNCTION pg_temp.ago(minutes integer) RETURNS timestamp
LANGUAGE sql RETURN (now() AT TIME ZONE 'UTC') - make_interval(mins => minutes, secs => 30);

INSERT INTO products (id, stock) VALUES ('a0000000-0000-0000-0000-000000000001', 5);
INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status)
VALUES ('b0000000-0000-0000-0000-000000000001', 'a0000000-0000-0000-0000-000000000001', 100, 10, 'active');
-- E1..E5 expired; E3 and E4 share created_at (then id decides); P1 is
-- paid, X1 expired already, Y1 too young.
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity,
					total_amount, status, payment_status, fulfillment_status, created_at)
VALUES
 ('c0000000-0000-0000-0000-000000000001', 'E1', 'd0000000-0000-0000-0000-000000000001',
  'a0000000-0000-0000-0000-000000000001', 'b0000000-0000-0000-0000-000000000001', 'lottery_win',
  2, 10, 'pending', 'pending', 'pending', pg_temp.ago(80)),
 ('c0000000-0000-0000-0000-000000000002', 'E2', 'd0000000-0000-0000-0000-000000000001',
  'a0000000-0000-0000-0000-000000000001', NULL, 'direct_buy', 1, 10, 'pending', 'pending', 'pending',
  pg_temp.ago(70)),
 ('c0000000-0000-0000-0000-000000000004', 'E3', 'd0000000-0000-0000-0000-000000000002',
  NULL, NULL, 'recharge', 1, 10, 'pending', 'pending', 'pending', pg_temp.ago(60)),
 ('c0000000-0000-0000-0000-000000000003', 'E4', 'd0000000-0000-0000-0000-000000000002',
  NULL, NULL, 'recharge', 1, 10, 'pending', 'pending', 'pending', pg_temp.ago(60)),
 ('c0000000-0000-0000-0000-000000000005', 'E5', 'd0000000-0000-0000-0000-000000000003',
  'a0000000-0000-0000-0000-000000000001', NULL, 'direct_buy', 3, 10, 'pending', 'pending', 'pending',
  pg_temp.ago(40)),
 ('c0000000-0000-0000-0000-000000000006', 'P1', 'd0000000-0000-0000-0000-000000000003',
  'a0000000-0000-0000-0000-000000000001', NULL, 'direct_buy', 1, 10, 'pending', 'paid', 'completed',
  pg_temp.ago(90)),
 ('c0000000-0000-0000-0000-000000000007', 'X1', 'd0000000-0000-0000-0000-000000000003',
  NULL, NULL, 'direct_buy', 1, 10, 'expired', 'cancelled', 'cancelled', pg_temp.ago(95)),
 ('c0000000-0000-0000-0000-000000000008', 'Y1', 'd0000000-0000-0000-0000-000000000003',
  NULL, NULL, 'direct_buy', 1, 10, 'pending', 'pending', 'pending', pg_temp.ago(20));

-- Oldest first, (created_at, id): E4's id sorts before E3's.
SELECT order_number, user_id, product_id, round_id, quantity,
	   floor(extract(epoch FROM age) / 60) AS age_minutes,
	   created_at = (SELECT o.created_at AT TIME ZONE 'UTC' FROM orders o WHERE o.id = p.order_id)
		   AS created_at_is_utc
  FROM release_expired_orders.preview() p;
SELECT order_number FROM release_expired_orders.preview(65);
SELECT order_number FROM release_expired_orders.preview(30, 2);
SET release_expired_orders.timeout_minutes = 65;
SET release_expired_orders.batch_limit = 1;
SELECT order_number FROM release_expired_orders.preview();
RESET release_expired_orders.timeout_minutes;
RESET release_expired_orders.batch_limit;

-- The same argument checks as the procedure.
SELECT * FROM release_expired_orders.preview(0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM release_expired_orders.preview(525601);
SELECT * FROM release_expired_orders.preview(NULL, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM release_expired_orders.preview(NULL, 1000001);
CALL release_expired_orders(0);
SELECT count(*) FROM release_expired_orders.preview(525600, 1000000);

-- No locks, no writes: the transaction never gets a transaction id.
BEGIN;
SELECT count(*) FROM release_expired_orders.preview();
SELECT pg_current_xact_id_if_assigned() IS NULL AS nothing_locked_or_written;
COMMIT;

-- What preview shows is what the CALL releases: two, then the rest.
CREATE TEMP TABLE previewed AS SELECT order_id FROM release_expired_orders.preview(30, 2);
CALL release_expired_orders(30, 2) \gset
SELECT array_agg(o.order_number ORDER BY o.order_number) AS previewed,
	   (SELECT array_agg(e.order_number ORDER BY e.order_number)
		  FROM release_expired_orders.order_events e
		 WHERE e.run_id = (:'summary'::jsonb #>> '{summary,runId}')::bigint
		   AND e.outcome = 'released') AS released
  FROM previewed p JOIN orders o ON o.id = p.order_id;
TRUNCATE previewed;
INSERT INTO previewed SELECT order_id FROM release_expired_orders.preview();
CALL release_expired_orders() \gset
SELECT array_agg(o.order_number ORDER BY o.order_number) AS previewed,
	   (SELECT array_agg(e.order_number ORDER BY e.order_number)
		  FROM release_expired_orders.order_events e
		 WHERE e.run_id = (:'summary'::jsonb #>> '{summary,runId}')::bigint
		   AND e.outcome = 'released') AS released
  FROM previewed p JOIN orders o ON o.id = p.order_id;
SELECT count(*) AS left_to_preview FROM release_expired_orders.preview();

-- A server in UTC+5: naive created_at is UTC wall-clock time, so an order
-- created 20 minutes ago does not expire with a 30-minute timeout and one
-- created 40 minutes ago does (README, How it decides "expired").
SET TimeZone = 'Asia/Dushanbe';
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at) VALUES
 ('c0000000-0000-0000-0000-000000000011', 'T20', 'd0000000-0000-0000-0000-000000000001',
  'direct_buy', 10, pg_temp.ago(20)),
 ('c0000000-0000-0000-0000-000000000012', 'T40', 'd0000000-0000-0000-0000-000000000001',
  'direct_buy', 10, pg_temp.ago(40));
SELECT order_number, floor(extract(epoch FROM age) / 60) AS age_minutes
  FROM release_expired_orders.preview(30);
-- A naive_time_zone other than UTC moves the cutoff the other way.
SET release_expired_orders.naive_time_zone = 'Asia/Dushanbe';
SELECT order_number FROM release_expired_orders.preview(30);
RESET release_expired_orders.naive_time_zone;
RESET TimeZone;

-- created_at as timestamptz: compared as is.
SET client_min_messages = warning;
CREATE SCHEMA preview_tz;
SET search_path = preview_tz, public;
\set app_ts timestamptz
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
RESET client_min_messages;
SET release_expired_orders.app_schema = preview_tz;
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at) VALUES
 ('c0000000-0000-0000-0000-000000000021', 'Z20', 'd0000000-0000-0000-0000-000000000001',
  'direct_buy', 10, now() - interval '20 minutes 30 seconds'),
 ('c0000000-0000-0000-0000-000000000022', 'Z40', 'd0000000-0000-0000-0000-000000000001',
  'direct_buy', 10, now() - interval '40 minutes 30 seconds');
SET TimeZone = 'Asia/Dushanbe';
SELECT order_number, floor(extract(epoch FROM age) / 60) AS age_minutes
  FROM release_expired_orders.preview(30);
RESET TimeZone;
CREATE TEMP TABLE previewed_tz AS SELECT order_id FROM release_expired_orders.preview();
CALL release_expired_orders() \gset
SELECT (SELECT array_agg(order_id) FROM previewed_tz) =
	   (SELECT array_agg(e.order_id) FROM release_expired_orders.order_events e
		 WHERE e.run_id = (:'summary'::jsonb #>> '{summary,runId}')::bigint
		   AND e.outcome = 'released') AS preview_matches_call;

-- A missing table or column is an error naming it.
SET release_expired_orders.app_schema = preview_none;
SELECT * FROM release_expired_orders.preview();
ALTER TABLE preview_tz.orders RENAME COLUMN created_at TO placed_at;
SET release_expired_orders.app_schema = preview_tz;
SELECT * FROM release_expired_orders.preview();
ALTER TABLE preview_tz.orders RENAME COLUMN placed_at TO created_at;
ALTER TABLE preview_tz.orders ALTER COLUMN created_at TYPE date;
SELECT * FROM release_expired_orders.preview();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA preview_naive, preview_tz CASCADE;
DROP EXTENSION release_expired_orders;
