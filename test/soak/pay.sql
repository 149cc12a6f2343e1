-- A payment confirmation for one of the oldest unpaid orders, the ones the
-- job is about to release, with the application's statement; 0 rows is
-- "too late" and is counted in soak_payments.  The transaction stays open
-- a moment after the update, as an application's would, so that the job
-- meets order rows it must skip.
\set k random(0, 10)
SELECT coalesce((SELECT id FROM orders
                  WHERE status = 'pending' AND payment_status = 'pending'
                    AND fulfillment_status = 'pending'
                  ORDER BY created_at, id OFFSET :k LIMIT 1),
                '00000000-0000-0000-0000-000000000000') AS order_id \gset
BEGIN;
WITH paid AS (
	UPDATE orders SET payment_status = 'paid', fulfillment_status = 'completed'
	 WHERE id = :order_id AND payment_status = 'pending'
	RETURNING id)
INSERT INTO soak_payments (order_id, paid) SELECT :order_id, count(*) = 1 FROM paid;
\sleep 5 ms
END;
