/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  The release_expired_orders.* settings.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_SETTINGS_H
#define REO_SETTINGS_H

#include "postgres.h"

extern int	reo_timeout_minutes;
extern int	reo_batch_limit;
extern int	reo_chunk_size;
extern int	reo_lock_timeout_ms;
extern int	reo_retry_backoff_s;
extern char *reo_naive_time_zone;
extern char *reo_app_schema;
extern bool reo_write_notifications;
extern int	reo_slow_run_ms;
extern int	reo_alert_after_min;
extern int	reo_history_retention_min;
extern int	reo_purge_limit;

extern void ReoDefineSettings(void);
extern void ReoCheckSettings(void);
extern void ReoCheckArgument(const char *name, int value);
extern const char *ReoSettingValue(const char *name);

#endif							/* REO_SETTINGS_H */
