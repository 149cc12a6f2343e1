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
-- Numbers for dashboards: one row per metric, with its
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

-- health() becomes one function per check, called in turn (and its backlog
-- check no longer fails on an order created at -infinity: its age is
-- Infinity).  The checks are new; CREATE OR REPLACE keeps health()'s
-- grants and comment.

-- Consecutive failed runs, newest first: failed and interrupted runs,
-- and runs still marked running whose backend is gone.
CREATE FUNCTION release_expired_orders.health_consecutive_failed_runs()
RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rec record;
	n bigint;
	latest_error text;
BEGIN
	"check" := 'consecutive_failed_runs';
	BEGIN
		n := 0;
		latest_error := NULL;
		FOR rec IN
			SELECT r.id, r.outcome, r.error,
				   r.outcome = 'running' AND NOT coalesce(
					   release_expired_orders.run_is_alive(r.backend_pid, r.backend_start), false) AS gone
			FROM release_expired_orders.runs r
			ORDER BY r.id DESC LIMIT 1000
		LOOP
			CONTINUE WHEN rec.outcome = 'running' AND NOT rec.gone;
			EXIT WHEN rec.outcome IN ('success', 'partial');
			n := n + 1;
			latest_error := coalesce(latest_error,
				CASE WHEN rec.gone THEN 'the backend running it ended before the run finished'
				ELSE coalesce(rec.error, 'no error recorded') END);
		END LOOP;
		status := CASE WHEN n >= 3 THEN 'critical' WHEN n > 0 THEN 'warning' ELSE 'ok' END;
		detail := CASE WHEN n = 0 THEN 'no failed run since the last successful one'
				  ELSE pg_catalog.format('%s consecutive failed or interrupted run%s; the latest: %s',
						n, CASE WHEN n > 1 THEN 's' END, latest_error) END;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION release_expired_orders.health_consecutive_failed_runs() IS
	'health() check: failed or interrupted runs since the last successful one (3: critical)';

-- Poison orders: still pending, and failed (for a reason of their own,
-- not a lock timeout) or vetoed in three or more runs since their last
-- release or restore.  Critical once one has been failing for longer
-- than alert_after: it keeps its stock or shares, and the job alone
-- will not release it.
CREATE FUNCTION release_expired_orders.health_poison_orders()
RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	app text := release_expired_orders.setting('app_schema');
	alert_min bigint;
	n bigint;
	names text;
	oldest timestamptz;
BEGIN
	"check" := 'poison_orders';
	BEGIN
		alert_min := release_expired_orders.setting('alert_after')::bigint;
		EXECUTE pg_catalog.format(
			'WITH f AS ('
			' SELECT e.order_id, pg_catalog.count(DISTINCT e.run_id) AS runs,'
			' pg_catalog.min(e.created_at) AS first_at, pg_catalog.max(e.order_number) AS order_number'
			' FROM release_expired_orders.order_events e'
			' WHERE (e.outcome = ''vetoed'' OR (e.outcome = ''failed'''
			' AND e.sqlstate <> ALL (''{55P03,40P01,40001}''::pg_catalog.bpchar[])))'
			' AND e.id > coalesce((SELECT pg_catalog.max(x.id)'
			' FROM release_expired_orders.order_events x WHERE x.order_id = e.order_id'
			' AND x.outcome IN (''released'', ''restored'')), 0)'
			' GROUP BY e.order_id)'
			' SELECT pg_catalog.count(*) FILTER (WHERE t.runs >= 3),'
			' pg_catalog.string_agg(pg_catalog.format(''%%s (%%s runs)'', t.order_number, t.runs),'
			' '', '' ORDER BY t.order_number) FILTER (WHERE t.runs >= 3 AND t.rank <= 20),'
			' pg_catalog.min(t.first_at)'
			' FROM (SELECT f.*, pg_catalog.row_number() OVER (ORDER BY f.runs >= 3 DESC, f.order_number) AS rank'
			' FROM f JOIN %I.orders o ON o.id = f.order_id'
			' WHERE o.status = ''pending'' AND o.payment_status = ''pending'''
			' AND o.fulfillment_status = ''pending'') t', app)
			INTO n, names, oldest;
		status := CASE WHEN oldest < pg_catalog.now() - pg_catalog.make_interval(mins => alert_min::integer)
					   THEN 'critical' WHEN n > 0 THEN 'warning' ELSE 'ok' END;
		detail := CASE WHEN status = 'ok' THEN 'no order failed in 3 or more consecutive runs'
				  ELSE pg_catalog.format('%s order%s failed in 3 or more consecutive runs%s%s', n,
						CASE WHEN n <> 1 THEN 's' END, ': ' || names,
						CASE WHEN n > 20 THEN pg_catalog.format(' and %s more', n - 20) END)
					   || CASE WHEN status = 'critical' THEN pg_catalog.format(
							'; an order has been failing for %s min, longer than release_expired_orders.alert_after (%s min)',
							pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now() - oldest) / 60), alert_min)
						  ELSE '' END
					   || '; see release_expired_orders.order_events for their errors' END;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION release_expired_orders.health_poison_orders() IS
	'health() check: pending orders that failed or were vetoed in 3 or more runs (critical past alert_after)';

-- The application's notifications: the job skips them, with a WARNING,
-- when they cannot be written.
CREATE FUNCTION release_expired_orders.health_notifications()
RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	latest_error text;
	names text;
BEGIN
	"check" := 'notifications';
	BEGIN
		names := release_expired_orders.notifications_problem();
		SELECT r.warnings INTO latest_error FROM release_expired_orders.runs r
		WHERE r.ended_at IS NOT NULL ORDER BY r.id DESC LIMIT 1;
		status := CASE WHEN coalesce(names, latest_error) IS NULL THEN 'ok' ELSE 'warning' END;
		detail := coalesce('the job skips the application''s notifications: ' || names,
						   'the last run: ' || latest_error,
						   'the application''s notifications are written, or switched off');
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION release_expired_orders.health_notifications() IS
	'health() check: whether the job skips the application''s notifications';

-- The last finished run against release_expired_orders.slow_run_ms.
CREATE FUNCTION release_expired_orders.health_slow_run()
RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	slow_ms bigint;
	rec record;
BEGIN
	"check" := 'slow_run';
	BEGIN
		slow_ms := release_expired_orders.setting('slow_run_ms')::bigint;
		SELECT r.id, r.duration_ms INTO rec FROM release_expired_orders.runs r
		WHERE r.ended_at IS NOT NULL AND r.duration_ms IS NOT NULL
		ORDER BY r.id DESC LIMIT 1;
		IF NOT FOUND THEN
			status := 'ok';
			detail := 'no finished run yet';
		ELSIF rec.duration_ms > slow_ms THEN
			status := 'warning';
			detail := pg_catalog.format('the last run (%s) took %s ms, more than release_expired_orders.slow_run_ms (%s ms)',
				rec.id, pg_catalog.round(rec.duration_ms::numeric), slow_ms);
		ELSE
			status := 'ok';
			detail := pg_catalog.format('the last run took %s ms (release_expired_orders.slow_run_ms is %s ms)',
				pg_catalog.round(rec.duration_ms::numeric), slow_ms);
		END IF;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION release_expired_orders.health_slow_run() IS
	'health() check: the last finished run against slow_run_ms';

-- A successful (or partial) run within twice the pg_cron job's interval
-- (either form of schedule), or within release_expired_orders.alert_after
-- when that is set or the schedule has no plain period.
CREATE FUNCTION release_expired_orders.health_last_success()
RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	alert_min bigint;
	rec record;
	window_iv interval;
	window_text text;
BEGIN
	"check" := 'last_success';
	BEGIN
		alert_min := release_expired_orders.setting('alert_after')::bigint;
		SELECT 2 * pg_catalog.min(release_expired_orders.schedule_interval(j.schedule))
		INTO window_iv FROM release_expired_orders.job_status() j WHERE j.active;
		IF window_iv IS NULL OR (SELECT s.source <> 'default' FROM pg_catalog.pg_settings s
								 WHERE s.name = 'release_expired_orders.alert_after') THEN
			window_iv := pg_catalog.make_interval(mins => alert_min::integer);
			window_text := pg_catalog.format('release_expired_orders.alert_after (%s min)', alert_min);
		ELSE
			window_text := pg_catalog.format('twice the pg_cron job''s interval (%s)',
				CASE WHEN window_iv < interval '2 minutes'
					 THEN pg_catalog.date_part('epoch', window_iv) || ' s'
					 ELSE pg_catalog.date_part('epoch', window_iv) / 60 || ' min' END);
		END IF;
		SELECT pg_catalog.max(r.ended_at) AS ended, pg_catalog.count(*) AS runs INTO rec
		FROM release_expired_orders.runs r;
		SELECT pg_catalog.max(r.ended_at) AS ended, rec.runs AS runs INTO rec
		FROM release_expired_orders.runs r WHERE r.outcome IN ('success', 'partial');
		IF rec.runs = 0 THEN
			status := 'warning';
			detail := 'no run recorded yet: is the job scheduled?';
		ELSIF rec.ended IS NULL THEN
			status := 'critical';
			detail := pg_catalog.format('no run has succeeded yet (%s recorded)', rec.runs);
		ELSIF rec.ended < pg_catalog.now() - window_iv THEN
			status := 'critical';
			detail := pg_catalog.format('no successful run for %s min, longer than %s',
				pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now() - rec.ended) / 60), window_text);
		ELSE
			status := 'ok';
			detail := pg_catalog.format('a run succeeded within %s', window_text);
		END IF;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION release_expired_orders.health_last_success() IS
	'health() check: a successful run within twice the pg_cron job''s interval, or alert_after';

-- Expired orders still waiting, with the default timeout; a backlog is
-- normal until the next run, so it warns only once the oldest has waited
-- past its expiry for longer than alert_after.
CREATE FUNCTION release_expired_orders.health_backlog()
RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	timeout integer;
	alert_min bigint;
	rec record;
BEGIN
	"check" := 'backlog';
	BEGIN
		timeout := release_expired_orders.setting('timeout_minutes')::bigint::integer;
		alert_min := release_expired_orders.setting('alert_after')::bigint;
		-- preview() holds the one SQL definition of a candidate; counted up
		-- to its largest batch_limit.
		SELECT pg_catalog.count(*) AS waiting, pg_catalog.min(p.created_at) AS oldest
		INTO rec
		FROM release_expired_orders.preview(timeout, 1000000) p;
		IF rec.waiting = 0 THEN
			status := 'ok';
			detail := pg_catalog.format('no order older than %s min waiting', timeout);
		ELSE
			status := CASE WHEN rec.oldest < pg_catalog.now()
							   - pg_catalog.make_interval(mins => timeout + alert_min::integer)
					  THEN 'warning' ELSE 'ok' END;
			detail := pg_catalog.format('%s expired order%s waiting; the oldest was created %s min ago, %s min past the %s min timeout',
				rec.waiting, CASE WHEN rec.waiting > 1 THEN 's' END,
				-- by epochs: an order created at -infinity is Infinity min old
				pg_catalog.floor((pg_catalog.date_part('epoch', pg_catalog.now())
								  - pg_catalog.date_part('epoch', rec.oldest)) / 60),
				pg_catalog.floor((pg_catalog.date_part('epoch', pg_catalog.now())
								  - pg_catalog.date_part('epoch', rec.oldest)) / 60) - timeout,
				timeout);
		END IF;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION release_expired_orders.health_backlog() IS
	'health() check: expired orders still waiting (warning past alert_after)';

-- The pg_cron job: there, calling a procedure that exists, active, and
-- its latest run not failed.
CREATE FUNCTION release_expired_orders.health_cron_job()
RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job_name constant text := release_expired_orders.job_name();
	rec record;
BEGIN
	"check" := 'cron_job';
	BEGIN
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
			status := 'warning';
			detail := pg_catalog.format('pg_cron is not installed in database %I: the job runs only if something else calls the procedure; see release_expired_orders.schedule()',
				pg_catalog.current_database());
		ELSE
			SELECT pg_catalog.count(*) AS jobs,
				   pg_catalog.count(*) FILTER (WHERE j.active) AS active,
				   pg_catalog.string_agg(pg_catalog.format('%s as %s', j.jobid, j.username), ', ' ORDER BY j.jobid) AS list,
				   (pg_catalog.array_agg(j.last_message ORDER BY j.last_start DESC NULLS LAST)
					   FILTER (WHERE j.last_status = 'failed'))[1] AS failure,
				   pg_catalog.min(j.schedule) AS schedule,
				   pg_catalog.string_agg(pg_catalog.format('%s (job %s as %s)', t.procedure, j.jobid, j.username),
										 ', ' ORDER BY j.jobid) FILTER (WHERE t.missing) AS dangling,
				   (pg_catalog.array_agg(pg_catalog.format('SELECT cron.alter_job(%s, command => %L);',
											 j.jobid, t.repaired_command) ORDER BY j.jobid)
					   FILTER (WHERE t.repaired_command IS NOT NULL))[1] AS repair
			INTO rec FROM release_expired_orders.job_status() j
			LEFT JOIN LATERAL release_expired_orders.job_target(j.command) t ON true;
			IF rec.jobs = 0 THEN
				status := 'critical';
				detail := pg_catalog.format('no pg_cron job %s in database %I: run SELECT release_expired_orders.schedule()',
					job_name, pg_catalog.current_database());
			ELSIF rec.dangling IS NOT NULL THEN
				status := 'critical';
				detail := pg_catalog.format('pg_cron job %s calls a procedure that does not exist, %s: every run fails; %s',
					job_name, rec.dangling,
					coalesce('make it call this installation''s procedure: ' || rec.repair,
							 'run SELECT release_expired_orders.schedule() as the job''s role'));
			ELSIF rec.active = 0 THEN
				status := 'critical';
				detail := pg_catalog.format('pg_cron job %s (%s) is inactive: run SELECT release_expired_orders.schedule()',
					job_name, rec.list);
			ELSIF rec.failure IS NOT NULL THEN
				status := 'warning';
				detail := pg_catalog.format('the latest run of pg_cron job %s failed: %s', job_name, rec.failure);
			ELSIF rec.jobs > 1 THEN
				status := 'warning';
				detail := pg_catalog.format('%s pg_cron jobs %s (%s): keep one, unschedule the others',
					rec.jobs, job_name, rec.list);
			ELSE
				status := 'ok';
				detail := pg_catalog.format('pg_cron job %s runs at "%s" (GMT)', job_name, rec.schedule);
			END IF;
		END IF;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION release_expired_orders.health_cron_job() IS
	'health() check: the pg_cron job is there, calls a procedure that exists, is active, and its latest run did not fail';

-- An index that lets the candidate scan skip paid and cancelled orders:
-- created_at first and a predicate on the three statuses, or the three
-- statuses (in any order) then created_at.  The application's
-- (status, created_at) index is not one: a paid order keeps status
-- 'pending'.  The regular expressions are E'' strings: health() parses
-- them in the caller's session, whatever standard_conforming_strings says.
-- With payment windows in force the scan goes type by type, so the
-- index leads with type: (type, created_at, id).
CREATE FUNCTION release_expired_orders.health_candidate_index()
RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	app text := release_expired_orders.setting('app_schema');
	rec record;
	orders_rel oid;
	partitioned boolean;
	ddl text;
	key_cols text;
	lead name[];
	want_method boolean := false;
BEGIN
	"check" := 'candidate_index';
	BEGIN
		lead := CASE WHEN EXISTS (SELECT FROM release_expired_orders.payment_windows)
					 THEN '{type,created_at}'::name[] ELSE '{created_at}'::name[] END;
		key_cols := pg_catalog.array_to_string(lead, ', ') || ', id';
		-- With a window per payment method, the method in the index lets
		-- the scan of one method's window step over the other methods'
		-- orders in the index alone (the text goes inside "(...)").
		IF EXISTS (SELECT FROM release_expired_orders.payment_windows w WHERE w.payment_method IS NOT NULL)
		   AND EXISTS (SELECT FROM pg_catalog.pg_attribute a
					   JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
					   JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
					   WHERE s.nspname = app AND c.relname = 'orders' AND a.attname = 'payment_method'
						 AND NOT a.attisdropped) THEN
			key_cols := key_cols || ') INCLUDE (payment_method';
			want_method := true;
		END IF;
		SELECT c.oid, c.relkind = 'p' INTO orders_rel, partitioned
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
		WHERE s.nspname = app AND c.relname = 'orders' AND c.relkind IN ('r', 'p');
		IF orders_rel IS NULL THEN
			RAISE EXCEPTION 'relation "%.orders" does not exist', app;
		END IF;
		IF NOT partitioned THEN
			ddl := pg_catalog.format('CREATE INDEX CONCURRENTLY orders_release_candidates_idx ON %I.orders (%s) WHERE status = ''pending'' AND payment_status = ''pending'' AND fulfillment_status = ''pending''',
				app, key_cols);
		ELSE
			-- CREATE INDEX CONCURRENTLY is refused on a partitioned table: an
			-- index on each partitioned table of the tree alone (ON ONLY,
			-- quick: it reads no rows), one built concurrently on each leaf,
			-- then each attached to its parent's, deepest first.  The root's
			-- index becomes valid with the last ATTACH.
			WITH tree AS (
				SELECT t.relid, t.parentrelid, t.isleaf, t.level,
					   pg_catalog.format('%I.%I', s.nspname, c.relname) AS tbl,
					   s.nspname AS nsp,
					   pg_catalog.left(c.relname, 39) || '_release_candidates_idx' AS idx
				FROM pg_catalog.pg_partition_tree(orders_rel) t
				JOIN pg_catalog.pg_class c ON c.oid = t.relid
				JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
				WHERE c.relkind IN ('r', 'p')
			)
			SELECT pg_catalog.string_agg(x.stmt, '; ' ORDER BY x.step, x.level, x.tbl) INTO ddl
			FROM (
				SELECT 1 AS step, t.level, t.tbl,
					   pg_catalog.format('CREATE INDEX %I ON ONLY %s (%s) WHERE status = ''pending'' AND payment_status = ''pending'' AND fulfillment_status = ''pending''',
						   t.idx, t.tbl, key_cols) AS stmt
				FROM tree t WHERE NOT t.isleaf
				UNION ALL
				SELECT 2, t.level, t.tbl,
					   pg_catalog.format('CREATE INDEX CONCURRENTLY %I ON %s (%s) WHERE status = ''pending'' AND payment_status = ''pending'' AND fulfillment_status = ''pending''',
						   t.idx, t.tbl, key_cols)
				FROM tree t WHERE t.isleaf
				UNION ALL
				SELECT 3, -t.level, t.tbl,
					   pg_catalog.format('ALTER INDEX %I.%I ATTACH PARTITION %I.%I', p.nsp, p.idx, t.nsp, t.idx)
				FROM tree t JOIN tree p ON p.relid = t.parentrelid
			) x;
			ddl := 'orders is partitioned, so run each of these statements on its own: ' || ddl;
		END IF;
		SELECT i.indexrelid::pg_catalog.regclass::text AS name, i.indisvalid AND i.indisready AS usable,
			   m.has_method INTO rec
		FROM pg_catalog.pg_index i
		JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
		JOIN pg_catalog.pg_am am ON am.oid = ic.relam
		CROSS JOIN LATERAL (
			SELECT pg_catalog.array_agg(a.attname ORDER BY k.pos) AS cols
			FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY k (attnum, pos)
			LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
			WHERE k.pos <= i.indnkeyatts) k
		CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS pred) p
		CROSS JOIN LATERAL (
			SELECT EXISTS (SELECT FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) c (attnum)
						   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = c.attnum
						   WHERE a.attname = 'payment_method') AS has_method) m
		WHERE i.indrelid = orders_rel AND am.amname = 'btree'
		  AND ((k.cols[1:pg_catalog.cardinality(lead)] = lead
				AND p.pred ~ E'\\mstatus\\M\\)?(::[a-z ]+)? = ''pending'''
				AND p.pred ~ E'\\mpayment_status\\M\\)?(::[a-z ]+)? = ''pending'''
				AND p.pred ~ E'\\mfulfillment_status\\M\\)?(::[a-z ]+)? = ''pending''')
			   OR (k.cols[1:3] @> '{status,payment_status,fulfillment_status}'::name[]
				   AND k.cols[4:3 + pg_catalog.cardinality(lead)] = lead))
		ORDER BY i.indisvalid AND i.indisready DESC, m.has_method DESC, ic.relname LIMIT 1;
		IF NOT FOUND THEN
			status := 'warning';
			detail := pg_catalog.format('no index lets the candidate scan skip paid orders%s, so every run reads all old orders; create one: %s',
				CASE WHEN pg_catalog.cardinality(lead) > 1
					 THEN ' and go type by type, as it does with payment windows' ELSE '' END,
				ddl);
		ELSIF NOT rec.usable AND partitioned THEN
			status := 'warning';
			detail := pg_catalog.format('index %s is not valid yet: some partition has no index attached to it; attach one to it (ALTER INDEX %s ATTACH PARTITION ...), or DROP INDEX %s; then %s',
				rec.name, rec.name, rec.name, ddl);
		ELSIF NOT rec.usable THEN
			status := 'warning';
			detail := pg_catalog.format('index %s is invalid (a CREATE INDEX CONCURRENTLY that failed): DROP INDEX CONCURRENTLY %s; then %s',
				rec.name, rec.name, ddl);
		ELSIF want_method AND NOT rec.has_method THEN
			-- it serves the scan, but a window per payment method steps
			-- over the other methods' orders by reading each from the table
			status := 'warning';
			detail := pg_catalog.format('index %s lacks payment_method, so with windows per payment method the scan reads the table for each order of another method it steps over; create one with it: %s; then DROP INDEX CONCURRENTLY %s',
				rec.name, ddl, rec.name);
		ELSE
			status := 'ok';
			detail := pg_catalog.format('the candidate scan can use index %s', rec.name);
		END IF;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION release_expired_orders.health_candidate_index() IS
	'health() check: an index lets the candidate scan skip paid orders; else the CREATE INDEX to run';

-- Row-level security that applies to the role running the job (the
-- pg_cron job's role, else the current one) would hide orders from it,
-- or hide the product or round whose stock or shares it must give back.
CREATE FUNCTION release_expired_orders.health_row_level_security()
RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	names text;
	roles text[];
BEGIN
	"check" := 'row_level_security';
	BEGIN
		SELECT pg_catalog.array_agg(DISTINCT j.username) INTO roles
		FROM release_expired_orders.job_status() j;
		IF roles IS NULL THEN
			roles := ARRAY[current_user::text];
		END IF;
		SELECT pg_catalog.string_agg(pg_catalog.format('role %s on %s', r.role, r.tables), '; '
									 ORDER BY r.role) INTO names
		FROM (SELECT u.role, release_expired_orders.row_security_problem(u.role::name) AS tables
			  FROM pg_catalog.unnest(roles) u (role)) r
		WHERE r.tables IS NOT NULL;
		IF names IS NULL THEN
			status := 'ok';
			detail := pg_catalog.format('no row-level security applies to %s on the application''s tables',
				pg_catalog.array_to_string(roles, ', '));
		ELSE
			status := 'critical';
			detail := pg_catalog.format('row-level security applies to the role running the job (%s): rows its policies hide are never released and their stock or shares never returned; give the role BYPASSRLS, or policies that show it every row',
				names);
		END IF;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION release_expired_orders.health_row_level_security() IS
	'health() check: no row-level security applies to the role running the job';

-- The deadline worker of this database, when one should serve it (the
-- library preloaded with max_workers above 0, deadline_worker on, and
-- worker_database empty or naming this database): running, waking when it
-- meant to (its next_wake not passed by more than a minute), on time (lag
-- of its last wake for a deadline under a second), and its last step not
-- failed.  No running worker where one should run is critical.
CREATE FUNCTION release_expired_orders.health_worker()
RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rec record;
	names text;
BEGIN
	"check" := 'worker';
	BEGIN
		names := release_expired_orders.setting('worker_database');
		SELECT w.* INTO rec FROM release_expired_orders.worker_status() w;
		IF names <> '' AND names IS DISTINCT FROM pg_catalog.current_database() THEN
			status := 'ok';
			detail := pg_catalog.format('not served: release_expired_orders.worker_database names database %I only', names);
		ELSIF release_expired_orders.setting('deadline_worker') = 'off' THEN
			status := 'ok';
			detail := 'not served: release_expired_orders.deadline_worker is off for this database';
		ELSIF NOT FOUND AND names = pg_catalog.current_database() THEN
			status := 'critical';
			detail := 'release_expired_orders.worker_database names this database, but release_expired_orders is not in shared_preload_libraries (or max_workers is 0): no worker runs; add it and restart the server';
		ELSIF NOT FOUND THEN
			status := 'ok';
			detail := 'no deadline worker: release_expired_orders is not in shared_preload_libraries, or release_expired_orders.max_workers is 0; runs are scheduled by pg_cron or by hand';
		ELSIF pg_catalog.pg_is_in_recovery() THEN
			status := 'ok';
			detail := 'the server is a standby: the deadline workers start when it is promoted';
		ELSIF rec.pid IS NULL THEN
			status := 'critical';
			detail := 'no deadline worker runs for this database'
				|| coalesce(': ' || rec.last_error, '')
				|| coalesce(pg_catalog.format(' (at %s)', rec.last_error_at), '')
				|| '; see the server log, worker_status() and release_expired_orders.max_workers';
		ELSIF rec.next_wake < pg_catalog.now() - interval '1 minute' THEN
			status := 'warning';
			detail := pg_catalog.format('the deadline worker (pid %s) should have woken at %s and has not: is it stuck?',
				rec.pid, rec.next_wake);
		ELSIF rec.last_lag_ms > 1000 THEN
			status := 'warning';
			detail := pg_catalog.format('the deadline worker (pid %s) woke %s ms after the deadline it slept for, more than 1000 ms: is the server overloaded?',
				rec.pid, pg_catalog.round(rec.last_lag_ms::numeric));
		ELSIF rec.last_error_at >= rec.last_wake THEN
			status := 'warning';
			detail := pg_catalog.format('the deadline worker (pid %s) failed at %s and tries again: %s',
				rec.pid, rec.last_error_at, rec.last_error);
		ELSE
			status := 'ok';
			detail := pg_catalog.format('the deadline worker (pid %s, as role %s) runs; next wake %s%s', rec.pid, rec.role,
				coalesce(rec.next_wake::text, 'now'),
				coalesce(pg_catalog.format(', last lag %s ms', pg_catalog.round(rec.last_lag_ms::numeric, 1)), ''));
		END IF;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION release_expired_orders.health_worker() IS
	'health() check: the deadline worker of this database, where one should serve it: running, waking on time, not failing';

-- One row per check of the README's Monitoring section, each ok, warning
-- or critical: the checks above, in this order.  A check that cannot run
-- says so as critical instead of hiding the others.
CREATE OR REPLACE FUNCTION release_expired_orders.health()
RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY SELECT * FROM release_expired_orders.health_consecutive_failed_runs();
	RETURN QUERY SELECT * FROM release_expired_orders.health_poison_orders();
	RETURN QUERY SELECT * FROM release_expired_orders.health_notifications();
	RETURN QUERY SELECT * FROM release_expired_orders.health_slow_run();
	RETURN QUERY SELECT * FROM release_expired_orders.health_last_success();
	RETURN QUERY SELECT * FROM release_expired_orders.health_backlog();
	RETURN QUERY SELECT * FROM release_expired_orders.health_cron_job();
	RETURN QUERY SELECT * FROM release_expired_orders.health_candidate_index();
	RETURN QUERY SELECT * FROM release_expired_orders.health_row_level_security();
	RETURN QUERY SELECT * FROM release_expired_orders.health_worker();
END
$$;

-- The statements the job runs in this database, as it runs them against
-- the application's tables as they are now, with the types of their
-- parameters: to PREPARE and EXPLAIN them (README, Reference).  Some run
-- only with notifications, payment windows or a fallback.
CREATE FUNCTION release_expired_orders.statements()
RETURNS TABLE (name text, statement text, argument_types regtype[])
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'reo_statements';
COMMENT ON FUNCTION release_expired_orders.statements() IS
	'The statements the job runs in this database, with their parameters'' types: to EXPLAIN them';

-- The wake trigger: an order inserted, or updated, with a created_at so
-- early that its deadline comes before the deadline worker's next wake
-- wakes the worker when its transaction commits (README, Deadline worker).
-- add_wake_trigger() puts it on the application's orders table; DROP
-- TRIGGER release_expired_orders_wake removes it.
CREATE FUNCTION release_expired_orders.wake_trigger()
RETURNS trigger LANGUAGE C AS 'MODULE_PATHNAME', 'reo_wake_trigger';
COMMENT ON FUNCTION release_expired_orders.wake_trigger() IS
	'Trigger function: wake the deadline worker when an order that may already be due commits';

CREATE FUNCTION release_expired_orders.add_wake_trigger()
RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	app pg_catalog.text := release_expired_orders.setting('app_schema');
	columns pg_catalog.text;
BEGIN
	IF pg_catalog.to_regclass(pg_catalog.format('%I.orders', app)) IS NULL THEN
		RAISE EXCEPTION 'relation "%.orders" does not exist', app
			USING ERRCODE = '42P01',
				  HINT = 'Set release_expired_orders.app_schema to the schema of the application''s tables.';
	END IF;
	IF EXISTS (SELECT FROM pg_catalog.pg_trigger
			   WHERE tgrelid = pg_catalog.format('%I.orders', app)::pg_catalog.regclass
				 AND tgname = 'release_expired_orders_wake') THEN
		EXECUTE pg_catalog.format('DROP TRIGGER release_expired_orders_wake ON %I.orders', app);
	END IF;
	-- every column an order's deadline depends on, and its statuses
	SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
	FROM pg_catalog.pg_attribute a
	WHERE a.attrelid = pg_catalog.format('%I.orders', app)::pg_catalog.regclass
	  AND a.attnum > 0 AND NOT a.attisdropped
	  AND a.attname IN ('created_at', 'status', 'payment_status', 'fulfillment_status', 'type', 'payment_method');
	EXECUTE pg_catalog.format('CREATE TRIGGER release_expired_orders_wake'
		' AFTER INSERT OR UPDATE OF %s ON %I.orders'
		' FOR EACH ROW EXECUTE FUNCTION release_expired_orders.wake_trigger()', columns, app);
	RETURN pg_catalog.format('%I.orders: trigger release_expired_orders_wake', app);
END
$$;
COMMENT ON FUNCTION release_expired_orders.add_wake_trigger() IS
	'Add the wake trigger to the application''s orders table, so that an order that may already be due wakes the deadline worker when it commits';
REVOKE ALL ON FUNCTION release_expired_orders.add_wake_trigger() FROM PUBLIC;
-- A trigger function's EXECUTE is checked when the trigger is created, not
-- when it fires: the application's roles need nothing.
REVOKE ALL ON FUNCTION release_expired_orders.wake_trigger() FROM PUBLIC;
