/*-------------------------------------------------------------------------
 *
 * app_schema.h
 *	  What the catalog says about the application's tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_APP_SCHEMA_H
#define REO_APP_SCHEMA_H

#include "postgres.h"

/*
 * The parts of the application's tables' shape that change the SQL the job
 * runs.  Compared with memcmp(), so it is zeroed before it is filled.
 */
typedef struct AppSchema
{
	char		schema[NAMEDATALEN];
	bool		orders_created_tz;	/* orders.created_at is timestamptz */
	bool		orders_updated_tz;
	bool		products_updated_tz;
	bool		rounds_updated_tz;
	bool		notifications;	/* write notifications rows */
	bool		notifications_tz;	/* notifications.sent_at/created_at */
	bool		orders_type;	/* orders.type exists: payment windows apply */
	bool		orders_payment_method;	/* windows per payment method apply */
	bool		triggers;		/* the application's tables have triggers */
	Oid			orders_owner;	/* the application's code runs as this role */
	Oid			orders;			/* the tables (notifications: InvalidOid when */
	Oid			products;		/* none are written) */
	Oid			rounds;
	Oid			notifications_rel;
	bool		objects_1_0;	/* the extension's tables are still 1.0's */
} AppSchema;

extern void ReoDiscoverSchema(AppSchema *app, const char *schema,
							  bool want_notifications, char **notifications_problem);
extern void ReoCheckJobPrivileges(const AppSchema *app);
extern void ReoCheckWindowPrivileges(const AppSchema *app);
extern void ReoCheckWindowCollations(const AppSchema *app);
extern char *ReoDeferrableConstraints(const AppSchema *app);
extern bool ReoColumnIsTz(const char *schema, const char *table, const char *column);
extern char *ReoRowSecurityProblem(const char *schema, Oid roleid);

#endif							/* REO_APP_SCHEMA_H */
