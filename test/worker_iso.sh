#!/usr/bin/env bash
# The isolation specs of test/worker_specs (expected output in
# test/worker_expected), each against a temporary instance whose deadline
# worker serves the specs' database, worker_iso; the normal suite (make
# installcheck) runs without a worker.  Run as a user that may run initdb,
# after make install.  With REO_SERVER_LOGS=<dir>, the instance's server log
# is copied there (test/cassert.sh scans it for failed assertions).
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-pg_config}
regress=$(dirname "$($PG_CONFIG --pgxs)")/../test/isolation/pg_isolation_regress
out=$(mktemp -d "${TMPDIR:-/tmp}/worker_iso.XXXXXX")
mkdir "$out/input"
ln -s "$PWD/test/worker_specs" "$out/input/specs"
ln -s "$PWD/test/worker_expected" "$out/input/expected"
cat >"$out/worker.conf" <<CONF
shared_preload_libraries = 'release_expired_orders'
release_expired_orders.worker_database = 'worker_iso'
CONF
specs=$(cd test/worker_specs && ls -- *.spec | sed 's/\.spec$//')
# shellcheck disable=SC2086
if "$regress" --temp-instance="$out/instance" --temp-config="$out/worker.conf" \
	--bindir="$($PG_CONFIG --bindir)" --inputdir="$out/input" --outputdir="$out" \
	--dbname=worker_iso $specs; then
	ok=1
else
	ok=0
fi
if [ -n "${REO_SERVER_LOGS:-}" ]; then
	cp "$out"/log/*.log "$REO_SERVER_LOGS"/ 2>/dev/null || true
fi
if [ $ok = 1 ]; then
	rm -rf "$out"
else
	cat "$out/regression.diffs" 2>/dev/null || true
	echo "worker_iso: output kept in $out"
	exit 1
fi
