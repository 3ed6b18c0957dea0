#!/bin/sh
# install-deps.sh: install every build, test and demo dependency of orderd on Debian 12 with apt.
# Idempotent: when every package is already installed it prints nothing and
# touches no network.
set -eu

PKGS="build-essential autoconf automake libtool pkg-config git
librdkafka-dev libhiredis-dev libuv1-dev libjansson-dev libsqlite3-dev
libinih-dev uuid-dev uthash-dev check sqlite3 redis-server redis-tools kcat
maven openjdk-17-jdk-headless procps python3 gnuplot-nox valgrind openssl
libhttp-parser-dev prometheus curl
libsystemd-dev groff-base mandoc systemd
stunnel4 openssl
clang libclang-rt-14-dev"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
