/*-------------------------------------------------------------------------
 *
 * statements.c
 *	  Every SQL statement the extension's C code runs, built in one place,
 *	  prepared once per backend and kept.
 *
 * Each statement names every relation, function and operator with its
 * schema, so that whatever the caller's search_path, no object planted in
 * another schema is ever resolved; the search_path itself is left alone so
 * that the application's own triggers behave as they do for the
 * application.  The application's schema is quoted with quote_identifier.
 * The text depends on the shape of the application's tables (timestamp
 * conventions, notifications on or off); when that shape changes, the kept
 * plans are dropped and prepared again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "release_expired_orders.h"

#define MAX_ARGS 10

/* Contents of the application-compatible notifications (SPEC 7). */
#define NOTE_PREFIX "过期订单清理: "
#define NIL_UUID "'00000000-0000-0000-0000-000000000000'::pg_catalog.uuid"

/* Operators, qualified so that no look-alike in another schema is chosen. */
#define EQ " OPERATOR(pg_catalog.=) "
#define LT " OPERATOR(pg_catalog.<) "
#define LE " OPERATOR(pg_catalog.<=) "
#define GT " OPERATOR(pg_catalog.>) "
#define GE " OPERATOR(pg_catalog.>=) "
#define PLUS " OPERATOR(pg_catalog.+) "
#define MINUS " OPERATOR(pg_catalog.-) "
#define MOD " OPERATOR(pg_catalog.%%) "

typedef struct BuiltStatement
{
	StringInfoData sql;
	int			nargs;
	Oid			argtypes[MAX_ARGS];
	int			expected_rc;
	bool		custom_plan;	/* plan for each execution's values */
} BuiltStatement;

static SPIPlanPtr plans[STMT_COUNT];
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
 * Candidates: the oldest expired orders after the keyset position, locked
 * so that a payment or another run holding a row is skipped, not awaited.
 */
static void
BuildCandidates(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {TsType(app->orders_created_tz),
	TsType(app->orders_created_tz), UUIDOID, INT4OID};

	appendStringInfo(&b->sql,
					 "SELECT o.id, o.order_number, o.user_id, o.product_id,"
					 " o.round_id, o.quantity, o.created_at"
					 " FROM %s.orders o"
					 " WHERE o.status" EQ "'pending' AND o.payment_status" EQ "'pending'"
					 " AND o.fulfillment_status" EQ "'pending'"
					 " AND o.created_at" LT "$1 AND o.created_at" GE "$2"
					 " AND (o.created_at, o.id)" GT "($2, $3)"
					 " ORDER BY o.created_at, o.id LIMIT $4"
					 " FOR UPDATE OF o SKIP LOCKED", nsp);
	Args(b, 4, types);
	b->expected_rc = SPI_OK_SELECT;

	/*
	 * A generic plan cannot know how many candidates lie after the keyset
	 * position and may sort them all; with the values, the planner walks
	 * the (created_at, id) index from that position and stops at LIMIT.
	 */
	b->custom_plan = true;
}

/* Lock product or round rows in id order, so that runs never deadlock. */
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
 * The release of a set of locked orders in one statement: the orders (with
 * the pending statuses checked again), stock and shares aggregated per
 * product and round from what was actually updated, the audit rows and the
 * application's notifications.  Returns the number of orders released.
 *
 * The pending statuses are checked again with texteq() calls rather than
 * the = operator on purpose: the planner then cannot match them to the
 * recommended partial index, whose entries for already released orders it
 * would otherwise read for every chunk, and finds the orders by primary key.
 *
 * A round's sold_shares drops by the returned quantity but not below 0, and
 * one that is already 0, negative or NULL is left alone; each order's share
 * of the decrement is apportioned oldest first, and an order that could not
 * return all its shares gets a shares_clamped audit row.
 */
static void
BuildRelease(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {UUIDARRAYOID, INT8OID, TsType(app->orders_updated_tz),
		TEXTOID, TsType(app->products_updated_tz),
	TsType(app->rounds_updated_tz), TsType(app->notifications_tz)};

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
					 " o.round_id, o.quantity, o.created_at),"
					 " product_delta AS ("
					 " SELECT r.product_id AS id, pg_catalog.sum(r.quantity) AS qty"
					 " FROM released r WHERE r.product_id IS NOT NULL AND r.quantity" GT "0"
					 " GROUP BY r.product_id),"
					 " products_done AS ("
					 " UPDATE %s.products p"
					 " SET stock = pg_catalog.int4(COALESCE(p.stock, 0)" PLUS "d.qty),"
					 " updated_at = $5 FROM product_delta d WHERE p.id" EQ "d.id"
					 " RETURNING p.id),"
					 " round_delta AS ("
					 " SELECT r.round_id AS id, pg_catalog.sum(r.quantity) AS qty"
					 " FROM released r WHERE r.round_id IS NOT NULL AND r.quantity" GT "0"
					 " GROUP BY r.round_id),"
					 " rounds_before AS ("
					 " SELECT lr.id, GREATEST(COALESCE(lr.sold_shares, 0), 0) AS sold"
					 " FROM %s.lottery_rounds lr WHERE lr.id" EQ "ANY (SELECT id FROM round_delta)),"
					 " rounds_done AS ("
					 " UPDATE %s.lottery_rounds lr SET sold_shares ="
					 " CASE WHEN COALESCE(lr.sold_shares, 0)" LE "0 THEN lr.sold_shares"
					 " ELSE pg_catalog.int4(GREATEST(0, lr.sold_shares" MINUS "d.qty)) END,"
					 " updated_at = $6 FROM round_delta d WHERE lr.id" EQ "d.id),"
					 " per_order AS ("
					 " SELECT r.*, pd.id IS NOT NULL AS has_product, rb.id IS NOT NULL AS has_round,"
					 " rb.sold, pg_catalog.sum(CASE WHEN r.quantity" GT "0 THEN r.quantity ELSE 0 END)"
					 " OVER (PARTITION BY r.round_id ORDER BY r.created_at, r.id) AS upto"
					 " FROM released r LEFT JOIN products_done pd ON pd.id" EQ "r.product_id"
					 " LEFT JOIN rounds_before rb ON rb.id" EQ "r.round_id),"
					 " events AS ("
					 " INSERT INTO " REO_SCHEMA ".order_events (run_id, order_id,"
					 " order_number, user_id, product_id, round_id, quantity, outcome,"
					 " prev_status, prev_payment_status, prev_fulfillment_status,"
					 " stock_delta, shares_delta, message)"
					 " SELECT $2, e.id, e.order_number, e.user_id, e.product_id, e.round_id,"
					 " e.quantity, e.outcome, 'pending', 'pending', 'pending',"
					 " e.stock_delta, e.shares_delta, e.message FROM ("
					 " SELECT po.*, 'released' AS outcome,"
					 " CASE WHEN po.quantity" GT "0 AND po.has_product THEN po.quantity ELSE 0 END"
					 " AS stock_delta,"
					 " CASE WHEN po.quantity" GT "0 AND po.has_round THEN pg_catalog.int4("
					 "LEAST(po.upto" MINUS "po.quantity, po.sold)" MINUS "LEAST(po.upto, po.sold))"
					 " ELSE 0 END AS shares_delta, NULL::pg_catalog.text AS message"
					 " FROM per_order po"
					 " UNION ALL SELECT po.*, 'product_not_found', 0, 0, pg_catalog.concat("
					 "'product ', po.product_id, ' does not exist; stock not returned')"
					 " FROM per_order po WHERE po.product_id IS NOT NULL"
					 " AND po.quantity" GT "0 AND NOT po.has_product"
					 " UNION ALL SELECT po.*, 'round_not_found', 0, 0, pg_catalog.concat("
					 "'lottery round ', po.round_id, ' does not exist; shares not returned')"
					 " FROM per_order po WHERE po.round_id IS NOT NULL"
					 " AND po.quantity" GT "0 AND NOT po.has_round"
					 " UNION ALL SELECT po.*, 'shares_clamped', 0, 0, pg_catalog.concat("
					 "'lottery round ', po.round_id, ' had ', po.sold,"
					 " ' sold shares, fewer than the quantity returned; clamped at 0')"
					 " FROM per_order po WHERE po.quantity" GT "0 AND po.has_round"
					 " AND po.upto" GT "po.sold) e)",
					 nsp, nsp, nsp, nsp);
	if (app->notifications)
		appendStringInfo(&b->sql,
						 ", notified AS ("
						 " INSERT INTO %s.notifications (id, user_id, type, content,"
						 " status, sent_at, created_at)"
						 " SELECT pg_catalog.gen_random_uuid(), r.user_id, 'system_audit',"
						 " pg_catalog.concat('" NOTE_PREFIX "order_released_successfully - 订单: ', r.id),"
						 " 'sent', $7, $7 FROM released r)", nsp);
	else
		appendStringInfoString(&b->sql, ", unused AS (SELECT $7)");
	appendStringInfoString(&b->sql, " SELECT pg_catalog.count(*) FROM released");
	Args(b, 7, types);
	b->expected_rc = SPI_OK_SELECT;
	/* Planned for the chunk's ids, so that orders are found by primary key. */
	b->custom_plan = true;
}

/* One failed order: its audit row and the application's notification. */
static void
BuildRecordFailure(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {INT8OID, UUIDOID, TEXTOID, UUIDOID, UUIDOID, UUIDOID,
	INT4OID, TEXTOID, TEXTOID, TsType(app->notifications_tz)};

	appendStringInfoString(&b->sql,
						   "WITH events AS ("
						   " INSERT INTO " REO_SCHEMA ".order_events (run_id, order_id,"
						   " order_number, user_id, product_id, round_id, quantity, outcome,"
						   " prev_status, prev_payment_status, prev_fulfillment_status,"
						   " sqlstate, message)"
						   " VALUES ($1, $2, $3, $4, $5, $6, $7, 'failed',"
						   " 'pending', 'pending', 'pending', $8, $9))");
	if (app->notifications)
		appendStringInfo(&b->sql,
						 " INSERT INTO %s.notifications (id, user_id, type, content,"
						 " status, sent_at, created_at)"
						 " VALUES (pg_catalog.gen_random_uuid(), " NIL_UUID ", 'system_audit',"
						 " pg_catalog.concat('" NOTE_PREFIX "order_release_failed - 订单: ', $2),"
						 " 'sent', $10, $10)", nsp);
	else
		appendStringInfoString(&b->sql, " SELECT $10");
	Args(b, 10, types);
	b->expected_rc = app->notifications ? SPI_OK_INSERT : SPI_OK_SELECT;
}

/*
 * A new run row, after marking as interrupted every run whose backend is
 * gone (its session advisory lock no longer appears in pg_locks).
 */
static void
BuildRunBegin(BuiltStatement *b)
{
	Oid			types[] = {TIMESTAMPTZOID, INT4OID, INT4OID, INT4OID,
	TIMESTAMPTZOID, BOOLOID, OIDOID};

	appendStringInfo(&b->sql,
					 "WITH stale AS ("
					 " UPDATE " REO_SCHEMA ".runs r SET outcome = 'interrupted',"
					 " error = 'the backend running it ended before the run finished'"
					 " WHERE r.outcome" EQ "'running' AND NOT EXISTS ("
					 " SELECT FROM pg_catalog.pg_locks l WHERE l.locktype" EQ "'advisory'"
					 " AND l.database" EQ "$7 AND l.classid" EQ "'%u'::pg_catalog.oid"
					 " AND l.objid" EQ "pg_catalog.oid(r.id" MOD "4294967296)"
					 " AND l.objsubid" EQ "2 AND l.pid" EQ "r.backend_pid AND l.granted))"
					 " INSERT INTO " REO_SCHEMA ".runs (started_at, timeout_minutes,"
					 " batch_limit, chunk_size, cutoff, atomic)"
					 " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
					 (uint32) REO_RUN_LOCK_KEY);
	Args(b, 7, types);
	b->expected_rc = SPI_OK_INSERT_RETURNING;
}

static void
BuildRunProgress(BuiltStatement *b)
{
	Oid			types[] = {INT8OID, INT4OID, INT4OID, INT4OID};

	appendStringInfoString(&b->sql,
						   "UPDATE " REO_SCHEMA ".runs SET found = found" PLUS "$2,"
						   " released = released" PLUS "$3, failed = failed" PLUS "$4"
						   " WHERE id" EQ "$1");
	Args(b, 4, types);
	b->expected_rc = SPI_OK_UPDATE;
}

/* Close a run; a run that released anything gets its batch notification. */
static void
BuildRunEnd(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, FLOAT8OID,
	TsType(app->notifications_tz)};

	appendStringInfoString(&b->sql,
						   "WITH done AS ("
						   " UPDATE " REO_SCHEMA ".runs SET ended_at = $4, duration_ms = $5,"
						   " outcome = $2, error = $3 WHERE id" EQ "$1 RETURNING released)");
	if (app->notifications)
		appendStringInfo(&b->sql,
						 " INSERT INTO %s.notifications (id, user_id, type, content,"
						 " status, sent_at, created_at)"
						 " SELECT pg_catalog.gen_random_uuid(), " NIL_UUID ", 'system_audit',"
						 " '" NOTE_PREFIX "batch_processing_completed - 订单: N/A', 'sent', $6, $6"
						 " FROM done WHERE done.released" GT "0", nsp);
	else
		appendStringInfoString(&b->sql, " SELECT $6 FROM done");
	Args(b, 6, types);
	b->expected_rc = app->notifications ? SPI_OK_INSERT : SPI_OK_SELECT;
}

/* Trim old history, bounded by release_expired_orders.purge_limit. */
static void
BuildPurge(BuiltStatement *b)
{
	appendStringInfoString(&b->sql,
						   "SELECT " REO_SCHEMA ".purge_history()");
	b->nargs = 0;
	b->expected_rc = SPI_OK_SELECT;
}

static void
BuildStatement(ReoStatement stmt, BuiltStatement *b)
{
	const AppSchema *app = &plans_schema;
	const char *nsp = quote_identifier(app->schema);

	initStringInfo(&b->sql);
	b->custom_plan = false;
	switch (stmt)
	{
		case STMT_CANDIDATES:
			BuildCandidates(b, app, nsp);
			break;
		case STMT_LOCK_PRODUCTS:
			BuildLock(b, nsp, "products");
			break;
		case STMT_LOCK_ROUNDS:
			BuildLock(b, nsp, "lottery_rounds");
			break;
		case STMT_RELEASE:
			BuildRelease(b, app, nsp);
			break;
		case STMT_RECORD_FAILURE:
			BuildRecordFailure(b, app, nsp);
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
			BuildPurge(b);
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
 * Run one of the statements, preparing and keeping its plan on first use.
 * Errors unless SPI reports the outcome the statement is built for; the
 * rows, if any, are left in SPI_tuptable for the caller, and the caller's
 * memory context is current again.
 */
uint64
ReoExecute(ReoStatement stmt, Datum *values, const char *nulls)
{
	static int	expected_rc[STMT_COUNT];
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
		expected_rc[stmt] = b.expected_rc;
	}

	rc = SPI_execute_plan(plans[stmt], values, nulls, false, 0);

	/*
	 * SPI leaves the procedure context current; go back to the caller's, so
	 * that what a chunk allocates is freed with the chunk, whatever the
	 * number of chunks in a run.
	 */
	MemoryContextSwitchTo(caller);
	if (rc != expected_rc[stmt])
		elog(ERROR, "statement %d of release_expired_orders returned %s, expected %s",
			 (int) stmt, SPI_result_code_string(rc),
			 SPI_result_code_string(expected_rc[stmt]));
	return SPI_processed;
}
