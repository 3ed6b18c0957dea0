#!/bin/sh
# demo.sh: on a fresh Debian 12 machine: install, build, start Kafka and Redis on loopback, show them working, stop them.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
run=${ORDERD_DEMO_DIR:-$top/tmp/demo}

say() { echo "demo: $*" >&2; }

say "installing dependencies (apt)"
contrib/install-deps.sh || exit 1
say "building"
{ [ -f Makefile ] || { [ -x configure ] || ./autogen.sh >/dev/null; } && ./configure -q; } &&
	make -s -j"$(nproc)" >/dev/null || exit 1

rm -rf "$run"
mkdir -p "$run"
cleanup() {
	contrib/kafka.sh stop "$run/kafka" >/dev/null 2>&1
	contrib/redis.sh stop "$run/redis" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say "starting Kafka (KRaft, one node) and Redis on 127.0.0.1"
bootstrap=$(contrib/kafka.sh start "$run/kafka") || exit 1
port=$(contrib/redis.sh start "$run/redis") || exit 1
say "Kafka on $bootstrap, Redis on 127.0.0.1:$port"
kcat -b "$bootstrap" -L | head -n 3
redis-cli -p "$port" ping

say "creating the journal $run/journal.db"
sqlite3 "$run/journal.db" <sql/schema.sql && sqlite3 "$run/journal.db" 'PRAGMA user_version = 1'
echo "the journal's tables:  sqlite3 $run/journal.db .schema"
sqlite3 "$run/journal.db" .tables
say "stopping the servers"
