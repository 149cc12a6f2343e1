-- (1) Generates the old design's statement sequence for the oldest :sample
-- expired orders, as a psql script: per order the statements its HTTP calls
-- made, each its own transaction (autocommit), stock and shares read by the
-- client and written back (read-then-write), one notification per step.
-- Run on the copy before timing; the output is fed to one psql connection.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SELECT '\set ON_ERROR_STOP 1';
-- The old function's first call: the list of expired orders.
SELECT format($f$SELECT id, order_number, user_id, product_id, round_id, quantity FROM public.orders WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending' AND created_at < (now() AT TIME ZONE 'UTC') - interval '%s minutes' ORDER BY created_at LIMIT %s \g /dev/null$f$, :timeout, :sample);
SELECT concat_ws(E'\n',
	format($f$SELECT status, payment_status, quantity FROM public.orders WHERE id = %L \gset o_$f$, id),
	format($f$UPDATE public.orders SET status = 'expired', payment_status = 'cancelled', fulfillment_status = 'cancelled', updated_at = now() AT TIME ZONE 'UTC', notes = coalesce(notes, '') || E'\n[系统] 订单超时已过期 - ' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') WHERE id = %L;$f$, id),
	format($f$INSERT INTO public.notifications (id, user_id, type, content, status, sent_at, created_at) VALUES (gen_random_uuid(), '00000000-0000-0000-0000-000000000000', 'system_audit', '过期订单清理: order_status_updated - 订单: %s', 'sent', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC');$f$, id),
	CASE WHEN product_id IS NOT NULL AND quantity > 0 THEN concat_ws(E'\n',
		format($f$SELECT stock FROM public.products WHERE id = %L \gset p_$f$, product_id),
		format($f$UPDATE public.products SET stock = :p_stock + %s, updated_at = now() AT TIME ZONE 'UTC' WHERE id = %L;$f$, quantity, product_id),
		format($f$INSERT INTO public.notifications (id, user_id, type, content, status, sent_at, created_at) VALUES (gen_random_uuid(), '00000000-0000-0000-0000-000000000000', 'system_audit', '过期订单清理: stock_restored - 订单: %s', 'sent', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC');$f$, id)) END,
	CASE WHEN round_id IS NOT NULL AND quantity > 0 THEN concat_ws(E'\n',
		format($f$SELECT sold_shares FROM public.lottery_rounds WHERE id = %L \gset r_$f$, round_id),
		format($f$UPDATE public.lottery_rounds SET sold_shares = greatest(0, :r_sold_shares - %s), updated_at = now() AT TIME ZONE 'UTC' WHERE id = %L;$f$, quantity, round_id),
		format($f$INSERT INTO public.notifications (id, user_id, type, content, status, sent_at, created_at) VALUES (gen_random_uuid(), '00000000-0000-0000-0000-000000000000', 'system_audit', '过期订单清理: shares_restored - 订单: %s', 'sent', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC');$f$, id)) END,
	format($f$INSERT INTO public.notifications (id, user_id, type, content, status, sent_at, created_at) VALUES (gen_random_uuid(), %L, 'system_audit', '过期订单清理: order_released_successfully - 订单: %s', 'sent', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC');$f$, user_id, id))
FROM (SELECT * FROM public.orders
	  WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending'
	    AND created_at < (now() AT TIME ZONE 'UTC') - make_interval(mins => :timeout)
	  ORDER BY created_at, id LIMIT :sample) s
ORDER BY created_at, id;
