#!/usr/bin/env bash
# Runs the randomized invariant test (sql/security_fuzz.sql) for more seeds
# and rounds than the regression suite does, each in a fresh database, on
# the server the usual PG* environment variables point at (for example
# under pg_virtualenv), with the extension installed.
#   test/fuzz/run.sh [rounds [seed...]]     default: 30 rounds, 5 seeds
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-30}
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0.11 0.22 0.33 0.44 0.55)
status=0
for seed in "${seeds[@]}"; do
	db=reo_fuzz_$$
	createdb "$db"
	out=$(psql -X -q -d "$db" -v seed="$seed" -v rounds="$rounds" -f sql/security_fuzz.sql 2>&1)
	dropdb "$db"
	result=$(printf '%s\n' "$out" | awk '/checks_passed *[|] *checks_failed/ { getline; getline; p += $3; f += $5 } END { print p, f }')
	passed=${result% *}
	failed=${result#* }
	echo "seed $seed, $rounds rounds: ${passed:-?} checks passed, ${failed:-?} failed"
	if [ "${failed:-1}" != 0 ] || printf '%s\n' "$out" | grep -q 'ERROR'; then
		printf '%s\n' "$out"
		status=1
	fi
done
exit $status
