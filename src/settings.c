/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  GUC definitions, their check hooks, and the values PostgreSQL
 *	  rejected before the library was loaded.
 *
 * Guarantees: each integer setting's range is defined once, in IntSettings
 * below, and the procedure's arguments of the same name are checked
 * against the same range (ReoCheckArgument, also exposed to SQL).  A value
 * SET before the library loaded that PostgreSQL then refused is an error
 * at the next run, not a silent default.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <time.h>

#include "catalog/pg_authid.h"
#include "datatype/timestamp.h"
#include "pgtime.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "settings.h"

int			reo_timeout_minutes = 30;
int			reo_batch_limit = 100;
int			reo_chunk_size = 1000;
int			reo_lock_timeout_ms = 5000;
int			reo_retry_backoff_s = 15 * 60;
char	   *reo_naive_time_zone = NULL;
char	   *reo_app_schema = NULL;
bool		reo_write_notifications = true;
int			reo_slow_run_ms = 60000;
int			reo_alert_after_min = 20;
int			reo_history_retention_min = 30 * 24 * 60;
int			reo_purge_limit = 10000;

typedef struct IntSetting
{
	const char *name;			/* without the release_expired_orders. prefix */
	int		   *variable;
	int			boot;
	int			min;
	int			max;
	GucContext	context;
	int			flags;
	const char *short_desc;
	const char *long_desc;
} IntSetting;

static const IntSetting IntSettings[] = {
	{"timeout_minutes", &reo_timeout_minutes, 30, 1, 525600, PGC_USERSET, 0,
		"Minutes after which an unpaid order expires.",
	"Used when release_expired_orders is called with timeout_minutes NULL."},
	{"batch_limit", &reo_batch_limit, 100, 1, 1000000, PGC_USERSET, 0,
		"Most orders one call releases.",
	"Used when release_expired_orders is called with batch_limit NULL."},
	{"chunk_size", &reo_chunk_size, 1000, 1, 100000, PGC_USERSET, 0,
		"Orders released per transaction in a committing CALL.",
	"Also bounds the memory of a run."},
	{"lock_timeout", &reo_lock_timeout_ms, 5000, 1, 3600 * 1000, PGC_USERSET, GUC_UNIT_MS,
		"Longest wait for a product or lottery round row.",
	"Orders whose rows stay locked longer are counted failed and retried by the next run."},
	{"retry_backoff", &reo_retry_backoff_s, 15 * 60, 0, 24 * 3600, PGC_USERSET, GUC_UNIT_S,
		"How long an order that failed or was vetoed is left alone before it is tried again.",
	"Lock timeouts, deadlocks and serialization failures are retried at the next run; 0 retries every order at every run."},
	{"slow_run_ms", &reo_slow_run_ms, 60000, 1, INT_MAX, PGC_USERSET, GUC_UNIT_MS,
		"health() warns when the last run took longer.", NULL},
	{"alert_after", &reo_alert_after_min, 20, 1, 525600, PGC_USERSET, GUC_UNIT_MIN,
		"health() is critical when no run succeeded for this long.",
	"Twice the scheduled interval is a good value."},
	{"history_retention", &reo_history_retention_min, 30 * 24 * 60, 1, INT_MAX, PGC_SUSET, GUC_UNIT_MIN,
		"How long run and audit history is kept.",
	"Older history is purged by the job itself; only a superuser may shorten it, so that the job's role cannot erase the audit trail."},
	{"purge_limit", &reo_purge_limit, 10000, 0, INT_MAX, PGC_USERSET, 0,
		"Most history rows of each table one run purges.",
	"Bounds the cost the purge adds to a run."},
};

#define N_INT_SETTINGS lengthof(IntSettings)
#define N_SETTINGS (N_INT_SETTINGS + 3)

/* Names of every setting, integer ones first, in IntSettings order. */
static const char *SettingNames[N_SETTINGS];

/*
 * A value SET before the library was loaded is a placeholder; when the
 * library loads, PostgreSQL only warns about an invalid one and keeps the
 * default.  Such a value is remembered here until the setting is assigned
 * again.
 */
static char *rejected[N_SETTINGS];
static bool settings_defined = false;

/* One assign hook per setting, so that it knows which one was assigned. */
#define FORGET_REJECTED(n) \
	static void Assigned##n(void) { if (settings_defined) rejected[n] = NULL; } \
	static void AssignInt##n(int v, void *e) { Assigned##n(); } \
	static void AssignStr##n(const char *v, void *e) { Assigned##n(); } \
	static void AssignBool##n(bool v, void *e) { Assigned##n(); }
FORGET_REJECTED(0) FORGET_REJECTED(1) FORGET_REJECTED(2) FORGET_REJECTED(3)
FORGET_REJECTED(4) FORGET_REJECTED(5) FORGET_REJECTED(6) FORGET_REJECTED(7)
FORGET_REJECTED(8) FORGET_REJECTED(9) FORGET_REJECTED(10) FORGET_REJECTED(11)

static GucIntAssignHook IntHooks[] = {
	AssignInt0, AssignInt1, AssignInt2, AssignInt3, AssignInt4, AssignInt5,
	AssignInt6, AssignInt7, AssignInt8, AssignInt9, AssignInt10, AssignInt11
};
static GucStringAssignHook StrHooks[] = {
	AssignStr0, AssignStr1, AssignStr2, AssignStr3, AssignStr4, AssignStr5,
	AssignStr6, AssignStr7, AssignStr8, AssignStr9, AssignStr10, AssignStr11
};
static GucBoolAssignHook BoolHooks[] = {
	AssignBool0, AssignBool1, AssignBool2, AssignBool3, AssignBool4, AssignBool5,
	AssignBool6, AssignBool7, AssignBool8, AssignBool9, AssignBool10, AssignBool11
};

StaticAssertDecl(N_SETTINGS <= lengthof(IntHooks), "one assign hook per setting");

/*
 * Whether the zone's changes, in the year before and after now, are ones
 * PostgreSQL reads wall-clock times by: DetermineTimeZoneOffset() assumes
 * offsets under a day and changes at least two days apart.  A POSIX zone
 * may have either (its offsets reach 167 hours), and wall-clock times in
 * it would be read up to days off, against their deadline.  A zone without
 * changes may have any offset.
 */
static bool
ZoneChangesReadable(pg_tz *tz)
{
	pg_time_t	now = (pg_time_t) time(NULL);
	pg_time_t	t = now - 366 * SECS_PER_DAY;
	pg_time_t	previous = 0;
	pg_time_t	boundary;
	long int	before,
				after;
	int			before_dst,
				after_dst;

	for (int i = 0; i < 16; i++)
	{
		if (pg_next_dst_boundary(&t, &before, &before_dst, &boundary,
								 &after, &after_dst, tz) != 1 ||
			boundary > now + 366 * SECS_PER_DAY)
			break;
		if (labs(before) >= SECS_PER_DAY || labs(after) >= SECS_PER_DAY ||
			(previous != 0 && boundary - previous < 2 * SECS_PER_DAY))
			return false;
		previous = t = boundary;
	}
	return true;
}

/* A zone that pg_tzset() can load: the same rule that applies it. */
static bool
CheckNaiveTimeZone(char **newval, void **extra, GucSource source)
{
	pg_tz	   *tz;

	if (*newval == NULL || **newval == '\0' || (tz = pg_tzset(*newval)) == NULL)
	{
		GUC_check_errdetail("Time zone \"%s\" is not recognized.",
							*newval ? *newval : "");
		GUC_check_errhint("Use a name from pg_timezone_names, such as \"UTC\".");
		return false;
	}
	if (!ZoneChangesReadable(tz))
	{
		GUC_check_errdetail("Time zone \"%s\" changes its offset within two days of another change, or has an offset of a day or more with changes: PostgreSQL does not read wall-clock times in it as the zone says.",
							*newval);
		GUC_check_errhint("Use a name from pg_timezone_names, such as \"UTC\".");
		return false;
	}
	return true;
}

/* A schema name the catalogs could hold; existence is checked per run. */
static bool
CheckAppSchema(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0' || strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errdetail("The schema name must have 1 to %d bytes.",
							NAMEDATALEN - 1);
		GUC_check_errhint("Set it to the schema that holds the application's orders table.");
		return false;
	}
	return true;
}

static char *
FullName(const char *name)
{
	return psprintf("release_expired_orders.%s", name);
}

/* Define every setting; called once, from _PG_init(). */
void
ReoDefineSettings(void)
{
	char	   *placeholder[N_SETTINGS];
	int			n = 0;

	for (int i = 0; i < (int) N_INT_SETTINGS; i++)
		SettingNames[n++] = MemoryContextStrdup(TopMemoryContext,
												FullName(IntSettings[i].name));
	SettingNames[n++] = "release_expired_orders.naive_time_zone";
	SettingNames[n++] = "release_expired_orders.app_schema";
	SettingNames[n++] = "release_expired_orders.write_notifications";

	/*
	 * The values set before the library was loaded.  An empty one is a
	 * placeholder nobody set: from 16 on, ALTER DATABASE or ALTER ROLE ...
	 * SET of a setting of a library not loaded yet leaves one, empty, in the
	 * session that ran it.
	 */
	for (int i = 0; i < (int) N_SETTINGS; i++)
	{
		const char *value = GetConfigOption(SettingNames[i], true, false);

		placeholder[i] = value && value[0] != '\0' ?
			MemoryContextStrdup(TopMemoryContext, value) : NULL;
	}

	for (int i = 0; i < (int) N_INT_SETTINGS; i++)
	{
		const IntSetting *s = &IntSettings[i];

		DefineCustomIntVariable(SettingNames[i], s->short_desc, s->long_desc,
								s->variable, s->boot, s->min, s->max,
								s->context, s->flags, NULL, IntHooks[i], NULL);
	}
	n = N_INT_SETTINGS;
	DefineCustomStringVariable(SettingNames[n], "Time zone of timestamp without time zone columns.",
							   "The application stores UTC wall-clock time.",
							   &reo_naive_time_zone, "UTC", PGC_USERSET, 0,
							   CheckNaiveTimeZone, StrHooks[n], NULL);
	n++;
	DefineCustomStringVariable(SettingNames[n], "Schema of the application's tables.", NULL,
							   &reo_app_schema, "public", PGC_USERSET, 0,
							   CheckAppSchema, StrHooks[n], NULL);
	n++;
	DefineCustomBoolVariable(SettingNames[n], "Write the application's system_audit notifications.",
							 "Only when the notifications table exists.",
							 &reo_write_notifications, true, PGC_USERSET, 0,
							 NULL, BoolHooks[n], NULL);

	/* MarkGUCPrefixReserved() replaced EmitWarningsOnPlaceholders() in 15. */
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("release_expired_orders");
#else
	EmitWarningsOnPlaceholders("release_expired_orders");
#endif

	/*
	 * Which placeholder values did PostgreSQL just reject with a warning?
	 * Checked as the bootstrap superuser: the postmaster, loading the library
	 * from shared_preload_libraries, has no user of its own, and only the
	 * value is checked, not who may set it.
	 */
	for (int i = 0; i < (int) N_SETTINGS; i++)
		if (placeholder[i] != NULL &&
#if PG_VERSION_NUM >= 150000
			set_config_option_ext(SettingNames[i], placeholder[i],
								  i < (int) N_INT_SETTINGS && IntSettings[i].context == PGC_SUSET ?
								  PGC_SUSET : PGC_USERSET,
								  PGC_S_SESSION, BOOTSTRAP_SUPERUSERID, GUC_ACTION_SET,
								  false, DEBUG5, false) == 0)
#else
			set_config_option(SettingNames[i], placeholder[i],
							  i < (int) N_INT_SETTINGS && IntSettings[i].context == PGC_SUSET ?
							  PGC_SUSET : PGC_USERSET,
							  PGC_S_SESSION, GUC_ACTION_SET, false, DEBUG5,
							  false) == 0)
#endif
			rejected[i] = placeholder[i];
	settings_defined = true;
}

/* Refuse to run on a default that stands in for a rejected value. */
void
ReoCheckSettings(void)
{
	for (int i = 0; i < (int) N_SETTINGS; i++)
		if (rejected[i] != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for parameter \"%s\": \"%s\"",
							SettingNames[i], rejected[i]),
					 errdetail("The value was set before the library was loaded, so PostgreSQL ignored it and kept the default."),
					 errhint("Set the parameter again with a valid value, or RESET it.")));
}

/*
 * Refuse an argument outside the range of the setting of the same name,
 * before anything is written.
 */
void
ReoCheckArgument(const char *name, int value)
{
	for (int i = 0; i < (int) N_INT_SETTINGS; i++)
	{
		const IntSetting *s = &IntSettings[i];

		if (strcmp(s->name, name) != 0)
			continue;
		if (value < s->min || value > s->max)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must be between %d and %d", name, s->min, s->max),
					 errdetail("The value given was %d.", value),
					 errhint("Pass NULL to use the setting release_expired_orders.%s.",
							 name)));
		return;
	}
	elog(ERROR, "unknown argument \"%s\"", name);
}

/*
 * The current value of release_expired_orders.NAME as text, integers in
 * their base unit; what SQL-side code reads instead of parsing settings.
 */
const char *
ReoSettingValue(const char *name)
{
	char	   *full = FullName(name);

	ReoCheckSettings();
	return GetConfigOption(full, false, false);
}
