#!/usr/bin/env bash
# Benchmark of release_expired_orders against the alternatives.
#
#   pg_virtualenv -o shared_preload_libraries=pg_cron test/bench/run.sh [options]
#
# Runs against the cluster named by the PG* environment variables, as a
# superuser (user postgres).  Builds the data once in a template database and
# gives every approach its own identical copy (CREATE DATABASE ... TEMPLATE),
# made fresh for every repetition.  Prints a table and writes it as Markdown
# (results.md) with a chart of throughput (throughput.png, needs gnuplot).
#
# Options:
#   --orders N      orders in the data set (default 1000000; 10% expired)
#   --reps N        repetitions of each timed approach; the median counts (3)
#   --sample N      orders the old design releases, timed (default 5000)
#   --big N         orders of the large nothing-to-do case (default 10000000;
#                   0 skips it)
#   --rate N        transactions/s of the contention workload (default 200)
#   --out DIR       where results.md and throughput.png go (default: this
#                   directory; the scratch files always go to out/)
#   --durable       fsync on for the run (ALTER SYSTEM, reset at the end):
#                   pg_virtualenv turns fsync off, which flatters designs
#                   that commit often
#   --library PATH  run the extension's C functions from this build of the
#                   library instead of the installed one (to try an engine
#                   change without installing it; only in the benchmark's
#                   databases)
#   --template-sql FILE  SQL run in the template after CREATE EXTENSION
#                   (e.g. a changed function of the extension to try)
#   --types N       order types of the windowed nothing-to-do case (default
#                   3000; sql/generate.sql: t0001.. with payment windows)
#   --waiting P     percent of its orders pending inside long windows (2)
#   --look-s N      seconds the deadline worker's look is measured (10)
#   --server-log FILE  the server's log, as the server can read it (default:
#                   pg_current_logfile(), else the file its stderr goes to)
#   --smoke         20,000 orders (300 types), 1 repetition, no large case,
#                   short contention run, results in out/smoke; for CI
#                   (< 2 min)
#
# The nothing-to-do cases run with the server's defaults (jit included).
# For all of their columns the cluster needs
#   shared_preload_libraries = 'pg_cron,release_expired_orders,pg_stat_statements'
#   release_expired_orders.worker_database = 'postgres'   (any value: the
#                   worker is registered only at server start; the script
#                   points it at its database for the measurement and back)
# Without pg_stat_statements there are no JIT and buffer columns; without
# the worker no look.
#
# Exits non-zero when an approach released a different set of orders, or
# moved stock or shares differently, than the set-based floor.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
orders=1000000
reps=3
sample=5000
big=10000000
rate=200
smoke=0
durable=0
library=""
template_sql=""
outdir=""
types=3000
waiting=2
look_s=10
server_log=""
while [ $# -gt 0 ]; do
	case "$1" in
		--orders) orders=$2; shift 2 ;;
		--reps) reps=$2; shift 2 ;;
		--sample) sample=$2; shift 2 ;;
		--big) big=$2; shift 2 ;;
		--rate) rate=$2; shift 2 ;;
		--out) outdir=$2; shift 2 ;;
		--smoke) smoke=1; shift ;;
		--durable) durable=1; shift ;;
		--library) library=$2; shift 2 ;;
		--template-sql) template_sql=$2; shift 2 ;;
		--types) types=$2; shift 2 ;;
		--waiting) waiting=$2; shift 2 ;;
		--look-s) look_s=$2; shift 2 ;;
		--server-log) server_log=$2; shift 2 ;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
if [ $smoke = 1 ]; then
	orders=20000; reps=1; big=0; rate=100; types=300; look_s=3
fi
scratch=$here/out
[ $smoke = 1 ] && scratch=$here/out/smoke
if ! { mkdir -p "$scratch" 2>/dev/null && [ -w "$scratch" ]; }; then
	scratch=$(mktemp -d /tmp/release_expired_orders-bench.XXXXXX)
	echo "run.sh: $here/out is not writable; scratch files go to $scratch"
fi
if [ -z "$outdir" ]; then
	if [ $smoke = 1 ]; then outdir=$scratch; else outdir=$here; fi
fi
if ! { mkdir -p "$outdir" 2>/dev/null && [ -w "$outdir" ]; }; then
	echo "run.sh: $outdir is not writable; writing results to $scratch"
	outdir=$scratch
fi

timeout_min=1440			# the data's expired orders are > 2 days old
expired=$((orders / 10))
batch=$expired				# the drain: 100,000 of 1,000,000
[ $batch -gt 1000000 ] && batch=1000000
[ $sample -gt $expired ] && sample=$expired
runs100=$(((expired + 99) / 100 + 1))	# the last one finds nothing
tmpl=bench_tmpl
copy=bench_run
pend="status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending'"
partial_index="CREATE INDEX orders_pending_created_at_idx ON public.orders (created_at, id) WHERE $pend"
# the one the README recommends with payment windows
typed_index="CREATE INDEX orders_release_candidates_idx ON public.orders (type, created_at, id) INCLUDE (payment_method) WHERE $pend"
failfile=$scratch/failures
: >"$failfile"

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }
# checks run in subshells too: failures are counted in a file
fail() { echo "FAIL: $*" >&2; echo "$*" >>"$failfile"; }
psql_() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
val() { psql_ -At "$@"; }	# one value
now_s() { date +%s.%N; }
ms_since() { echo "$1 $(now_s)" | awk '{printf "%.1f", ($2 - $1) * 1000}'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
# The server-side time of the one statement of a psql run with \timing on.
timing_ms() { grep -oE '^Time: [0-9.]+' | tail -1 | awk '{print $2}'; }

fresh_copy() {	# fresh_copy <template> <name>: an identical copy, warmed, after a checkpoint
	psql_ -d postgres -c "DROP DATABASE IF EXISTS $2" \
		-c "CREATE DATABASE $2 TEMPLATE $1 STRATEGY FILE_COPY"
	psql_ -d "$2" -c "SELECT pg_catalog.sum(pg_prewarm(c.oid)) FROM pg_class c
		WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'i')
		  AND pg_relation_size(c.oid) < 64 * 1024 * 1024" >/dev/null
	psql_ -d postgres -c CHECKPOINT
}

#----------------------------------------------------------------------------
# The cluster and the data
#----------------------------------------------------------------------------
if [ $durable = 1 ]; then
	psql_ -d postgres -c "ALTER SYSTEM SET fsync = on" -c "SELECT pg_reload_conf()" >/dev/null
	trap 'psql -X -q -d postgres -c "ALTER SYSTEM RESET fsync" -c "SELECT pg_reload_conf()" >/dev/null' EXIT
	sleep 1
fi
log "cluster: $(val -d postgres -c 'SELECT version()')"
psql_ -d postgres -c "SELECT 1 FROM pg_available_extensions WHERE name = 'release_expired_orders'" -At | grep -q 1 \
	|| { echo "run.sh: the extension release_expired_orders is not installed"; exit 1; }
settings=$(val -d postgres -c "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name)
	FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'synchronous_commit', 'max_wal_size', 'work_mem')")
machine="$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr)"
log "machine: $machine"
log "settings: $settings"
jit_info=$(val -d postgres -c "SELECT 'jit=' || current_setting('jit') || ', jit_provider=' || current_setting('jit_provider')
	|| ' (' || CASE WHEN pg_jit_available() THEN 'loads' ELSE 'not available' END || '), jit_above_cost='
	|| current_setting('jit_above_cost') || ', jit_inline_above_cost=' || current_setting('jit_inline_above_cost')
	|| ', jit_optimize_above_cost=' || current_setting('jit_optimize_above_cost')")
log "JIT: $jit_info"
preload=$(val -d postgres -c 'SHOW shared_preload_libraries')
pgss=0
case ",${preload// /}," in *,pg_stat_statements,*) pgss=1 ;; esac
no_worker=""
case ",${preload// /}," in *,release_expired_orders,*) ;;
	*) no_worker="release_expired_orders is not in shared_preload_libraries" ;; esac
[ -n "$no_worker" ] || [ -n "$(val -d postgres -c "SELECT current_setting('release_expired_orders.worker_database', true)")" ] ||
	no_worker="release_expired_orders.worker_database was empty at server start: no worker registered"
[ $pgss = 1 ] || log "pg_stat_statements is not preloaded: no JIT and buffer columns in the nothing-to-do table"
[ -z "$no_worker" ] || log "the deadline worker's look is not measured: $no_worker"

build_template() {	# build_template <db> <orders> <idle> <notifications> [<types> <waiting %>]
	local t0; t0=$(now_s)
	psql_ -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
	psql_ -d "$1" -v n="$2" -v idle="$3" -v notes_rows="$4" -v types="${5:-0}" -v waiting="${6:-0}" \
		-f "$here/sql/generate.sql"
	psql_ -d "$1" -f "$here/sql/approaches.sql"
	if [ -n "$library" ]; then
		# every C function of the extension, so that one library is loaded
		psql_ -d "$1" -c "UPDATE pg_catalog.pg_proc SET probin = '$library'
			WHERE prolang = (SELECT oid FROM pg_catalog.pg_language WHERE lanname = 'c')
			  AND oid IN (SELECT d.objid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
						  WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.deptype = 'e'
							AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND e.extname = 'release_expired_orders')"
	fi
	[ -z "$template_sql" ] || psql_ -d "$1" -f "$template_sql"
	log "built $1: $2 orders (idle=$3, types=${5:-0}, waiting=${6:-0}%) in $(ms_since "$t0") ms, $(val -d postgres -c "SELECT pg_size_pretty(pg_database_size('$1'))")"
}

log "building the data: $orders orders, $expired expired"
build_template $tmpl "$orders" 0 $((orders / 4))
# The throughput runs use the recommended index (without it, each run of
# 100 walks the old paid orders from the start again); nothing-to-do below
# measures with and without it.
psql_ -d $tmpl -c "$partial_index" -c "ANALYZE public.orders"
base=$(val -d $tmpl -F' ' -c "SELECT (SELECT sum(stock) FROM products), (SELECT sum(sold_shares) FROM lottery_rounds),
	(SELECT count(*) FROM orders WHERE payment_status = 'paid'),
	(SELECT count(*) FROM orders WHERE $pend AND created_at < (now() AT TIME ZONE 'UTC') - make_interval(mins => $timeout_min))")
read -r base_stock base_sold base_paid base_expired <<<"$base"
[ "$base_expired" = "$expired" ] || fail "the data has $base_expired expired orders, expected $expired"

#----------------------------------------------------------------------------
# Throughput: each approach drains the expired orders on its own copy
#----------------------------------------------------------------------------
# check <approach> <expected released> <full>: prints released|ids; checks the
# counters moved by exactly what the released orders carried.
check() {
	local r
	r=$(val -d $copy -F'|' -c "SELECT count(*),
		coalesce(sum(quantity) FILTER (WHERE product_id IS NOT NULL AND quantity > 0), 0),
		coalesce(sum(quantity) FILTER (WHERE round_id IS NOT NULL AND quantity > 0), 0),
		md5(string_agg(id::text, ',' ORDER BY id)),
		(SELECT sum(stock) FROM products), (SELECT sum(sold_shares) FROM lottery_rounds),
		(SELECT count(*) FROM orders WHERE payment_status = 'paid'),
		(SELECT count(*) FROM release_expired_orders.order_events WHERE outcome = 'released'),
		(SELECT count(*) FROM notifications WHERE content LIKE '%order_released_successfully%'),
		(SELECT count(*) FROM orders WHERE $pend AND created_at < (now() AT TIME ZONE 'UTC') - make_interval(mins => $timeout_min))
		FROM orders WHERE status = 'expired' AND payment_status = 'cancelled'
		  AND fulfillment_status = 'cancelled' AND notes LIKE '%订单超时已过期%'")
	local n want_stock want_sold ids stock sold paid events notes left
	IFS='|' read -r n want_stock want_sold ids stock sold paid events notes left <<<"$r"
	[ "$n" = "$2" ] || fail "$1 released $n orders, expected $2"
	[ $((stock - base_stock)) = "$want_stock" ] || fail "$1 returned $((stock - base_stock)) stock, its orders carried $want_stock"
	[ $((base_sold - sold)) = "$want_sold" ] || fail "$1 returned $((base_sold - sold)) shares, its orders carried $want_sold"
	[ "$paid" = "$base_paid" ] || fail "$1 changed paid orders: $paid, was $base_paid"
	[ "$notes" = "$n" ] || fail "$1 wrote $notes release notifications for $n orders"
	if [ "$3" = full ]; then
		[ "$left" = 0 ] || fail "$1 left $left expired orders"
		[ "$1" = old ] || [ "$events" = "$n" ] || fail "$1 wrote $events audit rows for $n orders"
	fi
	echo "$n|$ids|$stock|$sold"
}

declare -A ms_list result
approaches=(floor old plpgsql ext extc100 floorchunk floor100 ext100)	# the floor first: the reference set
declare -A label=(
	[old]="(1) old design: ~10 statements per order, each its own transaction, from one client connection"
	[plpgsql]="(2) per-order PL/pgSQL loop (commit per 1000)"
	[floor]="(3) floor: one set-based statement"
	[ext]="(4) extension, batch_limit $batch (drain, chunk_size 1000)"
	[extc100]="(8) extension, batch_limit $batch (drain, chunk_size 100)"
	[floor100]="(6) floor, 100 per statement, repeated"
	[floorchunk]="(7) floor, 1000 per statement (the extension's chunk_size), repeated"
	[ext100]="(5) extension, batch_limit 100, CALL repeated"
)
declare -A short=([old]="old design" [plpgsql]="PL/pgSQL loop" [floor]="floor (drain)"
	[ext]="extension (drain)" [extc100]="extension (drain, chunks of 100)" [floor100]="floor, runs of 100" [ext100]="extension, runs of 100" [floorchunk]="floor, runs of 1000")

run_approach() {	# run_approach <name>: prints elapsed ms
	local t0 f
	case $1 in
	old)
		f=$scratch/old_design.sql
		psql_ -d $copy -v timeout=$timeout_min -v sample=$sample -f "$here/sql/old_design_script.sql" -o "$f"
		t0=$(now_s)
		psql_ -d $copy -f "$f" >/dev/null
		ms_since "$t0" ;;
	plpgsql)
		psql_ -d $copy -c '\timing on' -c "CALL bench.plpgsql_release($timeout_min, $batch)" | timing_ms ;;
	floor)
		psql_ -d $copy -f "$here/sql/floor_prepare.sql" -c '\timing on' \
			-c "EXECUTE floor_release($timeout_min, $batch)" | timing_ms ;;
	ext)
		psql_ -d $copy -c '\timing on' -c "CALL release_expired_orders($timeout_min, $batch)" | timing_ms ;;
	extc100)
		psql_ -d $copy -c 'SET release_expired_orders.chunk_size = 100' -c '\timing on' \
			-c "CALL release_expired_orders($timeout_min, $batch)" | timing_ms ;;
	floorchunk)
		f=$scratch/floorchunk.sql
		{ cat "$here/sql/floor_prepare.sql"
		  for ((i = 0; i < expired / 1000 + 1; i++)); do echo "EXECUTE floor_release($timeout_min, 1000) \\g /dev/null"; done; } >"$f"
		t0=$(now_s)
		psql_ -d $copy -f "$f" >/dev/null
		ms_since "$t0" ;;
	floor100)
		f=$scratch/floor100.sql
		{ cat "$here/sql/floor_prepare.sql"
		  for ((i = 0; i < runs100; i++)); do echo "EXECUTE floor_release($timeout_min, 100) \\g /dev/null"; done; } >"$f"
		t0=$(now_s)
		psql_ -d $copy -f "$f" >/dev/null
		ms_since "$t0" ;;
	ext100)
		f=$scratch/ext100.sql
		for ((i = 0; i < runs100; i++)); do echo "CALL release_expired_orders($timeout_min, 100) \\g /dev/null"; done >"$f"
		t0=$(now_s)
		psql_ -d $copy -f "$f" >/dev/null
		ms_since "$t0" ;;
	esac
}

floor_ids=""
for ((rep = 1; rep <= reps; rep++)); do
	for a in "${approaches[@]}"; do
		fresh_copy $tmpl $copy
		ms=$(run_approach $a)
		n=$expired; full=full
		[ $a = old ] && [ $sample -lt $expired ] && { n=$sample; full=sample; }
		r=$(check $a $n $full)
		ms_list[$a]="${ms_list[$a]:-} $ms"
		log "rep $rep: ${short[$a]}: $ms ms, released ${r%%|*}"
		if [ $full = full ]; then
			if [ -z "$floor_ids" ]; then floor_ids=$r
			elif [ "$r" != "$floor_ids" ]; then
				fail "$a released a different set or moved counters differently than the floor ($r vs $floor_ids)"
			fi
		fi
	done
done
declare -A med ops
for a in "${approaches[@]}"; do
	med[$a]=$(echo "${ms_list[$a]}" | median)
	n=$expired; [ $a = old ] && n=$sample
	ops[$a]=$(awk -v n=$n -v ms="${med[$a]}" 'BEGIN {printf "%.0f", n / (ms / 1000)}')
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# old design: time to drain all of them at its measured rate
old_full_ms=$(awk -v e=$expired -v ops="${ops[old]}" 'BEGIN {printf "%.1f", e / ops * 1000}')

#----------------------------------------------------------------------------
# Nothing to do: a CALL that finds nothing, with and without the index
#----------------------------------------------------------------------------
cand_sql="SELECT o.id, o.order_number, o.user_id, o.product_id, o.round_id, o.quantity, o.created_at
	FROM public.orders o WHERE $pend
	AND o.created_at < (now() AT TIME ZONE 'UTC') - interval '$timeout_min minutes'
	AND o.created_at >= '-infinity'::timestamp
	AND (o.created_at, o.id) > ('-infinity'::timestamp, '00000000-0000-0000-0000-000000000000'::uuid)
	ORDER BY o.created_at, o.id LIMIT 100 FOR UPDATE OF o SKIP LOCKED"
declare -a idle_rows=() nothing_rows=()
pgbench_s=10
[ $smoke = 1 ] && pgbench_s=2
short_s=$(( pgbench_s > 5 ? 5 : pgbench_s ))	# scrape, oldest_deadline(), preview()
pgbench_ms() {	# pgbench_ms <-C or ""> <script> [seconds]: average latency in $db, in ms
	pgbench -n $1 -T "${3:-$pgbench_s}" -f "$2" -d $db 2>&1 | awk '/^latency average/ {print $4}'
}
# pgss_measure <db> <statement>: the statement once (caches), then 5 times
# after a reset of pg_stat_statements, in one session; prints "shared
# blocks (hit + read) per call|JIT functions|JIT ms" over every statement it
# ran, nested ones included (track = all, set on the database).  "-|?|?"
# when pg_stat_statements is not preloaded.
pgss_measure() {
	[ $pgss = 1 ] || { echo "-|?|?"; return; }
	psql_ -d "$1" -At <<-EOF | tail -1
		$2 \g /dev/null
		SELECT pg_stat_statements_reset() \g /dev/null
		$2 \g /dev/null
		$2 \g /dev/null
		$2 \g /dev/null
		$2 \g /dev/null
		$2 \g /dev/null
		$pgss_sum;
	EOF
}
# Sum over the statements of this database since the reset but these
# measurements' own; buffers of the top-level statements (which include
# their nested ones), divided by the 5 calls.
pgss_sum="SELECT coalesce(round(sum(shared_blks_hit + shared_blks_read) FILTER (WHERE toplevel) / 5.0, 1), 0)
		|| '|' || coalesce(sum(jit_functions), 0)
		|| '|' || round(coalesce(sum(jit_generation_time + jit_inlining_time + jit_optimization_time + jit_emission_time), 0)::numeric, 1)
	FROM pg_stat_statements
	WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
	  AND query NOT ILIKE '%pg_stat_statements%' AND query NOT ILIKE '%wake_worker%'
	  AND query NOT ILIKE '%pg_sleep%'"

# The server's log, as the server reads it: the logging collector's file,
# or the file its stderr goes to (pg_ctl -l, pg_ctlcluster), or --server-log.
server_log() {
	if [ -n "$server_log" ]; then echo "$server_log"; return; fi
	val -d postgres -c "SELECT CASE WHEN pg_current_logfile() IS NOT NULL THEN pg_current_logfile()
		WHEN (pg_stat_file('/proc/self/fd/2', true)).isdir IS false THEN '/proc/self/fd/2' END" 2>/dev/null || true
}
log_size() { val -d postgres -c "SELECT (pg_stat_file('$1')).size"; }

# worker_look <db>: the deadline worker serves db for look_s seconds,
# woken every 100 ms, with log_min_messages = debug1 in db only; prints
# "median look µs|looks|blocks per look|JIT functions|JIT ms", or
# "-|reason" when it cannot be measured.  The worker's own DEBUG1 line
# (worker_step.c) gives each look's duration.
worker_look() {
	local db=$1 logf off n i out
	[ -z "$no_worker" ] || { echo "-|$no_worker"; return; }
	logf=$(server_log)
	[ -n "$logf" ] || { echo "-|no server log to read (logging_collector off and stderr not a file: give --server-log)"; return; }
	off=$(log_size "$logf")
	psql_ -d postgres -c "ALTER DATABASE $db SET log_min_messages = debug1" \
		-c "ALTER SYSTEM SET release_expired_orders.worker_database = '$db'" -c "SELECT pg_reload_conf()" >/dev/null
	# it exits, and the postmaster starts it for db 5 s later; it looks at once
	for ((i = 0; i < 150; i++)); do
		val -d postgres -c "SELECT pg_read_file('$logf', $off, (pg_stat_file('$logf')).size - $off)" |
			grep -q "deadline worker: look took" && break	# only db logs at debug1
		sleep 0.2
	done
	if [ $i = 150 ]; then
		echo "-|the worker did not look in $db within 30 s"
	else
		sleep 0.5
		off=$(log_size "$logf")
		[ $pgss = 0 ] || psql_ -d $db -c 'SELECT pg_stat_statements_reset()' >/dev/null
		psql_ -d $db -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
			WHILE clock_timestamp() < t0 + interval '$look_s seconds' LOOP
				PERFORM release_expired_orders.wake_worker(); PERFORM pg_sleep(0.1);
			END LOOP; END \$\$ /* wake_worker */" >/dev/null
		sleep 0.5
		val -d postgres -c "SELECT pg_read_file('$logf', $off, (pg_stat_file('$logf')).size - $off)" |
			grep -oE 'deadline worker: look took [0-9]+ us' | awk '{print $5}' >"$scratch/looks_$db"
		n=$(wc -l <"$scratch/looks_$db")
		if [ "$n" = 0 ]; then
			echo "-|no look logged in $look_s s (log: $logf)"
		else
			out=$(if [ $pgss = 1 ]; then val -d $db -c "${pgss_sum/5.0/$n.0}"; else echo "-|?|?"; fi)
			echo "$(median <"$scratch/looks_$db")|$n|$out"
		fi
	fi
	psql_ -d postgres -c "ALTER DATABASE $db RESET log_min_messages" \
		-c "ALTER SYSTEM RESET release_expired_orders.worker_database" -c "SELECT pg_reload_conf()" >/dev/null
}

# nothing_case <db> <orders> <windows label>: a run that finds nothing and
# the looks around it, with the server's defaults (jit included): one row
# per statement.
nothing_case() {
	local db=$1 s1 c1 s2 c2 over warm r_call look stmt name sql t n b f j runs
	local -a stmts=("scrape|SELECT * FROM release_expired_orders.metrics"
		"oldest_deadline|SELECT release_expired_orders.oldest_deadline()"
		"preview|SELECT count(*) FROM release_expired_orders.preview($timeout_min, 100)")
	local -A r_stmt t_stmt
	# blocks and JIT first, while the run history is short (every CALL
	# below adds a run row, which the scrape then reads)
	r_call=$(pgss_measure $db "CALL release_expired_orders($timeout_min, 100)")
	for stmt in "${stmts[@]}"; do r_stmt[${stmt%%|*}]=$(pgss_measure $db "${stmt#*|}"); done
	runs=$(val -d $db -c "SELECT count(*) FROM release_expired_orders.runs")
	look=$(worker_look $db)
	for stmt in "${stmts[@]}"; do
		name=${stmt%%|*}
		echo "${stmt#*|};" >"$scratch/idle_$name.sql"
		t_stmt[$name]=$(pgbench_ms "" "$scratch/idle_$name.sql" $short_s)
		log "nothing to do, $2 orders, $3: $name ${t_stmt[$name]} ms warm; blocks|JIT functions|JIT ms: ${r_stmt[$name]}"
	done
	echo 'SELECT 1;' >"$scratch/select1.sql"
	echo "CALL release_expired_orders($timeout_min, 100);" >"$scratch/idle_call.sql"
	s1=$(pgbench_ms -C "$scratch/select1.sql"); c1=$(pgbench_ms -C "$scratch/idle_call.sql")
	s2=$(pgbench_ms -C "$scratch/select1.sql"); c2=$(pgbench_ms -C "$scratch/idle_call.sql")
	over=$(awk -v a="$s1" -v b="$c1" -v c="$s2" -v d="$c2" 'BEGIN {printf "%.2f", (b - a + d - c) / 2}')
	warm=$(pgbench_ms "" "$scratch/idle_call.sql")
	log "nothing to do, $2 orders, $3: CALL warm $warm ms, fresh $over ms over SELECT 1 ($c1, $c2 vs $s1, $s2 ms); blocks|JIT functions|JIT ms: $r_call"

	nothing_rows+=("$2|$3|CALL, warm session (pgbench, one session)|$warm|$r_call")
	nothing_rows+=("$2|$3|CALL, fresh session each, over SELECT 1 (pgbench -C: $(awk -v a="$c1" -v b="$c2" 'BEGIN {printf "%.2f", (a + b) / 2}') ms vs $(awk -v a="$s1" -v b="$s2" 'BEGIN {printf "%.2f", (a + b) / 2}') ms)|$over|$r_call")
	if [ "${look%%|*}" = - ]; then
		nothing_rows+=("$2|$3|the deadline worker's look|-|-|?|?|${look#-|}")
		log "nothing to do, $2 orders, $3: the worker's look not measured: ${look#-|}"
	else
		IFS='|' read -r t n b f j <<<"$look"
		nothing_rows+=("$2|$3|the deadline worker's look (median of $n, server log)|$(awk -v u="$t" 'BEGIN {printf "%.3f", u / 1000}')|$b|$f|$j")
		log "nothing to do, $2 orders, $3: the worker's look: median $t us of $n looks; blocks|JIT functions|JIT ms: $b|$f|$j"
	fi
	nothing_rows+=("$2|$3|one scrape: \`SELECT * FROM release_expired_orders.metrics\` ($runs run rows), warm session|${t_stmt[scrape]}|${r_stmt[scrape]}")
	nothing_rows+=("$2|$3|\`SELECT release_expired_orders.oldest_deadline()\`, warm session|${t_stmt[oldest_deadline]}|${r_stmt[oldest_deadline]}")
	nothing_rows+=("$2|$3|\`release_expired_orders.preview($timeout_min, 100)\`, warm session|${t_stmt[preview]}|${r_stmt[preview]}")
	# nothing may have been released, by the CALLs or the worker
	t=$(val -d $db -c "SELECT count(*) FROM release_expired_orders.runs WHERE released > 0 OR failed > 0")
	[ "$t" = 0 ] || fail "nothing to do, $2 orders, $3: $t runs released or failed orders"
}

# idle_setup <db>: the settings every session and the worker share there
idle_setup() {
	psql_ -d postgres -c "ALTER DATABASE $1 SET release_expired_orders.timeout_minutes = $timeout_min"
	if [ $pgss = 1 ]; then
		psql_ -d postgres -c "ALTER DATABASE $1 SET pg_stat_statements.track = 'all'"
		psql_ -d "$1" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
	fi
}

idle_case() {	# idle_case <orders>
	local db=bench_idle index buf plan_ms call_ms warm_ms blocks times t
	build_template $db "$1" 1 0
	idle_setup $db
	for index in without with; do
		if [ $index = with ]; then
			psql_ -d $db -c "$partial_index" -c "ANALYZE public.orders"
		fi
		psql_ -d postgres -c CHECKPOINT
		# warm, then measure the candidate query the engine runs
		psql_ -d $db -c "EXPLAIN (ANALYZE, BUFFERS) $cand_sql" >/dev/null
		psql_ -d $db -c "EXPLAIN (ANALYZE, BUFFERS) $cand_sql" >"$scratch/idle_${1}_${index}.plan"
		buf=$(grep -m1 -oE 'Buffers: shared [^)]*' "$scratch/idle_${1}_${index}.plan" | head -1 |
			awk '{s = 0; for (i = 3; i <= NF; i++) {split($i, kv, "="); s += kv[2]} print s}')
		plan_ms=$(grep -oE 'Execution Time: [0-9.]+' "$scratch/idle_${1}_${index}.plan" | awk '{print $3}')
		# the CALL itself, each in a fresh session as pg_cron runs it
		times=""
		for ((k = 0; k < 5; k++)); do
			t=$(psql_ -d $db -c '\timing on' -c "CALL release_expired_orders($timeout_min, 100)" | timing_ms)
			times="$times $t"
		done
		call_ms=$(echo "$times" | median)
		# a second CALL in a warm session: its time and the blocks it touched
		# (pg_stat_database), minus those of an empty statement
		psql_ -d $db -At >"$scratch/idle.out" <<-EOF
			CALL release_expired_orders($timeout_min, 100) \g /dev/null
			SELECT pg_stat_force_next_flush() \g /dev/null
			SELECT blks_hit + blks_read AS b0 FROM pg_stat_database WHERE datname = current_database() \gset
			SELECT pg_stat_force_next_flush() \g /dev/null
			SELECT blks_hit + blks_read AS b1 FROM pg_stat_database WHERE datname = current_database() \gset
			SELECT pg_stat_force_next_flush() \g /dev/null
			SELECT blks_hit + blks_read AS b2 FROM pg_stat_database WHERE datname = current_database() \gset
			\timing on
			CALL release_expired_orders($timeout_min, 100) \g /dev/null
			\timing off
			SELECT pg_stat_force_next_flush() \g /dev/null
			SELECT 'blocks', blks_hit + blks_read - :b2 - (:b2 - :b1) FROM pg_stat_database WHERE datname = current_database();
		EOF
		warm_ms=$(timing_ms <"$scratch/idle.out")
		blocks=$(awk -F'|' '$1 == "blocks" {print $2}' "$scratch/idle.out")
		log "nothing to do, $1 orders, $index index: candidate query $buf buffers, $plan_ms ms; CALL median $call_ms ms (fresh sessions), $warm_ms ms and $blocks blocks (warm session)"
		idle_rows+=("$1|$index|$buf|$plan_ms|$call_ms|$warm_ms|$blocks")
	done
	# the same data, index present, no payment windows
	nothing_case $db "$1" "none"
	psql_ -d postgres -c "DROP DATABASE $db WITH (FORCE)"
	# many order types, long windows, orders waiting in them
	build_template $db "$1" 1 0 "$types" "$waiting"
	idle_setup $db
	psql_ -d $db -c "$typed_index" -c "ANALYZE public.orders"
	psql_ -d postgres -c CHECKPOINT
	nothing_case $db "$1" "$types types, $waiting% of orders waiting in windows"
	psql_ -d postgres -c "DROP DATABASE $db WITH (FORCE)"
}
idle_case "$orders"

#----------------------------------------------------------------------------
# Contention: payments and purchases at a fixed rate, with and without a drain
#----------------------------------------------------------------------------
pgb_dur=$(awk -v ms="${med[ext]}" -v s=$smoke 'BEGIN {d = int(ms / 1000 * 3) + 8; if (s) d = int(ms / 1000 * 3) + 5; print d}')
drain_at=3
# count, p99 and max latency (ms) of each script (0 payments on other
# orders, 1 purchases, 2 late payments) for transactions started in
# [from, to] seconds after t0, from pgbench's per-transaction logs.
latencies() {	# latencies <prefix> <t0> <from> <to>
	cat "$1".* | awk -v t0="$2" -v a="$3" -v b="$4" '
		{ lat = $3 / 1000; end = $5 + $6 / 1e6; start = end - $3 / 1e6 - t0
		  if (start >= a && start <= b) print $4, lat }' |
	sort -k1,1n -k2,2g | awk '
		{ n[$1]++; v[$1, n[$1]] = $2 }
		END { for (s = 0; s <= 2; s++) { c = n[s]; if (!c) { printf "0 - - "; continue }
			  i = int(c * 0.99); if (i < c * 0.99) i++; printf "%d %.1f %.1f ", c, v[s, i], v[s, c] } print "" }'
}
contention() {	# contention <base|drain|drain100|runs100|runs100async|floor>: prints "t_from t_to drain_ms | pay n p99 max | buy n p99 max | late n p99 max"
	local prefix=$scratch/pgb_$1 t0 t1 a b pid dms spid
	rm -f "$prefix".*
	fresh_copy $tmpl $copy
	t0=$(now_s)
	pgbench -n -d $copy -c 4 -j 2 -R $rate -T $pgb_dur -D norders=$orders -l --log-prefix="$prefix" \
		-f "$here/pay.sql@54" -f "$here/buy.sql@40" -f "$here/pay_late.sql@6" >"$scratch/pgb_$1.out" 2>&1 &
	pid=$!
	sleep $drain_at
	# what the application's sessions wait for, sampled every 10 ms
	psql_ -d $copy -At >"$scratch/waits_$1" <<-EOF &
		CREATE TEMP TABLE w (e text);
		DO \$\$ BEGIN FOR i IN 1..$((pgb_dur * 50)) LOOP
			PERFORM pg_stat_clear_snapshot();
			INSERT INTO w SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU')
				FROM pg_stat_activity WHERE application_name = 'pgbench' AND state = 'active';
			PERFORM pg_sleep(0.01);
			EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'pgbench');
		END LOOP; END \$\$;
		SELECT string_agg(e || ' ' || n, ', ' ORDER BY n DESC) FROM (SELECT e, count(*) AS n FROM w GROUP BY e) s;
	EOF
	spid=$!
	a=$(awk -v t0="$t0" -v t="$(now_s)" 'BEGIN {printf "%.3f", t - t0}')
	case $1 in
	drain)
		dms=$(psql_ -d $copy -c '\timing on' -c "CALL release_expired_orders($timeout_min, $batch)" | timing_ms) ;;
	drain100)
		dms=$(psql_ -d $copy -c "SET release_expired_orders.chunk_size = 100" -c '\timing on' \
			-c "CALL release_expired_orders($timeout_min, $batch)" | timing_ms) ;;
	runs100)	# the defaults: CALL with batch_limit 100, repeated until nothing is left
		t1=$(now_s)
		psql_ -d $copy -f "$scratch/ext100.sql" >/dev/null
		dms=$(ms_since "$t1") ;;
	runs100async)	# the same, the job's session with synchronous_commit = off
		t1=$(now_s)
		PGOPTIONS="-c synchronous_commit=off" psql_ -d $copy -f "$scratch/ext100.sql" >/dev/null
		dms=$(ms_since "$t1") ;;
	floor)
		dms=$(psql_ -d $copy -f "$here/sql/floor_prepare.sql" -c '\timing on' \
			-c "EXECUTE floor_release($timeout_min, $batch)" | timing_ms) ;;
	esac
	if [ "$1" = base ]; then
		read -r a b dms <"$scratch/drain_window"
	else
		b=$(awk -v t0="$t0" -v t="$(now_s)" 'BEGIN {printf "%.3f", t - t0}')
		[ "$1" = drain ] && echo "$a $b $dms" >"$scratch/drain_window"
	fi
	wait $pid || { cat "$scratch/pgb_$1.out" >&2; fail "pgbench ($1) failed"; }
	wait $spid || true
	echo "$a $b $dms $(latencies "$prefix" "$t0" "$a" "$b")"
}
log "contention: pgbench -R $rate for ${pgb_dur}s, drain from ${drain_at}s"
declare -A cont
for c in drain base runs100 runs100async drain100 floor; do
	cont[$c]=$(contention $c)
	log "contention $c: ${cont[$c]}; waits: $(cat "$scratch/waits_$c")"
done
cont_drain=${cont[drain]}
cont_base=${cont[base]}

#----------------------------------------------------------------------------
# Memory of the backend during a drain
#----------------------------------------------------------------------------
declare -a mem_rows=()
memory() {	# memory <batch_limit> <chunk_size>
	local pidfile=$scratch/mem.pid pid psql_pid peak_anon=0 peak_hwm=0 start_anon="" line anon hwm
	rm -f "$pidfile"
	fresh_copy $tmpl $copy
	psql_ -d $copy -At >/dev/null <<-EOF &
		SET release_expired_orders.chunk_size = $2;
		SELECT pg_backend_pid() \g $pidfile
		SELECT pg_sleep(0.5);
		CALL release_expired_orders($timeout_min, $1);
		SELECT pg_sleep(0.3);
	EOF
	psql_pid=$!
	while [ ! -s "$pidfile" ]; do sleep 0.02; done
	pid=$(cat "$pidfile")
	while kill -0 $psql_pid 2>/dev/null; do
		line=$(awk '/^RssAnon|^VmHWM/ {printf "%s ", $2}' /proc/"$pid"/status 2>/dev/null) || break
		read -r hwm anon <<<"$line"
		[ -z "${anon:-}" ] && break
		[ -z "$start_anon" ] && start_anon=$anon
		[ "$anon" -gt $peak_anon ] && peak_anon=$anon
		[ "$hwm" -gt $peak_hwm ] && peak_hwm=$hwm
		sleep 0.01
	done
	wait $psql_pid
	log "memory: batch_limit $1, chunk_size $2: RssAnon $start_anon kB before, peak $peak_anon kB; VmHWM $peak_hwm kB"
	mem_rows+=("$1|$2|$start_anon|$peak_anon|$peak_hwm")
}
memory "$batch" 1000
memory 10000 1000
memory 1000 1000
memory "$batch" 10000

#----------------------------------------------------------------------------
# Nothing to do on the large data set
#----------------------------------------------------------------------------
if [ "$big" -gt 0 ]; then
	log "building the large nothing-to-do case: $big orders"
	idle_case "$big"
fi
psql_ -d postgres -c "DROP DATABASE IF EXISTS $copy"

#----------------------------------------------------------------------------
# Report
#----------------------------------------------------------------------------
yes_no() { if awk "BEGIN {exit !($1)}"; then echo "met"; else echo "**missed**"; fi; }
field() { echo "$1" | awk -v i="$2" '{print $i}'; }
md=$scratch/results.md.tmp
{
	echo "# release_expired_orders benchmark"
	echo
	echo "Generated by \`test/bench/run.sh$([ $smoke = 1 ] && echo ' --smoke')$([ $durable = 1 ] && echo ' --durable') --orders $orders --reps $reps --big $big\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
	echo
	echo "- Machine: $machine"
	echo "- Server: $(val -d postgres -c 'SHOW server_version'); $settings; clients connect to ${PGHOST:-the default socket}"
	echo "- JIT: $jit_info; shared_preload_libraries=$preload"
	echo "- Extension: $(val -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'release_expired_orders'") ($(git -c safe.directory='*' -C "$here" log -1 --format='%h %s' 2>/dev/null || echo 'commit unknown'); installed library built $(stat -c %y "$( (pg_config --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib) | tail -1)/release_expired_orders.so" 2>/dev/null | cut -c1-19) UTC)"
	[ -z "$library" ] || echo "- **Library under test: $library** (not the installed one)"
	[ -z "$template_sql" ] || echo "- **Extra SQL in the template: $template_sql**"
	echo "- Data: $orders orders ($expired expired and pending, 43% paid with status still 'pending', 2% recent pending, 45% closed), 10,000 products, 2,000 rounds, skewed to popular ones; the recommended partial index present for the throughput runs. Each approach on a fresh copy of one template; median of $reps."
	echo
	echo "## Throughput: releasing $expired expired orders"
	echo
	echo "| approach | orders | median time | orders/s | time / floor | throughput / old design |"
	echo "|---|---:|---:|---:|---:|---:|"
	for a in old plpgsql floor floorchunk ext extc100 ext100 floor100; do
		n=$expired; fl=${med[floor]}; t=${med[$a]}
		[ $a = old ] && { n=$sample; t=$old_full_ms; }
		case $a in ext100|floor100) fl=${med[floor100]} ;; esac
		printf '| %s | %s | %s | %s | %s | %s |\n' "${label[$a]}" "$n" \
			"$(awk -v t="${med[$a]}" 'BEGIN {printf "%.2f s", t / 1000}')$([ $a = old ] && echo " (all $expired: $(awk -v t=$old_full_ms 'BEGIN {printf "%.0f s", t / 1000}'))")" \
			"${ops[$a]}" "$(ratio "$t" "$fl")" "$(ratio "${ops[$a]}" "${ops[old]}")"
	done
	echo
	echo "Runs of 100 are compared with the floor run the same way ((6)); the others with the floor drain ((3)). All times: $(for a in "${approaches[@]}"; do printf '%s:%s ms; ' "$a" "$(echo ${ms_list[$a]} | tr ' ' ',')"; done)"
	echo
	echo "## Nothing to do: a CALL that finds nothing"
	echo
	echo "Buffers and time of the candidate query (EXPLAIN (ANALYZE, BUFFERS), warm); the CALL's time in a fresh session each (as pg_cron runs it; median of 5), and in a warm session with the blocks it touched (pg_stat_database: run row, locks and the scan)."
	echo
	echo "| orders | partial index | candidate query buffers | candidate query time | CALL, fresh session | CALL, warm session | blocks touched by the warm CALL |"
	echo "|---:|---|---:|---:|---:|---:|---:|"
	for r in "${idle_rows[@]}"; do
		IFS='|' read -r o ix b p c w k <<<"$r"
		echo "| $o | $ix | $b | $p ms | $c ms | $w ms | $k |"
	done
	echo
	echo "## Nothing to do on the application's data: the job, the worker's look, a scrape"
	echo
	echo "With the server's defaults (JIT: $jit_info) and the recommended index: \`(created_at, id)\` without payment windows, \`(type, created_at, id) INCLUDE (payment_method)\` with them (windows per payment method) (both \`WHERE $pend\`). Without windows: the data above (five order types). With windows: $types order types besides the application's (half of the orders), each with payment windows of 1 to 7 days or none (\`release_expired_orders.payment_windows\`, $(( types + types / 2 )) rows), and $waiting% of the orders pending inside them (some never due). The database sets \`release_expired_orders.timeout_minutes = $timeout_min\`."
	echo
	echo "| orders | payment windows | statement | time | shared blocks per call | JIT functions | JIT time |"
	echo "|---:|---|---|---:|---:|---:|---:|"
	for r in "${nothing_rows[@]}"; do
		IFS='|' read -r o w st t b f j why <<<"$r"
		echo "| $o | $w | $st$([ -z "${why:-}" ] || echo " — not measured: $why") | $t$([ "$t" = - ] || echo ' ms') | $b | $f | $j$([ "$j" = '?' ] || echo ' ms') |"
	done
	echo
	echo "Times: pgbench's average latency in one warm session ($pgbench_s s for the CALL, $short_s s for the others); the fresh CALL is \`pgbench -C\` (a new connection each, as pg_cron runs it) less \`SELECT 1\` the same way, the mean of two pairs run side by side. The worker's look: the median of the durations the deadline worker logs at DEBUG1 (from before its first read of the next deadline to after its read of the shortest window or the next deadline past stuck orders), woken every 100 ms for $look_s s while it serves the database. Blocks and JIT: pg_stat_statements with \`track = all\` (every statement the job and the functions run inside, not only the top one), 5 calls after one to warm the caches; for the look, per look, over the worker's statements. \`?\`: pg_stat_statements not preloaded."
	echo
	echo "## Contention: payments and purchases at $rate/s (pgbench, 4 clients)"
	echo
	echo "Transactions started while the drain ran (from second $(field "$cont_drain" 1) of the run until it ended), and seconds $(field "$cont_drain" 1)–$(field "$cont_drain" 2) of a run without a drain. Payments on other orders: on recent pending orders, which no drain releases; late payments (1 in 10 payments): on an expired order, one the drain is releasing, so they may wait for its chunk (once the order is released they change nothing); purchases: stock and shares of popular products and rounds, and a new order."
	echo
	echo "| run | drain time | payments on other orders | their p99 | their max | purchases | purchases p99 | purchases max | late payments | their p99 | longest wait | what the application's sessions waited for (10 ms samples) |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for r in "without drain|${cont[base]}|base" "during runs of 100, repeated (the defaults)|${cont[runs100]}|runs100" \
		"during runs of 100, the job's session with synchronous_commit = off|${cont[runs100async]}|runs100async" \
		"during a drain with chunk_size 100 (batch_limit $batch)|${cont[drain100]}|drain100" \
		"during a drain with chunk_size 1000 (batch_limit $batch)|${cont[drain]}|drain" "during the floor drain (one statement)|${cont[floor]}|floor"; do
		IFS='|' read -r name v c <<<"$r"
		echo "| $name | $([ $c = base ] && echo - || echo "$(field "$v" 3) ms") | $(field "$v" 4) | $(field "$v" 5) ms | $(field "$v" 6) ms | $(field "$v" 7) | $(field "$v" 8) ms | $(field "$v" 9) ms | $(field "$v" 10) | $(field "$v" 11) ms | $(field "$v" 12) ms | $(cat "$scratch/waits_$c") |"
	done
	echo
	echo "## Memory of the backend during a drain"
	echo
	echo "| batch_limit | chunk_size | RssAnon before | RssAnon peak | VmHWM peak (includes shared buffers touched) |"
	echo "|---:|---:|---:|---:|---:|"
	for r in "${mem_rows[@]}"; do
		IFS='|' read -r b c s p h <<<"$r"
		echo "| $b | $c | $s kB | $p kB | $h kB |"
	done
	echo
	echo "## Targets"
	echo
	echo "| target | measured | |"
	echo "|---|---|---|"
	x=$(ratio "${med[ext]}" "${med[floor]}")
	echo "| drain within 1.15x the floor | $x x | $(yes_no "$x <= 1.15") |"
	x=$(ratio "${med[ext]}" "${med[floorchunk]}")
	echo "| (context) drain vs the floor run in the same chunks of 1000, each its own transaction | $x x | - |"
	x=$(ratio "${med[extc100]}" "${med[ext]}")
	echo "| a drain in chunks of 100 within 1.3x a drain in chunks of 1000 | $x x | $(yes_no "$x <= 1.3") |"
	x=$(ratio "${med[floor100]}" "${med[floorchunk]}")
	echo "| (context) the floor in statements of 100 vs of 1000, each its own transaction | $x x | - |"
	x=$(ratio "${med[ext]}" "${med[plpgsql]}")
	echo "| drain faster than the PL/pgSQL loop | $x x its time | $(yes_no "$x < 1") |"
	x=$(ratio "${ops[ext]}" "${ops[old]}")
	echo "| drain >= 35x the old design's throughput | $x x | $(yes_no "$x >= 35") |"
	x=$(ratio "${med[ext100]}" "${med[floor100]}")
	echo "| runs of 100 within 1.3x the floor run the same way | $x x | $(yes_no "$x <= 1.3") |"
	if [ ${#idle_rows[@]} -ge 4 ]; then
		s=$(echo "${idle_rows[1]}" | cut -d'|' -f5); l=$(echo "${idle_rows[3]}" | cut -d'|' -f5)
		x=$(ratio "$l" "$s")
		echo "| nothing-to-do flat from $orders to $big orders with the index (within 1.5x), CALL in a fresh session | $x x ($s ms vs $l ms) | $(yes_no "$x <= 1.5") |"
	else
		echo "| nothing-to-do flat from 1M to 10M with the index | large case not run | - |"
	fi
	# nothing_rows: per case (orders, windows) five or so rows, in the same
	# order for every case; a target per row kind and case, and 1M vs 10M
	nothing_target() {	# nothing_target <row prefix> <limit ms> <what>
		local r o w st t b f j why small="" smallw=""
		for r in "${nothing_rows[@]}"; do
			IFS='|' read -r o w st t b f j why <<<"$r"
			case "$st" in "$1"*) ;; *) continue ;; esac
			if [ "$t" = - ]; then
				echo "| $3 ($o orders, windows: $w) | not measured${why:+: $why} | - |"
				continue
			fi
			echo "| $3 ($o orders, windows: $w) | $t ms$([ "$f" = 0 ] || [ "$f" = '?' ] || echo ", JIT: $f functions") | $(yes_no "$t <= $2") |"
		done
		for w in $(for r in "${nothing_rows[@]}"; do IFS='|' read -r o w _ <<<"$r"; echo "$w"; done | sort -u | tr ' ' '_'); do
			local ts=() os=()
			for r in "${nothing_rows[@]}"; do
				IFS='|' read -r o ww st t _ <<<"$r"
				[ "${ww// /_}" = "$w" ] || continue
				case "$st" in "$1"*) ;; *) continue ;; esac
				[ "$t" = - ] && continue
				ts+=("$t"); os+=("$o")
			done
			[ ${#ts[@]} -ge 2 ] || continue
			local x; x=$(ratio "${ts[1]}" "${ts[0]}")
			echo "| $3: ${os[1]} within 1.5x of ${os[0]} orders (windows: ${w//_/ }) | $x x (${ts[0]} ms vs ${ts[1]} ms) | $(yes_no "$x <= 1.5") |"
		done
	}
	nothing_target "CALL, warm" 1 "a call that finds nothing: at most 1 ms in a warm session"
	nothing_target "CALL, fresh" 5 "a call that finds nothing: at most 5 ms over SELECT 1 in a fresh session (pgbench -C)"
	nothing_target "the deadline worker's look" 5 "the worker's look: at most 5 ms"
	nothing_target "one scrape" 5 "a scrape of metrics: at most 5 ms"
	jits=$(for r in "${nothing_rows[@]}"; do IFS='|' read -r _ _ _ _ _ f _ <<<"$r"; echo "$f"; done | grep -v '^?$' | awk '$1 > 0' | wc -l)
	echo "| none of these statements is JIT-compiled | $([ $pgss = 1 ] && echo "$jits of ${#nothing_rows[@]} rows JIT-compiled" || echo 'not measured (pg_stat_statements not preloaded)') | $([ $pgss = 1 ] && yes_no "$jits == 0" || echo -) |"
	cr=${cont[runs100]}
	pb=$(field "$cont_base" 5); pd=$(field "$cr" 5); pk=$(field "$cont_drain" 5); pa=$(field "${cont[runs100async]}" 5)
	x=$(ratio "$pd" "$pb")
	echo "| payments on orders not being released, p99 at most 1.5x during a drain with the defaults (runs of 100) | $x x ($pb ms vs $pd ms) | $(yes_no "$x <= 1.5") |"
	echo "| (context) the same during a drain in chunks of 1000 | $(ratio "$pk" "$pb") x ($pk ms) | - |"
	echo "| (context) the same during runs of 100 with synchronous_commit = off for the job | $(ratio "$pa" "$pb") x ($pa ms) | - |"
	pb=$(field "$cont_base" 8); pd=$(field "$cr" 8); pk=$(field "$cont_drain" 8); pa=$(field "${cont[runs100async]}" 8)
	x=$(ratio "$pd" "$pb")
	echo "| purchases of hot products, p99 at most 2x during a drain with the defaults | $x x ($pb ms vs $pd ms) | $(yes_no "$x <= 2") |"
	echo "| (context) the same during a drain in chunks of 1000 | $(ratio "$pk" "$pb") x ($pk ms) | - |"
	echo "| (context) the same during runs of 100 with synchronous_commit = off for the job | $(ratio "$pa" "$pb") x ($pa ms) | - |"
	x=$(field "$cr" 12)
	echo "| late payments on orders being released wait at most ~10 ms with the defaults | longest $x ms | $(yes_no "${x/-/0} <= 10") |"
	echo "| (context) the same during a drain in chunks of 1000 | longest $(field "$cont_drain" 12) ms | - |"
	mx=$(for c in runs100 runs100async drain100 drain; do v=${cont[$c]}; echo "$(field "$v" 6) $(field "$v" 9) $(field "$v" 12)"; done | tr ' ' '\n' | grep -v '^-$' | sort -g | tail -1)
	echo "| none waits longer than lock_timeout (5 s), in any of the extension's drains | max $mx ms | $(yes_no "$mx < 5000") |"
	IFS='|' read -r _ _ _ p1 _ <<<"${mem_rows[0]}"; IFS='|' read -r _ _ _ p2 _ <<<"${mem_rows[1]}"
	x=$(ratio "$p1" "$p2")
	echo "| memory bounded by chunk_size, not batch_limit: peak RssAnon, batch_limit $batch vs 10000 (chunks of 1000) | $x x | $(yes_no "$x <= 1.5") |"
	IFS='|' read -r _ _ _ p3 _ <<<"${mem_rows[2]}"
	echo "| (context) batch_limit $batch vs 1000 (one chunk) | $(ratio "$p1" "$p3") x | - |"
	echo
	failures=$(wc -l <"$failfile")
	echo "Correctness: every approach that drained released the same orders and moved stock and shares by exactly what they carried, as the floor did: $([ "$failures" = 0 ] && echo yes || echo "**no, $failures failures**: $(tr '\n' ';' <"$failfile")")."
} >"$md"
cat "$md"

# chart
dat=$scratch/throughput.dat
for a in old plpgsql floor floorchunk ext extc100 floor100 ext100; do
	printf '"%s" %s\n' "${short[$a]}" "${ops[$a]}"
done >"$dat"
if command -v gnuplot >/dev/null; then
	gnuplot <<-EOF
		set terminal pngcairo size 1000,560 font ",10" noenhanced
		set output "$scratch/throughput.png"
		set title "release_expired_orders: orders released per second ($orders orders, $expired expired; median of $reps)"
		set style fill solid 0.8 border -1
		set boxwidth 0.6
		set logscale y
		set ylabel "orders/s (log scale)"
		set yrange [10:*]
		set grid ytics
		set xtics rotate by -20
		set bmargin 6
		set rmargin 10
		unset key
		plot "$dat" using 0:2:xtic(1) with boxes lc rgb "#4477aa", \
		     "" using 0:2:(sprintf("%d", \$2)) with labels offset 0,1
	EOF
	[ "$outdir" -ef "$scratch" ] || cp "$scratch/throughput.png" "$outdir/throughput.png"
else
	echo "run.sh: gnuplot not found; no chart (install the Debian package gnuplot-nox)"
fi
cp "$md" "$outdir/results.md"
rm -f "$md"
psql_ -d postgres -c "DROP DATABASE IF EXISTS $tmpl"
log "wrote $outdir/results.md$([ -f "$outdir/throughput.png" ] && echo " and throughput.png")"

failures=$(wc -l <"$failfile")
if [ "$failures" -gt 0 ]; then
	echo "run.sh: $failures check(s) failed"
	exit 1
fi
