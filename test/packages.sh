#!/usr/bin/env bash
# Builds the Debian package of the extension, installs it and runs the
# regression suite against the installed files, as the package's own test
# does (debian/tests/installcheck: pg_buildext installcheck, pg_cron
# preloaded); and checks the PGXN release (META.json, make dist's zip).
#
#   bash test/packages.sh [15|17|18|i386|dist|all]...     (default: all)
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
R=""		# the root commands run in ("" = the host)

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

# test_package <name> <pg> <hostbase> <base>: build, check, install and
# test the package for PostgreSQL <pg>; <hostbase> is the empty work folder
# as the host sees it, <base> as "on" sees it.
test_package() {
	local name=$1 pg=$2 hb=$3 b=$4
	local pkg=postgresql-$pg-$srcname
	local logs=$out_base/$name
	rm -rf "$logs"; mkdir -p "$logs"
	local src=$srcname-$debversion
	copy_tree "$hb/$src"
	on sh -c "pg_config --version 2>/dev/null; dpkg-query -W -f='\${Package} \${Version}\n' postgresql-$pg postgresql-$pg-cron debhelper postgresql-common"

	# Build (pg_buildext updatecontrol: debian/control for this system's
	# PostgreSQL versions, as the PGDG build does).
	on sh -c "cd $b/$src && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b -j2" \
		>"$logs/build.log" 2>&1
	local rc=$?
	local debs=("$hb"/"${pkg}_${debversion}"_*.deb)
	if [ $rc -ne 0 ] || [ ! -f "${debs[0]}" ]; then
		tail -40 "$logs/build.log"
		step 1 "$name: dpkg-buildpackage built $pkg"
		return
	fi
	grep -E 'warning:' "$logs/build.log" || true
	cp "$hb"/*.deb "$hb"/*.buildinfo "$hb"/*.changes "$logs/" 2>/dev/null
	local deb=${debs[0]} debb=$b/${debs[0]##*/}
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

[ "$(id -u)" = 0 ] || { echo "packages: run as root (apt-get, chroot, mount)"; echo "0 passed, 1 failed"; exit 1; }
command -v debootstrap >/dev/null || { apt-get install -y -qq debootstrap >/dev/null || true; }
command -v unzip >/dev/null || { apt-get install -y -qq unzip >/dev/null || true; }

list=()
for want in "${@:-all}"; do
	case "$want" in
		all) list+=(15 17 18 dist) ;;
		15|17|18|i386|dist) list+=("$want") ;;
		*) echo "usage: $0 [15|17|18|i386|dist|all]..." >&2; exit 2 ;;
	esac
done
for t in "${list[@]}"; do
	start=$SECONDS
	case "$t" in
		15) package_host ;;
		dist) with_root_lock 17 dist ;;
		*) with_root_lock "$t" package_root "$t" ;;
	esac
	summary[${#summary[@]} - 1]+=" [$((SECONDS - start)) s]"
done

echo "=== packages summary"
for line in "${summary[@]}"; do echo "  $line"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
