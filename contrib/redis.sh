#!/bin/sh
# redis.sh: run a real throwaway redis-server on loopback for tests, benchmarks and the demo.
#
#   redis.sh start DIR [--aof]   start redis in DIR; prints its port
#   redis.sh stop DIR            stop it (no-op if not running)
#   redis.sh restart DIR         stop + start, same port and persistence mode
#
# Without --aof nothing is persisted (a restart empties it); with --aof every
# write is fsynced to DIR/appendonlydir before it is acknowledged.
set -eu

die() { echo "redis: $*" >&2; exit 1; }

# kill -0 alone is not enough: a server that died while we still wait on it
# is our zombie child, and a reused PID may belong to something else.
running() {
	[ -r "/proc/$1/stat" ] || return 1
	case $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) in Z|X|'') return 1 ;; esac
}

# Ours: redis-server started on DIR's config, before or after it retitles
# itself "redis-server 127.0.0.1:PORT".
ours() {
	running "$1" || return 1
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null |
		grep -qE "redis-server.*(:$3\b|$2/redis\.conf)"
}

absdir() { mkdir -p "$1" && (cd "$1" && pwd); }

free_port() {
	python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
	D=$(absdir "$1")
	mode=$2
	if [ -f "$D/redis.pid" ] && [ -s "$D/redis.port" ]; then
		pid=$(cat "$D/redis.pid")
		ours "$pid" "$D" "$(cat "$D/redis.port")" && die "already running in $D (pid $pid)"
	fi
	rm -f "$D/redis.pid"
	# A saved port keeps the address stable across restarts.
	if [ -s "$D/redis.port" ]; then
		port=$(cat "$D/redis.port")
	else
		port=$(free_port)
		echo "$port" >"$D/redis.port"
	fi
	echo "$mode" >"$D/redis.mode"
	if [ "$mode" = aof ]; then
		persist='appendonly yes
appendfsync always'
	else
		persist='appendonly no'
	fi
	cat >"$D/redis.conf" <<EOF
# Written by contrib/redis.sh.
bind 127.0.0.1
protected-mode yes
port $port
dir $D
daemonize no
logfile $D/redis.log
save ""
$persist
EOF
	off=$(stat -c %s "$D/redis.log" 2>/dev/null || echo 0)
	cd "$D"
	setsid nohup redis-server "$D/redis.conf" </dev/null >>"$D/redis.out" 2>&1 &
	pid=$!
	echo "$pid" >"$D/redis.pid"
	# PONG alone could come from a stranger on a reused port (and an AOF
	# still loading answers LOADING), so also require our own process_id.
	i=0
	while running "$pid" && [ $i -lt 200 ]; do
		if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] &&
			redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null |
			tr -d '\r' | grep -qx "process_id:$pid"; then
			echo "$port"
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	{
		echo "redis: server failed to start on port $port"
		tail -c +$((off + 1)) "$D/redis.log" 2>/dev/null | tail -n 40
		tail -n 20 "$D/redis.out" 2>/dev/null
	} >&2
	stop "$D"
	exit 1
}

stop() {
	[ -f "$1/redis.pid" ] || return 0
	D=$(absdir "$1")
	pid=$(cat "$D/redis.pid")
	port=$(cat "$D/redis.port" 2>/dev/null || echo 0)
	if ours "$pid" "$D" "$port"; then
		# SIGTERM makes redis flush the AOF and exit cleanly.
		kill -TERM "$pid" 2>/dev/null || true
		i=0
		while running "$pid" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		if running "$pid"; then
			echo "redis: pid $pid ignored SIGTERM for 10 s, killing" >&2
			kill -KILL "$pid" 2>/dev/null || true
			while running "$pid"; do sleep 0.1; done
		fi
	fi
	rm -f "$D/redis.pid"
}

usage() {
	sed -n '4,6s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
start)
	case $# in
	1) start "$1" none ;;
	2) [ "$2" = --aof ] || usage; start "$1" aof ;;
	*) usage ;;
	esac ;;
stop) [ $# -eq 1 ] || usage; stop "$1" ;;
restart)
	[ $# -eq 1 ] || usage
	mode=$(cat "$1/redis.mode" 2>/dev/null || echo none)
	stop "$1"
	start "$1" "$mode" ;;
*) usage ;;
esac
