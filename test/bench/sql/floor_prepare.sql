-- (3)/(6) The floor: one hand-written set-based statement doing exactly the
-- extension's writes (orders, products, rounds, one audit row and one
-- notification per order).  EXECUTE floor_release(timeout_minutes, limit).
PREPARE floor_release(integer, integer) AS
WITH c AS MATERIALIZED (
	SELECT o.id FROM public.orders o
	WHERE o.status = 'pending' AND o.payment_status = 'pending'
	  AND o.fulfillment_status = 'pending'
	  AND o.created_at < (now() AT TIME ZONE 'UTC') - make_interval(mins => $1)
	ORDER BY o.created_at, o.id LIMIT $2
	FOR UPDATE SKIP LOCKED),
released AS (
	UPDATE public.orders o SET status = 'expired', payment_status = 'cancelled',
		fulfillment_status = 'cancelled', updated_at = now() AT TIME ZONE 'UTC',
		notes = coalesce(o.notes, '') || E'\n[系统] 订单超时已过期 - '
			|| to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
	FROM c WHERE o.id = c.id AND o.status = 'pending'
	  AND o.payment_status = 'pending' AND o.fulfillment_status = 'pending'
	RETURNING o.id, o.order_number, o.user_id, o.product_id, o.round_id, o.quantity),
p AS (
	UPDATE public.products p SET stock = p.stock + d.q, updated_at = now() AT TIME ZONE 'UTC'
	FROM (SELECT product_id, sum(quantity)::integer AS q FROM released
		  WHERE product_id IS NOT NULL AND quantity > 0 GROUP BY product_id) d
	WHERE p.id = d.product_id),
r AS (
	UPDATE public.lottery_rounds r SET sold_shares = greatest(0, r.sold_shares - d.q),
		updated_at = now() AT TIME ZONE 'UTC'
	FROM (SELECT round_id, sum(quantity)::integer AS q FROM released
		  WHERE round_id IS NOT NULL AND quantity > 0 GROUP BY round_id) d
	WHERE r.id = d.round_id),
e AS (
	INSERT INTO release_expired_orders.order_events (order_id, order_number, user_id,
		product_id, round_id, quantity, outcome, prev_status, prev_payment_status,
		prev_fulfillment_status, stock_delta, shares_delta)
	SELECT id, order_number, user_id, product_id, round_id, quantity, 'released',
		'pending', 'pending', 'pending',
		CASE WHEN product_id IS NOT NULL AND quantity > 0 THEN quantity ELSE 0 END,
		CASE WHEN round_id IS NOT NULL AND quantity > 0 THEN -quantity ELSE 0 END
	FROM released),
n AS (
	INSERT INTO public.notifications (id, user_id, type, content, status, sent_at, created_at)
	SELECT gen_random_uuid(), user_id, 'system_audit',
		'过期订单清理: order_released_successfully - 订单: ' || id, 'sent',
		now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
	FROM released)
SELECT count(*) FROM released;
