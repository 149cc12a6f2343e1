/*-------------------------------------------------------------------------
 *
 * sql.c
 *	  Every SQL statement the extension's C code runs, built in one place,
 *	  prepared once per backend on first use and kept.
 *
 * Guarantees: each statement names every relation, function and operator
 * with its schema, so that whatever the caller's search_path, nothing
 * planted in another schema is resolved; the search_path itself is left
 * alone, so that the application's own triggers behave as they do for the
 * application.  The application's schema is quoted with quote_identifier.
 * The texts depend on the shape of the application's tables; when that
 * shape changes, the kept plans are dropped and prepared again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "sql.h"
#include "util.h"

#define MAX_ARGS 14

/* Contents of the application-compatible notifications (SPEC 7). */
#define NOTE_PREFIX "过期订单清理: "
#define NIL_UUID "'00000000-0000-0000-0000-000000000000'::pg_catalog.uuid"

/* Operators, qualified so that no look-alike in another schema is chosen. */
#define EQ " OPERATOR(pg_catalog.=) "
#define NE " OPERATOR(pg_catalog.<>) "
#define LT " OPERATOR(pg_catalog.<) "
#define LE " OPERATOR(pg_catalog.<=) "
#define GT " OPERATOR(pg_catalog.>) "
#define GE " OPERATOR(pg_catalog.>=) "
#define PLUS " OPERATOR(pg_catalog.+) "
#define MINUS " OPERATOR(pg_catalog.-) "
#define TIMES " OPERATOR(pg_catalog.*) "

#define EVENTS REO_SCHEMA ".order_events"
/*
 * An audit row that makes its order wait out the retry backoff: a veto, or
 * a failure that says something about the order (not a lock timeout, a
 * deadlock or a serialization failure).  The install script's partial
 * index order_events_retry_idx has the same predicate.
 */
#define BACKOFF_ROW "(f.outcome" EQ "'vetoed' OR (f.outcome" EQ "'failed'" \
	" AND f.sqlstate" NE "ALL ('{55P03,40P01,40001}'::pg_catalog.bpchar[])))"
#define EVENT_COLUMNS "run_id, order_id, order_number, user_id, product_id, round_id, quantity, outcome"

typedef struct BuiltStatement
{
	StringInfoData sql;
	int			nargs;
	Oid			argtypes[MAX_ARGS];
	int			expected_rc;
	bool		custom_plan;	/* plan for each execution's values */
} BuiltStatement;

static SPIPlanPtr plans[STMT_COUNT];
static bool in_own_statement = false;
static int	expected_rcs[STMT_COUNT];
static AppSchema plans_schema;
static bool plans_schema_set = false;

static inline Oid
TsType(bool tz)
{
	return tz ? TIMESTAMPTZOID : TIMESTAMPOID;
}

static void
Args(BuiltStatement *b, int nargs, const Oid *types)
{
	Assert(nargs <= MAX_ARGS);
	b->nargs = nargs;
	memcpy(b->argtypes, types, nargs * sizeof(Oid));
}

/*
 * What a candidate is, the one definition: an order whose three statuses
 * are pending, created before the cutoff, after the keyset position, and
 * not failed or vetoed since $5 (now less the retry backoff); oldest first.  The job locks them so
 * that a payment or another run holding a row is skipped, not awaited;
 * preview() takes the same selection without locks.
 */
static void
BuildCandidates(BuiltStatement *b, const AppSchema *app, const char *nsp, bool lock)
{
	Oid			types[] = {TsType(app->orders_created_tz),
		TsType(app->orders_created_tz), UUIDOID, INT4OID, TIMESTAMPTZOID};

	appendStringInfo(&b->sql,
					 "SELECT o.id, o.order_number, o.user_id, o.product_id,"
					 " o.round_id, o.quantity, o.created_at"
					 " FROM %s.orders o"
					 " WHERE o.status" EQ "'pending' AND o.payment_status" EQ "'pending'"
					 " AND o.fulfillment_status" EQ "'pending'"
					 " AND o.created_at" LT "$1 AND o.created_at" GE "$2"
					 " AND (o.created_at, o.id)" GT "($2, $3)"
					 " AND NOT EXISTS (SELECT FROM " EVENTS " f"
					 " WHERE f.order_id" EQ "o.id AND f.created_at" GT "$5 AND " BACKOFF_ROW ")"
					 " ORDER BY o.created_at, o.id LIMIT $4%s",
					 nsp, lock ? " FOR UPDATE OF o SKIP LOCKED" : "");
	Args(b, 5, types);
	b->expected_rc = SPI_OK_SELECT;

	/*
	 * A generic plan cannot know how many candidates lie after the keyset
	 * position and may sort them all; with the values, the planner walks
	 * the (created_at, id) index from that position and stops at LIMIT.
	 */
	b->custom_plan = true;
}

/*
 * The release of a part of a chunk in one statement: the orders (with the
 * pending statuses checked again under the row lock), their audit rows,
 * and the application's notifications.  It
 * returns the number released, the orders a trigger on orders vetoed (the
 * locked candidates it did not update), and the stock and shares to give
 * back, aggregated per product and per round in id order.
 *
 * The pending statuses are checked with texteq() rather than the =
 * operator on purpose: the planner then cannot match them to the
 * recommended partial index, whose entries for already released orders it
 * would otherwise read for every chunk, and finds the orders by primary key.
 */
static void
BuildRelease(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {UUIDARRAYOID, INT8OID, TsType(app->orders_updated_tz),
	TEXTOID, TsType(app->notifications_tz), BOOLOID};

	appendStringInfo(&b->sql,
					 "WITH released AS ("
					 " UPDATE %s.orders o SET status = 'expired',"
					 " payment_status = 'cancelled', fulfillment_status = 'cancelled',"
					 " updated_at = $3, notes = pg_catalog.concat(o.notes, $4)"
					 " WHERE o.id" EQ "ANY ($1)"
					 " AND pg_catalog.texteq(o.status, 'pending')"
					 " AND pg_catalog.texteq(o.payment_status, 'pending')"
					 " AND pg_catalog.texteq(o.fulfillment_status, 'pending')"
					 " RETURNING o.id, o.order_number, o.user_id, o.product_id,"
					 " o.round_id, o.quantity),"
					 " events AS ("
					 " INSERT INTO " EVENTS " (" EVENT_COLUMNS ","
					 " prev_status, prev_payment_status, prev_fulfillment_status,"
					 " stock_delta, shares_delta)"
					 " SELECT $2, r.id, r.order_number, r.user_id, r.product_id, r.round_id,"
					 " r.quantity, 'released', 'pending', 'pending', 'pending',"
					 " CASE WHEN r.product_id IS NOT NULL AND r.quantity" GT "0"
					 " THEN r.quantity ELSE 0 END,"
					 " CASE WHEN r.round_id IS NOT NULL AND r.quantity" GT "0"
					 " THEN" MINUS "r.quantity ELSE 0 END"
					 " FROM released r)",
					 nsp);
	if (app->notifications)
		appendStringInfo(&b->sql,
						 ", notified AS ("
						 " INSERT INTO %s.notifications (id, user_id, type, content,"
						 " status, sent_at, created_at)"
						 " SELECT pg_catalog.gen_random_uuid(), r.user_id, 'system_audit',"
						 " pg_catalog.concat('" NOTE_PREFIX "order_released_successfully - 订单: ', r.id),"
						 " 'sent', $5, $5 FROM released r WHERE $6)", nsp);
	else
		appendStringInfoString(&b->sql, ", unused AS (SELECT $5, $6)");
	appendStringInfoString(&b->sql,
						   " SELECT (SELECT pg_catalog.count(*) FROM released),"
						   " (SELECT pg_catalog.array_agg(c.id) FROM pg_catalog.unnest($1) c (id)"
						   " WHERE NOT EXISTS (SELECT FROM released r WHERE r.id" EQ "c.id)),"
						   " p.ids, p.qty, g.ids, g.qty"
						   " FROM (SELECT pg_catalog.array_agg(d.id ORDER BY d.id),"
						   " pg_catalog.array_agg(d.qty ORDER BY d.id)"
						   " FROM (SELECT r.product_id, pg_catalog.sum(r.quantity) FROM released r"
						   " WHERE r.product_id IS NOT NULL AND r.quantity" GT "0"
						   " GROUP BY r.product_id) d (id, qty)) p (ids, qty),"
						   " (SELECT pg_catalog.array_agg(d.id ORDER BY d.id),"
						   " pg_catalog.array_agg(d.qty ORDER BY d.id)"
						   " FROM (SELECT r.round_id, pg_catalog.sum(r.quantity) FROM released r"
						   " WHERE r.round_id IS NOT NULL AND r.quantity" GT "0"
						   " GROUP BY r.round_id) d (id, qty)) g (ids, qty)");
	Args(b, 6, types);
	b->expected_rc = SPI_OK_SELECT;
	/* Planned for the part's ids, so that orders are found by primary key. */
	b->custom_plan = true;
}

/*
 * A counter table's part of the release, the chunk's last writes: lock
 * the rows in id order (so that runs, purchases and undo never deadlock),
 * then add each row's aggregated quantity.  Returns, in id order, the rows
 * whose counter did not move by the quantity asked (missing, skipped or
 * changed by a trigger, or clamped), with what did move and why, so that
 * the audit can be corrected from what was really written.
 */
static void
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
					 " RETURNING t.id, %s AS applied)"
					 " SELECT pg_catalog.array_agg(d.id ORDER BY d.id),"
					 " pg_catalog.array_agg(COALESCE(x.applied, 0) ORDER BY d.id),"
					 " pg_catalog.array_agg(CASE WHEN x.id IS NOT NULL THEN '%s'"
					 " WHEN EXISTS (SELECT FROM locked l WHERE l.id" EQ "d.id) THEN '%s'"
					 " ELSE '%s' END ORDER BY d.id)"
					 " FROM d LEFT JOIN done x ON x.id" EQ "d.id"
					 " WHERE x.id IS NULL OR x.applied" NE "d.qty",
					 col, nsp, table, nsp, table, col, newval, applied,
					 rounds ? "shares_clamped" : "stock_skipped",
					 rounds ? "shares_skipped" : "stock_skipped",
					 rounds ? "round_not_found" : "product_not_found");
	Args(b, 3, types);
	b->expected_rc = SPI_OK_SELECT;
}

/*
 * Correct the audit of released orders whose product or round did not
 * move by their quantity: each order's share of what did move is found
 * oldest order first, and each order that did not get all of its quantity
 * back gets an anomaly row whose delta corrects its released row's.  The
 * audit is only ever appended to, so the role running the job needs no
 * right to change it; an order's deltas are the sum over its release's
 * rows.  Runs only when BuildCounters() reported such rows.
 */
static void
BuildFixAudit(BuiltStatement *b, const char *nsp, bool rounds)
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
					 " o AS (SELECT e.order_id, e.order_number, e.user_id,"
					 " e.product_id, e.round_id, e.quantity, p.applied, p.kind,"
					 " pg_catalog.sum(e.quantity) OVER (PARTITION BY p.id"
					 " ORDER BY ord.created_at, e.order_id) AS upto"
					 " FROM " EVENTS " e JOIN p ON e.%s" EQ "p.id"
					 " JOIN %s.orders ord ON ord.id" EQ "e.order_id"
					 " WHERE e.order_id" EQ "ANY ($2) AND e.run_id" EQ "$1"
					 " AND e.outcome" EQ "'released' AND e.quantity" GT "0),"
					 " g AS (SELECT o.*, LEAST(o.upto, GREATEST(o.applied, 0))" MINUS
					 "LEAST(o.upto" MINUS "o.quantity, GREATEST(o.applied, 0)) AS moved FROM o)"
					 " INSERT INTO " EVENTS " (" EVENT_COLUMNS ","
					 " prev_status, prev_payment_status, prev_fulfillment_status, %s, message)"
					 " SELECT $1, g.order_id, g.order_number, g.user_id, g.product_id,"
					 " g.round_id, g.quantity, g.kind, 'pending', 'pending', 'pending',"
					 " pg_catalog.int4(%s), %s"
					 " FROM g WHERE g.moved" LT "g.quantity",
					 idcol, nsp, rounds ? "shares_delta" : "stock_delta",
					 rounds ? "g.quantity" MINUS "g.moved" : "g.moved" MINUS "g.quantity",
					 message);
	Args(b, 5, types);
	b->expected_rc = SPI_OK_INSERT;
}

/* Lock product or round rows in id order before a fallback. */
static void
BuildLock(BuiltStatement *b, const char *nsp, const char *table)
{
	Oid			types[] = {UUIDARRAYOID};

	appendStringInfo(&b->sql,
					 "SELECT t.id FROM %s.%s t WHERE t.id" EQ "ANY ($1)"
					 " ORDER BY t.id FOR NO KEY UPDATE OF t", nsp, table);
	Args(b, 1, types);
	b->expected_rc = SPI_OK_SELECT;
}

/*
 * One order that failed or that a trigger vetoed: its audit row, which also
 * starts its retry backoff, and the application's notification of a
 * failure.
 */
static void
BuildRecord(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {INT8OID, UUIDOID, TEXTOID, UUIDOID, UUIDOID, UUIDOID,
		INT4OID, TEXTOID, TEXTOID, TEXTOID, TsType(app->notifications_tz),
	BOOLOID};

	appendStringInfoString(&b->sql,
						   "WITH events AS ("
						   " INSERT INTO " EVENTS " (" EVENT_COLUMNS ","
						   " prev_status, prev_payment_status, prev_fulfillment_status,"
						   " sqlstate, message)"
						   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
						   " 'pending', 'pending', 'pending', $9, $10))");
	if (app->notifications)
		appendStringInfo(&b->sql,
						 " INSERT INTO %s.notifications (id, user_id, type, content,"
						 " status, sent_at, created_at)"
						 " SELECT pg_catalog.gen_random_uuid(), " NIL_UUID ", 'system_audit',"
						 " pg_catalog.concat('" NOTE_PREFIX "order_release_failed - 订单: ', $2),"
						 " 'sent', $11, $11 WHERE $12 AND $8" EQ "'failed'", nsp);
	else
		appendStringInfoString(&b->sql, " SELECT $11, $12");
	Args(b, 12, types);
	b->expected_rc = app->notifications ? SPI_OK_INSERT : SPI_OK_SELECT;
}

/*
 * A new run row, after marking as interrupted every run whose backend is
 * gone: a live run is one whose backend, identified by its pid and start
 * time, still exists, which no other session can fake.
 */
static void
BuildRunBegin(BuiltStatement *b)
{
	Oid			types[] = {TIMESTAMPTZOID, INT4OID, INT4OID, INT4OID,
	TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID};

	appendStringInfoString(&b->sql,
						   "WITH stale AS ("
						   " UPDATE " REO_SCHEMA ".runs r SET outcome = 'interrupted',"
						   " error = 'the backend running it ended before the run finished'"
						   " WHERE r.outcome" EQ "'running' AND NOT COALESCE("
						   REO_SCHEMA ".run_is_alive(r.backend_pid, r.backend_start), false))"
						   " INSERT INTO " REO_SCHEMA ".runs (started_at, timeout_minutes,"
						   " batch_limit, chunk_size, cutoff, atomic, backend_start)"
						   " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id");
	Args(b, 7, types);
	b->expected_rc = SPI_OK_INSERT_RETURNING;
}

static void
BuildRunProgress(BuiltStatement *b)
{
	Oid			types[] = {INT8OID, INT4OID, INT4OID, INT4OID, INT4OID};

	appendStringInfoString(&b->sql,
						   "UPDATE " REO_SCHEMA ".runs SET found = found" PLUS "$2,"
						   " released = released" PLUS "$3, failed = failed" PLUS "$4,"
						   " vetoed = vetoed" PLUS "$5 WHERE id" EQ "$1");
	Args(b, 5, types);
	b->expected_rc = SPI_OK_UPDATE;
}

/* Close a run; a run that released anything gets its batch notification. */
static void
BuildRunEnd(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, FLOAT8OID,
	TsType(app->notifications_tz), BOOLOID, TEXTOID};

	appendStringInfoString(&b->sql,
						   "WITH done AS ("
						   " UPDATE " REO_SCHEMA ".runs SET ended_at = $4, duration_ms = $5,"
						   " outcome = $2, error = $3, warnings = $8 WHERE id" EQ "$1"
						   " RETURNING released)");
	if (app->notifications)
		appendStringInfo(&b->sql,
						 " INSERT INTO %s.notifications (id, user_id, type, content,"
						 " status, sent_at, created_at)"
						 " SELECT pg_catalog.gen_random_uuid(), " NIL_UUID ", 'system_audit',"
						 " '" NOTE_PREFIX "batch_processing_completed - 订单: N/A', 'sent', $6, $6"
						 " FROM done WHERE done.released" GT "0 AND $7", nsp);
	else
		appendStringInfoString(&b->sql, " SELECT $6, $7 FROM done");
	Args(b, 8, types);
	b->expected_rc = app->notifications ? SPI_OK_INSERT : SPI_OK_SELECT;
}

static void
BuildStatement(ReoStatement stmt, BuiltStatement *b)
{
	const AppSchema *app = &plans_schema;
	const char *nsp = quote_identifier(app->schema);

	initStringInfo(&b->sql);
	b->custom_plan = false;
	b->nargs = 0;
	switch (stmt)
	{
		case STMT_CANDIDATES:
			BuildCandidates(b, app, nsp, true);
			break;
		case STMT_PREVIEW:
			BuildCandidates(b, app, nsp, false);
			break;
		case STMT_RELEASE:
			BuildRelease(b, app, nsp);
			break;
		case STMT_PRODUCTS:
			BuildCounters(b, nsp, app->products_updated_tz, false);
			break;
		case STMT_ROUNDS:
			BuildCounters(b, nsp, app->rounds_updated_tz, true);
			break;
		case STMT_LOCK_PRODUCTS:
			BuildLock(b, nsp, "products");
			break;
		case STMT_LOCK_ROUNDS:
			BuildLock(b, nsp, "lottery_rounds");
			break;
		case STMT_FIX_STOCK:
			BuildFixAudit(b, nsp, false);
			break;
		case STMT_FIX_SHARES:
			BuildFixAudit(b, nsp, true);
			break;
		case STMT_RECORD:
			BuildRecord(b, app, nsp);
			break;
		case STMT_CONSTRAINTS:
			appendStringInfoString(&b->sql, "SET CONSTRAINTS ALL IMMEDIATE");
			b->expected_rc = SPI_OK_UTILITY;
			break;
		case STMT_RUN_BEGIN:
			BuildRunBegin(b);
			break;
		case STMT_RUN_PROGRESS:
			BuildRunProgress(b);
			break;
		case STMT_RUN_END:
			BuildRunEnd(b, app, nsp);
			break;
		case STMT_PURGE:
			appendStringInfoString(&b->sql, "SELECT " REO_SCHEMA ".purge_history()");
			b->expected_rc = SPI_OK_SELECT;
			break;
		case STMT_COUNT:
			elog(ERROR, "invalid statement %d", (int) stmt);
	}
}

/*
 * Make the kept plans match the application's current shape, dropping them
 * when it changed since they were prepared.
 */
void
ReoUseSchema(const AppSchema *app)
{
	if (plans_schema_set && memcmp(&plans_schema, app, sizeof(AppSchema)) == 0)
		return;
	for (int i = 0; i < STMT_COUNT; i++)
	{
		if (plans[i] != NULL)
			SPI_freeplan(plans[i]);
		plans[i] = NULL;
	}
	memcpy(&plans_schema, app, sizeof(AppSchema));
	plans_schema_set = true;
}

/*
 * Run one of the statements, preparing and keeping its plan on first use,
 * so that a session pays only for the statements it needs.  Errors unless
 * SPI reports the outcome the statement is built for; the rows, if any,
 * are left in SPI_tuptable, and the caller's memory context is current.
 */
uint64
ReoExecute(ReoStatement stmt, Datum *values, const char *nulls)
{
	MemoryContext caller = CurrentMemoryContext;
	int			rc;

	Assert(plans_schema_set);
	if (plans[stmt] == NULL)
	{
		BuiltStatement b;
		char	   *sql;
		SPIPlanPtr	plan;

		BuildStatement(stmt, &b);
		/* The source is UTF-8; the notification texts are not ASCII. */
		sql = pg_any_to_server(b.sql.data, b.sql.len, PG_UTF8);
		plan = SPI_prepare_cursor(sql, b.nargs, b.argtypes,
								  b.custom_plan ? CURSOR_OPT_CUSTOM_PLAN : 0);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for statement %d: %s",
				 (int) stmt, SPI_result_code_string(SPI_result));
		rc = SPI_keepplan(plan);
		if (rc != 0)
			elog(ERROR, "SPI_keepplan failed: %s", SPI_result_code_string(rc));
		plans[stmt] = plan;
		expected_rcs[stmt] = b.expected_rc;
	}

	/* The audit guard lets the extension's own statements write the audit. */
	in_own_statement = true;
	PG_TRY();
	{
		rc = SPI_execute_plan(plans[stmt], values, nulls, false, 0);
	}
	PG_FINALLY();
	{
		in_own_statement = false;
	}
	PG_END_TRY();

	/*
	 * SPI leaves the procedure context current; go back to the caller's, so
	 * that what a chunk allocates is freed with the chunk, whatever the
	 * number of chunks in a run.
	 */
	MemoryContextSwitchTo(caller);
	if (rc != expected_rcs[stmt])
		elog(ERROR, "statement %d of release_expired_orders returned %s, expected %s",
			 (int) stmt, SPI_result_code_string(rc),
			 SPI_result_code_string(expected_rcs[stmt]));
	return SPI_processed;
}

/*
 * Whether one of the statements above is running: the audit rows that undo
 * trusts are written only then.
 */
bool
ReoInOwnStatement(void)
{
	return in_own_statement;
}
