/*-------------------------------------------------------------------------
 *
 * sql.c
 *	  Running the SQL statements the extension's C code runs (their texts
 *	  are in statements.c), each prepared once per backend on first use
 *	  and kept.
 *
 * The texts depend on the shape of the application's tables; when that
 * shape changes, the kept plans are dropped and prepared again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "partitioning/partdesc.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "sql.h"
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
 * A statement as the job runs it against the application's shape in use
 * (StmtUseSchema), in the server's encoding: its name, its text and the
 * types of its parameters ($1 ...), so that an operator can EXPLAIN it.
 */
/* Whether the job runs the statement against the tables in use. */
bool
StmtRuns(ReoStatement stmt)
{
	Assert(current != NULL);
	return ReoStatementRuns(stmt, &current->schema);
}

char *
StmtText(ReoStatement stmt, const char **name, int *nargs, Oid *argtypes)
{
	ReoSQL		sql;

	Assert(current != NULL);
	ReoStatementSQL(stmt, &current->schema, &sql);
	*name = sql.name;
	*nargs = sql.nargs;
	memcpy(argtypes, sql.argtypes, sql.nargs * sizeof(Oid));
	return sql.text;
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
StmtUseSchema(const AppSchema *app)
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
		ReoSQL		sql;
		SPIPlanPtr	plan;

		ReoStatementSQL(stmt, &set->schema, &sql);
		plan = SPI_prepare_cursor(sql.text, sql.nargs, sql.argtypes,
								  sql.cursor_options);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for statement %d: %s",
				 (int) stmt, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		set->plans[stmt] = plan;
		set->expected_rcs[stmt] = sql.expected_rc;
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
StmtExecute(ReoStatement stmt, Datum *values, const char *nulls)
{
	return Execute(stmt, values, nulls, false);
}

/*
 * Run a statement that only reads, with the snapshot of the statement that
 * called the extension: what STABLE functions (preview(), the deadlines)
 * and the worker's look use.
 */
uint64
StmtQuery(ReoStatement stmt, Datum *values, const char *nulls)
{
	return Execute(stmt, values, nulls, true);
}

/*
 * Whether one of the extension's audit statements is running: the audit
 * rows that undo trusts are written only then.
 */
bool
StmtInAudit(void)
{
	return in_audit_statement;
}
