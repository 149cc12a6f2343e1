#!/usr/bin/env bash
# Installs what building and testing need on Debian 12 (when missing), then
# builds the extension with assertions and installs it.  Run as root (or
# with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_=""
if [ "$(id -u)" != 0 ]; then sudo_="sudo"; fi

packages=(make gcc postgresql-15 postgresql-server-dev-15 postgresql-15-cron
          postgresql-contrib libipc-run-perl perl python3 python3-psycopg2 gnuplot-nox)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	$sudo_ apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}" >/dev/null
fi

export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
make -s clean >/dev/null
make -s ASSERTS=1 WERROR=1
$sudo_ make -s install >/dev/null
echo "setup: release_expired_orders built and installed into $($PG_CONFIG --pkglibdir)"
