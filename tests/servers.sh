#!/bin/sh
# servers.sh: run a command with a real Kafka broker and redis-server started for it on loopback, and stop both afterwards.
#
#   tests/servers.sh COMMAND [ARGS...]
#
# The command sees ORDERD_TEST_BOOTSTRAP, ORDERD_TEST_REDIS_PORT, the server
# directories (ORDERD_TEST_KAFKA_DIR, ORDERD_TEST_REDIS_DIR, for restarts)
# and TMPDIR inside the run directory.  A server that cannot start fails the
# run with its log tail: nothing is ever skipped for that.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
run=$(mktemp -d "${TMPDIR:-/tmp}/orderd-run.XXXXXX")
kdir=$run/kafka
rdir=$run/redis

stop_all() {
	"$top/contrib/kafka.sh" stop "$kdir" >/dev/null 2>&1
	"$top/contrib/redis.sh" stop "$rdir" >/dev/null 2>&1
}
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

# Both start at once: the broker takes seconds, Redis milliseconds.
"$top/contrib/kafka.sh" start "$kdir" >"$run/kafka.start" 2>"$run/kafka.err" &
kpid=$!
if ! port=$("$top/contrib/redis.sh" start "$rdir" 2>"$run/redis.err"); then
	echo "servers: redis-server failed to start:" >&2
	cat "$run/redis.err" >&2
	wait "$kpid"
	exit 1
fi
if ! wait "$kpid"; then
	echo "servers: the Kafka broker failed to start:" >&2
	cat "$run/kafka.err" >&2
	exit 1
fi
bootstrap=$(cat "$run/kafka.start")

mkdir -p "$run/tmp"
ORDERD_TEST_BOOTSTRAP=$bootstrap
ORDERD_TEST_REDIS_PORT=$port
ORDERD_TEST_KAFKA_DIR=$kdir
ORDERD_TEST_REDIS_DIR=$rdir
TMPDIR=$run/tmp
export ORDERD_TEST_BOOTSTRAP ORDERD_TEST_REDIS_PORT ORDERD_TEST_KAFKA_DIR \
	ORDERD_TEST_REDIS_DIR TMPDIR
echo "servers: Kafka on $bootstrap, Redis on 127.0.0.1:$port, scratch in $run" >&2
"$@"
rc=$?
stop_all
# Keep the scratch of a failed run for a look; drop a passed one.
if [ "$rc" = 0 ] && [ -z "${ORDERD_KEEP_RUN:-}" ]; then
	rm -rf "$run"
else
	echo "servers: scratch kept in $run" >&2
fi
exit "$rc"
