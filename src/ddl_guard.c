/*-------------------------------------------------------------------------
 *
 * ddl_guard.c
 *	  What other backends' commands tell the deadline workers: a database
 *	  command that needs a database to itself stops its worker first, and
 *	  CREATE or DROP EXTENSION tells the launcher or the worker when it
 *	  commits.
 *
 * DROP DATABASE, ALTER DATABASE ... RENAME TO and ... SET TABLESPACE, and
 * CREATE DATABASE ... TEMPLATE fail while another session is connected to
 * the database.  Before such a command runs, the backend that runs it
 * pauses the database (worker_state.c): its worker is terminated, whatever
 * it is doing, and none is started until the command has ended.  The hooks
 * are installed in every backend, with the library preloaded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"

#include "ddl_guard.h"
#include "worker_state.h"

static ProcessUtility_hook_type prev_utility_hook = NULL;
static object_access_hook_type prev_object_access_hook = NULL;

/* What to tell at commit. */
static bool extension_created = false;
static bool extension_dropped = false;
static bool settings_changed = false;
static bool callback_registered = false;

/* The database a command needs to itself, or InvalidOid. */
static Oid
DatabaseToItself(Node *parsetree)
{
	const char *name = NULL;
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			name = ((DropdbStmt *) parsetree)->dbname;
			break;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				name = ((RenameStmt *) parsetree)->subname;
			break;
		case T_AlterDatabaseStmt:
			foreach(lc, ((AlterDatabaseStmt *) parsetree)->options)
				if (strcmp(((DefElem *) lfirst(lc))->defname, "tablespace") == 0)
					name = ((AlterDatabaseStmt *) parsetree)->dbname;
			break;
		case T_CreatedbStmt:
			foreach(lc, ((CreatedbStmt *) parsetree)->options)
				if (strcmp(((DefElem *) lfirst(lc))->defname, "template") == 0)
					name = defGetString((DefElem *) lfirst(lc));
			break;
		default:
			break;
	}
	return name ? get_database_oid(name, true) : InvalidOid;
}

static void AtCommit(XactEvent event, void *arg);

static void
RegisterCallback(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(AtCommit, NULL);
		callback_registered = true;
	}
}

static void
GuardUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			 ProcessUtilityContext context, ParamListInfo params,
			 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	Oid			database = DatabaseToItself(stmt);

	if (OidIsValid(database))
		ReoPauseDatabase(database);

	/*
	 * Settings of a database or a role, or a database's owner: the workers
	 * look at once whether they still run as they should.
	 */
	if (IsA(stmt, AlterDatabaseSetStmt) || IsA(stmt, AlterRoleSetStmt) ||
		(IsA(stmt, AlterOwnerStmt) && ((AlterOwnerStmt *) stmt)->objectType == OBJECT_DATABASE))
	{
		settings_changed = true;
		RegisterCallback();
	}
	PG_TRY();
	{
		if (prev_utility_hook)
			prev_utility_hook(pstmt, queryString, readOnlyTree, context, params,
							  queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		if (OidIsValid(database))
			ReoResumeDatabase(database);
	}
	PG_END_TRY();
}

static void
AtCommit(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		/* an extension was created: the launcher looks at the database again */
		if (extension_created)
			ReoRecheckDatabase(MyDatabaseId);
		/* one was dropped: the worker looks, and exits if it was this one */
		if (extension_dropped)
			ReoWakeDatabaseWorker(MyDatabaseId);
		if (settings_changed)
		{
			ReoRecheckDatabase(InvalidOid);
			ReoWakeAllWorkers();
		}
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		extension_created = extension_dropped = settings_changed = false;
}

/*
 * Any extension created or dropped, or altered (an update may make the
 * objects fit the library): cheaper than finding which, and rare.
 */
static void
GuardObjectAccess(ObjectAccessType access, Oid classId, Oid objectId, int subId,
				  void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (classId != ExtensionRelationId)
		return;
	if (access == OAT_POST_CREATE)
		extension_created = true;
	else if (access == OAT_DROP || access == OAT_POST_ALTER)
		extension_dropped = true;
	else
		return;
	RegisterCallback();
}

/* Install the hooks; from _PG_init() while preloading only. */
void
ReoDdlGuardInit(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = GuardUtility;
	prev_object_access_hook = object_access_hook;
	object_access_hook = GuardObjectAccess;
}
