#!/usr/bin/env bash
# Deadline benchmark: how late after its deadline each order is released,
# in one run: by the deadline worker, by pg_cron every minute and every 10
# minutes; orders that become visible close to or past their deadline, with
# the wake trigger, with the 1 s poll, with neither; what each design costs
# (an insert with the trigger, the worker's idle CPU with and without the
# poll); 50 databases served at once (lag, idle CPU, memory per worker); a
# burst of 100,000 orders sharing one deadline against the set-based floor;
# an order falling due behind 150 held by a payment.
#
#   pg_virtualenv -o shared_preload_libraries=pg_cron,release_expired_orders \
#     -o release_expired_orders.max_workers=50 -o max_worker_processes=64 \
#     -o cron.database_name=reo_cron -o cron.use_background_workers=on \
#     test/bench/deadline.sh [--smoke] [--out DIR]
#
# The cluster: release_expired_orders.worker_database empty (the worker
# serves every database with the extension), max_workers at least
# --databases (50), and max_worker_processes at least max_workers + 3 (the
# launcher, pg_cron's launcher and its job): both are read at server start,
# hence the -o options.  Runs as a superuser (user postgres) against the
# cluster of the PG* variables; about 8 minutes on 2 CPUs (smoke: < 2).
#
# Databases.  reo_worker and reo_cron: the application's tables with 50,000
# paid orders and a 1-minute window for recharges; the worker is off in
# reo_cron (deadline_worker = off), so each scheduler is measured alone.
# The other databases are copies of a small template (the same tables and
# window, no paid orders), made for one measurement and dropped after it,
# so that at most --databases workers run at once.  Lag is the end of the
# run that released an order (its row's ended_at, after its last commit)
# minus the later of the order's deadline and the moment the order became
# visible (clock_timestamp() just before its commit); "early" counts
# releases whose transaction started before the deadline.
#
#  1. The worker: --orders (600) orders, one per transaction over 60 s, each
#     placed at now(), so their deadlines are spread over a minute.
#     pg_cron every minute: the same, in reo_cron (run at the same time as
#     the late arrivals, in the background: its lag is the tick's).
#     pg_cron every 10 minutes: a simulated tick (deadlines spread over one
#     cycle, then one CALL).
#  2. Late arrivals: orders committed 2 s after to 10 s before their
#     deadline (created_at set back), one per transaction every 0.5 s:
#     (a) the wake trigger, poll off; (b) the poll at 1 s, no trigger;
#     (c) neither, a few orders, waited for at most 70 s (they wait up to
#     the shortest window, 1 minute, from the worker's last look).
#  3. Cost: 20,000 single-row INSERTs into the orders table, with and
#     without the wake trigger, in one session: each its own transaction
#     from psql (synchronous_commit off), and all in one PL/pgSQL loop
#     (median of 5, alternating; after pg_cron every minute has ended,
#     away from its ticks).  Idle CPU of the worker per minute per
#     database, poll 1 s (over 30 s) and poll off (over 65 s: one wake per
#     shortest window), from /proc/<pid>/schedstat (ns on a CPU), over the
#     --databases workers at once.
#  4. --databases (50) databases, each with one order falling due every
#     second for 60 s (deadlines spread at random within each second, all
#     placed beforehand): each database's p99 lag, min/median/max over the
#     databases; then idle CPU (above); memory per worker (Pss and
#     Pss_Anon from /proc/<pid>/smaps_rollup, RssAnon from status).
#  5. Burst: --burst (100,000) orders (with stock to give back) sharing
#     one deadline; drain time = the last one's lag; beside the floor of
#     test/bench/run.sh (sql/floor_prepare.sql) draining the same orders in
#     statements of chunk_size (1000), each committed, and of 100 (the
#     worker's runs at the default batch_limit 100).
#  6. Held: 150 orders that fall due while a payment holds them (FOR
#     UPDATE, another session), then 5 that fall due after: their lag.
#
#   --orders N     orders for the worker and pg_cron (default 600)
#   --databases N  databases served at once (default 50)
#   --burst N      orders sharing one deadline (default 100000)
#   --smoke        60 orders over 10 s, no pg_cron every minute, 10 late
#                  orders per case, 5 databases for 10 s, a 10,000-order
#                  burst, 4 s idle measurements; for CI (< 2 min); the
#                  options above, when given, still apply
#   --out DIR      where deadline.md and deadline.png go (default: here;
#                  smoke: out/smoke)
#
# Exits non-zero when an order was released early, or not at all (but in
# case (c), which is capped).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fixture=$here/../fixtures/app_schema.sql
orders=600
spread=60
idle_s=30
idle_off_s=65	# a shortest window (1 min) and a little: the worker wakes once in it
ndb=50
db_s=60
burst=100000
late_n=40
late_gap=0.5
late_c_n=5
late_c_cap=70
ins_n=20000
bw_cap=30
smoke=0
outdir=""
while [ $# -gt 0 ]; do
	case "$1" in
		--orders) orders_opt=$2; shift 2 ;;
		--spread) spread_opt=$2; shift 2 ;;
		--databases) ndb_opt=$2; shift 2 ;;
		--burst) burst_opt=$2; shift 2 ;;
		--smoke) smoke=1; shift ;;
		--out) outdir=$2; shift 2 ;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) echo "deadline.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
if [ $smoke = 1 ]; then
	orders=60; spread=10; ndb=5; burst=10000
	late_n=10; late_gap=0.3; late_c_n=3; late_c_cap=8; ins_n=2000; bw_cap=30; db_s=10; idle_s=4; idle_off_s=4
fi
orders=${orders_opt:-$orders}; spread=${spread_opt:-$spread}; ndb=${ndb_opt:-$ndb}; burst=${burst_opt:-$burst}
if [ -z "$outdir" ]; then
	if [ $smoke = 1 ]; then outdir=$here/out/smoke; else outdir=$here; fi
fi
mkdir -p "$outdir" 2>/dev/null && [ -w "$outdir" ] || outdir=$(mktemp -d /tmp/reo-deadline.XXXXXX)
scratch=$(mktemp -d /tmp/reo-deadline-scratch.XXXXXX)
failures=0

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
psql_() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
val() { psql_ -At "$@"; }
now_s() { date +%s.%N; }
ms_since() { echo "$1 $(now_s)" | awk '{printf "%.1f", ($2 - $1) * 1000}'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
setting() { val -d postgres -c "SELECT current_setting('$1', true)"; }
set_poll() {	# set_poll <ms|default>: server-wide, then let every worker see it
	if [ "$1" = default ]; then
		psql_ -d postgres -c "ALTER SYSTEM RESET release_expired_orders.worker_poll_interval" -c "SELECT pg_reload_conf()" >/dev/null
	else
		psql_ -d postgres -c "ALTER SYSTEM SET release_expired_orders.worker_poll_interval = $1" -c "SELECT pg_reload_conf()" >/dev/null
	fi
	sleep 2
}

[ -z "$(setting release_expired_orders.worker_database)" ] \
	|| { echo "deadline.sh: start the cluster with release_expired_orders.worker_database empty (see --help)"; exit 1; }
[ "$(setting release_expired_orders.max_workers)" -ge "$ndb" ] && [ "$(setting max_worker_processes)" -ge $((ndb + 3)) ] \
	|| { echo "deadline.sh: start the cluster with release_expired_orders.max_workers >= $ndb and max_worker_processes >= $((ndb + 3)) (see --help)"; exit 1; }

cleanup() {
	jobs -p | xargs -r kill 2>/dev/null || true
	psql_ -d postgres -c "ALTER SYSTEM RESET release_expired_orders.worker_poll_interval" -c "SELECT pg_reload_conf()" >/dev/null 2>&1 || true
	rm -rf "$scratch"
}
trap cleanup EXIT

# The tables the lags need, in a database that has the extension.
bench_tables() {
	psql_ -d "$1" <<-'SQL'
		CREATE TABLE bench_visible (order_number text PRIMARY KEY, visible_at timestamptz NOT NULL);
		INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 1);
	SQL
}

# A database with the application's tables, 50,000 paid orders, the index
# health() recommends with windows, and a 1-minute window for recharges;
# setup_db <db> [off]: off, the worker does not serve it.
# reo_cron, when it exists, is emptied rather than dropped: dropping it
# would stop pg_cron's launcher until the server restarts.
setup_db() {
	if [ "$1" = reo_cron ] && [ "$(val -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = 'reo_cron'")" = 1 ]; then
		psql_ -d postgres -c "ALTER DATABASE $1 SET release_expired_orders.deadline_worker = off"
		psql_ -d reo_cron -c "SET client_min_messages = error" \
			-c "DO \$\$ BEGIN IF to_regclass('cron.job') IS NOT NULL THEN PERFORM cron.unschedule(jobid) FROM cron.job; END IF; END \$\$" \
			-c "DROP EXTENSION IF EXISTS release_expired_orders CASCADE" \
			-c "DROP SCHEMA public CASCADE" -c "CREATE SCHEMA public" >/dev/null
	else
		psql_ -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
		[ "${2:-}" = off ] && psql_ -d postgres -c "ALTER DATABASE $1 SET release_expired_orders.deadline_worker = off"
	fi
	psql_ -d "$1" -f "$fixture"
	psql_ -d "$1" -c "SET client_min_messages = error" -c "CREATE EXTENSION release_expired_orders"
	bench_tables "$1"
	psql_ -d "$1" <<-'SQL'
		INSERT INTO orders (id, order_number, user_id, type, total_amount, payment_status,
							fulfillment_status, created_at)
		SELECT gen_random_uuid(), 'PAID-' || i, gen_random_uuid(),
			   (ARRAY['lottery_win', 'direct_buy', 'recharge', 'resale'])[1 + i % 4], 10,
			   'paid', 'completed', (now() AT TIME ZONE 'UTC') - i * interval '3 seconds'
		  FROM generate_series(1, 50000) i;
		CREATE INDEX orders_release_candidates_idx ON orders (type, created_at, id)
			WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
		ANALYZE;
	SQL
}

# The small template: the tables, the index, the window, 100 products; no
# connections allowed (so no worker), copied by CREATE DATABASE.
setup_template() {
	psql_ -d postgres -c "DROP DATABASE IF EXISTS reo_tmpl" -c "CREATE DATABASE reo_tmpl" \
		-c "ALTER DATABASE reo_tmpl SET release_expired_orders.deadline_worker = off"
	psql_ -d reo_tmpl -f "$fixture"
	psql_ -d reo_tmpl -c "SET client_min_messages = error" -c "CREATE EXTENSION release_expired_orders"
	bench_tables reo_tmpl
	psql_ -d reo_tmpl <<-'SQL'
		CREATE INDEX orders_release_candidates_idx ON orders (type, created_at, id)
			WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
		INSERT INTO products (id, name, stock)
		SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'p' || i, 0
		  FROM generate_series(1, 100) i;
		ANALYZE;
	SQL
	psql_ -d postgres -c "ALTER DATABASE reo_tmpl WITH ALLOW_CONNECTIONS false"
	psql_ -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'reo_tmpl'" >/dev/null
	for _ in $(seq 1 50); do
		[ "$(val -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'reo_tmpl'")" = 0 ] && break
		sleep 0.2
	done
}
# copy_db <db> [off]: a copy of the template; off: the worker does not serve it
copy_db() {
	psql_ -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1 TEMPLATE reo_tmpl"
	if [ "${2:-}" = off ]; then
		psql_ -d postgres -c "ALTER DATABASE $1 SET release_expired_orders.deadline_worker = off"
		wait_no_worker "$1"
	fi
}
drop_db() { psql_ -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; }

# worker_pid <db>: the pid of the worker serving db, once one does
worker_pid() {
	local pid=""
	for _ in $(seq 1 120); do
		pid=$(val -d "$1" -c "SELECT w.pid FROM release_expired_orders.worker_status() w
			JOIN pg_stat_activity a ON a.pid = w.pid
			WHERE a.backend_type = 'release_expired_orders worker' AND a.datname = current_database()" || true)
		[ -n "$pid" ] && { echo "$pid"; return 0; }
		sleep 0.5
	done
	fail "no worker serves $1"; return 1
}
wait_no_worker() {
	for _ in $(seq 1 100); do
		[ "$(val -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'release_expired_orders worker' AND datname = '$1'")" = 0 ] && return 0
		sleep 0.2
	done
	fail "a worker still serves $1"
}

# place <db> <n> <seconds> [prefix]: n recharge orders, one transaction
# each, evenly over the seconds, created_at the real time of each.
place() {
	psql_ -d "$1" -c "DO \$\$
		BEGIN
			FOR i IN 1..$2 LOOP
				INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
				VALUES (gen_random_uuid(), '${4:-R-}' || i, gen_random_uuid(), 'recharge', 10,
						clock_timestamp() AT TIME ZONE 'UTC');
				COMMIT;
				PERFORM pg_sleep($3::float8 / $2);
			END LOOP;
		END \$\$"
}

# place_late <db> <n> <gap s> <prefix>: n recharge orders, one transaction
# each, every gap seconds, each committed between 2 s after and 10 s
# before its deadline; the moment it became visible in bench_visible.
place_late() {
	psql_ -d "$1" -c "DO \$\$
		BEGIN
			FOR i IN 1..$2 LOOP
				INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
				VALUES (gen_random_uuid(), '$4' || i, gen_random_uuid(), 'recharge', 10,
						(clock_timestamp() AT TIME ZONE 'UTC') - interval '60 seconds'
							+ (-2 + 12 * random()) * interval '1 second');
				INSERT INTO bench_visible VALUES ('$4' || i, clock_timestamp());
				COMMIT;
				PERFORM pg_sleep($3);
			END LOOP;
		END \$\$"
}

# wait_released <db> <seconds> [prefix] [quiet]: until no such order is pending
wait_released() {
	local left t_end
	t_end=$(( $(date +%s) + $2 ))
	while :; do
		left=$(val -d "$1" -c "SELECT count(*) FROM orders WHERE order_number LIKE '${3:-}%' AND status = 'pending' AND payment_status = 'pending'")
		[ "$left" = 0 ] && return 0
		[ "$(date +%s)" -ge "$t_end" ] && break
		sleep 0.5
	done
	[ "${4:-}" = quiet ] || fail "$1: $left orders still pending after $2 s"
}

# The lags of the orders of db whose number starts with prefix, in ms: the
# end of the run that released the order minus the later of its deadline
# and the moment it became visible; an order not released: now, so a floor.
lag_sql() {
	echo "
		WITH r AS (
			SELECT o.order_number,
				   pg_catalog.date_part('epoch', coalesce(run.ended_at, clock_timestamp())
					   - greatest(d.deadline, coalesce(v.visible_at, '-infinity'))) * 1000 AS lag_ms,
				   e.created_at < d.deadline AS early, run.ended_at IS NULL AS pending
			  FROM orders o
			 CROSS JOIN LATERAL (SELECT (o.created_at AT TIME ZONE 'UTC') + interval '1 minute' AS deadline) d
			  LEFT JOIN bench_visible v ON v.order_number = o.order_number
			  LEFT JOIN release_expired_orders.order_events e ON e.order_id = o.id AND e.outcome = 'released'
			  LEFT JOIN release_expired_orders.runs run ON run.id = e.run_id
			 WHERE o.order_number LIKE '$1%' AND o.payment_status <> 'paid')"
}
# lag <db> <prefix> <label>: label | orders | p50 | p99 | max | early | not released
lag() {
	val -d "$1" -F ' | ' -c "$(lag_sql "$2")
		SELECT '$3', count(*),
			   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms)::numeric, 1),
			   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms)::numeric, 1),
			   round(max(lag_ms)::numeric, 1), count(*) FILTER (WHERE early), count(*) FILTER (WHERE pending)
		  FROM r"
}
# lags <db> <prefix> <tag>: every lag in ms, for the chart
lags() { val -d "$1" -F ' ' -c "$(lag_sql "$2") SELECT '$3', lag_ms FROM r ORDER BY 2" >>"$scratch/lags.txt"; }

# CPU time of a process in ms (schedstat: nanoseconds on a CPU)
cpu_ms() { awk '{printf "%.3f", $1 / 1000000}' "/proc/$1/schedstat"; }
cpu_sum_ms() { local s=0; for p in "$@"; do s=$(awk -v a="$s" -v b="$(cpu_ms "$p")" 'BEGIN {printf "%.3f", a + b}'); done; echo "$s"; }

log "cluster: $(val -d postgres -c 'SELECT version()')"
set_poll default
for d in $(val -d postgres -c "SELECT datname FROM pg_database WHERE datname ~ '^reo_(m[0-9]+|late_.|ins|burst|floor|held|tmpl)$'"); do
	psql_ -d postgres -c "ALTER DATABASE $d WITH ALLOW_CONNECTIONS true" -c "DROP DATABASE $d"
done
setup_db reo_worker
setup_db reo_cron off
psql_ -d reo_cron -c "CREATE EXTENSION IF NOT EXISTS pg_cron"
setup_template
: >"$scratch/lags.txt"

#----------------------------------------------------------------------------
# 1. The worker
#----------------------------------------------------------------------------
main_place() {
pid=$(worker_pid reo_worker) || exit 1
log "worker: pid $pid; placing $orders orders over $spread s"
place reo_worker "$orders" "$spread"
}
main_collect() {
log "worker: waiting for the last deadlines"
wait_released reo_worker 120 R-
rows=("$(lag reo_worker R- 'deadline worker')" "${rows[@]}")
lags reo_worker R- worker
psql_ -d postgres -c "ALTER DATABASE reo_worker SET release_expired_orders.deadline_worker = off"
}

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

# pg_cron every minute, in the background while the rest runs.
cron1_pid=""
cron1_start() {
if [ $smoke = 0 ]; then
	psql_ -d reo_cron -c "SELECT cron.schedule('reo-every-minute', '* * * * *', 'CALL public.release_expired_orders(NULL, 100000)')" >/dev/null
	log "pg_cron every minute: placing $orders orders over $spread s (in the background)"
	( place reo_cron "$orders" "$spread"
	  wait_released reo_cron 150 R-
	  psql_ -d reo_cron -c "SELECT cron.unschedule('reo-every-minute')" >/dev/null
	  lag reo_cron R- 'pg_cron every minute' >"$scratch/cron1.row"
	  lags reo_cron R- cron1 ) &
	cron1_pid=$!
fi
}

#----------------------------------------------------------------------------
# 2. Late arrivals, and 3. the cost of an insert with the wake trigger
#----------------------------------------------------------------------------
late_ac() {
log "late arrivals, poll off: (a) the wake trigger, (c) neither"
set_poll 0
copy_db reo_late_a; copy_db reo_late_c; copy_db reo_ins
psql_ -d reo_late_a -c "SELECT release_expired_orders.add_wake_trigger()" >/dev/null
worker_pid reo_late_a >/dev/null; worker_pid reo_late_c >/dev/null; worker_pid reo_ins >/dev/null
sleep 2
place_late reo_late_c "$late_c_n" 1 L- &
late_c_place=$!
place_late reo_late_a "$late_n" "$late_gap" L-
wait "$late_c_place"
late_c_t0=$(date +%s)
wait_released reo_late_a 10 L-
late_rows=("$(lag reo_late_a L- '(a) the wake trigger, poll off')")
lags reo_late_a L- late_a
drop_db reo_late_a
}

insert_cost() {
# Insert cost: N single-row INSERTs, with and without the trigger,
# alternating, median of 5; the orders are not due (30-minute timeout).
log "insert cost: $ins_n single-row INSERTs, with and without the wake trigger"
ins_sql=$scratch/ins.sql
{ echo 'SET synchronous_commit = off;'
  for ((i = 1; i <= ins_n; i++)); do
	echo "INSERT INTO orders (id, order_number, user_id, type, total_amount) VALUES (gen_random_uuid(), 'I$i', gen_random_uuid(), 'direct_buy', 10);"
  done; } >"$ins_sql"
ins_do="DO \$\$ BEGIN FOR i IN 1..$ins_n LOOP
	INSERT INTO orders (id, order_number, user_id, type, total_amount) VALUES (gen_random_uuid(), 'I' || i, gen_random_uuid(), 'direct_buy', 10);
	END LOOP; END \$\$"
declare -A ins_ms=()
trig() {	# trig on|off
	psql_ -d reo_ins -c "DROP TRIGGER IF EXISTS release_expired_orders_wake ON orders"
	[ "$1" = off ] || psql_ -d reo_ins -c "SELECT release_expired_orders.add_wake_trigger()" >/dev/null
}
for t in on off off on on off off on on off; do
	trig $t
	psql_ -d reo_ins -c "TRUNCATE orders CASCADE" -c "CHECKPOINT" 2>/dev/null
	t0=$(now_s); psql_ -d reo_ins -f "$ins_sql"; ms=$(ms_since "$t0")
	ins_ms[psql_$t]="${ins_ms[psql_$t]:-} $ms"
	psql_ -d reo_ins -c "TRUNCATE orders CASCADE" 2>/dev/null
	ms=$(psql_ -d reo_ins -c '\timing on' -c "$ins_do" | grep -oE '^Time: [0-9.]+' | tail -1 | awk '{print $2}')
	ins_ms[do_$t]="${ins_ms[do_$t]:-} $ms"
done
us_per() { echo "$1" | median | awk -v n="$ins_n" '{printf "%.2f", $1 * 1000 / n}'; }
ins_psql_on=$(us_per "${ins_ms[psql_on]}"); ins_psql_off=$(us_per "${ins_ms[psql_off]}")
ins_do_on=$(us_per "${ins_ms[do_on]}"); ins_do_off=$(us_per "${ins_ms[do_off]}")
log "insert: psql on ${ins_ms[psql_on]} off ${ins_ms[psql_off]}; loop on ${ins_ms[do_on]} off ${ins_ms[do_off]} (ms)"
drop_db reo_ins
}

late_c_collect() {
log "late arrivals: (c) neither, waiting up to $late_c_cap s"
wait_released reo_late_c $((late_c_cap - ($(date +%s) - late_c_t0))) L- quiet
late_c_row=$(lag reo_late_c L- '(c) neither (poll off, no trigger)')
lags reo_late_c L- late_c
drop_db reo_late_c
}

late_b() {
log "late arrivals, poll 1 s: (b) no trigger"
set_poll default
copy_db reo_late_b
worker_pid reo_late_b >/dev/null
sleep 2
place_late reo_late_b "$late_n" "$late_gap" L-
wait_released reo_late_b 10 L-
late_rows+=("$(lag reo_late_b L- '(b) the poll, 1 s, no trigger')")
lags reo_late_b L- late_b
drop_db reo_late_b
}

#----------------------------------------------------------------------------
# 4. Many databases
#----------------------------------------------------------------------------
cron1_collect() {
if [ -n "$cron1_pid" ]; then
	log "waiting for pg_cron every minute"
	wait "$cron1_pid" || fail "pg_cron every minute"
	rows+=("$(cat "$scratch/cron1.row")")
fi
}

many() {
dbs=()
for ((i = 1; i <= ndb; i++)); do dbs+=("$(printf 'reo_m%02d' $i)"); done
log "$ndb databases: copying"
for d in "${dbs[@]}"; do copy_db "$d"; done
mpids=()
for d in "${dbs[@]}"; do mpids+=("$(worker_pid "$d")"); done
log "$ndb databases: $ndb workers; one order per second per database for $db_s s"
for d in "${dbs[@]}"; do
	psql_ -d "$d" -c "INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
		SELECT gen_random_uuid(), 'M-' || k, gen_random_uuid(), 'recharge', 10,
			   (now() AT TIME ZONE 'UTC') - interval '60 seconds' + interval '5 seconds'
				   + (k - 1 + random()) * interval '1 second'
		  FROM generate_series(1, $db_s) k"
done
sleep $((db_s + 5))
for d in "${dbs[@]}"; do wait_released "$d" 10 M-; done
for d in "${dbs[@]}"; do lag "$d" M- "$d"; done >"$scratch/many.rows"
for d in "${dbs[@]}"; do lags "$d" M- many; done
many_p99=$(awk -F' [|] ' '{print $4}' "$scratch/many.rows" | sort -g |
	awk '{a[NR] = $1} END {printf "%.1f | %.1f | %.1f", a[1], (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[NR]}')
many_n=$(awk -F' [|] ' '{s += $2} END {print s}' "$scratch/many.rows")
many_early=$(awk -F' [|] ' '{s += $6} END {print s}' "$scratch/many.rows")
many_pending=$(awk -F' [|] ' '{s += $7} END {print s}' "$scratch/many.rows")
many_all=$(awk '$1 == "many" {print $2}' "$scratch/lags.txt" | sort -g |
	awk '{a[NR] = $1} END {i = int(NR * 0.99 + 0.5); if (i < 1) i = 1; printf "%.1f | %.1f | %.1f", a[int((NR + 1) / 2)], a[i], a[NR]}')

# Memory per worker, after its runs: Pss (its share of shared memory
# touched), Pss_Anon (its own), RssAnon; averaged in kB.
mem=$(for p in "${mpids[@]}"; do
	awk '/^Pss:/ {pss = $2} /^Pss_Anon:/ {anon = $2} END {printf "%s %s ", pss, anon}' "/proc/$p/smaps_rollup"
	awk '/^RssAnon:/ {print $2}' "/proc/$p/status"; done |
	awk '{p += $1; a += $2; r += $3; n++} END {printf "%.0f | %.0f | %.0f", p / n, a / n, r / n}')

# Idle: nothing pending in any database; CPU of the workers over idle_s,
# poll 1 s then off.  Wakes: last_wake changes in the first database,
# sampled every 0.5 s.
idle() {	# idle <s>: prints "cpu ms per minute per database | wakes per minute"
	local idle_s=$1 c0 c1 last w wakes=0 d
	mpids=(); for d in "${dbs[@]}"; do mpids+=("$(worker_pid "$d")"); done
	c0=$(cpu_sum_ms "${mpids[@]}")
	last=$(val -d "${dbs[0]}" -c "SELECT last_wake FROM release_expired_orders.worker_status()")
	for _ in $(seq 1 $((idle_s * 2))); do
		sleep 0.5
		w=$(val -d "${dbs[0]}" -c "SELECT last_wake FROM release_expired_orders.worker_status()")
		[ "$w" != "$last" ] && wakes=$((wakes + 1)); last=$w
	done
	c1=$(cpu_sum_ms "${mpids[@]}")
	awk -v a="$c0" -v b="$c1" -v s="$idle_s" -v n="${#mpids[@]}" -v w="$wakes" \
		'BEGIN {printf "%.2f | %.1f", (b - a) * 60 / s / n, w * 60 / s}'
}
log "idle: poll 1 s, $idle_s s"
idle_poll=$(idle "$idle_s")
set_poll 0
log "idle: poll off, $idle_off_s s"
idle_off=$(idle "$idle_off_s")
set_poll default
for d in "${dbs[@]}"; do drop_db "$d"; done
}

#----------------------------------------------------------------------------
# 5. A burst: orders sharing one deadline, against the floor
#----------------------------------------------------------------------------
# burst_orders <db> <deadline in s from now>: the orders, with products
burst_orders() {
	psql_ -d "$1" -c "INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
		SELECT gen_random_uuid(), 'B-' || i, gen_random_uuid(),
			   ('00000000-0000-0000-0000-' || lpad((1 + i % 100)::text, 12, '0'))::uuid,
			   'recharge', 1, 10,
			   (now() AT TIME ZONE 'UTC') - interval '60 seconds' + interval '$2 seconds'
		  FROM generate_series(1, $burst) i" -c "ANALYZE" -c "CHECKPOINT"
}
chunk=$(val -d reo_worker -c "SHOW release_expired_orders.chunk_size")
# burst_worker [batch_limit [cap s]]: sets bw: "drain ms, runs, released
# early", by the worker in a fresh database; -1 ms when orders were still
# pending cap (120) s after the deadline (bw_left of them)
burst_worker() {
	local lead=$((burst / 10000 + 8))
	copy_db reo_burst
	[ -n "${1:-}" ] && psql_ -d postgres -c "ALTER DATABASE reo_burst SET release_expired_orders.batch_limit = $1"
	sleep 1; worker_pid reo_burst >/dev/null
	burst_orders reo_burst "$lead"
	[ "$(val -d reo_burst -c "SELECT count(*) FROM orders WHERE status = 'pending' AND (created_at AT TIME ZONE 'UTC') + interval '1 minute' < now()")" = 0 ] \
		|| fail "burst: the orders became visible after their deadline"
	wait_released reo_burst $((lead + ${2:-120})) B- quiet
	left=$(val -d reo_burst -c "SELECT count(*) FROM orders WHERE order_number LIKE 'B-%' AND status = 'pending'")
	if [ "$left" != 0 ]; then
		log "burst: $left of $burst orders still pending ${2:-120} s after the deadline: stopped"
		bw="-1 - 0"; bw_left=$left
		drop_db reo_burst; return 0
	fi
	bw_left=0
	bw=$(val -d reo_burst -c "SELECT round((pg_catalog.date_part('epoch', max(run.ended_at)
			- max((o.created_at AT TIME ZONE 'UTC') + interval '1 minute')) * 1000)::numeric, 1)
			|| ' ' || count(DISTINCT run.id) || ' ' || count(*) FILTER (WHERE e.created_at < (o.created_at AT TIME ZONE 'UTC') + interval '1 minute')
		  FROM orders o JOIN release_expired_orders.order_events e ON e.order_id = o.id AND e.outcome = 'released'
		  JOIN release_expired_orders.runs run ON run.id = e.run_id WHERE o.order_number LIKE 'B-%'")
	bw_runs_ms=$(val -d reo_burst -c "SELECT round(avg(ms)::numeric, 1) || ' ' || round((array_agg(ms ORDER BY id))[1]::numeric, 1)
		|| ' ' || round((array_agg(ms ORDER BY id DESC))[1]::numeric, 1)
		  FROM (SELECT id, pg_catalog.date_part('epoch', ended_at - started_at) * 1000 AS ms
				  FROM release_expired_orders.runs WHERE released > 0) r")
	[ "$(val -d reo_burst -c "SELECT sum(stock) FROM products")" = "$burst" ] || fail "burst ${1:-}: stock not given back"
	drop_db reo_burst
}
# burst_floor <per statement>: ms for the floor draining the same orders
burst_floor() {
	local f=$scratch/floor.sql t0 ms
	copy_db reo_floor off
	burst_orders reo_floor -60
	{ cat "$here/sql/floor_prepare.sql"
	  for ((i = 0; i < burst / $1 + 1; i++)); do echo "EXECUTE floor_release(1, $1) \\g /dev/null"; done; } >"$f"
	t0=$(now_s); psql_ -d reo_floor -f "$f" >/dev/null; ms=$(ms_since "$t0")
	[ "$(val -d reo_floor -c "SELECT sum(stock) FROM products")" = "$burst" ] || fail "floor $1: stock not given back"
	drop_db reo_floor
	echo "$ms"
}
bursts() {
log "burst: $burst orders, the worker at batch_limit 100 (default)"
burst_worker; read -r bw100 bw100_runs bw100_early <<<"$bw"; bw100_left=$bw_left; bw100_runs_ms=$bw_runs_ms
log "burst: the worker at batch_limit 100: $bw100 ms; now at batch_limit $burst (at most $bw_cap s)"
bwall=-2; bwall_runs=""; bwall_early=-; bwall_left=0
[ $smoke = 0 ] && { burst_worker "$burst" "$bw_cap"; read -r bwall bwall_runs bwall_early <<<"$bw"; bwall_left=$bw_left; }
log "burst: the worker at batch_limit $burst: $bwall ms; now the floor in statements of $chunk"
bf_chunk=$(burst_floor "$chunk")
log "burst: the floor in statements of $chunk: $bf_chunk ms; now in statements of 100"
bf_100=$(burst_floor 100)
log "burst: the floor in statements of 100: $bf_100 ms"
[ "$bw100_left" = 0 ] || fail "burst: the worker at batch_limit 100 did not drain it"
for e in "$bw100_early" "$bwall_early"; do
	case $e in 0|-) ;; *) fail "burst: $e released early" ;; esac
done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

#----------------------------------------------------------------------------
# 6. Held orders
#----------------------------------------------------------------------------
held() {
log "held: 150 orders fall due held by a payment, then 5 more"
copy_db reo_held
worker_pid reo_held >/dev/null
psql_ -d reo_held -c "INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
	SELECT gen_random_uuid(), 'H-' || i, gen_random_uuid(), 'recharge', 10,
		   (now() AT TIME ZONE 'UTC') - interval '60 seconds' + interval '3 seconds'
	  FROM generate_series(1, 150) i"
psql -X -q -d reo_held -c "SET application_name = 'reo_bench_payment'" \
	-c "BEGIN; SELECT count(*) FROM (SELECT FROM orders WHERE order_number LIKE 'H-%' FOR UPDATE) held; SELECT pg_sleep(60)" \
	>/dev/null 2>&1 &
payment=$!
for _ in $(seq 1 50); do
	[ "$(val -d reo_held -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'reo_bench_payment' AND wait_event = 'PgSleep'")" = 1 ] && break
	sleep 0.1
done
psql_ -d reo_held -c "INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
	SELECT gen_random_uuid(), 'N-' || i, gen_random_uuid(), 'recharge', 10,
		   (now() AT TIME ZONE 'UTC') - interval '60 seconds' + interval '6 seconds' + i * interval '1 second'
	  FROM generate_series(1, 5) i"
wait_released reo_held 20 N-
held_row=$(lag reo_held N- 'behind 150 held orders')
held_left=$(val -d reo_held -c "SELECT count(*) FROM orders WHERE order_number LIKE 'H-%' AND status = 'pending'")
[ "$held_left" = 150 ] || fail "held: $held_left of 150 held orders still pending"
psql_ -d reo_held -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'reo_bench_payment'" >/dev/null
wait "$payment" 2>/dev/null || true
drop_db reo_held
}

#----------------------------------------------------------------------------
# pg_cron every 10 minutes, the tick simulated
#----------------------------------------------------------------------------
cron10() {
log "pg_cron every 10 minutes: deadlines over one cycle, one CALL at the tick"
psql_ -d reo_cron -c "DELETE FROM orders WHERE payment_status <> 'paid'" >/dev/null
psql_ -d reo_cron -c "INSERT INTO orders (id, order_number, user_id, type, total_amount, created_at)
	SELECT gen_random_uuid(), 'T-' || i, gen_random_uuid(), 'recharge', 10,
		   (now() AT TIME ZONE 'UTC') - interval '1 minute' - (i - 0.5) * interval '600 seconds' / $orders
	  FROM generate_series(1, $orders) i" -c "CALL release_expired_orders(NULL, 100000)" >/dev/null
wait_released reo_cron 5 T-
rows+=("$(lag reo_cron T- 'pg_cron every 10 minutes (simulated tick)')")
lags reo_cron T- cron10
}

#----------------------------------------------------------------------------
# The order: the poll is off (server-wide) only for (a), the insert cost
# and (c); orders placed with created_at set back (burst, held, the
# databases) need the poll or the trigger.  What measures a lag of
# milliseconds runs alone but for the placing of orders for pg_cron every
# minute (one insert every 0.1 s) and the worker's own orders waiting for
# their deadlines (which the smoke run's burst overlaps, to stay short).
#----------------------------------------------------------------------------
rows=()
cron1_start
main_place
set_poll 0
late_ac
late_c_collect
set_poll default
held
bursts
main_collect
late_b
late_rows+=("$late_c_row")
cron1_collect
insert_cost
many
cron10
drop_db reo_tmpl

#----------------------------------------------------------------------------
# Results
#----------------------------------------------------------------------------
for r in "${rows[@]}" "${late_rows[@]:0:2}" "$held_row"; do
	n=$(echo "$r" | awk -F' [|] ' '{print $2}')
	[ "$(echo "$r" | awk -F' [|] ' '{print $6}')" = 0 ] || fail "released early: $r"
	[ "$(echo "$r" | awk -F' [|] ' '{print $7}')" = 0 ] || fail "not released: $r"
	[ "$n" -gt 0 ] || fail "nothing released: $r"
done
[ "$(echo "$late_c_row" | awk -F' [|] ' '{print $6}')" = 0 ] || fail "released early: $late_c_row"
[ "$many_early" = 0 ] || fail "$ndb databases: $many_early released early"
yes_no() { awk "BEGIN {exit !($1)}" && echo yes || echo no; }
cut7() { echo "$1" | awk -F' [|] ' '{printf "%s | %s | %s | %s | %s | %s", $1, $2, $3, $4, $5, $6}'; }
{
	echo "# Deadline benchmark"
	echo
	echo "\`test/bench/deadline.sh$([ $smoke = 1 ] && echo ' --smoke') --orders $orders --databases $ndb --burst $burst\`, $(date -u +%Y-%m-%d),"
	echo "$(val -d postgres -c 'SELECT version()' | cut -d, -f1), $(nproc) CPUs;"
	echo "max_workers $(setting release_expired_orders.max_workers), max_worker_processes $(setting max_worker_processes)."
	echo "Lag = the end of the run that released the order minus the later of its deadline and"
	echo "the moment it became visible; early = released before its deadline (must be 0)."
	echo
	echo "## Orders placed at now()"
	echo
	echo "Orders placed one per transaction over $spread s with a 1-minute window; the worker"
	echo "with its defaults (poll 1 s, no wake trigger)."
	echo
	echo "| scheduler | orders | lag p50 ms | lag p99 ms | lag max ms | released early |"
	echo "|---|---:|---:|---:|---:|---:|"
	for r in "${rows[@]}"; do echo "| $(cut7 "$r") |"; done
	echo
	echo "## Late arrivals"
	echo
	echo "Orders committed between 2 s after and 10 s before their deadline, one every ${late_gap} s;"
	echo "(c) waits for at most ${late_c_cap} s: an order not released by then counts with its lag so far."
	echo
	echo "| case | orders | lag p50 ms | lag p99 ms | lag max ms | released early | not released |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for r in "${late_rows[@]}"; do echo "| $r |"; done
	echo
	echo "Target: p99 ≤ 100 ms with the wake trigger: $(yes_no "$(echo "${late_rows[0]}" | awk -F' [|] ' '{print $4}') <= 100")."
	echo
	echo "## What each design costs"
	echo
	echo "| cost | with | without | difference |"
	echo "|---|---:|---:|---:|"
	echo "| µs per single-row INSERT, wake trigger, each its own transaction from psql (synchronous_commit off), $ins_n | $ins_psql_on | $ins_psql_off | $(awk -v a="$ins_psql_on" -v b="$ins_psql_off" 'BEGIN {printf "%+.2f", a - b}') |"
	echo "| µs per single-row INSERT, wake trigger, $ins_n in one PL/pgSQL loop | $ins_do_on | $ins_do_off | $(awk -v a="$ins_do_on" -v b="$ins_do_off" 'BEGIN {printf "%+.2f", a - b}') |"
	echo "| worker's idle CPU ms per minute per database, poll 1 s (with, over $idle_s s) / off (without, over $idle_off_s s), $ndb databases | ${idle_poll%% |*} | ${idle_off%% |*} | $(awk -v a="${idle_poll%% |*}" -v b="${idle_off%% |*}" 'BEGIN {printf "%+.2f", a - b}') |"
	echo "| worker's wakes per minute, idle, poll 1 s / off (shortest window 1 min) | ${idle_poll##*| } | ${idle_off##*| } | |"
	echo "| one warm CALL that finds nothing: CPU ms / wall ms | $call_cpu | $call_ms | |"
	echo
	echo "## $ndb databases"
	echo
	echo "$ndb databases served at once, each with one order falling due every second for ${db_s} s"
	echo "(placed beforehand; $many_n orders in all, $many_early released early, $many_pending not released)."
	echo
	echo "| measure | min | median | max |"
	echo "|---|---:|---:|---:|"
	echo "| each database's lag p99, ms | $many_p99 |"
	echo
	echo "| all orders | lag p50 ms | lag p99 ms | lag max ms |"
	echo "|---|---:|---:|---:|"
	echo "| $many_n | $many_all |"
	echo
	echo "| per worker (mean over $ndb) | Pss kB | Pss_Anon kB | RssAnon kB |"
	echo "|---|---:|---:|---:|"
	echo "| after its runs | $mem |"
	echo
	echo "Idle CPU per database: in the costs above."
	echo
	echo "## A burst"
	echo
	echo "$burst orders (one unit of stock each, 100 products) sharing one deadline, visible"
	echo "before it; drain time = the last one's lag. The floor: \`sql/floor_prepare.sql\` of"
	echo "test/bench/run.sh draining the same orders, one statement per chunk, each committed."
	echo
	echo "| drain | ms | runs | × floor in chunks of $chunk |"
	echo "|---|---:|---:|---:|"
	echo "| the worker, batch_limit 100 (default): runs of 100 | $bw100 | $bw100_runs | $(ratio "$bw100" "$bf_chunk") |"
	if [ "$bwall" = -2 ]; then
		:
	elif [ "$bwall" = -1 ]; then
		echo "| the worker, batch_limit $burst for the database: chunks of $chunk | > $((bw_cap * 1000)) ($bwall_left left) | | > $(ratio "$((bw_cap * 1000))" "$bf_chunk") |"
	else
		echo "| the worker, batch_limit $burst for the database: chunks of $chunk | $bwall | $bwall_runs | $(ratio "$bwall" "$bf_chunk") |"
	fi
	echo "| floor, $chunk per statement (chunk_size), each committed | $bf_chunk | | 1.00 |"
	echo "| floor, 100 per statement, each committed | $bf_100 | | $(ratio "$bf_100" "$bf_chunk") |"
	echo
	echo "The worker's runs at batch_limit 100, ms: mean, first, last: $bw100_runs_ms."
	echo "At the same statement size: the worker's runs of 100 over the floor in 100s $(ratio "$bw100" "$bf_100")×$(
		[ "$bwall" = -2 ] || { echo -n "; its chunks of $chunk over the floor's "; [ "$bwall" = -1 ] && echo -n "> $(ratio "$((bw_cap * 1000))" "$bf_chunk")" || ratio "$bwall" "$bf_chunk"; echo -n "×"; })."
	echo "Target, the worker at its defaults within 1.2× the floor in chunks of $chunk: $(ratio "$bw100" "$bf_chunk")×, $(yes_no "$(ratio "$bw100" "$bf_chunk") <= 1.2")."
	echo
	echo "## Held orders"
	echo
	echo "150 orders fall due while another session holds them FOR UPDATE; 5 more fall due"
	echo "4–8 s later; the 150 stay pending ($held_left)."
	echo
	echo "| orders | lag p50 ms | lag p99 ms | lag max ms | released early |"
	echo "|---:|---:|---:|---:|---:|"
	echo "| $(echo "$held_row" | awk -F' [|] ' '{printf "%s | %s | %s | %s | %s", $2, $3, $4, $5, $6}') |"
	echo
	echo "Target: ≤ 100 ms: $(yes_no "$(echo "$held_row" | awk -F' [|] ' '{print $5}') <= 100")."
} >"$outdir/deadline.md"
cat "$outdir/deadline.md"
cp "$scratch/lags.txt" "$outdir/deadline-lags.txt"

if command -v gnuplot >/dev/null; then
	awk 'BEGIN {srand(1); split("worker cron1 cron10 late_a late_b late_c many", t, " "); for (i in t) x[t[i]] = i - 1}
		$1 in x {print x[$1] + (rand() - 0.5) * 0.4, $2, x[$1] + 1}' "$scratch/lags.txt" >"$scratch/points.txt"
	gnuplot <<-EOF
		set terminal pngcairo size 1000,460 font ",10" noenhanced
		set bmargin 4
		set output "$outdir/deadline.png"
		set title "Release lag (one point per order; log scale; below 1 ms drawn at 1 ms)"
		set ylabel "lag, ms"
		set logscale y
		set xtics ("worker" 0, "pg_cron\n1 min" 1, "pg_cron\n10 min" 2, "late:\nwake trigger" 3, "late:\npoll 1 s" 4, "late:\nneither" 5, "$ndb databases" 6)
		set xrange [-0.5:6.5]
		set key off
		set grid ytics
		f(x) = x < 1 ? 1 : x
		plot "$scratch/points.txt" using 1:(f(\$2)):3 with points pt 7 ps 0.4 lc variable
	EOF
	log "wrote $outdir/deadline.md and deadline.png"
else
	log "wrote $outdir/deadline.md (no gnuplot: no chart)"
fi
[ $failures = 0 ]
