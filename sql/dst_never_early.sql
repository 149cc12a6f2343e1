-- With created_at without time zone, an order whose wall-clock created_at
-- falls in an hour a DST change skips or repeats is never released before
-- its deadline, the one preview() shows: PostgreSQL reads such a time as
-- the later instant, and the wall-clock index range the candidates are
-- found by assumes the earlier one.  With payment windows (review of issue
-- 21, findings 04 and 05: the order was released some 40 minutes early),
-- and with the CALL's timeout alone (found in the read-through after that
-- review: the same, by the plain candidate statement).
--
-- The zones are POSIX rules made for the test, 5 hours west of UTC with
-- an hour of DST, whose change was three days ago, on the minute: the
-- timeouts stay a few days long whatever the date (a zone's real change
-- moves a year away, past the longest timeout), and no time zone data is
-- needed.  (The earlier version of this test used America/New_York's 2026
-- changes, a review found, and would have failed from March 2027.)
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
SET TimeZone = 'UTC';

-- A POSIX rule "Jn/hh:mm:ss" for the instant t read at offset_h hours
-- west of UTC (Jn counts no February 29).
CREATE FUNCTION pg_temp.rule(t timestamptz, offset_h int) RETURNS text LANGUAGE sql AS $$
	SELECT 'J' || (extract(doy FROM l)::int
			- CASE WHEN extract(doy FROM l) > 59 AND extract(year FROM l)::int % 4 = 0
					 AND (extract(year FROM l)::int % 100 <> 0 OR extract(year FROM l)::int % 400 = 0)
				   THEN 1 ELSE 0 END)
		   || '/' || to_char(l, 'HH24:MI:SS')
	  FROM (SELECT (t AT TIME ZONE 'UTC') - make_interval(hours => offset_h) AS l) s $$;
-- The change: three days ago on the minute, or four when a rule would fall
-- on February 29.
SELECT CASE WHEN to_char(c - interval '5 hours', 'MM-DD') = '02-29'
			  OR to_char(c + interval '180 days' - interval '4 hours', 'MM-DD') = '02-29'
			  OR to_char(c - interval '180 days' - interval '5 hours', 'MM-DD') = '02-29'
			THEN c - interval '1 day' ELSE c END AS change
  FROM (SELECT date_trunc('minute', now()) - interval '3 days' AS c) s \gset
-- Spring: clocks go forward at the change, and back 180 days later.
SELECT 'XST5XDT,' || pg_temp.rule(:'change', 5) || ',' || pg_temp.rule(:'change'::timestamptz + interval '180 days', 4) AS spring \gset
-- Fall: clocks went forward 180 days before, and go back at the change.
SELECT 'XST5XDT,' || pg_temp.rule(:'change'::timestamptz - interval '180 days', 5) || ',' || pg_temp.rule(:'change', 4) AS fall \gset
-- Each zone changes where it should: an hour skipped, an hour repeated.
SELECT (:'change'::timestamptz - interval '1 second') AT TIME ZONE :'spring' AS spring_before,
	   :'change'::timestamptz AT TIME ZONE :'spring' AS spring_after,
	   (:'change'::timestamptz - interval '1 second') AT TIME ZONE :'fall' AS fall_before,
	   :'change'::timestamptz AT TIME ZONE :'fall' AS fall_after \gset
SELECT :'spring_after'::timestamp - :'spring_before'::timestamp - interval '1 second' AS spring_jump,
	   :'fall_after'::timestamp - :'fall_before'::timestamp - interval '1 second' AS fall_jump,
	   :'spring_before'::timestamp + interval '1 second' - (:'change'::timestamptz AT TIME ZONE 'UTC') AS offset_before_spring;

-- The orders, in wall-clock time: GAP 50 minutes into the skipped hour,
-- which reads as 50 minutes after the change, and GAP_TWIN 10 minutes
-- after the skipped hour (10 minutes after the change); FALL 30 minutes
-- into the repeated hour, which reads as the second pass (30 minutes
-- after the change), and FALL_TWIN 30 minutes before it (90 minutes
-- before the change).  The timeouts make each twin due a minute ago, GAP
-- due in some 39 minutes and FALL in some 44: the wall-clock cutoff is
-- after both.
SELECT (:'change'::timestamptz AT TIME ZONE 'UTC') - interval '5 hours' AS wall \gset
SELECT :'wall'::timestamp + interval '50 minutes' AS gap, :'wall'::timestamp + interval '70 minutes' AS gap_twin,
	   :'wall'::timestamp + interval '30 minutes' AS fall_at, :'wall'::timestamp - interval '30 minutes' AS fall_twin,
	   ceil(extract(epoch FROM (now() - interval '1 min') - (:'change'::timestamptz + interval '10 minutes')) / 60)::int AS t_spring,
	   ceil(extract(epoch FROM (now() - interval '1 min') - (:'change'::timestamptz - interval '15 minutes')) / 60)::int AS t_fall \gset

-- One scenario: in zone, the two orders; for each, whether it is due by
-- its deadline (the zone's own reading) and before the run's wall-clock
-- cutoff, whether preview(call_timeout) lists it with a passed deadline,
-- and its status after CALL release_expired_orders(call_timeout), all in
-- one transaction (the CALL atomic), so at one now().
CREATE FUNCTION pg_temp.scenario(zone text, t int, call_timeout int, a text, an timestamp, b text, bn timestamp)
RETURNS TABLE (order_number text, due boolean, before_wall_cutoff boolean, listed boolean, deadline_passed boolean, status text)
LANGUAGE plpgsql AS $$
DECLARE
	s jsonb;
BEGIN
	PERFORM set_config('release_expired_orders.naive_time_zone', zone, true);
	DELETE FROM orders;
	INSERT INTO orders (id, order_number, user_id, type, quantity, total_amount, created_at) VALUES
		(gen_random_uuid(), a, '00000000-0000-0000-0000-0000000000c1', 'lottery', 1, 1, an),
		(gen_random_uuid(), b, '00000000-0000-0000-0000-0000000000c1', 'lottery', 1, 1, bn);
	CREATE TEMP TABLE shown ON COMMIT DROP AS
		SELECT p.order_id, p.deadline < now() AS passed FROM release_expired_orders.preview(call_timeout) p;
	CREATE TEMP TABLE before ON COMMIT DROP AS
		SELECT o.id, o.order_number, (o.created_at AT TIME ZONE zone) + make_interval(mins => t) < now() AS due,
			   o.created_at < (now() - make_interval(mins => t)) AT TIME ZONE zone AS before_wall_cutoff
		  FROM orders o;
	CALL release_expired_orders(call_timeout, 100, s);
	RETURN QUERY
		SELECT b0.order_number::text, b0.due, b0.before_wall_cutoff, sh.order_id IS NOT NULL, sh.passed, o.status::text
		  FROM before b0 JOIN orders o ON o.id = b0.id LEFT JOIN shown sh ON sh.order_id = b0.id
		 ORDER BY 1;
END $$;

-- Without payment windows: each twin is due and released, the other is
-- neither listed nor released.
SELECT * FROM pg_temp.scenario(:'spring', :t_spring, :t_spring, 'GAP', :'gap', 'GAP_TWIN', :'gap_twin');
SELECT * FROM pg_temp.scenario(:'fall', :t_fall, :t_fall, 'FALL', :'fall_at', 'FALL_TWIN', :'fall_twin');
-- With payment windows: the type's window is the timeout (the CALL's own
-- is left at 30 minutes).
INSERT INTO release_expired_orders.payment_windows VALUES ('lottery', NULL, :t_spring);
SELECT * FROM pg_temp.scenario(:'spring', :t_spring, 30, 'GAP', :'gap', 'GAP_TWIN', :'gap_twin');
UPDATE release_expired_orders.payment_windows SET timeout_minutes = :t_fall;
SELECT * FROM pg_temp.scenario(:'fall', :t_fall, 30, 'FALL', :'fall_at', 'FALL_TWIN', :'fall_twin');

RESET release_expired_orders.naive_time_zone;
RESET TimeZone;
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
