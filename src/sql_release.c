/*-------------------------------------------------------------------------
 *
 * sql_release.c
 *	  The SQL texts of a part's release: the orders, their audit and
 *	  notifications, the counters, the audit corrections, and a failed or
 *	  vetoed order's record.  Qualified as every text in sql.c is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "sql_build.h"

/*
 * The release of a part of a chunk: its orders, with the pending statuses
 * checked again under the row lock, and the application's notifications of
 * the orders released.  It runs the application's code (the triggers of
 * orders and notifications), so it writes nothing of the extension's own.
 * Without notify (they are off, or were found to fail), the statement does
 * not touch notifications at all: even an INSERT of no rows would fire the
 * application's statement triggers there.
 * Returns one row per order it updated: the id, and whether the row really
 * became expired/cancelled/cancelled; a trigger may have returned OLD or
 * written the old statuses back, and an order a trigger skipped (returned
 * NULL) is not returned at all.  Statuses are compared as text, so that
 * any string or enum type of the application compares the same.
 *
 * The pending statuses are checked with texteq() rather than the =
 * operator on purpose: the planner then cannot match them to the
 * recommended partial index, whose entries for already released orders it
 * would otherwise read for every chunk, and finds the orders by primary key.
 */
void
BuildRelease(BuiltStatement *b, const AppSchema *app, const char *nsp, bool notify)
{
	Oid			types[] = {UUIDARRAYOID, TsType(app->orders_updated_tz), TEXTOID,
	TsType(app->notifications_tz), BOOLOID};

	appendStringInfo(&b->sql,
					 "WITH released AS ("
					 " UPDATE %s.orders o SET status = 'expired',"
					 " payment_status = 'cancelled', fulfillment_status = 'cancelled',"
					 " updated_at = $2, notes = pg_catalog.concat(o.notes, $3)"
					 " WHERE o.id" EQ "ANY ($1)"
					 " AND pg_catalog.texteq(o.status::pg_catalog.text, 'pending')"
					 " AND pg_catalog.texteq(o.payment_status::pg_catalog.text, 'pending')"
					 " AND pg_catalog.texteq(o.fulfillment_status::pg_catalog.text, 'pending')"
					 " RETURNING o.id, o.user_id,"
					 " pg_catalog.texteq(o.status::pg_catalog.text, 'expired')"
					 " AND pg_catalog.texteq(o.payment_status::pg_catalog.text, 'cancelled')"
					 " AND pg_catalog.texteq(o.fulfillment_status::pg_catalog.text, 'cancelled')"
					 " AS became)",
					 nsp);
	if (app->notifications && notify)
		appendStringInfo(&b->sql,
						 ", notified AS ("
						 " INSERT INTO %s.notifications (id, user_id, type, content,"
						 " status, sent_at, created_at)"
						 " SELECT pg_catalog.gen_random_uuid(), COALESCE(r.user_id, " NIL_UUID "),"
						 " 'system_audit',"
						 " pg_catalog.concat('" NOTE_PREFIX "order_released_successfully - 订单: ', r.id),"
						 " 'sent', $4, $4 FROM released r WHERE $5 AND r.became)", nsp);
	else
		appendStringInfoString(&b->sql, ", unused AS (SELECT $4, $5)");
	appendStringInfoString(&b->sql, " SELECT r.id, r.became FROM released r");
	Args(b, 5, types);
	b->expected_rc = SPI_OK_SELECT;
	/*
	 * One generic plan finds the part's orders by primary key whatever the
	 * number of ids; planning the statement again for every chunk cost about
	 * half a millisecond, the largest fixed cost of a chunk of 100.
	 */
	b->cursor_options = CURSOR_OPT_GENERIC_PLAN;
}

/*
 * The audit rows of a part's released orders, from what the locked rows
 * reserved before the update (whatever a trigger did to the row), and the
 * run row's counts when the part is the whole chunk ($10): $8 orders found,
 * $9 vetoed by a trigger that skipped the update.
 */
void
BuildAudit(BuiltStatement *b)
{
	Oid			types[] = {INT8OID, UUIDARRAYOID, TEXTARRAYOID, UUIDARRAYOID,
		UUIDARRAYOID, UUIDARRAYOID, INT4ARRAYOID, INT4OID, INT4OID, BOOLOID};

	appendStringInfoString(&b->sql,
						   "WITH events AS ("
						   " INSERT INTO " EVENTS " (" EVENT_COLUMNS ","
						   " prev_status, prev_payment_status, prev_fulfillment_status,"
						   " stock_delta, shares_delta)"
						   " SELECT $1, c.id, c.num, c.usr, c.product, c.round, c.qty,"
						   " 'released', 'pending', 'pending', 'pending',"
						   " CASE WHEN c.product IS NOT NULL AND c.qty" GT "0 THEN c.qty ELSE 0 END,"
						   " CASE WHEN c.round IS NOT NULL AND c.qty" GT "0 THEN" MINUS "c.qty ELSE 0 END"
						   " FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3),"
						   " pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6),"
						   " pg_catalog.unnest($7)) c (id, num, usr, product, round, qty))"
						   " UPDATE " REO_SCHEMA ".runs SET found = found" PLUS "$8,"
						   " released = released" PLUS "pg_catalog.cardinality($2),"
						   " vetoed = vetoed" PLUS "$9 WHERE id" EQ "$1 AND $10");
	Args(b, 10, types);
	b->expected_rc = SPI_OK_UPDATE;
	b->cursor_options = CURSOR_OPT_GENERIC_PLAN;
}

/*
 * A counter table's part of the release, the chunk's last writes: lock
 * the rows in id order (so that runs, purchases and undo never deadlock),
 * then add each row's aggregated quantity.  Returns, in id order, the rows
 * whose counter did not move by the quantity asked (missing, skipped or
 * changed by a trigger, or clamped), with what did move and why, so that
 * the audit can be corrected from what was really written; and the rows it
 * locked with their values before, for BuildCountersMoved().
 */
void
BuildCounters(BuiltStatement *b, const char *nsp, bool tz, bool rounds)
{
	Oid			types[] = {UUIDARRAYOID, INT8ARRAYOID, TsType(tz)};
	const char *table = rounds ? "lottery_rounds" : "products";
	const char *col = rounds ? "sold_shares" : "stock";
	const char *newval = rounds ?
		"CASE WHEN COALESCE(t.sold_shares, 0)" LE "0 THEN t.sold_shares"
		" ELSE pg_catalog.int4(GREATEST(0, t.sold_shares" MINUS "d.qty)) END" :
		"pg_catalog.int4(COALESCE(t.stock, 0)" PLUS "d.qty)";
	const char *applied = rounds ?
		"COALESCE(l.before, 0)" MINUS "COALESCE(t.sold_shares, 0)" :
		"COALESCE(t.stock, 0)" MINUS "COALESCE(l.before, 0)";

	appendStringInfo(&b->sql,
					 "WITH d AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) d (id, qty)),"
					 " locked AS (SELECT t.id, t.%s AS before FROM %s.%s t"
					 " WHERE t.id" EQ "ANY ($1) ORDER BY t.id FOR NO KEY UPDATE OF t),"
					 " done AS (UPDATE %s.%s t SET %s = %s, updated_at = $3"
					 " FROM d, locked l WHERE t.id" EQ "d.id AND l.id" EQ "t.id"
					 " RETURNING t.id, pg_catalog.int8(%s) AS applied)"
					 " SELECT pg_catalog.array_agg(d.id ORDER BY d.id)"
					 " FILTER (WHERE x.id IS NULL OR x.applied" NE "d.qty),"
					 " pg_catalog.array_agg(COALESCE(x.applied, 0) ORDER BY d.id)"
					 " FILTER (WHERE x.id IS NULL OR x.applied" NE "d.qty),"
					 " pg_catalog.array_agg(CASE WHEN x.id IS NOT NULL THEN '%s'"
					 " WHEN EXISTS (SELECT FROM locked l WHERE l.id" EQ "d.id) THEN '%s'"
					 " ELSE '%s' END ORDER BY d.id)"
					 " FILTER (WHERE x.id IS NULL OR x.applied" NE "d.qty),"
					 " (SELECT pg_catalog.array_agg(l.id ORDER BY l.id) FROM locked l),"
					 " (SELECT pg_catalog.array_agg(l.before ORDER BY l.id) FROM locked l)"
					 " FROM d LEFT JOIN done x ON x.id" EQ "d.id",
					 col, nsp, table, nsp, table, col, newval, applied,
					 rounds ? "shares_clamped" : "stock_skipped",
					 rounds ? "shares_skipped" : "stock_skipped",
					 rounds ? "round_not_found" : "product_not_found");
	Args(b, 3, types);
	b->expected_rc = SPI_OK_SELECT;
	/*
	 * The generic plan finds the rows by primary key; the custom plans of
	 * the first chunks, which see how many ids there are, read the whole
	 * table twice (to lock, then to update), whatever its size.
	 */
	b->cursor_options = CURSOR_OPT_GENERIC_PLAN;
}

/*
 * What the counter rows of a part really moved, read after every trigger
 * of the application has fired (an AFTER trigger may write the row again,
 * a BEFORE trigger may move it by more than asked): the rows asked for
 * ($1, quantities $2) whose counter did not move by the quantity, in the
 * same form as BuildCounters() reports them.  $3 and $4 are the rows it
 * locked and their values before; the rows stay locked until the commit,
 * so nothing else moved them.
 */
void
BuildCountersMoved(BuiltStatement *b, const char *nsp, bool rounds)
{
	Oid			types[] = {UUIDARRAYOID, INT8ARRAYOID, UUIDARRAYOID, INT4ARRAYOID};
	const char *table = rounds ? "lottery_rounds" : "products";
	const char *applied = rounds ?
		"COALESCE(l.before, 0)" MINUS "COALESCE(t.sold_shares, 0)" :
		"COALESCE(t.stock, 0)" MINUS "COALESCE(l.before, 0)";
	/* a round with no shares sold keeps them; one with fewer is clamped at 0 */
	const char *clamped = rounds ?
		"f.applied" EQ "CASE WHEN COALESCE(f.before, 0)" LE "0 THEN 0"
		" ELSE LEAST(f.before, f.qty) END" : "false";

	appendStringInfo(&b->sql,
					 "WITH d AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) d (id, qty)),"
					 " l AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4)) l (id, before)),"
					 " f AS (SELECT d.id, d.qty, l.before, l.id IS NOT NULL AND t.id IS NOT NULL AS found,"
					 " CASE WHEN l.id IS NOT NULL AND t.id IS NOT NULL THEN pg_catalog.int8(%s) ELSE 0 END AS applied"
					 " FROM d LEFT JOIN l ON l.id" EQ "d.id LEFT JOIN %s.%s t ON t.id" EQ "d.id)"
					 " SELECT pg_catalog.array_agg(f.id ORDER BY f.id),"
					 " pg_catalog.array_agg(f.applied ORDER BY f.id),"
					 " pg_catalog.array_agg(CASE WHEN NOT f.found THEN '%s' WHEN %s THEN '%s'"
					 " ELSE '%s' END ORDER BY f.id)"
					 " FROM f WHERE NOT f.found OR f.applied" NE "f.qty",
					 applied, nsp, table,
					 rounds ? "round_not_found" : "product_not_found", clamped,
					 rounds ? "shares_clamped" : "stock_skipped",
					 rounds ? "shares_skipped" : "stock_skipped");
	Args(b, 4, types);
	b->expected_rc = SPI_OK_SELECT;
}

/*
 * Correct the audit of released orders whose product or round did not
 * move by their quantity: each order's share of what did move is found
 * in the part's order ($2, oldest first), and what moved beyond the
 * quantities asked (or the wrong way) goes to the part's last order; each
 * order whose share is not its quantity gets an anomaly row whose delta
 * corrects its released row's, so that the deltas sum to what moved.  The
 * audit is only ever appended to, so the role running the job needs no
 * right to change it; an order's deltas are the sum over its release's
 * rows.  Runs only when BuildCounters() or BuildCountersMoved() reported
 * such rows.
 */
void
BuildFixAudit(BuiltStatement *b, bool rounds)
{
	Oid			types[] = {INT8OID, UUIDARRAYOID, UUIDARRAYOID, INT8ARRAYOID, TEXTARRAYOID};
	const char *idcol = rounds ? "round_id" : "product_id";
	const char *message = rounds ?
		"CASE WHEN g.kind" EQ "'round_not_found' THEN pg_catalog.concat('lottery round ', g.round_id,"
		" ' does not exist; shares not returned')"
		" WHEN g.kind" EQ "'shares_clamped' THEN pg_catalog.concat('lottery round ', g.round_id, ' had ',"
		" g.applied, ' sold shares, fewer than the quantity returned; clamped at 0')"
		" ELSE pg_catalog.concat('a trigger on lottery_rounds skipped or changed the update of round ',"
		" g.round_id, '; shares returned: ', g.moved, ' of ', g.quantity) END" :
		"CASE WHEN g.kind" EQ "'product_not_found' THEN pg_catalog.concat('product ', g.product_id,"
		" ' does not exist; stock not returned')"
		" ELSE pg_catalog.concat('a trigger on products skipped or changed the update of product ',"
		" g.product_id, '; stock returned: ', g.moved, ' of ', g.quantity) END";

	appendStringInfo(&b->sql,
					 "WITH p AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4),"
					 " pg_catalog.unnest($5)) p (id, applied, kind)),"
					 " k AS (SELECT * FROM pg_catalog.unnest($2) WITH ORDINALITY k (id, pos)),"
					 " o AS (SELECT e.order_id, e.order_number, e.user_id,"
					 " e.product_id, e.round_id, e.quantity, p.id AS counter, p.applied, p.kind,"
					 " pg_catalog.sum(e.quantity) OVER (PARTITION BY p.id"
					 " ORDER BY k.pos) AS upto,"
					 " pg_catalog.row_number() OVER (PARTITION BY p.id ORDER BY k.pos DESC) AS from_last"
					 " FROM " EVENTS " e JOIN p ON e.%s" EQ "p.id"
					 " JOIN k ON k.id" EQ "e.order_id"
					 " WHERE e.run_id" EQ "$1"
					 " AND e.outcome" EQ "'released' AND e.quantity" GT "0),"
					 " c AS (SELECT o.*, LEAST(o.upto, GREATEST(o.applied, 0))" MINUS
					 "LEAST(o.upto" MINUS "o.quantity, GREATEST(o.applied, 0)) AS share FROM o),"
					 " g AS (SELECT c.*, c.share" PLUS "CASE WHEN c.from_last" EQ "1"
					 " THEN c.applied" MINUS "pg_catalog.sum(c.share) OVER (PARTITION BY c.counter)"
					 " ELSE 0 END AS moved FROM c)"
					 " INSERT INTO " EVENTS " (" EVENT_COLUMNS ","
					 " prev_status, prev_payment_status, prev_fulfillment_status, %s, message)"
					 " SELECT $1, g.order_id, g.order_number, g.user_id, g.product_id,"
					 " g.round_id, g.quantity, g.kind, 'pending', 'pending', 'pending',"
					 " pg_catalog.int4(%s), %s"
					 " FROM g WHERE g.moved" NE "g.quantity",
					 idcol, rounds ? "shares_delta" : "stock_delta",
					 rounds ? "g.quantity" MINUS "g.moved" : "g.moved" MINUS "g.quantity",
					 message);
	Args(b, 5, types);
	b->expected_rc = SPI_OK_INSERT;
}

/*
 * One order that failed or that a trigger vetoed: its audit row, which also
 * starts its retry backoff.
 */
void
BuildRecord(BuiltStatement *b)
{
	Oid			types[] = {INT8OID, UUIDOID, TEXTOID, UUIDOID, UUIDOID, UUIDOID,
	INT4OID, TEXTOID, TEXTOID, TEXTOID};

	appendStringInfoString(&b->sql,
						   "INSERT INTO " EVENTS " (" EVENT_COLUMNS ","
						   " prev_status, prev_payment_status, prev_fulfillment_status,"
						   " sqlstate, message)"
						   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
						   " 'pending', 'pending', 'pending', $9, $10)");
	Args(b, 10, types);
	b->expected_rc = SPI_OK_INSERT;
}

/* The application's notification of an order that failed. */
void
BuildNoteFailed(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {UUIDOID, TsType(app->notifications_tz)};

	if (!app->notifications)
		elog(ERROR, "release_expired_orders writes no notifications here");
	appendStringInfo(&b->sql,
					 "INSERT INTO %s.notifications (id, user_id, type, content,"
					 " status, sent_at, created_at)"
					 " VALUES (pg_catalog.gen_random_uuid(), " NIL_UUID ", 'system_audit',"
					 " pg_catalog.concat('" NOTE_PREFIX "order_release_failed - 订单: ', $1),"
					 " 'sent', $2, $2)", nsp);
	Args(b, 2, types);
	b->expected_rc = SPI_OK_INSERT;
}
