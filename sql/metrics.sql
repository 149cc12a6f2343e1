--
-- The metrics view (README, Metrics): one row per metric, each computed from what
-- happened; oldest_overdue_seconds follows the payment windows.
--
\set SHOW_CONTEXT never
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
SET client_min_messages = warning;
CREATE SCHEMA metrics_app;
SET search_path = metrics_app, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
RESET client_min_messages;
SET release_expired_orders.app_schema = metrics_app;
CREATE FUNCTION pg_temp.ago(minutes integer) RETURNS timestamp
LANGUAGE sql RETURN (now() AT TIME ZONE 'UTC') - make_interval(mins => minutes, secs => 30);
CREATE FUNCTION pg_temp.metric(name text) RETURNS double precision
LANGUAGE sql RETURN (SELECT value FROM release_expired_orders.metrics WHERE metric = name);

-- The rows, their types, and nothing to report yet.
SELECT metric, value, type FROM release_expired_orders.metrics ORDER BY metric;

-- An order 40 minutes old with the 30-minute default is 10 minutes overdue;
-- one 20 minutes old is not overdue.
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at) VALUES
	(gen_random_uuid(), 'L40', 'd0000000-0000-0000-0000-000000000001', 'lottery_win', 10, pg_temp.ago(40)),
	(gen_random_uuid(), 'R20', 'd0000000-0000-0000-0000-000000000001', 'recharge', 10, pg_temp.ago(20));
SELECT floor(pg_temp.metric('oldest_overdue_seconds') / 60) AS oldest_overdue_minutes;
-- Windows move the deadlines: with 15 minutes for a recharge and 60 for a
-- lottery win, R20 is the one overdue, by 5 minutes.
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 15), ('lottery_win', NULL, 60);
SELECT floor(pg_temp.metric('oldest_overdue_seconds') / 60) AS oldest_overdue_minutes;

-- A run: totals, last success and duration follow.
CALL release_expired_orders() \gset
SELECT pg_temp.metric('released_total') AS released_total,
	   pg_temp.metric('runs_total') AS runs_total,
	   pg_temp.metric('failed_total') AS failed_total,
	   pg_temp.metric('seconds_since_last_success') BETWEEN 0 AND 60 AS recent_success,
	   pg_temp.metric('last_run_duration_seconds') =
		   (SELECT duration_ms / 1000 FROM release_expired_orders.runs ORDER BY id DESC LIMIT 1)
		   AS last_duration,
	   pg_temp.metric('oldest_overdue_seconds') AS oldest_overdue_seconds;
-- An order waiting out the retry backoff still counts as overdue.
INSERT INTO orders (id, order_number, user_id, type, quantity, total_amount, created_at) VALUES
	(gen_random_uuid(), 'BAD', 'd0000000-0000-0000-0000-000000000001', 'direct_buy', 1, 10, pg_temp.ago(45));
CREATE FUNCTION pg_temp.veto() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'order % is disputed', NEW.order_number; END $$;
CREATE TRIGGER veto BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION pg_temp.veto();
CALL release_expired_orders() \gset
SELECT pg_temp.metric('failed_total') AS failed_total,
	   floor(pg_temp.metric('oldest_overdue_seconds') / 60) AS oldest_overdue_minutes,
	   (SELECT count(*) FROM release_expired_orders.preview()) AS previewed;
DROP TRIGGER veto ON orders;

DROP FUNCTION pg_temp.metric(text);
DROP SCHEMA metrics_app CASCADE;
DROP EXTENSION release_expired_orders;
