-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION release_expired_orders" to load this file. \quit

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
	backend_pid integer NOT NULL DEFAULT pg_backend_pid()
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
	order_number varchar(50),
	user_id uuid,
	product_id uuid,
	round_id uuid,
	quantity integer,
	outcome text NOT NULL
		CHECK (outcome IN ('released', 'failed', 'product_not_found',
						   'round_not_found', 'shares_clamped', 'restored')),
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

----------------------------------------------------------------------------
-- The job
----------------------------------------------------------------------------

CREATE PROCEDURE release_expired_orders(
	timeout_minutes integer DEFAULT NULL,
	batch_limit integer DEFAULT NULL,
	INOUT summary jsonb DEFAULT NULL)
LANGUAGE C AS 'MODULE_PATHNAME', 'release_expired_orders';
COMMENT ON PROCEDURE release_expired_orders(integer, integer, jsonb) IS
	'Release orders unpaid for timeout_minutes: at most batch_limit, oldest first';

-- Nothing that writes is executable by PUBLIC (see README, Security).
REVOKE ALL ON PROCEDURE release_expired_orders(integer, integer, jsonb) FROM PUBLIC;

----------------------------------------------------------------------------
-- Operations: scheduling, monitoring, history, dry run and undo
----------------------------------------------------------------------------
