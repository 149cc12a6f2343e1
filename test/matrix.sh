#!/usr/bin/env bash
# Builds and tests the extension on every PostgreSQL version CI covers.
#
#   bash test/matrix.sh [15|17|18|i386|cassert|all]      (default: all)
#
# 15    the host's PostgreSQL 15 built with clang, -Werror (compile only:
#       test/run_tests.sh runs every suite there with gcc).
# 17    Debian 13 "trixie" root: PostgreSQL 17, pg_cron 1.6.
# 18    Debian "sid" root: PostgreSQL 18, pg_cron 1.6.
# i386  Debian 12 "bookworm" i386 root: PostgreSQL 15 (32-bit), pg_cron 1.4;
#       regression and isolation only: the TAP tests start servers and
#       workers, which 15 on the host and with assertions already cover,
#       and would add about six minutes to CI.
# cassert  PostgreSQL 15 built from Debian's source with assertions
#       (--enable-cassert), cached, on the host: every suite (test/cassert.sh).
#
# Each root is made once with debootstrap and cached outside the checkout in
# $REO_ROOTS/NAME-HASH (default /var/cache/release_expired_orders/roots).  A run
# copies the checkout into the root, builds with make WERROR=1 ASSERTS=1,
# installs, and runs make installcheck (pg_regress and isolation) as
# postgres under pg_virtualenv with pg_cron preloaded, then the TAP tests
# (make tap).  Run as root.
# Prints each version's counts and ends with "N passed, N failed"; exits
# non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

roots=${REO_ROOTS:-/var/cache/release_expired_orders/roots}
mirror=${REO_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cluster_opts=(-o shared_preload_libraries=pg_cron -o cron.database_name=contrib_regression)

# name -> "debian-suite arch pg-major run-tap"
declare -A targets=(
	[17]="trixie amd64 17 yes"
	[18]="sid amd64 18 yes"
	[i386]="bookworm i386 15 no"
)
# The port each root's pg_virtualenv cluster starts looking from.
declare -A ports=([17]=55170 [18]=55180 [i386]=55150)
# Warnings src/ is known to have with a target's compiler.  A -Werror build
# that fails on these alone is rebuilt without -Werror and the warning is
# reported; any other warning fails the build.
declare -A known_warnings=(
	[18]="unterminated-string-initialization"
)

passed=0
failed=0
summary=()
mounted=()

say() { echo "matrix: $*"; }

# free_port <from>: the first TCP port from <from> on that nothing listens
# on.  The roots share the host's network, where pg_virtualenv in a root
# cannot see the host's or another root's clusters.
free_port() {
	local p
	for ((p = $1; p < $1 + 200; p++)); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"; return 0
		fi
	done
	echo "$1"
}

# in_root <dir> <command...>: run a command in the root with a clean environment.
in_root() {
	local dir=$1; shift
	chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 TZ=UTC "$@"
}

# mount_root <dir>: /proc, a /dev/shm tmpfs and the host's /dev/pts-less
# device nodes the root needs; unmounted by umount_all (also on failure).
mount_root() {
	local dir=$1
	mkdir -p "$dir/proc" "$dir/dev/shm"
	mount -t proc proc "$dir/proc" && mounted+=("$dir/proc")
	mount -t tmpfs -o mode=1777 shm "$dir/dev/shm" && mounted+=("$dir/dev/shm")
	local node
	for node in null zero full random urandom tty; do
		if [ ! -c "$dir/dev/$node" ]; then
			rm -f "$dir/dev/$node"; touch "$dir/dev/$node"
			mount --bind "/dev/$node" "$dir/dev/$node" && mounted+=("$dir/dev/$node")
		fi
	done
}

# umount_stale <dir>: what an earlier run that was killed left mounted.
umount_stale() {
	local m
	awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

umount_all() {
	local i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}"
	done
	mounted=()
}
trap umount_all EXIT
trap 'umount_all; exit 130' INT TERM

# root_spec <name>: what the target's root is made of, and where it is
# cached: $roots/NAME-HASH, the hash of that spec, so that checkouts whose
# specs differ (another branch's package list) keep roots of their own.
root_spec() {
	local suite arch pg tap
	read -r suite arch pg tap <<<"${targets[$1]}"
	spec_pkgs=(postgresql-$pg postgresql-server-dev-$pg postgresql-$pg-cron
		make gcc libc6-dev libipc-run-perl perl tzdata)
	# No tzdata-legacy: the suites pass on a stock installation, where
	# Debian 13 and later lack zone names such as "CET".
	spec_sources="deb $mirror $suite main"
	# A released suite gets its point and security updates, as users do.
	[ "$suite" != sid ] && spec_sources+=$'\n'"deb $mirror $suite-updates main"$'\n'"deb ${mirror%/debian}/debian-security $suite-security main"
	spec_want="$suite $arch ${spec_pkgs[*]} | $spec_sources"
	spec_dir=$roots/$1-$(printf '%s' "$spec_want" | md5sum | cut -c1-8)
}

# prepare_root <name> <suite> <arch>: debootstrap the root of root_spec
# unless it is cached.
prepare_root() {
	local name=$1 suite=$2 arch=$3
	local dir=$spec_dir new=$spec_dir.new
	local pkgs=("${spec_pkgs[@]}") sources=$spec_sources want=$spec_want
	# A cached root is used for up to a week, then made afresh.
	if [ -f "$dir/.reo-root" ] && [ "$(cat "$dir/.reo-root")" = "$want" ] &&
		[ -n "$(find "$dir/.reo-root" -mtime -7)" ]; then
		say "$name: reusing cached root $dir"
		return 0
	fi
	say "$name: creating a $suite/$arch root in $dir"
	mkdir -p "$roots"
	umount_stale "$dir"; umount_stale "$new"
	rm -rf --one-file-system "$dir" "$new"
	if ! debootstrap --variant=minbase --arch="$arch" "$suite" "$new" "$mirror" \
		>"$dir.debootstrap.log" 2>&1; then
		tail -20 "$dir.debootstrap.log"
		return 1
	fi
	echo "$sources" >"$new/etc/apt/sources.list"
	# Start no daemons, create no "main" cluster: the tests make their own.
	printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"
	chmod +x "$new/usr/sbin/policy-rc.d"
	mkdir -p "$new/etc/postgresql-common/createcluster.d"
	echo "create_main_cluster = false" \
		>"$new/etc/postgresql-common/createcluster.d/no-main-cluster.conf"
	local aptopt=()
	# sid's Release file may be older than its Valid-Until on a mirror.
	[ "$suite" = sid ] && aptopt=(-o Acquire::Check-Valid-Until=false)
	mount_root "$new"
	local ok=1
	{ in_root "$new" apt-get "${aptopt[@]}" update &&
	  in_root "$new" env DEBIAN_FRONTEND=noninteractive apt-get "${aptopt[@]}" \
		install -y --no-install-recommends "${pkgs[@]}" &&
	  in_root "$new" apt-get clean; } >"$dir.apt.log" 2>&1 || ok=0
	umount_all
	if [ $ok = 0 ]; then
		tail -20 "$dir.apt.log"
		return 1
	fi
	echo "$want" >"$new/.reo-root"
	mv "$new" "$dir"
}

# count_regress <log>: add a log's pg_regress and isolation results
# ("test name ... ok" before PostgreSQL 16, "ok N - name" from 16 on).
# count_tap <log>: add prove's result of each test/t script.
count_regress() {
	local ok bad
	ok=$(grep -cE '(\.\.\. ok|^ok [0-9]+ +[-+] )' "$1")
	bad=$(grep -cE '(\.\.\. (FAILED|failed)|^not ok [0-9]+ +[-+] )' "$1")
	vpass=$((vpass + ok)); vfail=$((vfail + bad))
}
count_tap() {
	local ok bad
	ok=$(grep -cE '^test/t/\S+ \.+ ok' "$1")
	bad=$(grep -cE '^test/t/\S+ \.+ (Dubious|Failed|not ok)' "$1")
	vpass=$((vpass + ok)); vfail=$((vfail + bad))
}

# run_root <name>: build, install and test the checkout in a cached root,
# holding the root's lock: another run of the same root (another checkout
# on this machine) waits rather than unmounting what this one uses.
run_root() {
	local lockfd
	mkdir -p "$roots"
	root_spec "$1"
	exec {lockfd}>"$spec_dir.lock"
	if ! flock -n "$lockfd"; then
		say "$1: waiting for another run that uses this root"
		flock "$lockfd"
	fi
	run_root_locked "$1"
	exec {lockfd}>&-
}

run_root_locked() {
	local name=$1
	local suite arch pg tap
	read -r suite arch pg tap <<<"${targets[$name]}"
	vpass=0; vfail=0
	echo "=== $name: PostgreSQL $pg on Debian $suite ($arch)"
	if ! prepare_root "$name" "$suite" "$arch"; then
		say "$name: could not prepare the root"
		vfail=1; finish_target "$name" "no root"; return
	fi
	local dir=$spec_dir
	local logs=$spec_dir.logs
	umount_stale "$dir"
	rm -rf --one-file-system "$dir/build" "$logs"; mkdir -p "$dir/build/reo" "$logs"
	# The checkout as it is, without what git ignores (build output).
	tar -C "$top" --exclude-vcs --exclude-vcs-ignores -cf - . | tar -C "$dir/build/reo" -xf -
	mount_root "$dir"
	local versions
	versions=$(in_root "$dir" sh -c "pg_config --version; dpkg-query -W -f='pg_cron \${Version}\n' postgresql-$pg-cron; gcc --version | head -1")
	echo "$versions"
	local pgconf=/usr/lib/postgresql/$pg/bin/pg_config
	local build=(make -C /build/reo PG_CONFIG=$pgconf ASSERTS=1)
	local werror=WERROR=1 note=""
	if ! in_root "$dir" "${build[@]}" $werror >"$logs/build.log" 2>&1; then
		local known=${known_warnings[$name]:-} unknown
		unknown=$(grep -E 'warning:|error:' "$logs/build.log" | grep -vE -- "\[-W(error=)?${known:-@none@}\]")
		if [ -n "$known" ] && [ -z "$unknown" ] && grep -qF -- "$known" "$logs/build.log"; then
			note="built without -Werror: known warning -W$known in src/"
			say "$name: $note:"
			grep -E 'warning:|error:' "$logs/build.log"
			in_root "$dir" make -C /build/reo clean >/dev/null 2>&1
			werror=""
			in_root "$dir" "${build[@]}" >"$logs/build.log" 2>&1 || werror=failed
		else
			werror=failed
		fi
	fi
	if [ "$werror" = failed ] || ! in_root "$dir" "${build[@]}" install >>"$logs/build.log" 2>&1; then
		cat "$logs/build.log"
		say "$name: build failed"
		vfail=$((vfail + 1)); umount_all; finish_target "$name" "build failed"; return
	fi
	grep -E 'warning:' "$logs/build.log" || true
	in_root "$dir" chown -R postgres: /build/reo
	local runas=(runuser -u postgres --)

	local port
	port=$(free_port "${ports[$name]}")
	# The regression and the isolation suite one after the other, so that a
	# failure in the first does not skip the second.
	in_root "$dir" env PGPORT="$port" sh -c 'cd /build/reo && exec "$@"' sh "${runas[@]}" \
		pg_virtualenv -v "$pg" "${cluster_opts[@]}" sh -c \
		"make installcheck ISOLATION= PG_CONFIG=$pgconf; r=\$?; make installcheck REGRESS= PG_CONFIG=$pgconf && exit \$r" \
		>"$logs/installcheck.log" 2>&1
	local rc=$?
	cat "$logs/installcheck.log"
	local before=$vfail
	count_regress "$logs/installcheck.log"
	if [ $rc -ne 0 ]; then
		cat "$dir"/build/reo/regression.diffs "$dir"/build/reo/output_iso/regression.diffs 2>/dev/null
		[ $vfail -eq $before ] && vfail=$((vfail + 1))
	fi
	if [ "$tap" = yes ]; then
		echo "=== $name: TAP (make tap)"
		in_root "$dir" sh -c 'cd /build/reo && exec "$@"' sh "${runas[@]}" \
			make tap PG_CONFIG=$pgconf >"$logs/tap.log" 2>&1
		rc=$?
		cat "$logs/tap.log"
		before=$vfail
		count_tap "$logs/tap.log"
		[ $rc -ne 0 ] && [ $vfail -eq $before ] && vfail=$((vfail + 1))
		cp -r "$dir/build/reo/tmp_check/log" "$logs/tap-logs" 2>/dev/null
	fi
	# The deadline worker's isolation specs, on their own instance.
	echo "=== $name: deadline worker isolation specs (test/worker_iso.sh)"
	in_root "$dir" sh -c 'cd /build/reo && exec "$@"' sh "${runas[@]}" \
		env PG_CONFIG=$pgconf PGPORT="$port" test/worker_iso.sh >"$logs/worker_iso.log" 2>&1
	rc=$?
	cat "$logs/worker_iso.log"
	before=$vfail
	count_regress "$logs/worker_iso.log"
	[ $rc -ne 0 ] && [ $vfail -eq $before ] && vfail=$((vfail + 1))
	umount_all
	finish_target "$name" "$note"
}

# build_clang: the host's PostgreSQL 15, compiled with clang and -Werror.
build_clang() {
	vpass=0; vfail=0
	echo "=== 15: clang build against the host's PostgreSQL 15 (compile only)"
	if ! command -v clang >/dev/null; then
		apt-get install -y -qq clang >/dev/null || { vfail=1; finish_target 15 "no clang"; return; }
	fi
	local work
	work=$(mktemp -d /tmp/release_expired_orders-clang.XXXXXX)
	tar -C "$top" --exclude-vcs --exclude-vcs-ignores -cf - . | tar -C "$work" -xf -
	clang --version | head -1
	# PostgreSQL was built with gcc: clang does not know some of its flags
	# (-fexcess-precision=standard, -Wno-stringop-truncation), and its
	# headers use gcc's gnu_printf format archetype.  Neither says anything
	# about this code: ignore the unknown flags, and treat the server headers
	# as system headers.  with_llvm=no: no JIT bitcode, the check is the
	# compile.
	local pgc=/usr/lib/postgresql/15/bin/pg_config
	if make -C "$work" CC=clang PG_CONFIG=$pgc \
		COPT="-Wno-ignored-optimization-argument -Wno-unknown-warning-option -isystem $($pgc --includedir-server)" \
		WERROR=1 ASSERTS=1 with_llvm=no >"$work/build.log" 2>&1; then
		grep -E 'warning:' "$work/build.log" || true
		echo "ok - clang -Werror build"; vpass=1
	else
		cat "$work/build.log"
		echo "not ok - clang -Werror build"; vfail=1
	fi
	rm -rf "$work"
	finish_target 15 "clang compile only"
}

# run_cassert: test/cassert.sh, its output shown (its own count line
# renamed), its "N passed, N failed" added; a run that fails without a
# failed count, or prints none, is one failure.
run_cassert() {
	vpass=0; vfail=0
	echo "=== cassert: PostgreSQL 15 with assertions (test/cassert.sh)"
	local out line rc note=""
	out=$(mktemp)
	bash "$top/test/cassert.sh" 2>&1 | tee "$out" |
		sed -uE 's/^([0-9]+ passed, [0-9]+ failed)$/cassert: \1/'
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
	rm -f "$out"
	if [ -n "$line" ]; then
		read -r vpass _ vfail _ <<<"$line"
	else
		note="no count line"
	fi
	[ "$rc" -ne 0 ] && [ "$vfail" -eq 0 ] && vfail=1
	finish_target cassert "$note"
}

finish_target() {
	local line="$1: $vpass passed, $vfail failed${2:+ ($2)}"
	say "$line"
	summary+=("$line")
	passed=$((passed + vpass)); failed=$((failed + vfail))
}

# test/packages.sh sources this file for its roots and helpers: stop here.
[ "${BASH_SOURCE[0]}" != "$0" ] && return 0

[ "$(id -u)" = 0 ] || { echo "matrix: run as root (debootstrap, chroot, mount)"; echo "0 passed, 1 failed"; exit 1; }
command -v debootstrap >/dev/null || { apt-get install -y -qq debootstrap >/dev/null || true; }

want=${1:-all}
case "$want" in
	all) list=(15 17 18 i386 cassert) ;;
	15|17|18|i386|cassert) list=("$want") ;;
	*) echo "usage: $0 [15|17|18|i386|cassert|all]" >&2; exit 2 ;;
esac
for t in "${list[@]}"; do
	case "$t" in
		15) build_clang ;;
		cassert) run_cassert ;;
		*) run_root "$t" ;;
	esac
done

echo "=== matrix summary"
for line in "${summary[@]}"; do echo "  $line"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
