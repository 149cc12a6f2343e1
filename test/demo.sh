#!/usr/bin/env bash
# The main job for real, on a throwaway cluster with pg_cron: the
# application's tables with demo data, CREATE EXTENSION (which schedules the
# job), one CALL, and what it changed; then payment windows and the deadline
# worker releasing an order at its deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
test/setup.sh
. test/lib.sh
prepare_workdir "$top"
cd "$WORK"
"${RUNAS[@]}" pg_virtualenv -o shared_preload_libraries=pg_cron,release_expired_orders \
	-o cron.database_name=postgres -o release_expired_orders.worker_database=shop \
	psql -X -v ON_ERROR_STOP=1 -d postgres -f test/demo.sql
