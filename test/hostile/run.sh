#!/usr/bin/env bash
# Generator of hostile applications (see README.md next to this file).
#
#   test/hostile/run.sh --seeds N [--start S] [--jobs J]   a long run, with a table
#   test/hostile/run.sh --ci                               the fixed CI seeds (520)
#   test/hostile/run.sh --seed S                           one case, described, schema kept
#
# Runs against the cluster named by the PG* environment variables, as a
# superuser (pg_virtualenv's postgres will do).  Creates the databases
# reo_hostile_0.. and the roles reo_h_owner, reo_h_job.  --server-log FILE
# also counts "terminated by signal" in the server log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# Debian's python3, which has python3-psycopg2 (test/setup.sh installs it).
exec /usr/bin/python3 "$here/hostile.py" "$@"
