#!/usr/bin/env bash
# Builds the Debian package of the extension, installs it and runs the
# regression suite against the installed files, as the package's own test
# does (debian/tests/installcheck: pg_buildext installcheck, pg_cron
# preloaded); and checks the PGXN release (META.json, make dist's zip).
#
#   bash test/packages.sh [15|17|18|i386|dist|drill|all]...     (default: all)
#
# 15    on the host (Debian 12, PostgreSQL 15): installs what building a
#       package needs when missing, and installs the package into the host's
#       PostgreSQL 15 (it replaces a make install there; the package is
#       purged at the end).
# 17 18 i386   in test/matrix.sh's cached root of that name (trixie, sid,
#       bookworm i386), never changed: the build tools live in a cached
#       overlay layer on top of it ($REO_ROOTS/pkg-NAME-HASH), and each run
#       writes to a throwaway overlay above both.  Not in "all": i386.
# dist  META.json against the PGXN Meta Spec (test/pgxn_meta.py), then
#       make dist, and the zip alone in an empty folder of the 17 root
#       (throwaway overlay) with PGXN's client: pgxn install, pgxn check.
# drill the upgrade drill (README Upgrading, doc/testing.md) on the host's
#       PostgreSQL 15: the 1.1 and 1.0 packages built from the commits that
#       released them (cached by commit id in $REO_PKG_OUT/drill), each
#       installed under two databases with pg_cron and clients calling the
#       job, the current package installed over it without a restart, one
#       database updated, then the checks and the deadline worker after a
#       restart; and from 1.1 with its worker preloaded.  Ports from 57300;
#       the package is purged at the end.
#
# Each package target: dpkg-buildpackage -us -uc -b in a copy of the
# checkout (after pg_buildext updatecontrol), the .deb's files (library,
# bitcode, control file, every sql/release_expired_orders--*.sql), apt-get
# install ./postgresql-NN-release-expired-orders_*.deb with any make install
# leftovers removed first (so the tests see only the package's files), dpkg
# --verify, then debian/tests/installcheck in an unbuilt copy of the tree,
# as nobody (autopkgtest runs a test without needs-root unprivileged).
# The .debs and logs are kept in $REO_PKG_OUT (default
# /var/cache/release_expired_orders/packages/NAME).  Run as root.  Prints
# each target's counts and ends with "N passed, N failed"; exits non-zero
# on any failure.
set -uo pipefail
# The roots, in_root, mount_root, umount_all, prepare_root, free_port,
# count_regress and finish_target (sourcing stops before matrix.sh runs).
. "$(dirname "$0")/matrix.sh"

say() { echo "packages: $*"; }

out_base=${REO_PKG_OUT:-/var/cache/release_expired_orders/packages}
build_deps=(build-essential debhelper dpkg-dev postgresql-server-dev-all)
ports[dist]=55190
ports[15]=55150
srcname=$(sed -n '1s/^\([^ ]*\) .*/\1/p' debian/changelog)
debversion=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' debian/changelog)
extension=$(sed -n 's/^EXTENSION *= *//p' Makefile)
EXTVERSION_CUR=$(sed -n 's/^EXTVERSION *= *//p' Makefile)
R=""		# the root commands run in ("" = the host)
declare -A built_deb	# target -> the .deb test_package built (in $out_base)

# on <command...>: run a command in the target's root, or on the host, with
# the same clean environment.
on() {
	if [ -n "$R" ]; then
		in_root "$R" "$@"
	else
		/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			LANG=C.UTF-8 TZ=UTC "$@"
	fi
}

# step <ok?> <what>: count one check.
step() {
	if [ "$1" = 0 ]; then
		echo "ok - $2"; vpass=$((vpass + 1))
	else
		echo "not ok - $2"; vfail=$((vfail + 1))
	fi
}

# copy_tree <dest>: the checkout as it is, without what git ignores.
copy_tree() {
	mkdir -p "$1"
	tar -C "$top" --exclude-vcs --exclude-vcs-ignores -cf - . | tar -C "$1" -xf -
}

aptopt() { [ "$1" = sid ] && echo "-o Acquire::Check-Valid-Until=false"; }

# prepare_layer <name> <suite> <package...>: the cached overlay layer
# ($layer) with these packages on top of matrix.sh's root $spec_dir, made
# again when that root was made again.
prepare_layer() {
	local name=$1 suite=$2; shift 2
	local deps=("$@")
	layer=$roots/pkg-$name-$(printf '%s' "$spec_dir ${deps[*]}" | md5sum | cut -c1-8)
	local want
	want="$(stat -c %Y "$spec_dir/.reo-root") $spec_dir ${deps[*]}"
	if [ -f "$layer/.reo-layer" ] && [ "$(cat "$layer/.reo-layer")" = "$want" ] &&
		[ -n "$(find "$layer/.reo-layer" -mtime -7)" ]; then
		say "$name: reusing the cached layer with ${deps[*]}: $layer"
		return 0
	fi
	say "$name: making the layer with ${deps[*]}: $layer"
	umount_stale "$layer"
	rm -rf --one-file-system "$layer"
	mkdir -p "$layer/upper" "$layer/work" "$layer/mnt"
	mount -t overlay overlay -o "lowerdir=$spec_dir,upperdir=$layer/upper,workdir=$layer/work" \
		"$layer/mnt" && mounted+=("$layer/mnt") || return 1
	mount_root "$layer/mnt"
	local ok=0
	# shellcheck disable=SC2046
	{ in_root "$layer/mnt" apt-get $(aptopt "$suite") update &&
	  in_root "$layer/mnt" env DEBIAN_FRONTEND=noninteractive apt-get $(aptopt "$suite") \
		install -y --no-install-recommends "${deps[@]}" &&
	  in_root "$layer/mnt" apt-get clean; } >"$layer.apt.log" 2>&1 || ok=1
	umount_all
	rm -rf "$layer/work" "$layer/mnt"
	if [ $ok != 0 ]; then
		tail -20 "$layer.apt.log"; return 1
	fi
	echo "$want" >"$layer/.reo-layer"
}

# mount_run <lowerdirs>: a throwaway overlay over the given layers, in
# $run/mnt (R), with /proc and the device nodes; /build starts empty.
mount_run() {
	run=$roots/pkg-$name.run
	umount_stale "$run"
	rm -rf --one-file-system "$run"
	mkdir -p "$run/upper" "$run/work" "$run/mnt"
	mount -t overlay overlay -o "lowerdir=$1,upperdir=$run/upper,workdir=$run/work" \
		"$run/mnt" && mounted+=("$run/mnt") || return 1
	mount_root "$run/mnt"
	R=$run/mnt
	rm -rf "$R/build"; mkdir -p "$R/build"
}

unmount_run() {
	umount_all
	rm -rf --one-file-system "$run"
	R=""
}

# with_root_lock <name> <function...>: hold matrix.sh's lock of the root
# (another run that uses it waits) while the function runs.
with_root_lock() {
	local lockfd
	mkdir -p "$roots"
	root_spec "$1"
	exec {lockfd}>"$spec_dir.lock"
	if ! flock -n "$lockfd"; then
		say "$1: waiting for another run that uses this root"
		flock "$lockfd"
	fi
	"${@:2}"
	exec {lockfd}>&-
}

# build_package <pg> <hostbase> <base> <src> <version> <logs>: build the
# package of the tree <base>/<src> (pg_buildext updatecontrol: debian/control
# for this system's PostgreSQL versions, as the PGDG build does; then
# dpkg-buildpackage -us -uc -b), log in <logs>/build.log, copy the results
# to <logs>; sets deb (as the host sees it) to postgresql-<pg>-...<version>.deb.
build_package() {
	local pg=$1 hb=$2 b=$3 src=$4 version=$5 logs=$6
	on sh -c "cd $b/$src && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b -j2" \
		>"$logs/build.log" 2>&1
	local rc=$?
	local debs=("$hb"/"postgresql-$pg-${srcname}_${version}"_*.deb)
	deb=${debs[0]}
	if [ $rc -ne 0 ] || [ ! -f "$deb" ]; then
		tail -40 "$logs/build.log"
		return 1
	fi
	grep -E 'warning:' "$logs/build.log" || true
	cp "$hb"/*.deb "$hb"/*.buildinfo "$hb"/*.changes "$logs/" 2>/dev/null
	return 0
}

# test_package <name> <pg> <hostbase> <base>: build, check, install and
# test the package for PostgreSQL <pg>; <hostbase> is the empty work folder
# as the host sees it, <base> as "on" sees it.
test_package() {
	local name=$1 pg=$2 hb=$3 b=$4
	local pkg=postgresql-$pg-$srcname
	local logs=$out_base/$name
	rm -rf "$logs"; mkdir -p "$logs"
	local src=$srcname-$debversion deb
	copy_tree "$hb/$src"
	on sh -c "pg_config --version 2>/dev/null; dpkg-query -W -f='\${Package} \${Version}\n' postgresql-$pg postgresql-$pg-cron debhelper postgresql-common"
	if ! build_package "$pg" "$hb" "$b" "$src" "$debversion" "$logs"; then
		step 1 "$name: dpkg-buildpackage built $pkg"
		return
	fi
	local debb=$b/${deb##*/}
	built_deb[$name]=$logs/${deb##*/}
	step 0 "$name: dpkg-buildpackage built ${deb##*/}"

	# What the package holds: the library, the control file, every install
	# and update script of the tree, the bitcode where the server has JIT.
	local libdir=/usr/lib/postgresql/$pg/lib share=/usr/share/postgresql/$pg/extension
	local want=("$libdir/$extension.so" "$share/$extension.control") missing=() f
	for f in "$top"/sql/"$extension"--*.sql; do want+=("$share/${f##*/}"); done
	[ -d "$R$libdir/bitcode" ] && want+=("$libdir/bitcode/$extension.index.bc")
	on dpkg-deb -c "$debb" | awk '{ print substr($6, 2) }' >"$logs/contents.txt"
	for f in "${want[@]}"; do grep -qxF "$f" "$logs/contents.txt" || missing+=("$f"); done
	on dpkg-deb -f "$debb" Package Version Architecture Depends Recommends
	step ${#missing[@]} "$name: the package holds the library, control file, ${#want[@]} files in all${missing:+ (missing: ${missing[*]})}"

	# Install it alone: no file of a make install is left to test instead.
	on sh -c "dpkg --purge $pkg >/dev/null 2>&1; rm -rf $libdir/$extension.so $libdir/bitcode/$extension $libdir/bitcode/$extension.index.bc $share/$extension.control $share/$extension--*.sql" 
	if on env DEBIAN_FRONTEND=noninteractive apt-get install -y "$debb" >"$logs/install.log" 2>&1 &&
		[ -z "$(on dpkg --verify "$pkg")" ] && on dpkg -S "$libdir/$extension.so" >/dev/null; then
		step 0 "$name: apt-get install ./${deb##*/}; dpkg --verify clean"
	else
		cat "$logs/install.log"
		step 1 "$name: apt-get install ./${deb##*/}"
		return
	fi

	# The package's own test, in an unbuilt copy of the tree, as autopkgtest
	# runs it: as an unprivileged user (nobody), the test declaring no
	# needs-root.
	copy_tree "$hb/test"
	on chown -R nobody: "$b/test"
	local port
	port=$(free_port "${ports[$name]}")
	echo "=== $name: debian/tests/installcheck as nobody (pg_buildext installcheck, PostgreSQL $pg)"
	on env PGPORT="$port" runuser -u nobody -- sh -c "cd $b/test && debian/tests/installcheck" \
		>"$logs/installcheck.log" 2>&1
	rc=$?
	cat "$logs/installcheck.log"
	local before=$vfail
	count_regress "$logs/installcheck.log"
	if [ $rc -ne 0 ]; then
		cat "$hb"/test/output_iso/regression.diffs 2>/dev/null
		[ $vfail -eq $before ] && vfail=$((vfail + 1))
	fi
}

# package_root <name>: test_package in the cached root <name> (17, 18, i386).
package_root() {
	local name=$1 suite arch pg tap
	read -r suite arch pg tap <<<"${targets[$name]}"
	vpass=0; vfail=0
	echo "=== $name: Debian package for PostgreSQL $pg on Debian $suite ($arch)"
	if ! prepare_root "$name" "$suite" "$arch"; then
		vfail=1; finish_target "$name" "no root"; return
	fi
	if ! prepare_layer "$name" "$suite" "${build_deps[@]}"; then
		umount_all; vfail=1; finish_target "$name" "no build tools"; return
	fi
	if ! mount_run "$layer/upper:$spec_dir"; then
		umount_all; vfail=1; finish_target "$name" "no overlay"; return
	fi
	test_package "$name" "$pg" "$R/build" /build
	unmount_run
	finish_target "$name"
}

# package_host: test_package for the host's PostgreSQL 15, then purge it.
package_host() {
	vpass=0; vfail=0
	echo "=== 15: Debian package for the host's PostgreSQL 15"
	local need=(make gcc postgresql-15 postgresql-server-dev-15 postgresql-15-cron "${build_deps[@]}")
	local p missing=()
	for p in "${need[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "15: installing ${missing[*]}"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "${missing[@]}"; } >/dev/null ||
			{ vfail=1; finish_target 15 "could not install ${missing[*]}"; return; }
	fi
	local work
	work=$(mktemp -d /tmp/release_expired_orders-packages.XXXXXX)
	chmod 755 "$work"
	test_package 15 15 "$work" "$work"
	dpkg --purge "postgresql-15-$srcname" >/dev/null 2>&1
	rm -rf "$work"
	finish_target 15 "host; package purged after the test"
}

# dist: META.json, make dist, and the zip alone in the 17 root.
dist() {
	local name=dist
	vpass=0; vfail=0
	echo "=== dist: PGXN META.json and make dist"
	local logs=$out_base/dist
	rm -rf "$logs"; mkdir -p "$logs"
	python3 test/pgxn_meta.py >"$logs/meta.log" 2>&1
	local rc=$?
	grep '^not ok' "$logs/meta.log"
	step $rc "META.json: PGXN Meta Spec 1.0.0 and the tree ($(grep -c '^ok' "$logs/meta.log") checks)"

	local distversion zip
	distversion=$(python3 -c 'import json; print(json.load(open("META.json"))["version"])')
	zip=$extension-$distversion.zip
	rm -f "$zip"
	if ! make -s dist PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" >"$logs/dist.log" 2>&1 ||
		[ ! -f "$zip" ]; then
		cat "$logs/dist.log"; step 1 "make dist wrote $zip"; finish_target dist; return
	fi
	mv "$zip" "$logs/"
	unzip -Z1 "$logs/$zip" >"$logs/zip.txt"
	[ "$(cut -d/ -f1 "$logs/zip.txt" | sort -u)" = "$extension-$distversion" ] &&
		grep -qx "$extension-$distversion/META.json" "$logs/zip.txt"
	step $? "make dist wrote $zip ($(grep -vc '/$' "$logs/zip.txt") files, all under $extension-$distversion/, META.json among them)"

	# The zip alone in an empty folder of the 17 root, with PGXN's client
	# (pgxnclient, in a cached layer) as README says: pgxn install (make,
	# make install), then pgxn check (make installcheck) on a throwaway
	# cluster with pg_cron preloaded.
	root_spec 17
	local suite arch pg tap
	read -r suite arch pg tap <<<"${targets[17]}"
	if ! prepare_root 17 "$suite" "$arch" || ! prepare_layer dist "$suite" pgxnclient ||
		! mount_run "$layer/upper:$spec_dir"; then
		umount_all; vfail=$((vfail + 1)); finish_target dist "no root"; return
	fi
	mkdir "$R/build/dist"
	cp "$logs/$zip" "$R/build/dist/"
	local pgconf=/usr/lib/postgresql/$pg/bin/pg_config
	local libdir=/usr/lib/postgresql/$pg/lib share=/usr/share/postgresql/$pg/extension
	on sh -c "rm -rf $libdir/$extension.so $libdir/bitcode/$extension* $share/$extension*"
	on sh -c "cd /build/dist && pgxn install --pg_config $pgconf ./$zip" >"$logs/install.log" 2>&1
	rc=$?
	local f missing=()
	for f in "$libdir/$extension.so" "$share/$extension.control" "$top"/sql/"$extension"--*.sql; do
		f=${f#"$top"/sql/}; [ "${f:0:1}" = / ] || f=$share/$f
		[ -f "$R$f" ] || missing+=("$f")
	done
	[ $rc -ne 0 ] && tail -40 "$logs/install.log"
	[ ${#missing[@]} -gt 0 ] && rc=1
	step $rc "the zip alone: pgxn install ./$zip (PostgreSQL $pg, Debian $suite)${missing:+ (missing: ${missing[*]})}"
	if [ $rc -eq 0 ]; then
		local port
		port=$(free_port "${ports[dist]}")
		# As README says, by an unprivileged user (nobody here) with
		# USER=postgres: the expected outputs name the superuser postgres.
		on env PGPORT="$port" runuser -u nobody -- env USER=postgres \
			sh -c 'cd /build/dist && exec "$@"' sh \
			pg_virtualenv -v "$pg" "${cluster_opts[@]}" \
			pgxn check --pg_config $pgconf "./$zip" >"$logs/installcheck.log" 2>&1
		rc=$?
		cat "$logs/installcheck.log"
		local before=$vfail
		count_regress "$logs/installcheck.log"
		[ $rc -ne 0 ] && [ $vfail -eq $before ] && vfail=$((vfail + 1))
	fi
	unmount_run
	finish_target dist "zip in the 17 root"
}

# ---- The upgrade drill (issue 22) ----
# drill: on the host's PostgreSQL 15, for each released version V (1.1,
# 1.0): the package of V (built from the commit that released it, cached),
# a fresh cluster with pg_cron, two databases on V with the README's job
# role and a pg_cron job every minute, and a client calling the procedure
# every 0.5 s in each; the current package installed over it while all of
# that runs (no restart), ALTER EXTENSION ... UPDATE in one database only;
# then the checks, a restart with the deadline worker preloaded, and the
# package purged.
drill_releases=("1.1 2134c4b" "1.0 eb1aaf3")	# version, the commit that released it
drill_role=reo_drill_job
drill_dbs=(shop_a shop_b)			# shop_a is updated, shop_b stays on V
drill_product=00000000-0000-0000-0000-0000000000a1
ports[drill]=57300

# drill_old_package <version> <commit>: the package of a released version,
# built from the commit that released it with the current debian/ (its
# changelog entry <version>-1), cached by commit id in $out_base/drill/ID;
# sets olddeb.
drill_old_package() {
	local v=$1 full cache work src maint deb
	if ! full=$(git -C "$top" rev-parse --verify -q "$2^{commit}"); then
		echo "drill: commit $2 (release $v) is not in $top's history (a shallow clone?)"
		return 1
	fi
	cache=$out_base/drill/$full
	olddeb=$(ls "$cache/postgresql-15-${srcname}_$v-1_"*.deb 2>/dev/null | head -n 1)
	if [ -n "$olddeb" ]; then
		say "drill: $v: the package of ${full:0:7}, cached: $olddeb"
		return 0
	fi
	say "drill: $v: building the package of ${full:0:7}"
	work=$(mktemp -d /tmp/release_expired_orders-drill-build.XXXXXX)
	chmod 755 "$work"
	src=$srcname-$v
	mkdir -p "$work/$src"
	git -C "$top" archive "$full" | tar -C "$work/$src" -xf - || { rm -rf "$work"; return 1; }
	cp -a "$top/debian" "$work/$src/"
	maint=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$top/debian/changelog" | head -n 1)
	{
		printf '%s (%s-1) unstable; urgency=medium\n\n' "$srcname" "$v"
		printf '  * Release %s of the extension (commit %s), packaged with the\n' "$v" "${full:0:7}"
		printf '    debian/ of a later tree for the upgrade drill (test/packages.sh drill).\n\n'
		printf ' -- %s  %s\n' "$maint" "$(git -C "$top" log -1 --format=%aD "$full")"
	} >"$work/$src/debian/changelog"
	# The description lists the scripts this release has.
	local scripts
	scripts=$(cd "$work/$src/sql" && ls "$extension"--*.sql | sed -n "s/^$extension--\([0-9.]*\)\.sql$/\1/p" |
		sort -V | paste -sd, | sed 's/,/, /g')
	sed -i "s/scripts (1\.0, 1\.1, 1\.2)\./scripts ($scripts)./" "$work/$src/debian/control.in" "$work/$src/debian/control"
	rm -rf "$cache.new"; mkdir -p "$cache.new"
	if ! build_package 15 "$work" "$work" "$src" "$v-1" "$cache.new"; then
		rm -rf "$work"; return 1
	fi
	rm -rf "$work" "$cache"
	mv "$cache.new" "$cache"
	olddeb=$cache/${deb##*/}
}

# drill_install <deb>: apt-get install ./<deb> on the host, without
# restarting anything; the first one after make install leftovers are removed.
drill_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y "$1" >>"$dlogs/install.log" 2>&1 &&
		[ -z "$(dpkg --verify "postgresql-15-$srcname")" ]
}

drill_remove_all() {
	local libdir=/usr/lib/postgresql/15/lib share=/usr/share/postgresql/15/extension
	dpkg --purge "postgresql-15-$srcname" >/dev/null 2>&1
	rm -rf "$libdir/$extension.so" "$libdir/bitcode/$extension" "$libdir/bitcode/$extension.index.bc" \
		"$share/$extension.control" "$share/$extension"--*.sql
}

# as_pg <command...>: as the user postgres, with the drill cluster's socket.
as_pg() {
	/usr/bin/env -i PATH=/usr/lib/postgresql/15/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TZ=UTC \
		PGHOST="$dw/sock" PGPORT="$dport" PGUSER=postgres runuser -u postgres -- "$@"
}
# dsql <db> <sql> [psql options]: one psql, unaligned, stopping on error.
dsql() {
	local db=$1 sql=$2; shift 2
	as_pg psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@" -c "$sql"
}

# drill_session <db> open|call <tag>|close: a session of the job role that
# stays open (psql reading a fifo), as an application's pool keeps one;
# each call's outcome is a line "@<tag> <ERROR> <LAST_ERROR_MESSAGE>" in
# $dw/session-<db>.out.
declare -A drill_fd
drill_session() {
	local db=$1 f=$dw/session-$1 fd
	case $2 in
	open)
		mkfifo "$f.fifo"; chown postgres: "$f.fifo"
		as_pg sh -c "exec psql -X -q -At -U $drill_role -d $db <$f.fifo >$f.out 2>&1" &
		loop_pids+=($!)
		exec {fd}>"$f.fifo"
		drill_fd[$db]=$fd
		echo '\o /dev/null' >&"$fd" ;;
	call)
		printf 'CALL public.release_expired_orders(30, 100);\n\\echo @%s :ERROR :LAST_ERROR_MESSAGE\n' "$3" >&"${drill_fd[$db]}" ;;
	close)
		fd=${drill_fd[$db]}
		exec {fd}>&-
		unset "drill_fd[$db]" ;;
	esac
}
# drill_session_result <db> <tag>: "ok" or the error of that call.
drill_session_result() {
	local line
	line=$(grep "^@$2 " "$dw/session-$1.out" | head -n 1)
	case $line in
		"@$2 false"*) echo ok ;;
		"") echo "no answer" ;;
		*) echo "${line#"@$2 true "}" | cut -c1-200 ;;
	esac
}

# drill_cleanup: stop the loops and the cluster, remove the work folder.
drill_cleanup() {
	[ -n "${dw:-}" ] && [ -d "$dw" ] || return 0
	touch "$dw/stop"
	local p
	for p in "${!drill_fd[@]}"; do drill_session "$p" close; done
	for p in "${loop_pids[@]}"; do wait "$p" 2>/dev/null; done
	loop_pids=()
	[ -f "$dw/data/postmaster.pid" ] && as_pg pg_ctl -D "$dw/data" -m immediate -w stop >/dev/null 2>&1
	[ -f "$dw/server.log" ] && cp "$dw/server.log" "$dlogs/" 2>/dev/null
	[ -d "$dw/loops" ] && cp "$dw"/loops/*.log "$dlogs/" 2>/dev/null
	rm -rf "$dw"
	dw=""
}

# drill_grants <commit>: the job role's grants as the README of that commit
# gives them (Security: the GRANT lines of its first sql block), for our role.
drill_grants() {
	git -C "$top" show "$1:README.md" |
		awk '/^## Security/ { s = 1 } s && /^```sql/ { b = 1; next } s && b && /^```/ { exit } s && b' |
		grep -E '^GRANT ' | sed "s/release_job/$drill_role/g"
}

# drill_grant_checks <grants file>: a query listing every privilege those
# grants give as "privilege on object|t" (one has_*_privilege each).
drill_grant_checks() {
	local line privs obj p o sel=()
	while read -r line; do
		if [[ $line =~ ^GRANT\ (.+)\ ON\ (PROCEDURE|FUNCTION)\ (.+)\ TO\ [a-z_]+\;$ ]]; then
			sel+=("SELECT 'EXECUTE on ${BASH_REMATCH[3]}', has_function_privilege('$drill_role', '${BASH_REMATCH[3]}', 'EXECUTE')")
		elif [[ $line =~ ^GRANT\ (.+)\ ON\ SCHEMA\ (.+)\ TO\ [a-z_]+\;$ ]]; then
			sel+=("SELECT '${BASH_REMATCH[1]} on schema ${BASH_REMATCH[2]}', has_schema_privilege('$drill_role', '${BASH_REMATCH[2]}', '${BASH_REMATCH[1]}')")
		elif [[ $line =~ ^GRANT\ (.+)\ ON\ (.+)\ TO\ [a-z_]+\;$ ]]; then
			privs=${BASH_REMATCH[1]} obj=${BASH_REMATCH[2]}
			# has_table_privilege is true when any one of several listed
			# privileges is held: one call for each.
			IFS=',' read -ra ps <<<"$privs"
			IFS=',' read -ra os <<<"$obj"
			for o in "${os[@]}"; do for p in "${ps[@]}"; do
				o=${o# } p=${p# }
				sel+=("SELECT '$p on $o', has_table_privilege('$drill_role', '$o', '$p')")
			done; done
		else
			sel+=("SELECT 'unparsed: ${line//\'/}', false")
		fi
	done <"$1"
	local IFS=$'\n'
	printf '%s\n' "${sel[@]}" | sed '2,$s/^/UNION ALL /' | tr '\n' ' '
	echo
}

# drill_state <db> <dir>: what must be kept, written to files in <dir>.
drill_state() {
	local db=$1 d=$2
	mkdir -p "$d"
	dsql "$db" "SELECT id || '|' || started_at FROM release_expired_orders.runs ORDER BY id" >"$d/runs"
	dsql "$db" "SELECT id || '|' || run_id || '|' || order_id || '|' || outcome FROM release_expired_orders.order_events ORDER BY id" >"$d/events"
	dsql "$db" "SELECT count(*) FROM release_expired_orders.runs WHERE outcome = 'failed'" >"$d/failed"
	dsql "$db" "SELECT id, started_at, run_by, error FROM release_expired_orders.runs WHERE outcome = 'failed' ORDER BY id LIMIT 3" >"$d/failed.rows"
	dsql "$db" "$(cat "$dw/grant_checks-$db.sql")" >"$d/grants"
	if [ "$(dsql "$db" "SELECT to_regclass('release_expired_orders.payment_windows') IS NOT NULL")" = t ]; then
		dsql "$db" "SELECT * FROM release_expired_orders.payment_windows ORDER BY 1, 2" >"$d/windows"
	fi
	dsql "$db" "SELECT extversion FROM pg_extension WHERE extname = '$extension'" >"$d/version"
}

# drill_loop <db>: every 0.5 s, as the application an order past the
# timeout (and, for a payment window, a recharge), then as the job role
# CALL the procedure, each in a new session; one line per iteration.
drill_loop() {
	local db=$1 out
	while [ ! -e "$dw/stop" ]; do
		if out=$(as_pg psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$dw/loops/iteration.sql" 2>&1 >/dev/null); then
			echo "$(date +%s.%N) ok"
		else
			echo "$(date +%s.%N) error ${out//$'\n'/ }"
		fi
		sleep 0.5
	done >>"$dw/loops/loop-$db.log"
}

# drill_wait_cron <since> <seconds>: wait until pg_cron has finished a run
# of the job of every drill database that started at <since> (epoch) or
# later; false after <seconds>.
drill_wait_cron() {
	local since=$1 deadline=$((SECONDS + $2)) n
	while [ $SECONDS -lt $deadline ]; do
		n=$(dsql postgres "SELECT count(DISTINCT j.database) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
			WHERE d.status IN ('succeeded', 'failed') AND d.start_time >= to_timestamp($since)")
		[ "$n" = ${#drill_dbs[@]} ] && return 0
		sleep 1
	done
	return 1
}

# drill_failures <since> <until> [cron]: one line: failed runs
# (runs.outcome), the loops' errors and pg_cron's failures between two
# epochs; sets dfail to their number, plus one for a database where the
# loop (or with "cron", pg_cron) did not run then.
drill_failures() {
	local since=$1 until=$2 need_cron=${3:-} db runs calls errs cron_ok cron_bad text=""
	dfail=0
	for db in "${drill_dbs[@]}"; do
		runs=$(dsql "$db" "SELECT count(*) FILTER (WHERE outcome = 'failed') || '/' || count(*) FROM release_expired_orders.runs
			WHERE started_at >= to_timestamp($since) AND started_at < to_timestamp($until)")
		calls=$(awk -v a="$since" -v b="$until" '$1 >= a && $1 < b' "$dw/loops/loop-$db.log" | wc -l)
		errs=$(awk -v a="$since" -v b="$until" '$1 >= a && $1 < b && $2 == "error"' "$dw/loops/loop-$db.log" | wc -l)
		read -r cron_ok cron_bad < <(dsql postgres "SELECT count(*) FILTER (WHERE d.status = 'succeeded'), count(*) FILTER (WHERE d.status = 'failed')
			FROM cron.job_run_details d JOIN cron.job j USING (jobid)
			WHERE j.database = '$db' AND d.start_time >= to_timestamp($since) AND d.start_time < to_timestamp($until)" -F ' ')
		text+=" $db: runs failed ${runs}, loop errors $errs/$calls calls, pg_cron failed $cron_bad/$((cron_ok + cron_bad));"
		dfail=$((dfail + ${runs%/*} + errs + cron_bad))
		# A phase is only checked when every scheduler ran in it.
		[ "${runs#*/}" -gt 0 ] && [ "$calls" -gt 0 ] || dfail=$((dfail + 1))
		[ -z "$need_cron" ] || [ $((cron_ok + cron_bad)) -gt 0 ] || dfail=$((dfail + 1))
		if [ "$errs" -gt 0 ]; then
			awk -v a="$since" -v b="$until" '$1 >= a && $1 < b && $2 == "error"' "$dw/loops/loop-$db.log" | head -n 3 | cut -c1-400
		fi
		[ "${runs%/*}" -gt 0 ] && dsql "$db" "SELECT id, run_by, scheduler, error FROM release_expired_orders.runs WHERE outcome = 'failed'
			AND started_at >= to_timestamp($since) AND started_at < to_timestamp($until) ORDER BY id LIMIT 3" | cut -c1-400
		[ "$cron_bad" -gt 0 ] && dsql postgres "SELECT d.start_time, d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
			WHERE j.database = '$db' AND d.status = 'failed' AND d.start_time >= to_timestamp($since) AND d.start_time < to_timestamp($until)
			ORDER BY d.start_time LIMIT 3" | cut -c1-400
	done
	dfail_text=${text%;}
}

# drill_worker_pid <db>: wait up to 30 s for worker_status() in <db> to show
# a pid; sets wpid.
drill_worker_pid() {
	local deadline=$((SECONDS + 30))
	wpid=""
	while [ $SECONDS -lt $deadline ]; do
		wpid=$(dsql "$1" "SELECT pid FROM release_expired_orders.worker_status() WHERE pid IS NOT NULL" 2>/dev/null)
		[ -n "$wpid" ] && return 0
		sleep 0.5
	done
	dsql "$1" "SELECT * FROM release_expired_orders.worker_status()"
	return 1
}

# drill_worker_release <db>: an order whose deadline (30 minutes) is 3 s
# away; true when the worker released it (runs.scheduler), within 20 s;
# sets released to "scheduler role lag".
drill_worker_release() {
	local db=$1 order deadline
	released=""
	order=$(dsql "$db" "INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
		VALUES (gen_random_uuid(), 'W-' || gen_random_uuid(), gen_random_uuid(), '$drill_product', 'direct_buy', 1, 1,
		        (now() AT TIME ZONE 'UTC') - interval '30 minutes' + interval '3 seconds') RETURNING id")
	deadline=$((SECONDS + 20))
	while [ -n "$order" ] && [ $SECONDS -lt $deadline ]; do
		released=$(dsql "$db" "SELECT r.scheduler || ' ' || r.run_by || ' ' ||
			round(extract(epoch FROM e.created_at - (o.created_at + interval '30 minutes') AT TIME ZONE 'UTC') * 1000) || ' ms'
			FROM release_expired_orders.order_events e JOIN release_expired_orders.runs r ON r.id = e.run_id
			JOIN orders o ON o.id = e.order_id
			WHERE e.order_id = '$order' AND e.outcome = 'released'" 2>&1)
		[ -n "$released" ] && break
		sleep 0.5
	done
	[ "${released%% *}" = worker ]
}

# drill_cluster <conf line...>: a fresh cluster in a new $dw, started:
# pg_cron's database postgres, trust over the socket (pg_cron connects as
# the job's role), and the given settings.
drill_cluster() {
	dw=$(mktemp -d /tmp/release_expired_orders-drill.XXXXXX)
	chmod 755 "$dw"; mkdir -p "$dw/sock" "$dw/loops" "$dw/data"; chown -R postgres: "$dw"
	dport=$(free_port "${ports[drill]}")
	loop_pids=()
	trap 'drill_cleanup; umount_all' EXIT
	local ok=0
	{ as_pg initdb -D "$dw/data" -U postgres -E UTF8 --locale=C.UTF-8 --auth=trust -N &&
	  printf '%s\n' "port = $dport" "listen_addresses = ''" "unix_socket_directories = '$dw/sock'" \
		"cron.database_name = 'postgres'" "cron.host = '$dw/sock'" "fsync = off" \
		"log_line_prefix = '%m [%p] %d %u: '" "$@" >>"$dw/data/postgresql.conf" &&
	  as_pg pg_ctl -D "$dw/data" -l "$dw/server.log" -w start; } >"$dlogs/cluster.log" 2>&1 || ok=1
	if [ $ok != 0 ]; then
		tail -20 "$dlogs/cluster.log"; tail -20 "$dw/server.log" 2>/dev/null
	fi
	return $ok
}

# drill_leg <version> <commit>: the drill from one released version.
drill_leg() {
	local v=$1 commit=$2 leg="drill $1" start=$SECONDS db t0 t_install t_updated t_end pid
	vpass=0; vfail=0
	echo "=== $leg: from $v (${commit}) to the current package, on the host's PostgreSQL 15"
	dlogs=$out_base/drill/run-$v
	rm -rf "$dlogs"; mkdir -p "$dlogs"
	if ! drill_old_package "$v" "$commit"; then
		step 1 "$leg: built the package of $v from $commit"
		finish_target "$leg" "no package of $v"; return
	fi
	step 0 "$leg: the package of $v from $commit: ${olddeb##*/}"

	# The package of V alone (nothing of a make install left).
	drill_remove_all
	drill_install "$olddeb"
	step $? "$leg: apt-get install ./${olddeb##*/} ($(dpkg-query -W -f='${Version}' "postgresql-15-$srcname" 2>/dev/null))"

	if ! drill_cluster "shared_preload_libraries = 'pg_cron'"; then
		step 1 "$leg: a cluster on port $dport"; drill_cleanup; finish_target "$leg"; return
	fi

	# Two databases on V, each with the application's tables, the job
	# role's grants of V's README, payment windows (1.1) and a pg_cron job
	# every minute as the job role.
	drill_grants "$commit" >"$dw/grants.sql"
	drill_grant_checks "$dw/grants.sql" >"$dw/grant_checks.sql"
	for db in "${drill_dbs[@]}"; do
		cp "$dw/grants.sql" "$dw/grants-$db.sql"; cp "$dw/grant_checks.sql" "$dw/grant_checks-$db.sql"
	done
	cp "$top/test/fixtures/app_schema.sql" "$dw/app_schema.sql"
	cat >"$dw/loops/iteration.sql" <<-SQL
		INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
		SELECT gen_random_uuid(), 'L-' || gen_random_uuid(), gen_random_uuid(), '$drill_product', t, 1, 1,
		       (now() AT TIME ZONE 'UTC') - m * interval '1 minute'
		  FROM (VALUES ('direct_buy', 31), ('recharge', 20)) AS v (t, m);
		\\c - $drill_role
		CALL public.release_expired_orders(30, 100);
	SQL
	(
		dsql postgres "CREATE EXTENSION pg_cron" &&
		dsql postgres "CREATE ROLE $drill_role LOGIN" &&
		for db in "${drill_dbs[@]}"; do
			dsql postgres "CREATE DATABASE $db" &&
			as_pg psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$dw/app_schema.sql" &&
			dsql "$db" "CREATE EXTENSION $extension VERSION '$v'" &&
			dsql "$db" "INSERT INTO products (id, stock) VALUES ('$drill_product', 0)" &&
			as_pg psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$dw/grants.sql" || exit 1
			if [ "$v" != 1.0 ]; then
				dsql "$db" "INSERT INTO release_expired_orders.payment_windows (order_type, payment_method, timeout_minutes)
					VALUES ('recharge', NULL, 15), ('direct_buy', 'bank_transfer', 1440), ('resale', NULL, NULL)" || exit 1
			fi
			dsql postgres "SELECT cron.schedule_in_database('release-expired-orders_invoke@$db', '* * * * *',
				'CALL public.release_expired_orders()', '$db', '$drill_role')" || exit 1
		done
	) >"$dlogs/setup.log" 2>&1
	ok=$?
	[ $ok != 0 ] && tail -20 "$dlogs/setup.log"
	step $ok "$leg: databases ${drill_dbs[*]} on $v ($(wc -l <"$dw/grants.sql") grants of the README at $commit to $drill_role, $( [ "$v" = 1.0 ] && echo "no payment windows" || echo "3 payment windows"), a pg_cron job every minute in each)"
	if [ $ok != 0 ]; then drill_cleanup; finish_target "$leg"; return; fi

	# The clients, then the pg_cron jobs' first runs.
	t0=$(date +%s)
	for db in "${drill_dbs[@]}"; do
		drill_loop "$db" & loop_pids+=($!)
	done
	drill_wait_cron "$t0" 75
	step $? "$leg: pg_cron ran the job in both databases on $v"
	for db in "${drill_dbs[@]}"; do drill_session "$db" open; drill_session "$db" call old; done

	# Before: what must be kept.
	for db in "${drill_dbs[@]}"; do drill_state "$db" "$dw/before/$db"; done
	dsql postgres "SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job ORDER BY jobid" >"$dw/before/jobs"
	local grants_ok=0
	for db in "${drill_dbs[@]}"; do grep -q '|f$' "$dw/before/$db/grants" && grants_ok=1; done
	step $grants_ok "$leg: $drill_role has every granted privilege on $v ($(wc -l <"$dw/before/shop_a/grants") each database)"

	# The current package over it, the server and the clients running.
	pid=$(head -n 1 "$dw/data/postmaster.pid")
	t_install=$(date +%s.%N)
	drill_failures "$t0" "$t_install" cron
	step $dfail "$leg: no failure on $v before the package:$dfail_text"
	ok=0
	drill_install "$current_deb" || ok=1
	[ "$(head -n 1 "$dw/data/postmaster.pid")" = "$pid" ] || ok=1
	[ $ok != 0 ] && tail -20 "$dlogs/install.log"
	step $ok "$leg: apt-get install ./${current_deb##*/} over $v, the server running (pid $pid, not restarted)"
	for db in "${drill_dbs[@]}"; do drill_session "$db" call installed; done
	sleep 3

	# ALTER EXTENSION ... UPDATE in one database; the other stays on V.
	# README Upgrading: from 1.0, the job's role is given SELECT on
	# order_events first (1.0's README gave INSERT only; the updated job
	# reads it); the database left on 1.0 keeps 1.0's grants.
	if [ "$v" = 1.0 ]; then
		echo "GRANT SELECT ON release_expired_orders.order_events TO $drill_role;" >"$dw/upgrade_grants.sql"
		as_pg psql -X -q -v ON_ERROR_STOP=1 -d shop_a -f "$dw/upgrade_grants.sql" >"$dlogs/upgrade_grants.log" 2>&1
		ok=$?
		cat "$dw/upgrade_grants.sql" >>"$dw/grants-shop_a.sql"
		drill_grant_checks "$dw/grants-shop_a.sql" >"$dw/grant_checks-shop_a.sql"
		step $ok "$leg: README Upgrading, from 1.0, in shop_a before its update: $(cat "$dw/upgrade_grants.sql")"
	fi
	# README: an update that ends in a deadlock with a run is run again.
	local try
	for try in 1 2 3; do
		dsql shop_a "ALTER EXTENSION $extension UPDATE" >"$dlogs/update.log" 2>&1
		ok=$?
		[ $ok = 0 ] || ! grep -q 'deadlock detected' "$dlogs/update.log" && break
		echo "# $leg: ALTER EXTENSION ... UPDATE ended in a deadlock (attempt $try), run again"
	done
	[ $ok != 0 ] && cat "$dlogs/update.log"
	t_updated=$(date +%s.%N)
	local va vb
	va=$(dsql shop_a "SELECT extversion FROM pg_extension WHERE extname = '$extension'")
	vb=$(dsql shop_b "SELECT extversion FROM pg_extension WHERE extname = '$extension'")
	[ "$va" = "$EXTVERSION_CUR" ] && [ "$vb" = "$v" ] || ok=1
	step $ok "$leg: ALTER EXTENSION $extension UPDATE in shop_a ($va, attempt $try), shop_b left on $vb, while the clients and pg_cron run"

	# After: a pg_cron run in each database after the update, then the
	# clients stop.
	drill_wait_cron "$t_updated" 75
	step $? "$leg: pg_cron ran the job in both databases after the update"
	for db in "${drill_dbs[@]}"; do drill_session "$db" call updated; drill_session "$db" close; done
	touch "$dw/stop"
	for pid in "${loop_pids[@]}"; do wait "$pid"; done
	loop_pids=()
	# The sessions opened on $v before the install: they keep the library
	# they loaded.  In shop_b (not updated) every call works; in shop_a the
	# calls before its update do (after it, the README says to reconnect).
	local ra rb
	ra="$(drill_session_result shop_a old), $(drill_session_result shop_a installed)"
	rb="$(drill_session_result shop_b old), $(drill_session_result shop_b installed), $(drill_session_result shop_b updated)"
	[ "$ra" = "ok, ok" ] && [ "$rb" = "ok, ok, ok" ]
	step $? "$leg: a session opened on $v before the install keeps calling: shop_b on $v ($rb), shop_a until its update ($ra)"
	echo "# $leg: that session in shop_a after the update (README: reconnect): $(drill_session_result shop_a updated)"
	t_end=$(date +%s.%N)
	drill_failures "$t_install" "$t_updated"
	step $dfail "$leg: no failure from the package to the end of the update:$dfail_text"
	drill_failures "$t_updated" "$t_end" cron
	step $dfail "$leg: no failure after the update:$dfail_text"
	for db in "${drill_dbs[@]}"; do drill_state "$db" "$dw/after/$db"; done
	dsql postgres "SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job ORDER BY jobid" >"$dw/after/jobs"

	cp "$dw"/grants*.sql "$dw"/grant_checks*.sql "$dlogs/"

	# Kept: grants, history, payment windows, pg_cron jobs.
	local text="" bad=0 nb na
	for db in "${drill_dbs[@]}"; do
		nb=$(grep -c '|t$' "$dw/after/$db/grants")
		if grep -q '|f$' "$dw/after/$db/grants"; then
			bad=1; text+=" $db lost: $(grep '|f$' "$dw/after/$db/grants" | cut -d'|' -f1 | paste -sd, -);"
		else
			text+=" $db: $nb of $(wc -l <"$dw/after/$db/grants");"
		fi
	done
	step $bad "$leg: $drill_role keeps its grants:${text%;}"
	bad=0 text=""
	for db in "${drill_dbs[@]}"; do
		local t
		for t in runs events; do
			nb=$(wc -l <"$dw/before/$db/$t") na=$(wc -l <"$dw/after/$db/$t")
			if [ -n "$(comm -23 <(sort "$dw/before/$db/$t") <(sort "$dw/after/$db/$t"))" ] || [ "$nb" -gt "$na" ]; then
				bad=1; text+=" $db $t LOST ($nb before, $na after);"
			else
				text+=" $db $t $nb <= $na;"
			fi
		done
	done
	step $bad "$leg: history kept, every row's id as before:${text%;}"
	if [ "$v" != 1.0 ]; then
		bad=0 text=""
		for db in "${drill_dbs[@]}"; do
			cmp -s "$dw/before/$db/windows" "$dw/after/$db/windows" || bad=1
			text+=" $db $(wc -l <"$dw/after/$db/windows") rows;"
		done
		step $bad "$leg: payment_windows kept:${text%;}"
	fi
	cmp -s "$dw/before/jobs" "$dw/after/jobs"
	step $? "$leg: pg_cron jobs kept ($(wc -l <"$dw/after/jobs"): id, name, schedule, command, database, role, active)"

	# The updated database's catalog equals a fresh installation of the
	# current version given the same grants (sql/upgrade.sql's view).
	awk '/^CREATE TEMP VIEW installation AS/ { v = 1 } v { print } v && /;$/ { exit }' "$top/sql/upgrade.sql" >"$dw/installation.sql"
	echo "COPY (SELECT * FROM installation ORDER BY 1, 2, 3) TO STDOUT;" >>"$dw/installation.sql"
	ok=0
	{ dsql postgres "CREATE DATABASE shop_fresh" &&
	  as_pg psql -X -q -v ON_ERROR_STOP=1 -d shop_fresh -f "$dw/app_schema.sql" &&
	  dsql shop_fresh "CREATE EXTENSION $extension" &&
	  as_pg psql -X -q -v ON_ERROR_STOP=1 -d shop_fresh -f "$dw/grants-shop_a.sql"; } >"$dlogs/fresh.log" 2>&1 || ok=1
	as_pg psql -X -q -v ON_ERROR_STOP=1 -d shop_a -f "$dw/installation.sql" >"$dlogs/catalog-updated.txt" 2>>"$dlogs/fresh.log" || ok=1
	as_pg psql -X -q -v ON_ERROR_STOP=1 -d shop_fresh -f "$dw/installation.sql" >"$dlogs/catalog-fresh.txt" 2>>"$dlogs/fresh.log" || ok=1
	[ "$(wc -l <"$dlogs/catalog-fresh.txt")" -gt 100 ] || ok=1
	if ! diff "$dlogs/catalog-fresh.txt" "$dlogs/catalog-updated.txt" >"$dlogs/catalog.diff"; then
		ok=1; head -n 20 "$dlogs/catalog.diff" | cut -c1-300
	fi
	[ $ok != 0 ] && tail -5 "$dlogs/fresh.log"
	step $ok "$leg: shop_a's catalog equals a fresh $EXTVERSION_CUR installation given the same grants ($(wc -l <"$dlogs/catalog-fresh.txt") aspects; diff: $(grep -c '^[<>]' "$dlogs/catalog.diff"))"
	dsql postgres "DROP DATABASE shop_fresh" >/dev/null 2>&1

	# The deadline worker: a restart with the library preloaded; the job
	# role runs it (README, Deadline worker).
	ok=0
	local logpos
	logpos=$(stat -c %s "$dw/server.log")
	( dsql postgres "ALTER SYSTEM SET shared_preload_libraries = pg_cron, $extension" &&
	  for db in "${drill_dbs[@]}"; do
		dsql postgres "ALTER DATABASE $db SET $extension.worker_role = '$drill_role'" || exit 1
	  done &&
	  as_pg pg_ctl -D "$dw/data" -l "$dw/server.log" -m fast -w restart ) >"$dlogs/restart.log" 2>&1 || ok=1
	local t_restart
	t_restart=$(date +%s.%N)
	[ $ok = 0 ] && drill_worker_pid shop_a || ok=1
	[ $ok != 0 ] && tail -5 "$dlogs/restart.log"
	step $ok "$leg: restarted with shared_preload_libraries = 'pg_cron,$extension': worker_status() in shop_a shows pid ${wpid:-none}"
	drill_worker_release shop_a
	step $? "$leg: an order reaching its deadline in shop_a is released by the worker (${released:-not released in 20 s}: scheduler, role, after its deadline)"
	# Since the restart: in either database no failed run, a worker
	# connected (pg_stat_activity; none for 1.0's objects), no error in
	# worker_status() where the database has it (1.1 on), no ERROR or FATAL
	# of that database or its worker in the server log.
	bad=0 text=""
	local errs werr pat
	for db in "${drill_dbs[@]}"; do
		nb=$(dsql "$db" "SELECT count(*) FROM release_expired_orders.runs WHERE outcome = 'failed' AND started_at >= to_timestamp($t_restart)")
		na=$(dsql postgres "SELECT string_agg(pid::text, ',') FROM pg_stat_activity
			WHERE backend_type = '$extension worker' AND datname = '$db'")
		werr="no worker_status() on $(dsql "$db" "SELECT extversion FROM pg_extension WHERE extname = '$extension'")"
		[ "$(dsql "$db" "SELECT to_regprocedure('release_expired_orders.worker_status()') IS NOT NULL")" = t ] &&
			werr=$(dsql "$db" "SELECT coalesce('last error: ' || string_agg(last_error, '; '), 'no error')
				FROM release_expired_orders.worker_status()" 2>&1 | head -n 1 | cut -c1-300)
		# A worker's lines have no database (%d): its pid says which.
		pat="^[^ ]+ [^ ]+ [^ ]+ (\[[0-9]+\] $db [^ ]*|\[(${na//,/|})\] [^:]*): (ERROR|FATAL):|deadline worker of database \"$db\" tries again"
		errs=$(tail -c +$((logpos + 1)) "$dw/server.log" | grep -cE "$pat")
		# README: the worker does not serve 1.0's objects (1.0 had none).
		if [ "$(dsql "$db" "SELECT extversion FROM pg_extension WHERE extname = '$extension'")" = 1.0 ]; then
			[ -z "$na" ] || bad=1
			werr="1.0's objects: not served"
		else
			[ -n "$na" ] || bad=1
		fi
		[ "$nb" = 0 ] && [ "${werr#last error}" = "$werr" ] && [ "$werr" = "${werr#ERROR}" ] && [ "$errs" = 0 ] || bad=1
		text+=" $db: $nb failed runs, worker ${na:-none} ($werr), $errs errors in the log;"
		[ "$errs" = 0 ] || tail -c +$((logpos + 1)) "$dw/server.log" | grep -E "$pat" | head -n 3 | cut -c1-300
	done
	step $bad "$leg: since the restart:${text%;}"

	drill_cleanup
	trap umount_all EXIT
	drill_remove_all
	! dpkg-query -W -f='${Status}' "postgresql-15-$srcname" 2>/dev/null | grep -q " installed" &&
		[ ! -e "/usr/lib/postgresql/15/lib/$extension.so" ]
	step $? "$leg: package purged, cluster removed"
	finish_target "$leg" "$((SECONDS - start)) s; logs in $dlogs"
}

# drill_preloaded <version> <commit>: a server that preloads the library of
# a release with a deadline worker (1.1: worker_database), as README
# Upgrading says: the current package installed without a restart (the old
# library keeps serving: every session has the preloaded one), the restart,
# then ALTER EXTENSION ... UPDATE; the worker serves the database all along.
drill_preloaded() {
	local v=$1 commit=$2 leg="drill $1 preloaded" start=$SECONDS db=shop_w ok pid out
	vpass=0; vfail=0
	echo "=== $leg: from $v with its deadline worker (shared_preload_libraries) to the current package"
	dlogs=$out_base/drill/run-$v-preloaded
	rm -rf "$dlogs"; mkdir -p "$dlogs"
	if ! drill_old_package "$v" "$commit"; then
		step 1 "$leg: built the package of $v from $commit"
		finish_target "$leg" "no package of $v"; return
	fi
	drill_remove_all
	drill_install "$olddeb"
	step $? "$leg: apt-get install ./${olddeb##*/}"
	if ! drill_cluster "shared_preload_libraries = 'pg_cron,$extension'"; then
		step 1 "$leg: a cluster on port $dport"; drill_cleanup; finish_target "$leg"; return
	fi
	drill_grants "$commit" >"$dw/grants.sql"
	cp "$top/test/fixtures/app_schema.sql" "$dw/app_schema.sql"
	# The database, then the worker pointed at it (1.1 README: set in
	# postgresql.conf, restart).
	( dsql postgres "CREATE ROLE $drill_role LOGIN" &&
	  dsql postgres "CREATE DATABASE $db" &&
	  as_pg psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$dw/app_schema.sql" &&
	  dsql "$db" "CREATE EXTENSION $extension VERSION '$v'" &&
	  dsql "$db" "INSERT INTO products (id, stock) VALUES ('$drill_product', 0)" &&
	  as_pg psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$dw/grants.sql" &&
	  dsql "$db" "INSERT INTO release_expired_orders.payment_windows (order_type, payment_method, timeout_minutes)
		VALUES ('recharge', NULL, 15)" &&
	  dsql postgres "ALTER SYSTEM SET $extension.worker_database = '$db'" &&
	  dsql postgres "ALTER SYSTEM SET $extension.worker_role = '$drill_role'" &&
	  as_pg pg_ctl -D "$dw/data" -l "$dw/server.log" -m fast -w restart ) >"$dlogs/setup.log" 2>&1
	ok=$?
	[ $ok != 0 ] && tail -20 "$dlogs/setup.log"
	[ $ok = 0 ] && drill_worker_pid "$db" || ok=1
	step $ok "$leg: $db on $v, worker_database = '$db', worker_role = $drill_role: worker_status() shows pid ${wpid:-none}"

	# drill_call: the procedure as the job role, in a new session.
	drill_call() {
		out=$(as_pg psql -X -q -At -v ON_ERROR_STOP=1 -U "$drill_role" -d "$db" \
			-c "CALL public.release_expired_orders(30, 100)" 2>&1)
		local rc=$?
		[ $rc = 0 ] && out="ok" || out=$(echo "$out" | head -n 2 | tr '\n' ' ' | cut -c1-300)
		return $rc
	}
	pid=$(head -n 1 "$dw/data/postmaster.pid")
	drill_install "$current_deb"
	ok=$?
	[ "$(head -n 1 "$dw/data/postmaster.pid")" = "$pid" ] || ok=1
	drill_call || ok=1
	step $ok "$leg: apt-get install ./${current_deb##*/}, no restart: a new session's CALL on $v ($out)"
	# Before the restart every session has the preloaded $v library: an
	# update now is refused (the transaction rolls back); not counted, the
	# README says to restart first.
	out=$(dsql "$db" "ALTER EXTENSION $extension UPDATE" 2>&1 | head -n 1 | cut -c1-200)
	echo "# $leg: ALTER EXTENSION ... UPDATE before the restart: ${out:-done} (now $(dsql "$db" "SELECT extversion FROM pg_extension WHERE extname = '$extension'"))"

	# README Upgrading: restart, then update.
	ok=0
	as_pg pg_ctl -D "$dw/data" -l "$dw/server.log" -m fast -w restart >"$dlogs/restart.log" 2>&1 || ok=1
	local t_restart
	t_restart=$(date +%s.%N)
	[ $ok = 0 ] && drill_worker_pid "$db" || ok=1
	drill_call || ok=1
	step $ok "$leg: restarted: the worker serves $db on $v (pid ${wpid:-none}), a CALL there: $out"
	dsql "$db" "ALTER EXTENSION $extension UPDATE" >"$dlogs/update.log" 2>&1
	ok=$?
	[ $ok != 0 ] && cat "$dlogs/update.log"
	drill_call || ok=1
	[ "$(dsql "$db" "SELECT extversion FROM pg_extension WHERE extname = '$extension'")" = "$EXTVERSION_CUR" ] || ok=1
	step $ok "$leg: ALTER EXTENSION $extension UPDATE after the restart: $EXTVERSION_CUR, a CALL: $out"
	drill_worker_pid "$db" && drill_worker_release "$db"
	step $? "$leg: an order reaching its deadline in $db is released by the worker (pid ${wpid:-none}; ${released:-not released in 20 s}: scheduler, role, after its deadline)"
	out=$(dsql "$db" "SELECT count(*) FILTER (WHERE outcome = 'failed') || ' failed of ' || count(*) FROM release_expired_orders.runs")
	[ "${out%% *}" = 0 ] && [ "$(dsql "$db" "SELECT count(*) FROM release_expired_orders.worker_status() WHERE last_error IS NOT NULL")" = 0 ]
	step $? "$leg: runs $out, no error in worker_status()"

	drill_cleanup
	trap umount_all EXIT
	drill_remove_all
	finish_target "$leg" "$((SECONDS - start)) s; logs in $dlogs"
}

# drill: the current package (the one target 15 built in this run, or built
# here as it does), then the drill from each released version.
drill() {
	local start=$SECONDS rel deb
	vpass=0; vfail=0
	echo "=== drill: upgrade drill on the host's PostgreSQL 15 (${drill_releases[*]/ */} to $EXTVERSION_CUR)"
	local need=(postgresql-15 postgresql-server-dev-15 postgresql-15-cron "${build_deps[@]}") p missing=()
	for p in "${need[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "drill: installing ${missing[*]}"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "${missing[@]}"; } >/dev/null ||
			{ vfail=1; finish_target drill "could not install ${missing[*]}"; return; }
	fi
	if [ -n "${built_deb[15]:-}" ] && [ -f "${built_deb[15]}" ]; then
		current_deb=${built_deb[15]}
		step 0 "drill: the current package, as target 15 built it: ${current_deb##*/}"
	else
		local work logs=$out_base/drill/current
		work=$(mktemp -d /tmp/release_expired_orders-drill-build.XXXXXX)
		chmod 755 "$work"
		rm -rf "$logs"; mkdir -p "$logs"
		copy_tree "$work/$srcname-$debversion"
		if build_package 15 "$work" "$work" "$srcname-$debversion" "$debversion" "$logs"; then
			current_deb=$logs/${deb##*/}
			step 0 "drill: built the current package ${current_deb##*/} ($((SECONDS - start)) s)"
		else
			step 1 "drill: built the current package"
			rm -rf "$work"; finish_target drill; return
		fi
		rm -rf "$work"
	fi
	finish_target "drill build"
	for rel in "${drill_releases[@]}"; do
		# shellcheck disable=SC2086
		drill_leg $rel
	done
	# shellcheck disable=SC2086
	drill_preloaded ${drill_releases[0]}
	summary+=("drill: the legs above, in all")	# (the time is added below)
}

[ "$(id -u)" = 0 ] || { echo "packages: run as root (apt-get, chroot, mount)"; echo "0 passed, 1 failed"; exit 1; }
command -v debootstrap >/dev/null || { apt-get install -y -qq debootstrap >/dev/null || true; }
command -v unzip >/dev/null || { apt-get install -y -qq unzip >/dev/null || true; }

list=()
for want in "${@:-all}"; do
	case "$want" in
		all) list+=(15 17 18 dist drill) ;;
		15|17|18|i386|dist|drill) list+=("$want") ;;
		*) echo "usage: $0 [15|17|18|i386|dist|drill|all]..." >&2; exit 2 ;;
	esac
done
for t in "${list[@]}"; do
	start=$SECONDS
	case "$t" in
		15) package_host ;;
		drill) drill ;;
		dist) with_root_lock 17 dist ;;
		*) with_root_lock "$t" package_root "$t" ;;
	esac
	summary[${#summary[@]} - 1]+=" [$((SECONDS - start)) s]"
done

echo "=== packages summary"
for line in "${summary[@]}"; do echo "  $line"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
