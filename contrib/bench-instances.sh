#!/bin/sh
# bench-instances.sh: orders/s, CPU per order and RSS of 1, 2 and 3 orderd instances in one consumer group on this machine.
#
#   contrib/bench-instances.sh [ORDERS]
#
# Starts its own Kafka broker and Redis on 127.0.0.1 (contrib/kafka.sh,
# contrib/redis.sh), then for each run: 6 partitions, 100 skus with plenty
# of stock, N instances (own journals, synchronous = full), orderd-paysim
# answering at once, and orderd-loadgen producing ORDERS (default 30,000)
# orders of 1-5 lines as fast as it can with --verify.  A first run with
# one instance and no changelog ([topics] state empty) shows what the
# changelog costs.  Prints a Markdown table (also in
# tmp/bench-instances/table.md).  The instances share the machine's cores:
# the point is correctness and overhead, not speed-up.  Needs a build
# (make) and the servers' dependencies (contrib/install-deps.sh).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
orders=${1:-30000}
bin=$top/src
run=$top/tmp/bench-instances
rm -rf "$run"
mkdir -p "$run"
die() { echo "bench-instances: $*" >&2; exit 1; }
[ -x "$bin/orderd" ] || die "build first (make)"

stop_servers() {
	contrib/kafka.sh stop "$run/kafka" >/dev/null 2>&1
	contrib/redis.sh stop "$run/redis" >/dev/null 2>&1
}
trap 'stop_servers' EXIT
bootstrap=$(contrib/kafka.sh start "$run/kafka" 2>"$run/kafka.err") ||
	{ cat "$run/kafka.err" >&2; die "the broker did not start"; }
port=$(contrib/redis.sh start "$run/redis" 2>"$run/redis.err") ||
	{ cat "$run/redis.err" >&2; die "redis did not start"; }
ORDERD_TEST_BOOTSTRAP=$bootstrap
ORDERD_TEST_REDIS_PORT=$port
export ORDERD_TEST_BOOTSTRAP ORDERD_TEST_REDIS_PORT
. "$top/tests/conf.sh"

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hwm() { awk '/VmHWM/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
clk=$(getconf CLK_TCK)

# Partitions of orders the instances of run dir $1 own now (their last
# assignment each); revocations count as none.
owned() {
	t=0
	for f in "$1"/orderd-*.log; do
		l=$(grep -E "engine: (assigned partitions|partitions revoked: steps)" "$f" 2>/dev/null | tail -n 1)
		case $l in
		*"assigned partitions ["*)
			p=$(echo "$l" | sed 's/.*assigned partitions \[\([0-9,]*\)\].*/\1/')
			[ -n "$p" ] && t=$((t + $(echo "$p" | tr ',' '\n' | wc -l)))
			;;
		esac
	done
	echo "$t"
}

one_run() {	# LABEL INSTANCES STATE_TOPIC(yes|no)
	label=$1 n=$2 state=$3
	d=$run/$n-$state
	name=bi-$n-$state-$$
	mkdir -p "$d"
	test_conf "$d/base.conf" "$name" "$d"
	[ "$state" = no ] && sed -i 's/^state = .*/state =/' "$d/base.conf"
	conf="-c $d/base.conf"
	"$bin/orderctl" $conf topics create --partitions 6 >/dev/null || die "topics create"
	i=0
	while [ "$i" -lt 100 ]; do
		"$bin/orderctl" $conf stock add "sku-$i" 1000000000 >/dev/null || die "stock add"
		i=$((i + 1))
	done
	pids=
	k=1
	while [ "$k" -le "$n" ]; do
		"$bin/orderd" $conf -s "journal.path=$d/journal-$k.db" \
			-s "consumer.instance_id=$name-$k" 2>"$d/orderd-$k.log" &
		pids="$pids $!"
		k=$((k + 1))
	done
	w=0
	until [ "$(owned "$d")" = 6 ]; do
		w=$((w + 1))
		[ "$w" -lt 600 ] || die "$label: the group never settled on 6 partitions"
		sleep 0.1
	done
	"$bin/orderd-paysim" $conf --group "$name-paysim" 2>"$d/paysim.log" &
	ppid=$!
	sleep 2
	c0=0; for p in $pids; do c0=$((c0 + $(ticks "$p"))); done
	"$bin/orderd-loadgen" $conf --orders "$orders" --skus 100 --lines-max 5 \
		--sku-prefix sku- --verify --timeout-s 300 >"$d/figures" 2>"$d/loadgen.log"
	lg=$?
	c1=0; rss=0
	for p in $pids; do
		c1=$((c1 + $(ticks "$p")))
		h=$(hwm "$p")
		[ "$h" -gt "$rss" ] && rss=$h
	done
	kill -TERM "$ppid"; wait "$ppid"
	for p in $pids; do kill -TERM "$p"; done
	for p in $pids; do wait "$p"; done
	fig() { awk -v k="$1" '$1 == k { print $2 }' "$d/figures"; }
	[ "$lg" = 0 ] || echo "bench-instances: $label: loadgen exit $lg (see $d)" >&2
	cpu=$(awk -v a="$c0" -v b="$c1" -v c="$clk" -v o="$orders" \
		'BEGIN { printf "%.1f", (b - a) * 1e6 / c / o }')
	printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
		"$(fig throughput_orders_per_s)" "$(fig latency_p50_ms)" "$(fig latency_p99_ms)" \
		"$cpu" "$(awk -v r="$rss" 'BEGIN { printf "%.1f", r / 1024 }')" \
		"$(fig missing)" "$(fig conflicts)"
}

{
	echo "| run | orders/s | p50 ms | p99 ms | orderd µs CPU per order (all instances) | peak RSS of one instance, MiB | missing | conflicts |"
	echo "|-----|---------:|-------:|-------:|------------:|------:|--------:|----------:|"
	one_run "1 instance, no changelog" 1 no
	one_run "1 instance" 1 yes
	one_run "2 instances" 2 yes
	one_run "3 instances" 3 yes
} | tee "$run/table.md"
echo "$orders orders of 1-5 lines per run, 6 partitions, $(nproc) cores, $(date -u +%Y-%m-%d)" |
	tee -a "$run/table.md"
