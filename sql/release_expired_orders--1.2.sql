-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION release_expired_orders" to load this file. \quit

-- The job writes the old function's Chinese notes and notifications, which
-- only a UTF8 database holds as they are.  The control file declares this
-- script UTF8 and the script is kept ASCII, so that every other database
-- gets this error, before anything is created.
DO $$
BEGIN
	IF pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.<>) 'UTF8' THEN
		RAISE EXCEPTION 'release_expired_orders requires a database with encoding UTF8, and database "%" has encoding %',
			pg_catalog.current_database(), pg_catalog.getdatabaseencoding()
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Create the application''s database with CREATE DATABASE ... ENCODING ''UTF8'' TEMPLATE template0, or convert it with pg_dump and a restore into such a database.';
	END IF;
END
$$;

-- The extension's own objects live in their own schema; only the procedure
-- goes into the schema the extension is created in (default public).
CREATE SCHEMA release_expired_orders;
REVOKE ALL ON SCHEMA release_expired_orders FROM PUBLIC;

----------------------------------------------------------------------------
-- Run history and audit
----------------------------------------------------------------------------

-- One row per run of the job.
CREATE TABLE release_expired_orders.runs (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	started_at timestamptz NOT NULL,
	ended_at timestamptz,
	duration_ms double precision,
	timeout_minutes integer NOT NULL,
	batch_limit integer NOT NULL,
	chunk_size integer NOT NULL,
	cutoff timestamptz NOT NULL,
	atomic boolean NOT NULL,
	found integer NOT NULL DEFAULT 0,
	released integer NOT NULL DEFAULT 0,
	failed integer NOT NULL DEFAULT 0,
	outcome text NOT NULL DEFAULT 'running'
		CHECK (outcome IN ('running', 'success', 'partial', 'failed', 'interrupted')),
	error text,
	run_by name NOT NULL DEFAULT current_user,
	backend_pid integer NOT NULL DEFAULT pg_backend_pid(),
	-- with backend_pid, what identifies the backend of a live run
	backend_start timestamptz,
	vetoed integer NOT NULL DEFAULT 0,
	warnings text,
	-- the payment windows in force (NULL: none, every order has timeout_minutes)
	windows jsonb,
	-- what started the run; run_by is the role it ran as
	scheduler text NOT NULL DEFAULT 'call'
		CONSTRAINT runs_scheduler_check CHECK (scheduler IN ('call', 'pg_cron', 'worker'))
);
CREATE INDEX runs_started_at_idx ON release_expired_orders.runs (started_at);
CREATE INDEX runs_running_idx ON release_expired_orders.runs (id) WHERE outcome = 'running';
COMMENT ON TABLE release_expired_orders.runs IS
	'One row per run of release_expired_orders: arguments, counts, outcome';

-- One row per order outcome: released, failed, restored, and the anomalies
-- product_not_found, round_not_found and shares_clamped.
CREATE TABLE release_expired_orders.order_events (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	run_id bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	order_id uuid NOT NULL,
	order_number text,
	user_id uuid,
	product_id uuid,
	round_id uuid,
	quantity integer,
	outcome text NOT NULL
		CONSTRAINT order_events_outcome_check
		CHECK (outcome IN ('released', 'failed', 'vetoed', 'product_not_found',
						   'round_not_found', 'shares_clamped', 'stock_skipped',
						   'shares_skipped', 'restored')),
	prev_status varchar(20),
	prev_payment_status varchar(20),
	prev_fulfillment_status varchar(20),
	stock_delta integer NOT NULL DEFAULT 0,
	shares_delta integer NOT NULL DEFAULT 0,
	sqlstate char(5),
	message text
);
CREATE INDEX order_events_order_id_idx ON release_expired_orders.order_events (order_id);
CREATE INDEX order_events_run_id_idx ON release_expired_orders.order_events USING brin (run_id);
CREATE INDEX order_events_created_at_idx ON release_expired_orders.order_events USING brin (created_at);
COMMENT ON TABLE release_expired_orders.order_events IS
	'One row per order outcome of release_expired_orders, with the stock and share deltas applied';

-- The history is data, not definition: pg_dump dumps the rows and the
-- positions of the identity sequences, so that a restored database keeps
-- its history, numbers new rows after the old ones, and restore_order()
-- can undo a release made before the dump.
SELECT pg_catalog.pg_extension_config_dump('release_expired_orders.runs', '');
SELECT pg_catalog.pg_extension_config_dump('release_expired_orders.runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('release_expired_orders.order_events', '');
SELECT pg_catalog.pg_extension_config_dump('release_expired_orders.order_events_id_seq', '');

-- The payment window of each kind of order: the most specific row
-- wins, (type, method) then (type, any method); an order no row matches has
-- the timeout_minutes argument or setting.  timeout_minutes NULL: orders of
-- that kind never expire.  The rows are the operator's configuration, so
-- pg_dump dumps them.
CREATE TABLE release_expired_orders.payment_windows (
	order_type text NOT NULL
		CONSTRAINT payment_windows_order_type_check CHECK (order_type <> ''),
	-- NULL: any payment method
	payment_method text
		CONSTRAINT payment_windows_payment_method_check CHECK (payment_method <> ''),
	timeout_minutes integer
		CONSTRAINT payment_windows_timeout_minutes_check
		CHECK (timeout_minutes BETWEEN 1 AND 525600),
	CONSTRAINT payment_windows_key UNIQUE NULLS NOT DISTINCT (order_type, payment_method)
);
COMMENT ON TABLE release_expired_orders.payment_windows IS
	'Payment window in minutes per order type and payment method (NULL method: any; NULL minutes: never expires)';
SELECT pg_catalog.pg_extension_config_dump('release_expired_orders.payment_windows', '');
-- Every role that runs the job reads them (the schema's USAGE still decides
-- who reaches them); only the owner changes them.
GRANT SELECT ON release_expired_orders.payment_windows TO PUBLIC;

-- The backend restoring pg_dump output into this database, recorded by
-- this script when it runs in a restore (see the end of the script).  While
-- that backend is alive, or while a connection of pg_restore by the same
-- login role that started after it is connected to this database (the
-- other connections of a parallel pg_restore), nothing is released here:
-- a release would find orders whose products are not loaded yet, and write
-- ids the history being restored holds.  Not dumped: it is about this
-- database, and a restore starts with it empty.
CREATE TABLE release_expired_orders.restores (
	backend_pid integer NOT NULL,
	backend_start timestamptz NOT NULL,
	login_role oid NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE release_expired_orders.restores IS
	'The backend restoring pg_dump output into this database: no release while it restores';

----------------------------------------------------------------------------
-- The job
----------------------------------------------------------------------------

CREATE PROCEDURE release_expired_orders(
	timeout_minutes integer DEFAULT NULL,
	batch_limit integer DEFAULT NULL,
	INOUT summary jsonb DEFAULT NULL)
LANGUAGE C AS 'MODULE_PATHNAME', 'reo_release_v1_1';
COMMENT ON PROCEDURE release_expired_orders(integer, integer, jsonb) IS
	'Release orders unpaid for timeout_minutes: at most batch_limit, oldest first';

-- Nothing that writes is executable by PUBLIC (see README, Security).
REVOKE ALL ON PROCEDURE release_expired_orders(integer, integer, jsonb) FROM PUBLIC;

----------------------------------------------------------------------------
-- Operations: scheduling, monitoring, history, dry run and undo
----------------------------------------------------------------------------

-- Everything below is created, and every function below runs, with
-- search_path "pg_catalog, pg_temp", and names the extension's and the
-- application's objects with their schema, so that nothing planted in
-- another schema (public, the extension's) is ever resolved.  CREATE
-- EXTENSION restores search_path when the script ends.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- health() looks for orders that keep failing; failures are rare, so this
-- index stays small while order_events grows.
CREATE INDEX order_events_failed_idx ON release_expired_orders.order_events (order_id, run_id)
	WHERE outcome = 'failed';

-- The candidate scan leaves alone an order that failed for a reason of its
-- own, or that the application vetoed, within release_expired_orders.
-- retry_backoff; rare rows, so the index stays small.  (Same predicate as
-- BACKOFF_ROW in src/sql.c.)
CREATE INDEX order_events_retry_idx ON release_expired_orders.order_events (order_id, created_at)
	WHERE outcome = 'vetoed'
	   OR (outcome = 'failed' AND sqlstate <> ALL ('{55P03,40P01,40001}'::pg_catalog.bpchar[]));

-- restore_order() trusts the released rows and their deltas to move stock:
-- only the extension's own statements write them (a restored row may be
-- added by anyone with INSERT; the table's owner may do anything).
CREATE FUNCTION release_expired_orders.audit_guard()
RETURNS trigger LANGUAGE C AS 'MODULE_PATHNAME', 'reo_audit_guard';
REVOKE ALL ON FUNCTION release_expired_orders.audit_guard() FROM PUBLIC;
CREATE TRIGGER order_events_guard
	BEFORE INSERT OR UPDATE OR DELETE ON release_expired_orders.order_events
	FOR EACH ROW EXECUTE FUNCTION release_expired_orders.audit_guard();
CREATE TRIGGER order_events_guard_truncate
	BEFORE TRUNCATE ON release_expired_orders.order_events
	FOR EACH STATEMENT EXECUTE FUNCTION release_expired_orders.audit_guard();

----------------------------------------------------------------------------
-- Rules the C code owns, for the SQL side (one definition each)
----------------------------------------------------------------------------

-- release_expired_orders.NAME as text, integers in their base unit (ms,
-- s or min); calling it loads the library, which defines the settings.
CREATE FUNCTION release_expired_orders.setting(name text)
RETURNS text LANGUAGE C STABLE STRICT AS 'MODULE_PATHNAME', 'reo_setting';

-- The procedure's argument check: SQLSTATE 22023 outside the setting's range.
CREATE FUNCTION release_expired_orders.check_argument(name text, value integer)
RETURNS void LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'reo_check_argument';

-- Whether a timestamp column of an application table is timestamptz; the
-- release's error naming the table and column when it cannot be used.
CREATE FUNCTION release_expired_orders.app_column_is_tz(app_schema text, table_name text, column_name text)
RETURNS boolean LANGUAGE C STABLE STRICT AS 'MODULE_PATHNAME', 'reo_app_column_is_tz';

-- t as wall-clock time in zone, by the zone's full rules (never a fixed
-- abbreviation offset), as the release stores a timestamp column.
CREATE FUNCTION release_expired_orders.wall_clock(t timestamptz, zone text)
RETURNS timestamp LANGUAGE C STABLE STRICT AS 'MODULE_PATHNAME', 'reo_wall_clock';

-- The SQL that stores "now" in a timestamp column of either convention.
CREATE FUNCTION release_expired_orders.now_in(tz boolean, zone text)
RETURNS text LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN tz THEN 'pg_catalog.now()'
	ELSE pg_catalog.format('release_expired_orders.wall_clock(pg_catalog.now(), %L)', zone) END;

-- Whether the backend that started a run (pid and start time) still exists.
CREATE FUNCTION release_expired_orders.run_is_alive(backend_pid integer, backend_start timestamptz)
RETURNS boolean LANGUAGE C STABLE STRICT AS 'MODULE_PATHNAME', 'reo_run_is_alive';

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

-- The application's tables on which row-level security applies to role,
-- or NULL: the rule by which the job refuses to run.
CREATE FUNCTION release_expired_orders.row_security_problem(role name)
RETURNS text LANGUAGE C STABLE STRICT AS 'MODULE_PATHNAME', 'reo_row_security_problem';

-- Why the job skips the application's notifications, or NULL.
CREATE FUNCTION release_expired_orders.notifications_problem()
RETURNS text LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'reo_notifications_problem';

----------------------------------------------------------------------------
-- Scheduling with pg_cron
----------------------------------------------------------------------------

-- The name of this database's job.  pg_cron 1.4 upserts a job on its name
-- and role, whatever its database, so a job for another database of the
-- cluster (scheduled from pg_cron's database with
-- cron.schedule_in_database) is named after it:
-- release-expired-orders_invoke in the database pg_cron is installed in,
-- release-expired-orders_invoke@<database> in every other.
CREATE FUNCTION release_expired_orders.job_name()
RETURNS text LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN 'release-expired-orders_invoke'
	|| CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN ''
	   ELSE '@' || pg_catalog.current_database() END;
COMMENT ON FUNCTION release_expired_orders.job_name() IS
	'The name of this database''s pg_cron job: release-expired-orders_invoke, or release-expired-orders_invoke@<database> outside pg_cron''s database';

-- What a job's command CALLs: the procedure as written, whether it is
-- missing (a job left behind by DROP EXTENSION, or by an installation in
-- another schema: every run fails), and, when the missing one is a
-- release_expired_orders procedure, the same command calling this
-- installation's procedure with the same arguments.  All NULL when the
-- command is not a CALL of a name.
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

-- How often a pg_cron schedule runs, for the schedules whose period is
-- plain: pg_cron 1.5+'s intervals ('30 seconds'), and every N minutes or
-- hours, hourly and daily cron lines; NULL for any other.  POSIX classes,
-- not backslashes: the same whatever standard_conforming_strings says.
CREATE FUNCTION release_expired_orders.schedule_interval(schedule text)
RETURNS interval LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
RETURN CASE
	WHEN schedule ~ '^[[:space:]]*[0-9]+[[:space:]]+seconds?[[:space:]]*$'
		THEN make_interval(secs => substring(schedule FROM '[0-9]+')::double precision)
	WHEN schedule ~ '^[[:space:]]*[*][[:space:]]+[*][[:space:]]+[*][[:space:]]+[*][[:space:]]+[*][[:space:]]*$'
		THEN interval '1 minute'
	WHEN schedule ~ '^[[:space:]]*[*]/[0-9]+[[:space:]]+[*][[:space:]]+[*][[:space:]]+[*][[:space:]]+[*][[:space:]]*$'
		THEN make_interval(mins => substring(schedule FROM '/([0-9]+)')::integer)
	WHEN schedule ~ '^[[:space:]]*[0-9]+[[:space:]]+[*][[:space:]]+[*][[:space:]]+[*][[:space:]]+[*][[:space:]]*$'
		THEN interval '1 hour'
	WHEN schedule ~ '^[[:space:]]*[0-9]+[[:space:]]+[*]/[0-9]+[[:space:]]+[*][[:space:]]+[*][[:space:]]+[*][[:space:]]*$'
		THEN make_interval(hours => substring(schedule FROM '/([0-9]+)')::integer)
	WHEN schedule ~ '^[[:space:]]*[0-9]+[[:space:]]+[0-9]+[[:space:]]+[*][[:space:]]+[*][[:space:]]+[*][[:space:]]*$'
		THEN interval '1 day'
	END;
COMMENT ON FUNCTION release_expired_orders.schedule_interval(text) IS
	'How often a pg_cron schedule (cron line or pg_cron 1.5+ interval) runs, or NULL when it has no plain period';

-- The pg_cron job of this database named job_name(),
-- with its latest run.  SECURITY DEFINER because pg_cron's row-level
-- security shows each role only its own jobs, and health() must see the
-- job whoever asks; it shows nothing but this job.
CREATE FUNCTION release_expired_orders.job_status()
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

-- The job's one statement: CALL of the procedure, found through the
-- extension's catalog entry so that it follows the schema it lives in.
CREATE FUNCTION release_expired_orders.job_command(timeout_minutes integer, batch_limit integer)
RETURNS text LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	proc_schema text;
	args text[] := '{}';
BEGIN
	PERFORM release_expired_orders.check_argument('timeout_minutes',
		coalesce(timeout_minutes, 1));
	PERFORM release_expired_orders.check_argument('batch_limit',
		coalesce(batch_limit, 1));
	SELECT n.nspname INTO proc_schema
	FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
	WHERE e.extname = 'release_expired_orders';
	IF timeout_minutes IS NOT NULL THEN
		args := args || pg_catalog.format('timeout_minutes => %s', timeout_minutes);
	END IF;
	IF batch_limit IS NOT NULL THEN
		args := args || pg_catalog.format('batch_limit => %s', batch_limit);
	END IF;
	RETURN pg_catalog.format('CALL %I.release_expired_orders(%s)', proc_schema,
							 pg_catalog.array_to_string(args, ', '));
END
$$;

-- Schedule the job for the current role (pg_cron runs a job as the role
-- that scheduled it).  Idempotent: pg_cron upserts a job by name and role;
-- an inactive job is replaced so that scheduling always leaves it running.
CREATE FUNCTION release_expired_orders.schedule(
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
				  HINT = 'Use the five-field cron syntax (minute hour day-of-month month day-of-week, in GMT), for example ''*/10 * * * *'', or, with pg_cron 1.5 or later, an interval such as ''30 seconds''.';
	END;
	RETURN job;
END
$$;
COMMENT ON FUNCTION release_expired_orders.schedule(text, integer, integer) IS
	'Schedule CALL release_expired_orders() with pg_cron as the current role (job release_expired_orders.job_name())';

-- Remove the job of this database (every role's, when the caller may see
-- them, as a superuser does).  Idempotent: false when there was none.
CREATE FUNCTION release_expired_orders.unschedule()
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

----------------------------------------------------------------------------
-- History
----------------------------------------------------------------------------

-- Delete history older than older_than (default: the setting
-- release_expired_orders.history_retention), at most purge_limit rows per
-- table and call, oldest first: finished runs, audit rows, and this job's
-- rows in cron.job_run_details.  The job calls it at the end of every run,
-- so its cost is bounded and the history stays trimmed.  It runs as its
-- caller and deletes as the extension's owner, so that the job's role needs
-- only EXECUTE on it, not DELETE on the tables (and pg_cron's history of
-- other roles' runs of the job is trimmed too).  A caller whose current
-- user is not a member of the extension's owner (superusers are) may
-- delete nothing newer than the configured retention, judged by the exact
-- time it deletes up to (now() less older_than); only a superuser may set
-- history_retention itself.  In C: a SECURITY DEFINER function could not
-- see its caller's current user.
CREATE FUNCTION release_expired_orders.purge_history(older_than interval DEFAULT NULL)
RETURNS bigint LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'reo_purge_history';
COMMENT ON FUNCTION release_expired_orders.purge_history(interval) IS
	'Delete run, audit and pg_cron history older than older_than (default history_retention), at most purge_limit rows per table';

----------------------------------------------------------------------------
-- Dry run and undo
----------------------------------------------------------------------------

-- The orders the next call would release, oldest first, with their age:
-- the procedure's own candidate statement without its locks (so it also
-- lists orders a payment holds at this moment, which the call would skip)
-- and without writing anything.
CREATE FUNCTION release_expired_orders.preview(
	timeout_minutes integer DEFAULT NULL,
	batch_limit integer DEFAULT NULL)
RETURNS TABLE (order_id uuid, order_number varchar, user_id uuid, product_id uuid,
			   round_id uuid, quantity integer, created_at timestamptz, age interval,
			   window_minutes integer, deadline timestamptz)
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'reo_preview';
COMMENT ON FUNCTION release_expired_orders.preview(integer, integer) IS
	'Dry run: the orders the next CALL release_expired_orders() would release, oldest deadline first, with their age, window and deadline; no locks, no writes';

-- The statements the job runs in this database, as it runs them against
-- the application's tables as they are now, with the types of their
-- parameters: to PREPARE and EXPLAIN them (README, Reference).  Some run
-- only with notifications, payment windows or a fallback.
CREATE FUNCTION release_expired_orders.statements()
RETURNS TABLE (name text, statement text, argument_types regtype[])
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'reo_statements';
COMMENT ON FUNCTION release_expired_orders.statements() IS
	'The statements the job runs in this database, with their parameters'' types: to EXPLAIN them';

-- The deadline worker of this database (README, Deadline worker): its
-- state, one row when the library is in shared_preload_libraries with
-- release_expired_orders.max_workers above 0 (pid NULL: none runs, and
-- last_error says why), none otherwise.  Read-only (STABLE, as health() is): executable by whoever
-- may use the schema.
CREATE FUNCTION release_expired_orders.worker_status()
RETURNS TABLE (pid integer, database name, role name, started_at timestamptz,
			   last_wake timestamptz, next_wake timestamptz, last_lag_ms double precision,
			   last_error text, last_error_at timestamptz)
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'reo_worker_status';
COMMENT ON FUNCTION release_expired_orders.worker_status() IS
	'The deadline worker: pid (NULL: not running), database, role, start, last and next wake, lag of the last wake for a deadline, last error';

-- Make the worker look for the next deadline now, for an application that
-- just placed an order with a window shorter than the worker's sleep.
-- false when no worker runs.  Not executable by PUBLIC: grant it to the
-- application's role (each call costs the worker a look).
CREATE FUNCTION release_expired_orders.wake_worker()
RETURNS boolean LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'reo_wake_worker';
COMMENT ON FUNCTION release_expired_orders.wake_worker() IS
	'Wake the deadline worker so that it looks for the next deadline now; false when no worker runs';

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

-- Undo one release made by the procedure, from its audit row: the order
-- gets back the statuses it had, the stock returned is taken again and the
-- shares given back are counted again, or nothing changes and an error
-- says why.  Rows are locked in a fixed order (order, product, round) so
-- that two restores, or a restore and the job, cannot deadlock.
--
-- Like the procedure, it keeps the caller's search_path for the writes to
-- the application's tables, so that the application's triggers find their
-- own objects (section 9).  It has no SET clause: its first statement
-- pins "pg_catalog, pg_temp" for its own statements, it switches back to
-- the caller's path around the application writes only (each of them
-- names every table, function and operator with its schema), and it puts
-- the caller's path back before it returns (an error rolls the setting
-- back with the transaction or subtransaction).  Its variables have
-- schema-qualified types, because they are resolved in the caller's path.
CREATE FUNCTION release_expired_orders.restore_order(
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
COMMENT ON FUNCTION release_expired_orders.restore_order(uuid) IS
	'Undo one release: statuses back, stock taken and shares counted again, or an error and nothing changed';

----------------------------------------------------------------------------
-- Monitoring
----------------------------------------------------------------------------

-- Runs per hour and per day (in the session's TimeZone): how often the job
-- ran, what it released and failed, and how long it took.
CREATE VIEW release_expired_orders.stats AS
SELECT p.period, p.period_start,
	   pg_catalog.count(*) AS runs,
	   pg_catalog.count(*) FILTER (WHERE r.outcome IN ('failed', 'interrupted')) AS failed_runs,
	   pg_catalog.sum(r.found) AS found,
	   pg_catalog.sum(r.released) AS released,
	   pg_catalog.sum(r.failed) AS failed,
	   pg_catalog.round(pg_catalog.avg(r.duration_ms)::numeric, 1) AS avg_duration_ms,
	   pg_catalog.round((pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY r.duration_ms))::numeric, 1)
		   AS p95_duration_ms,
	   pg_catalog.round(pg_catalog.max(r.duration_ms)::numeric, 1) AS max_duration_ms
FROM release_expired_orders.runs r
CROSS JOIN LATERAL (VALUES ('hour', pg_catalog.date_trunc('hour', r.started_at)),
						   ('day', pg_catalog.date_trunc('day', r.started_at))) p (period, period_start)
GROUP BY p.period, p.period_start;
COMMENT ON VIEW release_expired_orders.stats IS
	'Runs per hour and per day: runs, failed runs, orders found, released and failed, avg/p95/max duration in ms';

-- The earliest deadline of any order still pending, by the job's own
-- candidate statement (orders waiting out the retry backoff included).
CREATE FUNCTION release_expired_orders.oldest_deadline()
RETURNS timestamptz LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'reo_oldest_deadline';
COMMENT ON FUNCTION release_expired_orders.oldest_deadline() IS
	'The earliest deadline (created_at plus its payment window) of any order still pending, or NULL';

-- Numbers for dashboards: one row per metric, with its
-- Prometheus type and help, for sql_exporter or postgres_exporter's custom
-- queries.  oldest_overdue_seconds is the one to alert on.  Totals are over
-- the history kept (history_retention).  It reads the run rows and one
-- index probe per order type, so it is cheap enough to scrape every 15 s.
CREATE VIEW release_expired_orders.metrics AS
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
COMMENT ON VIEW release_expired_orders.metrics IS
	'One row per metric (value, Prometheus type, help) for dashboards; alert on oldest_overdue_seconds';

-- health() calls one function per check, each of which can be called alone:
-- health_<check>() returns the one row health() has for that check.  Each
-- is PL/pgSQL for its exception block: a check that cannot run (a missing
-- table, a missing privilege) returns critical with "check failed: ..."
-- instead of raising, alone as within health().  They run as their caller,
-- as health() does, and PUBLIC may execute them, as it may health().

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
CREATE FUNCTION release_expired_orders.health()
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
COMMENT ON FUNCTION release_expired_orders.health() IS
	'One row per check (consecutive failed runs, poison orders, notifications, slow run, last success, backlog, pg_cron job, candidate index, row-level security, deadline worker): ok, warning or critical';

----------------------------------------------------------------------------
-- Privileges
----------------------------------------------------------------------------

-- Nothing that writes is executable by PUBLIC (see README, Security).
REVOKE ALL ON FUNCTION release_expired_orders.schedule(text, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION release_expired_orders.unschedule() FROM PUBLIC;
REVOKE ALL ON FUNCTION release_expired_orders.purge_history(interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION release_expired_orders.restore_order(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION release_expired_orders.wake_worker() FROM PUBLIC;
-- Nor is any SECURITY DEFINER function: job_status() shows the pg_cron job
-- (its command, role and last message) to roles that pg_cron would not
-- show it to; grant it to the roles that call health() or schedule().
REVOKE ALL ON FUNCTION release_expired_orders.job_status() FROM PUBLIC;

-- Default privileges of the installing role (Supabase grants ALL on new
-- functions in public to anon, authenticated and service_role; other
-- setups grant new schemas, tables or functions to other roles) must not
-- open the job or its schema to anyone: take back every grant they made on
-- the extension's objects.  The README lists the grants to give.
DO $$
DECLARE
	g record;
BEGIN
	FOR g IN
		SELECT pg_catalog.format('%s %s',
				   CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
				   p.oid::pg_catalog.regprocedure) AS object, a.grantee
		FROM pg_catalog.pg_depend d
		JOIN pg_catalog.pg_proc p ON p.oid = d.objid,
			 pg_catalog.aclexplode(p.proacl) a
		WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
		  AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
		  AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e
							WHERE e.extname = 'release_expired_orders')
		  AND d.deptype = 'e' AND a.grantee <> 0 AND a.grantee <> p.proowner
		UNION
		SELECT pg_catalog.format('%s %s', CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
								 c.oid::pg_catalog.regclass), a.grantee
		FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
		WHERE c.relnamespace = 'release_expired_orders'::pg_catalog.regnamespace
		  AND a.grantee <> 0 AND a.grantee <> c.relowner
		UNION
		SELECT 'SCHEMA release_expired_orders', a.grantee
		FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
		WHERE n.nspname = 'release_expired_orders' AND a.grantee <> 0 AND a.grantee <> n.nspowner
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %I', g.object,
								  pg_catalog.pg_get_userbyid(g.grantee));
	END LOOP;
END
$$;

----------------------------------------------------------------------------
-- Schedule the job now when pg_cron is here
----------------------------------------------------------------------------

-- Not during a restore: a restore brings back pg_cron's jobs, this one
-- included as it was, after this script, and a job inserted here would
-- make that COPY fail on its jobid.  A restore is told apart by
-- row_security = off, which every script of pg_dump and every pg_restore
-- session sets first (CREATE EXTENSION leaves it as it is, unlike
-- check_function_bodies, which it turns off for every script), or by the
-- application_name pg_restore (a dump made with --enable-row-security).  A
-- fresh CREATE EXTENSION in a session with row_security off is told to
-- schedule by hand (README, Scheduling).
--
-- In a restore, this backend is recorded and the history's identity
-- sequence marked, until the dump sets it: no release happens in this
-- database until the restore is over (see restores).  A fresh CREATE
-- EXTENSION taken for a restore holds releases until restore_finished().
-- Without an orders table yet, with client_min_messages at warning (a
-- dump with --enable-row-security), the backend alone is recorded.
DO $$
BEGIN
	IF NOT pg_catalog.current_setting('row_security')::boolean
	   OR pg_catalog.current_setting('application_name') OPERATOR(pg_catalog.=) 'pg_restore' THEN
		INSERT INTO release_expired_orders.restores (backend_pid, backend_start, login_role)
		SELECT a.pid, a.backend_start, a.usesysid
		  FROM pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) a;
		PERFORM pg_catalog.setval('release_expired_orders.runs_id_seq', 9223372036854775000, true);
	ELSIF pg_catalog.to_regclass(pg_catalog.format('%I.orders',
			COALESCE(NULLIF(pg_catalog.current_setting('release_expired_orders.app_schema', true), ''),
					 'public'))) IS NULL
		  AND pg_catalog.current_setting('client_min_messages') OPERATOR(pg_catalog.=) 'warning' THEN
		-- No orders table yet, in a session that set client_min_messages to
		-- warning as every pg_dump script does, which also creates extensions
		-- before tables: maybe a restore that keeps row_security on (a dump
		-- made with --enable-row-security, through psql).  Hold releases
		-- while this backend lives, never past it.
		INSERT INTO release_expired_orders.restores (backend_pid, backend_start, login_role)
		SELECT a.pid, a.backend_start, a.usesysid
		  FROM pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) a;
	END IF;
END
$$;

-- A job left from an earlier installation (or scheduled by another role)
-- is kept, so that installing again never duplicates it; when it calls a
-- procedure that is gone (DROP EXTENSION, then CREATE EXTENSION in another
-- schema) it is made to call this installation's, with its schedule,
-- arguments, role and active flag unchanged.
DO $$
DECLARE
	job_name constant text := release_expired_orders.job_name();
	command text := release_expired_orders.job_command(NULL, NULL);
	job record;
	found_one boolean := false;
BEGIN
	IF NOT pg_catalog.current_setting('row_security')::boolean
	   OR pg_catalog.current_setting('application_name') = 'pg_restore' THEN
		-- A WARNING, not a NOTICE: CREATE EXTENSION hides the notices of
		-- the script it runs, and a fresh install must be told.
		RAISE WARNING 'release_expired_orders is not scheduled: this looks like a restore of pg_dump output (row_security is %, application_name is "%")',
			pg_catalog.current_setting('row_security'), pg_catalog.current_setting('application_name')
			USING DETAIL = 'A restore brings back the pg_cron jobs of the dump, this one included, after CREATE EXTENSION; nothing is released in this database until it has loaded the data.',
				  HINT = 'If this is not a restore, run SELECT release_expired_orders.restore_finished(); and SELECT release_expired_orders.schedule(); as the role that should run the job.';
		RETURN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
		-- A WARNING, not a NOTICE: CREATE EXTENSION hides the notices of
		-- the script it runs, and this one asks the user to act.
		RAISE WARNING 'release_expired_orders is not scheduled: pg_cron is not installed in database "%"',
			pg_catalog.current_database()
			USING HINT = pg_catalog.format('With pg_cron in this database (shared_preload_libraries = ''pg_cron'', cron.database_name = %L, CREATE EXTENSION pg_cron), run: SELECT release_expired_orders.schedule(); with pg_cron in another database, run there: SELECT cron.schedule_in_database(%L, ''*/10 * * * *'', %L, %L); or run %s every 10 minutes from any scheduler.',
				pg_catalog.current_database(), job_name, command, pg_catalog.current_database(), command);
		RETURN;
	END IF;
	FOR job IN
		SELECT j.jobid, j.username, j.schedule, t.procedure, t.missing, t.repaired_command
		FROM cron.job j
		LEFT JOIN LATERAL release_expired_orders.job_target(j.command) t ON true
		WHERE j.jobname = job_name AND j.database = pg_catalog.current_database()
		ORDER BY j.jobid
	LOOP
		found_one := true;
		IF job.repaired_command IS NOT NULL THEN
			PERFORM cron.alter_job(job.jobid, command => job.repaired_command);
			RAISE WARNING 'pg_cron job % (jobid %, role %) called procedure %, which no longer exists: it now runs %',
				job_name, job.jobid, job.username, job.procedure, job.repaired_command
				USING DETAIL = pg_catalog.format('Its schedule "%s", role and active flag are unchanged.', job.schedule);
		ELSIF job.missing THEN
			RAISE WARNING 'pg_cron job % (jobid %, role %) calls procedure %, which does not exist: every run fails',
				job_name, job.jobid, job.username, job.procedure
				USING HINT = pg_catalog.format('Run SELECT release_expired_orders.schedule(); as role %s to make it run %s.',
					job.username, command);
		ELSE
			RAISE NOTICE 'pg_cron job % is already scheduled (jobid %, as role %, at "%"); left unchanged',
				job_name, job.jobid, job.username, job.schedule;
		END IF;
	END LOOP;
	IF found_one THEN
		RETURN;
	END IF;
	BEGIN
		PERFORM release_expired_orders.schedule();
		RAISE NOTICE 'scheduled pg_cron job % at "*/10 * * * *" as role %: %',
			job_name, current_user, command;
	EXCEPTION WHEN OTHERS THEN
		-- The extension is still usable; say how to finish the job by hand.
		RAISE WARNING 'could not schedule release_expired_orders with pg_cron: %', SQLERRM
			USING HINT = 'Run SELECT release_expired_orders.schedule(); as the role that should run the job.';
	END;
END
$$;
