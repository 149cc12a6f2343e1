#!/usr/bin/env bash
# Runs every suite on PostgreSQL 15 built with assertions (--enable-cassert):
# the regression and isolation suites (make installcheck), the hostile
# applications' CI seeds (test/hostile), the TAP tests (make tap) and the
# deadline worker's specs (test/worker_iso.sh).
#
#   bash test/cassert.sh          (as root, on Debian 12; also: test/matrix.sh cassert)
#
# The server is built from Debian's source package postgresql-15 (and
# pg_cron from pg-cron), with a private prefix cached outside the checkout
# in $REO_CASSERT_CACHE/cassert-15-HASH (default /var/cache/release_expired_orders),
# HASH naming the source versions and the configure flags: a second run
# reuses it.  Each run works on a copy of that prefix, so runs from other
# checkouts on the machine do not install over each other's extension.
# A failed assertion ("TRAP:" in a server log) counts as one failure
# each, shown with the log lines around it.  Ends with "N passed, N failed"
# (each pg_regress and isolation test, each TAP file, the worker specs as
# one) and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

cache=${REO_CASSERT_CACHE:-/var/cache/release_expired_orders}
srclist=/etc/apt/sources.list.d/release_expired_orders-src.list
# Bump when the way the cache is built changes, so old caches are not used.
recipe=2
configure_flags=(--enable-cassert --enable-debug --enable-tap-tests
	--with-openssl --with-icu --with-system-tzdata=/usr/share/zoneinfo
	--without-llvm)
build_pkgs=(bison flex gcc make perl libreadline-dev zlib1g-dev libssl-dev
	libicu-dev pkg-config libipc-run-perl dpkg-dev bzip2 xz-utils)
cluster_conf="shared_preload_libraries = 'pg_cron'
cron.database_name = 'contrib_regression'"

passed=0
failed=0
run=""
pgdata=""
runas=(runuser -u postgres --)

say() { echo "cassert: $*"; }

# finish: prints the count line and exits, non-zero on any failure.
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
	exit $?
}

# cleanup: the run's cluster is stopped if it was started; the run's
# copy of the server goes, and the rest of the run's directory goes too
# unless something failed (then its path is printed).
cleanup() {
	if [ -n "$pgdata" ] && [ -f "$pgdata/postmaster.pid" ]; then
		"${runas[@]}" "$run/pg/bin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1
	fi
	[ -n "$run" ] || return 0
	rm -rf "$run/pg"
	if [ "$failed" -eq 0 ]; then rm -rf "$run"; else say "logs kept in $run"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# source_uri: prints "URI [signed-by]" of the machine's apt source of the
# release's main suite ("deb" type, component main), read from
# /etc/apt/sources.list and sources.list.d, one-line or deb822 format.
# Prints nothing if there is none.
source_uri() {
	local suite=$1 f
	{
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] && [ "$f" != "$srclist" ] || continue
			# deb [options] URI suite component...
			awk -v s="$suite" '
				$1 == "deb" {
					signed = ""; i = 2
					if ($2 ~ /^\[/) {
						for (; i <= NF; i++) {
							if ($i ~ /^\[?signed-by=/) { signed = $i; sub(/^\[?signed-by=/, "", signed); sub(/\]$/, "", signed) }
							if ($i ~ /\]$/) { i++; break }
						}
					}
					if ($(i + 1) != s) next
					for (j = i + 2; j <= NF; j++) if ($j == "main") { print $i, signed; exit }
				}' "$f"
		done
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			# Paragraphs of "Field: value" lines; folded values are not used.
			awk -v s="$suite" '
				function check() {
					if (types ~ /(^| )deb( |$)/ && enabled != "no" &&
						(" " suites " ") ~ (" " s " ") && (" " comps " ") ~ / main /) {
						split(uris, u, " "); print u[1], signed; found = 1; exit
					}
					types = uris = suites = comps = signed = enabled = ""
				}
				/^[ \t]*$/ { check(); next }
				/^#/ { next }
				{
					name = tolower($1); sub(/:$/, "", name)
					val = $0; sub(/^[^:]*:[ \t]*/, "", val)
					if (name == "types") types = val
					else if (name == "uris") uris = val
					else if (name == "suites") suites = val
					else if (name == "components") comps = val
					else if (name == "signed-by") signed = val
					else if (name == "enabled") enabled = tolower(val)
				}
				END { if (!found) check() }' "$f"
		done
	} | head -n 1
}

# ensure_sources: apt knows the source packages postgresql-15 and pg-cron
# of the release's main suite (a deb-src line of the machine's own mirror
# in $srclist); sets pg_version and cron_version.  Returns non-zero if not.
ensure_sources() {
	local suite uri signed line
	suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
	read -r uri signed <<<"$(source_uri "$suite")"
	if [ -z "$uri" ]; then
		say "no apt source of $suite main in /etc/apt/sources.list{,.d}"
		return 1
	fi
	line="deb-src ${signed:+[signed-by=$signed] }$uri $suite main"
	if [ "$(cat "$srclist" 2>/dev/null)" != "$line" ]; then
		say "adding to $srclist: $line"
		echo "$line" >"$srclist"
		apt-get update -qq || return 1
	fi
	pg_version=$(src_version postgresql-15)
	cron_version=$(src_version pg-cron)
	if [ -z "$pg_version" ] || [ -z "$cron_version" ]; then
		apt-get update -qq || return 1
		pg_version=$(src_version postgresql-15)
		cron_version=$(src_version pg-cron)
	fi
	[ -n "$pg_version" ] && [ -n "$cron_version" ]
}

# src_version <source package>: the newest version apt has of it.
src_version() {
	local v best=""
	for v in $(apt-cache showsrc --only-source "$1" 2>/dev/null | awk '/^Version:/ { print $2 }'); do
		if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
	done
	echo "$best"
}

# install_build_deps: what configure, the builds and the TAP tests need.
install_build_deps() {
	local missing=() p
	for p in "${build_pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build_server <dir> <spec>: <dir> holds PostgreSQL and pg_cron as <spec>
# says, complete, with <spec> in <dir>/.reo-cassert (and how pg_cron was
# made in <dir>/.reo-cassert-pg_cron).  Built in <dir>.new
# (installed there with DESTDIR) and renamed at the end, so that <dir> is
# never half built; a build that fails leaves <dir> as it was.
build_server() {
	local dir=$1 spec=$2 new=$1.new log=$1.build.log
	local stage=$1.new/stage
	rm -rf "$new"; mkdir -p "$new"
	say "building PostgreSQL $pg_version and pg_cron $cron_version with assertions into $dir (log: $log)"
	if ! build_postgres "$dir" "$new" "$stage" >"$log" 2>&1 ||
		! check_dirs "$stage$dir/bin/pg_config" "$stage$dir" >>"$log" 2>&1 ||
		! build_pg_cron "$new" "$stage$dir/bin/pg_config" >>"$log" 2>&1 ||
		! check_install "$stage$dir/bin/pg_config" "$stage$dir" >>"$log" 2>&1; then
		tail -n 40 "$log"
		say "build failed (log: $log)"
		rm -rf "$new"
		return 1
	fi
	grep -E '^pg_cron:' "$log" | tee "$stage$dir/.reo-cassert-pg_cron"
	echo "$spec" >"$stage$dir/.reo-cassert"
	rm -rf "$dir"
	mv "$stage$dir" "$dir"
	rm -rf "$new"
	say "built in $((SECONDS - build_start)) s"
}

# build_postgres <prefix> <workdir> <stage>: Debian's postgresql-15 source
# (with Debian's patches) unpacked in <workdir>, configured for <prefix>,
# built and installed under <stage> (DESTDIR): the server, the PGXS files,
# pg_regress, pg_isolation_regress and isolationtester (what PGXS ISOLATION
# runs) and the TAP test modules.  No docs, no contrib.  Nothing is
# installed outside <stage><prefix>.
build_postgres() {
	local prefix=$1 work=$2 stage=$3 src
	(
		cd "$work" || exit 1
		apt-get source -qq "postgresql-15=$pg_version" || exit 1
		src=$(find "$work" -maxdepth 1 -type d -name 'postgresql-15-*' | head -n 1)
		cd "$src" || exit 1
		# Debian's patch 50-per-version-dirs puts the server's modules in
		# /usr/lib/postgresql/15/lib unless libdir names "postgres": the
		# libdir does, so they stay in the prefix.
		./configure --prefix="$prefix" --libdir="$prefix/lib/postgresql" \
			"${configure_flags[@]}" || exit 1
		make -j2 || exit 1
		make install DESTDIR="$stage" || exit 1
		if [ -n "$(find "$stage" -path "$stage$prefix" -prune -o ! -type d -print)" ]; then
			echo "installed outside $prefix:"
			find "$stage" -path "$stage$prefix" -prune -o ! -type d -print
			exit 1
		fi
	)
}

# build_pg_cron <workdir> <pg_config>: pg_cron installed where <pg_config>
# says (PostgreSQL finds its files relative to its binaries: the staged
# pg_config names the staged directories).  Built from Debian's source
# package pg-cron; if the mirror does not serve that source, the library
# and extension files of Debian's binary package postgresql-15-cron (built
# against Debian's PostgreSQL 15 without assertions, which the server loads
# all the same) are copied instead.  Prints "pg_cron: <what was used>".
build_pg_cron() {
	local work=$1 pgc=$2 src deb
	if (cd "$work" && apt-get source -qq "pg-cron=$cron_version"); then
		src=$(find "$work" -maxdepth 1 -type d -name 'pg-cron-*' | head -n 1)
		make -C "$src" -j2 PG_CONFIG="$pgc" || return 1
		make -C "$src" install PG_CONFIG="$pgc" || return 1
		echo "pg_cron: built from source package pg-cron $cron_version"
		return 0
	fi
	echo "no source of pg-cron $cron_version on the mirror: using the binary package"
	mkdir -p "$work/deb" || return 1
	(cd "$work/deb" && apt-get download -qq postgresql-15-cron) || return 1
	deb=$(ls "$work"/deb/postgresql-15-cron_*.deb) || return 1
	dpkg-deb -x "$deb" "$work/deb/root" || return 1
	cp "$work"/deb/root/usr/lib/postgresql/15/lib/pg_cron.so "$("$pgc" --pkglibdir)/" || return 1
	cp "$work"/deb/root/usr/share/postgresql/15/extension/pg_cron* "$("$pgc" --sharedir)/extension/" || return 1
	echo "pg_cron: copied from binary package $(basename "$deb") (its source is not on the mirror)"
}

# check_dirs <pg_config> <prefix>: the directories <pg_config> names (where
# PGXS installs) are all in <prefix>.
check_dirs() {
	local d
	for d in "$("$1" --bindir)" "$("$1" --pkglibdir)" "$("$1" --sharedir)" \
		"$("$1" --pgxs)" "$("$1" --includedir-server)"; do
		case "$d" in
			"$2"/*) ;;
			*) echo "pg_config names a directory outside $2: $d"; return 1 ;;
		esac
	done
}

# check_install <pg_config> <prefix>: check_dirs, and what the suites need
# is installed.
check_install() {
	local lib
	check_dirs "$1" "$2" || return 1
	lib=$("$1" --pkglibdir)
	test -x "$lib/pgxs/src/test/regress/pg_regress" &&
	test -x "$lib/pgxs/src/test/isolation/pg_isolation_regress" &&
	test -x "$lib/pgxs/src/test/isolation/isolationtester" &&
	test -f "$lib/pgxs/src/test/perl/PostgreSQL/Test/Cluster.pm" &&
	test -f "$lib/pg_cron.so" &&
	test -f "$("$1" --sharedir)/extension/pg_cron.control"
}

# server: sets prefix to a complete cached build of the current spec,
# building it unless it is there, under a lock (one build at a time).
server() {
	local spec hash lockfd
	ensure_sources || { say "cannot find the source packages"; return 1; }
	spec="postgresql-15 $pg_version pg-cron $cron_version configure ${configure_flags[*]} recipe $recipe"
	hash=$(printf '%s' "$spec" | md5sum | cut -c1-8)
	prefix=$cache/cassert-15-$hash
	mkdir -p "$cache"
	exec {lockfd}>"$prefix.lock"
	flock "$lockfd"
	if [ -f "$prefix/.reo-cassert" ] && [ "$(cat "$prefix/.reo-cassert")" = "$spec" ]; then
		say "reusing $prefix (PostgreSQL $pg_version, pg_cron $cron_version)"
		cat "$prefix/.reo-cassert-pg_cron" 2>/dev/null
	else
		install_build_deps || { exec {lockfd}>&-; return 1; }
		build_start=$SECONDS
		build_server "$prefix" "$spec" || { exec {lockfd}>&-; return 1; }
	fi
	# The run's own copy of the server, which the postgres user owns (it
	# installs the extension there).
	run=$(mktemp -d /tmp/release_expired_orders-cassert.XXXXXX)
	cp -a "$prefix" "$run/pg"
	exec {lockfd}>&-
	mkdir -p "$run/reo" "$run/logs" "$run/sock"
	chown -R postgres: "$run"
}

# build_extension: the checkout (without what git ignores) copied to
# $run/reo, built with assertions and -Werror against the run's server,
# and installed there.
build_extension() {
	tar -C "$top" --exclude-vcs --exclude-vcs-ignores -cf - . | tar -C "$run/reo" -xf -
	chown -R postgres: "$run/reo"
	echo "=== build (make ASSERTS=1 WERROR=1)"
	if ! (cd "$run/reo" && "${runas[@]}" make PG_CONFIG="$pgc" ASSERTS=1 WERROR=1 &&
		"${runas[@]}" make PG_CONFIG="$pgc" install) >"$run/logs/build.log" 2>&1; then
		cat "$run/logs/build.log"
		say "build failed"
		return 1
	fi
	grep -E 'warning:' "$run/logs/build.log" || true
}

# free_port <from>: the first TCP port from <from> on that nothing listens on.
free_port() {
	local p
	for ((p = $1; p < $1 + 200; p++)); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"; return 0
		fi
	done
	echo "$1"
}

# start_cluster: a throwaway cluster of the run's server with pg_cron
# preloaded, listening on a socket in $run/sock and a free port; PGHOST
# and PGPORT name it.  Its log is $run/logs/server.log.
start_cluster() {
	pgdata=$run/data
	export PGHOST=$run/sock PGPORT
	PGPORT=$(free_port 55115)
	"${runas[@]}" "$run/pg/bin/initdb" -D "$pgdata" -A trust -E UTF8 --locale=C.UTF-8 \
		>"$run/logs/initdb.log" 2>&1 || { cat "$run/logs/initdb.log"; return 1; }
	cat >>"$pgdata/postgresql.conf" <<CONF
$cluster_conf
port = $PGPORT
listen_addresses = ''
unix_socket_directories = '$PGHOST'
fsync = off
CONF
	"${runas[@]}" "$run/pg/bin/pg_ctl" -D "$pgdata" -l "$run/logs/server.log" -w start \
		>/dev/null || { cat "$run/logs/server.log"; return 1; }
}

# count_regress <log>: add a log's pg_regress and isolation results.
count_regress() {
	local ok bad
	ok=$(grep -cE '(\.\.\. ok|^ok [0-9]+ +[-+] )' "$1")
	bad=$(grep -cE '(\.\.\. (FAILED|failed)|^not ok [0-9]+ +[-+] )' "$1")
	passed=$((passed + ok)); failed=$((failed + bad))
}

# installcheck <label> <make variables...>: one make installcheck; its
# tests counted, one failure more if it failed without a failed test.
installcheck() {
	local label=$1 before=$failed rc; shift
	echo "=== $label (make installcheck $*)"
	(cd "$run/reo" && "${runas[@]}" env PGHOST="$PGHOST" PGPORT="$PGPORT" \
		make installcheck PG_CONFIG="$pgc" "$@") >"$run/logs/$label.log" 2>&1
	rc=$?
	cat "$run/logs/$label.log"
	count_regress "$run/logs/$label.log"
	if [ $rc -ne 0 ]; then
		cat "$run/reo/regression.diffs" "$run/reo/output_iso/regression.diffs" 2>/dev/null
		[ $failed -eq $before ] && failed=$((failed + 1))
	fi
}

# tap: make tap, each test/t file counted.
tap() {
	local before=$failed rc ok bad
	echo "=== TAP (make tap)"
	(cd "$run/reo" && "${runas[@]}" env -u PGHOST -u PGPORT make tap PG_CONFIG="$pgc") \
		>"$run/logs/tap.log" 2>&1
	rc=$?
	cat "$run/logs/tap.log"
	ok=$(grep -cE '^test/t/\S+ \.+ ok' "$run/logs/tap.log")
	bad=$(grep -cE '^test/t/\S+ \.+ (Dubious|Failed|not ok)' "$run/logs/tap.log")
	passed=$((passed + ok)); failed=$((failed + bad))
	[ $rc -ne 0 ] && [ $failed -eq $before ] && failed=$((failed + 1))
}

# worker_iso: test/worker_iso.sh, one pass or fail; its instance's log is
# kept in $run/logs/worker_iso.
worker_iso() {
	echo "=== deadline worker isolation specs (test/worker_iso.sh)"
	mkdir -p "$run/logs/worker_iso"; chown postgres: "$run/logs/worker_iso"
	if (cd "$run/reo" && "${runas[@]}" env -u PGHOST PGPORT="$(free_port 55135)" \
		PG_CONFIG="$pgc" REO_SERVER_LOGS="$run/logs/worker_iso" test/worker_iso.sh); then
		passed=$((passed + 1)); echo "ok - worker_iso"
	else
		failed=$((failed + 1)); echo "not ok - worker_iso"
	fi
}

# hostile: the hostile-application generator's CI seeds (test/hostile), one
# pass or fail, on the running cluster: its triggers, types and errors reach
# code paths no other suite does, under the server's assertions.
hostile() {
	echo "=== hostile applications (test/hostile/run.sh --ci)"
	if (cd "$run/reo" && "${runas[@]}" env PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres \
		test/hostile/run.sh --ci --server-log "$run/logs/server.log"); then
		passed=$((passed + 1)); echo "ok - hostile"
	else
		failed=$((failed + 1)); echo "not ok - hostile"
	fi
}

# resolve_frames: reads backtrace lines ("OBJECT(SYMBOL+0xOFF)[0xADDR]", as
# PostgreSQL prints them after "TRAP:") on stdin, and prints where each
# frame of the extension or of the server is ("FUNCTION at FILE:LINE", by
# addr2line on the run's builds).  Other libraries' frames are left out.
resolve_frames() {
	local line obj sym off base
	while IFS= read -r line; do
		[[ $line =~ \(([A-Za-z0-9_]*)\+0x([0-9a-f]+)\)\[0x[0-9a-f]+\]$ ]] || continue
		sym=${BASH_REMATCH[1]} off=${BASH_REMATCH[2]}
		obj=${line%%(*}
		case "$obj" in
			*/release_expired_orders.so) obj=$run/reo/release_expired_orders.so ;;
			*.so|*.so.*) continue ;;
			*) obj=$run/pg/bin/postgres ;;	# the process title, or its path
		esac
		base=0
		if [ -n "$sym" ]; then
			base=$(nm "$obj" 2>/dev/null | awk -v s="$sym" '$3 == s { print $1; exit }')
			[ -n "$base" ] || continue
			base=$((16#$base))
		fi
		# The frame's return address, less one: inside the call.
		echo "    $(addr2line -f -i -p -e "$obj" "$(printf '0x%x' $((base + 16#$off - 1)))" | paste -sd ' ')"
	done
}

# scan_traps: every "TRAP:" line of every server log of the run (the
# cluster's, the TAP tests', worker_iso's) is one failure, shown with the
# lines around it (the backtrace follows it) and the backtrace's source
# lines.  Crashes without one are shown, not counted (the tests that saw
# them failed).
scan_traps() {
	local logs=() f n
	for f in "$run/logs/server.log" "$run/reo/tmp_check/log"/*.log "$run/logs/worker_iso"/*; do
		[ -f "$f" ] && logs+=("$f")
	done
	echo "=== failed assertions in the server logs (${#logs[@]} logs)"
	n=0
	for f in "${logs[@]}"; do
		if grep -q 'TRAP:' "$f"; then
			n=$((n + $(grep -c 'TRAP:' "$f")))
			echo "--- $f"
			grep -n -B 5 -A 30 'TRAP:' "$f"
			echo "--- backtraces in source lines"
			grep -A 30 'TRAP:' "$f" | while IFS= read -r line; do
				case "$line" in
					TRAP:*) echo "$line" ;;
					*) resolve_frames <<<"$line" ;;
				esac
			done
		fi
		grep -HE 'terminated by signal|was terminated by exception' "$f" || true
	done
	failed=$((failed + n))
	echo "$n failed assertions"
}

[ "$(id -u)" = 0 ] || { say "run as root (apt-get, and the suites run as postgres)"; failed=1; finish; }

server || { failed=$((failed + 1)); finish; }
pgc=$run/pg/bin/pg_config
"$pgc" --version
"$pgc" --configure | tr ' ' '\n' | grep -E "cassert|debug|tap" | tr '\n' ' '; echo
build_extension || { failed=$((failed + 1)); finish; }
start_cluster || { say "cannot start the cluster"; failed=$((failed + 1)); finish; }
# The regression and the isolation suite one after the other, so that a
# failure in the first does not skip the second.
installcheck regress ISOLATION=
installcheck isolation REGRESS=
hostile
"${runas[@]}" "$run/pg/bin/pg_ctl" -D "$pgdata" -w stop >/dev/null
tap
worker_iso
scan_traps
finish
