-- naive_time_zone is validated and applied by the zone's full rules:
-- 'CET' is the tz database zone with daylight saving
-- (UTC+1 in winter, UTC+2 in summer), not the abbreviation's fixed UTC+1.
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
-- (without pg_cron, CREATE EXTENSION warns how to schedule the job: not shown)
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
SET TimeZone = 'UTC';
-- The zone name 'CET' is in the tz database's "backward" file, which some
-- installations leave out (Debian 13 and later ship it in the optional
-- package tzdata-legacy).  Without it, the same rules are checked under
-- Europe/Berlin, and the case of a zone name that is also an abbreviation
-- is skipped (expected/naive_zone_rules_1.out).
SELECT EXISTS (SELECT FROM pg_timezone_names WHERE name = 'CET') AS have_cet \gset
\if :have_cet
\set zone CET
\else
\echo 'zone "CET" not installed: the abbreviation case is skipped, Europe/Berlin instead'
\set zone Europe/Berlin
\endif
SET release_expired_orders.naive_time_zone = :'zone';

-- Orders stored in CET wall-clock time, one in summer and one in winter,
-- long expired: preview() reads each by the rule of its own date.
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-000000000001', 'SUMMER', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, '2025-07-01 14:00:00'),
	('00000000-0000-0000-0000-000000000002', 'WINTER', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, '2025-01-15 13:00:00');
SELECT order_number, created_at FROM release_expired_orders.preview(30) ORDER BY order_number;
-- The job's conversion function agrees, both ways.
SELECT release_expired_orders.wall_clock('2025-07-01 12:00:00+00', :'zone') AS summer_wall_clock,
	   release_expired_orders.wall_clock('2025-01-15 12:00:00+00', :'zone') AS winter_wall_clock;
CALL release_expired_orders(30, 100) \gset
SELECT order_number, status FROM orders ORDER BY order_number;
DELETE FROM orders;

-- Orders created 20 and 40 minutes ago in CET wall-clock time (computed by
-- the full rules of a zone name that is no abbreviation): with a
-- 30-minute timeout only the 40-minute one expires, whatever the season,
-- and preview() agrees.
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-000000000003', 'CET-20', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, (now() AT TIME ZONE 'Europe/Berlin') - interval '20 minutes'),
	('00000000-0000-0000-0000-000000000004', 'CET-40', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, (now() AT TIME ZONE 'Europe/Berlin') - interval '40 minutes');
SELECT order_number, round(extract(epoch FROM age) / 60) AS age_minutes,
	   abs(extract(epoch FROM created_at - (now() - make_interval(mins => 40)))) < 60 AS created_40_min_ago
FROM release_expired_orders.preview(30);
CALL release_expired_orders(30, 100) \gset
SELECT order_number, status,
	   abs(extract(epoch FROM updated_at - (now() AT TIME ZONE 'Europe/Berlin'))) < 60 AS updated_in_cet
FROM orders ORDER BY order_number;
SELECT abs(extract(epoch FROM sent_at - (now() AT TIME ZONE 'Europe/Berlin'))) < 60 AS sent_in_cet
FROM notifications WHERE content LIKE '%order_released%';

-- An abbreviation that is no zone name is refused, as before.
SET release_expired_orders.naive_time_zone = 'CEST';
SHOW release_expired_orders.naive_time_zone;

-- Zones whose wall-clock times PostgreSQL does not read as they say are
-- refused: changes less than two days apart, or an offset of a day or more
-- with changes (review of the DST change, findings 02 and 05: an order
-- released an hour late, or two days early).
SET release_expired_orders.naive_time_zone = 'AAA5BBB4,J100/0,J100/23';
SET release_expired_orders.naive_time_zone = '<-30>30<+30>-30,J100/0,J300/0';

-- A POSIX zone may be 60 hours east of UTC, and created_at may be the first
-- second after the range's first days: neither the plain nor the windowed
-- statements read such a time in the zone (review of the DST change,
-- finding 02: every CALL, preview() and oldest_deadline() failed with
-- "timestamp out of range").
SET release_expired_orders.naive_time_zone = '<+60>-60';
DELETE FROM orders;
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-0000000000b1', 'BC', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, '4714-11-26 00:00:01 BC'),
	('00000000-0000-0000-0000-0000000000b2', 'NORMAL', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, '2020-01-01');
SELECT count(*) AS due FROM release_expired_orders.preview(30);
SELECT release_expired_orders.oldest_deadline() < now() AS oldest_passed;
CALL release_expired_orders(30, 100) \gset
SELECT order_number, status FROM orders ORDER BY order_number;
-- the same with a payment window
DELETE FROM orders;
INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at) VALUES
	('00000000-0000-0000-0000-0000000000b3', 'BC', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, '4714-11-26 00:00:01 BC'),
	('00000000-0000-0000-0000-0000000000b4', 'NORMAL', '00000000-0000-0000-0000-0000000000c1', 'recharge', 1, '2020-01-01');
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 30);
SELECT count(*) AS due_windowed FROM release_expired_orders.preview(30);
SELECT release_expired_orders.oldest_deadline() < now() AS oldest_passed_windowed;
CALL release_expired_orders(30, 100) \gset
SELECT order_number, status FROM orders ORDER BY order_number;
DELETE FROM release_expired_orders.payment_windows;

RESET release_expired_orders.naive_time_zone;
RESET TimeZone;
DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
