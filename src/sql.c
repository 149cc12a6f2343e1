/*-------------------------------------------------------------------------
 *
 * sql.c
 *	  Every SQL statement the extension's C code runs, built here and in
 *	  sql_release.c (the texts of a part's release), prepared once per
 *	  backend on first use and kept.
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

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "partitioning/partdesc.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "sql.h"
#include "sql_build.h"
#include "util.h"

/* orders, products, lottery_rounds and order_events; see PlansOutgrown */
#define SIZED_RELATIONS 4

/*
 * The plans kept for one shape of the application's tables.  A backend
 * keeps a few: a statement of the extension may run inside another (a
 * trigger of the application calls preview() in the middle of a release),
 * and the set a running statement uses is never dropped under it.
 */
typedef struct PlanSet
{
	AppSchema	schema;
	SPIPlanPtr	plans[STMT_COUNT];
	int			expected_rcs[STMT_COUNT];
	int			running;		/* statements of this set executing now */
	BlockNumber planned_for[SIZED_RELATIONS];	/* see PlansOutgrown */
} PlanSet;

#define MAX_PLAN_SETS 4

/* Plans are made again when a table's size has changed by twice, and by this. */
#define REPLAN_MIN_CHANGE 8

static PlanSet *plan_sets[MAX_PLAN_SETS];
static PlanSet *current = NULL;

/*
 * Whether the statement running now is one of the extension's audit
 * statements: the audit guard lets only those write the rows undo trusts.
 * Saved and restored around every statement, so that a statement nested
 * in another (preview() called by a trigger) leaves the outer one's value.
 */
static bool in_audit_statement = false;

/*
 * The statements that run the application's code: writes to its tables,
 * which fire its triggers, check its constraints and evaluate its
 * defaults.  They run as the owner of orders, in a security-restricted
 * operation, never with the privileges of the role running the job.
 */
static bool
RunsApplicationCode(ReoStatement stmt)
{
	switch (stmt)
	{
		case STMT_RELEASE:
		case STMT_RELEASE_QUIET:
		case STMT_PRODUCTS:
		case STMT_ROUNDS:
		case STMT_NOTE_FAILED:
		case STMT_RUN_NOTE:
			return true;
		default:
			return false;
	}
}

/* The statements that write the rows of order_events that undo trusts. */
static bool
WritesAudit(ReoStatement stmt)
{
	switch (stmt)
	{
		case STMT_AUDIT:
		case STMT_FIX_STOCK:
		case STMT_FIX_SHARES:
		case STMT_RECORD:
			return true;
		default:
			return false;
	}
}

/*
 * What a candidate is, the one definition: an order whose three statuses
 * are pending, created before the cutoff, after the keyset position, and
 * not failed or vetoed since $5 (now less the retry backoff); oldest first.  The job locks them so
 * that a payment or another run holding a row is skipped, not awaited;
 * preview() takes the same selection without locks.
 * The backoff check is a probe of order_events_retry_idx per order walked
 * (OFFSET 0 keeps it a subplan): as an anti-join, once order_events had
 * grown and been analyzed mid-drain, the planner hashed it and sorted every
 * remaining candidate of the backlog for each chunk (40 ms instead of 2).
 */
static void
BuildCandidates(BuiltStatement *b, const AppSchema *app, const char *nsp, bool lock)
{
	Oid			types[] = {TsType(app->orders_created_tz),
		TsType(app->orders_created_tz), UUIDOID, INT4OID, TIMESTAMPTZOID};

	appendStringInfo(&b->sql,
					 "SELECT o.id, o.order_number::pg_catalog.text, o.user_id, o.product_id,"
					 " o.round_id, o.quantity, o.created_at"
					 " FROM %s.orders o"
					 " WHERE" PENDING("o")
					 " AND o.created_at" LT "$1 AND o.created_at" GE "$2"
					 " AND (o.created_at, o.id)" GT "($2, $3)"
					 " AND NOT EXISTS (SELECT FROM " EVENTS " f"
					 " WHERE f.order_id" EQ "o.id AND f.created_at" GT "$5 AND " BACKOFF_ROW
					 " OFFSET 0)"
					 " ORDER BY o.created_at, o.id LIMIT $4%s",
					 nsp, lock ? " FOR UPDATE OF o SKIP LOCKED" : "");
	Args(b, 5, types);
	b->expected_rc = SPI_OK_SELECT;

	/*
	 * A generic plan cannot know how many candidates lie after the keyset
	 * position and may sort them all; with the values, the planner walks
	 * the (created_at, id) index from that position and stops at LIMIT.
	 */
	b->cursor_options = CURSOR_OPT_CUSTOM_PLAN;
}

/*
 * Lock the windowed candidates picked ($1, in deadline order), skipping
 * those another transaction holds, each checked again under its lock;
 * columns as the plain candidate statement's.
 */
static void
BuildLockOrders(BuiltStatement *b, const char *nsp)
{
	Oid			types[] = {UUIDARRAYOID};

	appendStringInfo(&b->sql,
					 "SELECT o.id, o.order_number::pg_catalog.text, o.user_id, o.product_id,"
					 " o.round_id, o.quantity, o.created_at"
					 " FROM pg_catalog.unnest($1) WITH ORDINALITY p (id, pos)"
					 " JOIN %s.orders o ON o.id" EQ "p.id"
					 " WHERE" PENDING("o")
					 " ORDER BY p.pos FOR UPDATE OF o SKIP LOCKED", nsp);
	Args(b, 1, types);
	b->expected_rc = SPI_OK_SELECT;
}

/*
 * The orders of $1 that are no longer expired/cancelled/cancelled at the
 * end of their part: a trigger of the application (on any of its tables)
 * put them back after the release updated them.
 */
static void
BuildStillReleased(BuiltStatement *b, const char *nsp)
{
	Oid			types[] = {UUIDARRAYOID};

	appendStringInfo(&b->sql,
					 "SELECT o.id FROM %s.orders o WHERE o.id" EQ "ANY ($1)"
					 " AND NOT COALESCE(pg_catalog.texteq(o.status::pg_catalog.text, 'expired')"
					 " AND pg_catalog.texteq(o.payment_status::pg_catalog.text, 'cancelled')"
					 " AND pg_catalog.texteq(o.fulfillment_status::pg_catalog.text, 'cancelled'), false)",
					 nsp);
	Args(b, 1, types);
	b->expected_rc = SPI_OK_SELECT;
	b->cursor_options = CURSOR_OPT_GENERIC_PLAN;
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
 * A new run row, after marking as interrupted every run whose backend is
 * gone: a live run is one whose backend, identified by its pid and start
 * time, still exists, which no other session can fake.
 */
static void
BuildRunBegin(BuiltStatement *b)
{
	Oid			types[] = {TIMESTAMPTZOID, INT4OID, INT4OID, INT4OID,
	TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID, TEXTOID, TEXTOID};

	appendStringInfoString(&b->sql,
						   "WITH stale AS ("
						   " UPDATE " REO_SCHEMA ".runs r SET outcome = 'interrupted',"
						   " error = 'the backend running it ended before the run finished'"
						   " WHERE r.outcome" EQ "'running' AND NOT COALESCE("
						   REO_SCHEMA ".run_is_alive(r.backend_pid, r.backend_start), false))"
						   " INSERT INTO " REO_SCHEMA ".runs (started_at, timeout_minutes,"
						   " batch_limit, chunk_size, cutoff, atomic, backend_start, windows, scheduler)"
						   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::pg_catalog.jsonb, $9) RETURNING id");
	Args(b, 9, types);
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

/* Close a run. */
static void
BuildRunEnd(BuiltStatement *b)
{
	Oid			types[] = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, FLOAT8OID, TEXTOID};

	appendStringInfoString(&b->sql,
						   "UPDATE " REO_SCHEMA ".runs SET ended_at = $4, duration_ms = $5,"
						   " outcome = $2, error = $3, warnings = $6 WHERE id" EQ "$1");
	Args(b, 6, types);
	b->expected_rc = SPI_OK_UPDATE;
}

/*
 * The batch notification of a run that released anything.  A statement of
 * its own, run only then, so that a run that finds nothing does not open
 * the notifications table.
 */
static void
BuildRunNote(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {TsType(app->notifications_tz)};

	if (!app->notifications)
		elog(ERROR, "release_expired_orders writes no notifications here");
	appendStringInfo(&b->sql,
					 "INSERT INTO %s.notifications (id, user_id, type, content,"
					 " status, sent_at, created_at)"
					 " VALUES (pg_catalog.gen_random_uuid(), " NIL_UUID ", 'system_audit',"
					 " '" NOTE_PREFIX "batch_processing_completed - 订单: N/A', 'sent', $1, $1)", nsp);
	Args(b, 1, types);
	b->expected_rc = SPI_OK_INSERT;
}

/*
 * Whether the oldest finished run or the oldest audit row is older than $1:
 * two index probes, so that a run with nothing to purge does not pay for
 * compiling and planning purge_history() in every fresh session.
 */
static void
BuildPurgeDue(BuiltStatement *b)
{
	Oid			types[] = {TIMESTAMPTZOID};

	appendStringInfoString(&b->sql,
						   "SELECT COALESCE((SELECT r.started_at FROM " REO_SCHEMA ".runs r"
						   " WHERE r.outcome" NE "'running' ORDER BY r.started_at LIMIT 1)" LT "$1, false)"
						   " OR COALESCE((SELECT e.created_at FROM " EVENTS " e"
						   " ORDER BY e.id LIMIT 1)" LT "$1, false)");
	Args(b, 1, types);
	b->expected_rc = SPI_OK_SELECT;
}

/*
 * The oldest pending order created before $1, if any: one probe of the
 * recommended index, and a statement much cheaper to parse and plan in a
 * fresh session than the candidate scan, which a run that finds nothing
 * then never prepares.  Asked as "the first in created_at order" and not
 * as EXISTS: the planner then costs a sequential scan at the whole table
 * and its sort, whatever it believes of how many orders match (a paid order
 * keeps status 'pending', so the three statuses and created_at are far
 * from independent), and the index is the cheaper path by construction.
 */
static void
BuildAnyDue(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {TsType(app->orders_created_tz)};

	appendStringInfo(&b->sql,
					 "SELECT o.created_at FROM %s.orders o"
					 " WHERE" PENDING("o") " AND o.created_at" LT "$1"
					 " ORDER BY o.created_at USING" LT "LIMIT 1",
					 nsp);
	Args(b, 1, types);
	b->expected_rc = SPI_OK_SELECT;
}

static void
BuildStatement(ReoStatement stmt, BuiltStatement *b)
{
	const AppSchema *app = &current->schema;
	const char *nsp = quote_identifier(app->schema);

	initStringInfo(&b->sql);
	b->cursor_options = 0;		/* the plan cache chooses */
	b->nargs = 0;
	switch (stmt)
	{
		case STMT_CANDIDATES:
			BuildCandidates(b, app, nsp, true);
			break;
		case STMT_PREVIEW:
			BuildCandidates(b, app, nsp, false);
			break;
		case STMT_PREVIEW_W:
			BuildWindowedCandidates(b, app, nsp);
			break;
		case STMT_NEXT_W:
			BuildNextDeadlines(b, app, nsp);
			break;
		case STMT_ANY_DUE:
			BuildAnyDue(b, app, nsp);
			break;
		case STMT_ANY_WINDOW:
			appendStringInfoString(&b->sql, "SELECT EXISTS (SELECT FROM " REO_SCHEMA ".payment_windows)");
			b->expected_rc = SPI_OK_SELECT;
			break;
		case STMT_WINDOWS:
			BuildWindowsInForce(b, app);
			break;
		case STMT_LOCK_ORDERS:
			BuildLockOrders(b, nsp);
			break;
		case STMT_STILL_DUE:
			BuildStillDue(b, app, nsp);
			break;
		case STMT_RELEASE:
			BuildRelease(b, app, nsp, true);
			break;
		case STMT_RELEASE_QUIET:
			BuildRelease(b, app, nsp, false);
			break;
		case STMT_AUDIT:
			BuildAudit(b);
			break;
		case STMT_STILL_RELEASED:
			BuildStillReleased(b, nsp);
			break;
		case STMT_PRODUCTS:
			BuildCounters(b, nsp, app->products_updated_tz, false);
			break;
		case STMT_ROUNDS:
			BuildCounters(b, nsp, app->rounds_updated_tz, true);
			break;
		case STMT_STOCK_MOVED:
			BuildCountersMoved(b, nsp, false);
			break;
		case STMT_SHARES_MOVED:
			BuildCountersMoved(b, nsp, true);
			break;
		case STMT_LOCK_PRODUCTS:
			BuildLock(b, nsp, "products");
			break;
		case STMT_LOCK_ROUNDS:
			BuildLock(b, nsp, "lottery_rounds");
			break;
		case STMT_FIX_STOCK:
			BuildFixAudit(b, false);
			break;
		case STMT_FIX_SHARES:
			BuildFixAudit(b, true);
			break;
		case STMT_RECORD:
			BuildRecord(b);
			break;
		case STMT_NOTE_FAILED:
			BuildNoteFailed(b, app, nsp);
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
			BuildRunEnd(b);
			break;
		case STMT_RUN_NOTE:
			BuildRunNote(b, app, nsp);
			break;
		case STMT_PURGE_DUE:
			BuildPurgeDue(b);
			break;
		case STMT_PURGE:
			appendStringInfoString(&b->sql, "SELECT " REO_SCHEMA ".purge_history()");
			b->expected_rc = SPI_OK_SELECT;
			break;
		case STMT_COUNT:
			elog(ERROR, "invalid statement %d", (int) stmt);
	}
}

/* Each statement's name, as statements() shows it. */
static const char *const statement_names[STMT_COUNT] = {
	[STMT_CANDIDATES] = "candidates",
	[STMT_PREVIEW] = "preview",
	[STMT_PREVIEW_W] = "preview_windowed",
	[STMT_NEXT_W] = "next_deadlines_windowed",
	[STMT_ANY_DUE] = "any_due",
	[STMT_ANY_WINDOW] = "any_window",
	[STMT_WINDOWS] = "windows",
	[STMT_LOCK_ORDERS] = "lock_orders",
	[STMT_STILL_DUE] = "still_due",
	[STMT_RELEASE] = "release",
	[STMT_RELEASE_QUIET] = "release_quiet",
	[STMT_AUDIT] = "audit",
	[STMT_STILL_RELEASED] = "still_released",
	[STMT_PRODUCTS] = "products",
	[STMT_ROUNDS] = "rounds",
	[STMT_STOCK_MOVED] = "stock_moved",
	[STMT_SHARES_MOVED] = "shares_moved",
	[STMT_LOCK_PRODUCTS] = "lock_products",
	[STMT_LOCK_ROUNDS] = "lock_rounds",
	[STMT_FIX_STOCK] = "fix_stock",
	[STMT_FIX_SHARES] = "fix_shares",
	[STMT_RECORD] = "record",
	[STMT_NOTE_FAILED] = "note_failed",
	[STMT_CONSTRAINTS] = "constraints",
	[STMT_RUN_BEGIN] = "run_begin",
	[STMT_RUN_PROGRESS] = "run_progress",
	[STMT_RUN_END] = "run_end",
	[STMT_RUN_NOTE] = "run_note",
	[STMT_PURGE_DUE] = "purge_due",
	[STMT_PURGE] = "purge",
};

/*
 * A statement as the job runs it against the application's shape in use
 * (ReoUseSchema), in the server's encoding: its name, its text and the
 * types of its parameters ($1 ...), so that an operator can EXPLAIN it.
 */
char *
ReoStatementText(ReoStatement stmt, const char **name, int *nargs, Oid *argtypes)
{
	BuiltStatement b;

	Assert(current != NULL && statement_names[stmt] != NULL);
	BuildStatement(stmt, &b);
	*name = statement_names[stmt];
	*nargs = b.nargs;
	memcpy(argtypes, b.argtypes, b.nargs * sizeof(Oid));
	return pg_any_to_server(b.sql.data, b.sql.len, PG_UTF8);
}

/* Forget a set's plans: each is prepared again on its next use. */
static void
DropPlans(PlanSet *set)
{
	for (int i = 0; i < STMT_COUNT; i++)
		if (set->plans[i] != NULL)
		{
			SPI_freeplan(set->plans[i]);
			set->plans[i] = NULL;
		}
}

static void
FreePlanSet(PlanSet *set)
{
	DropPlans(set);
	pfree(set);
}

/*
 * The number of blocks of a relation, or of its partitions (a partitioned
 * table has no storage of its own; the plans read its partitions); 0 for
 * one that is gone or is locked in a mode that conflicts with reading it
 * (an ALTER TABLE waits to commit: the job's statements will wait for it,
 * not this).
 */
static BlockNumber
RelationBlocks(Oid relid)
{
	Relation	rel;
	BlockNumber blocks = 0;

	if (!ConditionalLockRelationOid(relid, AccessShareLock))
		return 0;
	rel = try_relation_open(relid, NoLock);
	if (rel != NULL)
	{
		if (RELKIND_HAS_STORAGE(rel->rd_rel->relkind))
			blocks = RelationGetNumberOfBlocks(rel);
		else if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		{
			PartitionDesc desc = RelationGetPartitionDesc(rel, true);

			for (int i = 0; i < desc->nparts; i++)
				blocks += RelationBlocks(desc->oids[i]);
		}
		relation_close(rel, NoLock);
	}
	UnlockRelationOid(relid, AccessShareLock);
	return blocks;
}

/* The sizes of the relations the statements read by key (absent: 0). */
static void
MeasureRelations(const AppSchema *app, BlockNumber *blocks)
{
	Oid			relids[SIZED_RELATIONS];

	relids[0] = app->orders;
	relids[1] = app->products;
	relids[2] = app->rounds;
	relids[3] = get_relname_relid("order_events",
								  get_namespace_oid(REO_SCHEMA, false));
	for (int i = 0; i < SIZED_RELATIONS; i++)
		blocks[i] = OidIsValid(relids[i]) ? RelationBlocks(relids[i]) : 0;
}

/* Whether a and b differ by more than twice the smaller, and by some. */
static bool
FarApart(BlockNumber a, BlockNumber b)
{
	BlockNumber small = Min(a, b);
	BlockNumber large = Max(a, b);

	return large >= small + REPLAN_MIN_CHANGE && large / 2 > small;
}

/*
 * Whether a relation's size is far from the one the set's plans were made
 * for.  A kept generic plan is made again when ANALYZE invalidates it;
 * where nothing analyzes the table (autovacuum off on it), one made while
 * orders had a page would read a million orders by a sequential scan for
 * each order it looks up.  The planner sizes a table by its current number
 * of blocks, so plans made again fit it.  A table that shrank counts too:
 * PostgreSQL makes the plans again for the small table (TRUNCATE
 * invalidates them), and those must be made again once it has grown back.
 * Records the sizes when the plans are to be made again.
 */
static bool
PlansOutgrown(PlanSet *set)
{
	BlockNumber now[SIZED_RELATIONS];
	bool		outgrown = false;

	MeasureRelations(&set->schema, now);
	for (int i = 0; i < SIZED_RELATIONS; i++)
		if (FarApart(now[i], set->planned_for[i]))
			outgrown = true;
	if (outgrown)
		memcpy(set->planned_for, now, sizeof(now));
	return outgrown;
}

/*
 * Make the statements that follow use plans for the application's current
 * shape: the kept ones when it is a shape seen before, new ones otherwise.
 * A set no statement is running with makes room when all places are taken,
 * and makes its plans again when the tables have outgrown them (or the
 * reverse).
 */
void
ReoUseSchema(const AppSchema *app)
{
	int			free_slot = -1;

	for (int i = 0; i < MAX_PLAN_SETS; i++)
	{
		PlanSet    *set = plan_sets[i];

		if (set != NULL && memcmp(&set->schema, app, sizeof(AppSchema)) == 0)
		{
			if (set->running == 0 && PlansOutgrown(set))
				DropPlans(set);
			current = set;
			return;
		}
		if (set == NULL || (set->running == 0 && set != current))
			free_slot = i;
	}
	if (free_slot < 0)
		elog(ERROR, "release_expired_orders has too many statements running at once");
	if (plan_sets[free_slot] != NULL)
		FreePlanSet(plan_sets[free_slot]);
	plan_sets[free_slot] = MemoryContextAllocZero(TopMemoryContext, sizeof(PlanSet));
	memcpy(&plan_sets[free_slot]->schema, app, sizeof(AppSchema));
	MeasureRelations(app, plan_sets[free_slot]->planned_for);
	current = plan_sets[free_slot];
}

/*
 * Run one of the statements, preparing and keeping its plan on first use,
 * so that a session pays only for the statements it needs.  A statement
 * that runs the application's code runs as the owner of orders in a
 * security-restricted operation, and whatever settings that code changes
 * are undone after it, as VACUUM does for the functions of an index; as
 * the owner, without the row-level security forced on its own tables, as
 * the foreign-key checks of ri_triggers.c do, so that no policy hides a
 * row the release must update.
 * Errors unless SPI reports the outcome the statement is built for; the
 * rows, if any, are left in SPI_tuptable, and the caller's memory context
 * is current.
 */
static uint64
Execute(ReoStatement stmt, Datum *values, const char *nulls, bool read_only)
{
	MemoryContext caller = CurrentMemoryContext;
	PlanSet    *set = current;
	bool		outer_audit = in_audit_statement;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	volatile int rc;

	Assert(set != NULL);
	if (set->plans[stmt] == NULL)
	{
		BuiltStatement b;
		char	   *sql;
		SPIPlanPtr	plan;

		BuildStatement(stmt, &b);
		/* The source is UTF-8; the notification texts are not ASCII. */
		sql = pg_any_to_server(b.sql.data, b.sql.len, PG_UTF8);
		plan = SPI_prepare_cursor(sql, b.nargs, b.argtypes,
								  b.cursor_options);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for statement %d: %s",
				 (int) stmt, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		set->plans[stmt] = plan;
		set->expected_rcs[stmt] = b.expected_rc;
	}

	/*
	 * No statement of the job is worth compiling: each reads a few index
	 * entries, and a custom plan's estimate can still pass jit_above_cost.
	 * The setting is read when the plan is made, inside SPI_execute_plan.
	 */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	if (RunsApplicationCode(stmt))
		SetUserIdAndSecContext(set->schema.orders_owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION | SECURITY_NOFORCE_RLS);
	in_audit_statement = WritesAudit(stmt);
	set->running++;
	PG_TRY();
	{
		rc = SPI_execute_plan(set->plans[stmt], values, nulls, read_only, 0);
	}
	PG_FINALLY();
	{
		/* a statement nested in this one may have chosen another set */
		set->running--;
		current = set;
		in_audit_statement = outer_audit;
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	AtEOXact_GUC(false, save_nestlevel);

	/*
	 * SPI leaves the procedure context current; go back to the caller's, so
	 * that what a chunk allocates is freed with the chunk, whatever the
	 * number of chunks in a run.
	 */
	MemoryContextSwitchTo(caller);
	if (rc != set->expected_rcs[stmt])
		elog(ERROR, "statement %d of release_expired_orders returned %s, expected %s",
			 (int) stmt, SPI_result_code_string(rc),
			 SPI_result_code_string(set->expected_rcs[stmt]));
	return SPI_processed;
}

/* Run a statement of the job, which may write. */
uint64
ReoExecute(ReoStatement stmt, Datum *values, const char *nulls)
{
	return Execute(stmt, values, nulls, false);
}

/*
 * Run a statement that only reads, with the snapshot of the statement that
 * called the extension: what STABLE functions (preview(), the deadlines)
 * and the worker's look use.
 */
uint64
ReoQuery(ReoStatement stmt, Datum *values, const char *nulls)
{
	return Execute(stmt, values, nulls, true);
}

/*
 * Whether one of the extension's audit statements is running: the audit
 * rows that undo trusts are written only then.
 */
bool
ReoInAuditStatement(void)
{
	return in_audit_statement;
}
