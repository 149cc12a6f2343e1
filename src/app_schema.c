/*-------------------------------------------------------------------------
 *
 * app_schema.c
 *	  Discovery of the application's tables: which exist, which columns they
 *	  have and in which convention their timestamps are kept.
 *
 * The extension does not own the application's tables, so it checks them
 * against what it needs before every run and refuses, with an error naming
 * the table and column, anything it could not work with.  Guarantees: the
 * column rules, the ownership rule and the row-level security rule are
 * written here once; SQL-side code asks through the functions below.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "app_schema.h"

typedef enum ColumnKind
{
	COL_UUID,
	COL_TEXT,					/* a string type, an enum, or a domain over one */
	COL_STATUS,					/* the same, holding the labels the job uses */
	COL_STRING,					/* a string type the job appends text to */
	COL_INT4,
	COL_TIMESTAMP
} ColumnKind;

typedef struct ColumnRule
{
	const char *name;
	ColumnKind	kind;
} ColumnRule;

static const ColumnRule orders_columns[] = {
	{"id", COL_UUID}, {"order_number", COL_TEXT}, {"user_id", COL_UUID},
	{"product_id", COL_UUID}, {"round_id", COL_UUID}, {"quantity", COL_INT4},
	{"status", COL_STATUS}, {"payment_status", COL_STATUS},
	{"fulfillment_status", COL_STATUS}, {"notes", COL_STRING},
	{"created_at", COL_TIMESTAMP}, {"updated_at", COL_TIMESTAMP}, {NULL}
};

static const ColumnRule products_columns[] = {
	{"id", COL_UUID}, {"stock", COL_INT4}, {"updated_at", COL_TIMESTAMP}, {NULL}
};

static const ColumnRule rounds_columns[] = {
	{"id", COL_UUID}, {"total_shares", COL_INT4}, {"sold_shares", COL_INT4},
	{"status", COL_TEXT}, {"updated_at", COL_TIMESTAMP}, {NULL}
};

static const ColumnRule notifications_columns[] = {
	{"id", COL_UUID}, {"user_id", COL_UUID}, {"type", COL_TEXT},
	{"content", COL_TEXT}, {"status", COL_TEXT}, {"sent_at", COL_TIMESTAMP},
	{"created_at", COL_TIMESTAMP}, {NULL}
};

static const char *const kind_names[] = {
	"uuid", "text, varchar, another string type or an enum",
	"text, varchar, another string type or an enum",
	"text, varchar or another string type", "integer", "timestamp or timestamptz"
};

/* The labels an order's statuses take: an enum status must have each. */
static const char *const status_labels[] = {
	"pending", "expired", "cancelled", NULL
};

#define KindName(kind) (kind_names[(kind)])

static bool
KindAccepts(ColumnKind kind, Oid type)
{
	switch (kind)
	{
		case COL_UUID:
			return type == UUIDOID;
		case COL_TEXT:
		case COL_STATUS:
		case COL_STRING:
			{
				char		category;
				bool		preferred;

				/* text, varchar, bpchar, citext, or a domain over one */
				get_type_category_preferred(getBaseType(type), &category, &preferred);
				return category == TYPCATEGORY_STRING ||
					(kind != COL_STRING && category == TYPCATEGORY_ENUM);
			}
		case COL_INT4:
			return type == INT4OID;
		case COL_TIMESTAMP:
			return type == TIMESTAMPOID || type == TIMESTAMPTZOID;
	}
	return false;
}

/*
 * Find an ordinary or partitioned table of the application.  Returns
 * InvalidOid when it is missing and missing_ok; errors otherwise.
 */
static Oid
FindTable(Oid nsp, const char *schema, const char *table, bool missing_ok)
{
	Oid			relid = get_relname_relid(table, nsp);
	char		relkind;

	if (!OidIsValid(relid))
	{
		if (missing_ok)
			return InvalidOid;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist", schema, table),
				 errdetail("release_expired_orders works on the application's tables orders, products and lottery_rounds."),
				 errhint("Create the table, or set release_expired_orders.app_schema to the schema that holds it.")));
	}
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s.%s\" is not a table", schema, table),
				 errhint("release_expired_orders needs %s to be an ordinary or partitioned table.",
						 table)));
	return relid;
}

/* A table's owner, and whether it has triggers (or had: cleared lazily). */
static Oid
RelOwner(Oid relid, bool *has_triggers)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class form;
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	form = (Form_pg_class) GETSTRUCT(tuple);
	owner = form->relowner;
	if (has_triggers)
		*has_triggers |= form->relhastriggers;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * A table the job writes must belong to the owner of orders (or to a
 * superuser): a table that anyone else created in the application's schema,
 * for example a notifications table the application never had, would run
 * its owner's triggers, defaults and constraints as the owner of orders.
 */
static void
RefuseForeignOwner(Oid relid, Oid orders_owner, const char *schema, const char *table)
{
	Oid			owner = RelOwner(relid, NULL);

	if (owner == orders_owner || superuser_arg(owner))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("relation \"%s.%s\" is owned by role \"%s\", not by \"%s\", the owner of \"%s.orders\"",
					schema, table, GetUserNameFromId(owner, false),
					GetUserNameFromId(orders_owner, false), schema),
			 errdetail("Its triggers, column defaults and constraints would run as the role running the job."),
			 errhint("If the table is the application's, make the owner of orders own it (ALTER TABLE ... OWNER TO); otherwise drop it%s.",
					 strcmp(table, "notifications") == 0 ?
					 ", or set release_expired_orders.write_notifications to off" : "")));
}

/*
 * An enum status column must have every label the job compares with or
 * writes; otherwise each run would fail on the first order.
 */
static void
CheckLabels(Oid enumtype, const char *schema, const char *table, const char *column)
{
	for (const char *const *label = status_labels; *label; label++)
	{
		HeapTuple	tuple = SearchSysCache2(ENUMTYPOIDNAME, ObjectIdGetDatum(enumtype),
											CStringGetDatum(*label));

		if (!HeapTupleIsValid(tuple))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of relation \"%s.%s\" has type %s, which has no label \"%s\"",
							column, schema, table, format_type_be(enumtype), *label),
					 errhint("release_expired_orders reads \"pending\" and writes \"expired\" and \"cancelled\"; add the label with ALTER TYPE ... ADD VALUE.")));
		ReleaseSysCache(tuple);
	}
}

/*
 * Check every column a table must have; report whether its last
 * timestamp-kind columns are timestamptz through tz_flags, in rule order.
 */
static void
CheckColumns(Oid relid, const char *schema, const char *table,
			 const ColumnRule *rules, bool *tz_flags)
{
	int			ntz = 0;

	for (const ColumnRule *rule = rules; rule->name != NULL; rule++)
	{
		AttrNumber	attnum = get_attnum(relid, rule->name);
		Oid			type;

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s.%s\" does not exist",
							rule->name, schema, table),
					 errhint("release_expired_orders expects %s.%s of type %s.",
							 table, rule->name, KindName(rule->kind))));
		type = get_atttype(relid, attnum);
		if (!KindAccepts(rule->kind, type))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of relation \"%s.%s\" has type %s",
							rule->name, schema, table, format_type_be(type)),
					 errhint("release_expired_orders expects %s.%s of type %s.",
							 table, rule->name, KindName(rule->kind))));
		if (rule->kind == COL_STATUS && type_is_enum(getBaseType(type)))
			CheckLabels(getBaseType(type), schema, table, rule->name);
		if (rule->kind == COL_TIMESTAMP)
			tz_flags[ntz++] = (type == TIMESTAMPTZOID);
	}
}

/* Whether an optional column exists; one of the wrong type is an error. */
static bool
HasColumn(Oid relid, const char *schema, const char *table, const char *column)
{
	ColumnRule	rules[] = {{column, COL_TEXT}, {NULL}};

	if (get_attnum(relid, column) == InvalidAttrNumber)
		return false;
	CheckColumns(relid, schema, table, rules, NULL);
	return true;
}

/*
 * Row-level security that applies to roleid on the table hides rows from
 * it.  Hidden orders would be neither released nor counted, and a hidden
 * product or round would keep an order's stock or shares.
 */
static bool
RowSecurityApplies(Oid relid, Oid roleid)
{
	return check_enable_rls(relid, roleid, true) == RLS_ENABLED;
}

static void
RefuseRowSecurity(Oid relid, const char *schema, const char *table)
{
	if (!RowSecurityApplies(relid, InvalidOid))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("row-level security on \"%s.%s\" applies to role \"%s\"",
					schema, table, GetUserNameFromId(GetUserId(), false)),
			 errdetail("Orders the policies hide would stay pending uncounted, and the stock and shares of hidden products and rounds would never be returned."),
			 errhint("Run the job as the table owner or as a role with BYPASSRLS, such as Supabase's service_role.")));
}

/* The columns of notifications the job writes; any other must fill itself. */
static const char *const notifications_written[] = {
	"id", "user_id", "type", "content", "status", "sent_at", "created_at", NULL
};

/*
 * A NOT NULL column of notifications without a default that the job does
 * not write would make every insert fail.  The notifications are a courtesy
 * to old dashboards and never block a release: describe the problem so
 * that the run skips them with a WARNING.
 */
static char *
NotificationsProblem(Oid relid, const char *schema)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	int			natts;
	StringInfoData cols;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	natts = ((Form_pg_class) GETSTRUCT(tuple))->relnatts;
	ReleaseSysCache(tuple);

	initStringInfo(&cols);
	for (AttrNumber attnum = 1; attnum <= natts; attnum++)
	{
		HeapTuple	atup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid),
										   Int16GetDatum(attnum));
		Form_pg_attribute att;
		bool		written = false;

		if (!HeapTupleIsValid(atup))
			continue;
		att = (Form_pg_attribute) GETSTRUCT(atup);
		for (const char *const *w = notifications_written; *w; w++)
			written |= strcmp(NameStr(att->attname), *w) == 0;
		if (!att->attisdropped && att->attnotnull && !att->atthasdef &&
			att->attidentity == '\0' && att->attgenerated == '\0' && !written)
			appendStringInfo(&cols, "%s%s", cols.len ? ", " : "",
							 quote_identifier(NameStr(att->attname)));
		ReleaseSysCache(atup);
	}
	if (cols.len == 0)
		return NULL;
	return psprintf("column%s %s of relation \"%s.notifications\" %s NOT NULL without a default, and release_expired_orders does not write %s",
					strchr(cols.data, ',') ? "s" : "", cols.data, schema,
					strchr(cols.data, ',') ? "are" : "is",
					strchr(cols.data, ',') ? "them" : "it");
}

/*
 * Look the application's tables up in schema and fill *app.  Errors,
 * before anything is written, when a table or column the release needs is
 * missing or of a type it cannot use.  Notifications that cannot be
 * written are switched off, and *notifications_problem says why.
 */
void
ReoDiscoverSchema(AppSchema *app, const char *schema, bool want_notifications,
				  char **notifications_problem)
{
	Oid			nsp = get_namespace_oid(schema, true);
	Oid			relid;
	Oid			orders_owner;
	bool		tz[2];

	*notifications_problem = NULL;
	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", schema),
				 errhint("Set release_expired_orders.app_schema to the schema that holds the application's tables.")));

	memset(app, 0, sizeof(AppSchema));
	strlcpy(app->schema, schema, NAMEDATALEN);

	relid = FindTable(nsp, schema, "orders", false);
	CheckColumns(relid, schema, "orders", orders_columns, tz);
	RefuseRowSecurity(relid, schema, "orders");
	orders_owner = RelOwner(relid, &app->triggers);
	app->orders_owner = orders_owner;
	app->orders = relid;
	app->orders_created_tz = tz[0];
	app->orders_updated_tz = tz[1];
	app->orders_type = HasColumn(relid, schema, "orders", "type");
	app->orders_payment_method = app->orders_type &&
		HasColumn(relid, schema, "orders", "payment_method");

	relid = FindTable(nsp, schema, "products", false);
	CheckColumns(relid, schema, "products", products_columns, tz);
	RefuseForeignOwner(relid, orders_owner, schema, "products");
	RefuseRowSecurity(relid, schema, "products");
	app->products = relid;
	(void) RelOwner(relid, &app->triggers);
	app->products_updated_tz = tz[0];

	relid = FindTable(nsp, schema, "lottery_rounds", false);
	CheckColumns(relid, schema, "lottery_rounds", rounds_columns, tz);
	RefuseForeignOwner(relid, orders_owner, schema, "lottery_rounds");
	RefuseRowSecurity(relid, schema, "lottery_rounds");
	app->rounds = relid;
	(void) RelOwner(relid, &app->triggers);
	app->rounds_updated_tz = tz[0];

	/* The notifications table is optional: without it, none are written. */
	relid = want_notifications ?
		FindTable(nsp, schema, "notifications", true) : InvalidOid;
	if (OidIsValid(relid))
	{
		CheckColumns(relid, schema, "notifications", notifications_columns, tz);
		RefuseForeignOwner(relid, orders_owner, schema, "notifications");
		/* both columns take one value: they must share a convention */
		if (tz[0] != tz[1])
			*notifications_problem =
				psprintf("columns \"sent_at\" and \"created_at\" of relation \"%s.notifications\" differ in time zone convention",
						 schema);
		else
			*notifications_problem = NotificationsProblem(relid, schema);
		app->notifications = (*notifications_problem == NULL);
		app->notifications_tz = tz[0];
		if (app->notifications)
		{
			app->notifications_rel = relid;
			(void) RelOwner(relid, &app->triggers);
		}
	}
}

/*
 * The role running the job must hold mode on each of the columns (on the
 * table, or on the column itself), as if it ran the statement itself.
 */
static void
RequireColumns(Oid relid, AclMode mode, const char *const *columns)
{
	Oid			role = GetUserId();

	if (pg_class_aclcheck(relid, role, mode) == ACLCHECK_OK)
		return;
	for (const char *const *col = columns; *col; col++)
	{
		AttrNumber	attnum = get_attnum(relid, *col);

		if (attnum != InvalidAttrNumber &&
			pg_attribute_aclcheck(relid, attnum, role, mode) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(relid));
	}
}

static const char *const orders_read[] = {
	"id", "order_number", "user_id", "product_id", "round_id", "quantity", "status",
	"payment_status", "fulfillment_status", "created_at", NULL
};
static const char *const orders_written[] = {
	"status", "payment_status", "fulfillment_status", "notes", "updated_at", NULL
};
static const char *const products_read[] = {"id", "stock", NULL};
static const char *const products_written[] = {"stock", "updated_at", NULL};
static const char *const rounds_read[] = {"id", "sold_shares", NULL};
static const char *const rounds_written[] = {"sold_shares", "updated_at", NULL};

/*
 * The role running the job must itself have the privileges the release
 * uses on the application's tables, although the statements that run the
 * application's code run as the owner of orders: running the job never
 * lets a role do to those tables what it could not do itself.
 */
void
ReoCheckJobPrivileges(const AppSchema *app)
{
	RequireColumns(app->orders, ACL_SELECT, orders_read);
	RequireColumns(app->orders, ACL_UPDATE, orders_written);
	RequireColumns(app->products, ACL_SELECT, products_read);
	RequireColumns(app->products, ACL_UPDATE, products_written);
	RequireColumns(app->rounds, ACL_SELECT, rounds_read);
	RequireColumns(app->rounds, ACL_UPDATE, rounds_written);
	if (OidIsValid(app->notifications_rel))
		RequireColumns(app->notifications_rel, ACL_INSERT, notifications_written);
}

/*
 * With payment windows in force the job also reads each order's type and
 * payment method; the role running it must be able to, before it writes
 * anything.
 */
void
ReoCheckWindowPrivileges(const AppSchema *app)
{
	static const char *const orders_windowed[] = {"type", "payment_method", NULL};

	RequireColumns(app->orders, ACL_SELECT, orders_windowed);
}

/*
 * Payment windows match orders.type and orders.payment_method exactly.
 * Under a nondeterministic collation two windows' types (or methods) could
 * be one, and an order would be released under the other's window.
 */
void
ReoCheckWindowCollations(const AppSchema *app)
{
	static const char *const columns[] = {"type", "payment_method", NULL};

	for (const char *const *col = columns; *col; col++)
	{
		AttrNumber	attnum = get_attnum(app->orders, *col);
		Oid			type;
		int32		typmod;
		Oid			collation;

		if (attnum == InvalidAttrNumber)
			continue;
		get_atttypetypmodcoll(app->orders, attnum, &type, &typmod, &collation);
		if (OidIsValid(collation) && !get_collation_isdeterministic(collation))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("column \"%s\" of relation \"%s.orders\" has the nondeterministic collation \"%s\"",
							*col, app->schema, get_collation_name(collation)),
					 errdetail("Payment windows match order types and payment methods exactly; under this collation the values of two windows could be one."),
					 errhint("Give the column a deterministic collation, or delete the rows of release_expired_orders.payment_windows.")));
	}
}

/* Append the deferrable constraints of a table to buf, qualified. */
static void
AppendDeferrable(StringInfo buf, Oid relid)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	if (!OidIsValid(relid))
		return;
	rel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, ConstraintRelidTypidNameIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tuple);

		if (con->condeferrable)
			appendStringInfo(buf, "%s%s", buf->len ? ", " : "",
							 quote_qualified_identifier(get_namespace_name(con->connamespace),
														NameStr(con->conname)));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/*
 * "SET CONSTRAINTS ... IMMEDIATE" for the deferrable constraints of the
 * application's tables, or NULL when they have none: what a CALL inside
 * the caller's transaction block sets, so that the application's deferred
 * triggers fire within the release (where a security-restricted operation
 * cannot queue them for the commit), and no other constraint of the
 * caller's transaction changes.
 */
char *
ReoDeferrableConstraints(const AppSchema *app)
{
	StringInfoData buf;

	initStringInfo(&buf);
	AppendDeferrable(&buf, app->orders);
	AppendDeferrable(&buf, app->products);
	AppendDeferrable(&buf, app->rounds);
	AppendDeferrable(&buf, app->notifications_rel);
	if (buf.len == 0)
		return NULL;
	return psprintf("SET CONSTRAINTS %s IMMEDIATE", buf.data);
}

/*
 * Whether a timestamp column of an application table is timestamptz, by
 * the same column rule as the release; an error naming it otherwise.
 */
bool
ReoColumnIsTz(const char *schema, const char *table, const char *column)
{
	Oid			nsp = get_namespace_oid(schema, true);
	ColumnRule	rules[] = {{column, COL_TIMESTAMP}, {NULL}};
	bool		tz;

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", schema),
				 errhint("Set release_expired_orders.app_schema to the schema that holds the application's tables.")));
	CheckColumns(FindTable(nsp, schema, table, false), schema, table, rules, &tz);
	return tz;
}

/*
 * The application's tables on which row-level security applies to roleid,
 * as a list for health(), or NULL when there are none: the rule the job
 * refuses to run by.
 */
char *
ReoRowSecurityProblem(const char *schema, Oid roleid)
{
	/*
	 * The tables the job's role reads and locks; notifications are written
	 * as the owner of orders, and one that cannot be written is skipped.
	 */
	static const char *const tables[] = {
		"orders", "products", "lottery_rounds", NULL
	};
	Oid			nsp = get_namespace_oid(schema, true);
	StringInfoData buf;

	if (!OidIsValid(nsp))
		return NULL;
	initStringInfo(&buf);
	for (const char *const *t = tables; *t; t++)
	{
		Oid			relid = get_relname_relid(*t, nsp);

		if (OidIsValid(relid) && RowSecurityApplies(relid, roleid))
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "",
							 quote_qualified_identifier(schema, *t));
	}
	return buf.len ? buf.data : NULL;
}
