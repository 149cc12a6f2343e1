-- Randomized invariant test of release_expired_orders (README: How it decides "expired", Releasing an order): the
-- functions that generate random orders and arguments and check every
-- run against the invariants.  Included by sql/security_fuzz.sql, then
-- test/fuzz/round.sql runs :rounds rounds.  All randomness comes from
-- random() after setseed(:seed), so a run is reproducible; order ids are
-- random too, so ties in created_at are broken differently every round.

-- The application's data may hold what its schema should have refused.
ALTER TABLE orders ALTER COLUMN quantity DROP NOT NULL;

-- One row per check per round; the test prints only the counts.
CREATE TABLE fuzz_results (round int, check_name text, pass boolean, detail text);

-- The state before a run.
CREATE TABLE fuzz_orders_before (LIKE orders);
CREATE TABLE fuzz_products_before (LIKE products);
CREATE TABLE fuzz_rounds_before (LIKE lottery_rounds);
CREATE TABLE fuzz_products_all (id uuid);	-- every product id ever generated
CREATE TABLE fuzz_rounds_all (id uuid);

CREATE FUNCTION fuzz_pick(VARIADIC options text[]) RETURNS text LANGUAGE sql VOLATILE AS $$
	SELECT options[1 + floor(random() * array_length(options, 1))::int]
$$;

CREATE FUNCTION fuzz_uuid() RETURNS uuid LANGUAGE sql VOLATILE AS $$
	SELECT md5(random()::text)::uuid
$$;

-- New products, rounds and orders; a few payments on older pending orders.
CREATE FUNCTION fuzz_generate(round int, tz text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	created_tz boolean := (SELECT a.atttypid = 'timestamptz'::regtype FROM pg_attribute a
						   WHERE a.attrelid = 'orders'::regclass AND a.attname = 'created_at');
	products uuid[];
	rounds uuid[];
	new_id uuid;
	age text;
	created timestamptz;
	o orders%ROWTYPE;
BEGIN
	FOR i IN 1..3 LOOP
		INSERT INTO products (id, stock)
		VALUES (fuzz_uuid(), fuzz_pick(NULL, '-2', '0', '5', '100', '100', '2147483645')::int)
		RETURNING products.id INTO new_id;
		products[i] := new_id;
		INSERT INTO fuzz_products_all VALUES (products[i]);
	END LOOP;
	FOR i IN 1..2 LOOP
		INSERT INTO lottery_rounds (id, product_id, total_shares, sold_shares, status)
		VALUES (fuzz_uuid(), products[1], 100,
				fuzz_pick(NULL, '-1', '0', '1', '3', '50', '50')::int,
				fuzz_pick('active', 'full', 'drawing'))
		RETURNING lottery_rounds.id INTO new_id;
		rounds[i] := new_id;
		INSERT INTO fuzz_rounds_all VALUES (rounds[i]);
	END LOOP;
	FOR i IN 1..50 LOOP
		o.id := fuzz_uuid();
		o.order_number := format('F%s-%s', round, i);
		o.user_id := fuzz_uuid();
		o.product_id := CASE fuzz_pick('old', 'new', 'new', 'missing', 'none')
			WHEN 'old' THEN (SELECT a.id FROM fuzz_products_all a ORDER BY a.id
							 OFFSET floor(random() * (SELECT count(*) FROM fuzz_products_all)) LIMIT 1)
			WHEN 'new' THEN products[1 + floor(random() * 3)::int]
			WHEN 'missing' THEN fuzz_uuid() END;
		o.round_id := CASE fuzz_pick('old', 'new', 'missing', 'none', 'none')
			WHEN 'old' THEN (SELECT a.id FROM fuzz_rounds_all a ORDER BY a.id
							 OFFSET floor(random() * (SELECT count(*) FROM fuzz_rounds_all)) LIMIT 1)
			WHEN 'new' THEN rounds[1 + floor(random() * 2)::int]
			WHEN 'missing' THEN fuzz_uuid() END;
		o.quantity := fuzz_pick(NULL, '-1', '0', '1', '1', '2', '3', '7')::int;
		o.status := fuzz_pick('pending', 'pending', 'pending', 'pending', 'pending', 'pending',
							  'expired', 'Pending', 'pending ', NULL);
		o.payment_status := fuzz_pick('pending', 'pending', 'pending', 'pending', 'pending', 'pending',
									  'paid', 'cancelled', NULL);
		o.fulfillment_status := fuzz_pick('pending', 'pending', 'pending', 'pending', 'pending',
										  'pending', 'pending', 'completed');
		o.notes := fuzz_pick(NULL, NULL, 'note', E'it''s "odd"\n');
		-- Ages in whole minutes plus 17 s, never on a whole-minute cutoff;
		-- many orders share one created_at.
		age := fuzz_pick(NULL, '-10', '0', '4', '29', '30', '31', '44', '59', '599', '2000', '2000',
						 '-infinity');
		-- created_at in the column's convention: wall-clock time in tz, or absolute.
		created := CASE WHEN age = '-infinity' THEN '-infinity'::timestamptz
						ELSE now() - (age::int * 60 + 17) * interval '1 second' END;
		IF created_tz THEN
			INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity,
								total_amount, status, payment_status, fulfillment_status, notes,
								created_at)
			VALUES (o.id, o.order_number, o.user_id, o.product_id, o.round_id, 'direct_buy',
					o.quantity, 1.00, o.status, o.payment_status, o.fulfillment_status, o.notes,
					created);
		ELSE
			INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity,
								total_amount, status, payment_status, fulfillment_status, notes,
								created_at)
			VALUES (o.id, o.order_number, o.user_id, o.product_id, o.round_id, 'direct_buy',
					o.quantity, 1.00, o.status, o.payment_status, o.fulfillment_status, o.notes,
					created AT TIME ZONE tz);
		END IF;
	END LOOP;
	-- Payments arrive for some older pending orders.
	UPDATE orders SET payment_status = 'paid', fulfillment_status = 'completed'
	WHERE id IN (SELECT id FROM orders WHERE payment_status = 'pending'
				 ORDER BY id OFFSET floor(random() * 20) LIMIT 3);
END $$;

-- Random arguments and settings for one run, as psql variables.
CREATE FUNCTION fuzz_args(OUT t text, OUT b text, OUT timeout_setting text, OUT batch_setting text,
						  OUT chunk text, OUT tz text, OUT session_tz text, OUT atomic boolean,
						  OUT notifications text)
LANGUAGE sql VOLATILE AS $$
	SELECT fuzz_pick('NULL', '1', '5', '30', '30', '31', '60', '600', '525600'),
		   fuzz_pick('NULL', '1', '2', '7', '20', '50', '1000000', '1000000', '1000000'),
		   fuzz_pick('30', '45'), fuzz_pick('3', '100'),
		   fuzz_pick('1', '2', '3', '5', '1000'),
		   fuzz_pick('UTC', 'Asia/Dushanbe', 'America/New_York'),
		   fuzz_pick('UTC', 'Asia/Dushanbe', 'Pacific/Kiritimati'),
		   random() < 0.3,
		   fuzz_pick('on', 'on', 'on', 'off')
$$;

CREATE FUNCTION fuzz_snapshot() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	TRUNCATE fuzz_orders_before, fuzz_products_before, fuzz_rounds_before;
	INSERT INTO fuzz_orders_before SELECT * FROM orders;
	INSERT INTO fuzz_products_before SELECT * FROM products;
	INSERT INTO fuzz_rounds_before SELECT * FROM lottery_rounds;
END $$;

-- An argument out of range: 22023 and nothing changed.
CREATE FUNCTION fuzz_refused(round int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	t int := fuzz_pick('0', '-1', '525601', '2147483647', '30', '30')::int;
	b int := CASE WHEN t = 30 THEN fuzz_pick('0', '-7', '1000001')::int ELSE 100 END;
	state text := 'no error';
	runs bigint := (SELECT count(*) FROM release_expired_orders.runs);
	summary jsonb;
BEGIN
	BEGIN
		CALL public.release_expired_orders(t, b, summary);
	EXCEPTION WHEN OTHERS THEN
		state := SQLSTATE;
	END;
	INSERT INTO fuzz_results VALUES (round, 'out-of-range argument refused with 22023',
		state = '22023' AND runs = (SELECT count(*) FROM release_expired_orders.runs),
		format('t=%s b=%s: %s', t, b, state));
END $$;

-- Record one check.
CREATE FUNCTION fuzz_assert(round int, name text, ok boolean, detail text) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO fuzz_results VALUES (round, name, coalesce(ok, false), detail)
$$;

-- Check one run against the invariants.
CREATE FUNCTION fuzz_check(round int, summary jsonb, batch int, tz text, notify boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	run_id bigint := (summary->'summary'->>'runId')::bigint;
	run release_expired_orders.runs;
	created_tz boolean := (SELECT a.atttypid = 'timestamptz'::regtype FROM pg_attribute a
						   WHERE a.attrelid = 'orders'::regclass AND a.attname = 'created_at');
	n int;
	detail text;
BEGIN
	SELECT * INTO run FROM release_expired_orders.runs r WHERE r.id = run_id;

	-- Which orders were older than the run's cutoff, in created_at's
	-- convention: wall-clock time in naive_time_zone, or absolute.
	CREATE TEMP TABLE expired ON COMMIT DROP AS
	SELECT o.id FROM fuzz_orders_before o
	WHERE CASE WHEN created_tz THEN o.created_at::timestamptz < run.cutoff
			   ELSE o.created_at::timestamp < (run.cutoff AT TIME ZONE tz) END;

	-- The orders the run had to take: all-pending, older than the cutoff,
	-- oldest first (created_at, id), at most batch_limit of them.
	-- (failed orders do not use up batch_limit: the run takes one more
	-- candidate for each)
	CREATE TEMP TABLE taken ON COMMIT DROP AS
	SELECT o.* FROM fuzz_orders_before o
	WHERE o.status = 'pending' AND o.payment_status = 'pending' AND o.fulfillment_status = 'pending'
	  AND o.id IN (SELECT id FROM expired)
	ORDER BY o.created_at, o.id
	LIMIT batch + (SELECT count(*) FROM release_expired_orders.order_events e
				   WHERE e.run_id = run.id AND e.outcome IN ('failed', 'vetoed'));
	CREATE TEMP TABLE released ON COMMIT DROP AS
	SELECT a.* FROM orders a JOIN fuzz_orders_before o USING (id)
	WHERE a.status IS DISTINCT FROM o.status;
	CREATE TEMP TABLE events ON COMMIT DROP AS
	SELECT * FROM release_expired_orders.order_events e WHERE e.run_id = run.id;

	PERFORM fuzz_assert(round, 'the round generated its 50 orders',
		(SELECT count(*) FROM orders o WHERE o.order_number LIKE 'F' || round || '-%') = 50, NULL);
	PERFORM fuzz_assert(round, 'run row closed with the summary''s outcome',
		run.outcome = summary->'summary'->>'outcome' AND run.ended_at IS NOT NULL,
		format('run %s outcome %s', run.id, run.outcome));

	-- 1. Every released order was a candidate: all-pending and older than the cutoff.
	SELECT count(*), string_agg(r.order_number, ' ') INTO n, detail
	FROM released r JOIN fuzz_orders_before o USING (id)
	WHERE NOT (o.status = 'pending' AND o.payment_status = 'pending'
			   AND o.fulfillment_status = 'pending' AND o.id IN (SELECT id FROM expired));
	PERFORM fuzz_assert(round, 'released orders were all-pending and older than the cutoff', n = 0, detail);

	-- 2. Released and failed orders are exactly the oldest candidates.
	SELECT count(*), string_agg(coalesce(t.order_number, x.order_number), ' ') INTO n, detail
	FROM taken t FULL JOIN (SELECT id, order_number FROM released
							UNION SELECT order_id, order_number FROM events WHERE outcome = 'failed') x
	  USING (id)
	WHERE t.id IS NULL OR x.id IS NULL;
	PERFORM fuzz_assert(round, 'released + failed = the oldest candidates, failures not counted in batch_limit', n = 0, detail);

	-- 3. Released orders: the three statuses, the note appended, nothing else changed.
	SELECT count(*), string_agg(r.order_number, ' ') INTO n, detail
	FROM released r JOIN fuzz_orders_before o USING (id)
	WHERE NOT (r.status = 'expired' AND r.payment_status = 'cancelled'
			   AND r.fulfillment_status = 'cancelled' AND r.updated_at IS NOT NULL
			   AND r.notes LIKE coalesce(o.notes, '') || E'\n[系统] 订单超时已过期 - %Z'
			   AND (r.order_number, r.user_id, r.product_id, r.round_id, r.quantity, r.created_at,
					r.total_amount, r.type)
				   IS NOT DISTINCT FROM
				   (o.order_number, o.user_id, o.product_id, o.round_id, o.quantity, o.created_at,
					o.total_amount, o.type));
	PERFORM fuzz_assert(round, 'released orders: statuses, note, nothing else', n = 0, detail);

	-- 4. Every other order is untouched, column for column.
	SELECT count(*), string_agg(o.order_number, ' ') INTO n, detail
	FROM fuzz_orders_before o JOIN orders a USING (id)
	WHERE a.id NOT IN (SELECT id FROM released) AND row(a.*)::text <> row(o.*)::text;
	PERFORM fuzz_assert(round, 'orders not released are untouched', n = 0, detail);
	PERFORM fuzz_assert(round, 'no order appeared or vanished',
		(SELECT count(*) FROM orders) = (SELECT count(*) FROM fuzz_orders_before), NULL);

	-- 5. No order released twice, ever; one released row per released order now.
	SELECT count(*), string_agg(order_id::text, ' ') INTO n, detail FROM (
		SELECT order_id FROM release_expired_orders.order_events WHERE outcome = 'released'
		GROUP BY order_id HAVING count(*) > 1) d;
	PERFORM fuzz_assert(round, 'no order released twice', n = 0, detail);
	PERFORM fuzz_assert(round, 'one released audit row per released order',
		(SELECT count(*) FROM events WHERE outcome = 'released') = (SELECT count(*) FROM released)
		AND NOT EXISTS (SELECT FROM released r WHERE NOT EXISTS
						(SELECT FROM events e WHERE e.order_id = r.id AND e.outcome = 'released')),
		NULL);

	-- 6. Failed orders: audited with their SQLSTATE, still pending.
	SELECT count(*), string_agg(e.order_number, ' ') INTO n, detail
	FROM events e JOIN orders a ON a.id = e.order_id
	WHERE e.outcome = 'failed' AND (e.sqlstate IS NULL OR a.status <> 'pending');
	PERFORM fuzz_assert(round, 'failed orders audited and still pending', n = 0, detail);

	-- 7. Stock: each product moved by exactly the quantities (> 0) of its
	-- released orders, which are the audited stock deltas.
	SELECT count(*), string_agg(p.id::text, ' ') INTO n, detail
	FROM fuzz_products_before p JOIN products a USING (id)
	LEFT JOIN LATERAL (SELECT coalesce(sum(r.quantity) FILTER (WHERE r.quantity > 0), 0) AS q
					   FROM released r WHERE r.product_id = p.id) rq ON true
	LEFT JOIN LATERAL (SELECT coalesce(sum(e.stock_delta), 0) AS d
					   FROM events e WHERE e.product_id = p.id AND e.outcome NOT IN ('failed', 'vetoed')) ev ON true
	WHERE rq.q <> ev.d
	   OR a.stock IS DISTINCT FROM CASE WHEN rq.q = 0 THEN p.stock ELSE coalesce(p.stock, 0) + rq.q END;
	PERFORM fuzz_assert(round, 'stock moved by exactly the released quantities', n = 0, detail);

	-- 8. Shares: a round with sold_shares > 0 drops by the released
	-- quantities, not below 0, and the audited share deltas add up to the
	-- change; any other round is untouched.
	SELECT count(*), string_agg(lr.id::text, ' ') INTO n, detail
	FROM fuzz_rounds_before lr JOIN lottery_rounds a USING (id)
	LEFT JOIN LATERAL (SELECT coalesce(sum(r.quantity) FILTER (WHERE r.quantity > 0), 0) AS q
					   FROM released r WHERE r.round_id = lr.id) rq ON true
	LEFT JOIN LATERAL (SELECT coalesce(sum(e.shares_delta), 0) AS d
					   FROM events e WHERE e.round_id = lr.id AND e.outcome NOT IN ('failed', 'vetoed')) ev ON true
	WHERE a.sold_shares IS DISTINCT FROM
			CASE WHEN coalesce(lr.sold_shares, 0) <= 0 OR rq.q = 0 THEN lr.sold_shares
				 ELSE greatest(0, lr.sold_shares - rq.q) END
	   OR ev.d <> coalesce(a.sold_shares - lr.sold_shares, 0)
	   OR a.status IS DISTINCT FROM lr.status;
	PERFORM fuzz_assert(round, 'shares moved by exactly the audited deltas, clamped at 0', n = 0, detail);

	-- 9. Anomalies: product_not_found / round_not_found exactly for the
	-- released orders (quantity > 0) whose product or round does not exist.
	SELECT count(*) INTO n FROM (
		(SELECT r.id, 'product_not_found' FROM released r
		 WHERE r.quantity > 0 AND r.product_id IS NOT NULL
		   AND NOT EXISTS (SELECT FROM products p WHERE p.id = r.product_id)
		 UNION ALL
		 SELECT r.id, 'round_not_found' FROM released r
		 WHERE r.quantity > 0 AND r.round_id IS NOT NULL
		   AND NOT EXISTS (SELECT FROM lottery_rounds x WHERE x.id = r.round_id))
		EXCEPT ALL
		SELECT order_id, outcome FROM events WHERE outcome IN ('product_not_found', 'round_not_found')
	) d;
	PERFORM fuzz_assert(round, 'missing products and rounds audited', n = 0
		AND (SELECT count(*) FROM events WHERE outcome IN ('product_not_found', 'round_not_found'))
			= (SELECT count(*) FROM released r
			   WHERE r.quantity > 0 AND r.product_id IS NOT NULL
				 AND NOT EXISTS (SELECT FROM products p WHERE p.id = r.product_id))
			  + (SELECT count(*) FROM released r
				 WHERE r.quantity > 0 AND r.round_id IS NOT NULL
				   AND NOT EXISTS (SELECT FROM lottery_rounds x WHERE x.id = r.round_id)),
		NULL);

	-- 10. The summary and the run row agree with what happened.
	PERFORM fuzz_assert(round, 'summary and run row count what happened',
		(summary->'summary'->>'totalFound')::int = (SELECT count(*) FROM taken)
		AND (summary->'summary'->>'successful')::int = (SELECT count(*) FROM released)
		AND (summary->'summary'->>'failed')::int = (SELECT count(*) FROM events WHERE outcome = 'failed')
		AND run.found = (SELECT count(*) FROM taken)
		AND run.released = (SELECT count(*) FROM released)
		AND run.failed = (SELECT count(*) FROM events WHERE outcome = 'failed'),
		format('summary %s/%s/%s, run %s/%s/%s, taken %s, released %s',
			   summary->'summary'->>'totalFound', summary->'summary'->>'successful',
			   summary->'summary'->>'failed', run.found, run.released, run.failed,
			   (SELECT count(*) FROM taken), (SELECT count(*) FROM released)));

	-- 11. One notification per released order when they are on, none when off.
	PERFORM fuzz_assert(round, 'one notification per released order',
		(SELECT count(*) FROM notifications n JOIN released r
		   ON n.content = '过期订单清理: order_released_successfully - 订单: ' || r.id)
		= CASE WHEN notify THEN (SELECT count(*) FROM released) ELSE 0 END,
		NULL);
END $$;
