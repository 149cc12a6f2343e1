/*-------------------------------------------------------------------------
 *
 * late_orders.c
 *	  The wake trigger: an order that becomes visible close to (or past)
 *	  its deadline wakes the database's deadline worker when it commits.
 *
 * An order is usually placed at now(), and its deadline is then a window
 * away: the worker's sleep covers it.  Some orders are not: a transaction
 * that commits long after its now(), an import, an application whose clock
 * runs behind the database's.  The trigger that add_wake_trigger() puts on
 * the application's orders table reads, for each row inserted or updated,
 * its created_at, and keeps the earliest of the transaction's.  When it
 * commits, if the worker runs and that created_at plus the shortest window
 * is earlier than the worker's next wake (or the worker is awake, and may
 * have looked before these orders were visible), the worker's latch is
 * set, once, and it looks again.  Each row costs a comparison; the
 * trigger never raises an error of its own into the application's insert,
 * and does nothing when the library was not preloaded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "settings.h"
#include "util.h"
#include "worker_state.h"

/*
 * The earliest created_at among the rows this transaction inserted or
 * updated, DT_NOEND when none: whether the worker must wake is decided at
 * commit, against its state then (it may have looked, and set its next
 * wake, since the row was written).
 */
static TimestampTz earliest = DT_NOEND;
static bool callback_registered = false;

static void
WakeAtCommit(XactEvent event, void *arg)
{
	if (earliest == DT_NOEND)
		return;
	if ((event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT) &&
		ReoLateOrderWakes(MyDatabaseId, earliest))
		ReoWakeDatabaseWorker(MyDatabaseId);
	/* a prepared transaction wakes the worker at COMMIT PREPARED (ddl_guard.c) */
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		earliest = DT_NOEND;
}

/* created_at of the row as absolute time; false when it has none. */
static bool
CreatedAt(Relation rel, HeapTuple tuple, TimestampTz *created)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		isnull;
		Datum		d;

		if (att->attisdropped || strcmp(NameStr(att->attname), "created_at") != 0)
			continue;
		if (att->atttypid != TIMESTAMPTZOID && att->atttypid != TIMESTAMPOID)
			return false;
		d = heap_getattr(tuple, i + 1, desc, &isnull);
		if (isnull)
			return false;
		*created = DatumGetTimestampTz(d);
		if (att->atttypid == TIMESTAMPOID && !TIMESTAMP_NOT_FINITE(*created))
			*created = ReoFromWallClock((Timestamp) *created, reo_naive_time_zone);
		return true;
	}
	return false;
}

PG_FUNCTION_INFO_V1(reo_wake_trigger);

/* The wake trigger: AFTER INSERT OR UPDATE ... FOR EACH ROW. */
Datum
reo_wake_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TimestampTz created;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("release_expired_orders.wake_trigger() must be fired AFTER ... FOR EACH ROW"),
				 errhint("Use release_expired_orders.add_wake_trigger() to add it.")));
	tuple = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	if (tuple == NULL || !CreatedAt(td->tg_relation, tuple, &created) || created >= earliest)
		return PointerGetDatum(NULL);
	if (!callback_registered)
	{
		RegisterXactCallback(WakeAtCommit, NULL);
		callback_registered = true;
	}
	earliest = created;
	return PointerGetDatum(NULL);
}
