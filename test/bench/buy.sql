-- A purchase of a popular product and round share (skewed like the data):
-- stock down, shares up, a new pending order.
\set j random_exponential(1, 10000, 5.0)
\set r random_exponential(1, 2000, 5.0)
BEGIN;
UPDATE public.products SET stock = stock - 1, updated_at = now() AT TIME ZONE 'UTC'
WHERE id = md5('p' || :j)::uuid;
UPDATE public.lottery_rounds SET sold_shares = sold_shares + 1, updated_at = now() AT TIME ZONE 'UTC'
WHERE id = md5('r' || :r)::uuid;
INSERT INTO public.orders (id, order_number, user_id, product_id, round_id, type, quantity,
	total_amount, created_at, updated_at)
VALUES (gen_random_uuid(), gen_random_uuid()::text, md5('u' || :client_id)::uuid,
	md5('p' || :j)::uuid, md5('r' || :r)::uuid, 'lottery_win', 1, 10.00,
	now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC');
COMMIT;
