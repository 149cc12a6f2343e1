-- One round of the randomized test: generate, snapshot, run with random
-- arguments and settings, check; then the next round until :rounds.
SELECT * FROM fuzz_args() \gset
SELECT fuzz_generate(:round, :'tz');
SELECT fuzz_snapshot();
SELECT fuzz_refused(:round);
SET release_expired_orders.timeout_minutes = :timeout_setting;
SET release_expired_orders.batch_limit = :batch_setting;
SET release_expired_orders.chunk_size = :chunk;
SET release_expired_orders.naive_time_zone = :'tz';
SET release_expired_orders.write_notifications = :notifications;
SET TimeZone = :'session_tz';
\if :atomic
BEGIN;
CALL release_expired_orders(:t, :b) \gset
COMMIT;
\else
CALL release_expired_orders(:t, :b) \gset
\endif
RESET TimeZone;
SELECT fuzz_check(:round, :'summary'::jsonb,
				  coalesce(:b, current_setting('release_expired_orders.batch_limit')::int),
				  :'tz', current_setting('release_expired_orders.write_notifications')::boolean);
RESET release_expired_orders.timeout_minutes;
RESET release_expired_orders.batch_limit;
RESET release_expired_orders.chunk_size;
RESET release_expired_orders.naive_time_zone;
RESET release_expired_orders.write_notifications;
SELECT :round + 1 AS round, :round + 1 <= :rounds AS more \gset
\if :more
\i test/fuzz/round.sql
\endif
