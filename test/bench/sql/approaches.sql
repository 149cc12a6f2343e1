-- The comparison approaches, installed into the benchmark template.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench;

-- (2) A per-order PL/pgSQL loop doing the extension's writes: the order,
-- the product (atomic increment), the round (greatest(0, ...)), the audit
-- row and the application's notification, one order at a time; candidates
-- taken oldest first FOR UPDATE SKIP LOCKED, committing every chunk orders
-- like the extension does.
CREATE OR REPLACE PROCEDURE bench.plpgsql_release(timeout_minutes integer,
	batch_limit integer, chunk integer DEFAULT 1000)
LANGUAGE plpgsql AS $$
DECLARE
	o record;
	done integer := 0;
	n integer;
	wanted integer;
	ts timestamp(3);
	note text;
	cutoff timestamp := (now() AT TIME ZONE 'UTC') - make_interval(mins => timeout_minutes);
BEGIN
	LOOP
		wanted := least(chunk, batch_limit - done);
		EXIT WHEN wanted <= 0;
		ts := now() AT TIME ZONE 'UTC';
		note := E'\n[系统] 订单超时已过期 - ' || to_char(ts, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
		n := 0;
		FOR o IN
			SELECT c.id, c.order_number, c.user_id, c.product_id, c.round_id, c.quantity
			FROM public.orders c
			WHERE c.status = 'pending' AND c.payment_status = 'pending'
			  AND c.fulfillment_status = 'pending' AND c.created_at < cutoff
			ORDER BY c.created_at, c.id LIMIT wanted
			FOR UPDATE SKIP LOCKED
		LOOP
			n := n + 1;
			UPDATE public.orders SET status = 'expired', payment_status = 'cancelled',
				fulfillment_status = 'cancelled', updated_at = ts,
				notes = coalesce(notes, '') || note
			WHERE id = o.id AND status = 'pending' AND payment_status = 'pending'
			  AND fulfillment_status = 'pending';
			CONTINUE WHEN NOT FOUND;
			IF o.product_id IS NOT NULL AND o.quantity > 0 THEN
				UPDATE public.products SET stock = stock + o.quantity, updated_at = ts
				WHERE id = o.product_id;
			END IF;
			IF o.round_id IS NOT NULL AND o.quantity > 0 THEN
				UPDATE public.lottery_rounds
				SET sold_shares = greatest(0, sold_shares - o.quantity), updated_at = ts
				WHERE id = o.round_id;
			END IF;
			INSERT INTO release_expired_orders.order_events (order_id, order_number,
				user_id, product_id, round_id, quantity, outcome, prev_status,
				prev_payment_status, prev_fulfillment_status, stock_delta, shares_delta)
			VALUES (o.id, o.order_number, o.user_id, o.product_id, o.round_id, o.quantity,
				'released', 'pending', 'pending', 'pending',
				CASE WHEN o.product_id IS NOT NULL AND o.quantity > 0 THEN o.quantity ELSE 0 END,
				CASE WHEN o.round_id IS NOT NULL AND o.quantity > 0 THEN -o.quantity ELSE 0 END);
			INSERT INTO public.notifications (id, user_id, type, content, status, sent_at, created_at)
			VALUES (gen_random_uuid(), o.user_id, 'system_audit',
				'过期订单清理: order_released_successfully - 订单: ' || o.id, 'sent', ts, ts);
		END LOOP;
		done := done + n;
		COMMIT;
		EXIT WHEN n < wanted;
	END LOOP;
END $$;
