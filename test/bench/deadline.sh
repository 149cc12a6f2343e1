#!/usr/bin/env bash
# Deadline benchmark: how late after its deadline each order is
# released, by the deadline worker, by pg_cron every minute, and by pg_cron
# every 10 minutes; orders released early (must be 0); the worker's idle
# cost per minute beside one idle CALL.
#
#   pg_virtualenv -o shared_preload_libraries=pg_cron,release_expired_orders \
#     -o release_expired_orders.worker_database=reo_worker \
#     -o cron.database_name=reo_cron -o cron.use_background_workers=on \
#     test/bench/deadline.sh [--orders N] [--spread S] [--smoke] [--out DIR]
#
# Runs as a superuser (user postgres) against the cluster of the PG*
# variables.  Two databases: the worker serves reo_worker, pg_cron
# reo_cron, so that each scheduler is measured alone.  Orders are placed
# for real, one transaction each, spread evenly over --spread seconds
# (default 60), with a 1-minute payment window for their type, so their
# deadlines are spread over a minute too.  Lag is the end of the run that
# released an order (its row's ended_at, after its last commit) minus the
# order's deadline; "early" counts releases whose transaction started
# before the deadline.  pg_cron every 10 minutes is measured with a
# simulated tick: orders placed so that their deadlines fall evenly over
# one 10-minute cycle before one CALL, as the tick would find them.
#
#   --orders N   orders per scheduler (default 600)
#   --smoke      60 orders over 10 s, no pg_cron-every-minute run, a 10 s
#                idle measurement; for CI (< 1 min)
#   --out DIR    where deadline.md and deadline.png go (default: here;
#                smoke: out/smoke)
#
# Exits non-zero when an order was released early, or not at all.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fixture=$here/../fixtures/app_schema.sql
orders=600
spread=60
idle_s=60
smoke=0
outdir=""
while [ $# -gt 0 ]; do
	case "$1" in
		--orders) orders=$2; shift 2 ;;
		--spread) spread=$2; shift 2 ;;
		--smoke) smoke=1; shift ;;
		--out) outdir=$2; shift 2 ;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) echo "deadline.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
if [ $smoke = 1 ]; then
	orders=60; spread=10; idle_s=10
fi
if [ -z "$outdir" ]; then
	if [ $smoke = 1 ]; then outdir=$here/out/smoke; else outdir=$here; fi
fi
mkdir -p "$outdir" 2>/dev/null && [ -w "$outdir" ] || outdir=$(mktemp -d /tmp/reo-deadline.XXXXXX)
failures=0

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
psql_() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
val() { psql_ -At "$@"; }

[ "$(val -d postgres -c "SELECT current_setting('release_expired_orders.worker_database', true)")" = reo_worker ] \
	|| { echo "deadline.sh: start the cluster with release_expired_orders.worker_database=reo_worker (see --help)"; exit 1; }

# A database with the application's tables, 50,000 paid orders, the index
# health() recommends with windows, and a 1-minute window for recharges.
setup_db() {
	psql_ -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
	psql_ -d "$1" -f "$fixture"
	psql_ -d "$1" <<-'SQL'
		SET client_min_messages = error;
		CREATE EXTENSION release_expired_orders;
		INSERT INTO orders (id, order_number, user_id, type, total_amount, payment_status,
							fulfillment_status, created_at)
		SELECT gen_random_uuid(), 'PAID-' || i, gen_random_uuid(),
			   (ARRAY['lottery_win', 'direct_buy', 'recharge', 'resale'])[1 + i % 4], 10,
			   'paid', 'completed', (now() AT TIME ZONE 'UTC') - i * interval '3 seconds'
		  FROM generate_series(1, 50000) i;
		CREATE INDEX orders_release_candidates_idx ON orders (type, created_at, id)
			WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
		INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 1);
		ANALYZE;
	SQL
}

# place <db> <n> <seconds>: n recharge orders, one transaction each, evenly
# over the seconds, created_at the real time of each.
place() {
	psql_ -d "$1" -c "DO \$\$
		BEGIN
			FOR i IN 1..$2 LOOP
				INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
				VALUES (gen_random_uuid(), 'R-' || i, gen_random_uuid(), 'recharge', 10,
						clock_timestamp() AT TIME ZONE 'UTC');
				COMMIT;
				PERFORM pg_sleep($3::float8 / $2);
			END LOOP;
		END \$\$"
}

# wait_released <db> <seconds>: until no recharge order is pending
wait_released() {
	local left
	for _ in $(seq 1 "$2"); do
		left=$(val -d "$1" -c "SELECT count(*) FROM orders WHERE type = 'recharge' AND status = 'pending' AND payment_status = 'pending'")
		[ "$left" = 0 ] && return 0
		sleep 1
	done
	fail "$1: $left orders still pending after $2 s"
}

# lag <db> <label>: one Markdown row, p50/p99/max lag in ms, early, count
lag() {
	val -d "$1" -F ' | ' -c "
		WITH r AS (
			SELECT pg_catalog.date_part('epoch', run.ended_at - d.deadline) * 1000 AS lag_ms,
				   e.created_at < d.deadline AS early
			  FROM orders o
			  JOIN release_expired_orders.order_events e ON e.order_id = o.id AND e.outcome = 'released'
			  JOIN release_expired_orders.runs run ON run.id = e.run_id
			 CROSS JOIN LATERAL (SELECT (o.created_at AT TIME ZONE 'UTC') + interval '1 minute' AS deadline) d
			 WHERE o.type = 'recharge')
		SELECT '$2', count(*),
			   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms)::numeric, 1),
			   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms)::numeric, 1),
			   round(max(lag_ms)::numeric, 1), count(*) FILTER (WHERE early)
		  FROM r"
}

# lags <db> <label>: every lag in ms, for the chart
lags() {
	val -d "$1" -c "
		SELECT '$2', pg_catalog.date_part('epoch', run.ended_at
				   - ((o.created_at AT TIME ZONE 'UTC') + interval '1 minute')) * 1000
		  FROM orders o
		  JOIN release_expired_orders.order_events e ON e.order_id = o.id AND e.outcome = 'released'
		  JOIN release_expired_orders.runs run ON run.id = e.run_id
		 WHERE o.type = 'recharge' ORDER BY 2" | tr '|' ' '
}

# CPU time of a process in ms (schedstat: nanoseconds on a CPU)
cpu_ms() { awk '{printf "%.3f", $1 / 1000000}' "/proc/$1/schedstat"; }

log "cluster: $(val -d postgres -c 'SELECT version()')"
setup_db reo_worker
setup_db reo_cron
psql_ -d reo_cron -c "CREATE EXTENSION IF NOT EXISTS pg_cron"
rows=()

#----------------------------------------------------------------------------
# The worker
#----------------------------------------------------------------------------
log "worker: waiting for it to serve reo_worker"
pid=""
for _ in $(seq 1 60); do
	pid=$(val -d reo_worker -c "SELECT pid FROM release_expired_orders.worker_status() WHERE pid IS NOT NULL" || true)
	[ -n "$pid" ] && break
	sleep 1
done
[ -n "$pid" ] || { fail "the worker did not start"; exit 1; }
log "worker: pid $pid; placing $orders orders over $spread s"
place reo_worker "$orders" "$spread"
wait_released reo_worker 120
rows+=("$(lag reo_worker 'deadline worker')")
lags reo_worker worker >"$outdir/deadline-lags.txt"

# Idle: nothing pending; the worker wakes once per shortest window.  Its
# CPU time from /proc (schedstat: ns), and its wakes (last_wake changes,
# sampled every second).  Buffers are not compared: a background worker's
# buffer statistics reach pg_stat_database whenever it flushes them.
log "worker: idle for $idle_s s"
c0=$(cpu_ms "$pid"); wakes=0
last=$(val -d reo_worker -c "SELECT last_wake FROM release_expired_orders.worker_status()")
for _ in $(seq 1 "$idle_s"); do
	sleep 1
	w=$(val -d reo_worker -c "SELECT last_wake FROM release_expired_orders.worker_status()")
	[ "$w" != "$last" ] && wakes=$((wakes + 1)); last=$w
done
c1=$(cpu_ms "$pid")
worker_idle_cpu=$(awk -v a="$c0" -v b="$c1" -v s="$idle_s" 'BEGIN {printf "%.2f", (b - a) * 60 / s}')
worker_idle_wakes=$(awk -v w="$wakes" -v s="$idle_s" 'BEGIN {printf "%.1f", w * 60 / s}')

# One idle CALL, warm, for comparison: its backend's CPU time and the wall
# time, averaged over 100.
call_cpu=$( { echo '\o /dev/null'; echo 'CALL release_expired_orders();'
	echo 'SELECT pg_backend_pid() AS pid \gset'
	echo '\setenv REO_PID :pid'
	echo "\\! awk '{print \$1}' /proc/\$REO_PID/schedstat"
	for _ in $(seq 1 100); do echo 'CALL release_expired_orders();'; done
	echo "\\! awk '{print \$1}' /proc/\$REO_PID/schedstat"; } |
	psql -X -q -At -d reo_cron | awk 'NR == 1 {a = $1} NR == 2 {printf "%.2f", ($1 - a) / 100 / 1000000}')
call_ms=$( { echo '\timing on'; echo 'CALL release_expired_orders();'
	for _ in $(seq 1 100); do echo 'CALL release_expired_orders();'; done; } |
	psql -X -q -d reo_cron 2>&1 | grep -oE '^Time: [0-9.]+' | tail -n +2 | awk '{s += $2} END {printf "%.2f", s / NR}')

#----------------------------------------------------------------------------
# pg_cron every minute
#----------------------------------------------------------------------------
if [ $smoke = 0 ]; then
	psql_ -d reo_cron -c "DELETE FROM release_expired_orders.runs" -c "DELETE FROM orders WHERE type = 'recharge' AND payment_status <> 'paid'" >/dev/null
	psql_ -d reo_cron -c "SELECT cron.schedule('reo-every-minute', '* * * * *', 'CALL public.release_expired_orders(NULL, 100000)')" >/dev/null
	log "pg_cron every minute: placing $orders orders over $spread s"
	place reo_cron "$orders" "$spread"
	wait_released reo_cron 150
	psql_ -d reo_cron -c "SELECT cron.unschedule('reo-every-minute')" >/dev/null
	rows+=("$(lag reo_cron 'pg_cron every minute')")
	lags reo_cron cron1 >>"$outdir/deadline-lags.txt"
fi

#----------------------------------------------------------------------------
# pg_cron every 10 minutes, the tick simulated
#----------------------------------------------------------------------------
log "pg_cron every 10 minutes: deadlines over one cycle, one CALL at the tick"
psql_ -d reo_cron -c "DELETE FROM orders WHERE type = 'recharge' AND payment_status <> 'paid'" >/dev/null
psql_ -d reo_cron -c "INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
	SELECT gen_random_uuid(), 'T-' || i, gen_random_uuid(), 'recharge', 10,
		   (now() AT TIME ZONE 'UTC') - interval '1 minute' - (i - 0.5) * interval '600 seconds' / $orders
	  FROM generate_series(1, $orders) i" -c "CALL release_expired_orders(NULL, 100000)" >/dev/null
wait_released reo_cron 5
rows+=("$(lag reo_cron 'pg_cron every 10 minutes (simulated tick)')")
lags reo_cron cron10 >>"$outdir/deadline-lags.txt"

#----------------------------------------------------------------------------
# Results
#----------------------------------------------------------------------------
for r in "${rows[@]}"; do
	early=$(echo "$r" | awk -F' [|] ' '{print $6}')
	n=$(echo "$r" | awk -F' [|] ' '{print $2}')
	[ "$early" = 0 ] || fail "released early: $r"
	[ "$n" -gt 0 ] || fail "nothing released: $r"
done
{
	echo "# Deadline benchmark"
	echo
	echo "\`test/bench/deadline.sh$([ $smoke = 1 ] && echo ' --smoke') --orders $orders\`, $(date -u +%Y-%m-%d),"
	echo "$(val -d postgres -c 'SELECT version()' | cut -d, -f1), $(nproc) CPUs."
	echo "Orders placed one per transaction over $spread s with a 1-minute window; lag = the end"
	echo "of the run that released the order minus its deadline."
	echo
	echo "| scheduler | orders | lag p50 ms | lag p99 ms | lag max ms | released early |"
	echo "|---|---:|---:|---:|---:|---:|"
	for r in "${rows[@]}"; do echo "| $r |"; done
	echo
	echo "| idle cost | CPU ms | wall ms | wakes |"
	echo "|---|---:|---:|---:|"
	echo "| the worker, per minute with nothing due (shortest window 1 min) | $worker_idle_cpu | | $worker_idle_wakes |"
	echo "| one warm CALL that finds nothing | $call_cpu | $call_ms | |"
} >"$outdir/deadline.md"
cat "$outdir/deadline.md"

if command -v gnuplot >/dev/null; then
	gnuplot <<-EOF
		set terminal pngcairo size 900,420 font ",10" noenhanced
		set output "$outdir/deadline.png"
		set title "Release lag after the deadline (one point per order; log scale)"
		set ylabel "lag, ms"
		set logscale y
		set xtics ("deadline worker" 0, "pg_cron every minute" 1, "pg_cron every 10 minutes" 2)
		set xrange [-0.5:2.5]
		set key off
		set grid ytics
		plot "< awk '\$1 == \"worker\" {print 0 + (rand() - 0.5) * 0.4, (\$2 < 1 ? 1 : \$2)}' $outdir/deadline-lags.txt" with points pt 7 ps 0.4, \
		     "< awk '\$1 == \"cron1\" {print 1 + (rand() - 0.5) * 0.4, \$2}' $outdir/deadline-lags.txt" with points pt 7 ps 0.4, \
		     "< awk '\$1 == \"cron10\" {print 2 + (rand() - 0.5) * 0.4, \$2}' $outdir/deadline-lags.txt" with points pt 7 ps 0.4
	EOF
	log "wrote $outdir/deadline.md and deadline.png"
else
	log "wrote $outdir/deadline.md (no gnuplot: no chart)"
fi
[ $failures = 0 ]
