#!/bin/sh
# redis.sh: run a real throwaway redis-server on loopback for tests, benchmarks and the demo.
#
#   redis.sh start DIR [--aof]   start redis in DIR; prints its port
#   redis.sh stop DIR            stop it (no-op if not running)
#   redis.sh restart DIR         stop + start, same port and persistence mode
#   redis.sh cluster-start DIR N start N masters (no replicas) as one Redis
#                                Cluster; prints HOST:PORT,... of the nodes
#   redis.sh cluster-stop DIR    stop every node of it
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
	extra=${3:-}
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
$extra
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

# N distinct free loopback ports, held together while they are picked.
free_ports() {
	python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# stop() sets D, port and pid: the cluster functions keep their own names.
cluster_stop() {
	[ -d "$1" ] || return 0
	for cnode in "$1"/node*; do
		[ -d "$cnode" ] && stop "$cnode"
	done
	return 0
}

cluster_fail() {
	echo "redis: cluster: $*" >&2
	for cnode in "$CD"/node*; do
		[ -f "$cnode/redis.log" ] || continue
		echo "--- $cnode/redis.log" >&2
		tail -n 15 "$cnode/redis.log" >&2
	done
	[ -f "$CD/create.log" ] && { echo "--- redis-cli --cluster create" >&2; tail -n 30 "$CD/create.log" >&2; }
	cluster_stop "$CD"
	exit 1
}

# Every node a master owning slots, none with a replica; the bus ports are
# picked too (cluster-port), since PORT+10000 may be taken or out of range.
cluster_start() {
	CD=$(absdir "$1")
	cn=$2
	case $cn in ''|*[!0-9]*) usage ;; esac
	[ "$cn" -ge 3 ] || die "a cluster needs at least 3 masters"
	cluster_stop "$CD"
	rm -rf "$CD"/node* "$CD/create.log" "$CD/nodes"
	set -- $(free_ports $((2 * cn)))
	cnodes=
	ci=1
	while [ "$ci" -le "$cn" ]; do
		cport=$1 cbus=$2
		shift 2
		mkdir -p "$CD/node$ci"
		echo "$cport" >"$CD/node$ci/redis.port"
		# A subshell: start exits on failure, and the others must stop then.
		if ! (start "$CD/node$ci" none "cluster-enabled yes
cluster-config-file nodes.conf
cluster-port $cbus
cluster-node-timeout 5000") >/dev/null 2>"$CD/node$ci/start.err"; then
			cat "$CD/node$ci/start.err" >&2
			cluster_fail "node $ci (port $cport) did not start"
		fi
		cnodes="$cnodes${cnodes:+ }127.0.0.1:$cport"
		ci=$((ci + 1))
	done
	redis-cli --cluster create $cnodes --cluster-replicas 0 --cluster-yes \
		>"$CD/create.log" 2>&1 || cluster_fail "redis-cli --cluster create failed"
	# Every node must say the cluster is ok and know every slot.
	for caddr in $cnodes; do
		cport=${caddr##*:}
		ci=0
		until redis-cli -h 127.0.0.1 -p "$cport" cluster info 2>/dev/null | tr -d '\r' |
			grep -qx 'cluster_state:ok' &&
			redis-cli -h 127.0.0.1 -p "$cport" cluster info 2>/dev/null | tr -d '\r' |
			grep -qx 'cluster_slots_ok:16384'; do
			ci=$((ci + 1))
			[ "$ci" -lt 300 ] || cluster_fail "127.0.0.1:$cport: cluster_state not ok after 30 s"
			sleep 0.1
		done
	done
	echo "$cnodes" | tr ' ' ',' >"$CD/nodes"
	cat "$CD/nodes"
}

usage() {
	sed -n '4,9s/^# \{0,1\}//p' "$0" >&2
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
cluster-start) [ $# -eq 2 ] || usage; cluster_start "$1" "$2" ;;
cluster-stop) [ $# -eq 1 ] || usage; cluster_stop "$1" ;;
restart)
	[ $# -eq 1 ] || usage
	mode=$(cat "$1/redis.mode" 2>/dev/null || echo none)
	stop "$1"
	start "$1" "$mode" ;;
*) usage ;;
esac
