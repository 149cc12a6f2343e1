/*-------------------------------------------------------------------------
 *
 * sql_functions.c
 *	  The rules the C code owns, exposed to SQL so that the PL/pgSQL side of
 *	  the extension never writes them again: whether a run is alive, the
 *	  settings and argument ranges, the column conventions, the row-level
 *	  security rule, the notifications rule, and the audit guard.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "app_schema.h"
#include "due.h"
#include "restore.h"
#include "settings.h"
#include "sql.h"
#include "util.h"

PG_FUNCTION_INFO_V1(reo_run_is_alive);

/*
 * run_is_alive(backend_pid, backend_start): whether the backend that
 * started a run still exists.  The pid alone could have been reused; the
 * pair cannot, and no other session can hold or fake it.
 */
Datum
reo_run_is_alive(PG_FUNCTION_ARGS)
{
	ReoRequireArgument(fcinfo, 0, "backend_pid");
	ReoRequireArgument(fcinfo, 1, "backend_start");
	PG_RETURN_BOOL(ReoBackendIsAlive(PG_GETARG_INT32(0), PG_GETARG_TIMESTAMPTZ(1)));
}

PG_FUNCTION_INFO_V1(reo_setting);

/* setting(name): release_expired_orders.NAME, integers in their base unit. */
Datum
reo_setting(PG_FUNCTION_ARGS)
{
	ReoRequireArgument(fcinfo, 0, "name");
	PG_RETURN_TEXT_P(cstring_to_text(ReoSettingValue(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

PG_FUNCTION_INFO_V1(reo_check_argument);

/* check_argument(name, value): the procedure's own argument check. */
Datum
reo_check_argument(PG_FUNCTION_ARGS)
{
	const char *name;

	ReoRequireArgument(fcinfo, 0, "name");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null here", name),
				 errhint("Pass NULL to the procedure itself to use the setting release_expired_orders.%s.",
						 name)));
	ReoCheckArgument(name, PG_GETARG_INT32(1));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(reo_app_column_is_tz);

/* app_column_is_tz(schema, table, column), by the release's column rule. */
Datum
reo_app_column_is_tz(PG_FUNCTION_ARGS)
{
	ReoRequireArgument(fcinfo, 0, "app_schema");
	ReoRequireArgument(fcinfo, 1, "table_name");
	ReoRequireArgument(fcinfo, 2, "column_name");
	PG_RETURN_BOOL(ReoColumnIsTz(text_to_cstring(PG_GETARG_TEXT_PP(0)),
								 text_to_cstring(PG_GETARG_TEXT_PP(1)),
								 text_to_cstring(PG_GETARG_TEXT_PP(2))));
}

PG_FUNCTION_INFO_V1(reo_wall_clock);

/* wall_clock(t, zone): t as wall-clock time in zone, by its full rules. */
Datum
reo_wall_clock(PG_FUNCTION_ARGS)
{
	ReoRequireArgument(fcinfo, 0, "t");
	ReoRequireArgument(fcinfo, 1, "zone");
	PG_RETURN_TIMESTAMP(ReoWallClock(PG_GETARG_TIMESTAMPTZ(0),
									 text_to_cstring(PG_GETARG_TEXT_PP(1))));
}

PG_FUNCTION_INFO_V1(reo_row_security_problem);

/*
 * row_security_problem(role): the application's tables on which
 * row-level security applies to role, or NULL.
 */
Datum
reo_row_security_problem(PG_FUNCTION_ARGS)
{
	char	   *problem;

	ReoRequireArgument(fcinfo, 0, "role");
	ReoCheckSettings();
	problem = ReoRowSecurityProblem(reo_app_schema,
									get_role_oid(NameStr(*PG_GETARG_NAME(0)), false));
	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

PG_FUNCTION_INFO_V1(reo_notifications_problem);

/*
 * notifications_problem(): why the job would skip the application's
 * notifications, or NULL when it writes them (or there is no such table).
 */
Datum
reo_notifications_problem(PG_FUNCTION_ARGS)
{
	AppSchema	app;
	char	   *problem;

	ReoCheckSettings();
	if (!reo_write_notifications)
		PG_RETURN_NULL();
	ReoDiscoverSchema(&app, reo_app_schema, true, &problem);
	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

PG_FUNCTION_INFO_V1(reo_audit_guard);

/*
 * Trigger on release_expired_orders.order_events: restore_order() trusts
 * the released rows and their deltas to move stock, so they are written only
 * by the extension's own statements.  Anyone with INSERT may add a restored
 * row (restore_order() runs as its caller); the table's owner and
 * superusers (pg_restore, purge_history()) may do anything.
 */
Datum
reo_audit_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	bool		owner;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "audit_guard() must be called as a trigger");
	rel = trigdata->tg_relation;
	/* 16 replaced the per-class owner checks with object_ownercheck(). */
#if PG_VERSION_NUM >= 160000
	owner = object_ownercheck(RelationRelationId, RelationGetRelid(rel), GetUserId());
#else
	owner = pg_class_ownercheck(RelationGetRelid(rel), GetUserId());
#endif
	if (!StmtInAudit() && !owner && !superuser())
	{
		bool		restored = false;

		if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) &&
			TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		{
			int			attnum = SPI_fnumber(RelationGetDescr(rel), "outcome");
			bool		isnull;
			Datum		outcome = heap_getattr(trigdata->tg_trigtuple, attnum,
											   RelationGetDescr(rel), &isnull);

			restored = !isnull &&
				strcmp(TextDatumGetCString(outcome), "restored") == 0;
		}
		if (!restored)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only release_expired_orders writes its audit rows in \"%s\"",
							RelationGetRelationName(rel)),
					 errdetail("restore_order() trusts these rows to move stock and shares."),
					 errhint("Let the job and restore_order() write them; the owner of the table may correct history by hand.")));
	}
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		return PointerGetDatum(NULL);
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
						   trigdata->tg_newtuple : trigdata->tg_trigtuple);
}

PG_FUNCTION_INFO_V1(reo_oldest_deadline);

/*
 * oldest_deadline(): the earliest deadline of any order still pending,
 * those waiting out the retry backoff included, or NULL; by the job's own
 * candidate statement, so that it reads what a run reads.
 */
Datum
reo_oldest_deadline(PG_FUNCTION_ARGS)
{
	TimestampTz deadline;

	ReoCheckSettings();
	if (!ReoNextDeadline(reo_timeout_minutes, true, &deadline))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(deadline);
}
