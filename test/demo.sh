#!/usr/bin/env bash
# The main job for real, on a throwaway cluster with pg_cron: the
# application's tables with demo data, CREATE EXTENSION (which schedules the
# job), one CALL, and what it changed.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
test/setup.sh
. test/lib.sh
prepare_workdir "$top"
cd "$WORK"
"${RUNAS[@]}" pg_virtualenv -o shared_preload_libraries=pg_cron -o cron.database_name=postgres \
	psql -X -v ON_ERROR_STOP=1 -d postgres -f test/demo.sql
