-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION release_expired_orders UPDATE TO '1.1'" to load this file. \quit

-- Upgrade from 1.0.  Every change below is also in release_expired_orders--1.1.sql;
-- test/t/040_upgrade.pl compares an upgraded installation with a fresh one.

----------------------------------------------------------------------------
-- pg_dump keeps the history; the job is named per database, taken over on
-- reinstall, and checked for a procedure that is gone (issue 9: 1, 2, 16)
----------------------------------------------------------------------------

-- As in the install script: every definition below with this search_path.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

SELECT pg_catalog.pg_extension_config_dump('release_expired_orders.runs', '');
SELECT pg_catalog.pg_extension_config_dump('release_expired_orders.runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('release_expired_orders.order_events', '');
SELECT pg_catalog.pg_extension_config_dump('release_expired_orders.order_events_id_seq', '');

CREATE FUNCTION release_expired_orders.job_name()
RETURNS text LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN 'release-expired-orders_invoke'
	|| CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN ''
	   ELSE '@' || pg_catalog.current_database() END;
COMMENT ON FUNCTION release_expired_orders.job_name() IS
	'The name of this database''s pg_cron job: release-expired-orders_invoke, or release-expired-orders_invoke@<database> outside pg_cron''s database';

CREATE FUNCTION release_expired_orders.job_target(command text,
	OUT procedure text, OUT missing boolean, OUT repaired_command text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	-- POSIX classes, not backslash escapes: the same pattern whatever
	-- standard_conforming_strings says.
	m text[] := pg_catalog.regexp_match(command,
		'^([[:space:]]*call[[:space:]]+([^(]*[^([:space:]])[[:space:]]*[(])', 'i');
	parts text[];
	n integer;
BEGIN
	IF m IS NULL THEN
		RETURN;
	END IF;
	BEGIN
		parts := pg_catalog.parse_ident(m[2]);
	EXCEPTION WHEN invalid_parameter_value THEN
		RETURN;
	END;
	procedure := m[2];
	n := pg_catalog.cardinality(parts);
	missing := NOT EXISTS (
		SELECT FROM pg_catalog.pg_proc p
		JOIN pg_catalog.pg_namespace s ON s.oid = p.pronamespace
		WHERE p.prokind = 'p' AND p.proname = parts[n] AND (n = 1 OR s.nspname = parts[n - 1]));
	IF missing AND parts[n] = 'release_expired_orders' THEN
		repaired_command := pg_catalog.rtrim(release_expired_orders.job_command(NULL, NULL), ')')
			|| pg_catalog.substr(command, pg_catalog.length(m[1]) + 1);
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION release_expired_orders.job_status()
RETURNS TABLE (jobid bigint, schedule text, command text, active boolean, username text,
			   last_status text, last_message text, last_start timestamptz, last_end timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
		RETURN;
	END IF;
	RETURN QUERY
		SELECT j.jobid, j.schedule, j.command, j.active, j.username::text,
			   d.status, d.return_message, d.start_time, d.end_time
		FROM cron.job j
		LEFT JOIN LATERAL (
			SELECT r.status, r.return_message, r.start_time, r.end_time
			FROM cron.job_run_details r WHERE r.jobid = j.jobid
			ORDER BY r.runid DESC LIMIT 1) d ON true
		WHERE j.jobname = release_expired_orders.job_name()
		  AND j.database = pg_catalog.current_database()
		ORDER BY j.jobid;
END
$$;
COMMENT ON FUNCTION release_expired_orders.job_status() IS
	'The pg_cron job of this database (release_expired_orders.job_name()) and its latest run';

CREATE OR REPLACE FUNCTION release_expired_orders.schedule(
	cron text DEFAULT '*/10 * * * *',
	timeout_minutes integer DEFAULT NULL,
	batch_limit integer DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job_name constant text := release_expired_orders.job_name();
	command text := release_expired_orders.job_command(timeout_minutes, batch_limit);
	job bigint;
	old_job bigint;
	old_active boolean;
	other_roles text;
	message text;
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
		RAISE EXCEPTION 'pg_cron is not installed in database "%"', pg_catalog.current_database()
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = pg_catalog.format('Add pg_cron to shared_preload_libraries, set cron.database_name = %L and run CREATE EXTENSION pg_cron; if pg_cron lives in another database, schedule from there: SELECT cron.schedule_in_database(%L, %L, %L, %L);',
					pg_catalog.current_database(), job_name, coalesce(cron, '*/10 * * * *'),
					command, pg_catalog.current_database());
	END IF;
	IF cron IS NULL OR pg_catalog.btrim(cron) = '' THEN
		RAISE EXCEPTION 'cron must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give a five-field cron schedule in GMT, for example ''*/10 * * * *''.';
	END IF;

	-- pg_cron keys jobs by name and role: a job of the same name scheduled
	-- by another role would run alongside this one.
	SELECT pg_catalog.string_agg(DISTINCT pg_catalog.quote_ident(j.username), ', ') INTO other_roles
	FROM release_expired_orders.job_status() j WHERE j.username <> current_user;
	IF other_roles IS NOT NULL THEN
		RAISE EXCEPTION 'pg_cron job % is already scheduled in database "%" by role %',
			job_name, pg_catalog.current_database(), other_roles
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Run SELECT release_expired_orders.unschedule(); as that role or a superuser, then schedule again as the role that should run the job.';
	END IF;

	SELECT j.jobid, j.active INTO old_job, old_active FROM cron.job j
	WHERE j.jobname = job_name AND j.username = current_user
	  AND j.database = pg_catalog.current_database();
	IF old_job IS NOT NULL AND NOT old_active THEN
		-- pg_cron's upsert keeps a job inactive; start it afresh instead
		PERFORM cron.unschedule(old_job);
	END IF;

	BEGIN
		job := cron.schedule(job_name, cron, command);
	EXCEPTION WHEN invalid_parameter_value THEN
		GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
		RAISE EXCEPTION 'invalid cron schedule "%"', cron
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('pg_cron said: %s.', message),
				  HINT = 'pg_cron 1.4 accepts the five-field cron syntax only (minute hour day-of-month month day-of-week, in GMT), for example ''*/10 * * * *''; intervals such as ''30 seconds'' need pg_cron 1.5 or later.';
	END;
	RETURN job;
END
$$;
COMMENT ON FUNCTION release_expired_orders.schedule(text, integer, integer) IS
	'Schedule CALL release_expired_orders() with pg_cron as the current role (job release_expired_orders.job_name())';

CREATE OR REPLACE FUNCTION release_expired_orders.unschedule()
RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job_name constant text := release_expired_orders.job_name();
	job bigint;
	found_one boolean := false;
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
		RAISE NOTICE 'pg_cron is not installed in database "%": nothing to unschedule',
			pg_catalog.current_database();
		RETURN false;
	END IF;
	FOR job IN
		SELECT j.jobid FROM cron.job j
		WHERE j.jobname = job_name
		  AND j.database = pg_catalog.current_database()
		ORDER BY j.jobid
	LOOP
		PERFORM cron.unschedule(job);
		found_one := true;
	END LOOP;
	IF NOT found_one THEN
		RAISE NOTICE 'no pg_cron job % in database "%"', job_name,
			pg_catalog.current_database();
	END IF;
	RETURN found_one;
END
$$;
COMMENT ON FUNCTION release_expired_orders.unschedule() IS
	'Remove the pg_cron job of this database (release_expired_orders.job_name()); run it before DROP EXTENSION';

CREATE OR REPLACE FUNCTION release_expired_orders.purge_history(older_than interval DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	retention interval := coalesce(older_than, pg_catalog.make_interval(mins =>
		release_expired_orders.setting_int('release_expired_orders.history_retention', 'min', 43200::bigint)::integer));
	max_rows bigint := release_expired_orders.setting_int('release_expired_orders.purge_limit', NULL::text, 10000::bigint);
	horizon timestamptz;
	n bigint;
	total bigint := 0;
BEGIN
	IF retention < '0'::interval THEN
		RAISE EXCEPTION 'older_than must not be negative'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The value given was %s.', retention),
				  HINT = 'Pass NULL to use the setting release_expired_orders.history_retention.';
	END IF;
	IF max_rows <= 0 THEN
		RETURN 0;
	END IF;
	horizon := pg_catalog.now() - retention;

	-- A run still running (or whose end health() has not seen yet) stays.
	DELETE FROM release_expired_orders.runs r
	WHERE r.id IN (SELECT o.id FROM release_expired_orders.runs o
				   WHERE o.started_at < horizon AND o.outcome <> 'running'
				   ORDER BY o.started_at, o.id LIMIT max_rows);
	GET DIAGNOSTICS n = ROW_COUNT;
	total := total + n;

	-- Audit rows are appended in time order: when the oldest is recent,
	-- there is nothing to do, and a scan for old rows would read them all.
	IF (SELECT o.created_at FROM release_expired_orders.order_events o
		ORDER BY o.id LIMIT 1) < horizon THEN
		DELETE FROM release_expired_orders.order_events e
		WHERE e.id IN (SELECT o.id FROM release_expired_orders.order_events o
					   WHERE o.created_at < horizon
					   ORDER BY o.id LIMIT max_rows);
		GET DIAGNOSTICS n = ROW_COUNT;
		total := total + n;
	END IF;

	-- pg_cron keeps a row per run of every job for ever; trim this job's:
	-- the runs of the job by name, and of earlier jobs that called the
	-- procedure in this database (a job unscheduled and scheduled again
	-- gets a new id).
	IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
		DELETE FROM cron.job_run_details d
		WHERE d.runid IN (
			SELECT o.runid FROM cron.job_run_details o
			WHERE o.end_time < horizon
			  AND o.database = pg_catalog.current_database()
			  AND (o.jobid IN (SELECT j.jobid FROM cron.job j
							   WHERE j.jobname = release_expired_orders.job_name())
				   OR o.command ~* '^\s*CALL\s+("?[^"]+"?\.)?release_expired_orders\s*\(')
			ORDER BY o.runid LIMIT max_rows);
		GET DIAGNOSTICS n = ROW_COUNT;
		total := total + n;
	END IF;
	RETURN total;
END
$$;
COMMENT ON FUNCTION release_expired_orders.purge_history(interval) IS
	'Delete run, audit and pg_cron history older than older_than (default history_retention), at most purge_limit rows per table';

CREATE OR REPLACE FUNCTION release_expired_orders.health()
RETURNS TABLE ("check" text, status text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	job_name constant text := release_expired_orders.job_name();
	app text := release_expired_orders.setting_text('release_expired_orders.app_schema', 'public');
	timeout integer;
	slow_ms bigint;
	alert_min bigint;
	rec record;
	n bigint;
	latest_error text;
	names text;
	orders_rel oid;
	roles text[];
	ddl text;
BEGIN
	-- Consecutive failed runs, newest first: failed and interrupted runs,
	-- and runs still marked running whose backend is gone (a live run holds
	-- a session advisory lock keyed on its id; see ReoLockRun).
	"check" := 'consecutive_failed_runs';
	BEGIN
		n := 0;
		latest_error := NULL;
		FOR rec IN
			SELECT r.id, r.outcome, r.error,
				   r.outcome = 'running' AND NOT EXISTS (
					   SELECT FROM pg_catalog.pg_locks l
					   WHERE l.locktype = 'advisory' AND l.database = d.oid
						 AND l.classid = 1919250176::pg_catalog.oid
						 AND l.objid = (r.id % 4294967296)::pg_catalog.oid
						 AND l.objsubid = 2 AND l.pid = r.backend_pid
						 AND l.granted) AS gone
			FROM release_expired_orders.runs r,
				 (SELECT oid FROM pg_catalog.pg_database
				  WHERE datname = pg_catalog.current_database()) d
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

	-- Poison orders: still pending, and failed in each of their last three
	-- or more attempts (a release or a restore starts the count afresh).
	"check" := 'poison_orders';
	BEGIN
		EXECUTE pg_catalog.format(
			'WITH suspects AS ('
			' SELECT f.order_id FROM release_expired_orders.order_events f'
			' WHERE f.outcome = ''failed'' GROUP BY f.order_id'
			' HAVING pg_catalog.count(DISTINCT f.run_id) >= 3),'
			' streaks AS ('
			' SELECT s.order_id, pg_catalog.count(DISTINCT e.run_id) AS runs,'
			' pg_catalog.max(e.order_number) AS order_number'
			' FROM suspects s JOIN release_expired_orders.order_events e'
			' ON e.order_id = s.order_id AND e.outcome = ''failed'''
			' AND e.id > coalesce((SELECT pg_catalog.max(x.id)'
			' FROM release_expired_orders.order_events x WHERE x.order_id = s.order_id'
			' AND x.outcome IN (''released'', ''restored'')), 0)'
			' GROUP BY s.order_id HAVING pg_catalog.count(DISTINCT e.run_id) >= 3)'
			' SELECT pg_catalog.count(*), pg_catalog.string_agg(pg_catalog.format(''%%s (%%s runs)'','
			' t.order_number, t.runs), '', '' ORDER BY t.order_number) FILTER (WHERE t.rank <= 20)'
			' FROM (SELECT s.*, pg_catalog.row_number() OVER (ORDER BY s.order_number) AS rank'
			' FROM streaks s JOIN %I.orders o ON o.id = s.order_id'
			' WHERE o.status = ''pending'' AND o.payment_status = ''pending'''
			' AND o.fulfillment_status = ''pending'') t', app)
			INTO n, names;
		status := CASE WHEN n > 0 THEN 'warning' ELSE 'ok' END;
		detail := CASE WHEN n = 0 THEN 'no order failed in 3 or more consecutive runs'
				  ELSE pg_catalog.format('%s order%s failed in 3 or more consecutive runs: %s%s', n,
						CASE WHEN n > 1 THEN 's' END, names,
						CASE WHEN n > 20 THEN pg_catalog.format(' and %s more', n - 20) END)
					   || '; see release_expired_orders.order_events for their errors' END;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;

	-- The last finished run against release_expired_orders.slow_run_ms.
	"check" := 'slow_run';
	BEGIN
		slow_ms := release_expired_orders.setting_int('release_expired_orders.slow_run_ms', 'ms', 60000);
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

	-- A successful (or partial) run within release_expired_orders.alert_after.
	"check" := 'last_success';
	BEGIN
		alert_min := release_expired_orders.setting_int('release_expired_orders.alert_after', 'min', 20);
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
		ELSIF rec.ended < pg_catalog.now() - pg_catalog.make_interval(mins => alert_min::integer) THEN
			status := 'critical';
			detail := pg_catalog.format('no successful run for %s min (release_expired_orders.alert_after is %s min)',
				pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now() - rec.ended) / 60), alert_min);
		ELSE
			status := 'ok';
			detail := pg_catalog.format('a run succeeded within release_expired_orders.alert_after (%s min)', alert_min);
		END IF;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;

	-- Expired orders still waiting, with the default timeout; a backlog is
	-- normal until the next run, so it warns only once the oldest has waited
	-- past its expiry for longer than alert_after.
	"check" := 'backlog';
	BEGIN
		timeout := release_expired_orders.setting_int('release_expired_orders.timeout_minutes', NULL, 30)::integer;
		alert_min := release_expired_orders.setting_int('release_expired_orders.alert_after', 'min', 20);
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
				pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now() - rec.oldest) / 60),
				pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now() - rec.oldest) / 60) - timeout,
				timeout);
		END IF;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;

	-- The pg_cron job: there, calling a procedure that exists, active, and
	-- its latest run not failed.
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

	-- An index that lets the candidate scan skip paid and cancelled orders:
	-- created_at first and a predicate on the three statuses, or the three
	-- statuses (in any order) then created_at.  The application's
	-- (status, created_at) index is not one: a paid order keeps status
	-- 'pending'.
	"check" := 'candidate_index';
	BEGIN
		SELECT c.oid INTO orders_rel
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
		WHERE s.nspname = app AND c.relname = 'orders' AND c.relkind IN ('r', 'p');
		IF orders_rel IS NULL THEN
			RAISE EXCEPTION 'relation "%.orders" does not exist', app;
		END IF;
		ddl := pg_catalog.format('CREATE INDEX CONCURRENTLY orders_release_candidates_idx ON %I.orders (created_at, id) WHERE status = ''pending'' AND payment_status = ''pending'' AND fulfillment_status = ''pending''',
			app);
		SELECT i.indexrelid::pg_catalog.regclass::text AS name, i.indisvalid AND i.indisready AS usable INTO rec
		FROM pg_catalog.pg_index i
		JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
		JOIN pg_catalog.pg_am am ON am.oid = ic.relam
		CROSS JOIN LATERAL (
			SELECT pg_catalog.array_agg(a.attname ORDER BY k.pos) AS cols
			FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY k (attnum, pos)
			LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
			WHERE k.pos <= i.indnkeyatts) k
		CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS pred) p
		WHERE i.indrelid = orders_rel AND am.amname = 'btree'
		  AND ((k.cols[1] = 'created_at'
				AND p.pred ~ '\mstatus\M\)?(::[a-z ]+)? = ''pending'''
				AND p.pred ~ '\mpayment_status\M\)?(::[a-z ]+)? = ''pending'''
				AND p.pred ~ '\mfulfillment_status\M\)?(::[a-z ]+)? = ''pending''')
			   OR (k.cols[1:3] @> '{status,payment_status,fulfillment_status}'::name[]
				   AND k.cols[4] = 'created_at'))
		ORDER BY i.indisvalid AND i.indisready DESC, ic.relname LIMIT 1;
		IF NOT FOUND THEN
			status := 'warning';
			detail := pg_catalog.format('no index lets the candidate scan skip paid orders, so every run reads all old orders; create one: %s',
				ddl);
		ELSIF NOT rec.usable THEN
			status := 'warning';
			detail := pg_catalog.format('index %s is invalid (a CREATE INDEX CONCURRENTLY that failed): DROP INDEX CONCURRENTLY %s; then %s',
				rec.name, rec.name, ddl);
		ELSE
			status := 'ok';
			detail := pg_catalog.format('the candidate scan can use index %s', rec.name);
		END IF;
	EXCEPTION WHEN OTHERS THEN
		status := 'critical';
		detail := 'check failed: ' || SQLERRM;
	END;
	RETURN NEXT;

	-- Row-level security that applies to the role running the job (the
	-- pg_cron job's role, else the current one) would hide orders from it,
	-- or hide the product or round whose stock or shares it must give back.
	"check" := 'row_level_security';
	BEGIN
		SELECT pg_catalog.array_agg(DISTINCT j.username) INTO roles
		FROM release_expired_orders.job_status() j;
		IF roles IS NULL THEN
			roles := ARRAY[current_user::text];
		END IF;
		SELECT pg_catalog.string_agg(pg_catalog.format('role %s on %s', t.rolname, t.tables), '; '
									 ORDER BY t.rolname) INTO names
		FROM (SELECT r.rolname,
					 pg_catalog.string_agg(pg_catalog.format('%I.%I', app, c.relname), ', '
										   ORDER BY c.relname) AS tables
			  FROM pg_catalog.pg_class c
			  JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
			  JOIN pg_catalog.pg_roles r ON r.rolname = ANY (roles)
			  WHERE s.nspname = app
				AND c.relname IN ('orders', 'products', 'lottery_rounds', 'notifications')
				AND c.relkind IN ('r', 'p')
				AND c.relrowsecurity
				AND NOT r.rolsuper AND NOT r.rolbypassrls
				AND (c.relforcerowsecurity OR NOT pg_catalog.pg_has_role(r.oid, c.relowner, 'USAGE'))
			  GROUP BY r.rolname) t;
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
COMMENT ON FUNCTION release_expired_orders.health() IS
	'One row per check (consecutive failed runs, poison orders, slow run, last success, backlog, pg_cron job, candidate index, row-level security): ok, warning or critical';

-- Default privileges of the role running the update must not open the
-- new functions to anyone, as the install script ensures for a fresh one.
DO $$
DECLARE
	g record;
BEGIN
	FOR g IN
		SELECT p.oid::pg_catalog.regprocedure AS fn, pg_catalog.pg_get_userbyid(a.grantee) AS grantee
		FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
		WHERE p.oid IN ('release_expired_orders.job_name()'::pg_catalog.regprocedure,
						'release_expired_orders.job_target(text)'::pg_catalog.regprocedure)
		  AND a.grantee <> 0 AND a.grantee <> p.proowner
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %I', g.fn, g.grantee);
	END LOOP;
END
$$;
