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
 * it is doing, and none is started until the command has ended.  DROP
 * EXTENSION and ALTER EXTENSION of this extension pause the database they
 * run in too, until the transaction ends: they lock the extension's tables
 * one by one, and a worker holding one of them while it waits for another
 * made the user's command the deadlock detector's victim.  Only a role
 * that may run the command pauses anything.  (Other commands that drop
 * the tables, DROP SCHEMA ... CASCADE say, are covered by the look's own
 * short lock_timeout, worker_step.c.)  The hooks are installed in every
 * backend, with the library preloaded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "catalog/pg_database.h"
#include "utils/acl.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"

#include "ddl_guard.h"
#include "worker_state.h"

static ProcessUtility_hook_type prev_utility_hook = NULL;

/* What to tell at commit. */
static bool extension_created = false;
static bool extension_dropped = false;
static Oid	settings_database = InvalidOid;	/* ALTER DATABASE ... SET */
static bool settings_changed = false;
static bool callback_registered = false;
/* The database paused by DROP or ALTER EXTENSION, until the transaction ends. */
static Oid	paused_until_end = InvalidOid;

/* Whether the current user owns the object (a superuser owns everything). */
static bool
CurrentUserOwns(Oid classid, Oid objectid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(classid, objectid, GetUserId());
#else
	if (classid == DatabaseRelationId)
		return pg_database_ownercheck(objectid, GetUserId());
	Assert(classid == ExtensionRelationId);
	return pg_extension_ownercheck(objectid, GetUserId());
#endif
}

/*
 * The database a command needs to itself, or InvalidOid: only when the
 * current user may run the command on it (it owns the database, or is a
 * superuser), so that a command that is refused pauses nothing.
 */
static Oid
DatabaseToItself(Node *parsetree)
{
	const char *name = NULL;
	ListCell   *lc;
	Oid			database;

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
	if (name == NULL)
		return InvalidOid;
	database = get_database_oid(name, true);
	if (!OidIsValid(database) || !CurrentUserOwns(DatabaseRelationId, database))
		return InvalidOid;
	return database;
}

/* Whether a name list (DROP EXTENSION's) names this extension. */
static bool
NamesThisExtension(List *objects)
{
	ListCell   *lc;

	foreach(lc, objects)
		if (IsA(lfirst(lc), String) &&
			strcmp(strVal(lfirst(lc)), "release_expired_orders") == 0)
			return true;
	return false;
}

/*
 * This database, when the command is DROP EXTENSION or ALTER EXTENSION of
 * this extension and the current user owns it (or is a superuser); else
 * InvalidOid.
 */
static Oid
ExtensionToItself(Node *parsetree)
{
	Oid			extension;

	if (IsA(parsetree, DropStmt))
	{
		if (((DropStmt *) parsetree)->removeType != OBJECT_EXTENSION ||
			!NamesThisExtension(((DropStmt *) parsetree)->objects))
			return InvalidOid;
	}
	else if (!IsA(parsetree, AlterExtensionStmt) ||
			 strcmp(((AlterExtensionStmt *) parsetree)->extname, "release_expired_orders") != 0)
		return InvalidOid;
	extension = get_extension_oid("release_expired_orders", true);
	if (!OidIsValid(extension) || !CurrentUserOwns(ExtensionRelationId, extension))
		return InvalidOid;
	return MyDatabaseId;
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

/* What the command changes that the workers must learn at its commit. */
static void
NoteCommand(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_CreateExtensionStmt:
			if (strcmp(((CreateExtensionStmt *) stmt)->extname, "release_expired_orders") == 0)
				extension_created = true;
			break;
		case T_AlterExtensionStmt:
			if (strcmp(((AlterExtensionStmt *) stmt)->extname, "release_expired_orders") == 0)
			{
				extension_dropped = true;	/* the worker looks again */
				extension_created = true;	/* 1.0's had none: now one */
			}
			break;
		case T_DropStmt:
			if (((DropStmt *) stmt)->removeType == OBJECT_EXTENSION &&
				NamesThisExtension(((DropStmt *) stmt)->objects))
				extension_dropped = true;
			break;
		case T_AlterDatabaseSetStmt:
			/* deadline_worker may be on again there */
			settings_database = get_database_oid(((AlterDatabaseSetStmt *) stmt)->dbname, true);
			settings_changed = true;
			break;
		case T_AlterRoleSetStmt:
		case T_ReassignOwnedStmt:
			settings_changed = true;
			break;
		case T_AlterOwnerStmt:
			if (((AlterOwnerStmt *) stmt)->objectType == OBJECT_DATABASE)
				settings_changed = true;
			break;
		default:
			return;
	}
	RegisterCallback();
}

static void
GuardUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			 ProcessUtilityContext context, ParamListInfo params,
			 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	volatile Oid database = DatabaseToItself(stmt);
	Oid			extension_database = InvalidOid;

	if (!OidIsValid(database))
		extension_database = ExtensionToItself(stmt);

	NoteCommand(stmt);

	/*
	 * DROP or ALTER EXTENSION: the worker stays away until the transaction
	 * ends, since the command's locks are held until then (a worker started
	 * in between would wait for the dropped tables, then fail on them).
	 */
	if (OidIsValid(extension_database) && paused_until_end != extension_database)
	{
		paused_until_end = extension_database;
		RegisterCallback();
		ReoPauseDatabase(extension_database);
	}
	PG_TRY();
	{
		/* in the PG_TRY: a command canceled while it waits still resumes */
		if (OidIsValid(database))
			ReoPauseDatabase(database);
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

	/*
	 * COMMIT PREPARED of a transaction that placed late orders: their wake
	 * trigger could not wake the worker (the transaction was only prepared).
	 */
	if (IsA(stmt, TransactionStmt) &&
		((TransactionStmt *) stmt)->kind == TRANS_STMT_COMMIT_PREPARED)
		ReoWakeDatabaseWorker(MyDatabaseId);
}

static void
AtCommit(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		/* the extension was created: the launcher looks at the database again */
		if (extension_created)
			ReoRecheckDatabase(MyDatabaseId);
		/* dropped or altered: the worker looks, and exits if it is gone */
		if (extension_dropped)
			ReoWakeDatabaseWorker(MyDatabaseId);
		/* settings: each worker checks that it still runs as it should */
		if (settings_changed)
		{
			if (OidIsValid(settings_database))
				ReoRecheckDatabase(settings_database);
			ReoWakeAllWorkers();
		}
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		if (OidIsValid(paused_until_end))
			ReoResumeDatabase(paused_until_end);
		paused_until_end = InvalidOid;
		extension_created = extension_dropped = settings_changed = false;
		settings_database = InvalidOid;
	}
}

/* Install the hook; from _PG_init() while preloading only. */
void
ReoDdlGuardInit(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = GuardUtility;
}
