-- A payment confirmation, as the application runs it (SPEC 2): nine in ten
-- on a recent pending order, one in ten a late payment on an expired order
-- (one the job is releasing, so it may have to wait for the job's chunk).
\set late random(1, 10)
\if :late = 1
\set k 10 * random(1, :norders / 10)
\else
\set k 100 * random(0, :norders / 100 - 1) + random(1, 2)
\endif
UPDATE public.orders SET payment_status = 'paid', fulfillment_status = 'completed',
	updated_at = now() AT TIME ZONE 'UTC'
WHERE id = md5('o' || :k)::uuid AND payment_status = 'pending';
