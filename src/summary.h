/*-------------------------------------------------------------------------
 *
 * summary.h
 *	  What a run reports: the list of its failed orders, and the summary the
 *	  procedure returns as JSON.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_SUMMARY_H
#define REO_SUMMARY_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

/* The failed orders a summary lists, capped so that memory stays bounded. */
typedef struct ReoErrorList
{
	int			listed;
	StringInfoData json;		/* body of a JSON array */
	MemoryContext cxt;			/* where json grows */
} ReoErrorList;

/* What the summary reports of a run. */
typedef struct ReoSummary
{
	const char *outcome;
	const char *message;
	int64		run_id;			/* 0 when no run row was written */
	int64		found;
	int64		released;
	int64		failed;
	int64		vetoed;
	int64		elapsed_ms;
	TimestampTz started;
	int			timeout_minutes;
	const char *windows;		/* JSON array of the payment windows, or NULL */
	const char *errors;			/* the listed failed orders, JSON array body */
} ReoSummary;

extern void ReoInitErrorList(ReoErrorList *list, MemoryContext cxt);
extern void ReoListError(ReoErrorList *list, const char *order_id,
						 const char *order_number, const char *error);
extern char *ReoSummaryJson(const ReoSummary *s);

#endif							/* REO_SUMMARY_H */
