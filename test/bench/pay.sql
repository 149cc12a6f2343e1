-- A payment confirmation, as the application runs it, on a recent
-- pending order: one the job is not releasing.  Late payments, on orders
-- the job is releasing, are pay_late.sql (run.sh gives them a tenth of the
-- payments), so that the two are measured apart.
\set k 100 * random(0, :norders / 100 - 1) + random(1, 2)
UPDATE public.orders SET payment_status = 'paid', fulfillment_status = 'completed',
	updated_at = now() AT TIME ZONE 'UTC'
WHERE id = md5('o' || :k)::uuid AND payment_status = 'pending';
