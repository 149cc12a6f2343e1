/*-------------------------------------------------------------------------
 *
 * summary.c
 *	  The summary each call returns, in the shape of the old serverless
 *	  function's response, so that the dashboards built on it keep working.
 *
 * Guarantees: at most MAX_LISTED_ERRORS failed orders are listed, whatever
 * the number of failures; every string is JSON-escaped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/json.h"
#include "utils/memutils.h"

#include "summary.h"
#include "util.h"

/* How many failed orders the returned summary lists at most. */
#define MAX_LISTED_ERRORS 100

/* An empty list whose text lives in cxt. */
void
ReoInitErrorList(ReoErrorList *list, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);

	list->listed = 0;
	list->cxt = cxt;
	initStringInfo(&list->json);
	MemoryContextSwitchTo(old);
}

/* Remember a failed order for the summary's "errors" list. */
void
ReoListError(ReoErrorList *list, const char *order_id,
			 const char *order_number, const char *error)
{
	MemoryContext old;

	if (list->listed >= MAX_LISTED_ERRORS)
		return;
	old = MemoryContextSwitchTo(list->cxt);
	if (list->listed > 0)
		appendStringInfoChar(&list->json, ',');
	appendStringInfoString(&list->json, "{\"orderId\": ");
	escape_json(&list->json, order_id);
	appendStringInfoString(&list->json, ", \"orderNumber\": ");
	if (order_number == NULL)
		appendStringInfoString(&list->json, "null");
	else
		escape_json(&list->json, order_number);
	appendStringInfoString(&list->json, ", \"error\": ");
	escape_json(&list->json, error);
	appendStringInfoChar(&list->json, '}');
	list->listed++;
	MemoryContextSwitchTo(old);
}

/*
 * The summary as JSON text; "outcome" and "vetoed" are additions to the old
 * function's shape.
 */
char *
ReoSummaryJson(const ReoSummary *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"success\": %s, \"message\": ",
					 strcmp(s->outcome, "failed") == 0 ? "false" : "true");
	escape_json(&buf, s->message);
	appendStringInfo(&buf, ", \"summary\": {\"totalFound\": " INT64_FORMAT
					 ", \"processed\": " INT64_FORMAT
					 ", \"successful\": " INT64_FORMAT
					 ", \"failed\": " INT64_FORMAT
					 ", \"vetoed\": " INT64_FORMAT
					 ", \"processingTimeMs\": " INT64_FORMAT
					 ", \"timestamp\": \"%s\", \"timeoutMinutes\": %d",
					 s->found, s->released + s->failed + s->vetoed, s->released,
					 s->failed, s->vetoed, s->elapsed_ms, ReoIsoUtc(s->started),
					 s->timeout_minutes);
	if (s->windows)
		appendStringInfo(&buf, ", \"windows\": %s", s->windows);
	appendStringInfoString(&buf, ", \"runId\": ");
	if (s->run_id > 0)
		appendStringInfo(&buf, INT64_FORMAT, s->run_id);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfo(&buf, ", \"outcome\": \"%s\"}, \"errors\": [%s]}",
					 s->outcome, s->errors ? s->errors : "");
	return buf.data;
}
