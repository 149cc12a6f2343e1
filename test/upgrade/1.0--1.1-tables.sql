-- What 1.1 changes in the 1.0 tables (the rest of the upgrade is generated).
ALTER TABLE release_expired_orders.runs
	ADD COLUMN backend_start timestamptz,
	ADD COLUMN vetoed integer NOT NULL DEFAULT 0,
	ADD COLUMN warnings text,
	ADD COLUMN windows jsonb,
	ADD COLUMN scheduler text NOT NULL DEFAULT 'call'
		CONSTRAINT runs_scheduler_check CHECK (scheduler IN ('call', 'pg_cron', 'worker'));
ALTER TABLE release_expired_orders.order_events
	DROP CONSTRAINT order_events_outcome_check,
	ADD CONSTRAINT order_events_outcome_check
		CHECK (outcome IN ('released', 'failed', 'vetoed', 'product_not_found',
						   'round_not_found', 'shares_clamped', 'stock_skipped',
						   'shares_skipped', 'restored'));
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
-- preview() gains columns, which CREATE OR REPLACE cannot add.
DROP FUNCTION release_expired_orders.preview(integer, integer);
