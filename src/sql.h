/*-------------------------------------------------------------------------
 *
 * sql.h
 *	  Running the SQL statements of statements.h, with the plans kept for
 *	  them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_SQL_H
#define REO_SQL_H

#include "postgres.h"

#include "app_schema.h"
#include "statements.h"

extern void StmtUseSchema(const AppSchema *app);
extern uint64 StmtExecute(ReoStatement stmt, Datum *values, const char *nulls);
extern uint64 StmtQuery(ReoStatement stmt, Datum *values, const char *nulls);
extern bool StmtInAudit(void);

extern bool StmtRuns(ReoStatement stmt);
extern char *StmtText(ReoStatement stmt, const char **name, int *nargs, Oid *argtypes);

#endif							/* REO_SQL_H */
