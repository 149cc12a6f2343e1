#!/usr/bin/env bash
# Runs every test suite on a throwaway cluster: pg_regress and isolation
# specs (make installcheck under pg_virtualenv), TAP tests, and the smoke
# runs of the soak and benchmark scripts (throughput and deadlines).  Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

test/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

# initdb refuses root: the suites run as postgres in a copy it can write.
. test/lib.sh
prepare_workdir "$top"
work=$WORK
runas=("${RUNAS[@]}")
cluster_opts=(-o shared_preload_libraries=pg_cron -o cron.database_name=contrib_regression)

passed=0
failed=0
count() {	# count <log>: pg_regress "... ok" / "... FAILED" lines
	local ok bad
	ok=$(grep -cE '\.\.\. ok' "$1")
	bad=$(grep -cE '\.\.\. (FAILED|failed)' "$1")
	passed=$((passed + ok)); failed=$((failed + bad))
}
suite() {	# suite <name> <command...>: one pass or fail for a whole script
	local name=$1; shift
	echo "=== $name"
	if (cd "$work" && "${runas[@]}" "$@"); then
		passed=$((passed + 1)); echo "ok - $name"
	else
		failed=$((failed + 1)); echo "not ok - $name"
	fi
}

echo "=== regression and isolation (make installcheck)"
log=$work/installcheck.log
(cd "$work" && "${runas[@]}" pg_virtualenv "${cluster_opts[@]}" \
	make installcheck PG_CONFIG="$PG_CONFIG") >"$log" 2>&1
rc=$?
cat "$log"
count "$log"
if [ $rc -ne 0 ]; then
	[ -f "$work/regression.diffs" ] && cat "$work/regression.diffs"
	[ -f "$work/output_iso/regression.diffs" ] && cat "$work/output_iso/regression.diffs"
	grep -qE '\.\.\. (FAILED|failed)' "$log" || failed=$((failed + 1))
fi

if ls "$work"/test/t/*.pl >/dev/null 2>&1; then
	echo "=== TAP (make tap)"
	log=$work/tap.log
	(cd "$work" && "${runas[@]}" make tap PG_CONFIG="$PG_CONFIG") >"$log" 2>&1
	rc=$?
	cat "$log"
	ok=$(grep -cE '^test/t/\S+ \.+ ok' "$log")
	bad=$(grep -cE '^test/t/\S+ \.+ (Dubious|Failed|not ok)' "$log")
	passed=$((passed + ok)); failed=$((failed + bad))
	[ $rc -ne 0 ] && [ "$bad" -eq 0 ] && failed=$((failed + 1))
	for f in "$work"/tmp_check/log/*; do :; done
fi

suite "source layout (no cycle between files)" python3 test/layout.py
suite "documentation claims: the worker is stopped with deadline_worker = off (test/doc_claims.py)" python3 test/doc_claims.py
suite "the direct upgrade from 1.0 is up to date (test/upgrade/direct.py)" python3 test/upgrade/direct.py --check
suite "deadline worker isolation specs (test/worker_iso.sh)" env PG_CONFIG="$PG_CONFIG" test/worker_iso.sh

if [ -x "$work/test/soak/run.sh" ]; then
	suite "invariant soak (smoke)" pg_virtualenv "${cluster_opts[@]}" test/soak/run.sh --smoke
fi
if [ -x "$work/test/hostile/run.sh" ]; then
	suite "hostile applications (test/hostile, CI seeds)" pg_virtualenv "${cluster_opts[@]}" test/hostile/run.sh --ci
fi
if [ -x "$work/test/bench/run.sh" ]; then
	# the worker (registered for any database, pointed at its own by the
	# script) and pg_stat_statements for the nothing-to-do rows
	suite "benchmark (smoke)" pg_virtualenv \
		-o shared_preload_libraries=pg_cron,release_expired_orders,pg_stat_statements \
		-o release_expired_orders.worker_database=postgres -o cron.database_name=contrib_regression \
		test/bench/run.sh --smoke
fi
if [ -x "$work/test/bench/deadline.sh" ]; then
	# the launcher serves every database with the extension (5 at once in
	# the smoke run; the full run needs max_workers 50)
	suite "deadline benchmark (smoke)" pg_virtualenv -o shared_preload_libraries=pg_cron,release_expired_orders \
		-o release_expired_orders.max_workers=8 -o max_worker_processes=16 -o cron.database_name=reo_cron \
		-o cron.use_background_workers=on test/bench/deadline.sh --smoke
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
