-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION release_expired_orders UPDATE TO '1.2'" to load this file. \quit

-- Upgrade from 1.1, written by hand: only what 1.2 changes.  It never
-- revokes a privilege: the grants an operator gave on the extension's
-- objects stay as they are (sql/upgrade.sql checks it).
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- purge_history() decides by its caller's current user and by the exact
-- time it deletes up to, and deletes as the extension's owner: in C, run
-- as its caller (CREATE OR REPLACE keeps its grants and comment).
CREATE OR REPLACE FUNCTION release_expired_orders.purge_history(older_than interval DEFAULT NULL)
RETURNS bigint LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'reo_purge_history';

-- The backend restoring pg_dump output into this database, recorded by the
-- install script in a restore: no release while it restores.  Not dumped.
CREATE TABLE release_expired_orders.restores (
	backend_pid integer NOT NULL,
	backend_start timestamptz NOT NULL,
	login_role oid NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE release_expired_orders.restores IS
	'The backend restoring pg_dump output into this database: no release while it restores';

-- The pid of a backend restoring pg_dump output into this database, or
-- NULL: while there is one, nothing is released (see restores).
CREATE FUNCTION release_expired_orders.restoring_backend()
RETURNS integer LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'reo_restoring_backend';

-- The end of a restore that did not load the data (a schema-only dump, a
-- restore abandoned halfway), or of a CREATE EXTENSION taken for a
-- restore: forget it, and give the history's sequence its position back.
CREATE FUNCTION release_expired_orders.restore_finished()
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM release_expired_orders.restores;
	IF (SELECT s.last_value FROM release_expired_orders.runs_id_seq s) = 9223372036854775000 THEN
		PERFORM pg_catalog.setval('release_expired_orders.runs_id_seq',
			coalesce((SELECT max(r.id) FROM release_expired_orders.runs r), 1),
			EXISTS (SELECT FROM release_expired_orders.runs));
	END IF;
END
$$;
REVOKE ALL ON FUNCTION release_expired_orders.restore_finished() FROM PUBLIC;

-- The metrics view: an order whose created_at is -infinity no longer makes
-- oldest_overdue_seconds fail.
-- Numbers for dashboards (SPEC 14): one row per metric, with its
-- Prometheus type and help, for sql_exporter or postgres_exporter's custom
-- queries.  oldest_overdue_seconds is the one to alert on.  Totals are over
-- the history kept (history_retention).  It reads the run rows and one
-- index probe per order type, so it is cheap enough to scrape every 15 s.
CREATE OR REPLACE VIEW release_expired_orders.metrics AS
WITH totals AS (
	SELECT pg_catalog.count(*) AS runs,
		   pg_catalog.count(*) FILTER (WHERE r.outcome IN ('failed', 'interrupted')) AS failed_runs,
		   COALESCE(pg_catalog.sum(r.released), 0) AS released,
		   COALESCE(pg_catalog.sum(r.failed), 0) AS failed,
		   COALESCE(pg_catalog.sum(r.vetoed), 0) AS vetoed,
		   pg_catalog.max(r.ended_at) FILTER (WHERE r.outcome IN ('success', 'partial')) AS last_success
	FROM release_expired_orders.runs r),
last_run AS (
	SELECT (SELECT r.duration_ms FROM release_expired_orders.runs r
			WHERE r.outcome <> 'running' ORDER BY r.id DESC LIMIT 1) AS duration_ms),
due AS (SELECT release_expired_orders.oldest_deadline() AS oldest),
-- the deadline worker serving this database, if one is configured for it
worker AS (
	SELECT pg_catalog.count(*) > 0 AS configured, pg_catalog.max(w.pid) AS pid,
		   pg_catalog.max(w.last_lag_ms) AS lag_ms
	FROM release_expired_orders.worker_status() w
	WHERE w.database = pg_catalog.current_database())
SELECT m.metric, m.value, m.type, m.help
FROM totals t, last_run l, due d, worker w
CROSS JOIN LATERAL (VALUES
	-- by epochs: an order created at -infinity is overdue without end
	('oldest_overdue_seconds',
	 COALESCE(GREATEST(0, pg_catalog.date_part('epoch', pg_catalog.now())
						  - pg_catalog.date_part('epoch', d.oldest)), 0),
	 'gauge', 'How long the oldest order still pending is past its deadline (0: none is overdue)'),
	('seconds_since_last_success', pg_catalog.date_part('epoch', pg_catalog.now() - t.last_success),
	 'gauge', 'Seconds since the last run that finished (success or partial); NULL: none kept'),
	('released_total', t.released::double precision, 'counter', 'Orders released by the runs kept'),
	('failed_total', t.failed::double precision, 'counter', 'Orders that failed to be released, by the runs kept'),
	('vetoed_total', t.vetoed::double precision, 'counter', 'Orders the application vetoed, by the runs kept'),
	('runs_total', t.runs::double precision, 'counter', 'Runs kept'),
	('failed_runs_total', t.failed_runs::double precision, 'counter', 'Runs kept that failed or were interrupted'),
	('last_run_duration_seconds', l.duration_ms / 1000, 'gauge', 'Duration of the last finished run'),
	('worker_running', CASE WHEN w.configured THEN (w.pid IS NOT NULL)::integer END::double precision,
	 'gauge', 'Whether the deadline worker serving this database runs (1) or not (0); NULL: none configured'),
	('worker_lag_seconds', w.lag_ms / 1000, 'gauge',
	 'How late after the deadline it slept for the worker last woke; NULL: no worker or no such wake')
) m (metric, value, type, help);

-- restore_order(): undoes what the release really moved whatever its sign
-- (a trigger of the application may have moved a counter the wrong way),
-- and audits what the undo really moved, read after the application's
-- triggers.
CREATE OR REPLACE FUNCTION release_expired_orders.restore_order(
	order_id uuid,
	OUT order_number varchar, OUT status varchar, OUT payment_status varchar,
	OUT fulfillment_status varchar, OUT stock_taken integer, OUT shares_counted integer)
LANGUAGE plpgsql
AS $$
DECLARE
	caller_path pg_catalog.text := pg_catalog.current_setting('search_path');
	pinned pg_catalog.text := pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
	app pg_catalog.text;
	zone pg_catalog.text;
	ev release_expired_orders.order_events;
	cur_status pg_catalog.varchar;
	cur_payment pg_catalog.varchar;
	cur_fulfillment pg_catalog.varchar;
	stock pg_catalog.int4;
	rnd_status pg_catalog.varchar;
	rnd_sold pg_catalog.int4;
	rnd_total pg_catalog.int4;
	note pg_catalog.text;
	orders_now pg_catalog.text;
	products_now pg_catalog.text;
	rounds_now pg_catalog.text;
	moves_stock pg_catalog.bool;
	moves_shares pg_catalog.bool;
	stock_after pg_catalog.int4;
	sold_after pg_catalog.int4;
	moved_stock pg_catalog.int4 := 0;
	moved_shares pg_catalog.int4 := 0;
	n pg_catalog.int8;
BEGIN
	app := release_expired_orders.setting('app_schema');
	zone := release_expired_orders.setting('naive_time_zone');
	IF order_id IS NULL THEN
		RAISE EXCEPTION 'order_id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;

	-- The order row first: a second restore of the same order waits here
	-- and then sees the first one's audit row.
	EXECUTE pg_catalog.format(
		'SELECT o.status, o.payment_status, o.fulfillment_status FROM %I.orders o'
		' WHERE o.id = $1 FOR UPDATE OF o', app)
		INTO cur_status, cur_payment, cur_fulfillment USING order_id;
	GET DIAGNOSTICS n = ROW_COUNT;	-- EXECUTE does not set FOUND
	IF n = 0 THEN
		RAISE EXCEPTION 'order % does not exist', order_id
			USING ERRCODE = 'no_data_found',
				  HINT = pg_catalog.format('release_expired_orders.app_schema is %L.', app);
	END IF;

	SELECT e.* INTO ev FROM release_expired_orders.order_events e
	WHERE e.order_id = restore_order.order_id AND e.outcome IN ('released', 'restored')
	ORDER BY e.id DESC LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'order % was not released by release_expired_orders', order_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Only a release recorded in release_expired_orders.order_events can be undone (history older than release_expired_orders.history_retention is purged).';
	END IF;
	IF ev.outcome = 'restored' THEN
		RAISE EXCEPTION 'order % was already restored', order_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'Its latest audit row is a restore; a release can be undone once.';
	END IF;
	-- What the release really moved: its released row's deltas with the
	-- corrections the job appended in the same run (a missing, clamped or
	-- skipped counter), never more.
	SELECT pg_catalog.sum(e.stock_delta), pg_catalog.sum(e.shares_delta)
	INTO ev.stock_delta, ev.shares_delta
	FROM release_expired_orders.order_events e
	WHERE e.order_id = restore_order.order_id AND e.run_id = ev.run_id
	  AND e.outcome IN ('released', 'product_not_found', 'round_not_found',
						'shares_clamped', 'stock_skipped', 'shares_skipped');
	IF cur_status IS DISTINCT FROM 'expired' OR cur_payment IS DISTINCT FROM 'cancelled'
	   OR cur_fulfillment IS DISTINCT FROM 'cancelled' THEN
		RAISE EXCEPTION 'order % is no longer as the release left it', order_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = pg_catalog.format('Its statuses are %s/%s/%s, not expired/cancelled/cancelled.',
					cur_status, cur_payment, cur_fulfillment),
				  HINT = 'Something changed the order after it was released; restore it by hand if at all.';
	END IF;

	-- Then the product: the stock returned by the release must still be
	-- there to be taken again (a release that took stock, through a trigger
	-- of the application, gets it back).
	IF ev.stock_delta <> 0 THEN
		EXECUTE pg_catalog.format('SELECT p.stock FROM %I.products p WHERE p.id = $1 FOR UPDATE OF p', app)
			INTO stock USING ev.product_id;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n = 0 THEN
			RAISE EXCEPTION 'cannot restore order %: product % no longer exists', order_id, ev.product_id
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
		IF ev.stock_delta > 0 AND (stock IS NULL OR stock < ev.stock_delta) THEN
			RAISE EXCEPTION 'cannot restore order %: product % has % in stock, % needed',
				order_id, ev.product_id, coalesce(stock, 0), ev.stock_delta
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  HINT = 'The stock the release returned was sold again; nothing was changed.';
		END IF;
	END IF;

	-- Then the round: the shares given back must still be free in an
	-- active round.
	IF ev.shares_delta <> 0 THEN
		EXECUTE pg_catalog.format(
			'SELECT r.status, r.sold_shares, r.total_shares FROM %I.lottery_rounds r'
			' WHERE r.id = $1 FOR UPDATE OF r', app)
			INTO rnd_status, rnd_sold, rnd_total USING ev.round_id;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n = 0 THEN
			RAISE EXCEPTION 'cannot restore order %: lottery round % no longer exists', order_id, ev.round_id
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
		IF ev.shares_delta < 0 AND rnd_status IS DISTINCT FROM 'active' THEN
			RAISE EXCEPTION 'cannot restore order %: lottery round % is %, not active',
				order_id, ev.round_id, coalesce(rnd_status, 'NULL')
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  HINT = 'Shares can be counted again only in an active round; nothing was changed.';
		END IF;
		IF ev.shares_delta < 0 AND coalesce(rnd_sold, 0) - ev.shares_delta > rnd_total THEN
			RAISE EXCEPTION 'cannot restore order %: lottery round % has % of % shares sold, no room for % more',
				order_id, ev.round_id, coalesce(rnd_sold, 0), rnd_total,
				pg_catalog.abs(ev.shares_delta)
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  HINT = 'The shares the release gave back were sold again; nothing was changed.';
		END IF;
	END IF;

	-- This script is ASCII (see its top), so the note's Chinese text
	-- ("system: order restored") is written with Unicode escapes.
	note := pg_catalog.format(E'\n[\u7cfb\u7edf] \u8ba2\u5355\u5df2\u6062\u590d - %s',
		pg_catalog.to_char(pg_catalog.timezone('UTC', pg_catalog.now()), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
	moves_stock := ev.stock_delta <> 0;
	moves_shares := ev.shares_delta <> 0;
	orders_now := release_expired_orders.now_in(release_expired_orders.app_column_is_tz(app, 'orders', 'updated_at'), zone);
	IF moves_stock THEN
		products_now := release_expired_orders.now_in(release_expired_orders.app_column_is_tz(app, 'products', 'updated_at'), zone);
	END IF;
	IF moves_shares THEN
		rounds_now := release_expired_orders.now_in(release_expired_orders.app_column_is_tz(app, 'lottery_rounds', 'updated_at'), zone);
	END IF;

	-- The application's writes, in the caller's search_path (no operator
	-- outside the qualified statement texts until the path is pinned again).
	PERFORM pg_catalog.set_config('search_path', caller_path, true);
	EXECUTE pg_catalog.format(
		'UPDATE %I.orders o SET status = $2, payment_status = $3, fulfillment_status = $4,'
		' updated_at = %s, notes = pg_catalog.concat(o.notes, $5) WHERE o.id OPERATOR(pg_catalog.=) $1',
		app, orders_now)
		USING order_id, ev.prev_status, ev.prev_payment_status, ev.prev_fulfillment_status, note;
	IF moves_stock THEN
		EXECUTE pg_catalog.format(
			'UPDATE %I.products p SET stock = p.stock OPERATOR(pg_catalog.-) $2, updated_at = %s'
			' WHERE p.id OPERATOR(pg_catalog.=) $1',
			app, products_now)
			USING ev.product_id, ev.stock_delta;
	END IF;
	IF moves_shares THEN
		EXECUTE pg_catalog.format(
			'UPDATE %I.lottery_rounds r SET sold_shares = coalesce(r.sold_shares, 0) OPERATOR(pg_catalog.-) $2,'
			' updated_at = %s WHERE r.id OPERATOR(pg_catalog.=) $1',
			app, rounds_now)
			USING ev.round_id, ev.shares_delta;
	END IF;
	PERFORM pg_catalog.set_config('search_path', pinned, true);

	-- What the undo really moved, after the application's triggers: the
	-- rows are locked since they were read above, so nothing else moved them.
	IF moves_stock THEN
		EXECUTE pg_catalog.format('SELECT p.stock FROM %I.products p WHERE p.id OPERATOR(pg_catalog.=) $1', app)
			INTO stock_after USING ev.product_id;
		moved_stock := coalesce(stock_after, 0) - coalesce(stock, 0);
	END IF;
	IF moves_shares THEN
		EXECUTE pg_catalog.format('SELECT r.sold_shares FROM %I.lottery_rounds r WHERE r.id OPERATOR(pg_catalog.=) $1', app)
			INTO sold_after USING ev.round_id;
		moved_shares := coalesce(sold_after, 0) - coalesce(rnd_sold, 0);
	END IF;

	INSERT INTO release_expired_orders.order_events (run_id, order_id, order_number, user_id,
		product_id, round_id, quantity, outcome, prev_status, prev_payment_status,
		prev_fulfillment_status, stock_delta, shares_delta, message)
	VALUES (NULL, ev.order_id, ev.order_number, ev.user_id, ev.product_id, ev.round_id,
		ev.quantity, 'restored', cur_status, cur_payment, cur_fulfillment,
		moved_stock, moved_shares,
		pg_catalog.format('release of run %s undone by %s', ev.run_id, current_user));

	order_number := ev.order_number;
	status := ev.prev_status;
	payment_status := ev.prev_payment_status;
	fulfillment_status := ev.prev_fulfillment_status;
	stock_taken := -moved_stock;
	shares_counted := moved_shares;
	PERFORM pg_catalog.set_config('search_path', caller_path, true);
END
$$;
