#!/bin/sh
# reload.sh: SIGHUP applies the redis.timeout_ms it reports, to the running connection of one server and of every master of a cluster, for the calls sent after it.
#
# Starts a Redis of its own and a 3-master cluster (contrib/redis.sh), so
# that CLIENT PAUSE disturbs no other test; the broker is tests/servers.sh's.
# orderd starts with redis.timeout_ms = 5000: a 1.5 s pause of Redis delays
# a reservation and times nothing out.  SIGHUP with 300: a call made while
# Redis is paused times out after 300 ms ("no reply within 300 ms"), on the
# one server and on each master, and the orders go through once the pause
# ends.  TAP output.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/reload.XXXXXX")
n=0
fails=0
pids=
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	"$top/contrib/redis.sh" stop "$tmp/redis" >/dev/null 2>&1
	"$top/contrib/redis.sh" cluster-stop "$tmp/cluster" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bail() {
	echo "Bail out! $*"
	for f in "$tmp"/*.log; do
		[ -f "$f" ] && { echo "# --- $f"; tail -n 15 "$f" | sed 's/^/# /'; }
	done
	echo "reload: scratch kept in $tmp" >&2
	exit 1
}
. "$top/tests/conf.sh"

# Waits up to $3 tenths of a second for the pattern $2 in file $1.
wait_for() {
	i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -lt "$3" ] || return 1
		sleep 0.1
	done
}
# The units of sku $2 reserved, through orderctl -c $1.
reserved() {
	"$bin/orderctl" -c "$1" stock show "$2" --json 2>>"$tmp/ctl.log" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["skus"][0]["reserved"])' 2>/dev/null
}
# Waits up to $4 tenths of a second until sku $2 has $3 units reserved.
wait_reserved() {
	i=0
	while [ "$(reserved "$1" "$2")" != "$3" ]; do
		i=$((i + 1))
		[ "$i" -lt "$4" ] || return 1
		sleep 0.1
	done
}
# order ID SKU TOPIC: one OrderCreated of one unit of SKU.
order() {
	printf '%s\t{"event_id":"e-%s","type":"OrderCreated","order_id":"%s","customer_id":"c-1","items":[{"sku":"%s","qty":1}],"amount_cents":100,"currency":"EUR"}\n' \
		"$1" "$1" "$1" "$2" |
		kcat -b "$ORDERD_TEST_BOOTSTRAP" -P -t "$3" -K '\t' -q 2>>"$tmp/kcat.log"
}
pause() { redis-cli -p "$1" CLIENT PAUSE "$2" ALL >/dev/null; }
# Rewrites the timeout of configuration $1 to $2, sends orderd ($3) SIGHUP
# and waits until it has reloaded (log $4).
reload_timeout() {
	sed -i "s/^timeout_ms = .*/timeout_ms = $2/" "$1"
	before=$(grep -c 'config: reloaded' "$4")
	kill -HUP "$3"
	i=0
	while [ "$(grep -c 'config: reloaded' "$4")" = "$before" ]; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || return 1
		sleep 0.1
	done
}
start_orderd() {	# CONF LOG: starts orderd, sets opid, waits for its partitions
	"$bin/orderd" -c "$1" 2>"$2" &
	opid=$!
	pids="$pids $opid"
	wait_for "$2" 'engine: assigned partitions' 600 || bail "orderd did not get its partitions ($2)"
	wait_for "$2" 'redis: connected to' 100 || bail "orderd did not connect to Redis ($2)"
}

# ---- one server ----------------------------------------------------------
port=$("$top/contrib/redis.sh" start "$tmp/redis" 2>"$tmp/redis-start.log") ||
	bail "redis-server did not start: $(tail -n 5 "$tmp/redis-start.log")"
name=reload$$
conf=$tmp/one.conf
mkdir -p "$tmp/one"
(unset ORDERD_TEST_REDIS_NODES; ORDERD_TEST_REDIS_PORT=$port test_conf "$conf" "$name" "$tmp/one")
printf '[redis]\ntimeout_ms = 5000\n' >>"$conf"
"$bin/orderctl" -c "$conf" topics create --partitions 1 >/dev/null 2>>"$tmp/ctl.log" ||
	bail "orderctl topics create failed"
"$bin/orderctl" -c "$conf" stock add sku-0 100 >/dev/null 2>>"$tmp/ctl.log" || bail "stock add failed"
start_orderd "$conf" "$tmp/one.log"

# The old value first: a pause shorter than it times nothing out.
pause "$port" 1500
order o-before sku-0 "$name.orders"
wait_reserved "$conf" sku-0 1 100
r=$?
check "timeout_ms = 5000: a reservation made while Redis pauses 1.5 s waits it out" \
	'[ "$r" = 0 ] && ! grep -q "no reply within" "$tmp/one.log"'

reload_timeout "$conf" 300 "$opid" "$tmp/one.log" || bail "orderd did not reload"
check "SIGHUP reports redis.timeout_ms: 5000 -> 300" \
	'grep -q "config: redis.timeout_ms: 5000 -> 300" "$tmp/one.log"'
pause "$port" 2000
order o-after sku-0 "$name.orders"
wait_for "$tmp/one.log" "127.0.0.1:$port lost: no reply within 300 ms" 50
r=$?
check "after SIGHUP, a call made while Redis pauses times out after the new 300 ms" '[ "$r" = 0 ]'
check "... not after the old 5000 ms" '! grep -q "no reply within 5000 ms" "$tmp/one.log"'
wait_reserved "$conf" sku-0 2 150
r=$?
check "... and the order is reserved once the pause ends" '[ "$r" = 0 ]'
kill -TERM "$opid" 2>/dev/null
wait "$opid"
st=$?
pids=
check "orderd exits 0 on SIGTERM (exit $st)" '[ "$st" = 0 ]'

# ---- a cluster: every master -------------------------------------------
nodes=$("$top/contrib/redis.sh" cluster-start "$tmp/cluster" 3 2>"$tmp/cluster-start.log") ||
	bail "the cluster did not start: $(tail -n 5 "$tmp/cluster-start.log")"
ports=$(echo "$nodes" | tr ',' '\n' | sed 's/.*://')
cname=reloadc$$
cconf=$tmp/cluster.conf
mkdir -p "$tmp/c"
ORDERD_TEST_REDIS_NODES=$nodes ORDERD_TEST_REDIS_PORT=$port test_conf "$cconf" "$cname" "$tmp/c"
printf '[redis]\ntimeout_ms = 5000\n' >>"$cconf"
"$bin/orderctl" -c "$cconf" topics create --partitions 1 >/dev/null 2>>"$tmp/ctl.log" ||
	bail "orderctl topics create (cluster) failed"
i=0
while [ "$i" -lt 12 ]; do
	"$bin/orderctl" -c "$cconf" stock add "sku-$i" 100 >/dev/null 2>>"$tmp/ctl.log" ||
		bail "stock add sku-$i (cluster) failed"
	i=$((i + 1))
done
# One sku per master: the one whose stock key that master holds (SCAN is
# per node).
skus=
for p in $ports; do
	s=$(redis-cli -p "$p" --scan --pattern "$cname:*:stock" | sed -n 's/.*{\(sku-[0-9]*\)}.*/\1/p' | head -n 1)
	[ -n "$s" ] || bail "no sku of the 12 lives on the master at port $p"
	skus="$skus $p:$s"
done
start_orderd "$cconf" "$tmp/cluster.log"
reload_timeout "$cconf" 300 "$opid" "$tmp/cluster.log" || bail "orderd (cluster) did not reload"
for p in $ports; do pause "$p" 2000; done
for ps in $skus; do order "o-${ps#*:}" "${ps#*:}" "$cname.orders"; done
for ps in $skus; do
	p=${ps%%:*}
	wait_for "$tmp/cluster.log" "127.0.0.1:$p lost: no reply within 300 ms" 50
	r=$?
	check "cluster, after SIGHUP: the master at $p times out a call after the new 300 ms" '[ "$r" = 0 ]'
done
check "... never after the old 5000 ms" '! grep -q "no reply within 5000 ms" "$tmp/cluster.log"'
for ps in $skus; do
	wait_reserved "$cconf" "${ps#*:}" 1 200
	r=$?
	check "... and the order of ${ps#*:} (master at ${ps%%:*}) is reserved once the pause ends" '[ "$r" = 0 ]'
done

kill -TERM "$opid" 2>/dev/null
wait "$opid"
st=$?
pids=
check "orderd (cluster) exits 0 on SIGTERM (exit $st)" '[ "$st" = 0 ]'
echo "1..$n"
if [ "$fails" = 0 ]; then
	rm -rf "$tmp"
else
	for f in "$tmp"/*.log; do
		[ -f "$f" ] && { echo "# --- $f"; tail -n 15 "$f" | sed 's/^/# /'; }
	done
	echo "reload: scratch kept in $tmp" >&2
fi
[ "$fails" = 0 ]
