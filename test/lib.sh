# Shared by test/run_tests.sh and test/demo.sh (sourced, not run).
# Makes a copy of the tree that the postgres user can write (initdb refuses
# root) and sets RUNAS to the command prefix that runs as that user.
export PATH=/usr/lib/postgresql/15/bin:$PATH
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config

prepare_workdir() {
	WORK=$(mktemp -d /tmp/release_expired_orders.XXXXXX)
	cp -a "$1/." "$WORK/"
	RUNAS=()
	if [ "$(id -u)" = 0 ]; then
		chown -R postgres: "$WORK"
		RUNAS=(runuser -u postgres --)
	fi
}
