-- The job, as pg_cron runs it but far more often: a committing CALL in
-- chunks (chunk_size comes from PGOPTIONS), with a 30 minute timeout.
CALL release_expired_orders(30, 200);
\sleep 100 ms
