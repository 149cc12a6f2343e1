-- With created_at without time zone, an order whose wall-clock created_at
-- falls in an hour a DST change skips or repeats is never released before
-- its deadline, the one preview() shows: PostgreSQL reads such a time as
-- the later instant, and the wall-clock index range the candidates are
-- found by assumes the earlier one.  First with payment windows (review of
-- issue 21, findings 04 and 05: the order was released some 40 minutes
-- early), then with the CALL's timeout alone (found in the read-through
-- after that review: the same, by the plain candidate statement).
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
SET release_expired_orders.naive_time_zone = 'America/New_York';

-- Spring forward (2026-03-08): 02:50 does not exist and reads as 03:50 EDT
-- (07:50Z).  The window makes GAP_TWIN (03:10 EDT, 07:10Z) due a minute ago,
-- and GAP due in about 39 minutes.
SELECT ceil(extract(epoch FROM (now() - interval '1 min') - '2026-03-08 07:10+00') / 60)::int AS w \gset
INSERT INTO release_expired_orders.payment_windows VALUES ('spring', NULL, :w);
-- Fall back (2026-11-01): 01:30 happens twice and reads as the second one
-- (06:30Z).  The window makes FALL_TWIN (00:30 EDT, 04:30Z) due and FALL
-- due in about 44 minutes.
SELECT ceil(extract(epoch FROM (now() - interval '1 min') - '2026-11-01 05:45+00') / 60)::int AS w \gset
INSERT INTO release_expired_orders.payment_windows VALUES ('fall', NULL, :w);
INSERT INTO orders (id, order_number, user_id, type, quantity, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-0000000000f1', 'GAP', '00000000-0000-0000-0000-0000000000c1', 'spring', 1, 1, '2026-03-08 02:50'),
	('00000000-0000-0000-0000-0000000000f2', 'GAP_TWIN', '00000000-0000-0000-0000-0000000000c1', 'spring', 1, 1, '2026-03-08 03:10'),
	('00000000-0000-0000-0000-0000000000f3', 'FALL', '00000000-0000-0000-0000-0000000000c1', 'fall', 1, 1, '2026-11-01 01:30'),
	('00000000-0000-0000-0000-0000000000f4', 'FALL_TWIN', '00000000-0000-0000-0000-0000000000c1', 'fall', 1, 1, '2026-11-01 00:30');

-- The deadlines: two past, two ahead.
SELECT o.order_number,
	   (o.created_at AT TIME ZONE 'America/New_York') + make_interval(mins => w.timeout_minutes) < now() AS due
  FROM orders o JOIN release_expired_orders.payment_windows w ON w.order_type = o.type
 ORDER BY 1;
-- preview() lists only the due ones, and the CALL releases only them.
SELECT o.order_number, p.deadline < now() AS deadline_passed
  FROM release_expired_orders.preview() p JOIN orders o ON o.id = p.order_id ORDER BY 1;
CALL release_expired_orders() \gset
SELECT order_number, status FROM orders ORDER BY 1;

-- Without payment windows: the same orders, one timeout per DST change.
DELETE FROM release_expired_orders.payment_windows;
DELETE FROM orders;
-- Spring: the timeout makes GAP_TWIN due a minute ago and GAP due in about
-- 39 minutes; the run's wall-clock cutoff is about 03:09, after 02:50.
SELECT ceil(extract(epoch FROM (now() - interval '1 min') - '2026-03-08 07:10+00') / 60)::int AS t \gset
INSERT INTO orders (id, order_number, user_id, type, quantity, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-0000000000f1', 'GAP', '00000000-0000-0000-0000-0000000000c1', 'lottery', 1, 1, '2026-03-08 02:50'),
	('00000000-0000-0000-0000-0000000000f2', 'GAP_TWIN', '00000000-0000-0000-0000-0000000000c1', 'lottery', 1, 1, '2026-03-08 03:10');
SELECT o.order_number,
	   (o.created_at AT TIME ZONE 'America/New_York') + make_interval(mins => :t) < now() AS due,
	   o.created_at < (now() - make_interval(mins => :t)) AT TIME ZONE 'America/New_York' AS before_wall_cutoff
  FROM orders o ORDER BY 1;
SELECT o.order_number, p.deadline < now() AS deadline_passed
  FROM release_expired_orders.preview(:t) p JOIN orders o ON o.id = p.order_id ORDER BY 1;
CALL release_expired_orders(:t) \gset
SELECT order_number, status FROM orders ORDER BY 1;
DELETE FROM orders;
-- Fall: the timeout makes FALL_TWIN due and FALL due in about 44 minutes;
-- the run's wall-clock cutoff is about 01:45 (the first one), after 01:30.
SELECT ceil(extract(epoch FROM (now() - interval '1 min') - '2026-11-01 05:45+00') / 60)::int AS t \gset
INSERT INTO orders (id, order_number, user_id, type, quantity, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-0000000000f3', 'FALL', '00000000-0000-0000-0000-0000000000c1', 'lottery', 1, 1, '2026-11-01 01:30'),
	('00000000-0000-0000-0000-0000000000f4', 'FALL_TWIN', '00000000-0000-0000-0000-0000000000c1', 'lottery', 1, 1, '2026-11-01 00:30');
SELECT o.order_number,
	   (o.created_at AT TIME ZONE 'America/New_York') + make_interval(mins => :t) < now() AS due,
	   o.created_at < (now() - make_interval(mins => :t)) AT TIME ZONE 'America/New_York' AS before_wall_cutoff
  FROM orders o ORDER BY 1;
SELECT o.order_number, p.deadline < now() AS deadline_passed
  FROM release_expired_orders.preview(:t) p JOIN orders o ON o.id = p.order_id ORDER BY 1;
CALL release_expired_orders(:t) \gset
SELECT order_number, status FROM orders ORDER BY 1;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
