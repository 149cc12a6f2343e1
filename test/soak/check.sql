-- The invariants, one row each: what was checked and how many violations.
SELECT 'products: initial stock = stock + quantity of non-expired orders' AS invariant,
	count(*) AS checked,
	count(*) FILTER (WHERE s.initial_stock <> p.stock + coalesce(x.qty, 0)) AS violations
  FROM soak_products s JOIN products p ON p.id = s.product_id
  LEFT JOIN (SELECT product_id, sum(quantity) AS qty FROM orders
              WHERE status <> 'expired' GROUP BY product_id) x ON x.product_id = s.product_id
UNION ALL
SELECT 'rounds: sold_shares = greatest(0, initial + quantity of non-expired orders)',
	count(*),
	count(*) FILTER (WHERE r.sold_shares <> greatest(0, s.initial_sold + coalesce(x.qty, 0)))
  FROM soak_products s JOIN lottery_rounds r ON r.id = s.round_id
  LEFT JOIN (SELECT round_id, sum(quantity) AS qty FROM orders
              WHERE status <> 'expired' GROUP BY round_id) x ON x.round_id = s.round_id
UNION ALL
SELECT 'payment windows: no order released before its deadline (direct buys 29 min, others 30)',
	count(*),
	count(*) FILTER (WHERE e.created_at < (o.created_at AT TIME ZONE 'UTC')
	                   + CASE o.type WHEN 'direct_buy' THEN interval '29 minutes' ELSE interval '30 minutes' END)
  FROM orders o JOIN release_expired_orders.order_events e ON e.order_id = o.id AND e.outcome = 'released'
UNION ALL
SELECT 'payment windows: direct buys released before the 30 minutes of the CALL (the window applied)',
	count(*), CASE WHEN count(*) = 0 THEN 1 ELSE 0 END
  FROM orders o JOIN release_expired_orders.order_events e ON e.order_id = o.id AND e.outcome = 'released'
 WHERE o.type = 'direct_buy' AND e.created_at < (o.created_at AT TIME ZONE 'UTC') + interval '30 minutes'
UNION ALL
SELECT 'orders: never both paid and expired', count(*),
	count(*) FILTER (WHERE payment_status = 'paid' AND status = 'expired')
  FROM orders
UNION ALL
SELECT 'orders: expired exactly when cancelled (no half release)', count(*),
	count(*) FILTER (WHERE (status = 'expired') <> (payment_status = 'cancelled'
	                    AND fulfillment_status = 'cancelled'))
  FROM orders
UNION ALL
SELECT 'expired orders: exactly one released audit row', count(*),
	count(*) FILTER (WHERE coalesce(e.n, 0) <> 1)
  FROM orders o LEFT JOIN (SELECT order_id, count(*) AS n
                             FROM release_expired_orders.order_events
                            WHERE outcome = 'released' GROUP BY order_id) e ON e.order_id = o.id
 WHERE o.status = 'expired'
UNION ALL
SELECT 'released audit rows: only for expired orders', count(*),
	count(*) FILTER (WHERE o.status IS DISTINCT FROM 'expired')
  FROM release_expired_orders.order_events e LEFT JOIN orders o ON o.id = e.order_id
 WHERE e.outcome = 'released'
UNION ALL
SELECT 'payments that succeeded: order paid, not expired', count(*),
	count(*) FILTER (WHERE o.payment_status IS DISTINCT FROM 'paid' OR o.status = 'expired')
  FROM soak_payments sp LEFT JOIN orders o ON o.id = sp.order_id
 WHERE sp.paid
UNION ALL
-- (later in time, not by run id: a run that started earlier may release it)
SELECT 'failed orders: rolled back, then pending or released later',
	count(*),
	count(*) FILTER (WHERE NOT (o.status = 'pending' OR EXISTS (
		SELECT FROM release_expired_orders.order_events r
		 WHERE r.order_id = f.order_id AND r.outcome = 'released' AND r.id > f.id)))
  FROM release_expired_orders.order_events f JOIN orders o ON o.id = f.order_id
 WHERE f.outcome IN ('failed', 'vetoed')
UNION ALL
SELECT 'orders the application refuses to cancel: never expired', count(*),
	count(*) FILTER (WHERE status = 'expired')
  FROM orders WHERE notes LIKE 'soak-%'
UNION ALL
SELECT 'refused orders: audited failed (raise, deferred) or vetoed, never released', count(*),
	count(*) FILTER (WHERE e.outcome IS DISTINCT FROM CASE o.notes WHEN 'soak-veto' THEN 'vetoed' ELSE 'failed' END)
  FROM orders o JOIN release_expired_orders.order_events e ON e.order_id = o.id
 WHERE o.notes LIKE 'soak-%' AND e.outcome IN ('released', 'failed', 'vetoed')
   AND coalesce(e.sqlstate, '') NOT IN ('55P03', '40P01', '40001')
UNION ALL
SELECT 'after the last run: no order the application lets go is left expired and pending',
	count(*),
	count(*) FILTER (WHERE o.status = 'pending' AND o.payment_status = 'pending'
	                   AND o.fulfillment_status = 'pending' AND o.notes IS NULL
	                   AND o.created_at < (now() AT TIME ZONE 'UTC') - interval '31 minutes')
  FROM orders o
UNION ALL
SELECT 'runs: released counts add up to the expired orders', count(*),
	CASE WHEN coalesce(sum(released), 0) =
	          (SELECT count(*) FROM orders WHERE status = 'expired') THEN 0 ELSE 1 END
  FROM release_expired_orders.runs
UNION ALL
SELECT 'runs: none failed as a whole or left running', count(*),
	count(*) FILTER (WHERE outcome NOT IN ('success', 'partial'))
  FROM release_expired_orders.runs
UNION ALL
SELECT 'rounds: no shares clamped at 0 (no round went below 0)', count(*),
	count(*) FILTER (WHERE outcome = 'shares_clamped')
  FROM release_expired_orders.order_events;
