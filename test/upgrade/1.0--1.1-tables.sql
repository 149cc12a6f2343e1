-- What 1.1 changes in the 1.0 tables (the rest of the upgrade is generated).
ALTER TABLE release_expired_orders.runs
	ADD COLUMN backend_start timestamptz,
	ADD COLUMN vetoed integer NOT NULL DEFAULT 0,
	ADD COLUMN warnings text;
ALTER TABLE release_expired_orders.order_events
	DROP CONSTRAINT order_events_outcome_check,
	ADD CONSTRAINT order_events_outcome_check
		CHECK (outcome IN ('released', 'failed', 'vetoed', 'product_not_found',
						   'round_not_found', 'shares_clamped', 'stock_skipped',
						   'shares_skipped', 'restored'));
