-- A purchase (the application's): take the stock and, for a lottery order,
-- the shares, then insert the pending order.  created_at lies 29 to 31
-- minutes in the past, so with a 30 minute timeout orders keep expiring
-- while payments race for them.  One order in ten is a direct buy without a round;
-- one in 100 each is one the application refuses to cancel (see run.sh).
\set n random(1, :products)
\set q random(1, 3)
\set kind random(1, 10)
\set age random(1740, 1860)
\set bad random(1, 100)
BEGIN;
UPDATE products SET stock = stock - :q
 WHERE id = (SELECT product_id FROM soak_products WHERE n = :n);
UPDATE lottery_rounds SET sold_shares = sold_shares + :q
 WHERE :kind > 1 AND id = (SELECT round_id FROM soak_products WHERE n = :n);
INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity,
	total_amount, notes, created_at)
SELECT gen_random_uuid(), 'S' || nextval('soak_order_number'), gen_random_uuid(),
	product_id, CASE WHEN :kind > 1 THEN round_id END,
	CASE WHEN :kind > 1 THEN 'lottery_win' ELSE 'direct_buy' END, :q, 10.00 * :q,
	CASE CAST(:bad AS integer) WHEN 1 THEN 'soak-poison' WHEN 2 THEN 'soak-veto' WHEN 3 THEN 'soak-deferred' END,
	(now() AT TIME ZONE 'UTC') - make_interval(secs => :age)
  FROM soak_products WHERE n = :n;
END;
